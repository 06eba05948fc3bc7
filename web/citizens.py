"""Citizens: the chat page and its API (through the Rasa server), the guide pages, and the WeChat
Official Account endpoint.

    GET  /                  chat page (issues the citizen session cookie)
    POST /api/chat          one message → the bot's messages (Rasa REST shape + turn_id, guide_id)
    POST /api/session/new   「新对话」: a fresh session, so the conversation starts over
    POST /api/feedback      👍/👎 on one of the caller's own answers
    GET  /guides, /guides/{id}   办事指南 pages
    GET/POST /wechat        WeChat (plain or safe mode, retries, 5-second rule, 客服消息)
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from pathlib import Path
from typing import Annotated, Literal

import httpx
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from assistant import conversations, handoffs, wechat
from assistant.answer import Answer, Context
from assistant.db import sessions
from assistant.privacy import mask
from assistant.store import StoreUnavailable, shared_store
from settings import Settings, get_settings
from web import guide_view
from assistant import bookings as bk
from web.deps import (MAX_ID, TOO_MANY, MessageText, SettingsDep, backends_available, channel_of, chat_sender, citizen_of,
                      current_citizen, engine, ensure_citizen, new_citizen, over_limit, rate_limit, too_long)


log = logging.getLogger("banshitong.citizens")
router = APIRouter(tags=["citizens"])
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))


# An integration's sender becomes `api-<sender>` (64 characters stored): a longer one is refused,
# never cut, so two different senders can never share one conversation.
SENDER_MAX = 60


class ChatRequest(BaseModel):
    sender: str = Field(min_length=1, max_length=SENDER_MAX, pattern=r"^[\w\-.@:]+$")
    message: MessageText


def answer_messages(sender: str, a: Answer) -> list[dict]:
    """An Answer in the shape of Rasa's REST channel, with what it is (`reply`)."""
    msg: dict = {"recipient_id": sender, "text": a.text, "reply": a.payload()}
    if a.buttons:
        msg["buttons"] = [{"title": b.title, "payload": b.payload} for b in a.buttons]
    return [msg]


EMPTY_REPLY = "您好，请输入您要咨询的问题，例如：“结婚登记要带什么材料？”“护照要多少钱？”"
SERVICE_BUSY = "服务暂时不可用，请稍后再试。您的消息没有丢失，可以稍后重新发送；急事请拨打12345政务服务热线。"
WECHAT_LIMITED = "您发送得太快了，请稍等一分钟再发。"


async def _ask_rasa(request: Request, settings: Settings, sender: str, message: str) -> list[dict]:
    try:
        r = await request.app.state.http.post(
            f"{settings.rasa_url}/webhooks/banshitong/webhook", json={"sender": sender, "message": message},
            headers={"Authorization": f"Bearer {settings.rasa_token}"},  # bot/channels.py
        )
        if r.status_code >= 500:
            # Rasa (or the proxy in front of its replicas) is up but failing, e.g. its tracker or lock
            # store is unreachable: the conversation's state is unknown, so answering without it could
            # be wrong (a booking half-way). Say so instead.
            log.warning("rasa answered %s for %s", r.status_code, sender)
            raise HTTPException(503, SERVICE_BUSY)
        r.raise_for_status()
        messages = r.json()
        if isinstance(messages, list) and messages:
            return messages
        log.warning("rasa returned no messages for %s", sender)
    except (httpx.TransportError, httpx.HTTPStatusError, ValueError) as exc:
        log.warning("rasa unavailable (%s); answering directly", type(exc).__name__)
    # Degraded mode: the dialogue server cannot be reached (one machine, Rasa restarting) or is
    # silent; still answer the question itself, without the conversation's context.
    eng = engine(request)
    return answer_messages(sender, eng.get().answerer.run(message, Context()))


def _to_agent(settings: Settings, sender: str, message: str) -> list[dict] | None:
    """While an agent holds the conversation the bot stays silent: the message goes to the agent.
    The citizen gets a notice the first time, then nothing (the agent's replies arrive by polling)."""
    with sessions(settings.database_url)() as s:
        h = handoffs.taken_for(s, sender)
        if h is None:
            return None
        notice = handoffs.from_citizen(s, h, message)  # bounded at the channel's edge
        s.commit()
    return [{"recipient_id": sender, "text": notice, "custom": {"handoff": "taken"}}] if notice else []


