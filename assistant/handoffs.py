"""Hand-overs to a 12345 agent (转人工): the queue, taking a conversation, writing to the citizen,
closing it again. The Rasa action `action_handoff` queues a conversation (status "waiting"); an
agent takes it ("taken": the bot stays silent for that citizen, see `taken_for`) and closes it
("closed": the bot answers again). Every turn while taken is a HandoffMessage, so the whole
conversation — the bot's summary turns, the citizen's and the agent's messages — stays readable.

All functions work in the caller's SQLAlchemy session and transaction; the caller commits.
"""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from assistant import audit
from assistant.db import Handoff, HandoffMessage, StaffUser, utcnow

# Sent once, for the citizen's first message after an agent took the conversation.
TAKEN_NOTICE = "（已转人工，工作人员正在处理您的问题，请稍候）"
CLOSED_NOTICE = "人工服务已结束，感谢您的耐心。如还有问题，可以继续向我提问。"
MAX_TEXT = 20000  # a storage backstop: every channel bounds a message at its edge (settings.max_message_chars)


class HandoffError(Exception):
    """A hand-over action that cannot be done; `str(exc)` is the Chinese message for the agent."""

    status = 409


class NotFound(HandoffError):
    status = 404


class Conflict(HandoffError):
    status = 409


def taken_for(session: Session, sender: str) -> Handoff | None:
    """The hand-over an agent currently holds for this citizen, if any: while it exists the bot
    does not answer that citizen."""
    return session.scalars(select(Handoff).where(Handoff.sender == sender, Handoff.status == "taken")
                           .order_by(Handoff.id.desc()).limit(1)).first()


def add_message(session: Session, handoff_id: int, who: str, text: str, author: str | None = None) -> HandoffMessage:
    if who not in ("citizen", "bot", "agent"):
        raise ValueError(f"unknown speaker {who!r}")
    msg = HandoffMessage(handoff_id=handoff_id, who=who, author=author, text=text[:MAX_TEXT])
    session.add(msg)
    session.flush()  # the id is the client's cursor for /api/chat/updates
    return msg


def from_citizen(session: Session, h: Handoff, text: str) -> str | None:
    """Stores a citizen's message to the agent holding the conversation. Returns the notice the
    citizen gets instead of a bot answer — only for the first message, later ones stay silent."""
    first = session.scalar(select(func.count()).select_from(HandoffMessage)
                           .where(HandoffMessage.handoff_id == h.id, HandoffMessage.who == "citizen")) == 0
    add_message(session, h.id, "citizen", text)
    if not first:
        return None
    add_message(session, h.id, "bot", TAKEN_NOTICE)
    return TAKEN_NOTICE


def _get(session: Session, handoff_id: int) -> Handoff:
    h = session.get(Handoff, handoff_id)
    if h is None:
        raise NotFound("没有这个转人工记录")
    return h


def take(session: Session, handoff_id: int, agent: StaffUser) -> Handoff:
    """Assigns a waiting hand-over to `agent`. The conditional UPDATE is the lock: when two agents
    take at the same moment exactly one row update succeeds, on SQLite and PostgreSQL alike."""
    now = utcnow()
    done = session.execute(update(Handoff).where(Handoff.id == handoff_id, Handoff.status == "waiting")
                           .values(status="taken", agent_id=agent.id, taken_at=now)
                           .execution_options(synchronize_session=False)).rowcount
    if not done:
        h = _get(session, handoff_id)
        if h.status == "taken":
            holder = session.get(StaffUser, h.agent_id) if h.agent_id else None
            raise Conflict(f"该会话已由{holder.display_name if holder else '其他坐席'}接入")
        raise Conflict("该会话已结束，不能再接入")
    h = _get(session, handoff_id)
    session.refresh(h)
    # The same citizen may have asked for a person twice: the other waiting entries are this one.
    for other in session.scalars(select(Handoff).where(Handoff.sender == h.sender, Handoff.status == "waiting",
                                                       Handoff.id != h.id)):
        other.status, other.closed_at, other.outcome = "closed", now, f"并入 #{h.id}"
    audit.record(session, agent.username, "handoff.take", f"handoff:{h.id}", {"sender": h.sender})
    return h


def _held_by(session: Session, handoff_id: int, agent: StaffUser) -> Handoff:
    h = _get(session, handoff_id)
    if h.status != "taken":
        raise Conflict("该会话未被接入或已结束" if h.status == "waiting" else "该会话已结束")
    if h.agent_id != agent.id and agent.role != "admin":
        raise Conflict("该会话由其他坐席接入，您不能操作")
    return h


def reply(session: Session, handoff_id: int, agent: StaffUser, text: str) -> HandoffMessage:
    h = _held_by(session, handoff_id, agent)
    msg = add_message(session, h.id, "agent", text, author=agent.username)
    audit.record(session, agent.username, "handoff.reply", f"handoff:{h.id}", {"message_id": msg.id})
    return msg


