"""Chat turns and feedback: what each citizen asked, what the bot replied, and the citizen's 👍/👎.

    turn_id = record_turn(session, sender, channel, question, messages, matter, index_version)
    give_feedback(session, sender, turn_id, vote, reason)   # only the sender's own turns

The admin pages read these tables (assistant/db.py ChatTurn, Feedback). Questions are stored masked
(assistant.privacy.mask): a chat log is no place for a full phone or ID number.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from assistant.db import ChatTurn, Feedback
from assistant.privacy import mask

# What a reply was, for the admin statistics, from the reply's own data (Answer.payload()).
_STATS_KIND = {"guide": "answered", "policy": "answered", "clarify": "answered", "materials_check": "answered",
               "fallback": "refused", "unknown": "refused", "empty": "refused", "handoff": "handoff",
               "booking": "booking", "smalltalk": "smalltalk"}


def reply_text(messages: list[dict]) -> str:
    return "\n".join(m.get("text") or "" for m in messages if m.get("text"))


def fold_replies(messages: list[dict]) -> list[dict]:
    """Rasa sends an action's custom payload as a message of its own; each `{"custom": {"reply": …}}`
    is folded into the text message before it (`reply`, and `guide_id` for the chat page's link)."""
    out: list[dict] = []
    for m in messages:
        reply = (m.get("custom") or {}).get("reply") if isinstance(m.get("custom"), dict) else None
        if reply is not None and not m.get("text"):
            if out and "reply" not in out[-1]:
                out[-1]["reply"] = reply
            continue
        out.append(m)
    for m in out:
        if (m.get("reply") or {}).get("matter") and m["reply"].get("kind") in ("guide", "materials_check"):
            m["guide_id"] = m["reply"]["matter"]
    return out


def kind_of(messages: list[dict]) -> str:
    """What kind of reply the bot gave, from the replies' data; a form's question carries none."""
    kinds = [_STATS_KIND.get((m.get("reply") or {}).get("kind"), "smalltalk") for m in messages if m.get("reply")]
    for k in ("handoff", "answered", "booking", "refused", "smalltalk"):
        if k in kinds:
            return k
    return "booking" if messages else "smalltalk"


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
