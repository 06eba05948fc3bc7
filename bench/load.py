"""Load benchmark of a running stack: the app's chat and search beside Rasa's own REST webhook.

    python -m bench.load                                  # starts its own stack (ports 19000/19005/19055)
    python -m bench.load --url http://127.0.0.1:8000 --rasa-url http://127.0.0.1:5005

Measured in one run, loopback only, with a bounded number of requests per phase (issue 13):

1. /api/chat, realistic questions, 8 concurrent clients: p50 and throughput;
2. Rasa's own REST webhook (/webhooks/rest/webhook), the same questions, 8 concurrent;
3. Rasa's webhook on "你好" (a greeting: no retrieval), 8 concurrent;
4. /api/search one at a time (p50), then 8 concurrent (throughput), on questions the app has not
   searched before in this run (its query-embedding cache is cold for them); a second pass over the
   one-at-a-time questions shows the cached figure.

Questions come from bench/retrieval_set.jsonl (shuffled with a fixed seed); every chat or webhook
request is a new conversation (sender), as a citizen's first question is. If /api/search needs
credentials, pass --user/--password (a staff account; env BST_BENCH_USER/BST_BENCH_PASSWORD), --header or
--cookie. The LAST line printed is
``load chat_p50_ms=… rasa_p50_ms=… chat_rps=… rasa_greeting_rps=… search_p50_ms=… search_rps=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.stack import ProcfileStack

ROOT = Path(__file__).resolve().parent.parent
SET = ROOT / "bench" / "retrieval_set.jsonl"
PORTS = {"app": 19000, "rasa": 19005, "actions": 19055}

# Issue 13's measurements before this work (fresh `make run`, 2 cores, 8 concurrent clients).
BASELINE = {
    "chat": (423, 18.6), "rasa": (396, 20.0), "greeting": (263, 28.3),
    "search_conc": (159, 49.7), "search_seq": (21, 48.2),
}


class AuthError(RuntimeError):
    pass


@dataclass
class Phase:
    name: str
    latencies: list[float]
    seconds: float
    errors: int

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else float("nan")

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds > 0 else float("nan")


async def run_phase(name: str, client: httpx.AsyncClient, make_request, items: list, concurrency: int) -> Phase:
    """Send one request per item with `concurrency` clients; time each and the whole phase."""
    queue: asyncio.Queue = asyncio.Queue()
    for it in items:
        queue.put_nowait(it)
    latencies: list[float] = []
    errors = 0

    async def worker():
        nonlocal errors
        while True:
            try:
                it = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            t0 = time.perf_counter()
            try:
                r = await make_request(client, it)
            except httpx.HTTPError:
                errors += 1
                continue
            dt = time.perf_counter() - t0
            if r.status_code in (401, 403):
                raise AuthError(f"{r.request.url.path} answered {r.status_code}: {r.text[:200]}")
            if r.status_code == 200:
                latencies.append(dt)
            else:
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase = Phase(name, latencies, time.perf_counter() - t0, errors)
    print(f"  {name:<34} {len(latencies):>4} ok {errors:>3} errors  p50 {phase.p50_ms:7.1f} ms  "
          f"{phase.rps:6.1f} req/s", file=sys.stderr, flush=True)
    return phase


def chat(client, q):
    return client.post("/api/chat", json={"sender": f"load-{uuid.uuid4().hex[:12]}", "message": q})


def rasa_token() -> str:
    """The token the Rasa server was started with (bot/serve.py): the environment's, else this checkout's."""
    from scripts.secret import secret

    return os.environ.get("BST_RASA_TOKEN") or secret("rasa_token")


def rasa_webhook(rasa_url: str):
    headers = {"Authorization": f"Bearer {rasa_token()}"}  # bot/channels.py

    def send(client, q):
        return client.post(f"{rasa_url}/webhooks/banshitong/webhook", headers=headers,
                           json={"sender": f"load-{uuid.uuid4().hex[:12]}", "message": q})
    return send


def search(client, q):
    return client.get("/api/search", params={"q": q, "k": 5})


async def measure(args, questions: list[str], headers: dict, cookies: dict) -> dict[str, Phase]:
    n, c = args.requests, args.concurrency
    limits = httpx.Limits(max_connections=c + 2, max_keepalive_connections=c + 2)
    timeout = httpx.Timeout(120.0, connect=5.0)
    async with httpx.AsyncClient(base_url=args.url, headers=headers, cookies=cookies, limits=limits,
                                 timeout=timeout) as client:
        # Fail early, with a clear message, when search needs credentials we do not have.
        r = await search(client, "护照怎么办")
        if r.status_code in (401, 403):
            raise AuthError(f"/api/search answered {r.status_code}: {r.text[:200]}")
        r.raise_for_status()
        send_rasa = rasa_webhook(args.rasa_url)
        # Warm-up (not counted): every path once per client, so lazy loading is out of the figures.
        warm = questions[-2 * c:]
        await run_phase("warm-up chat", client, chat, warm, c)
        await run_phase("warm-up rasa webhook", client, send_rasa, warm, c)
        await run_phase("warm-up search", client, search, warm, c)

        ask = (questions * (n // len(questions) + 1))[:n]
        out = {}
        out["chat"] = await run_phase(f"/api/chat, {c} concurrent", client, chat, ask, c)
        out["rasa"] = await run_phase(f"rasa webhook, {c} concurrent", client, send_rasa, ask, c)
        out["greeting"] = await run_phase(f"rasa webhook 你好, {c} concurrent", client, send_rasa, ["你好"] * n, c)
        # Search on questions it has not seen in this run (cold query-embedding cache).
        seen = set(warm)
        fresh = [q for q in reversed(questions) if q not in seen]
        seq, conc = fresh[: args.search_requests], fresh[args.search_requests : 3 * args.search_requests]
        out["search_seq"] = await run_phase("/api/search, one at a time", client, search, seq, 1)
        out["search_conc"] = await run_phase(f"/api/search, {c} concurrent", client, search, conc, c)
        out["search_cached"] = await run_phase("/api/search, one at a time, repeated", client, search, seq, 1)
    return out


def report(res: dict[str, Phase], concurrency: int) -> None:
    rows = [
        ("/api/chat, questions", "chat"),
        ("Rasa webhook, same questions", "rasa"),
        ("Rasa webhook, 你好 (no retrieval)", "greeting"),
        (f"/api/search, {concurrency} concurrent", "search_conc"),
        ("/api/search, one at a time", "search_seq"),
        ("/api/search, one at a time, cached query", "search_cached"),
    ]
    print()
    print(f"{'path':<42} {'p50 ms':>8} {'(before)':>9} {'req/s':>8} {'(before)':>9} {'errors':>7}")
    for label, key in rows:
        p = res[key]
        b = BASELINE.get(key)
        bp, br = (f"{b[0]:.0f}", f"{b[1]:.1f}") if b else ("", "")
        print(f"{label:<42} {p.p50_ms:>8.1f} {bp:>9} {p.rps:>8.1f} {br:>9} {p.errors:>7}")
    chat, rasa, greet = res["chat"], res["rasa"], res["greeting"]
    seq, conc = res["search_seq"], res["search_conc"]
    print()
    print("targets (issue 13):")
    print(f"  /api/search p50 one at a time ≤ 8 ms: {seq.p50_ms:.1f} ms")
    print(f"  /api/search ≥ 200 req/s at {concurrency} concurrent: {conc.rps:.1f} req/s")
    print(f"  /api/chat throughput ≥ 80% of Rasa's on 你好: {chat.rps / greet.rps:.0%}")
    print(f"  the app adds ≤ 5% to Rasa's latency: {chat.p50_ms / rasa.p50_ms - 1:+.1%} "
          f"(p50 {chat.p50_ms:.0f} vs {rasa.p50_ms:.0f} ms)")
    print(f"load chat_p50_ms={chat.p50_ms:.1f} rasa_p50_ms={rasa.p50_ms:.1f} chat_rps={chat.rps:.1f} "
          f"rasa_greeting_rps={greet.rps:.1f} search_p50_ms={seq.p50_ms:.1f} search_rps={conc.rps:.1f}")


class OwnStack(ProcfileStack):
    """The project's Procfile under honcho on loopback bench ports, with throwaway databases."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="bench-load-"))
        self.env = dict(os.environ)
        self.env.update({
            "PYTHONPATH": str(ROOT), "RASA_TELEMETRY_ENABLED": "false", "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "BST_APP_PORT": str(PORTS["app"]), "BST_RASA_PORT": str(PORTS["rasa"]),
            "BST_ACTION_PORT": str(PORTS["actions"]),
            "BST_RASA_URL": f"http://127.0.0.1:{PORTS['rasa']}",
            "BST_ACTION_URL": f"http://127.0.0.1:{PORTS['actions']}",
            "BST_ACTION_WEBHOOK": f"http://127.0.0.1:{PORTS['actions']}/webhook",
            "BST_TRACKER_DIALECT": "sqlite", "BST_TRACKER_DB": str(self.dir / "trackers.db"),
            "BST_DATABASE_URL": f"sqlite:///{self.dir / 'app.db'}",
            # The bench chats from one address far faster than a citizen: no per-client limits.
            "BST_CHAT_PER_MINUTE": "0", "BST_SEARCH_PER_MINUTE": "0",
        })
        super().__init__(self.env, self.dir / "stack.log", f"http://127.0.0.1:{PORTS['app']}")
        self.rasa_url = self.env["BST_RASA_URL"]

    def start(self, timeout: float = 300) -> None:
        print(f"starting a stack (log: {self.log}) ...", file=sys.stderr, flush=True)
        super().start(timeout)

    def admin(self) -> tuple[str, str]:
        """A throwaway admin of this stack's database (admins are not rate-limited)."""
        from assistant import accounts
        from assistant.db import sessions, upgrade

        user, password = "bench-admin", secrets.token_urlsafe(16)
        upgrade(self.env["BST_DATABASE_URL"])
        with sessions(self.env["BST_DATABASE_URL"])() as s:
            accounts.create_user(s, user, "admin", password=password)
            s.commit()
        return user, password


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="the app (default: start a stack on loopback bench ports)")
    ap.add_argument("--rasa-url", default="http://127.0.0.1:5005", help="Rasa server of that stack")
    ap.add_argument("--requests", type=int, default=160, help="requests per chat/webhook phase")
    ap.add_argument("--search-requests", type=int, default=100, help="requests per search phase (≤ 100)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--user", default=os.environ.get("BST_BENCH_USER"),
                    help="staff account for /api/search (default: $BST_BENCH_USER; an admin is not rate-limited)")
    ap.add_argument("--password", default=os.environ.get("BST_BENCH_PASSWORD"),
                    help="its password (default: $BST_BENCH_PASSWORD)")
    ap.add_argument("--header", action="append", default=[], metavar="NAME:VALUE", help="extra request header")
    ap.add_argument("--cookie", action="append", default=[], metavar="NAME=VALUE", help="request cookie")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)
    for u in filter(None, (args.url, args.rasa_url)):
        if httpx.URL(u).host not in ("127.0.0.1", "localhost", "::1"):
            ap.error(f"loopback only: {u}")
    args.search_requests = max(1, min(args.search_requests, 100))

    questions = [json.loads(line)["q"] for line in SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(args.seed).shuffle(questions)

    stack = None
    if not args.url:
        stack = OwnStack()
        args.url, args.rasa_url = stack.url, stack.rasa_url
    headers = {}
    for h in args.header:
        name, _, value = h.partition(":")
        headers[name.strip()] = value.strip()
    cookies = dict(c.split("=", 1) for c in args.cookie if "=" in c)
    try:
        if stack:
            stack.start()
            args.user, args.password = stack.admin()
        if args.user:  # a staff session cookie, as the agent console has
            r = httpx.post(f"{args.url}/api/auth/login", json={"username": args.user, "password": args.password or ""})
            if r.status_code != 200:
                raise AuthError(f"login as {args.user} failed: {r.status_code}")
            cookies.update(r.cookies)
        print(f"app {args.url}, rasa {args.rasa_url}; {len(questions)} questions", file=sys.stderr, flush=True)
        res = asyncio.run(measure(args, questions, headers, cookies))
    except AuthError as exc:
        print(f"error: {exc}\n/api/search needs a staff login: pass --user NAME --password … (or env "
              f"BST_BENCH_USER/BST_BENCH_PASSWORD), or --cookie bst_staff=…", file=sys.stderr)
        return 2
    finally:
        if stack:
            stack.stop()
    report(res, args.concurrency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
