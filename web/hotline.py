"""12345 hotline agents: the console page (/agent), search over guides and policy clauses, ready
answers, the agent's recent searches, and hand-overs (live queue, take, write, close)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from assistant import handoffs as ho
from assistant.answer import Context, region_note
from assistant.db import Handoff, StaffUser, sessions
from assistant.store import StoreUnavailable, shared_store
from assistant.understanding import strip_request_prefix
from embeddings.text import normalize, tokenize
from settings import Settings, get_settings
from web.deps import AgentDep, EngineDep, MessageText, PathId, SettingsDep, current_agent, rate_limit, staff_page

log = logging.getLogger("banshitong.hotline")
router = APIRouter(tags=["hotline"], dependencies=[Depends(current_agent)])
pages = APIRouter(include_in_schema=False)  # HTML: a login redirect instead of a 401
templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")


@pages.get("/agent", response_class=HTMLResponse)
def console_page(request: Request, user: Annotated[StaffUser, Depends(staff_page("agent"))]):
    return templates.TemplateResponse(request, "agent/console.html",
                                      {"user": user, "max_chars": get_settings().max_message_chars})


# ------------------------------------------------------------------ look-up

class SearchHit(BaseModel):
    id: str
    text: str
    title: str
    doc_number: str | None
    issuer: str | None
    date: str | None
    clause: str | None
    region: str
    region_note: str | None = Field(description="set when the rule is a district's or another county's, not the city's")
    source_type: str
    guide_id: str | None = Field(description="the guide behind a guide hit (its page is /guides/{guide_id})")
    reviewed: str | None = Field(description="review date of the guide")
    score: float
    confidence: float = Field(description="the Answerer's confidence for this hit alone, 0..1")
    relevance: str = Field(description="高 | 中 | 低, from `confidence` (see relevance_label)")
    terms: list[str] = Field(description="query words found in the title or text, longest first (to highlight)")
    snippet: str = Field(description="up to ~160 characters of the text around the first matched word")


class SearchResponse(BaseModel):
    query: str
    index_version: str
    hits: list[SearchHit]


class AnswerRequest(BaseModel):
    question: Annotated[MessageText, Field(min_length=1)]
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


# The bot answers from a hit only at or above settings.min_confidence, so 低 marks exactly the
# hits the bot itself would not answer from; 高 starts HIGH_MARGIN above that. Measured with
# `python -m bench.agent_lookup --calibrate` on bench/retrieval_set.jsonl (322 questions, 8 hits
# each): a 高 hit is the labelled target 51% of the time, a 中 hit 9%, a 低 hit 1% (most questions
# have one target among eight hits); for out-of-scope questions the top hit is 低 in 32 of 41.
HIGH_MARGIN = 0.2


def relevance_label(confidence: float, min_confidence: float) -> str:
    if confidence >= min_confidence + HIGH_MARGIN:
        return "高"
    return "中" if confidence >= min_confidence else "低"


def _snippet(text: str, terms: list[str], width: int = 160) -> str:
    pos = min((i for i in (text.find(t) for t in terms) if i >= 0), default=0)
    start = max(0, pos - 40)
    out = text[start:start + width]
    return ("…" if start else "") + out + ("…" if start + width < len(text) else "")


def to_hit(h, eng_loaded, query: str, settings: Settings) -> SearchHit:
    p = h.passage
    g = eng_loaded.answerer.guides.get(p.doc_id) if p.source_type == "guide" else None
    conf = eng_loaded.answerer.confidence([h], query)
    hay = normalize(f"{p.title} {p.text}").lower()
    terms = sorted({t for t in tokenize(query) if len(t) > 1 and t in hay} or
                   {t for t in tokenize(query) if t in hay}, key=lambda t: (-len(t), t))
    return SearchHit(id=p.id, text=p.text, title=p.title, doc_number=p.doc_number, issuer=p.issuer,
                     date=p.date, clause=p.clause, region=p.region, region_note=region_note(p.region) or None,
                     source_type=p.source_type, guide_id=g.id if g else None,
                     reviewed=g.reviewed.isoformat() if g and g.reviewed else None, score=round(h.score, 4),
                     confidence=conf, relevance=relevance_label(conf, settings.min_confidence),
                     terms=terms[:12], snippet=_snippet(p.text, terms))


@router.get("/api/search", response_model=SearchResponse, summary="Ranked passages (guides and policy clauses)",
            dependencies=[Depends(rate_limit("search", "search_per_minute"))])
def search(eng: EngineDep, settings: SettingsDep,
           q: Annotated[MessageText, Query(min_length=1)],
           k: Annotated[int, Query(ge=1, le=50)] = 5,
           mode: Annotated[str, Query(pattern="^(hybrid|bm25|dense)$")] = "hybrid"):
    cur = eng.get()
    text = strip_request_prefix(normalize(q)) or q  # "来电人咨询护照办理材料" searches "护照办理材料"
    # One hit per guide: an agent wants different guides and clauses, not five sections of one.
    hits, seen = [], set()
    for h in cur.searcher.run(text, k=k * 6, mode=mode):
        key = h.passage.doc_id if h.passage.source_type == "guide" else h.passage.id
        if key not in seen:
            seen.add(key)
            hits.append(h)
    return SearchResponse(query=q, index_version=cur.version,
                          hits=[to_hit(h, cur, text, settings) for h in hits[:k]])


@router.post("/api/answer", response_model=AnswerResponse, summary="A ready answer with its sources")
def answer(req: AnswerRequest, eng: EngineDep, settings: SettingsDep):
    cur = eng.get()
    a = cur.answerer.run(req.question, Context(), matter=req.matter)
    return AnswerResponse(kind=a.kind, text=a.text, matter=a.matter, qtype=a.qtype, confidence=a.confidence,
                          buttons=[b.__dict__ for b in a.buttons], sources=a.sources,
                          hits=[to_hit(h, cur, req.question, settings) for h in a.hits[:5]])


# ------------------------------------------------------------------ recent searches (per agent)

RECENT_KEEP = 12


class RecentIn(BaseModel):
    q: str = Field(min_length=1, max_length=200)


def _recent_key(user: StaffUser) -> str:
    return f"agent:recent:{user.id}"


def _recent(settings: Settings, user: StaffUser) -> list[str]:
    try:
        raw = shared_store(settings).get(_recent_key(user))
    except StoreUnavailable:
        raise HTTPException(503, "暂时无法读取最近查询，请稍后再试")
    try:
        items = json.loads(raw) if raw else []
    except ValueError:
        items = []
    return [x for x in items if isinstance(x, str)]


@router.get("/api/agent/recent", summary="This agent's recent searches, newest first")
def recent(user: AgentDep, settings: SettingsDep) -> list[str]:
    return _recent(settings, user)


@router.post("/api/agent/recent", summary="Remember a search the agent settled on")
def remember(req: RecentIn, user: AgentDep, settings: SettingsDep) -> list[str]:
    q = req.q.strip()
    if not q:
        raise HTTPException(422, "查询词不能为空")
    items = _recent(settings, user)
    # Typing "护照" then "护照材料" is one search, not two: a query that extends the newest one replaces it.
    if items and (q.startswith(items[0]) or items[0].startswith(q)):
        items.pop(0)
    items = [q] + [x for x in items if x != q]
    try:
        shared_store(settings).set(_recent_key(user), json.dumps(items[:RECENT_KEEP], ensure_ascii=False))
    except StoreUnavailable:
        raise HTTPException(503, "暂时无法保存最近查询，请稍后再试")
    return items[:RECENT_KEEP]


# ------------------------------------------------------------------ hand-overs

class HandoffOut(BaseModel):
    id: int
    sender: str
    reason: str
    matter: str | None
    matter_name: str | None = None
    status: str
    created_at: str
    taken_at: str | None
    closed_at: str | None
    agent_id: int | None
    agent: str | None
    outcome: str | None
    summary: dict
    last_message_id: int


class MessageOut(BaseModel):
    id: int | None  # None for the turns before the hand-over (from the bot's summary)
    who: str
    text: str
    at: str | None
    author: str | None


class ConversationOut(HandoffOut):
    messages: list[MessageOut]


class ReplyIn(BaseModel):
    text: Annotated[MessageText, Field(min_length=1)]


class CloseIn(BaseModel):
    outcome: str = Field(default="已解答", max_length=500)


def _db(settings: Settings):
    return sessions(settings.database_url)()


def _named(request: Request, items):
    """Adds the guide name of each hand-over's matter (the action stores the guide id)."""
    eng = request.app.state.engine
    guides = eng.get().answerer.guides if eng is not None else {}
    for it in items if isinstance(items, list) else [items]:
        g = guides.get(it.get("matter") or "")
        it["matter_name"] = g.name if g else None
    return items


