"""The application database: bookings (预约), hand-overs to a person (转人工) and their messages,
staff accounts and sessions, citizen web sessions, the audit log, chat turns and feedback, and a
small key-value table that backs the shared store when no Redis is configured.

SQLite by default (settings.database_url); PostgreSQL when several replicas share state. The
schema is managed by Alembic (assistant/migrations); `python -m assistant.db upgrade` applies it and
the app runs the same on start.
"""

from __future__ import annotations

import datetime as dt
import sys
from functools import lru_cache
from pathlib import Path

from sqlalchemy import (Boolean, Date, DateTime, ForeignKey, Integer, SmallInteger, String, Text, UniqueConstraint,
                        create_engine, event)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Booking(Base):
    __tablename__ = "bookings"
    # `place` numbers the bookable places of one centre/date/slot; the unique constraint makes
    # over-booking impossible even when two replicas book the last place at the same moment.
    __table_args__ = (UniqueConstraint("centre", "date", "slot", "place", name="uq_booking_place"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True, index=True)
    sender: Mapped[str] = mapped_column(String(64), index=True)
    matter: Mapped[str | None] = mapped_column(String(80))
    centre: Mapped[str] = mapped_column(String(40))
    date: Mapped[dt.date] = mapped_column(Date)
    slot: Mapped[str] = mapped_column(String(20))
    place: Mapped[int | None] = mapped_column(Integer)  # NULL once cancelled, freeing the place
    name: Mapped[str] = mapped_column(String(40))
    phone: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(12), default="booked")  # booked | cancelled
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Handoff(Base):
    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sender: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(String(40))
    matter: Mapped[str | None] = mapped_column(String(80))
    summary: Mapped[str] = mapped_column(Text)  # JSON: the user's questions and the bot's answers
    status: Mapped[str] = mapped_column(String(12), default="waiting")  # waiting | taken | closed
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # While an agent holds the conversation (status "taken") the bot does not answer that citizen.
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    taken_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    outcome: Mapped[str | None] = mapped_column(Text)


class HandoffMessage(Base):
    """One turn of a handed-over conversation: the citizen's, the bot's or the agent's."""

    __tablename__ = "handoff_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    handoff_id: Mapped[int] = mapped_column(ForeignKey("handoffs.id"), index=True)
    who: Mapped[str] = mapped_column(String(8))  # citizen | bot | agent
    author: Mapped[str | None] = mapped_column(String(40))  # the agent's username
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class StaffUser(Base):
    """A 12345 agent or an admin. Passwords are stored as argon2 hashes only."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    display_name: Mapped[str] = mapped_column(String(40))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(12))  # agent | admin
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class StaffSession(Base):
    """A logged-in staff browser. Only the token's SHA-256 is stored, so a database leak logs nobody in."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)


class CitizenSession(Base):
    """A web citizen: the server issues the token (HttpOnly cookie) and the Rasa sender id behind it."""

    __tablename__ = "citizen_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    sender: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AuditEntry(Base):
    """Who changed what, when: every staff action that changes state."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(40))  # staff username (or "system")
    action: Mapped[str] = mapped_column(String(40))  # e.g. handoff.take, guide.save, index.publish
    target: Mapped[str] = mapped_column(String(120))
    detail: Mapped[str | None] = mapped_column(Text)  # JSON


class ChatTurn(Base):
    """One citizen message and what the bot replied: the admin overview and feedback read these."""

    __tablename__ = "chat_turns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sender: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(8))  # web | api | wx
    question: Mapped[str] = mapped_column(Text)  # masked (assistant.privacy.mask)
    answer: Mapped[str] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(String(16))  # answered | refused | handoff | agent | ...
    matter: Mapped[str | None] = mapped_column(String(80))
    index_version: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)


class Feedback(Base):
    """👍/👎 on one answer, with the question, the answer and the index version that produced it."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sender: Mapped[str] = mapped_column(String(64), index=True)
    turn_id: Mapped[int | None] = mapped_column(ForeignKey("chat_turns.id"))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    index_version: Mapped[str | None] = mapped_column(String(80))
    vote: Mapped[int] = mapped_column(SmallInteger)  # +1 | -1
    reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="new")  # new | done
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)


class KeyValue(Base):
    """Backs assistant.store.SharedStore when no Redis is configured (one database, all replicas)."""

    __tablename__ = "kv"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)


@lru_cache
def engine_for(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        eng = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(eng, "connect")
        def _sqlite_pragmas(conn, _):  # WAL: readers never block the writer; two processes share it
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")

        return eng
    return create_engine(url, pool_pre_ping=True)


def sessions(url: str) -> sessionmaker:
    return sessionmaker(engine_for(url), expire_on_commit=False)


def upgrade(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    with engine_for(url).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


if __name__ == "__main__":
    from settings import get_settings

    if sys.argv[1:] != ["upgrade"]:
        print("usage: python -m assistant.db upgrade", file=sys.stderr)
        sys.exit(2)
    upgrade(get_settings().database_url)
    print("database schema up to date")


# ---------- admin: knowledge with history, golden questions, candidate index builds (0003) ----------
class KnowledgeRevision(Base):
    """One saved state of a guide (YAML text) or a policy document (raw text + registry entry).

    Never updated: every save, restore or import that changes something adds the next number, so
    the history is the table itself and any two rows can be compared.
    """

    __tablename__ = "knowledge_revisions"
    __table_args__ = (UniqueConstraint("kind", "key", "number", name="uq_knowledge_revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))  # guide | document
    key: Mapped[str] = mapped_column(String(120), index=True)  # guide id | source file name
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per (kind, key)
    content: Mapped[str] = mapped_column(Text)  # the file exactly as exported
    meta: Mapped[str | None] = mapped_column(Text)  # JSON: a document's documents.yaml entry
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    author: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class GoldenQuestion(Base):
    """A question admins added to the checks every candidate index must pass (like knowledge/checks.jsonl)."""

    __tablename__ = "golden_questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    turns: Mapped[str] = mapped_column(Text)  # JSON list of user messages
    must: Mapped[str] = mapped_column(Text)  # JSON list of groups of alternatives
    must_not: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    note: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class IndexBuild(Base):
    """A candidate index built from the current revisions, its golden-question report and its publication."""

    __tablename__ = "index_builds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(12))  # running | done | failed | cancelled
    version: Mapped[str | None] = mapped_column(String(80))
    live_version: Mapped[str | None] = mapped_column(String(80))  # what it was compared with
    revisions: Mapped[str] = mapped_column(Text)  # JSON {"guide/<id>": number, ...}
    report: Mapped[str | None] = mapped_column(Text)  # JSON, see assistant.publishing
    error: Mapped[str | None] = mapped_column(Text)
    started_by: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    published_by: Mapped[str | None] = mapped_column(String(40))
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    override_reason: Mapped[str | None] = mapped_column(Text)
