"""Answer evaluator: runs a question file against a running server and scores the replies.

    python -m bench.answers --url http://127.0.0.1:8000 --file ../shared/eval/dev.jsonl --user admin --password …

(/api/search needs a staff login; an admin account is not rate-limited on /api/chat either.)

Each line's turns go through ``POST /api/chat`` with one sender per line (a fresh conversation).
The reply to the last turn (every message's ``text`` plus button titles, full-width ％ folded to %,
spaces removed) must contain one alternative of every ``must`` group and none of ``must_not``;
``search`` groups must appear in the top 3 of ``GET /api/search?q=<last turn>&k=3`` (texts and
titles). Prints pass rates by kind and lists every failure. Exit status 1 when anything failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import os

import httpx


def fold(text: str) -> str:
    """The comparison form: full-width percent folded, all whitespace removed."""
    return "".join(text.replace("％", "%").split())


def reply_text(messages) -> str:
    """What a user sees: every message's text plus its button titles."""
    if not isinstance(messages, list):
        return ""
    parts: list[str] = []
    for m in messages:
        if not isinstance(m, dict):
            continue
        parts.append(m.get("text") or "")
        parts.extend((b or {}).get("title") or "" for b in m.get("buttons") or [])
    return "\n".join(parts)


def check_groups(text: str, groups: list[list[str]]) -> list[list[str]]:
    """The groups none of whose alternatives occurs in text."""
    folded = fold(text)
    return [g for g in groups if not any(fold(alt) in folded for alt in g)]


class Client:
    def __init__(self, url: str, timeout: float = 60.0, user: str | None = None, password: str | None = None):
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
        # /api/search needs a staff login; an admin account is also not rate-limited on /api/chat.
        if user:
            r = self.http.post("/api/auth/login", json={"username": user, "password": password or ""})
            if r.status_code != 200:
                raise SystemExit(f"login as {user} failed: {r.status_code} {r.text[:200]}")

    def chat(self, sender: str, message: str) -> list[dict]:
        r = self.http.post("/api/chat", json={"sender": sender, "message": message})
        # An empty message is a 4xx whose body is still a chat reply; anything else is an error.
        try:
            body = r.json()
        except ValueError:
            body = None
        if isinstance(body, list):
            return body
        r.raise_for_status()
        raise ValueError(f"/api/chat returned {r.status_code}: {r.text[:200]}")

    def search(self, q: str, k: int = 3) -> list[dict]:
        if not q.strip():
            return []
        r = self.http.get("/api/search", params={"q": q, "k": k})
        r.raise_for_status()
        return r.json()["hits"]


def evaluate(client: Client, item: dict, run_id: str) -> dict:
    sender = f"bench-{run_id}-{item.get('id', 'x')}"[:64]
    reply: list[dict] = []
    error = None
    t0 = time.perf_counter()
    try:
        for turn in item["turns"]:
            reply = client.chat(sender, turn)
    except (httpx.HTTPError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    text = reply_text(reply)
    problems = []
    if error:
        problems.append(f"error: {error}")
    for g in check_groups(text, item.get("must", [])):
        problems.append(f"missing one of {g}")
    folded = fold(text)
    for s in item.get("must_not", []):
        if fold(s) in folded:
            problems.append(f"contains forbidden {s!r}")
    if item.get("search"):
        try:
            hits = client.search(item["turns"][-1] if item["turns"] else "")
            top = "\n".join(f"{h.get('title', '')} {h.get('text', '')}" for h in hits)
            for g in check_groups(top, item["search"]):
                problems.append(f"search top 3 lacks one of {g}")
        except httpx.HTTPError as exc:
            problems.append(f"search error: {type(exc).__name__}: {exc}")
    return {"id": item.get("id"), "kind": item.get("kind", "?"), "ok": not problems, "problems": problems,
            "reply": text, "turns": item["turns"], "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.answers", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--file", default="../shared/eval/dev.jsonl", type=Path)
    ap.add_argument("--kind", action="append", help="only these kinds (repeatable)")
    ap.add_argument("--user", default=os.environ.get("BST_BENCH_USER"),
                    help="staff account to log in with (default: $BST_BENCH_USER); an admin is not rate-limited")
    ap.add_argument("--password", default=os.environ.get("BST_BENCH_PASSWORD"),
                    help="its password (default: $BST_BENCH_PASSWORD)")
    ap.add_argument("--show", type=int, default=300, help="characters of a failing reply to print")
    args = ap.parse_args(argv)

    items = [json.loads(line) for line in args.file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.kind:
        items = [i for i in items if i.get("kind") in args.kind]
    client = Client(args.url, user=args.user, password=args.password)
    run_id = uuid.uuid4().hex[:8]  # a new conversation per line and per run
    results = [evaluate(client, item, run_id) for item in items]

    by_kind: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_kind[r["kind"]].append(r)
    fails = [r for r in results if not r["ok"]]
    for r in fails:
        print(f"FAIL {r['id']} [{r['kind']}] {' → '.join(r['turns'])}")
        for p in r["problems"]:
            print(f"     {p}")
        print(f"     reply: {r['reply'][: args.show]!r}")
    print()
    print(f"{'kind':<10} {'pass':>5} {'total':>5} {'rate':>6}")
    for kind in sorted(by_kind):
        rs = by_kind[kind]
        ok = sum(r["ok"] for r in rs)
        print(f"{kind:<10} {ok:>5} {len(rs):>5} {ok / len(rs):>6.1%}")
    ok = len(results) - len(fails)
    print(f"{'all':<10} {ok:>5} {len(results):>5} {ok / max(1, len(results)):>6.1%}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
