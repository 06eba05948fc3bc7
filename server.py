"""办事通 HTTP API (FastAPI). Routers per audience:

* citizens  — POST /api/chat (through the Rasa server), the chat page
* hotline   — GET /api/search, POST /api/answer (12345 agents)
* admin     — /api/admin/* (validate, reload, list and activate index versions); needs X-Admin-Token
* /health   — index version and whether the Rasa server and action server answer

Run: `make run` (starts Rasa, the action server and this app together).
"""

from __future__ import annotations

import json
import logging
import re
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from assistant.answer import Answer, Context
from assistant.db import Handoff, sessions, upgrade
from assistant.engine import Engine
from assistant.privacy import MaskingFilter, install_log_masking, mask
from embeddings import index as idx
from settings import Settings, get_settings

log = logging.getLogger("banshitong.server")
MAX_BODY = 64 * 1024  # a chat message is at most a few thousand characters


# ---------- models at the edges ----------
class ChatRequest(BaseModel):
    sender: str = Field(min_length=1, max_length=64, pattern=r"^[\w\-.@:]+$")
    message: str = Field(max_length=20000)


class SearchHit(BaseModel):
    id: str
    text: str
    title: str
    doc_number: str | None
    issuer: str | None
    date: str | None
    clause: str | None
    region: str
    source_type: str
    score: float


class SearchResponse(BaseModel):
    query: str
    index_version: str
    hits: list[SearchHit]


class AnswerRequest(BaseModel):
    question: str = Field(min_length=1, max_length=20000)
    matter: str | None = Field(default=None, max_length=80)


class AnswerResponse(BaseModel):
    kind: str
    text: str
    matter: str | None
    qtype: str | None
    confidence: float
    buttons: list[dict]
    sources: list[dict]
    hits: list[SearchHit]


# ---------- dependencies ----------
def engine(request: Request) -> Engine:
    eng = request.app.state.engine
    if eng is None:
        raise HTTPException(503, "知识库索引尚未建立，请管理员运行 make setup")
    return eng


def admin(settings: Annotated[Settings, Depends(get_settings)],
          x_admin_token: Annotated[str | None, Header()] = None) -> None:
    if not settings.admin_token:
        raise HTTPException(403, "管理接口未启用：请设置 BST_ADMIN_TOKEN")
    if x_admin_token != settings.admin_token:
        raise HTTPException(401, "管理口令错误")


def agent(settings: Annotated[Settings, Depends(get_settings)],
          x_agent_token: Annotated[str | None, Header()] = None) -> None:
    """Hotline endpoints are open on a trusted network unless BST_AGENT_TOKEN is set."""
    if settings.agent_token and x_agent_token != settings.agent_token:
        raise HTTPException(401, "坐席口令错误")


def to_hit(h) -> SearchHit:
    p = h.passage
    return SearchHit(id=p.id, text=p.text, title=p.title, doc_number=p.doc_number, issuer=p.issuer,
                     date=p.date, clause=p.clause, region=p.region, source_type=p.source_type,
                     score=round(h.score, 4))


def answer_messages(sender: str, a: Answer) -> list[dict]:
    """An Answer in the shape of Rasa's REST channel."""
    msg: dict = {"recipient_id": sender, "text": a.text}
    if a.buttons:
        msg["buttons"] = [{"title": b.title, "payload": b.payload} for b in a.buttons]
    return [msg]


# ---------- citizens ----------
citizens = APIRouter(tags=["citizens"])

EMPTY_REPLY = "您好，请输入您要咨询的问题，例如：“结婚登记要带什么材料？”“护照要多少钱？”"


