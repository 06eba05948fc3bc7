"""Citizens: the chat API (through the Rasa server) and the WeChat Official Account endpoint."""

from __future__ import annotations

import json
import logging
import re
from typing import Annotated

import httpx
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from assistant.answer import Answer, Context
from assistant.privacy import mask
from settings import Settings
from web.deps import SettingsDep, engine
from web.deps import chat_sender, current_citizen

log = logging.getLogger("banshitong.citizens")
router = APIRouter(tags=["citizens"])


class ChatRequest(BaseModel):
    sender: str = Field(min_length=1, max_length=64, pattern=r"^[\w\-.@:]+$")
    message: str = Field(max_length=20000)


def answer_messages(sender: str, a: Answer) -> list[dict]:
    """An Answer in the shape of Rasa's REST channel."""
    msg: dict = {"recipient_id": sender, "text": a.text}
    if a.buttons:
        msg["buttons"] = [{"title": b.title, "payload": b.payload} for b in a.buttons]
    return [msg]


EMPTY_REPLY = "您好，请输入您要咨询的问题，例如：“结婚登记要带什么材料？”“护照要多少钱？”"


@router.post("/api/chat", summary="Send a chat message; returns the bot's messages (Rasa REST shape)")
async def chat(req: ChatRequest, request: Request, settings: SettingsDep, response: Response = None):
    if not req.message.strip():
        # A client error, but answered in the chat's own shape so any client can show it.
        return JSONResponse([{"recipient_id": req.sender, "text": EMPTY_REPLY}], status_code=422)
    sender = chat_sender(request, response or Response(), req.sender).sender
    log.info("chat %s: %s", sender, mask(req.message[:200]))
    held = await run_in_threadpool(_to_agent, settings, sender, req.message)
    if held is not None:  # an agent holds this conversation: the bot stays silent
        return held
    try:
        r = await request.app.state.http.post(
            f"{settings.rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": req.message}
        )
        r.raise_for_status()
        messages = r.json()
        if isinstance(messages, list) and messages:
            return messages
        log.warning("rasa returned no messages for %s", sender)
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("rasa unavailable (%s); answering directly", type(exc).__name__)
    # Degraded mode: the dialogue server is down or silent; still answer the question itself.
    eng = engine(request)
    return answer_messages(sender, eng.get().answerer.run(req.message, Context()))


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


@router.get("/wechat", summary="WeChat Official Account server verification (echostr)")
def wechat_verify(settings: SettingsDep, signature: str, timestamp: str,
                  nonce: str, echostr: str):
    from fastapi.responses import PlainTextResponse

    _check_wechat(settings, signature, timestamp, nonce)
    return PlainTextResponse(echostr)


@router.post("/wechat", summary="WeChat Official Account messages (plain-text mode)")
async def wechat_message(request: Request, settings: SettingsDep,
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


# ---------------------------------------------------------------- hand-over to an agent (agent helper)

def _to_agent(settings: Settings, sender: str, text: str) -> list[dict] | None:
    """While an agent holds this citizen's conversation the message goes to the agent, not to Rasa.
    Returns the reply for the citizen (a notice the first time, then nothing) or None."""
    from assistant import handoffs
    from assistant.db import sessions

    with sessions(settings.database_url)() as s:
        h = handoffs.taken_for(s, sender)
        if h is None:
            return None
        notice = handoffs.from_citizen(s, h, text)
        s.commit()
    log.info("chat %s: to agent (hand-over %d)", sender, h.id)
    return [{"recipient_id": sender, "text": notice, "custom": {"handoff": "taken"}}] if notice else []


@router.get("/api/chat/updates", summary="Hand-over state and agent messages after a message id (polled)")
def chat_updates(request: Request, response: Response, settings: SettingsDep, after: Annotated[int, Query(ge=0)] = 0,
                 sender: Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[\w\-.@:]+$")] = None):
    """{"handoff": {"id","status","agent"} | null, "messages": [{"id","who","text","at"}]}. The web
    page's citizen comes from the session cookie; a trusted integration without one names its
    `sender` (it can only ever reach an api- conversation)."""
    from assistant import handoffs
    from assistant.db import sessions

    if sender is None:
        who = current_citizen(request, settings).sender  # 401 without a session
    else:
        who = chat_sender(request, response, sender).sender  # the cookie wins, as on /api/chat
    with sessions(settings.database_url)() as s:
        return handoffs.citizen_updates(s, who, after)
