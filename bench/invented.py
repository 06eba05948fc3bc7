"""Invented matters are refused, real phrasings keep working: figures on a labelled set.

    python -m bench.invented [--set bench/invented_set.jsonl]

Runs the Answerer in-process on the current index. An item marked invented is a success when
the answer names no guide and points to 12345; a real item is a success when it is answered
(with the labelled guide when one is given).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.invented")
    ap.add_argument("--set", type=Path, default=Path(__file__).with_name("invented_set.jsonl"))
    args = ap.parse_args(argv)
    from assistant.engine import Engine
    from settings import get_settings

    answerer = Engine(get_settings()).get().answerer
    items = [json.loads(line) for line in args.set.read_text(encoding="utf-8").splitlines() if line.strip()]
    ok = {True: 0, False: 0}
    total = {True: 0, False: 0}
    for it in items:
        a = answerer.run(it["q"])
        if it["invented"]:
            good = a.matter is None and a.kind in ("unknown", "fallback") and "12345" in a.text
        else:
            want = it.get("matter")
            offered = [b.payload for b in a.buttons] if a.kind == "clarify" else []
            good = a.kind in ("guide", "clarify") and (want is None or a.matter == want or any(want in p for p in offered))
        total[it["invented"]] += 1
        ok[it["invented"]] += good
        if not good:
            print(f"  MISS {'invented' if it['invented'] else 'real    '} {it['q']} -> {a.kind} {a.matter}")
    print(f"invented refused: {ok[True]}/{total[True]} ({ok[True] / max(1, total[True]):.1%})")
    print(f"real answered:    {ok[False]}/{total[False]} ({ok[False] / max(1, total[False]):.1%})")
    print(f"invented refused_rate={ok[True] / max(1, total[True]):.3f} real_answered_rate={ok[False] / max(1, total[False]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