@citizens.post("/api/chat", summary="Send a chat message; returns the bot's messages (Rasa REST shape)")
async def chat(req: ChatRequest, request: Request, settings: Annotated[Settings, Depends(get_settings)]):
    if not req.message.strip():
        # A client error, but answered in the chat's own shape so any client can show it.
        return JSONResponse([{"recipient_id": req.sender, "text": EMPTY_REPLY}], status_code=422)
    log.info("chat %s: %s", req.sender, mask(req.message[:200]))
    try:
        r = await request.app.state.http.post(
            f"{settings.rasa_url}/webhooks/rest/webhook", json={"sender": req.sender, "message": req.message}
        )
        r.raise_for_status()
        messages = r.json()
        if isinstance(messages, list) and messages:
            return messages
        log.warning("rasa returned no messages for %s", req.sender)
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("rasa unavailable (%s); answering directly", type(exc).__name__)
    # Degraded mode: the dialogue server is down or silent; still answer the question itself.
    eng = engine(request)
    return answer_messages(req.sender, eng.get().answerer.run(req.message, Context()))


WECHAT_ONLY_TEXT = "目前只支持文字消息，请直接输入您要咨询的问题，例如“护照要多少钱”。"


def wechat_text(messages: list[dict]) -> str:
    """Rasa messages as one WeChat text reply: buttons become options the user can type."""
    parts, options = [], []
    for m in messages:
        if m.get("text"):
            parts.append(m["text"])
        options += [b["title"] for b in m.get("buttons") or [] if not b["title"].startswith("/")]
    if options:
        parts.append("您可以回复：" + " / ".join(dict.fromkeys(options)))
    return "\n".join(parts)[:2000]  # WeChat's limit for a passive text reply is 2048 bytes-ish


def _check_wechat(settings: Settings, signature: str, timestamp: str, nonce: str) -> None:
    from wechatpy.exceptions import InvalidSignatureException
    from wechatpy.utils import check_signature

    try:
        check_signature(settings.wechat_token, signature, timestamp, nonce)
    except InvalidSignatureException:
        raise HTTPException(403, "签名校验失败")


@citizens.get("/wechat", summary="WeChat Official Account server verification (echostr)")
def wechat_verify(settings: Annotated[Settings, Depends(get_settings)], signature: str, timestamp: str,
                  nonce: str, echostr: str):
    from fastapi.responses import PlainTextResponse

    _check_wechat(settings, signature, timestamp, nonce)
    return PlainTextResponse(echostr)


@citizens.post("/wechat", summary="WeChat Official Account messages (plain-text mode)")
async def wechat_message(request: Request, settings: Annotated[Settings, Depends(get_settings)],
                         signature: str, timestamp: str, nonce: str):
    from fastapi.responses import Response
    from wechatpy import create_reply, parse_message

    _check_wechat(settings, signature, timestamp, nonce)
    body = await request.body()
    try:
        msg = parse_message(body)
    except Exception:  # malformed XML from a client: a 400, never a 500
        raise HTTPException(400, "消息格式错误")
    sender = "wx-" + re.sub(r"[^\w\-]", "", str(msg.source))[:60]
    if msg.type == "event" and getattr(msg, "event", "") == "subscribe":
        text = "您好，欢迎关注办事通！请直接输入您要办的事，例如“结婚登记要带什么材料”。"
    elif msg.type != "text":
        text = WECHAT_ONLY_TEXT
    else:
        replies = await chat(ChatRequest(sender=sender, message=msg.content[:20000] or " "), request, settings)
        text = wechat_text(replies if isinstance(replies, list) else json.loads(replies.body))
    return Response(create_reply(text, msg).render(), media_type="application/xml")


# ---------- hotline ----------
hotline = APIRouter(tags=["hotline"], dependencies=[Depends(agent)])


@hotline.get("/api/search", response_model=SearchResponse, summary="Ranked passages (guides and policy clauses)")
def search(eng: Annotated[Engine, Depends(engine)],
           q: Annotated[str, Query(min_length=1, max_length=2000)],
           k: Annotated[int, Query(ge=1, le=50)] = 5,
           mode: Annotated[str, Query(pattern="^(hybrid|bm25|dense)$")] = "hybrid"):
    cur = eng.get()
    # One hit per guide: an agent wants different guides and clauses, not five sections of one.
    hits, seen = [], set()
    for h in cur.searcher.run(q, k=k * 6, mode=mode):
        key = h.passage.doc_id if h.passage.source_type == "guide" else h.passage.id
        if key not in seen:
            seen.add(key)
            hits.append(h)
    return SearchResponse(query=q, index_version=cur.version, hits=[to_hit(h) for h in hits[:k]])


