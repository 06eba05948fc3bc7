"""Chat turns and feedback: what each citizen asked, what the bot replied, and the citizen's 👍/👎.

    turn_id = record_turn(session, sender, channel, question, messages, matter, index_version)
    give_feedback(session, sender, turn_id, vote, reason)   # only the sender's own turns

The admin pages read these tables (assistant/db.py ChatTurn, Feedback). Questions are stored masked
(assistant.privacy.mask): a chat log is no place for a full phone or ID number.
"""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from assistant.answer import HOTLINE
from assistant.db import ChatTurn, Feedback
from assistant.privacy import mask

SOURCE_GUIDE = re.compile(r"办事指南《([^》]+)》")
_BOOKING = ("预约号", "为您预约", "预约哪一天", "请选择时段", "确认”完成预约", "本次预约", "办事人的姓名", "手机号码")


def reply_text(messages: list[dict]) -> str:
    return "\n".join(m.get("text") or "" for m in messages if m.get("text"))


def kind_of(messages: list[dict]) -> str:
    """What kind of reply the bot gave, judged by what the citizen saw."""
    text = reply_text(messages)
    if "转接人工" in text or "转人工处理" in text or "已转人工" in text:
        return "handoff"
    if "抱歉" in text and HOTLINE in text and "来源" not in text:
        return "refused"
    if any(k in text for k in _BOOKING):
        return "booking"
    if "来源：" in text or "依据" in text:
        return "answered"
    return "smalltalk"


def guide_named(text: str) -> str | None:
    """The guide name an answer cites ("来源：办事指南《…》")."""
    m = SOURCE_GUIDE.search(text or "")
    return m.group(1) if m else None


def record_turn(session: Session, sender: str, channel: str, question: str, messages: list[dict],
                matter: str | None = None, index_version: str | None = None, kind: str | None = None) -> int:
    turn = ChatTurn(sender=sender, channel=channel, question=mask(question)[:4000],
                    answer=mask(reply_text(messages))[:8000], kind=kind or kind_of(messages),
                    matter=matter, index_version=index_version)
    session.add(turn)
    session.flush()
    return turn.id


class FeedbackError(ValueError):
    """A feedback request that cannot be stored (the message is Chinese, for the citizen)."""


def give_feedback(session: Session, sender: str, turn_id: int, vote: int, reason: str | None = None) -> Feedback:
    turn = session.get(ChatTurn, turn_id)
    if turn is None or turn.sender != sender:  # someone else's turn looks the same as a missing one
        raise FeedbackError("找不到这条回答")
    if vote not in (1, -1):
        raise FeedbackError("评价只能是 1 或 -1")
    existing = session.query(Feedback).filter_by(sender=sender, turn_id=turn_id).order_by(Feedback.id.desc()).first()
    fb = existing or Feedback(sender=sender, turn_id=turn_id)
    # The citizen may change their mind (👍 then 👎 with a reason): one row per answer, the latest vote;
    # a 👎 without a reason keeps the reason already given for that 👎.
    fb.question, fb.answer, fb.index_version = turn.question, turn.answer, turn.index_version
    if reason and reason.strip():
        fb.reason = mask(reason.strip())[:1000]
    elif existing is None or existing.vote != vote:
        fb.reason = None
    fb.vote = vote
    session.add(fb)
    session.flush()
    return fb
