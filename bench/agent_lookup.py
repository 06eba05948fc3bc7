"""The agent console's look-up, as the page sees it.

    BST_BENCH_USER=… BST_BENCH_PASSWORD=… python -m bench.agent_lookup [--url http://127.0.0.1:8000] [--queries 12]
    python -m bench.agent_lookup --calibrate          # in-process: what 高/中/低 mean on the labelled set

1. Latency (default; needs a running stack, e.g. `make run`): realistic agent queries are typed
   one character at a time; every prefix of two or more characters is sent to GET /api/search
   (k=8, as the console asks) one request at a time over loopback — the worst case, since the page
   debounces and skips prefixes typed quickly. Prints p50/p95/max of the search round trip, then
   of POST /api/answer for the whole query (the page asks for the ready answer once typing pauses).
   The request count is bounded by --max-requests.
2. Calibration (--calibrate): runs the console's search over bench/retrieval_set.jsonl in-process
   and prints, per relevance label, how many hits carry it and how often such a hit is the labelled
   target; and the label of the top hit for out-of-scope questions (want 低).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# How 12345 agents type while the caller speaks: shorthand frames, matters, question words.
QUERIES = [
    "来电人咨询护照办理材料", "市民问残疾证换领", "结婚登记要带什么材料", "身份证丢了怎么补办",
    "港澳通行证续签要多久", "公积金提取需要什么", "新生儿落户怎么办理", "社保卡补办在哪里办",
    "个体户营业执照网上能办吗", "不动产抵押登记多少钱", "海沧区周末能办业务吗", "异地就医备案流程",
    "驾驶证到期换证要体检吗", "居住证申领条件", "食品经营许可证办理时限", "全城通办有哪些事项",
]


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def latency(url: str, n_queries: int, max_requests: int) -> None:
    import httpx

    search_ms, answer_ms, sent = [], [], 0
    with httpx.Client(base_url=url, timeout=30) as http:
        # The console is used logged in: a staff account (env BST_BENCH_USER / BST_BENCH_PASSWORD).
        user = os.environ.get("BST_BENCH_USER")
        if user:
            r = http.post("/api/auth/login", json={"username": user, "password": os.environ.get("BST_BENCH_PASSWORD", "")})
            if r.status_code != 200:
                raise SystemExit(f"login as {user} failed: {r.status_code} {r.text[:200]}")
        http.get("/api/search", params={"q": "护照", "k": 8}).raise_for_status()  # warm-up, not counted
        for q in QUERIES[:n_queries]:
            for i in range(2, len(q) + 1):
                if sent >= max_requests:
                    break
                t = time.perf_counter()
                http.get("/api/search", params={"q": q[:i], "k": 8}).raise_for_status()
                search_ms.append((time.perf_counter() - t) * 1000)
                sent += 1
            t = time.perf_counter()
            http.post("/api/answer", json={"question": q}).raise_for_status()
            answer_ms.append((time.perf_counter() - t) * 1000)
    for name, xs in (("GET /api/search (each typed prefix)", search_ms), ("POST /api/answer (whole query)", answer_ms)):
        if xs:
            print(f"{name:40s} n={len(xs):4d}  p50={statistics.median(xs):7.1f} ms  p95={pct(xs, 95):7.1f} ms  "
                  f"max={max(xs):7.1f} ms")


def calibrate(path: Path) -> None:
    from assistant.engine import Engine
    from bench.retrieval import is_target, load_set
    from settings import get_settings
    from web.hotline import HIGH_MARGIN, search

    settings = get_settings()
    eng = Engine(settings)
    cur = eng.get()
    items = load_set(path)
    by_id = {p.id: p for p in cur.searcher.index.passages}
    labels = ("高", "中", "低")
    counts = {lab: [0, 0] for lab in labels}  # hits with the label, of which the target
    top = {lab: [0, 0] for lab in labels}
    oos = {lab: 0 for lab in labels}
    for item in items:
        res = search(eng, settings, item["q"], k=8, mode="hybrid")
        if not res.hits:
            continue
        if "oos" in item:
            oos[res.hits[0].relevance] += 1
            continue
        for rank, h in enumerate(res.hits):
            hit_is_target = is_target(item, by_id[h.id])
            counts[h.relevance][0] += 1
            counts[h.relevance][1] += hit_is_target
            if rank == 0:
                top[h.relevance][0] += 1
                top[h.relevance][1] += hit_is_target
    print(f"thresholds: 高 >= {settings.min_confidence + HIGH_MARGIN:.2f}, 中 >= {settings.min_confidence:.2f} "
          f"(settings.min_confidence), else 低")
    print(f"{'label':6s}{'hits':>8s}{'target':>9s}{'top-1 hits':>12s}{'top-1 target':>14s}{'oos top-1':>11s}")
    for lab in labels:
        n, ok = counts[lab]
        tn, tok = top[lab]
        print(f"{lab:6s}{n:8d}{(ok / n if n else 0):9.0%}{tn:12d}{(tok / tn if tn else 0):14.0%}{oos[lab]:11d}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=os.environ.get("BST_URL", "http://127.0.0.1:8000"))
    ap.add_argument("--queries", type=int, default=12, help="how many of the built-in queries to type")
    ap.add_argument("--max-requests", type=int, default=400, help="upper bound on search requests")
    ap.add_argument("--calibrate", action="store_true", help="relevance labels on the labelled set (no server)")
    ap.add_argument("--set", type=Path, default=Path(__file__).resolve().parent / "retrieval_set.jsonl")
    args = ap.parse_args()
    if args.calibrate:
        calibrate(args.set)
    else:
        latency(args.url, args.queries, args.max_requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