def close(session: Session, handoff_id: int, agent: StaffUser, outcome: str) -> Handoff:
    h = _held_by(session, handoff_id, agent)
    h.status, h.closed_at, h.outcome = "closed", utcnow(), outcome[:500]
    add_message(session, h.id, "bot", CLOSED_NOTICE)
    audit.record(session, agent.username, "handoff.close", f"handoff:{h.id}", {"outcome": h.outcome})
    return h


# ------------------------------------------------------------------ reading

def iso(t: dt.datetime | None) -> str | None:
    """A stored (naive UTC) time as ISO 8601 with Z, so browsers compute waiting times right."""
    return t.isoformat(timespec="seconds") + "Z" if t else None  # stored as naive UTC


def _agent_names(session: Session, ids) -> dict[int, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(session.execute(select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(ids))).all())


def describe(session: Session, handoffs: list[Handoff]) -> list[dict]:
    """Hand-overs as the console shows them: reason, matter, summary, who holds it, last message."""
    names = _agent_names(session, [h.agent_id for h in handoffs])
    last = dict(session.execute(select(HandoffMessage.handoff_id, func.max(HandoffMessage.id))
                                .where(HandoffMessage.handoff_id.in_([h.id for h in handoffs] or [0]))
                                .group_by(HandoffMessage.handoff_id)).all())
    out = []
    for h in handoffs:
        try:
            summary = json.loads(h.summary or "{}")
        except ValueError:
            summary = {}
        out.append({"id": h.id, "sender": h.sender, "reason": h.reason, "matter": h.matter, "status": h.status,
                    "created_at": iso(h.created_at), "taken_at": iso(h.taken_at), "closed_at": iso(h.closed_at),
                    "agent_id": h.agent_id, "agent": names.get(h.agent_id), "outcome": h.outcome,
                    "summary": summary, "last_message_id": last.get(h.id, 0)})
    return out


def queue(session: Session, agent: StaffUser) -> list[dict]:
    """What an agent's console lists: every waiting hand-over and the ones this agent holds."""
    rows = session.scalars(select(Handoff).where(or_(Handoff.status == "waiting",
                                                     (Handoff.status == "taken") & (Handoff.agent_id == agent.id)))
                           .order_by(Handoff.created_at, Handoff.id)).all()
    return describe(session, list(rows))


def listing(session: Session, status: str = "waiting", limit: int = 200) -> list[dict]:
    q = select(Handoff).order_by(Handoff.created_at.desc(), Handoff.id.desc()).limit(limit)
    if status != "all":
        q = q.where(Handoff.status == status)
    return describe(session, list(reversed(session.scalars(q).all())))


def _display_names(session: Session, msgs) -> dict[str, str]:
    authors = {m.author for m in msgs if m.author}
    if not authors:
        return {}
    return dict(session.execute(select(StaffUser.username, StaffUser.display_name)
                                .where(StaffUser.username.in_(authors))).all())


def _message(m: HandoffMessage, names: dict[str, str] | None = None) -> dict:
    return {"id": m.id, "who": m.who, "text": m.text, "at": iso(m.created_at),
            "author": (names or {}).get(m.author or "", m.author) if m.who == "agent" else None}


def conversation(session: Session, handoff_id: int) -> dict:
    """One hand-over with its whole conversation: the turns before it (from the bot's summary)
    and every message since an agent took it."""
    h = _get(session, handoff_id)
    out = describe(session, [h])[0]
    before = [{"id": None, "who": "citizen" if t.get("who") == "user" else "bot", "text": t.get("text", ""),
               "at": None, "author": None} for t in out["summary"].get("turns", [])]
    msgs = session.scalars(select(HandoffMessage).where(HandoffMessage.handoff_id == h.id)
                           .order_by(HandoffMessage.id)).all()
    names = _display_names(session, msgs)
    out["messages"] = before + [_message(m, names) for m in msgs]
    return out


def citizen_updates(session: Session, sender: str, after: int = 0) -> dict:
    """What the citizen's chat page polls: the hand-over state and the messages after `after`."""
    h = session.scalars(select(Handoff).where(Handoff.sender == sender, Handoff.status != "waiting")
                        .order_by(Handoff.id.desc()).limit(1)).first()
    waiting = session.scalars(select(Handoff).where(Handoff.sender == sender, Handoff.status == "waiting")
                              .order_by(Handoff.id.desc()).limit(1)).first()
    current = h if h is not None and h.status == "taken" else (waiting or h)
    state = None
    if current is not None:
        agent = _agent_names(session, [current.agent_id]).get(current.agent_id) if current.status == "taken" else None
        state = {"id": current.id, "status": current.status, "agent": agent}
    ids = select(Handoff.id).where(Handoff.sender == sender)
    msgs = session.scalars(select(HandoffMessage).where(HandoffMessage.handoff_id.in_(ids), HandoffMessage.id > after)
                           .order_by(HandoffMessage.id).limit(200)).all()
    return {"handoff": state, "messages": [_message(m, _display_names(session, msgs)) for m in msgs]}
