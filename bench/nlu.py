"""Intent F1 and the top confusions from a Rasa NLU evaluation report.

    python -m bench.nlu [--results var/rasa/results/nlu_test]

`make rasa-test` writes the report for the hand-written test set bot/tests/nlu_test.yml (never
trained on); `make nlu-crossval` writes cross-validation reports under var/rasa/results/nlu.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

SUMMARY = ("weighted avg", "macro avg", "micro avg", "accuracy")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.nlu")
    ap.add_argument("--results", type=Path, default=Path("var/rasa/results/nlu_test"))
    ap.add_argument("--top", type=int, default=8)
    args = ap.parse_args(argv)
    report_path = args.results / "intent_report.json"
    if not report_path.exists():
        print(f"no intent report under {args.results}: run `make rasa-test` first", file=sys.stderr)
        return 1
    report = json.loads(report_path.read_text(encoding="utf-8"))
    w, m = report.get("weighted avg", {}), report.get("macro avg", {})
    print(f"intent F1 ({args.results}): weighted {w.get('f1-score', float('nan')):.3f}, "
          f"macro {m.get('f1-score', float('nan')):.3f}, accuracy {report.get('accuracy', float('nan')):.3f}, "
          f"{int(w.get('support', 0))} examples")
    per = sorted((v["f1-score"], k, v.get("support", 0)) for k, v in report.items()
                 if isinstance(v, dict) and "f1-score" in v and k not in SUMMARY)
    print("weakest intents: " + ", ".join(f"{k} {f:.2f} (n={n})" for f, k, n in per[:6]))
    # Confusions: from the per-example errors file Rasa writes next to the report.
    errors_path = args.results / "intent_errors.json"
    errors = json.loads(errors_path.read_text(encoding="utf-8")) if errors_path.exists() else []
    pairs = Counter((e["intent"], (e.get("intent_prediction") or {}).get("name")) for e in errors)
    if pairs:
        print("top confusions (true -> predicted: count, example):")
        for (true, pred), n in pairs.most_common(args.top):
            example = next(e["text"] for e in errors if e["intent"] == true and (e.get("intent_prediction") or {}).get("name") == pred)
            print(f"  {true} -> {pred}: {n}  e.g. {example}")
    else:
        print("top confusions: none")
    print(f"nlu intent_f1={w.get('f1-score', float('nan')):.3f} errors={len(errors)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