def _fail(exc: ho.HandoffError):
    raise HTTPException(exc.status, str(exc))


def _commit(s, change):
    """Runs one hand-over change (take, reply, close) and commits it; a refused change is rolled
    back and answered with its HTTP error (409 taken by someone else, 404 …)."""
    try:
        out = change()
    except ho.HandoffError as exc:
        s.rollback()
        _fail(exc)
    s.commit()
    return out


@router.get("/api/handoffs", response_model=list[HandoffOut], summary="Hand-overs (default: waiting for an agent)")
def handoffs(request: Request, settings: SettingsDep, user: AgentDep,
             status: Annotated[str, Query(pattern="^(waiting|taken|closed|all)$")] = "waiting"):
    with _db(settings) as s:
        return _named(request, ho.listing(s, status))


def _snapshot(request: Request, settings: Settings, user: StaffUser) -> str:
    with _db(settings) as s:
        return json.dumps(_named(request, ho.queue(s, user)), ensure_ascii=False, sort_keys=True)


@router.get("/api/handoffs/stream", summary="Server-sent events: the agent's queue whenever it changes")
async def handoff_stream(request: Request, settings: SettingsDep, user: AgentDep):
    """`event: queue` with every waiting hand-over and the ones this agent holds (each with its
    last message id, so the console refetches an open conversation when it grows)."""
    async def events():
        yield "retry: 2000\n\n"
        last, quiet = None, 0.0
        while not await request.is_disconnected():
            snap = await run_in_threadpool(_snapshot, request, settings, user)
            if snap != last:
                last, quiet = snap, 0.0
                yield f"event: queue\ndata: {snap}\n\n"
            elif quiet >= 15:
                quiet = 0.0
                yield ": keep-alive\n\n"  # proxies close idle connections
            await asyncio.sleep(1.0)
            quiet += 1.0

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/api/handoffs/{handoff_id}", response_model=ConversationOut,
            summary="One hand-over with its whole conversation (bot, citizen and agent turns)")
