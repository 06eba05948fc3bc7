"""What every action needs: the live engine, the message's one Reading, the conversation's state,
and sending an Answer with its data. Actions are thin adapters over assistant/."""

from __future__ import annotations

import logging
from functools import lru_cache

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from assistant import bookings as bk
from assistant.answer import Answer
from assistant.db import upgrade
from assistant.dialogue import State
from assistant.engine import Engine
from assistant.privacy import install_log_masking
from assistant.understanding import Reading
from settings import get_settings

log = logging.getLogger("banshitong.actions")
install_log_masking()

BOOKING_SLOTS = ["booking_centre", "booking_date", "booking_slot", "booking_name", "booking_phone", "booking_confirmed"]

_engine: Engine | None = None


def engine() -> Engine:
    global _engine
    if _engine is None:
        _engine = Engine(get_settings())
    return _engine


def answerer():
    return engine().get().answerer


@lru_cache
def book() -> bk.BookingBook:
    s = get_settings()
    upgrade(s.database_url)  # idempotent; the app does the same on start
    return bk.BookingBook(s.database_url, s.slot_capacity, s.walk_in_share, s.booking_days, tuple(s.closed_dates))


def latest(tracker: Tracker) -> dict:
    return tracker.latest_message or {}


def text_of(tracker: Tracker) -> str:
    text = latest(tracker).get("text") or ""
    return "" if text.startswith("/") else text


def intent_of(tracker: Tracker) -> str | None:
    return (latest(tracker).get("intent") or {}).get("name")


def confidence_of(tracker: Tracker) -> float:
    return float((latest(tracker).get("intent") or {}).get("confidence") or 0.0)


def reading(tracker: Tracker) -> Reading:
    """The message's Reading. Several actions run per message (slot extraction, the form, the
    answer); the live index's reader caches by text, so the message is read once."""
    return answerer().read(text_of(tracker))


def form_active(tracker: Tracker) -> bool:
    return (tracker.active_loop or {}).get("name") == "booking_form"


def booking_paused(tracker: Tracker) -> bool:
    return bool(tracker.get_slot("booking_paused"))


def left_form_now(tracker: Tracker) -> bool:
    """The form was left in this turn (a rule deactivated it before the dialogue runs)."""
    for e in reversed(tracker.events):
        if e.get("event") == "user":
            return False
        if e.get("event") == "active_loop" and e.get("name") is None:
            return True
    return False


def has_booking(tracker: Tracker) -> bool:
    """A booking is under way: the form runs or was left in this turn, or it paused with answers kept."""
    return form_active(tracker) or left_form_now(tracker) or booking_paused(tracker) or \
        any(tracker.get_slot(s) is not None for s in BOOKING_SLOTS[:-1])


def state(tracker: Tracker) -> State:
    return State(matter=tracker.get_slot("matter"), qtype=tracker.get_slot("qtype"),
                 topics=tuple(tracker.get_slot("topics") or ()), misses=int(tracker.get_slot("low_confidence") or 0),
                 booking=form_active(tracker) or has_booking(tracker), form_active=form_active(tracker))


def matter_named(tracker: Tracker) -> str | None:
    """The guide id the latest message names: a button's entity, else the Reading's first matter."""
    a = answerer()
    for ent in latest(tracker).get("entities") or []:
        if ent.get("entity") == "matter":
            value = str(ent.get("value", ""))
            if value in a.guides:
                return value
            found = a.read(value).matters
            if found:
                return found[0]
    r = reading(tracker)
    return r.matters[0] if r.matters and not r.invented else None


def matter_to_book(tracker: Tracker) -> str | None:
    """A matter (not a service centre or rule) the latest message names: what a booking is for."""
    gid = matter_named(tracker)
    g = answerer().guides.get(gid or "")
    return gid if g is not None and g.kind == "matter" else None


def send(dispatcher: CollectingDispatcher, a: Answer, extra_buttons: list[dict] | None = None) -> None:
    """The answer's text and buttons, and what it is as data (Rasa's custom payload; the app folds it
    into the message before it: `reply`)."""
    buttons = [{"title": b.title, "payload": b.payload} for b in a.buttons] + (extra_buttons or [])
    dispatcher.utter_message(text=a.text, buttons=buttons)
    dispatcher.utter_message(json_message={"reply": a.payload()})


def mark(dispatcher: CollectingDispatcher, kind: str, **data) -> None:
    """What the message just sent is, for replies that are not answers (hand-over, booking steps, small talk)."""
    dispatcher.utter_message(json_message={"reply": {"kind": kind, "matter": data.pop("matter", None), **data}})
