"""Intent and entity F1 from Rasa's NLU cross-validation reports (written by `make rasa-test`).

    python -m bench.nlu [--results var/rasa/results/nlu]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.nlu")
    ap.add_argument("--results", type=Path, default=Path("var/rasa/results/nlu"))
    args = ap.parse_args(argv)
    reports = sorted(args.results.glob("*_report.json"))
    if not reports:
        print(f"no NLU reports under {args.results}: run `make rasa-test` first", file=sys.stderr)
        return 1
    print(f"{'report':<40} {'weighted F1':>11} {'macro F1':>9} {'support':>8}")
    for path in reports:
        data = json.loads(path.read_text())
        w, m = data.get("weighted avg", {}), data.get("macro avg", {})
        kind = "intent" if path.name.startswith("intent") else "entity"
        print(f"{kind + ': ' + path.stem.removesuffix('_report'):<40} {w.get('f1-score', float('nan')):>11.3f} "
              f"{m.get('f1-score', float('nan')):>9.3f} {int(w.get('support', 0)):>8}")
    intent = json.loads((args.results / "intent_report.json").read_text()) if (args.results / "intent_report.json").exists() else {}
    weak = sorted((v["f1-score"], k) for k, v in intent.items() if isinstance(v, dict) and "f1-score" in v and k not in ("weighted avg", "macro avg", "micro avg"))[:5]
    if weak:
        print("weakest intents: " + ", ".join(f"{k} {f:.2f}" for f, k in weak))
    return 0


if __name__ == "__main__":
    sys.exit(main())