def handoff_detail(handoff_id: PathId, request: Request, settings: SettingsDep, user: AgentDep):
    with _db(settings) as s:
        try:
            return _named(request, ho.conversation(s, handoff_id))
        except ho.HandoffError as exc:
            _fail(exc)


@router.post("/api/handoffs/{handoff_id}/take", response_model=ConversationOut,
             summary="Take a waiting hand-over: the bot stays silent for that citizen until it is closed")
async def take(handoff_id: PathId, request: Request, settings: SettingsDep, user: AgentDep):
    def run():
        with _db(settings) as s:
            h = _commit(s, lambda: ho.take(s, handoff_id, user))
            return _named(request, ho.conversation(s, h.id)), h.sender

    out, sender = await run_in_threadpool(run)
    await _tell_wechat(settings, sender, f"人工客服{user.display_name}正在为您服务，请直接回复文字与我们沟通。")
    return out


@router.post("/api/handoffs/{handoff_id}/messages", response_model=MessageOut,
             summary="Write to the citizen (their chat page, or WeChat 客服消息)")
async def reply(handoff_id: PathId, req: ReplyIn, settings: SettingsDep, user: AgentDep):
    text = req.text.strip()
    if not text:
        raise HTTPException(422, "消息不能为空")

    def run():
        with _db(settings) as s:
            m = _commit(s, lambda: ho.reply(s, handoff_id, user, text))
            return {"id": m.id, "who": m.who, "text": m.text, "at": ho.iso(m.created_at),
                    "author": user.display_name}, s.get(Handoff, handoff_id).sender

    out, sender = await run_in_threadpool(run)
    if not await _tell_wechat(settings, sender, text):
        raise HTTPException(502, "消息已保存，但发送到微信失败，请稍后重试或电话联系")
    return out


@router.post("/api/handoffs/{handoff_id}/close", response_model=ConversationOut,
             summary="Close: the bot answers that citizen again; the outcome is recorded")
async def close(handoff_id: PathId, request: Request, settings: SettingsDep, user: AgentDep, req: CloseIn | None = None):
    outcome = (req.outcome if req else "").strip() or "已解答"

    def run():
        with _db(settings) as s:
            h = _commit(s, lambda: ho.close(s, handoff_id, user, outcome))
            return _named(request, ho.conversation(s, h.id)), h.sender

    out, sender = await run_in_threadpool(run)
    await _tell_wechat(settings, sender, ho.CLOSED_NOTICE)
    return out


async def _tell_wechat(settings: Settings, sender: str, text: str) -> bool:
    """WeChat users get agent messages through the 客服消息 API; web citizens poll
    /api/chat/updates. Returns False when a WeChat send failed."""
    if not sender.startswith("wx-"):
        return True
    try:
        from assistant.wechat import send_text  # the citizen helper's module
    except ImportError:
        log.error("assistant.wechat.send_text is not available; WeChat message not sent")
        return False
    try:
        await run_in_threadpool(send_text, settings, sender.removeprefix("wx-"), text)
        return True
    except Exception as exc:  # the WeChat API or the network: tell the agent, keep the message
        log.warning("WeChat send to %s failed: %s", sender[:8], type(exc).__name__)
        return False
