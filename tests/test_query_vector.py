"""The message's e5 vector made once by Rasa's featurizer and reused by retrieval (issue 18, item 1).

The featurizer runs in the Rasa environment (onnxruntime 1.24.4), retrieval in the app's (1.32.0):
same export, same tokenizer, same prompt and text, one message per call — the vectors agree to a
cosine of 0.997 or more, not bit for bit (embeddings/query_vector.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from embeddings import query_vector
from embeddings.text import normalize

ROOT = Path(__file__).resolve().parent.parent
RASA_PY = ROOT / ".venv/rasa/bin/python"
LABELLED = ROOT / "bench" / "retrieval_set.jsonl"
MIN_COSINE = 0.995  # two onnxruntime versions on one export; measured min 0.9976, mean 0.9995 (294 texts)

# The featurizer as Rasa serves it: tokenizer then featurizer, one message per process() call.
SCRIPT = r"""
import json, sys, tempfile
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from bot.t2s_tokenizer import SimplifiedJiebaTokenizer
from bot.e5_featurizer import E5Featurizer

storage = LocalModelStorage(tempfile.mkdtemp())
tok = SimplifiedJiebaTokenizer.create(SimplifiedJiebaTokenizer.get_default_config(), storage, Resource("tok"),
                                      ExecutionContext(None, node_name="tok"))
feat = E5Featurizer.create(E5Featurizer.get_default_config(), storage, Resource("e5"), ExecutionContext(None, node_name="e5"))
out = []
for t in json.loads(sys.stdin.read()):
    m = Message(data={"text": t})
    tok.process([m])
    feat.process([m])
    out.append(m.as_dict(only_output_properties=True))