async def converse(request: Request, settings: Settings, sender: str, message: str) -> list[dict]:
    """One citizen message, from any channel: to the agent holding the conversation, or to the bot.
    Records the turn and marks each message with its turn id and the guide it cites."""
    log.info("chat %s: %s", sender, mask(message[:200]))
    to_agent = _to_agent(settings, sender, message)
    messages = to_agent if to_agent is not None else await _ask_rasa(request, settings, sender, message)
    messages = conversations.fold_replies(messages)
    matter = next((m["guide_id"] for m in messages if m.get("guide_id")), None)
    eng = request.app.state.engine
    with sessions(settings.database_url)() as s:
        turn_id = conversations.record_turn(
            s, sender, channel_of(sender), message, messages, matter=matter,
            index_version=eng.current.version if eng else None, kind="agent" if to_agent is not None else None)
        s.commit()
    for m in messages:
        m["turn_id"] = turn_id
    return messages


@router.post("/api/chat", summary="Send a chat message; returns the bot's messages (Rasa REST shape)",
             dependencies=[Depends(backends_available), Depends(rate_limit("chat", "chat_per_minute"))])
async def chat(req: ChatRequest, request: Request, response: Response, settings: SettingsDep):
    # The session cookie's web citizen, else `api-<sender>`: a client never picks a web-/wx- identity.
    citizen = chat_sender(request, response, req.sender)
    # A web citizen's sender is its conversation's key at Rasa: the page gets the non-secret
    # session key instead, an integration the `api-` name it chose.
    recipient = session_key(citizen.sender) if citizen.channel == "web" else citizen.sender
    if not req.message.strip():
        # A client error, but answered in the chat's own shape so any client can show it.
        return JSONResponse([{"recipient_id": recipient, "text": EMPTY_REPLY}], status_code=422)
    if bk.parse_lookup(req.message) and over_limit(request, "booking", "booking_lookup_per_minute"):
        # "查预约 <code> <last4>" guesses digits as /api/bookings/{code} does: the same limit, shared.
        raise HTTPException(429, TOO_MANY, headers={"Retry-After": "60"})
    messages = await converse(request, settings, citizen.sender, req.message)
    for m in messages:
        m["recipient_id"] = recipient
    return messages


def session_key(sender: str) -> str:
    """A non-secret name for the session the page may use (the cookie itself is HttpOnly)."""
    return hashlib.sha256(sender.encode()).hexdigest()[:16]


@router.post("/api/session/new", summary="「新对话」: a fresh citizen session (the conversation starts over)")
def session_new(response: Response):
    return {"session": session_key(new_citizen(response).sender)}


class FeedbackRequest(BaseModel):
    turn_id: int = Field(ge=1, le=MAX_ID)
    vote: Literal[1, -1]
    reason: str | None = Field(default=None, max_length=500)


@router.post("/api/feedback", summary="👍/👎 on one of the caller's own answers")
def feedback(req: FeedbackRequest, request: Request, settings: SettingsDep):
    citizen = citizen_of(request)
    if citizen is None:
        raise HTTPException(403, "请先在对话页面提问")
    with sessions(settings.database_url)() as s:
        try:
            fb = conversations.give_feedback(s, citizen.sender, req.turn_id, req.vote, req.reason)
        except conversations.FeedbackError as exc:
            raise HTTPException(404, str(exc))
        s.commit()
        return {"id": fb.id, "vote": fb.vote}


# ---------------------------------------------------------------- pages

@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def chat_page(request: Request, response: Response):
    citizen = ensure_citizen(request, response)
    page = templates.TemplateResponse(request, "citizen/chat.html", {"session": session_key(citizen.sender),
                                                                     "max_chars": get_settings().max_message_chars})
    page.headers.update({k: v for k, v in response.headers.items() if k == "set-cookie"})
    page.headers["Cache-Control"] = "no-store"
    return page


@router.get("/guides", response_class=HTMLResponse, include_in_schema=False)
def guides_page(request: Request):
    guides = list(engine(request).get().answerer.guides.values())
    return templates.TemplateResponse(request, "citizen/guides.html", {"categories": guide_view.by_category(guides)})


