"""Soak bench: do long and odd messages slow down everyone else's chat? (issue 22)

    python -m bench.soak                              # starts its own stack (bench.load's loopback ports)
    python -m bench.soak --url http://127.0.0.1:8000  # a running stack started with BST_CHAT_PER_MINUTE=0

Loopback only, bounded counts. Two phases, each a new conversation per request:

1. baseline: `--normal` realistic questions (bench/retrieval_set.jsonl), `--concurrency` clients;
2. soak: the same number of normal questions sent together with `--long` messages of exactly
   settings.max_message_chars characters (noise with a question at the end), `--long` messages one
   character over the limit (refused at the edge), and `--odd` odd ones (emoji, control characters,
   traditional characters, one 5,000-character "word", markup, a lone surrogate-free RTL text).

It prints the p50/p99 of the normal questions in both phases, the long and odd messages' own
latencies and status codes. The LAST line is
``soak normal_p99_ms=… soak_normal_p99_ms=… long_p50_ms=… over_limit_status=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
import uuid

import httpx

from bench.load import SET, OwnStack
from settings import get_settings

ODD = ["😀" * 300, "\x00\x01\x02你好\x7f", "護照要多少錢？" * 50, "a" * 5000, "<xml><![CDATA[护照]]></xml>" * 40,
       "مرحبا، كم تكلفة جواز السفر؟", "/restart", "/inform{\"booking_centre\": \"思明区\"}", "　" * 2000 + "护照",
       "查预约 K7M3QX2P 0000", "取消预约 ABCDEFGH", "' OR 1=1 --", "{{7*7}}", "%s%s%s%n" * 100]


def long_message(limit: int) -> str:
    tail = "请问办护照要多少钱？"
    noise = "今天天气不错，我从外地回来，想办点事情，先说一下我的情况。"
    return ((noise * (limit // len(noise) + 1))[: limit - len(tail)] + tail)


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] * 1000


async def send(client: httpx.AsyncClient, kind: str, message: str, out: list) -> None:
    t0 = time.perf_counter()
    try:
        r = await client.post("/api/chat", json={"sender": f"soak-{uuid.uuid4().hex[:12]}", "message": message})
        status = r.status_code
    except httpx.HTTPError as exc:
        status = type(exc).__name__
    out.append((kind, status, time.perf_counter() - t0))


async def phase(url: str, items: list[tuple[str, str]], concurrency: int) -> list:
    out: list = []
    queue: asyncio.Queue = asyncio.Queue()
    for it in items:
        queue.put_nowait(it)

    async def worker(client):
        while not queue.empty():
            kind, message = queue.get_nowait()
            await send(client, kind, message, out)

    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return out


def summary(name: str, rows: list, kind: str) -> list[float]:
    ok = [t for k, s, t in rows if k == kind and s == 200]
    codes = sorted({str(s) for k, s, _ in rows if k == kind})
    print(f"  {name:<28} {len(ok):>4} ok  p50 {pct(ok, 0.5):8.0f} ms  p99 {pct(ok, 0.99):8.0f} ms  status {','.join(codes)}",
          file=sys.stderr, flush=True)
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="the app (default: start a stack on loopback bench ports)")
    ap.add_argument("--normal", type=int, default=60, help="normal questions per phase (≤ 300)")
    ap.add_argument("--long", type=int, default=6, help="messages of max_message_chars characters (≤ 30)")
    ap.add_argument("--odd", type=int, default=len(ODD), help=f"odd messages (≤ {len(ODD)})")
    ap.add_argument("--concurrency", type=int, default=6)
    ap.add_argument("--seed", type=int, default=22)
    args = ap.parse_args(argv)
    if args.url and httpx.URL(args.url).host not in ("127.0.0.1", "localhost", "::1"):
        ap.error(f"loopback only: {args.url}")
    args.normal, args.long, args.odd = min(args.normal, 300), min(args.long, 30), min(args.odd, len(ODD))
    limit = get_settings().max_message_chars

    questions = [json.loads(x)["q"] for x in SET.read_text(encoding="utf-8").splitlines() if x.strip()]
    rnd = random.Random(args.seed)
    rnd.shuffle(questions)
    normal = [("normal", q) for q in questions[: args.normal]]
    soak = [("normal", q) for q in questions[args.normal: 2 * args.normal]]
    soak += [("long", long_message(limit))] * args.long + [("over", "长" * (limit + 1))] * args.long
    soak += [("odd", m) for m in ODD[: args.odd]]
    rnd.shuffle(soak)

    stack = None
    if not args.url:
        stack = OwnStack()
        args.url = stack.url
    try:
        if stack:
            stack.start()
        asyncio.run(phase(args.url, [("warm", q) for q in questions[-4:]], 2))  # the action server's first load
        print(f"app {args.url}; limit {limit} characters; {args.concurrency} concurrent clients", file=sys.stderr)
        base = asyncio.run(phase(args.url, normal, args.concurrency))
        mixed = asyncio.run(phase(args.url, soak, args.concurrency))
    finally:
        if stack:
            stack.stop()
    b = summary("baseline: normal", base, "normal")
    n = summary("soak: normal", mixed, "normal")
    lg = summary(f"soak: {limit} characters", mixed, "long")
    summary("soak: odd", mixed, "odd")
    over = sorted({str(s) for k, s, _ in mixed if k == "over"})
    print(f"  soak: {limit + 1} characters refused with {','.join(over)}", file=sys.stderr)
    bad = [(k, s) for k, s, _ in mixed if not (s == 200 or (k == "over" and s == 422))]
    if bad:
        print(f"  unexpected answers: {bad}", file=sys.stderr)
    print(f"soak normal_p99_ms={pct(b, 0.99):.0f} soak_normal_p99_ms={pct(n, 0.99):.0f} "
          f"long_p50_ms={statistics.median(lg) * 1000 if lg else float('nan'):.0f} over_limit_status={','.join(over)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
