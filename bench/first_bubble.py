"""How long is the first chat bubble? Issue 21: on a 390×844 phone an answer longer than a screen
hides the buttons; the target is a median of at most 200 characters.

    python -m bench.first_bubble                                  # in-process, through the Answerer
    python -m bench.first_bubble --url http://127.0.0.1:8000 --user admin --password …   # a running stack

For every case of the question files (default: the development set and the development
conversations in ../shared/eval/) the reply to the LAST turn is taken, and its first message's
`text` is measured in characters (what the citizen sees before anything else; `reply.detail`
behind 「展开全部」 is not counted). Prints median, p90 and max per file and overall, and the longest
cases.

In-process, the conversation's context is carried between turns the way the dialogue keeps it
(the matter and question type of the last guide answer), so follow-ups ("那要多久") resolve; the
booking form and hand-overs are Rasa's and are not run, so those cases only approximate the stack
(use --url for the exact figures). An empty last turn is skipped (there is no answer to measure).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared/eval"
FILES = [EVAL / "dev.jsonl", EVAL / "conversations_dev.jsonl"]
TARGET_MEDIAN = 200


def cases(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def in_process_first_bubbles(files: list[Path]) -> dict[str, list[tuple[str, str]]]:
    from assistant.answer import Context
    from assistant.engine import Engine
    from settings import get_settings

    answerer = Engine(get_settings()).get().answerer
    out: dict[str, list[tuple[str, str]]] = {}
    for path in files:
        rows = []
        for case in cases(path):
            turns = case["turns"]
            if not turns or not turns[-1].strip():
                continue
            ctx = Context()
            answer = None
            for turn in turns:
                answer = answerer.run(turn, ctx)
                if answer.kind == "guide" and answer.matter:
                    ctx = Context(matter=answer.matter, qtype=answer.qtype)
            rows.append((case["id"], answer.text if answer else ""))
        out[path.name] = rows
    return out


def stack_first_bubbles(files: list[Path], url: str, user: str | None, password: str | None) -> dict[str, list[tuple[str, str]]]:
    from bench.answers import Client

    client = Client(url, timeout=120, user=user, password=password)
    out: dict[str, list[tuple[str, str]]] = {}
    for path in files:
        rows = []
        for case in cases(path):
            turns = case["turns"]
            if not turns or not turns[-1].strip():
                continue
            sender = f"bubble-{uuid.uuid4().hex[:10]}"
            messages: list[dict] = []
            for turn in turns:
                messages = client.chat(sender, turn)
            first = next((m.get("text") or "" for m in messages if m.get("text")), "")
            rows.append((case["id"], first))
        out[path.name] = rows
    return out


def p90(values: list[int]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def summary(label: str, lengths: list[int]) -> str:
    if not lengths:
        return f"{label:<26} n=0"
    return (f"{label:<26} n={len(lengths):<3} median={statistics.median(lengths):>5.0f}  p90={p90(lengths):>5.0f}  "
            f"max={max(lengths):>4}  ≤{TARGET_MEDIAN}: {sum(n <= TARGET_MEDIAN for n in lengths)}/{len(lengths)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", action="append", type=Path, help="question file(s); default: dev + conversations_dev")
    ap.add_argument("--url", help="measure a running server through POST /api/chat instead of in-process")
    ap.add_argument("--user"), ap.add_argument("--password")
    ap.add_argument("--longest", type=int, default=5, help="list the N longest first bubbles")
    args = ap.parse_args(argv)
    files = args.file or FILES
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        print("question file not found: " + ", ".join(missing), file=sys.stderr)
        return 2
    rows = (stack_first_bubbles(files, args.url, args.user, args.password) if args.url
            else in_process_first_bubbles(files))
    everything: list[tuple[str, str]] = []
    print(f"first bubble length in characters ({'stack ' + args.url if args.url else 'in-process Answerer'})")
    for name, items in rows.items():
        print(summary(name, [len(t) for _, t in items]))
        everything += items
    print(summary("all", [len(t) for _, t in everything]))
    print(f"longest {args.longest}:")
    for cid, text in sorted(everything, key=lambda r: -len(r[1]))[: args.longest]:
        print(f"  {len(text):>4}  {cid}  {text[:40].replace(chr(10), ' / ')}…")
    return 0


if __name__ == "__main__":
    sys.exit(main())
