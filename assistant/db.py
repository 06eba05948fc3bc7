"""The application database: bookings (预约) and hand-overs to a person (转人工).

SQLite by default (settings.database_url); PostgreSQL when several replicas share state. The
schema is managed by Alembic (assistant/migrations); `python -m assistant.db upgrade` applies it and
the app runs the same on start.
"""

from __future__ import annotations

import datetime as dt
import sys
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Date, DateTime, Integer, String, Text, UniqueConstraint, create_engine, event
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
