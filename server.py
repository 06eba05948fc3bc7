"""办事通 HTTP app: where it is assembled. Routers per audience live in `web/`:

* `web/citizens.py` — POST /api/chat (through the Rasa server), /wechat, the chat page
* `web/hotline.py`  — GET /api/search, POST /api/answer, /api/handoffs (12345 agents)
* `web/admin.py`    — /api/admin/* (index versions)
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

from assistant.db import upgrade
from assistant.engine import Engine
from assistant.privacy import MaskingFilter, install_log_masking
from settings import get_settings
from web import admin, citizens, hotline
from web.deps import SettingsDep, local_auth_router

log = logging.getLogger("banshitong.server")
MAX_BODY = 64 * 1024  # a chat message is at most a few thousand characters


# ---------- app ----------
@asynccontextmanager
async def lifespan(app: FastAPI):
    install_log_masking()
    for name in ("uvicorn", "uvicorn.access", "uvicorn.error"):
        for h in logging.getLogger(name).handlers:
            h.addFilter(MaskingFilter())
    settings = get_settings()
    upgrade(settings.database_url)
    try:
        app.state.engine = Engine(settings)
    except FileNotFoundError as exc:
        log.error("starting without an index: %s", exc)
        app.state.engine = None
    app.state.http = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=2.0))
    yield
    await app.state.http.aclose()


app = FastAPI(title="办事通 API", version="0.1.0", lifespan=lifespan,
              description="厦门政务服务问答：一次性告知、全城通办、预约办事。")


@app.middleware("http")
async def limit_body(request: Request, call_next):
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        return JSONResponse({"detail": f"请求内容过大（上限 {MAX_BODY // 1024} KB）"}, status_code=413)
    return await call_next(request)


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
app.include_router(citizens.router)
app.include_router(hotline.router)
app.include_router(admin.router)
app.include_router(local_auth_router)  # stand-in for the access helper's login (see web/deps.py)
