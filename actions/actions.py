"""Rasa custom actions (run by the action server: `python -m rasa_sdk --actions actions.actions`).

They are thin: read the turn from the tracker, call the Answerer, send its messages, set slots.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.answer import HOTLINE, Answer, Context
from actions.engine import Engine
from actions.privacy import install_log_masking
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


class ActionHandoff(Action):
    def name(self) -> str:
        return "action_handoff"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any],
            reason: str | None = None) -> list[dict]:
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        if intent == "complain":
            text = (f"很抱歉给您带来不便。投诉和建议请拨打{HOTLINE}政务服务热线，或在i厦门提交："
                    "热线受理后会转交责任单位办理，并在规定时限内回复您办理结果。")
        else:
            text = f"已为您转接人工服务。您也可以直接拨打{HOTLINE}政务服务热线，工作人员会为您解答。"
        dispatcher.utter_message(text=text)
        return [SlotSet("low_confidence", 0)]
