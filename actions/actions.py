"""Rasa custom actions (run by the action server: `python -m rasa_sdk --actions actions.actions`).

They are thin: read the turn from the tracker, call the Answerer, send its messages, set slots.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from functools import lru_cache
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from assistant import bookings as bk
from assistant import texts
from assistant.answer import Answer, Context
from assistant.db import Handoff, upgrade
from assistant.engine import Engine
from assistant.materials import check_materials
from assistant.privacy import install_log_masking, mask
from assistant.understanding import INTENT_QTYPE, is_question, knowledge_question
from settings import get_settings

log = logging.getLogger("banshitong.actions")
install_log_masking()

# After this many unsure answers in a row the conversation goes to a person.
HANDOFF_AFTER = 2
# Below this NLU confidence an intent that hands over (complain, human_handoff) needs its own words
# in the message: a misread question must not become a complaint.
SURE_INTENT = 0.8
COMPLAINT_WORDS = re.compile(r"投诉|举报|不满|态度|差评|太慢|推诿|刁难|反映|意见|建议|不作为|乱收费|气死|太差|什么服务")
HANDOFF_WORDS = re.compile(r"人工|真人|客服|工作人员|接线员|转接|找人|人来")

_engine: Engine | None = None


def engine() -> Engine:
    global _engine
    if _engine is None:
        _engine = Engine(get_settings())
    return _engine


def send(dispatcher: CollectingDispatcher, a: Answer, extra_buttons: list[dict] | None = None) -> None:
    buttons = [{"title": b.title, "payload": b.payload} for b in a.buttons] + (extra_buttons or [])
    dispatcher.utter_message(text=a.text, buttons=buttons)


def _latest(tracker: Tracker) -> dict:
    return tracker.latest_message or {}


def _text(tracker: Tracker) -> str:
    text = _latest(tracker).get("text") or ""
    return "" if text.startswith("/") else text


def _intent(tracker: Tracker) -> str | None:
    return (_latest(tracker).get("intent") or {}).get("name")


def _confidence(tracker: Tracker) -> float:
    return float((_latest(tracker).get("intent") or {}).get("confidence") or 0.0)


def matter_named(tracker: Tracker) -> str | None:
    """The guide id the latest message names (NLU entity or the Answerer's own lookup)."""
    answerer = engine().get().answerer
    for ent in _latest(tracker).get("entities") or []:
        if ent.get("entity") == "matter":
            value = str(ent.get("value", ""))
            if value in answerer.guides:
                return value
            found = answerer.lookup.run(value).guides
            if found:
                return found[0].id
    text = _text(tracker)
    if text:
        found = answerer.lookup.run(text)
        if found.guides and not found.invented:
            return found.guides[0].id
    return None


def matter_to_book(tracker: Tracker) -> str | None:
    """A matter (not a service centre or rule) the latest message names: what a booking is for."""
    gid = matter_named(tracker)
    g = engine().get().answerer.guides.get(gid or "")
    return gid if g is not None and g.kind == "matter" else None


def booking_paused(tracker: Tracker) -> bool:
    return bool(tracker.get_slot("booking_paused"))


class ActionAnswer(Action):
    def name(self) -> str:
        return "action_answer"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        text, intent = _text(tracker), _intent(tracker)
        if booking_paused(tracker) and intent == "inform" and text and booking_values(text) and not is_question(text, True):
            # A booking detail typed after the form paused ("明天上午"): the citizen goes on booking.
            return [FollowupAction("booking_form")]
        answerer = engine().get().answerer
        matter = matter_named(tracker) if not text else None
        context = Context(matter=tracker.get_slot("matter"), qtype=tracker.get_slot("qtype"))
        qtype = INTENT_QTYPE.get(intent)
        if qtype == "general" and text:
            qtype = None  # the Answerer reads the type from the words; the intent only says "a question"
        # A matter NLU picked out of a typed sentence is only a hint: the Answerer's own lookup
        # sees the whole sentence (and may find two matters and ask which one).
        a = answerer.run(text, context, qtype=qtype, matter=matter)
        low = float(tracker.get_slot("low_confidence") or 0)
        low = low + 1 if a.kind == "fallback" else 0
        if low >= HANDOFF_AFTER:
            return ActionHandoff().run(dispatcher, tracker, domain, reason="连续两次未能回答")
        extra = []
        if intent == "ask_booking" or a.qtype == "booking":
            # Asking about booking is a question; the button makes booking one tap away.
            extra = [{"title": texts.BOOK_NOW, "payload": "/book_appointment"}]
            a.buttons = [b for b in a.buttons if "预约" not in b.title]
        send(dispatcher, a, extra)
        return [SlotSet("matter", a.matter or context.matter), SlotSet("qtype", a.qtype or context.qtype),
                SlotSet("low_confidence", low)]


def answered_instead(dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict] | None:
    """The answer's events when a message NLU filed under a steering intent is a knowledge question
    (understanding.knowledge_question); None when the intent stands."""
    text = _text(tracker)
    if not text or text.startswith("/"):
        return None  # a button's payload means what it says
    a = engine().get().answerer.run(text, Context())
    if not knowledge_question(_intent(tracker), text, a.kind, a.confidence):
        return None
    log.info("intent %s overridden: retrieval is sure (%.2f)", _intent(tracker), a.confidence)
    return ActionAnswer().run(dispatcher, tracker, domain)


class ActionSmallTalk(Action):
    """"你是机器人吗", "今天天气怎么样": the domain's own responses, never a retrieved clause — unless
    the message is a knowledge question NLU mistook for small talk."""

    RESPONSES = {"bot_challenge": "utter_iamabot", "out_of_scope": "utter_out_of_scope"}

    def name(self) -> str:
        return "action_small_talk"

    def run(self, dispatcher, tracker, domain):
        events = answered_instead(dispatcher, tracker, domain)
        if events is not None:
            return events
        dispatcher.utter_message(response=self.RESPONSES.get(_intent(tracker), "utter_out_of_scope"))
        return []


def conversation_summary(tracker: Tracker, limit: int = 10) -> list[dict]:
    """The last user questions and bot answers, for the agent who takes over (numbers masked)."""
    turns = []
    for e in tracker.events:
        if e.get("event") == "user" and e.get("text") and not e["text"].startswith("/"):
            turns.append({"who": "user", "text": mask(e["text"])[:500]})
        elif e.get("event") == "bot" and e.get("text"):
            turns.append({"who": "bot", "text": mask(e["text"])[:500]})
    return turns[-limit:]


class ActionHandoff(Action):
    """转人工: queue the conversation for a 12345 agent, with a summary they read via the API."""

    def name(self) -> str:
        return "action_handoff"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any],
            reason: str | None = None) -> list[dict]:
        intent, text = _intent(tracker), _text(tracker)
        if reason is None and text and _confidence(tracker) < SURE_INTENT:
            # An unsure complaint or hand-over without its own words is most likely a question.
            words = COMPLAINT_WORDS if intent == "complain" else HANDOFF_WORDS
            if not words.search(text):
                log.info("intent %s at %.2f without its words: answered instead", intent, _confidence(tracker))
                return ActionAnswer().run(dispatcher, tracker, domain)
        if intent == "complain" and text and not COMPLAINT_WORDS.search(text) and reason is None:
            return ActionAnswer().run(dispatcher, tracker, domain)
        reason = reason or ("投诉建议" if intent == "complain" else "用户要求转人工")
        matter = tracker.get_slot("matter")
        summary = {"matter": matter, "turns": conversation_summary(tracker)}
        with book().Session() as s:
            s.add(Handoff(sender=tracker.sender_id, reason=reason, matter=matter,
                          summary=json.dumps(summary, ensure_ascii=False), status="waiting"))
            s.commit()
        if intent == "complain":
            text = texts.HANDOFF_COMPLAINT
        elif reason == "连续两次未能回答":
            text = texts.HANDOFF_UNANSWERED
        else:
            text = texts.HANDOFF_ASKED
        dispatcher.utter_message(text=text)
        return [SlotSet("low_confidence", 0)]


