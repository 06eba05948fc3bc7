"""Rasa custom actions (run by the action server: `python -m rasa_sdk --actions actions.actions`).

They are thin: read the turn from the tracker, call the Answerer, send its messages, set slots.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from functools import lru_cache
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from assistant import bookings as bk
from assistant.answer import HOTLINE, Answer, Context
from assistant.db import Handoff, upgrade
from assistant.engine import Engine
from assistant.materials import check_materials
from assistant.privacy import install_log_masking, mask
from settings import get_settings

log = logging.getLogger("banshitong.actions")
install_log_masking()

INTENT_QTYPE = {
    "ask_materials": "materials", "ask_time": "time", "ask_fee": "fee", "ask_where": "where",
    "ask_scope": "scope", "ask_process": "process", "ask_conditions": "conditions",
}
# After this many unsure answers in a row the conversation goes to a person.
HANDOFF_AFTER = 2

_engine: Engine | None = None


def engine() -> Engine:
    global _engine
    if _engine is None:
        _engine = Engine(get_settings())
    return _engine


def send(dispatcher: CollectingDispatcher, a: Answer) -> None:
    dispatcher.utter_message(text=a.text, buttons=[{"title": b.title, "payload": b.payload} for b in a.buttons])


class ActionAnswer(Action):
    def name(self) -> str:
        return "action_answer"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        msg = tracker.latest_message or {}
        text = msg.get("text") or ""
        intent = (msg.get("intent") or {}).get("name")
        if text.startswith("/"):  # a button payload: intent and entities say everything
            text = ""
        answerer = engine().get().answerer
        matter = None
        for ent in msg.get("entities") or []:
            if ent.get("entity") == "matter":
                value = str(ent.get("value", ""))
                if value in answerer.guides:
                    matter = value
                else:
                    found = answerer.lookup.run(value).guides
                    matter = found[0].id if found else None
        context = Context(matter=tracker.get_slot("matter"), qtype=tracker.get_slot("qtype"))
        # A matter NLU picked out of a typed sentence is only a hint: the Answerer's own lookup
        # sees the whole sentence (and may find two matters and ask which one).
        a = answerer.run(text, context, qtype=INTENT_QTYPE.get(intent), matter=matter if not text else None)
        low = float(tracker.get_slot("low_confidence") or 0)
        low = low + 1 if a.kind == "fallback" else 0
        if low >= HANDOFF_AFTER:
            return ActionHandoff().run(dispatcher, tracker, domain, reason="连续两次未能回答")
        send(dispatcher, a)
        return [SlotSet("matter", a.matter or context.matter), SlotSet("qtype", a.qtype or context.qtype),
                SlotSet("low_confidence", low)]


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
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        reason = reason or ("投诉建议" if intent == "complain" else "用户要求转人工")
        matter = tracker.get_slot("matter")
        summary = {"matter": matter, "turns": conversation_summary(tracker)}
        with book().Session() as s:
            s.add(Handoff(sender=tracker.sender_id, reason=reason, matter=matter,
                          summary=json.dumps(summary, ensure_ascii=False), status="waiting"))
            s.commit()
        if intent == "complain":
            text = (f"很抱歉给您带来不便。您的投诉已记录并转人工处理；也可拨打{HOTLINE}政务服务热线投诉。"
                    "热线受理后会转交责任单位办理，并在规定时限内回复您办理结果。")
        elif reason == "连续两次未能回答":
            text = f"抱歉，这个问题我暂时答不好，已为您转接人工服务。您也可以直接拨打{HOTLINE}政务服务热线。"
        else:
            text = f"已为您转接人工服务，工作人员会查看您刚才的问题后回复您。您也可以直接拨打{HOTLINE}政务服务热线。"
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


def _text(tracker: Tracker) -> str:
    text = (tracker.latest_message or {}).get("text") or ""
    return "" if text.startswith("/") else text


def _intent(tracker: Tracker) -> str | None:
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


INVALID = "?"  # prefix of an answer that was given but not understood


def _date_buttons(days: list[dt.date]) -> list[dict]:
    return [{"title": bk.describe_date(d), "payload": f"{d.year}年{d.month}月{d.day}日"} for d in days]


class ValidateBookingForm(FormValidationAction):
    """Extracts every booking answer from any message and checks it; refusals offer alternatives."""

    def name(self) -> str:
        return "validate_booking_form"

    # --- extraction: from whatever the user wrote, whichever question was asked ---
    @staticmethod
    def _unparsed(tracker: Tracker, slot: str) -> dict:
        """An answer to the question just asked that could not be understood is still an answer:
        it goes to validation, which says what is wrong. A real question (ask_* intent, longer
        text) is left alone so the rules can answer it and then resume the form."""
        text = _text(tracker).strip()
        if tracker.get_slot("requested_slot") != slot or not text:
            return {}
        if (_intent(tracker) or "").startswith("ask_") and len(text) > 8:
            return {}
        if _intent(tracker) in ("cancel_appointment", "human_handoff", "complain"):
            return {}
        return {slot: INVALID + text}

    async def extract_booking_centre(self, dispatcher, tracker, domain):
        c = bk.parse_centre(_text(tracker))
        found = {"booking_centre": c} if c else self._unparsed(tracker, "booking_centre")
        # "我想预约办护照" also names the matter the booking is for.
        answerer = engine().get().answerer
        ids = [e.get("value") for e in (tracker.latest_message or {}).get("entities") or [] if e.get("entity") == "matter"]
        matter = next((i for i in ids if i in answerer.guides), None)
        if matter is None and _text(tracker):
            named = answerer.lookup.run(_text(tracker)).guides
            matter = named[0].id if named else None
        return {**found, "matter": matter} if matter else found

    async def extract_booking_date(self, dispatcher, tracker, domain):
        d = bk.parse_date(_text(tracker), today()) if _text(tracker) else None
        return {"booking_date": d.isoformat()} if d else self._unparsed(tracker, "booking_date")

    async def extract_booking_slot(self, dispatcher, tracker, domain):
        s = bk.parse_slot(_text(tracker))
        return {"booking_slot": s} if s else self._unparsed(tracker, "booking_slot")

    async def extract_booking_phone(self, dispatcher, tracker, domain):
        p = bk.parse_phone(_text(tracker))
        return {"booking_phone": p} if p else self._unparsed(tracker, "booking_phone")

    async def extract_booking_name(self, dispatcher, tracker, domain):
        text = _text(tracker)
        # A bare short answer is a name only when the name was asked; "我叫…" counts any time.
        if tracker.get_slot("requested_slot") != "booking_name" and not any(k in text for k in ("我叫", "名字", "姓名")):
            return {}
        if _intent(tracker) in ("affirm", "deny", "cancel_appointment", "greet", "thank"):
            return {}
        n = bk.parse_name(text)
        return {"booking_name": n} if n else self._unparsed(tracker, "booking_name")

    async def extract_booking_confirmed(self, dispatcher, tracker, domain):
        if tracker.get_slot("requested_slot") != "booking_confirmed":
            return {}
        intent = _intent(tracker)
        text = _text(tracker)
        if intent == "deny" or "取消" in text or "不约" in text:
            return {"booking_confirmed": False}
        if intent == "affirm" or "确认" in text:
            return {"booking_confirmed": True}
        return self._unparsed(tracker, "booking_confirmed")

    # --- validation: an INVALID value gets a clear message, and the question is asked again ---
    def validate_booking_centre(self, value, dispatcher, tracker, domain):
        if value in bk.CENTRES:
            return {"booking_centre": value}
        dispatcher.utter_message(text="没有识别出服务中心，请说区名（如“湖里区”）或“市行政服务中心”。")
        return {"booking_centre": None}

    def validate_booking_date(self, value, dispatcher, tracker, domain):
        centre = tracker.get_slot("booking_centre") or "市级"
        try:
            day = dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            dispatcher.utter_message(text="没有识别出日期，可以说“明天”“下周三”或“12月3号”。")
            return {"booking_date": None}
        problem = book().date_problem(day, today())
        if problem is None and not book().free_slots(centre, day):
            problem = f"{bk.describe_date(day)}{bk.CENTRES[centre]}的预约名额已满（部分名额留给现场取号）。"
        if problem:
            dispatcher.utter_message(text=problem + "您可以选择以下日期：",
                                     buttons=_date_buttons(book().open_dates(centre, today())))
            return {"booking_date": None}
        return {"booking_date": day.isoformat()}

    def validate_booking_slot(self, value, dispatcher, tracker, domain):
        if str(value).startswith(INVALID):
            dispatcher.utter_message(text="没有识别出时段，请选择或说“上午10点”“下午3点”。")
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
        dispatcher.utter_message(text="该时段已约满或不在办公时间（部分名额留给现场取号），请选择其他时段：",
                                 buttons=[{"title": s, "payload": s} for s in free])
        return {"booking_slot": None}

    def validate_booking_name(self, value, dispatcher, tracker, domain):
        if str(value).startswith(INVALID):
            dispatcher.utter_message(text="请告诉我办事人的姓名（2到6个汉字），例如“张三”。")
            return {"booking_name": None}
        return {"booking_name": value}

    def validate_booking_phone(self, value, dispatcher, tracker, domain):
        if not bk.PHONE.fullmatch(value or ""):
            dispatcher.utter_message(text="手机号码格式不对，请输入11位手机号码，例如 13800000000。")
            return {"booking_phone": None}
        return {"booking_phone": value}

    def validate_booking_confirmed(self, value, dispatcher, tracker, domain):
        if isinstance(value, bool):
            return {"booking_confirmed": value}
        dispatcher.utter_message(text="请回复“确认”完成预约，或回复“取消”放弃本次预约。")
        return {"booking_confirmed": None}


class ActionAskBookingDate(Action):
    def name(self) -> str:
        return "action_ask_booking_date"

    def run(self, dispatcher, tracker, domain):
        centre = tracker.get_slot("booking_centre") or "市级"
        days = book().open_dates(centre, today())
        dispatcher.utter_message(text=f"请问您想预约哪一天去{bk.CENTRES[centre]}？可以说“明天”“下周三”“12月3号”，或选择：",
                                 buttons=_date_buttons(days))
        return []


class ActionAskBookingSlot(Action):
    def name(self) -> str:
        return "action_ask_booking_slot"

    def run(self, dispatcher, tracker, domain):
        free = book().free_slots(tracker.get_slot("booking_centre") or "市级",
                                 dt.date.fromisoformat(tracker.get_slot("booking_date")))
        dispatcher.utter_message(text="请选择时段：", buttons=[{"title": s, "payload": s} for s in free])
        return []


def _describe(centre: str, date: str, slot: str) -> str:
    return f"{bk.CENTRES[centre]}，{bk.describe_date(dt.date.fromisoformat(date))} {slot}"


class ActionAskBookingConfirmed(Action):
    def name(self) -> str:
        return "action_ask_booking_confirmed"

    def run(self, dispatcher, tracker, domain):
        g = tracker.get_slot("matter")
        matter = engine().get().answerer.guides.get(g).name if g in engine().get().answerer.guides else "（未指定事项）"
        dispatcher.utter_message(
            text=("请确认预约信息：\n"
                  f"事项：{matter}\n地点：{_describe(tracker.get_slot('booking_centre'), tracker.get_slot('booking_date'), tracker.get_slot('booking_slot'))}\n"
                  f"姓名：{tracker.get_slot('booking_name')}\n手机：{bk.mask_phone(tracker.get_slot('booking_phone'))}"),
            buttons=[{"title": "确认预约", "payload": "确认预约"}, {"title": "取消", "payload": "不约了"}])
        return []


BOOKING_SLOTS = ["booking_centre", "booking_date", "booking_slot", "booking_name", "booking_phone", "booking_confirmed"]


class ActionSubmitBooking(Action):
    def name(self) -> str:
        return "action_submit_booking"

    def run(self, dispatcher, tracker, domain):
        reset = [SlotSet(s, None) for s in BOOKING_SLOTS]
        if not tracker.get_slot("booking_confirmed"):
            dispatcher.utter_message(response="utter_booking_aborted")
            return reset
        centre, date, slot = (tracker.get_slot(k) for k in ("booking_centre", "booking_date", "booking_slot"))
        b = book().create(sender=tracker.sender_id, matter=tracker.get_slot("matter"), centre=centre,
                          day=dt.date.fromisoformat(date), slot=slot, name=tracker.get_slot("booking_name"),
                          phone=tracker.get_slot("booking_phone"))
        if b is None:
            dispatcher.utter_message(text="抱歉，该时段刚刚被约满了，请重新预约其他时段。",
                                     buttons=[{"title": "重新预约", "payload": "/book_appointment"}])
            return reset
        log.info("booking %s created for %s", b.code, mask(b.phone))
        dispatcher.utter_message(
            text=(f"预约成功！预约号：{b.code}\n{_describe(centre, date, slot)}\n"
                  "请携带材料按时到达，凭预约号取号。未预约也可以现场取号办理。"),
            buttons=[{"title": "查询我的预约", "payload": "/query_appointment"},
                     {"title": "取消预约", "payload": "/cancel_appointment"}])
        return reset


class ActionQueryBooking(Action):
    def name(self) -> str:
        return "action_query_booking"

    def run(self, dispatcher, tracker, domain):
        items = book().active_for(tracker.sender_id, today())
        if not items:
            dispatcher.utter_message(text="您目前没有待办理的预约。需要的话可以说“预约办事”。",
                                     buttons=[{"title": "预约办事", "payload": "/book_appointment"}])
            return []
        lines = [f"您有{len(items)}个预约："]
        for b in items:
            lines.append(f"预约号 {b.code}：{_describe(b.centre, b.date.isoformat(), b.slot)}，"
                         f"办事人{b.name}，手机{bk.mask_phone(b.phone)}")
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
            dispatcher.utter_message(text=f"已取消预约号 {pending} 的预约。" if b else "该预约已不存在或已取消。")
            return [SlotSet("pending_cancel", None)]
        if pending and intent == "deny":
            dispatcher.utter_message(text=f"好的，预约号 {pending} 的预约为您保留。")
            return [SlotSet("pending_cancel", None)]
        items = book().active_for(tracker.sender_id, today())
        if not items:
            dispatcher.utter_message(text="您目前没有可以取消的预约。")
            return [SlotSet("pending_cancel", None)]
        text = _text(tracker).upper()
        b = next((x for x in items if x.code in text), items[0])
        dispatcher.utter_message(
            text=f"确定要取消预约号 {b.code}（{_describe(b.centre, b.date.isoformat(), b.slot)}）吗？",
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
            dispatcher.utter_message(text="请问您要办理哪个事项？例如：“结婚登记我带了身份证和户口本，够吗？”")
            return []
        dispatcher.utter_message(text=check_materials(g, text))
        return [SlotSet("matter", g.id)]