@router.get("/guides/{guide_id}", response_class=HTMLResponse, include_in_schema=False)
def guide_page(guide_id: str, request: Request):
    g = engine(request).get().answerer.guides.get(guide_id)
    if g is None:
        return templates.TemplateResponse(request, "citizen/404.html", {}, status_code=404)
    return templates.TemplateResponse(request, "citizen/guide.html", {"g": guide_view.view(g)})


# ---------------------------------------------------------------- WeChat Official Account

def _check_wechat(settings: Settings, signature: str, timestamp: str, nonce: str) -> None:
    from wechatpy.exceptions import InvalidSignatureException
    from wechatpy.utils import check_signature

    if not settings.wechat_token:  # no default token: nobody can sign with a known word
        raise HTTPException(503, "微信公众号接入未配置（请设置 BST_WECHAT_TOKEN）")
    try:
        check_signature(settings.wechat_token, signature, timestamp, nonce)
    except InvalidSignatureException:
        raise HTTPException(403, "签名校验失败")
    # A signature never expires by itself: a message recorded once could be sent again for ever.
    # WeChat signs with the current time, so an old (or far future) timestamp is a replay.
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > settings.wechat_max_age_seconds:
        raise HTTPException(403, "消息时间戳已过期（可能是重放的请求）")


@router.get("/wechat", summary="WeChat Official Account server verification (echostr)")
def wechat_verify(settings: SettingsDep, signature: str, timestamp: str, nonce: str, echostr: str):
    _check_wechat(settings, signature, timestamp, nonce)
    return PlainTextResponse(echostr)


_pushes: set[asyncio.Future] = set()  # keeps background 客服消息 sends alive until done


def _push(settings: Settings, openid: str, text: str) -> None:
    """Sends `text` as 客服消息 in the background; failures are logged (the user can ask again)."""
    def send() -> None:
        try:
            wechat.send_text(settings, openid, text)
        except Exception as exc:  # network, token or quota problems must not crash the app
            log.warning("客服消息 to %s failed: %s", openid[:8], exc)

    fut = asyncio.get_running_loop().run_in_executor(None, send)
    _pushes.add(fut)
    fut.add_done_callback(_pushes.discard)


def _wechat_input(settings: Settings, msg) -> tuple[str | None, str | None]:
    """(message for the bot, or a fixed reply) for any WeChat message or event."""
    if msg.type == "event":
        event = getattr(msg, "event", "")
        if event == "subscribe":
            return None, wechat.WELCOME
        if event == "click":
            payload = wechat.MENU.get(getattr(msg, "key", "") or "")
            return (payload, None) if payload else (None, wechat.MENU_UNKNOWN)
        return None, ""  # unsubscribe, view, location…: nothing to say
    if msg.type != "text":
        return None, wechat.UNSUPPORTED
    content = (msg.content or "").strip()
    if not content:
        return None, EMPTY_REPLY
    if (refusal := too_long(content)) is not None:
        return None, refusal
    return wechat.chosen_payload(settings, msg.source, content) or content, None


async def _wechat_answer(request: Request, settings: Settings, msg, message: str) -> str:
    sender = "wx-" + re.sub(r"[^\w\-]", "", str(msg.source))[:60]
    messages = await converse(request, settings, sender, message)
    text, payloads = wechat.options_text(messages)
    wechat.remember_options(settings, msg.source, payloads)
    return text