# ---------------------------------------------------------------- 预约办事 (booking)

@lru_cache
def book() -> bk.BookingBook:
    s = get_settings()
    upgrade(s.database_url)  # idempotent; the app does the same on start
    return bk.BookingBook(s.database_url, s.slot_capacity, s.walk_in_share, s.booking_days, tuple(s.closed_dates))


def today() -> dt.date:
    return dt.date.today()


INVALID = "?"  # prefix of an answer that was given but not understood
UNREADABLE = "?!"  # prefix of a date the parser failed on (logged)
BOOKING_SLOTS = ["booking_centre", "booking_date", "booking_slot", "booking_name", "booking_phone", "booking_confirmed"]
# Intents whose message may be an answer to the form's question. Anything else (a question, a
# greeting, stop) is left to the rules: the form rejects it, so it is never taken as a value.
ANSWER_INTENTS = {"inform", "affirm", "book_appointment", "nlu_fallback"}
LEAVING_INTENTS = {"stop", "deny", "cancel_appointment", "human_handoff", "complain", "query_appointment", "goodbye"}
NOT_ANSWERS = LEAVING_INTENTS | {"greet", "thank", "bot_challenge", "ask_capabilities", "insult", "out_of_scope", "check_materials"}


def booking_values(text: str) -> dict:
    """Booking details a text names: centre, date, time slot, phone."""
    found = {}
    if c := bk.parse_centre(text):
        found["booking_centre"] = c
    try:
        if d := bk.parse_date(text, today()):
            found["booking_date"] = d.isoformat()
    except bk.DateUnreadable:
        found["booking_date"] = UNREADABLE + text
    if sl := bk.parse_slot(text):
        found["booking_slot"] = sl
    if p := bk.parse_phone(text):
        found["booking_phone"] = p
    return found