@hotline.post("/api/answer", response_model=AnswerResponse, summary="A ready answer with its sources")
def answer(req: AnswerRequest, eng: Annotated[Engine, Depends(engine)]):
    a = eng.get().answerer.run(req.question, Context(), matter=req.matter)
    return AnswerResponse(kind=a.kind, text=a.text, matter=a.matter, qtype=a.qtype, confidence=a.confidence,
                          buttons=[b.__dict__ for b in a.buttons], sources=a.sources,
                          hits=[to_hit(h) for h in a.hits[:5]])


class HandoffOut(BaseModel):
    id: int
    sender: str
    reason: str
    matter: str | None
    status: str
    created_at: str
    summary: dict


@hotline.get("/api/handoffs", response_model=list[HandoffOut], summary="Conversations waiting for an agent")
def handoffs(settings: Annotated[Settings, Depends(get_settings)],
             status: Annotated[str, Query(pattern="^(waiting|taken|closed|all)$")] = "waiting"):
    from sqlalchemy import select

    with sessions(settings.database_url)() as s:
        q = select(Handoff).order_by(Handoff.created_at)
        if status != "all":
            q = q.where(Handoff.status == status)
        rows = s.scalars(q).all()
    return [HandoffOut(id=h.id, sender=h.sender, reason=h.reason, matter=h.matter, status=h.status,
                       created_at=h.created_at.isoformat(timespec="seconds"), summary=json.loads(h.summary))
            for h in rows]


class HandoffUpdate(BaseModel):
    status: str = Field(pattern="^(taken|closed)$")


@hotline.post("/api/handoffs/{handoff_id}", response_model=HandoffOut, summary="Take or close a hand-over")
def update_handoff(handoff_id: int, req: HandoffUpdate, settings: Annotated[Settings, Depends(get_settings)]):
    with sessions(settings.database_url)() as s:
        h = s.get(Handoff, handoff_id)
        if h is None:
            raise HTTPException(404, "没有这个转人工记录")
        h.status = req.status
        s.commit()
        return HandoffOut(id=h.id, sender=h.sender, reason=h.reason, matter=h.matter, status=h.status,
                          created_at=h.created_at.isoformat(timespec="seconds"), summary=json.loads(h.summary))


# ---------- admin ----------
admin_router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[Depends(admin)])


class ActivateRequest(BaseModel):
    version: str = Field(min_length=2, max_length=80, pattern=r"^v[\w\-]+$")


@admin_router.get("/versions")
def versions(settings: Annotated[Settings, Depends(get_settings)]):
    return {"current": idx.current_version(settings.index_dir), "versions": idx.list_versions(settings.index_dir)}


@admin_router.post("/activate", summary="Roll back or forward to a built version, without downtime")
def activate(req: ActivateRequest, request: Request, settings: Annotated[Settings, Depends(get_settings)],
             eng: Annotated[Engine, Depends(engine)]):
    try:
        eng.reload(req.version)  # load first: a broken version never becomes CURRENT
        idx.set_current(settings.index_dir, req.version)
    except FileNotFoundError:
        raise HTTPException(404, f"没有这个索引版本: {req.version}")
    except idx.IncompatibleIndex as exc:
        raise HTTPException(409, f"该索引版本由其他编码模型生成，不能启用（{exc}）")
    return {"current": req.version}


@admin_router.post("/reload", summary="Load the CURRENT version now")
def reload(eng: Annotated[Engine, Depends(engine)]):
    try:
        return {"current": eng.reload()}
    except idx.IncompatibleIndex as exc:
        raise HTTPException(409, f"当前索引由其他编码模型生成，仍使用原索引（{exc}）")


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
async def health(request: Request, settings: Annotated[Settings, Depends(get_settings)]):
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


app.include_router(citizens)
app.include_router(hotline)
app.include_router(admin_router)
