"""Citizens: the chat API (through the Rasa server) and the WeChat Official Account endpoint."""

from __future__ import annotations

import json
import logging
import re

import httpx
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from assistant.answer import Answer, Context
from assistant.privacy import mask
from settings import Settings
from web.deps import SettingsDep, backends_available, chat_sender, engine, rate_limit

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


SERVICE_BUSY = "服务暂时不可用，请稍后再试。您的消息没有丢失，可以稍后重新发送；急事请拨打12345政务服务热线。"
EMPTY_REPLY = "您好，请输入您要咨询的问题，例如：“结婚登记要带什么材料？”“护照要多少钱？”"


@router.post("/api/chat", summary="Send a chat message; returns the bot's messages (Rasa REST shape)",
             dependencies=[Depends(backends_available), Depends(rate_limit("chat", "chat_per_minute"))])
async def chat(req: ChatRequest, request: Request, response: Response, settings: SettingsDep):
    # The session cookie's web citizen, else `api-<sender>`: a client never picks a web-/wx- identity.
    req = req.model_copy(update={"sender": chat_sender(request, response, req.sender).sender})
    return await converse(req, request, settings)


async def converse(req: ChatRequest, request: Request, settings: SettingsDep):
    """One message from an already-identified sender (web-/api-/wx-) through Rasa."""
    if not req.message.strip():
        # A client error, but answered in the chat's own shape so any client can show it.
        return JSONResponse([{"recipient_id": req.sender, "text": EMPTY_REPLY}], status_code=422)
    log.info("chat %s: %s", req.sender, mask(req.message[:200]))
    try:
        r = await request.app.state.http.post(
            f"{settings.rasa_url}/webhooks/rest/webhook", json={"sender": req.sender, "message": req.message}
        )
        if r.status_code >= 500:
            # Rasa (or the proxy in front of its replicas) is up but failing, e.g. its tracker or lock
            # store is unreachable: the conversation's state is unknown, so answering without it could
            # be wrong (a booking half-way). Say so instead.
            log.warning("rasa answered %s for %s", r.status_code, req.sender)
            raise HTTPException(503, SERVICE_BUSY)
        r.raise_for_status()
        messages = r.json()
        if isinstance(messages, list) and messages:
            return messages
        log.warning("rasa returned no messages for %s", req.sender)
    except (httpx.TransportError, httpx.HTTPStatusError, ValueError) as exc:
        log.warning("rasa unavailable (%s); answering directly", type(exc).__name__)
    # Degraded mode: the dialogue server cannot be reached (one machine, Rasa restarting) or is
    # silent; still answer the question itself, without the conversation's context.
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

    if not settings.wechat_token:  # no default token: nobody can sign with a known word
        raise HTTPException(503, "微信公众号接入未配置（请设置 BST_WECHAT_TOKEN）")
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
        replies = await converse(ChatRequest(sender=sender, message=msg.content[:20000] or " "), request, settings)
        text = wechat_text(replies if isinstance(replies, list) else json.loads(replies.body))
    return Response(create_reply(text, msg).render(), media_type="application/xml")
