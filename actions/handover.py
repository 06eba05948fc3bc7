"""转人工: queue the conversation for a 12345 agent, with a summary they read in the console."""

from __future__ import annotations

import json
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import book, mark, reading, text_of
from assistant import texts
from assistant.db import Handoff
from assistant.privacy import mask


def conversation_summary(tracker: Tracker, limit: int = 10) -> list[dict]:
    """The last user questions and bot answers, for the agent who takes over (numbers masked)."""
    turns = []
    for e in tracker.events:
        if e.get("event") == "user" and e.get("text") and not e["text"].startswith("/"):
            turns.append({"who": "user", "text": mask(e["text"])[:500]})
        elif e.get("event") == "bot" and e.get("text"):
            turns.append({"who": "bot", "text": mask(e["text"])[:500]})
    return turns[-limit:]


def hand_over(dispatcher: CollectingDispatcher, tracker: Tracker, reason: str) -> list[dict]:
    """Queues the conversation; the question asked with the request goes to the agent with it."""
    matter = tracker.get_slot("matter")
    question = reading(tracker).question
    summary = {"matter": matter, "question": mask(question)[:500] if question else None,
               "turns": conversation_summary(tracker)}
    with book().Session() as s:
        s.add(Handoff(sender=tracker.sender_id, reason=reason, matter=matter,
                      summary=json.dumps(summary, ensure_ascii=False), status="waiting"))
        s.commit()
    if reason == "投诉建议":
        text = texts.HANDOFF_COMPLAINT
    elif question:
        text = texts.HANDOFF_WITH_QUESTION.format(question=question[:60])
    else:
        text = texts.HANDOFF_ASKED
    dispatcher.utter_message(text=text)
    mark(dispatcher, "handoff", matter=matter, reason=reason)
    return [SlotSet("low_confidence", 0)]


class ActionHandoff(Action):
    """A hand-over asked while booking (the form's rule leaves the booking first)."""

    def name(self) -> str:
        return "action_handoff"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        complaint = "complaint" in reading(tracker).requests or (not text_of(tracker) and
                                                                 (tracker.latest_message.get("intent") or {}).get("name") == "complain")
        return hand_over(dispatcher, tracker, "投诉建议" if complaint else "用户要求转人工")
