"""How many e5 encodings a message costs across Rasa's NLU and the action server's retrieval, with
and without reusing the featurizer's vector (embeddings/query_vector.py).

    python -m bench.query_sharing

Rasa's featurizer encodes every message's text once. Retrieval then encodes the texts it searches
(cache off here, so every message counts as new); with the featurizer's vector seeded into the
encoder's cache, a searched text equal to the message's own text costs nothing more. Messages come
from bench/retrieval_set.jsonl (first questions) and, when present, ../shared/eval/conversations_dev.jsonl
(every typed turn, each as a first message: the measure is about texts, not context).
"""

from __future__ import annotations

import json
from pathlib import Path

from assistant.answer import Context
from assistant.engine import Engine
from settings import Settings

ROOT = Path(__file__).resolve().parent.parent
# The shared development conversations sit beside the checkout (../shared) or beside its worktrees folder.
DEV = next((d / "shared" / "eval" / "conversations_dev.jsonl" for d in (ROOT.parent, ROOT.parent.parent)
            if (d / "shared" / "eval" / "conversations_dev.jsonl").exists()), ROOT.parent / "shared")
SETS = {"labelled questions": ROOT / "bench" / "retrieval_set.jsonl", "dev conversations": DEV}


def messages(path: Path) -> list[str]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [t for r in rows for t in (r.get("turns") or [r["q"]]) if not t.startswith("/")]


def main() -> None:
    eng = Engine(Settings(query_cache_size=0))
    answerer, enc = eng.get().answerer, eng.encoder
    searched: list[str] = []
    encode = enc._encode_queries
    enc._encode_queries = lambda texts: searched.extend(texts) or encode(texts)
    for name, path in SETS.items():
        if not path.exists():
            continue
        msgs = messages(path)
        total = reused = 0
        for m in msgs:
            searched.clear()
            answerer.run(m, Context())
            texts = set(searched)
            total += len(texts)
            reused += m in texts
        n = len(msgs)
        print(f"{name}: {n} messages; encodings per message: NLU 1 + retrieval {total / n:.2f} = "
              f"{1 + total / n:.2f} today, {1 + (total - reused) / n:.2f} reusing the featurizer's vector "
              f"({reused} of {n} messages searched as typed)")


if __name__ == "__main__":
    main()
