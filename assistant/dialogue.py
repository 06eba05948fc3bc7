"""What the bot does with one message: the precedence between the parts of a Reading.

    steps = Dialogue(answerer).run(reading, state, intent)

A message is read once (understanding.Reading) and the decision is made here, the same for every
channel; the Rasa actions (actions/) only carry the steps out. The order, most binding first:

1. a request for a person anywhere in the message hands over (the question goes to the agent with it);
2. a correction while a booking is under way changes that answer and the form goes on;
3. the citizen's own bookings: look one up, cancel one, book (a booking verb, not a question about booking);
4. a stop ends what is under way;
5. materials the person lists, with a matter → 材料预审;
6. a knowledge question gets its answer — one per matter, side by side when compared; a greeting or
   thanks around it gets at most a short greeting;
7. only then steering: greeting, thanks, goodbye, small talk (the NLU intent), and a yes/no.

No hand-over the citizen did not ask for: after misses the bot asks to rephrase and offers 「转人工」.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from assistant import texts
from assistant.answer import Answer, Answerer, Button, Context
from assistant.understanding import Reading, _BOT_ADDRESSED

# Rasa intents that only steer the conversation; they stand only when the message holds no question.
SMALL_TALK = {"bot_challenge": "utter_iamabot", "ask_capabilities": "utter_capabilities",
              "insult": "utter_insult", "out_of_scope": "utter_out_of_scope"}
QUESTION_INTENTS = {"ask_general", "ask_materials", "ask_time", "ask_fee", "ask_where", "ask_scope",
                    "ask_process", "ask_conditions", "ask_booking", "inform", "nlu_fallback", "check_materials"}
SURE_INTENT = 0.8  # an NLU hand-over/complaint without its own words needs this confidence
MISSES_BEFORE_OFFER = 2  # misses in a row after which the rephrase prompt offers a person prominently


@dataclass
class State:
    """What the conversation holds (Rasa's slots), as the dialogue needs it."""
    matter: str | None = None
    qtype: str | None = None
    topics: tuple[str, ...] = ()
    misses: int = 0
    booking: bool = False  # a booking is under way (form active, or paused with answers kept)
    form_active: bool = False


@dataclass
class Step:
    """One thing to do. kind: answer | handoff | correct_booking | query_booking | cancel_booking |
    book | stop | check_materials | respond (a domain response by name) | acknowledge."""
    kind: str
    answer: Answer | None = None
    response: str | None = None
    reason: str | None = None
    matter: str | None = None


@dataclass
class Turn:
    steps: list[Step] = field(default_factory=list)
    reading: Reading | None = None

    @property
    def kinds(self) -> list[str]:
        return [s.kind for s in self.steps]


class Dialogue:
    def __init__(self, answerer: Answerer):
        self.answerer = answerer

    def run(self, reading: Reading, state: State, intent: str | None = None, confidence: float = 1.0) -> Turn:
        r = reading
        turn = Turn(reading=r)
        steps = turn.steps
        if "human" in r.requests or "complaint" in r.requests or \
                (intent in ("human_handoff", "complain") and confidence >= SURE_INTENT and not r.asks):
            reason = "投诉建议" if "complaint" in r.requests or intent == "complain" else "用户要求转人工"
            steps.append(Step("handoff", reason=reason))
            return turn
        if state.booking and r.correction is not None:
            steps.append(Step("correct_booking"))
            return turn
        if "query_booking" in r.requests:
            steps.append(Step("query_booking"))
            return turn
        if "cancel_booking" in r.requests:
            steps.append(Step("cancel_booking"))
            return turn
        if "stop" in r.requests and not r.asks:
            steps.append(Step("stop"))
            return turn
        context = Context(state.matter, state.qtype, state.topics)
        if r.has_materials:
            matter = r.matters[0] if r.matters else state.matter
            g = self.answerer.guides.get(matter or "")
            if g is not None and g.materials:
                steps.append(Step("check_materials", matter=g.id))
                return turn
        wants_booking = "book" in r.requests or (intent == "book_appointment" and not r.asks)
        if r.asks and not (wants_booking and not r.qtypes):
            a = self.answerer.run(r.text, context, reading=r)
            small = SMALL_TALK.get(intent or "")
            if small and not r.matters and (_BOT_ADDRESSED.search(r.text) or
                                            (a.kind in ("fallback", "empty") and intent in ("out_of_scope", "insult"))):
                steps.append(Step("respond", response=small))  # "你能做什么", "今天天气怎么样"
                return turn
            if a.kind == "fallback":
                a = self._missed(a, state)
            elif "greeting" in r.kinds:
                a.text = texts.SHORT_GREETING + a.text
            steps.append(Step("answer", answer=a))
            if wants_booking:
                steps.append(Step("book", matter=a.matter))
            return turn
        if wants_booking:
            steps.append(Step("book", matter=r.matters[0] if r.matters else None))
            return turn
        if r.matters or r.category or r.invented:
            # A matter named without a question ("护照", "我妈身份证过期了 要换个新的"): its overview.
            steps.append(Step("answer", answer=self.answerer.run(r.text, context, reading=r)))
            return turn
        if intent in ("affirm", "deny", "stop"):
            steps.append(Step("acknowledge"))
            return turn
        if "goodbye" in r.kinds or intent == "goodbye":
            steps.append(Step("respond", response="utter_goodbye"))
            return turn
        if "thanks" in r.kinds or intent == "thank":
            steps.append(Step("respond", response="utter_thank"))
            return turn
        if "greeting" in r.kinds or intent == "greet":
            steps.append(Step("respond", response="utter_greet"))
            return turn
        if intent in SMALL_TALK:
            steps.append(Step("respond", response=SMALL_TALK[intent]))
            return turn
        if not r.text:
            steps.append(Step("answer", answer=self.answerer.run("", context)))
            return turn
        # A statement or a question intent the words did not mark ("我从来没办过", "户口在外地"):
        # the answer code decides with the conversation's context, and refuses honestly when unsure.
        a = self.answerer.run(r.text, context, reading=r)
        steps.append(Step("answer", answer=self._missed(a, state) if a.kind == "fallback" else a))
        return turn

    @staticmethod
    def _missed(a: Answer, state: State) -> Answer:
        """No answer: ask to rephrase, offer a person — never hand over unasked."""
        if state.misses + 1 >= MISSES_BEFORE_OFFER:
            a.text = texts.REPHRASE_OR_PERSON
        a.buttons = [Button(texts.HANDOFF_BUTTON, "/human_handoff")]
        return a
