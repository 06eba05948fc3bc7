"""The booking form's understanding, pure and tested: which booking answers a message gives, which
it corrects, and what a correction takes back. The Rasa form (actions/booking.py) calls these from
its `extract_`/`validate_` methods; nothing here knows about Rasa.

Slots, in the order the form asks them: centre → date → time slot → name → phone → confirmation.
A new centre or date takes back the time slot (it was only checked as free for the old ones); any
change takes back the confirmation, so the citizen sees the new summary before booking.
"""

from __future__ import annotations

import datetime as dt
import re

from assistant import bookings as bk
from assistant.understanding import Correction

SLOTS = ("booking_centre", "booking_date", "booking_slot", "booking_name", "booking_phone", "booking_confirmed")
DEPENDS = {"booking_centre": ("booking_slot",), "booking_date": ("booking_slot",)}
INVALID = "?"  # prefix of an answer that was given but not understood
UNREADABLE = "?!"  # prefix of a date the parser failed on (logged)


def values(text: str, today: dt.date | None = None) -> dict[str, str]:
    """Booking details a text names: centre, date, time slot, phone."""
    today = today or dt.date.today()
    found: dict[str, str] = {}
    if c := bk.parse_centre(text):
        found["booking_centre"] = c
    try:
        if d := bk.parse_date(text, today):
            found["booking_date"] = d.isoformat()
    except bk.DateUnreadable:
        found["booking_date"] = UNREADABLE + text
    if sl := bk.parse_slot(text):
        found["booking_slot"] = sl
    if p := bk.parse_phone(text):
        found["booking_phone"] = p
    return found


def correction_of(text: str, today: dt.date | None = None) -> Correction:
    """"电话打错了 是139…" → (booking_phone, 139…); "选错了 我要去海沧的" → (booking_centre, 海沧区);
    "时间不对" → (booking_date, None); a bare "不对" → (None, None)."""
    # What it is not is no value: "不是思明 是集美区", "是林志强不是林志祥".
    text = re.sub(r"不是[^\s，,。是]*", " ", text)
    # The new value follows the last "改成 / 应该是 / 是": "下周二要上班 改成下周四吧" means 下周四.
    cut = [m.end() for m in re.finditer(r"改成|改为|改到|换成|换到|应该是|其实是|是|要去|去", text)]
    found = values(text[cut[-1]:], today) if cut else {}
    found = {**values(text, today), **found}
    named = bk.parse_correction(text)  # the fields the words point at ("电话", "时间")
    if "booking_name" in named and (n := _name_in(text)):
        return Correction("booking_name", n)
    for slot in [*named, *SLOTS]:
        if slot in found and not found[slot].startswith(INVALID):
            return Correction(slot, found[slot])
    if named:
        return Correction(named[0], None)
    return Correction(None, None)


def _name_in(text: str) -> str | None:
    m = re.search(r"(?:是|叫|改成|改为|应该是)\s*([\u4e00-\u9fa5·]{2,5})(?:[，,。！!\s]|$)", text)
    return m.group(1) if m else None


def changes(c: Correction, filled: dict[str, object], requested: str | None) -> dict[str, object]:
    """The slot updates a correction makes, given what the form holds: the new value (or None to
    ask again), what depends on it, and the confirmation. A bare "不对" takes back the answer given
    last (the one before the question now open)."""
    slot = c.slot
    if slot is None:
        answered = [s for s in SLOTS[:-1] if filled.get(s) is not None]
        if requested in SLOTS:
            answered = [s for s in answered if SLOTS.index(s) < SLOTS.index(requested)] or answered
        if not answered:
            return {}
        slot = answered[-1]
    if slot == "matter":
        return {"matter": c.value, "booking_confirmed": None} if c.value else {}
    out: dict[str, object] = {slot: c.value}
    for dep in DEPENDS.get(slot, ()):
        if c.value is None or filled.get(dep) is not None:
            out[dep] = None
    out["booking_confirmed"] = None
    return out


def reopened(updates: dict[str, object]) -> str | None:
    """The first answer a correction takes back without a new value: the form asks it next."""
    return next((s for s in SLOTS if s in updates and updates[s] is None and s != "booking_confirmed"), None)
