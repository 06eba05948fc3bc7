"""Issue 18 through the real stack: messages understood the way the person means them.

The conversations are in tests/conversations_understanding.yaml (the format is described at its top):
greetings and thanks around a question, requests for a person inside longer messages, several
matters and comparisons, follow-ups that point back, other people, corrections at every step of the
booking form, 材料预审 from a message, knowledge questions with steering words, and no hand-over the
citizen did not ask for. Each turn checks what the user would notice — the reply's text and buttons
— and, where the reply payload contract says so, the kind / matter of the reply.

A conversation also fails when the action server (or any process of the stack) logs a traceback
while it runs: the app's fallback keeps the citizen served, but the suite must see the crash.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import reply_text

DATA = Path(__file__).resolve().parent / "conversations_understanding.yaml"
CONVERSATIONS = {c["name"]: c for c in yaml.safe_load(DATA.read_text(encoding="utf-8"))}
DAY = re.compile(r"(\d{1,2})月(\d{1,2})日")
TURN_KEYS = {"say", "must", "must_not", "match", "reply", "reply_not"}


def _fill(text: str, offered: list[tuple[str, str]], typed: bool = False) -> str:
    """"{date}" / "{date2}": the first / second day the form last offered as buttons — as a
    citizen types it ("12月3号") in a message, as the bot shows it ("12月3日") in an expectation."""
    for i, key in enumerate(("{date}", "{date2}")):
        if key in text:
            assert len(offered) > i, f"no {key} offered before {text!r} (offered: {offered})"
            month, day = offered[i]
            text = text.replace(key, f"{month}月{day}{'号' if typed else '日'}")
    return text


def _replies(messages: list[dict]) -> list[dict]:
    return [m["reply"] for m in messages if isinstance(m.get("reply"), dict)]


def _kinds(spec) -> set[str]:
    return {spec} if isinstance(spec, str) else set(spec)


def _reply_matches(reply: dict, spec: dict) -> bool:
    for key, want in spec.items():
        got = reply.get(key)
        if key == "kind":
            if got not in _kinds(want):
                return False
        elif key == "matters":
            have = set(reply.get("matters") or []) | ({reply["matter"]} if reply.get("matter") else set())
            if not set(want) <= have:
                return False
        elif got != want:
            return False
    return True


def _log_size(stack) -> int:
    return stack.log.stat().st_size if stack.log.exists() else 0


def test_the_conversation_file_is_well_formed():
    assert len(CONVERSATIONS) >= 45 + 20
    for name, conv in CONVERSATIONS.items():
        assert conv.get("covers") and conv.get("turns"), name
        for turn in conv["turns"]:
            assert set(turn) <= TURN_KEYS and turn.get("say"), (name, turn)
            assert all(isinstance(g, list) and g for g in turn.get("must", [])), (name, turn)


@pytest.mark.parametrize("name", list(CONVERSATIONS))
def test_conversation(stack, name):
    sender = f"u18-{name}"
    offered: list[tuple[str, str]] = []
    log_start = _log_size(stack)
    for i, turn in enumerate(CONVERSATIONS[name]["turns"]):
        sent = _fill(turn["say"], offered, typed=True)
        messages = stack.chat(sender, sent)
        text = reply_text(messages)
        where = f"{name} turn {i + 1} {sent!r} got:\n{text}\nreplies: {_replies(messages)}"
        for group in turn.get("must", []):
            group = [_fill(alt, offered) for alt in group]
            assert any(alt in text for alt in group), f"expected one of {group}; {where}"
        for bad in turn.get("must_not", []):
            bad = _fill(bad, offered)
            assert bad not in text, f"must not show {bad!r}; {where}"
        for pattern in turn.get("match", []):
            assert re.search(pattern, text), f"expected to match {pattern!r}; {where}"
        if "reply" in turn:
            assert any(_reply_matches(r, turn["reply"]) for r in _replies(messages)), \
                f"expected a reply payload with {turn['reply']}; {where}"
        if "reply_not" in turn:
            bad_kinds = _kinds(turn["reply_not"])
            assert not [r for r in _replies(messages) if r.get("kind") in bad_kinds], \
                f"no reply may be of kind {sorted(bad_kinds)}; {where}"
        days = DAY.findall(text)
        if len(days) >= 2:  # the form's date buttons (a summary names one day only)
            offered = days
    time.sleep(0.5)  # the processes' output reaches the log through honcho
    with open(stack.log, "rb") as f:
        f.seek(log_start)
        logged = f.read().decode("utf-8", "replace")
    assert "Traceback (most recent call last)" not in logged, \
        f"a process of the stack crashed during {name}:\n{logged[-3000:]}"
