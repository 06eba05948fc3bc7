"""预约办事 in the chat: the booking form (extraction and validation call the pure domain module
assistant/booking_form.py), its questions, leaving and correcting it, and the citizen's own bookings."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (BOOKING_SLOTS, answerer, book, booking_paused, confidence_of, form_active, has_booking,
                            intent_of, log, mark, matter_to_book, reading, text_of)
from assistant import booking_form as form
from assistant import bookings as bk
from assistant import texts
from assistant.privacy import mask
from assistant.understanding import is_question

# Intents whose message may be an answer to the form's question. Anything else (a question, a
# greeting, stop) is left to the rules: the form rejects it, so it is never taken as a value.
ANSWER_INTENTS = {"inform", "affirm", "book_appointment", "nlu_fallback"}
LEAVING_INTENTS = {"stop", "deny", "cancel_appointment", "human_handoff", "complain", "query_appointment", "goodbye"}
NOT_ANSWERS = LEAVING_INTENTS | {"greet", "thank", "bot_challenge", "ask_capabilities", "insult", "out_of_scope", "check_materials"}


def today() -> dt.date:
    return dt.date.today()


def clear_booking() -> list[dict]:
    return [SlotSet(s, None) for s in BOOKING_SLOTS] + [SlotSet("booking_paused", False), SlotSet("requested_slot", None)]


def filled(tracker: Tracker) -> dict[str, object]:
    return {s: tracker.get_slot(s) for s in [*BOOKING_SLOTS, "matter"]}


def correct(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict]:
    """A correction while booking ("电话打错了 是139…", "选错了 我要去海沧的", "时间不对", "不对"):
    that answer is replaced (or asked again), what depends on it is asked again, the rest is kept,
    and the form goes on — it shows the new summary before booking."""
    r = reading(tracker)
    c = r.correction
    if c is not None and r.matters and c.value is None and (c.slot is None or c.slot == "matter"):
        c = type(c)("matter", r.matters[0])  # "我要办的是护照不是港澳通行证"
    # The form's open question (the rule that left the form has already cleared requested_slot).
    step = tracker.get_slot("requested_slot") or next((s for s in BOOKING_SLOTS if tracker.get_slot(s) is None), None)
    if c is not None and c.slot is None and c.value is None and step == "booking_confirmed":
        # A bare "不对" at the confirmation: something in the summary is wrong — which one?
        dispatcher.utter_message(text=texts.WHICH_IS_WRONG, buttons=[
            {"title": title, "payload": payload} for title, payload in texts.CORRECTION_BUTTONS])
        return [SlotSet("booking_paused", False), FollowupAction("action_listen")]
    updates = form.changes(c, filled(tracker), step) if c is not None else {}
    if c is not None and c.slot == "booking_centre" and c.value and c.value not in bk.CENTRES:
        updates = {}
    again = form.reopened(updates)
    if c is not None and c.value and not again:
        shown = bk.mask_phone(c.value) if c.slot == "booking_phone" else bk.CENTRES.get(c.value, c.value)
        if c.slot == "booking_date":
            shown = bk.describe_date(dt.date.fromisoformat(c.value)) if not c.value.startswith("?") else c.value
        if c.slot == "matter":
            shown = answerer().guides[c.value].name
        dispatcher.utter_message(text=texts.CORRECTED.format(value=shown))
    elif again:
        dispatcher.utter_message(text=texts.CORRECTING.format(what=texts.STEP_NAMES[again]))
    return [SlotSet(k, v) for k, v in updates.items()] + [SlotSet("booking_paused", False), FollowupAction("booking_form")]


def stop_booking(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict]:
    dispatcher.utter_message(text=texts.BOOKING_STOPPED)
    mark(dispatcher, "booking", step="stopped")
    return clear_booking()


def acknowledge(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict]:
    """好的 / 不用了 / 算了 outside the form: goes on with a paused booking, leaves it, or just acknowledges."""
    intent = intent_of(tracker)
    if booking_paused(tracker):
        return [FollowupAction("booking_form")] if intent == "affirm" else stop_booking(dispatcher, tracker)
    if intent == "affirm":
        dispatcher.utter_message(text=texts.ACK)
    elif has_booking(tracker):
        return stop_booking(dispatcher, tracker)
    else:
        dispatcher.utter_message(text=texts.NOTHING_TO_STOP)
    mark(dispatcher, "smalltalk")
    return []


def _date_buttons(days: list[dt.date]) -> list[dict]:
    return [{"title": bk.describe_date(d), "payload": f"{d.year}年{d.month}月{d.day}日"} for d in days]


def _matter_name(tracker: Tracker) -> str | None:
    g = answerer().guides.get(tracker.get_slot("matter") or "")
    return g.name if g else None


def _right_after_user(tracker: Tracker) -> bool:
    for e in reversed(tracker.events):
        if e.get("event") == "user":
            return True
        if e.get("event") not in ("user_featurization",):
            return False
    return True


class ValidateBookingForm(FormValidationAction):
    """Extracts every booking answer from any message and checks it; refusals offer alternatives.

    Runs on every user message (Rasa's slot extraction calls it), but reads a message only while
    the form runs, when the message asks to book, or right after the form paused. A question
    ("能在集美办吗", "要多少钱") is never read as an answer, even if it names a district or a day.
    """

    def name(self) -> str:
        return "validate_booking_form"

    def _reads(self, tracker: Tracker) -> bool:
        text = text_of(tracker)
        if not text or not (form_active(tracker) or intent_of(tracker) == "book_appointment" or booking_paused(tracker)):
            return False
        r = reading(tracker)
        if r.correction is not None or {"human", "complaint", "stop", "query_booking", "cancel_booking"} & r.requests:
            return False  # a correction or a way of leaving is handled by the dialogue (actions/answers.py)
        if r.asks and not form_active(tracker) and "book" not in r.requests:
            return False  # a question, even if it names a district or a day
        if is_question(text, answers_something=bool(form.values(text))):
            return False
        leaving = intent_of(tracker) in LEAVING_INTENTS and confidence_of(tracker) >= 0.5
        if form_active(tracker) and matter_to_book(tracker) and not leaving:
            return True  # "护照" while booking names what the booking is for, whatever NLU thinks
        if intent_of(tracker) in ANSWER_INTENTS or confidence_of(tracker) < 0.5:
            return True
        # NLU may file a bare name ("赵六") under a question intent: an answer the open question's
        # parser reads is an answer, unless the message is small talk or a way of leaving.
        requested = tracker.get_slot("requested_slot")
        if not form_active(tracker) or not requested or intent_of(tracker) in NOT_ANSWERS:
            return False
        if requested == "booking_name":
            return bk.parse_name(text) is not None
        return requested in form.values(text)

    async def run(self, dispatcher, tracker, domain):
        if not self._reads(tracker):
            return []
        if _right_after_user(tracker):
            # Called by Rasa's slot extraction right after the message (nothing logged since); the
            # form calls again to validate. Validating here too would say every complaint twice.
            events = await self.get_extraction_events(dispatcher, tracker, domain)
        else:
            events = await super().run(dispatcher, tracker, domain)
        # The matter is not a question of the form, but a booking sentence often names it
        # ("我打算约下周五去办护照"); it also keeps the form going when nothing else was said.
        # Set again in the form's own call even when extraction already set it: a SlotSet is what
        # keeps the form from rejecting a message that only names the matter.
        matter = matter_to_book(tracker)
        if matter:
            events.append(SlotSet("matter", matter))
        return events

    # --- extraction: from whatever the user wrote, whichever question was asked ---
    @staticmethod
    def _unparsed(tracker: Tracker, slot: str) -> dict:
        """An answer to the question just asked that could not be understood is still an answer:
        it goes to validation, which says what is wrong."""
        text = text_of(tracker).strip()
        if tracker.get_slot("requested_slot") != slot or not text or intent_of(tracker) not in ("inform", "nlu_fallback"):
            return {}
        if matter_to_book(tracker):
            return {}  # "办护照": the matter of the booking, not a failed answer
        return {slot: form.INVALID + text}

    def _value(self, tracker: Tracker, slot: str) -> dict:
        found = form.values(text_of(tracker))
        return {slot: found[slot]} if slot in found else self._unparsed(tracker, slot)

    async def extract_booking_centre(self, dispatcher, tracker, domain):
        return self._value(tracker, "booking_centre")

    async def extract_booking_date(self, dispatcher, tracker, domain):
        return self._value(tracker, "booking_date")

    async def extract_booking_slot(self, dispatcher, tracker, domain):
        return self._value(tracker, "booking_slot")

    async def extract_booking_phone(self, dispatcher, tracker, domain):
        return self._value(tracker, "booking_phone")

    async def extract_booking_name(self, dispatcher, tracker, domain):
        text = text_of(tracker)
        # A bare short answer is a name only when the name was asked; "我叫…" counts any time.
        if tracker.get_slot("requested_slot") != "booking_name" and not any(k in text for k in ("我叫", "名字", "姓名")):
            return {}
        if intent_of(tracker) in ("affirm", "deny") or matter_to_book(tracker) or form.values(text):
            return {}
        n = bk.parse_name(text)
        return {"booking_name": n} if n else self._unparsed(tracker, "booking_name")

    async def extract_booking_confirmed(self, dispatcher, tracker, domain):
        if tracker.get_slot("requested_slot") != "booking_confirmed":
            return {}
        intent = intent_of(tracker)
        text = text_of(tracker)
        if intent == "affirm" or "确认" in text:
            return {"booking_confirmed": True}
        return self._unparsed(tracker, "booking_confirmed")

    # --- validation: an form.INVALID value gets a clear message, and the question is asked again ---
    def validate_booking_centre(self, value, dispatcher, tracker, domain):
        if value in bk.CENTRES:
            return {"booking_centre": value}
        dispatcher.utter_message(text=texts.BAD_CENTRE)
        return {"booking_centre": None}

    def validate_booking_date(self, value, dispatcher, tracker, domain):
        centre = tracker.get_slot("booking_centre") or "市级"
        if str(value).startswith(form.UNREADABLE):
            dispatcher.utter_message(text=texts.DATE_form.UNREADABLE, buttons=_date_buttons(book().open_dates(centre, today())))
            return {"booking_date": None}
        try:
            day = dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            dispatcher.utter_message(text=texts.BAD_DATE)
            return {"booking_date": None}
        problem = book().date_problem(day, today())
        if problem is None and not book().free_slots(centre, day):
            problem = texts.SLOT_FULL_DAY.format(day=bk.describe_date(day), centre=bk.CENTRES[centre])
        if problem:
            dispatcher.utter_message(text=problem + texts.PICK_DATE,
                                     buttons=_date_buttons(book().open_dates(centre, today())))
            return {"booking_date": None}
        return {"booking_date": day.isoformat()}

    def validate_booking_slot(self, value, dispatcher, tracker, domain):
        if str(value).startswith(form.INVALID):
            dispatcher.utter_message(text=texts.BAD_SLOT)
            return {"booking_slot": None}
        centre, date = tracker.get_slot("booking_centre"), tracker.get_slot("booking_date")
        if not centre or not date or str(date).startswith(form.INVALID):
            return {"booking_slot": value}  # checked again once the centre and date are known
        free = book().free_slots(centre, dt.date.fromisoformat(date))
        if value in ("morning", "afternoon"):
            wanted = [s for s in free if (s < "12") == (value == "morning")]
            if wanted:
                return {"booking_slot": wanted[0]}
        elif value in free:
            return {"booking_slot": value}
        dispatcher.utter_message(text=texts.SLOT_TAKEN, buttons=[{"title": s, "payload": s} for s in free])
        return {"booking_slot": None}

    def validate_booking_name(self, value, dispatcher, tracker, domain):
        if str(value).startswith(form.INVALID):
            dispatcher.utter_message(text=texts.BAD_NAME)
            return {"booking_name": None}
        return {"booking_name": value}

    def validate_booking_phone(self, value, dispatcher, tracker, domain):
        if not bk.PHONE.fullmatch(value or ""):
            dispatcher.utter_message(text=texts.BAD_PHONE)
            return {"booking_phone": None}
        return {"booking_phone": value}

    def validate_booking_confirmed(self, value, dispatcher, tracker, domain):
        if isinstance(value, bool):
            return {"booking_confirmed": value}
        dispatcher.utter_message(text=texts.BAD_CONFIRM)
        return {"booking_confirmed": None}


class ActionAskBookingCentre(Action):
    def name(self) -> str:
        return "action_ask_booking_centre"

    def run(self, dispatcher, tracker, domain):
        matter = _matter_name(tracker)
        buttons = [{"title": name if key == "市级" else key, "payload": name if key == "市级" else key}
                   for key, name in bk.CENTRES.items()]
        dispatcher.utter_message(text=texts.ASK_CENTRE.format(matter=f"（{matter}）" if matter else ""), buttons=buttons)
        return []


class ActionAskBookingDate(Action):
    def name(self) -> str:
        return "action_ask_booking_date"

    def run(self, dispatcher, tracker, domain):
        centre = tracker.get_slot("booking_centre") or "市级"
        days = book().open_dates(centre, today())
        dispatcher.utter_message(text=texts.ASK_DATE.format(centre=bk.CENTRES[centre]), buttons=_date_buttons(days))
        return []


class ActionAskBookingSlot(Action):
    def name(self) -> str:
        return "action_ask_booking_slot"

    def run(self, dispatcher, tracker, domain):
        free = book().free_slots(tracker.get_slot("booking_centre") or "市级",
                                 dt.date.fromisoformat(tracker.get_slot("booking_date")))
        dispatcher.utter_message(text=texts.ASK_SLOT, buttons=[{"title": s, "payload": s} for s in free])
        return []


def _describe(centre: str, date: str, slot: str) -> str:
    return f"{bk.CENTRES[centre]}，{bk.describe_date(dt.date.fromisoformat(date))} {slot}"


class ActionAskBookingConfirmed(Action):
    def name(self) -> str:
        return "action_ask_booking_confirmed"

    def run(self, dispatcher, tracker, domain):
        where = _describe(tracker.get_slot("booking_centre"), tracker.get_slot("booking_date"), tracker.get_slot("booking_slot"))
        dispatcher.utter_message(
            text=texts.ASK_CONFIRM.format(matter=_matter_name(tracker) or texts.NO_MATTER, where=where,
                                          name=tracker.get_slot("booking_name"),
                                          phone=bk.mask_phone(tracker.get_slot("booking_phone"))),
            buttons=[{"title": texts.CONFIRM_BUTTON, "payload": "确认预约"},
                     {"title": texts.CHANGE_TIME_BUTTON, "payload": "时间不对"},
                     {"title": texts.CHANGE_CENTRE_BUTTON, "payload": "服务中心不对"},
                     {"title": texts.CANCEL_BUTTON, "payload": "/stop"}])
        return []


class ActionBookingPaused(Action):
    """After a question interrupted the form: says once where the booking stopped, with buttons."""

    def name(self) -> str:
        return "action_booking_paused"

    def run(self, dispatcher, tracker, domain):
        done = []
        if m := _matter_name(tracker):
            done.append(m)
        if c := tracker.get_slot("booking_centre"):
            done.append(bk.CENTRES.get(c, c))
        if d := tracker.get_slot("booking_date"):
            try:
                done.append(bk.describe_date(dt.date.fromisoformat(d)))
            except ValueError:
                pass
        if sl := tracker.get_slot("booking_slot"):
            done.append(sl)
        step = next((s for s in BOOKING_SLOTS if tracker.get_slot(s) is None), "booking_confirmed")
        dispatcher.utter_message(
            text=texts.BOOKING_PAUSED.format(done="，".join(done) or texts.NOTHING_FILLED, step=texts.STEP_NAMES[step]),
            buttons=[{"title": texts.CONTINUE_BUTTON, "payload": "/book_appointment"},
                     {"title": texts.STOP_BUTTON, "payload": "/stop"}])
        mark(dispatcher, "booking", step="paused")
        return [SlotSet("booking_paused", True), SlotSet("requested_slot", None)]


class ActionSubmitBooking(Action):
    def name(self) -> str:
        return "action_submit_booking"

    def run(self, dispatcher, tracker, domain):
        reset = clear_booking()
        if not tracker.get_slot("booking_confirmed"):
            dispatcher.utter_message(text=texts.BOOKING_STOPPED)
            return reset
        centre, date, slot = (tracker.get_slot(k) for k in ("booking_centre", "booking_date", "booking_slot"))
        b = book().create(sender=tracker.sender_id, matter=tracker.get_slot("matter"), centre=centre,
                          day=dt.date.fromisoformat(date), slot=slot, name=tracker.get_slot("booking_name"),
                          phone=tracker.get_slot("booking_phone"))
        if b is None:
            dispatcher.utter_message(text=texts.SLOT_LOST, buttons=[{"title": "重新预约", "payload": "/book_appointment"}])
            return reset
        log.info("booking %s created for %s", b.code, mask(b.phone))
        dispatcher.utter_message(
            text=texts.BOOKED.format(code=b.code, matter=_matter_name(tracker) or texts.NO_MATTER.split("（")[0],
                                     where=_describe(centre, date, slot)),
            buttons=[{"title": "查询我的预约", "payload": "/query_appointment"},
                     {"title": "取消预约", "payload": "/cancel_appointment"}])
        return reset


def show_bookings(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict]:
    """The citizen's bookings; from another channel, one booking by its code and the phone's last four."""
    if asked := bk.parse_lookup(text_of(tracker)):
        # From another channel: the code plus the phone number's last four digits (as /api/bookings/lookup).
        b = book().find(asked[0], sender=tracker.sender_id, phone_last4=asked[1])
        if b is None or b.status != "booked":
            dispatcher.utter_message(text=texts.LOOKUP_NOT_FOUND)
            return []
        dispatcher.utter_message(text=texts.BOOKING_LINE.format(
            code=b.code, where=_describe(b.centre, b.date.isoformat(), b.slot), name=bk.mask_name(b.name),
            phone=bk.mask_phone(b.phone)))
        return []
    items = book().active_for(tracker.sender_id, today())
    if not items:
        dispatcher.utter_message(text=texts.NO_BOOKINGS, buttons=[{"title": "预约办事", "payload": "/book_appointment"}])
        return []
    lines = [f"您有{len(items)}个预约："]
    for b in items:
        lines.append(texts.BOOKING_LINE.format(code=b.code, where=_describe(b.centre, b.date.isoformat(), b.slot),
                                               name=b.name, phone=bk.mask_phone(b.phone)))
    dispatcher.utter_message(text="\n".join(lines), buttons=[{"title": "取消预约", "payload": "/cancel_appointment"}])
    return []


class ActionQueryBooking(Action):
    def name(self) -> str:
        return "action_query_booking"

    def run(self, dispatcher, tracker, domain):
        return show_bookings(dispatcher, tracker)


class ActionCancelBooking(Action):
    """取消预约: first asks to confirm (remembering which booking), then cancels or keeps it."""

    def name(self) -> str:
        return "action_cancel_booking"

    def run(self, dispatcher, tracker, domain):
        intent, pending = intent_of(tracker), tracker.get_slot("pending_cancel")
        if pending and intent == "affirm":
            b = book().cancel(pending, tracker.sender_id)
            dispatcher.utter_message(text=texts.CANCELLED.format(code=pending) if b else texts.CANCEL_GONE)
            return [SlotSet("pending_cancel", None)]
        if pending and intent in ("deny", "stop"):
            dispatcher.utter_message(text=texts.KEPT.format(code=pending))
            return [SlotSet("pending_cancel", None)]
        items = book().active_for(tracker.sender_id, today())
        if not items:
            dispatcher.utter_message(text=texts.NOTHING_TO_CANCEL)
            return [SlotSet("pending_cancel", None)]
        b = bk.booking_to_cancel(items, text_of(tracker))
        if b is None:
            dispatcher.utter_message(text=texts.CANCEL_NOT_YOURS)
            return [SlotSet("pending_cancel", None)]
        dispatcher.utter_message(
            text=texts.CONFIRM_CANCEL.format(code=b.code, where=_describe(b.centre, b.date.isoformat(), b.slot)),
            buttons=[{"title": "确认取消", "payload": "确认"}, {"title": "不取消", "payload": "不是"}])
        return [SlotSet("pending_cancel", b.code)]




class ActionStopBooking(Action):
    """Leaves the booking form (不约了, 算了, 退出, a new request…) — unless the message corrects an
    answer ("啊不对 选错了 我要去海沧的" is filed under deny): then the form goes on."""

    def name(self) -> str:
        return "action_stop_booking"

    def run(self, dispatcher, tracker, domain):
        r = reading(tracker)
        if r.correction is not None and not ({"stop", "human", "complaint", "query_booking"} & r.requests):
            return correct(dispatcher, tracker)
        return stop_booking(dispatcher, tracker)
