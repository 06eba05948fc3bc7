"""预约办事: understanding a citizen's answers (centre, date, slot, name, phone) and the booking book.

Rules that matter to users:
* only open days (China's working-day calendar; weekends and public holidays closed), from
  tomorrow up to `booking_days` ahead; a past or closed date is refused with open dates offered;
* each centre/date/slot has `slot_capacity` places, of which a `walk_in_share` is never offered
  for booking: 厦府办〔2018〕138号 三、(十二) forbids using bookings to refuse on-site numbers;
* a booking holds a numbered place, unique per centre/date/slot, so no two replicas can over-book.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from assistant.db import Booking, sessions, utcnow
from assistant.understanding import DISTRICTS

log = logging.getLogger("banshitong.bookings")

SLOTS = ("09:00-10:00", "10:00-11:00", "11:00-12:00", "14:00-15:00", "15:00-16:00", "16:00-17:00")
CENTRES = {"市级": "厦门市行政服务中心", **{d: f"{d}行政服务中心" for d in DISTRICTS.values()}}
WEEKDAYS = "一二三四五六日"
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L to misread over the phone

PHONE = re.compile(r"(?<!\d)(1[3-9]\d{9})(?!\d)")
_DAY_WORDS = re.compile(r"[天日号周月]|星期|礼拜|今|明|昨|\d{4}[-/年.]|\d{1,2}[/-]\d{1,2}")
_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}


class DateUnreadable(ValueError):
    """The date parser failed on a text (logged); the citizen is told, not silently ignored."""


class CalendarMissing(LookupError):
    """The holiday calendar does not cover a day, so whether the centre is open is unknown."""


def parse_centre(text: str) -> str | None:
    if re.search(r"市行政服务中心|市民中心|市级|市中心|市里", text):
        return "市级"
    return next((district for key, district in DISTRICTS.items() if key in text), None)


DATE_WINDOW = 120  # characters read at each end of a long message


def parse_date(text: str, today: dt.date) -> dt.date | None:
    """Chinese dates (明天, 下周三, 12月3号, 2026年12月3日) with jionlp; None when there is none."""
    import jionlp as jio  # loads its dictionaries on first use

    if len(text) > 2 * DATE_WINDOW:  # jionlp's time is linear in the text: a date is said at its start or end
        text = text[:DATE_WINDOW] + "。" + text[-DATE_WINDOW:]
    base = time.mktime(dt.datetime.combine(today, dt.time(9)).timetuple())
    try:
        found = jio.ner.extract_time(text, time_base=base, with_parsing=True)
    except Exception as e:  # jionlp raises on some odd inputs: say so rather than "no date"
        log.warning("date parser failed on %r: %s", text[:50], e)
        raise DateUnreadable(text) from e
    for item in found:
        detail = item.get("detail") or {}
        if detail.get("type") != "time_point":
            continue
        said = item.get("text", "")
        if not _DAY_WORDS.search(said):
            continue  # "上午10点" names a time of day, not a date: jionlp would read it as today
        day = dt.date.fromisoformat(detail["time"][0][:10])
        if day < today and re.fullmatch(r"(周|星期|礼拜)[一二三四五六日天]", said):
            day += dt.timedelta(days=7)  # "周五" said on a Sunday means the coming Friday
        elif day < today and re.fullmatch(r"\d{1,2}[号日]", said):
            day = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=day.day)  # "3号" = next month's
        return day
    return None


def parse_slot(text: str) -> str | None:
    """A time slot from "9点", "下午两点", "14:00", "10:00-11:00", or "上午"/"下午" (first of the period)."""
    for s in SLOTS:
        if s in text:
            return s
    m = re.search(r"(\d{1,2}|[一二两三四五六七八九十]{1,2})\s*(?:点|:|：|时)", text)
    if m:
        raw = m.group(1)
        hour = int(raw) if raw.isdigit() else (10 + _CN_DIGITS.get(raw[-1], 0) if raw.startswith("十") and len(raw) == 2 else _CN_DIGITS.get(raw, 0))
        if re.search(r"下午|午后|晚", text) and hour < 12:
            hour += 12
        for s in SLOTS:
            if int(s[:2]) == hour:
                return s
    if "上午" in text or "早上" in text:
        return "morning"
    if "下午" in text:
        return "afternoon"
    return None


def parse_phone(text: str) -> str | None:
    m = PHONE.search(re.sub(r"[\s\-]", "", text))
    return m.group(1) if m else None


def parse_name(text: str) -> str | None:
    m = re.search(r"(?:我叫|名字是|名字叫|姓名是?|叫)\s*[:：]?\s*([\u4e00-\u9fa5·]{2,6})", text)
    if m:
        return m.group(1)
    bare = text.strip()
    return bare if re.fullmatch(r"[\u4e00-\u9fa5·]{2,5}", bare) else None


# "时间不对", "改一下服务中心", "手机号填错了": which answers a correction takes back. Changing the
# centre or the day also takes back the time slot, which was only checked as free for the old ones.
_CORRECTION_VERB = re.compile(r"改|换|不对|错|重新|修正|更正|变更")
_CORRECTION_FIELDS = (
    (re.compile(r"中心|地点|地方|服务点|区"), ("booking_centre", "booking_slot")),
    (re.compile(r"日期|日子|哪天|那天|天|星期|周|礼拜|时间"), ("booking_date", "booking_slot")),
    (re.compile(r"时段|几点|钟点|上午|下午|点钟"), ("booking_slot",)),
    (re.compile(r"名字|姓名|名"), ("booking_name",)),
    (re.compile(r"手机|电话|号码"), ("booking_phone",)),
)


def parse_correction(text: str) -> list[str]:
    """The booking answers a message asks to change, without giving the new value ("时间不对",
    "我想换个中心", "名字写错了"); [] when it is not such a request."""
    text = text.replace("没错", "")  # "没错" confirms
    if not _CORRECTION_VERB.search(text):
        return []
    slots: list[str] = []
    for pattern, fields in _CORRECTION_FIELDS:
        if pattern.search(text):
            slots.extend(f for f in fields if f not in slots)
    return slots


_BOOKING_CODE = re.compile(r"(?<![A-Za-z0-9])([A-Za-z2-9]{8})(?![A-Za-z0-9])")
_LAST4 = re.compile(r"(?<!\d)(\d{4})(?!\d)")


def named_codes(text: str) -> list[str]:
    """Booking codes a message names ("取消预约 K7M3QX2P"), upper-cased: eight characters of the
    code alphabet, not all digits."""
    return [c.upper() for c in _BOOKING_CODE.findall(text or "")
            if all(ch in _CODE_ALPHABET for ch in c.upper()) and not c.isdigit()]


def parse_lookup(text: str) -> tuple[str, str] | None:
    """A booking code and the phone number's last four digits, as someone asking from another
    channel gives them ("预约号 K7M3QX2P，手机尾号 5678"); None unless both are there. Every channel's
    edge counts such a message against settings.booking_lookup_per_minute, as the HTTP look-up."""
    code = next(iter(named_codes(text)), None)
    rest = _BOOKING_CODE.sub(" ", text)
    last4 = _LAST4.search(rest)
    return (code, last4.group(1)) if code and last4 else None


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) == 11 else "***"


def mask_name(name: str) -> str:
    """张* / 欧阳**: what anyone who is not the booking's own chat sees of the name."""
    return (name or "")[:1] + "*" * max(1, len(name or "") - 1)


