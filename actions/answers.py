"""The one action for a citizen's message outside the booking form's answers: the dialogue
(assistant/dialogue.py) decides from the message's Reading; this carries the steps out."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import booking
from actions.common import (answerer, booking_paused, confidence_of, intent_of, latest, log, mark, matter_named,
                            reading, send, state, text_of)
from actions.handover import hand_over
from assistant import booking_form as form
from assistant import texts
from assistant.answer import Answer, Context
from assistant.dialogue import Dialogue
from assistant.materials import check_materials
from assistant.understanding import INTENT_QTYPE, is_question
from embeddings.query_vector import seed_from_parse

TOPICS_KEPT = 6  # matters remembered for "回到刚才那个"


def _button_press(tracker: Tracker) -> tuple[str | None, str | None]:
    """A button's payload (/ask_fee{"matter": "passport"}): its question type and matter."""
    if (latest(tracker).get("text") or "").startswith("/"):
        qtype = INTENT_QTYPE.get(intent_of(tracker) or "")
        return qtype, matter_named(tracker)
    return None, None


def answer_events(tracker: Tracker, a: Answer) -> list[dict]:
    topics = [t for t in (tracker.get_slot("topics") or []) if t not in a.matters] + list(a.matters)
    misses = float(tracker.get_slot("low_confidence") or 0) + 1 if a.kind == "fallback" else 0
    return [SlotSet("matter", a.matter or tracker.get_slot("matter")), SlotSet("qtype", a.qtype or tracker.get_slot("qtype")),
            SlotSet("topics", topics[-TOPICS_KEPT:]), SlotSet("low_confidence", misses)]


class ActionRespond(Action):
    def name(self) -> str:
        return "action_respond"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        r, intent = reading(tracker), intent_of(tracker)
        # Rasa's featurizer already encoded this message with the same e5 export: retrieval reuses it.
        seed_from_parse(answerer().searcher.encoder, latest(tracker))
        qtype, matter = _button_press(tracker)
        if matter or (qtype and not r.text):
            a = answerer().run("", Context(tracker.get_slot("matter"), tracker.get_slot("qtype")), qtype=qtype,
                               matter=matter or tracker.get_slot("matter"))
            send(dispatcher, a, self._book_button(a, None))
            return answer_events(tracker, a)
        if booking_paused(tracker) and r.text and form.values(r.text) and not is_question(r.text, True) and not r.requests:
            # A booking detail typed after the form paused ("明天上午"): the citizen goes on booking.
            return [FollowupAction("booking_form")]
        turn = Dialogue(answerer()).run(r, state(tracker), intent, confidence_of(tracker))
        log.info("turn %s: intent=%s steps=%s", tracker.sender_id[-6:], intent, turn.kinds)
        events: list[dict] = []
        for step in turn.steps:
            if step.kind == "answer":
                send(dispatcher, step.answer, self._book_button(step.answer, r))
                events += answer_events(tracker, step.answer)
            elif step.kind == "handoff":
                # A booking under way is left, and the citizen is told so (nothing was booked).
                leaving = booking.stop_booking(dispatcher, tracker) if booking.has_booking(tracker) else []
                return [*leaving, *hand_over(dispatcher, tracker, step.reason), FollowupAction("action_listen")]
            elif step.kind == "correct_booking":
                return booking.correct(dispatcher, tracker)
            elif step.kind == "query_booking":
                # Asking for one's bookings leaves a booking under way (said, and its answers forgotten).
                if booking.has_booking(tracker):
                    return [*booking.stop_booking(dispatcher, tracker), *booking.show_bookings(dispatcher, tracker),
                            FollowupAction("action_listen")]
                return booking.show_bookings(dispatcher, tracker)
            elif step.kind == "cancel_booking":
                # Next: the cancel action (its confirmation's rules follow it).
                leaving = booking.stop_booking(dispatcher, tracker) if booking.has_booking(tracker) else []
                return [*leaving, FollowupAction("action_cancel_booking")]
            elif step.kind == "book":
                return [*events, *([SlotSet("matter", step.matter)] if step.matter else []), FollowupAction("booking_form")]
            elif step.kind == "stop":
                if booking.has_booking(tracker):
                    return [*booking.stop_booking(dispatcher, tracker), FollowupAction("action_listen")]
                return booking.acknowledge(dispatcher, tracker)
            elif step.kind == "acknowledge":
                return booking.acknowledge(dispatcher, tracker)
            elif step.kind == "check_materials":
                return materials_check(dispatcher, tracker, step.matter)
            elif step.kind == "respond":
                dispatcher.utter_message(response=step.response)
                mark(dispatcher, "smalltalk", matter=tracker.get_slot("matter"))
        return events

    @staticmethod
    def _book_button(a: Answer, r) -> list[dict]:
        asked_booking = r is not None and ("booking" in r.qtypes or "预约" in r.text)
        if (a.qtype == "booking" or asked_booking) and a.kind == "guide":
            # Asking about booking is a question; the button makes booking one tap away.
            a.buttons = [b for b in a.buttons if not b.payload.startswith("/book_appointment")]
            return [{"title": texts.BOOK_NOW, "payload": "/book_appointment"}]
        return []


def materials_check(dispatcher: CollectingDispatcher, tracker: Tracker, matter: str | None) -> list[dict]:
    """材料预审: what the person says they have, against the guide's checklist."""
    g = answerer().guides.get(matter or "") or answerer().guides.get(tracker.get_slot("matter") or "")
    if g is None or not g.materials:
        dispatcher.utter_message(text=texts.WHICH_MATTER_FOR_CHECK)
        mark(dispatcher, "clarify")
        return []
    had = reading(tracker).has_materials
    # Only what the person said they have counts: "想办护照" does not mean a passport is at hand.
    dispatcher.utter_message(text=check_materials(g, "、".join(had) if had else text_of(tracker)))
    mark(dispatcher, "materials_check", matter=g.id, qtype="materials",
         sources=[{"type": "guide", "id": g.id, "title": g.name}])
    return [SlotSet("matter", g.id)]


class ActionCheckMaterials(Action):
    """材料预审 asked for during the booking form (the form's rule pauses it first)."""

    def name(self) -> str:
        return "action_check_materials"

    def run(self, dispatcher, tracker, domain):
        r = reading(tracker)
        return materials_check(dispatcher, tracker, r.matters[0] if r.matters else None)
