"""办事通 HTTP app: where it is assembled. Routers per audience live in `web/`:

* `web/citizens.py` — the chat page (/), guide pages (/guides), POST /api/chat, /api/feedback, /wechat
* /static         — web/static (every asset is local: no CDN)
* `web/hotline.py`  — GET /api/search, POST /api/answer, /api/handoffs (12345 agents)
* `web/admin.py`    — /api/admin/* (index versions)
* `web/auth.py`     — /login, /api/auth/* (staff log in/out), /api/admin/users, /api/admin/audit
* /health here      — index version and whether the Rasa server and action server answer

Run: `make run` (starts Rasa, the action server and this app together).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from starlette.datastructures import Headers, MutableHeaders

from assistant.accounts import has_admin
from assistant.db import sessions, upgrade
from assistant import publishing
from assistant.engine import Engine
from assistant.privacy import MaskingFilter, install_log_masking
from assistant.store import StoreUnavailable
from settings import get_settings
from web import admin, auth, bookings, citizens, hotline
from web.deps import SettingsDep

log = logging.getLogger("banshitong.server")
MAX_BODY = 64 * 1024  # a chat message is at most a few thousand characters
# Routes that take a file have their own named limit; the route reports a file too large in Chinese.
UPLOAD_PATHS = {"/admin/guides/import": lambda s: s.max_import_mb * 1024 * 1024 + 64 * 1024}  # + the form's own fields


# ---------- app ----------
@asynccontextmanager
async def lifespan(app: FastAPI):
    install_log_masking()
    for name in ("uvicorn", "uvicorn.access", "uvicorn.error"):
        for h in logging.getLogger(name).handlers:
            h.addFilter(MaskingFilter())
    settings = get_settings()
    upgrade(settings.database_url)
    with sessions(settings.database_url)() as s:
        if not has_admin(s):  # `make run` creates one; other deployments must do it once
            log.warning("no admin account yet: run `python -m assistant.accounts create-admin <username>`")
    try:
        app.state.engine = Engine(settings)
    except FileNotFoundError as exc:
        log.error("starting without an index: %s", exc)
        app.state.engine = None
    app.state.http = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=2.0))
    yield
    publishing.stop_all()  # a candidate build never outlives the app that started it
    await app.state.http.aclose()


app = FastAPI(title="办事通 API", version="0.1.0", lifespan=lifespan,
              description="厦门政务服务问答：一次性告知、全城通办、预约办事。")


# Pages may load scripts and styles only from this site (web/static): no inline <script>, no
# style="" attributes, no on*= handlers, no CDN. The API docs (Swagger UI) need their CDN assets.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class EdgeMiddleware:
    """Security headers on every response and a cap on request bodies (413 before anything reads
    them). Plain ASGI rather than @app.middleware: each BaseHTTPMiddleware layer costs about a
    millisecond per request on the agents' search-as-you-type path, and streams (SSE) pass
    through untouched."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        extra = [*SECURITY_HEADERS.items(),
                 ("Content-Security-Policy", DOCS_CSP if path in ("/docs", "/redoc") else CSP)]
        if path.startswith("/api/") or path == "/login":
            extra.append(("Cache-Control", "no-store"))  # personal data stays out of caches

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra:
                    headers.setdefault(name, value)
            await send(message)

        length = Headers(scope=scope).get("content-length")
        limit = UPLOAD_PATHS[path](get_settings()) if path in UPLOAD_PATHS else MAX_BODY
        if length is not None and (not length.isdigit() or int(length) > limit):
            size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"
            response = JSONResponse({"detail": f"请求内容过大（上限 {size}）"}, status_code=413)
            return await response(scope, receive, send_with_headers)
        await self.app(scope, receive, send_with_headers)


app.add_middleware(EdgeMiddleware)


_FIELD_ZH = {"sender": "发送者(sender)", "message": "消息(message)", "q": "查询词(q)", "k": "返回条数(k)",
             "question": "问题(question)", "version": "版本(version)", "mode": "检索方式(mode)"}


@app.exception_handler(RequestValidationError)
async def validation_error(request: Request, exc: RequestValidationError):
    problems = []
    for err in exc.errors():
        field = next((str(x) for x in reversed(err["loc"]) if isinstance(x, str) and x not in ("body", "query")), "")
        what = {"missing": "缺少该字段", "string_type": "应为文字", "int_parsing": "应为整数",
                "string_too_long": "内容过长", "string_too_short": "不能为空", "string_pattern_mismatch": "格式不正确",
                "greater_than_equal": "数值太小", "less_than_equal": "数值太大", "json_invalid": "不是有效的 JSON",
                "model_attributes_type": "请求体应为 JSON 对象"}.get(err["type"], "取值无效")
        problems.append(f"{_FIELD_ZH.get(field, field or '请求体')}：{what}")
    return JSONResponse({"detail": "请求格式有误：" + "；".join(problems)}, status_code=422)


@app.exception_handler(OperationalError)
@app.exception_handler(StoreUnavailable)
async def backend_down(request: Request, exc: Exception):
    # The database or Redis is unreachable (restarting, network): a clear 503, never a 500.
    log.error("backend unavailable on %s: %s", request.url.path, type(exc).__name__)
    return JSONResponse({"detail": "服务暂时不可用，请稍后再试。急事请拨打12345政务服务热线。"}, status_code=503)


@app.get("/health", tags=["health"])
async def health(request: Request, settings: SettingsDep):
    async def up(url: str) -> bool:
        try:
            return (await request.app.state.http.get(url, timeout=2.0)).status_code < 500
        except httpx.HTTPError:
            return False

    eng = request.app.state.engine
    return {
        "status": "ok" if eng is not None else "degraded",
        "index_version": eng.current.version if eng else None,
        "rasa": await up(f"{settings.rasa_url}/"),
        "actions": await up(f"{settings.action_url}/health"),
    }


app.mount("/static", StaticFiles(directory=Path(__file__).resolve().parent / "web/static"), name="static")
app.include_router(auth.router)
app.include_router(citizens.router)
app.include_router(bookings.router)
app.include_router(hotline.router)
app.include_router(hotline.pages)
app.include_router(admin.router)
app.include_router(admin.api)
app.include_router(admin.pages)
