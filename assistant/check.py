"""Check answer quality of an index version before publishing it.

    python -m embeddings build --stage        # build a new version without making it current
    python -m assistant.check VERSION           # answer knowledge/checks.jsonl with it, compare to current
    python -m embeddings activate VERSION     # publish (or keep the current one)

Check files use the question-file format of the evaluation set (turns, must, must_not). Exits 1
when the candidate passes fewer checks than the current version.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from assistant.answer import Answerer, Context
from assistant.engine import Engine
from embeddings import index as idx
from settings import ROOT, get_settings


def reply_of(answerer: Answerer, turns: list[str]) -> str:
    ctx, a = Context(), None
    for t in turns:
        a = answerer.run(t, ctx)
        ctx = Context(a.matter or ctx.matter, a.qtype or ctx.qtype)
    return (a.text + "".join(b.title for b in a.buttons)).replace("％", "%").replace(" ", "")


def passes(check: dict, text: str) -> bool:
    """Every `must` group has one of its alternatives in the reply, and no `must_not` text."""
    return (all(any(alt in text for alt in group) for group in check["must"])
            and not any(x in text for x in check.get("must_not", [])))


def run_checks(answerer: Answerer, checks: list[dict]) -> list[str]:
    """Ids of the failed checks."""
    return [c["id"] for c in checks if not passes(c, reply_of(answerer, c["turns"]))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m assistant.check", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("version", nargs="?", help="candidate version (default: the newest built)")
    ap.add_argument("--checks", type=Path, default=ROOT / "knowledge/checks.jsonl")
    args = ap.parse_args(argv)
    s = get_settings()
    checks = [json.loads(line) for line in args.checks.read_text(encoding="utf-8").splitlines() if line.strip()]
    versions = [m["version"] for m in idx.list_versions(s.index_dir)]
    candidate = args.version or (versions[0] if versions else None)
    if candidate not in versions:
        print(f"error: no index version {candidate}", file=sys.stderr)
        return 1
    engine = Engine(s)
    current = engine.current
    results = {}
    for label, loaded in (("current", current), ("candidate", engine._load(candidate))):
        failed = run_checks(loaded.answerer, checks)
        results[label] = len(checks) - len(failed)
        print(f"{label:9} {loaded.version}: {results[label]}/{len(checks)} passed" + (f"; failed: {', '.join(failed)}" if failed else ""))
    if results["candidate"] < results["current"]:
        print("candidate answers worse than the current version: do not publish it", file=sys.stderr)
        return 1
    print(f"ok to publish: python -m embeddings activate {candidate}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
