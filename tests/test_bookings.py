"""Booking rules: what a citizen is offered and refused, and that places are never over-booked."""

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest

from assistant import bookings as bk
from assistant.db import upgrade

SUNDAY = dt.date(2026, 11, 22)


@pytest.fixture
def book(tmp_path):
    url = f"sqlite:///{tmp_path / 'b.db'}"
    upgrade(url)
    return bk.BookingBook(url, slot_capacity=4, walk_in_share=0.5, booking_days=14)


@pytest.mark.parametrize("said,expected", [
    ("明天", dt.date(2026, 11, 23)),
    ("下周三上午", dt.date(2026, 11, 25)),
    ("12月3号", dt.date(2026, 12, 3)),
    ("周五", dt.date(2026, 11, 27)),  # said on a Sunday: the coming Friday
    ("3号", dt.date(2026, 12, 3)),  # the 3rd has passed this month: next month's
    ("我想约2026年12月1日", dt.date(2026, 12, 1)),
])
def test_chinese_dates_are_understood(said, expected):
    assert bk.parse_date(said, SUNDAY) == expected


def test_text_without_a_date_gives_none():
    assert bk.parse_date("我也不知道", SUNDAY) is None


@pytest.mark.parametrize("said,slot", [("10点", "10:00-11:00"), ("下午两点", "14:00-15:00"), ("下午3点", "15:00-16:00"),
                                       ("上午", "morning"), ("09:00-10:00", "09:00-10:00")])
def test_slots_are_understood(said, slot):
    assert bk.parse_slot(said) == slot


def test_phone_numbers_are_checked():
    assert bk.parse_phone("我的手机 138-0013-8000") == "13800138000"
    assert bk.parse_phone("12345678901") is None
    assert bk.parse_phone("1380013800") is None


def test_past_closed_and_far_dates_are_refused(book):
    assert "已过" in book.date_problem(dt.date(2026, 11, 20), SUNDAY)
    assert "休息日" in book.date_problem(dt.date(2026, 11, 28), SUNDAY)  # a Saturday
    assert "14天" in book.date_problem(dt.date(2027, 1, 20), SUNDAY)
    assert book.date_problem(dt.date(2026, 11, 23), SUNDAY) is None


def test_offered_dates_skip_weekends(book):
    days = book.open_dates("湖里区", dt.date(2026, 11, 26), n=3)  # a Thursday
    assert days == [dt.date(2026, 11, 27), dt.date(2026, 11, 30), dt.date(2026, 12, 1)]


def test_walk_in_share_is_never_booked(book):
    day = dt.date(2026, 11, 23)
    made = [book.create(sender=f"s{i}", matter=None, centre="湖里区", day=day, slot="09:00-10:00",
                        name="张三", phone="13800138000") for i in range(4)]
    assert [b is not None for b in made] == [True, True, False, False]  # 4 places, half kept for walk-ins
    assert "09:00-10:00" not in book.free_slots("湖里区", day)
    assert "10:00-11:00" in book.free_slots("湖里区", day)


def test_cancelling_frees_the_place(book):
    day = dt.date(2026, 11, 23)
    a = book.create(sender="s1", matter=None, centre="思明区", day=day, slot="09:00-10:00", name="张三", phone="13800138000")
    book.create(sender="s2", matter=None, centre="思明区", day=day, slot="09:00-10:00", name="李四", phone="13900139000")
    assert "09:00-10:00" not in book.free_slots("思明区", day)
    assert book.cancel(a.code, "someone-else") is None  # only the owner cancels
    assert book.cancel(a.code, "s1").status == "cancelled"
    assert "09:00-10:00" in book.free_slots("思明区", day)


def test_concurrent_bookings_never_exceed_capacity(book):
    day = dt.date(2026, 11, 24)

    def attempt(i):
        return book.create(sender=f"c{i}", matter=None, centre="集美区", day=day, slot="14:00-15:00",
                           name="王五", phone="13700137000")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(12)))
    assert sum(r is not None for r in results) == book.bookable == 2


def test_bookings_survive_a_restart(book):
    import subprocess
    import sys

    b = book.create(sender="s9", matter="passport", centre="市级", day=dt.date(2026, 11, 25), slot="11:00-12:00",
                    name="赵六", phone="13600136000")
    # Another process, as after a restart, reads the same database file.
    code = ("import datetime as dt; from assistant.bookings import BookingBook; "
            f"print([x.code for x in BookingBook({book.database_url!r}).active_for('s9', dt.date(2026, 11, 22))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert b.code in out


def test_a_failing_date_parser_is_reported_not_turned_into_no_date(monkeypatch, caplog):
    import jionlp

    def broken(*a, **k):
        raise RuntimeError("parser bug")

    monkeypatch.setattr(jionlp.ner, "extract_time", broken)
    with pytest.raises(bk.DateUnreadable):
        bk.parse_date("下下下周八", SUNDAY)
    assert "date parser failed" in caplog.text


def test_a_year_without_a_holiday_calendar_is_not_assumed_open(book, monkeypatch, caplog):
    import chinese_calendar

    def uncovered(day):
        raise NotImplementedError("no data for that year")

    monkeypatch.setattr(chinese_calendar, "is_workday", uncovered)
    problem = book.date_problem(SUNDAY + dt.timedelta(days=2), SUNDAY)
    assert problem and "尚未收录" in problem and "12345" in problem
    assert book.open_dates("湖里区", SUNDAY) == []  # no day is offered as open on a guess
    assert "holiday calendar does not cover" in caplog.text


def test_one_list_of_centres():
    from assistant.understanding import DISTRICTS

    assert set(bk.CENTRES) == {"市级", *DISTRICTS.values()}
    assert bk.parse_centre("去集美吧") == "集美区" and bk.parse_centre("市民中心") == "市级"


def test_another_channel_finds_a_booking_only_with_the_phones_last_four(book):
    b = book.create(sender="web-a", matter=None, centre="思明区", day=dt.date(2026, 11, 26), slot="14:00-15:00",
                    name="张三", phone="13800138000")
    assert book.find(b.code, sender="web-a").code == b.code  # its own chat
    assert book.find(b.code, sender="web-b") is None and book.find(b.code) is None
    assert book.find(b.code, sender="web-b", phone_last4="0000") is None
    assert book.find(b.code.lower(), phone_last4="8000").code == b.code
    assert book.cancel(b.code, "web-b", phone_last4="1234") is None
    assert book.cancel(b.code, phone_last4="8000").status == "cancelled"
