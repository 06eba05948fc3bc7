"""The labelled understanding set (bench/understanding_set.jsonl) is well-formed and never trained on.

Only the set's format and labels are checked here; how well the reader does on it is a figure that
`python -m bench.understanding` prints, never an assertion."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bench.understanding import (BACK_REFS, CORRECTION_SLOTS, KINDS, QTYPES, REQUESTS, SET, load_set)

ROOT = Path(__file__).resolve().parent.parent
FIELDS = {"id", "class", "text", "kinds", "matters", "qtypes", "comparison", "places", "person", "requests",
          "correction", "has_materials", "back_ref", "is_question"}
OPTIONAL = {"context", "step"}
PLACES = {"思明区", "湖里区", "集美区", "海沧区", "同安区", "翔安区", "东平县"}


def _norm(text: str) -> str:
    """Punctuation, spaces and annotations do not make a line new."""
    text = re.sub(r"\[([^\]]+)\](\([^)]*\)|\{[^}]*\})", r"\1", text)
    return re.sub(r"[\s，。！？、,.!?~～…:：；;\"'“”（）()]", "", text).lower()


@pytest.fixture(scope="module")
def items():
    return load_set(SET)


@pytest.fixture(scope="module")
def guide_ids():
    return {yaml.safe_load(p.read_text(encoding="utf-8"))["id"] for p in (ROOT / "knowledge/guides").glob("*.yaml")}


def _nlu_lines() -> set[str]:
    """Every example of the NLU training data (hand-written and generated from the guides) and test set."""
    lines = set()
    for path in [*(ROOT / "bot/data").glob("*.yml"), ROOT / "bot/tests/nlu_test.yml"]:
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu") or []:
            for ex in (block.get("examples") or "").splitlines():
                lines.add(_norm(ex.strip().removeprefix("- ")))
    from bot.training_data import build

    examples, names = build()
    lines.update(_norm(e) for v in examples.values() for e in v)
    lines.update(_norm(n) for n in names)
    return lines - {""}


def test_at_least_200_messages_with_unique_ids_and_texts(items):
    assert len(items) >= 200
    assert len({i["id"] for i in items}) == len(items)
    texts = [_norm(i["text"]) for i in items]
    assert len(set(texts)) == len(texts), [t for t in texts if texts.count(t) > 1]


def test_every_line_has_the_fields_of_the_reading_contract(items):
    for i in items:
        assert FIELDS <= set(i) <= FIELDS | OPTIONAL, i["id"]
        assert i["text"].strip(), i["id"]
        assert i["kinds"] and set(i["kinds"]) <= KINDS, i["id"]
        assert set(i["qtypes"]) <= QTYPES, i["id"]
        assert i["comparison"] is None or (i["comparison"] in QTYPES and i["comparison"] in i["qtypes"]), i["id"]
        assert set(i["requests"]) <= REQUESTS, i["id"]
        assert set(i["places"]) <= PLACES, i["id"]
        assert isinstance(i["is_question"], bool), i["id"]
        assert all(isinstance(m, str) and m for m in i["has_materials"]), i["id"]


def test_matters_and_back_references_are_guides_that_exist(items, guide_ids):
    for i in items:
        assert set(i["matters"]) <= guide_ids, (i["id"], set(i["matters"]) - guide_ids)
        assert len(set(i["matters"])) == len(i["matters"]), i["id"]
        assert i["back_ref"] is None or i["back_ref"] in BACK_REFS | guide_ids, i["id"]
        if i["comparison"]:
            assert len(i["matters"]) >= 2, f"{i['id']}: a comparison is across matters"


def test_corrections_name_a_form_slot(items, guide_ids):
    for i in items:
        c = i["correction"]
        if c is None:
            continue
        assert set(c) == {"slot", "value"} and c["slot"] in CORRECTION_SLOTS, i["id"]
        assert "correction" in i["kinds"], i["id"]
        if c["slot"] is None:
            assert c["value"] is None, i["id"]
        if c["slot"] == "matter":
            assert c["value"] in guide_ids, i["id"]
        if c["slot"] == "booking_phone":
            assert re.fullmatch(r"1\d{10}", c["value"]), i["id"]
        if c["slot"] == "booking_slot":
            assert re.fullmatch(r"morning|afternoon|\d{2}:\d{2}", c["value"]), i["id"]


def test_a_follow_up_carries_the_message_it_points_back_to(items):
    for i in items:
        if i["back_ref"] in BACK_REFS:
            assert i.get("context"), f"{i['id']}: a message that points back needs the previous message as context"


def test_every_class_of_issue_18_is_covered(items):
    classes = {i["class"] for i in items}
    assert {"greeting_question", "thanks_question", "handover", "several_matters", "comparison", "follow_up",
            "person", "correction", "materials", "steering_words_knowledge", "single_question", "smalltalk",
            "goodbye", "stop_cancel", "booking_request"} <= classes
    # corrections at every step of the form, and the bare 不对
    assert {c["slot"] for i in items if (c := i["correction"])} == CORRECTION_SLOTS


def test_no_message_is_shared_with_the_nlu_training_or_test_data(items):
    nlu = _nlu_lines()
    shared = [i["text"] for i in items if _norm(i["text"]) in nlu]
    assert not shared, shared
