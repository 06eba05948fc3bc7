"""A message's e5 query vector, computed once by Rasa's featurizer and reused by retrieval.

Rasa's E5Featurizer (bot/e5_featurizer.py) encodes every message with the int8 ONNX export
("query: " + the message's text, mean-pooled, L2-normalised) for DIET. It also puts that vector in
the message's parse data (property PROPERTY), so it reaches the action server in
`tracker.latest_message`. There `seed_from_parse(encoder, tracker.latest_message)` puts it in the
query encoder's LRU cache under the very text it encoded: when retrieval then searches that same
text (a plain question, the usual case) it is not encoded a second time; when retrieval searches
something else (a greeting or a long message cut down to its question, a homophone typo repaired,
traditional characters folded) the cache simply misses and that text is encoded as before.

The vector is only taken when it was made by the same export (export.json's hash) with the same
prompt, and only by an encoder that runs that export (not the float model). Rasa's environment
runs onnxruntime 1.24.4 and the app's 1.32.0 (requirements/rasa.txt, note 7): the two agree to a
cosine of 0.997 or more (mean 0.9995) on the same input (tests/test_query_vector.py), not bit for bit;
the retrieval tests hold under far larger perturbations (tests/test_query_noise.py).

Plain numpy and the standard library only: the Rasa environment imports this module too.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

PROPERTY = "e5_query"
PROMPT = "query"


def pack(text: str, vector: np.ndarray, export: str, prompt: str = PROMPT) -> dict[str, Any]:
    """The parse-data value: float32 little-endian in base64 (2 KB for 384 dimensions, exact)."""
    v = np.ascontiguousarray(vector, dtype="<f4").reshape(-1)
    return {"text": text, "prompt": prompt, "export": export, "dim": int(v.size),
            "vector": base64.b64encode(v.tobytes()).decode("ascii")}


def from_parse(parse: dict | None) -> tuple[str, np.ndarray, str, str] | None:
    """(text, vector, export, prompt) from a Rasa parse dict (tracker.latest_message), or None
    when it carries none or a malformed one."""
    item = (parse or {}).get(PROPERTY)
    if not isinstance(item, dict):
        return None
    try:
        text, export, prompt = item["text"], item["export"], item["prompt"]
        v = np.frombuffer(base64.b64decode(item["vector"], validate=True), dtype="<f4").astype(np.float32)
    except (KeyError, TypeError, ValueError):
        return None
    if not (isinstance(text, str) and text and v.size == item.get("dim") and np.all(np.isfinite(v))):
        return None
    return text, v, str(export), str(prompt)


def seed_from_parse(encoder, parse: dict | None) -> bool:
    """Put the featurizer's vector in `encoder`'s query cache; True when it was taken."""
    got = from_parse(parse)
    if got is None or encoder.onnx is None:
        return False
    text, v, export, prompt = got
    if prompt != PROMPT or export != encoder.onnx.export_id or v.size != encoder.dim:
        return False
    from embeddings.text import normalize  # not at import: the Rasa environment only packs

    # Retrieval encodes normalised text: a message that normalisation changes is never looked up
    # under its own text, so it is not worth a cache slot.
    return normalize(text) == text and encoder.seed(text, v)
