"""The WeChat Official Account, as WeChat speaks it (wechatpy does the protocol).

* replies: WeChat shows a text message of at most 2048 UTF-8 bytes (passive reply and 客服消息
  alike), so `split_reply` cuts long answers at line breaks into parts under that many bytes;
* buttons become numbered options ("回复数字选择"); `remember_options` keeps the payloads per user
  in the shared store and `chosen_payload` maps a reply "2" back to the second payload;
* `send_text(settings, openid, text)` sends a 客服消息 (answers that were not ready within WeChat's
  5 seconds, the rest of a long answer, an agent's reply) through wechatpy's WeChatClient at
  `settings.wechat_api_base`, with the access token cached in the shared store for every replica;
* `dedup_key(msg)`: WeChat retries a message up to three times; MsgId (events: FromUserName +
  CreateTime) names it, and the caller claims the key before processing.
"""

from __future__ import annotations

import json
import logging
import re

from wechatpy import WeChatClient
from wechatpy.session import SessionStorage

from assistant.privacy import mask
from assistant.store import shared_store

log = logging.getLogger("banshitong.wechat")

MAX_BYTES = 2048  # WeChat's limit for one text message (passive reply or 客服消息)
MAX_CUSTOM_MESSAGES = 5  # WeChat allows 5 客服消息 per user message (48 hours)
SEEN_TTL = 600  # WeChat retries within ~15 s; keep keys long enough for any replica's retry
OPTIONS_TTL = 3600

WELCOME = ("您好，欢迎关注办事通！我可以告诉您在厦门办事要带哪些材料、能否全城通办、怎么预约、要多久、收多少钱。"
           "请直接输入您要办的事，例如“结婚登记要带什么材料”。")
UNSUPPORTED = "目前只支持文字消息，请直接输入您要咨询的问题，例如“护照要多少钱”。"
# Custom menu (自定义菜单) click events: EventKey → what the citizen would have typed or pressed.
MENU = {
    "BOOK": "/book_appointment",
    "MY_BOOKING": "/query_appointment",
    "CANCEL_BOOKING": "/cancel_appointment",
    "HANDOFF": "/human_handoff",
    "HELLO": "/greet",
}
MENU_UNKNOWN = "该菜单暂不可用，请直接输入您要咨询的问题。"


def split_reply(text: str, limit: int | None = None) -> list[str]:
    """Parts of at most `limit` (default MAX_BYTES) UTF-8 bytes, cut at line breaks where possible."""
    limit = limit or MAX_BYTES
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate.encode()) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        # A single line longer than the limit: cut it by characters, counting bytes.
        while len(line.encode()) > limit:
            cut, size = 0, 0
            for ch in line:
                size += len(ch.encode())
                if size > limit:
                    break
                cut += 1
            parts.append(line[:cut])
            line = line[cut:]
        current = line
    if current or not parts:
        parts.append(current)
    return parts


def options_text(messages: list[dict]) -> tuple[str, list[str]]:
    """Rasa messages as one text; their buttons as numbered options. Returns (text, payloads)."""
    parts, titles, payloads = [], [], []
    for m in messages:
        if m.get("text"):
            parts.append(m["text"])
        for b in m.get("buttons") or []:
            if b.get("title") and b["title"] not in titles:
                titles.append(b["title"])
                payloads.append(b.get("payload") or b["title"])
    if titles:
        parts.append("请回复数字选择：\n" + "\n".join(f"{i}. {t}" for i, t in enumerate(titles, 1)))
    return "\n".join(parts), payloads


_NUMBER = re.compile(r"^\s*([0-9０-９]{1,2})\s*[.。、)）]?\s*$")


def _options_key(openid: str) -> str:
    return f"wx:opts:{openid}"


def remember_options(settings, openid: str, payloads: list[str]) -> None:
    store = shared_store(settings)
    store.set(_options_key(openid), json.dumps(payloads, ensure_ascii=False) if payloads else "[]", OPTIONS_TTL)


def chosen_payload(settings, openid: str, text: str) -> str | None:
    """The payload of the numbered option the user answered with, if the text is such a number."""
    m = _NUMBER.match(text)
    if not m:
        return None
    n = int(m.group(1).translate(str.maketrans("０１２３４５６７８９", "0123456789")))
    raw = shared_store(settings).get(_options_key(openid))
    payloads = json.loads(raw) if raw else []
    return payloads[n - 1] if 1 <= n <= len(payloads) else None


def dedup_key(msg) -> str:
    if getattr(msg, "id", None):
        return f"wx:msg:{msg.id}"
    # WeChat names an event by FromUserName + CreateTime; the event type and key are added so a
    # subscribe and a menu click in the same second stay two events.
    created = int(msg.create_time.timestamp()) if hasattr(msg.create_time, "timestamp") else msg.create_time
    return f"wx:evt:{msg.source}:{created}:{getattr(msg, 'event', '')}:{getattr(msg, 'key', '') or ''}"


# ---------------------------------------------------------------- 客服消息 API

class StoreSession(SessionStorage):
    """wechatpy's token storage on the shared store: one access token for every replica."""

    def __init__(self, settings):
        self.store = shared_store(settings)

    def get(self, key, default=None):
        value = self.store.get(f"wx:session:{key}")
        return default if value is None else json.loads(value)

    def set(self, key, value, ttl=None):
        self.store.set(f"wx:session:{key}", json.dumps(value), ttl)

    def delete(self, key):
        self.store.set(f"wx:session:{key}", "null", 1)


class Client(WeChatClient):
    """WeChatClient whose every URL, the token's included, starts at `api_base`."""

    def __init__(self, settings):
        self.API_BASE_URL = settings.wechat_api_base.rstrip("/") + "/"
        super().__init__(settings.wechat_app_id, settings.wechat_app_secret, session=StoreSession(settings), timeout=10)

    def fetch_access_token(self):
        return self._fetch_access_token(
            url=self.API_BASE_URL + "token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


def send_text(settings, openid: str, text: str) -> None:
    """Sends `text` to a follower as 客服消息, split under WeChat's byte limit. Raises on API errors."""
    if not (settings.wechat_app_id and settings.wechat_app_secret):
        raise RuntimeError("未配置 wechat_app_id / wechat_app_secret，无法发送客服消息")
    client = Client(settings)
    for part in split_reply(text)[:MAX_CUSTOM_MESSAGES]:
        client.message.send_text(openid, part)
    log.info("客服消息 sent to %s: %s", openid[:8], mask(text[:80]))
