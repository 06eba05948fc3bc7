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
import re
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import fastapi_offline
import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.accounts import has_admin
from assistant.db import sessions, upgrade
from assistant import publishing
from assistant.engine import Engine
from assistant.knowledge_base import MAX_UPLOAD
from assistant.privacy import MaskingFilter, install_log_masking
from assistant.store import StoreUnavailable
from settings import get_settings
from web import admin, auth, bookings, citizens, hotline, sources
from web.deps import SettingsDep

log = logging.getLogger("banshitong.server")
MAX_BODY = 64 * 1024  # a chat message is at most settings.max_message_chars (5000) characters
UPLOAD_BODY = MAX_UPLOAD + 256 * 1024  # a policy document and the form fields around it


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


# /docs is served below from local files (the Swagger UI fastapi-offline ships, pinned), under the same CSP as every
# page; ReDoc would need a CDN, so there is none.
app = FastAPI(title="办事通 API", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
              description="厦门政务服务问答：一次性告知、全城通办、预约办事。")


# Pages may load scripts and styles only from this site (web/static): no inline <script>, no
# style="" attributes, no on*= handlers, no CDN. The API docs (Swagger UI, local files) too.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class BodyTooLarge(HTTPException):
    """Raised from inside `receive` once a body (chunked or not) passes its cap: FastAPI and
    Starlette hand an HTTPException raised while reading the body to the app's handler below.
    (FastAPI's own max_body_size answers a plain-text English "Content Too Large" on some paths.)"""


def body_limit(path: str) -> int:
    """The request-body cap of a path: policy-document uploads may be as large as the knowledge
    base accepts (knowledge_base.MAX_UPLOAD) plus the form around the file; a guide spreadsheet as
    large as settings.max_import_mb (the route says a file too large in Chinese); everything else is
    a chat message or a form of a few fields."""
    if path == "/admin/guides/import":
        return get_settings().max_import_mb * 2**20 + 64 * 1024
    return UPLOAD_BODY if path.startswith("/admin/documents") else MAX_BODY


def _too_large_text(limit: int) -> str:
    return f"请求内容过大（上限 {limit // 1024} KB）" if limit < 2**20 else f"文件过大（上限 {limit // 2**20} MB）"


def _too_large(path: str, limit: int):
    text = _too_large_text(limit)
    if path.startswith("/api/") or path == "/wechat":
        return JSONResponse({"detail": text}, status_code=413)
    return HTMLResponse(f'<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>{text}</title>'
                        f'<link rel="stylesheet" href="/static/common.css"><p>{text}，请返回上一页重新选择。</p></html>',
                        status_code=413)


def same_site(headers: Headers) -> bool:
    """False for a browser request another site started (a form or fetch from elsewhere): CSRF.
    Browsers say so in Sec-Fetch-Site; older ones only send Origin. A request with neither is not
    from a browser page (WeChat's servers, integrations, curl) and carries no ambient cookie risk."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == (headers.get("host") or "").lower() != ""


UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
CROSS_SITE = "跨站请求已被拒绝：请在本站页面内操作"
SERVER_ERROR = "服务器内部错误，请稍后再试。急事请拨打12345政务服务热线。"


class EdgeMiddleware:
    """Security headers on every response (500s included), a cap on request bodies — by their
    Content-Length, and while reading one without (chunked) — and no state-changing request that
    another site started. Plain ASGI rather than @app.middleware: each BaseHTTPMiddleware layer
    costs about a millisecond per request on the agents' search-as-you-type path, and streams
    (SSE) pass through untouched."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        extra = [*SECURITY_HEADERS.items(),
                 ("Content-Security-Policy", CSP)]
        if path.startswith("/api/") or path == "/login":
            extra.append(("Cache-Control", "no-store"))  # personal data stays out of caches
        started = False

        async def send_with_headers(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in extra:
                    headers.setdefault(name, value)
            await send(message)

        headers = Headers(scope=scope)
        limit = body_limit(path)
        if scope["method"] in UNSAFE_METHODS and not same_site(headers):
            return await JSONResponse({"detail": CROSS_SITE}, status_code=403)(scope, receive, send_with_headers)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await _too_large(path, limit)(scope, receive, send_with_headers)
        seen = 0

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(413, _too_large_text(limit))
            return message

        try:
            await self.app(scope, counted_receive, send_with_headers)
        except BodyTooLarge:
            if not started:
                await _too_large(path, limit)(scope, receive, send_with_headers)
        except Exception:
            # Starlette's own 500 page is made outside every middleware, so it would go out without
            # the headers above; this one says the same in Chinese and keeps them.
            log.exception("unhandled error on %s %s", scope["method"], path)
            if not started:
                await JSONResponse({"detail": SERVER_ERROR}, status_code=500)(scope, receive, send_with_headers)


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
        if err["type"] == "message_too_long":
            what = err["msg"]  # texts.TOO_LONG, with the limit
        elif err["type"] == "string_too_short" and (err.get("ctx") or {}).get("min_length", 1) > 1:
            what = f"至少需要{err['ctx']['min_length']}个字符"
        problems.append(f"{_FIELD_ZH.get(field, field or '请求体')}：{what}")
    return JSONResponse({"detail": "请求格式有误：" + "；".join(problems)}, status_code=422)


# Starlette's own refusals (no such route, method) are English; every refusal here is Chinese.
_STATUS_ZH = {404: "没有这个页面或接口", 405: "不支持该请求方法", 400: "请求有误"}


@app.exception_handler(StarletteHTTPException)
async def http_error(request: Request, exc: StarletteHTTPException):
    detail = exc.detail
    if not isinstance(detail, str) or not re.search(r"[\u4e00-\u9fff]", detail):
        detail = _STATUS_ZH.get(exc.status_code, "请求无法处理")
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


@app.exception_handler(BodyTooLarge)
async def body_too_large(request: Request, exc: BodyTooLarge):
    return _too_large(request.url.path, body_limit(request.url.path))


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
        # get(), not .current: a health check notices a newly activated CURRENT like any request does.
        "index_version": eng.get().version if eng else None,
        "rasa": await up(f"{settings.rasa_url}/"),
        "actions": await up(f"{settings.action_url}/health"),
    }


@app.get("/docs", include_in_schema=False)
def docs(request: Request):
    return citizens.templates.TemplateResponse(request, "docs.html", {"title": app.title})


# Swagger UI 5 (OpenAPI 3.1) as fastapi-offline ships it (pinned); only its static folder is used.
app.mount("/static/docs", StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static"), name="swagger-ui")
app.mount("/static", StaticFiles(directory=Path(__file__).resolve().parent / "web/static"), name="static")
app.include_router(auth.router)
app.include_router(citizens.router)
app.include_router(sources.router)
app.include_router(bookings.router)
app.include_router(hotline.router)
app.include_router(hotline.pages)
app.include_router(admin.router)
app.include_router(admin.api)
app.include_router(admin.pages)