async def wechat_reply(request: Request, settings: Settings, msg) -> str:
    """The passive reply to one WeChat message ("" = reply `success`, i.e. nothing now)."""
    store = shared_store(settings)
    key = wechat.dedup_key(msg)
    if not store.claim(key, wechat.SEEN_TTL):
        # A retry: WeChat did not get (or did not wait for) the first attempt's reply. Never process it
        # twice; hand back the first attempt's reply once it exists, else stay quiet (it went as 客服消息).
        deadline = time.monotonic() + settings.wechat_reply_timeout
        while time.monotonic() < deadline:
            done = store.get(key + ":reply")
            if done is not None:
                return done
            await asyncio.sleep(0.1)
        return ""
    message, fixed = _wechat_input(settings, msg)
    # WeChat retries anything but a proper reply: a limited user gets a short text, never a 429.
    if message is not None and (
            over_limit(request, "wechat", "wechat_per_minute", key=f"wx:{msg.source}")
            or bk.parse_lookup(message) and over_limit(request, "booking", "booking_lookup_per_minute",
                                                       key=f"wx:{msg.source}")):
        message, fixed = None, WECHAT_LIMITED
    if message is None:
        store.set(key + ":reply", fixed or "", wechat.SEEN_TTL)
        return fixed or ""
    task = asyncio.ensure_future(_wechat_answer(request, settings, msg, message))
    try:
        text = await asyncio.wait_for(asyncio.shield(task), settings.wechat_reply_timeout)
    except asyncio.TimeoutError:
        # WeChat stops waiting at 5 s: reply `success` now, the answer follows as 客服消息.
        store.set(key + ":reply", "", wechat.SEEN_TTL)

        def later(t: asyncio.Task) -> None:
            if not t.cancelled() and t.exception() is None and t.result():
                _push(settings, msg.source, t.result())
            elif not t.cancelled() and t.exception() is not None:
                log.warning("WeChat answer failed: %r", t.exception())

        _pushes.add(task)
        task.add_done_callback(_pushes.discard)
        task.add_done_callback(later)
        return ""
    parts = wechat.split_reply(text) if text else [""]
    if len(parts) > 1:  # one passive reply per message: the rest follows as 客服消息
        _push(settings, msg.source, "\n".join(parts[1:]))
    store.set(key + ":reply", parts[0], wechat.SEEN_TTL)
    return parts[0]


@router.post("/wechat", summary="WeChat Official Account messages (plain or safe mode)")
async def wechat_message(request: Request, settings: SettingsDep, signature: str, timestamp: str, nonce: str,
                         encrypt_type: str | None = None, msg_signature: str | None = None):
    from wechatpy import create_reply, parse_message
    from wechatpy.crypto import WeChatCrypto

    _check_wechat(settings, signature, timestamp, nonce)
    body = await request.body()
    crypto = None
    if settings.wechat_encoding_aes_key:  # safe mode: configured, so plaintext is refused
        if encrypt_type != "aes" or not msg_signature:
            raise HTTPException(400, "本公众号使用安全模式，消息须加密")
        crypto = WeChatCrypto(settings.wechat_token, settings.wechat_encoding_aes_key, settings.wechat_app_id)
        try:
            body = crypto.decrypt_message(body, msg_signature, timestamp, nonce)
        except Exception:  # bad signature, wrong app id, malformed ciphertext: the client's fault
            raise HTTPException(403, "消息解密或签名校验失败")
    try:
        msg = parse_message(body)
        msg.create_time  # wechatpy converts fields when read: CreateTime "abc" would fail later, as a 500
    except Exception:  # malformed XML from a client: a 400, never a 500
        raise HTTPException(400, "消息格式错误")
    try:
        text = await wechat_reply(request, settings, msg)
    except StoreUnavailable:
        raise HTTPException(503, "服务暂时不可用，请稍后再试")
    if not text:
        return PlainTextResponse("success")
    xml = create_reply(text, msg).render()
    if crypto is not None:
        xml = crypto.encrypt_message(xml, nonce, timestamp)
    return Response(xml, media_type="application/xml")


@router.get("/api/chat/updates", summary="Hand-over state and agent messages after a message id (polled)")
def chat_updates(request: Request, response: Response, settings: SettingsDep, after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
                 sender: Annotated[str | None, Query(min_length=1, max_length=SENDER_MAX, pattern=r"^[\w\-.@:]+$")] = None):
    """{"handoff": {"id","status","agent"} | null, "messages": [{"id","who","text","at"}]}. The web
    page's citizen comes from the session cookie; a trusted integration without one names its
    `sender` (it can only ever reach an api- conversation)."""
    if sender is None:
        who = current_citizen(request, settings).sender  # 401 without a session
    else:
        who = chat_sender(request, response, sender).sender  # the cookie wins, as on /api/chat
    with sessions(settings.database_url)() as s:
        return handoffs.citizen_updates(s, who, after)