print(json.dumps(out, ensure_ascii=False))
"""


def parse_in_rasa(texts: list[str]) -> list[dict]:
    if not RASA_PY.exists():
        pytest.fail("Rasa environment missing: run `make setup`", pytrace=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "RASA_TELEMETRY_ENABLED": "false"}
    proc = subprocess.run([str(RASA_PY), "-W", "ignore", "-c", SCRIPT], input=json.dumps(texts, ensure_ascii=False),
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def questions() -> list[str]:
    items = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [i["q"] for i in items]


@pytest.fixture(scope="module")
def parsed(questions) -> dict[str, dict]:
    texts = questions + ["护照多少钱", "護照要帶什麼", "  护照多少钱  "]
    return dict(zip(texts, parse_in_rasa(texts)))


def fresh_encoder(engine, cache_size: int = 64):
    from embeddings.encoder import Encoder

    enc = Encoder.__new__(Encoder)  # the live encoder's model, a cache of its own
    enc.__dict__.update(engine.encoder.__dict__)
    enc.cache_size, enc._cache, enc._cache_lock = cache_size, OrderedDict(), threading.Lock()
    return enc


def test_the_parse_data_carries_the_vector_of_the_text_with_the_export_and_prompt(parsed, engine):
    p = parsed["护照多少钱"]
    text, v, export, prompt = query_vector.from_parse(p)
    assert text == p["text"] and prompt == "query" and export == engine.encoder.onnx.export_id
    assert v.shape == (384,) and float(np.linalg.norm(v)) == pytest.approx(1.0, abs=1e-4)
    # The features DIET sees are not in the output (only the shared vector is added to it).
    assert set(p) >= {"text", query_vector.PROPERTY}


def test_the_featurizer_vector_is_what_retrieval_would_compute_for_the_same_text(parsed, engine, questions):
    same = [q for q in questions if normalize(q) == q]
    assert len(same) >= 0.8 * len(questions)  # most questions reach retrieval as typed
    rasa = np.vstack([query_vector.from_parse(parsed[q])[1] for q in same])
    ours = np.vstack([engine.encoder.onnx.encode([q], "query") for q in same])  # one at a time, as served
    cos = np.sum(rasa * ours, axis=1)
    print(f"\nfeaturizer vs retrieval encoder, {len(same)} texts: cosine min {cos.min():.5f} mean {cos.mean():.6f}")
    assert cos.min() >= MIN_COSINE


def test_retrieval_finds_the_same_best_passage_with_either_vector(parsed, engine, questions):
    searcher = engine.get().searcher
    same = [q for q in questions if normalize(q) == q and not searcher.homophones.corrections(q)]
    ours = [searcher.run(q, k=1)[0].passage.id for q in same]
    enc = fresh_encoder(engine)
    agree = 0
    for q, mine in zip(same, ours):
        assert query_vector.seed_from_parse(enc, parsed[q])
        v = enc.queries([q])
        np.testing.assert_array_equal(v[0], query_vector.from_parse(parsed[q])[1])  # the seeded vector is used
        hits = _run_with(searcher, enc, q)
        agree += hits[0].passage.id == mine
    print(f"\nsame best passage with the featurizer's vector: {agree}/{len(same)}")
    assert agree >= 0.98 * len(same)


def _run_with(searcher, encoder, q):
    old = searcher.encoder
    searcher.encoder = encoder
    try:
        return searcher.run(q, k=1)
    finally:
        searcher.encoder = old


def test_a_seeded_text_is_not_encoded_again_and_other_texts_still_are(parsed, engine, monkeypatch):
    enc = fresh_encoder(engine)
    q = "护照多少钱"
    assert query_vector.seed_from_parse(enc, parsed[q])
    calls = []
    real = enc._encode_queries
    monkeypatch.setattr(enc, "_encode_queries", lambda texts: calls.append(list(texts)) or real(texts))
    enc.queries([q])
    assert calls == []  # the featurizer's vector: no second encoding
    # Retrieval searches the folded text of a traditional-character message: not what Rasa encoded.
    assert not query_vector.seed_from_parse(enc, parsed["護照要帶什麼"])
    assert not query_vector.seed_from_parse(enc, parsed["  护照多少钱  "])  # normalisation trims it
    enc.queries([normalize("護照要帶什麼")])
    assert calls == [["护照要带什么"]]


def test_a_vector_from_another_export_prompt_or_runtime_is_refused(parsed, engine):
    q = "护照多少钱"
    p = parsed[q]
    enc = fresh_encoder(engine)
    other = {**p, query_vector.PROPERTY: {**p[query_vector.PROPERTY], "export": "0" * 16}}
    assert not query_vector.seed_from_parse(enc, other)
    other = {**p, query_vector.PROPERTY: {**p[query_vector.PROPERTY], "prompt": "passage"}}
    assert not query_vector.seed_from_parse(enc, other)
    broken = {**p, query_vector.PROPERTY: {**p[query_vector.PROPERTY], "vector": "not base64!"}}
    assert query_vector.from_parse(broken) is None and not query_vector.seed_from_parse(enc, broken)
    assert query_vector.from_parse({"text": q}) is None and query_vector.from_parse(None) is None
    assert not query_vector.seed_from_parse(fresh_encoder(engine, cache_size=0), p)  # no cache, nothing to seed
    enc.onnx = None  # the float model: int8 vectors are not its vectors
    assert not query_vector.seed_from_parse(enc, p)
    assert len(enc._cache) == 0


def test_the_vector_reaches_the_action_server_through_the_real_stack(stack):
    """Rasa's NLU output, and so the tracker the action server is sent, carries the message's vector."""
    import httpx

    rasa, token = stack.env["BST_RASA_URL"], {"token": stack.env["BST_RASA_TOKEN"]}  # Rasa's API needs its token
    parse = httpx.post(f"{rasa}/model/parse", json={"text": "护照多少钱"}, params=token, timeout=60).json()
    text, v, _, _ = query_vector.from_parse(parse)
    assert text == "护照多少钱" and v.shape == (384,)
    stack.chat("qv-1", "办护照要多少钱")
    tracker = httpx.get(f"{rasa}/conversations/api-qv-1/tracker", params=token, timeout=60).json()
    got = query_vector.from_parse(tracker["latest_message"])
    assert got is not None and got[0] == "办护照要多少钱"