def _date_buttons(days: list[dt.date]) -> list[dict]:
    return [{"title": bk.describe_date(d), "payload": f"{d.year}年{d.month}月{d.day}日"} for d in days]


def _matter_name(tracker: Tracker) -> str | None:
    g = engine().get().answerer.guides.get(tracker.get_slot("matter") or "")
    return g.name if g else None


def _right_after_user(tracker: Tracker) -> bool:
    for e in reversed(tracker.events):
        if e.get("event") == "user":
            return True
        if e.get("event") not in ("user_featurization",):
            return False
    return True


def _form_active(tracker: Tracker) -> bool:
    return (tracker.active_loop or {}).get("name") == "booking_form"


def corrected(tracker: Tracker) -> list[str]:
    """Booking answers the message asks to change without giving the new value ("时间不对",
    "换个服务中心") while a booking is under way; [] otherwise. A message that names the new value
    ("改成后天") needs none of this: extraction reads the value itself."""
    text = _text(tracker)
    if not text or booking_values(text) or not any(tracker.get_slot(s) is not None for s in BOOKING_SLOTS[:-1]):
        return []
    return [s for s in bk.parse_correction(text) if tracker.get_slot(s) is not None]


def reopen_for(dispatcher: CollectingDispatcher, slots: list[str]) -> list[dict]:
    """Takes back the answers being corrected; the form then asks for them again."""
    first = next(s for s in BOOKING_SLOTS if s in slots)
    dispatcher.utter_message(text=texts.CORRECTING.format(what=texts.STEP_NAMES[first]))
    return [SlotSet(s, None) for s in [*slots, "booking_confirmed"]]