def booking_to_cancel(items: list, text: str):
    """Which of a citizen's own bookings a 取消预约 message means: the one whose code it names, else
    the first. None when it names codes and none of them is the citizen's: never offer to cancel
    a different booking than the one asked for."""
    codes = named_codes(text)
    if not codes:
        return items[0] if items else None
    return next((b for b in items if b.code in codes), None)


def describe_date(d: dt.date) -> str:
    return f"{d.month}月{d.day}日（周{WEEKDAYS[d.weekday()]}）"


@dataclass
class BookingBook:
    database_url: str
    slot_capacity: int = 10
    walk_in_share: float = 0.3
    booking_days: int = 14
    closed_dates: tuple[dt.date, ...] = ()

    def __post_init__(self):
        self.Session = sessions(self.database_url)

    @property
    def bookable(self) -> int:
        return self.slot_capacity - math.ceil(self.slot_capacity * self.walk_in_share)

    def is_open(self, day: dt.date) -> bool:
        """Raises CalendarMissing for a year the holiday calendar does not cover: guessing "every
        weekday is open" would book citizens onto public holidays."""
        if day in self.closed_dates:
            return False
        import chinese_calendar

        try:
            return chinese_calendar.is_workday(day)
        except NotImplementedError as e:
            log.error("holiday calendar does not cover %s (update chinesecalendar)", day)
            raise CalendarMissing(day) from e

    def date_problem(self, day: dt.date, today: dt.date) -> str | None:
        if day <= today:
            return f"{describe_date(day)}已过或为当天，网上预约最早可约明天。"
        if day > today + dt.timedelta(days=self.booking_days):
            return f"只能预约{self.booking_days}天以内的日期。"
        try:
            if not self.is_open(day):
                return f"{describe_date(day)}是休息日，服务中心不办公。"
        except CalendarMissing:
            return f"{describe_date(day)}所在年份的节假日安排尚未收录，暂时无法确认是否办公，请选择其他日期或拨打12345咨询。"
        return None

    def taken(self, centre: str, day: dt.date) -> dict[str, int]:
        with self.Session() as s:
            rows = s.execute(
                select(Booking.slot, func.count()).where(
                    Booking.centre == centre, Booking.date == day, Booking.status == "booked"
                ).group_by(Booking.slot)
            ).all()
        return {slot: n for slot, n in rows}

    def free_slots(self, centre: str, day: dt.date) -> list[str]:
        taken = self.taken(centre, day)
        return [s for s in SLOTS if taken.get(s, 0) < self.bookable]

    def open_dates(self, centre: str, today: dt.date, n: int = 4) -> list[dt.date]:
        out, day = [], today
        while len(out) < n and day < today + dt.timedelta(days=self.booking_days):
            day += dt.timedelta(days=1)
            if self.date_problem(day, today) is None and self.free_slots(centre, day):
                out.append(day)
        return out

    def create(self, *, sender: str, matter: str | None, centre: str, day: dt.date, slot: str,
               name: str, phone: str) -> Booking | None:
        """Books the lowest free place; None when the slot is full (also after a lost race)."""
        for _ in range(5):
            with self.Session() as s:
                used = set(s.scalars(select(Booking.place).where(
                    Booking.centre == centre, Booking.date == day, Booking.slot == slot, Booking.place.is_not(None))))
                place = next((p for p in range(1, self.bookable + 1) if p not in used), None)
                if place is None:
                    return None
                b = Booking(code="".join(secrets.choice(_CODE_ALPHABET) for _ in range(8)), sender=sender,
                            matter=matter, centre=centre, date=day, slot=slot, place=place, name=name,
                            phone=phone, status="booked")
                s.add(b)
                try:
                    s.commit()
                    return b
                except IntegrityError:  # another process took this place first: try the next one
                    s.rollback()
        return None

    def active_for(self, sender: str, today: dt.date | None = None) -> list[Booking]:
        today = today or dt.date.today()
        with self.Session() as s:
            return list(s.scalars(select(Booking).where(
                Booking.sender == sender, Booking.status == "booked", Booking.date >= today
            ).order_by(Booking.date, Booking.slot)))

    def find(self, code: str, *, sender: str | None = None, phone_last4: str | None = None) -> Booking | None:
        """A booking for someone who may see it: its own sender (the chat that made it), or — from
        another channel — whoever gives its code plus the last four digits of its phone number."""
        code = (code or "").strip().upper()
        if not re.fullmatch(r"[A-Z0-9]{4,16}", code):
            return None
        with self.Session() as s:
            b = s.scalar(select(Booking).where(Booking.code == code))
        if b is None:
            return None
        if sender is not None and b.sender == sender:
            return b
        if phone_last4 and re.fullmatch(r"\d{4}", phone_last4) and secrets.compare_digest(b.phone[-4:], phone_last4):
            return b
        return None

    def cancel(self, code: str, sender: str | None = None, *, phone_last4: str | None = None) -> Booking | None:
        """Cancels a booked place for whoever `find` lets see it; None when there is no such booking."""
        found = self.find(code, sender=sender, phone_last4=phone_last4)
        if found is None:
            return None
        with self.Session() as s:
            b = s.scalar(select(Booking).where(Booking.id == found.id, Booking.status == "booked"))
            if b is None:
                return None
            b.status, b.place, b.cancelled_at = "cancelled", None, utcnow()
            s.commit()
            return b