class ValidateBookingForm(FormValidationAction):
    """Extracts every booking answer from any message and checks it; refusals offer alternatives.

    Runs on every user message (Rasa's slot extraction calls it), but reads a message only while
    the form runs, when the message asks to book, or right after the form paused. A question
    ("能在集美办吗", "要多少钱") is never read as an answer, even if it names a district or a day.
    """

    def name(self) -> str:
        return "validate_booking_form"

    def _reads(self, tracker: Tracker) -> bool:
        text = _text(tracker)
        if not text or not (_form_active(tracker) or _intent(tracker) == "book_appointment" or booking_paused(tracker)):
            return False
        if is_question(text, answers_something=bool(booking_values(text))):
            return False
        leaving = _intent(tracker) in LEAVING_INTENTS and _confidence(tracker) >= 0.5
        if _form_active(tracker) and matter_to_book(tracker) and not leaving:
            return True  # "护照" while booking names what the booking is for, whatever NLU thinks
        if _intent(tracker) in ANSWER_INTENTS or _confidence(tracker) < 0.5:
            return True
        # NLU may file a bare name ("赵六") under a question intent: an answer the open question's
        # parser reads is an answer, unless the message is small talk or a way of leaving.
        requested = tracker.get_slot("requested_slot")
        if not _form_active(tracker) or not requested or _intent(tracker) in NOT_ANSWERS:
            return False
        if requested == "booking_name":
            return bk.parse_name(text) is not None
        return requested in booking_values(text)

    async def run(self, dispatcher, tracker, domain):
        if not self._reads(tracker):
            return []
        if _form_active(tracker) and (slots := corrected(tracker)):
            # Said once, in the form's own call (after extraction's), not twice.
            return [] if _right_after_user(tracker) else reopen_for(dispatcher, slots)
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
        text = _text(tracker).strip()
        if tracker.get_slot("requested_slot") != slot or not text or _intent(tracker) not in ("inform", "nlu_fallback"):
            return {}
        if matter_to_book(tracker):
            return {}  # "办护照": the matter of the booking, not a failed answer
        return {slot: INVALID + text}

    def _value(self, tracker: Tracker, slot: str) -> dict:
        found = booking_values(_text(tracker))
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
        text = _text(tracker)
        # A bare short answer is a name only when the name was asked; "我叫…" counts any time.
        if tracker.get_slot("requested_slot") != "booking_name" and not any(k in text for k in ("我叫", "名字", "姓名")):
            return {}
        if _intent(tracker) in ("affirm", "deny") or matter_to_book(tracker) or booking_values(text):
            return {}
        n = bk.parse_name(text)
        return {"booking_name": n} if n else self._unparsed(tracker, "booking_name")

    async def extract_booking_confirmed(self, dispatcher, tracker, domain):
        if tracker.get_slot("requested_slot") != "booking_confirmed":
            return {}
        intent = _intent(tracker)
        text = _text(tracker)
        if intent == "affirm" or "确认" in text:
            return {"booking_confirmed": True}
        return self._unparsed(tracker, "booking_confirmed")

    # --- validation: an INVALID value gets a clear message, and the question is asked again ---
    def validate_booking_centre(self, value, dispatcher, tracker, domain):
        if value in bk.CENTRES:
            return {"booking_centre": value}
        dispatcher.utter_message(text=texts.BAD_CENTRE)
        return {"booking_centre": None}

    def validate_booking_date(self, value, dispatcher, tracker, domain):
        centre = tracker.get_slot("booking_centre") or "市级"
        if str(value).startswith(UNREADABLE):
            dispatcher.utter_message(text=texts.DATE_UNREADABLE, buttons=_date_buttons(book().open_dates(centre, today())))
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
        if str(value).startswith(INVALID):
            dispatcher.utter_message(text=texts.BAD_SLOT)
            return {"booking_slot": None}
        centre, date = tracker.get_slot("booking_centre"), tracker.get_slot("booking_date")
        if not centre or not date or str(date).startswith(INVALID):
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
        if str(value).startswith(INVALID):
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


def clear_booking() -> list[dict]:
    return [SlotSet(s, None) for s in BOOKING_SLOTS] + [SlotSet("booking_paused", False), SlotSet("requested_slot", None)]


def _has_booking(tracker: Tracker) -> bool:
    return booking_paused(tracker) or any(tracker.get_slot(s) is not None for s in BOOKING_SLOTS[:-1])


class ActionStopBooking(Action):
    """Leaves the booking form (不约了, 算了, 退出, a new request…): says so, forgets its answers."""

    def name(self) -> str:
        return "action_stop_booking"

    def run(self, dispatcher, tracker, domain):
        if slots := corrected(tracker):
            # "时间不对" is filed under deny, but it asks to change the time, not to stop booking.
            return [*reopen_for(dispatcher, slots), FollowupAction("booking_form")]
        dispatcher.utter_message(text=texts.BOOKING_STOPPED)
        return clear_booking()


class ActionAcknowledge(Action):
    """好的 / 不用了 / 算了 outside the form: goes on with a paused booking, leaves it, or just acknowledges."""

    def name(self) -> str:
        return "action_acknowledge"

    def run(self, dispatcher, tracker, domain):
        intent = _intent(tracker)
        if booking_paused(tracker):
            if intent == "affirm":
                return [FollowupAction("booking_form")]
            return ActionStopBooking().run(dispatcher, tracker, domain)
        if intent == "affirm":
            dispatcher.utter_message(text=texts.ACK)
            return []
        if _has_booking(tracker):
            return ActionStopBooking().run(dispatcher, tracker, domain)
        dispatcher.utter_message(text=texts.NOTHING_TO_STOP)
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


class ActionQueryBooking(Action):
    def name(self) -> str:
        return "action_query_booking"

    def run(self, dispatcher, tracker, domain):
        if (events := answered_instead(dispatcher, tracker, domain)) is not None:
            return events
        if asked := bk.parse_lookup(_text(tracker)):
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


class ActionCancelBooking(Action):
    """取消预约: first asks to confirm (remembering which booking), then cancels or keeps it."""

    def name(self) -> str:
        return "action_cancel_booking"

    def run(self, dispatcher, tracker, domain):
        intent, pending = _intent(tracker), tracker.get_slot("pending_cancel")
        if pending and intent == "affirm":
            b = book().cancel(pending, tracker.sender_id)
            dispatcher.utter_message(text=texts.CANCELLED.format(code=pending) if b else texts.CANCEL_GONE)
            return [SlotSet("pending_cancel", None)]
        if pending and intent in ("deny", "stop"):
            dispatcher.utter_message(text=texts.KEPT.format(code=pending))
            return [SlotSet("pending_cancel", None)]
        if not pending and (events := answered_instead(dispatcher, tracker, domain)) is not None:
            return events
        items = book().active_for(tracker.sender_id, today())
        if not items:
            dispatcher.utter_message(text=texts.NOTHING_TO_CANCEL)
            return [SlotSet("pending_cancel", None)]
        b = bk.booking_to_cancel(items, _text(tracker))
        if b is None:
            dispatcher.utter_message(text=texts.CANCEL_NOT_YOURS)
            return [SlotSet("pending_cancel", None)]
        dispatcher.utter_message(
            text=texts.CONFIRM_CANCEL.format(code=b.code, where=_describe(b.centre, b.date.isoformat(), b.slot)),
            buttons=[{"title": "确认取消", "payload": "确认"}, {"title": "不取消", "payload": "不是"}])
        return [SlotSet("pending_cancel", b.code)]


# ---------------------------------------------------------------- 材料预审 (checking materials)

class ActionCheckMaterials(Action):
    def name(self) -> str:
        return "action_check_materials"

    def run(self, dispatcher, tracker, domain):
        answerer = engine().get().answerer
        text = _text(tracker)
        found = answerer.lookup.run(text).guides
        g = found[0] if found else answerer.guides.get(tracker.get_slot("matter"))
        if g is None or not g.materials:
            dispatcher.utter_message(text=texts.WHICH_MATTER_FOR_CHECK)
            return []
        dispatcher.utter_message(text=check_materials(g, text))
        return [SlotSet("matter", g.id)]
