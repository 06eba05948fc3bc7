"""Scale benchmark: the retrieval index at 1,000,000 passages, on this machine (issue 13 §3).

    python -m bench.scale [--passages 1000000] [--kinds hnsw,ivf] [--queries 200] [--bm25-passages N]

Synthetic corpus derived from the CURRENT index:

* dense side: each synthetic passage vector is a real passage vector plus Gaussian noise
  (per-dimension σ = --noise, then re-normalised; σ 0.03 puts a copy at cosine ≈ 0.85 to its
  original, about as far as two paraphrases of one clause). Thousands of noisy copies of each real
  passage make the nearest neighbours near-ties: a hard case for an approximate index;
* queries: real questions of bench/retrieval_set.jsonl, encoded by the serving encoder;
* lexical side: passages recombined from 3 random real sentences, indexed with bm25s exactly as
  the serving code indexes (same tokens), to time a BM25 query at that size.

For each approximate index kind (HNSW: faiss IndexHNSWFlat; IVF: faiss IndexIVFFlat) it prints
build time, index memory (its serialised size: vectors, graph or lists, ids), and for a sweep of its search
parameter the single-query p50 and recall@10 against exact search (faiss IndexFlatIP, whose own
p50 is printed too). Searches run one query at a time on one thread, as a serving process does.
The LAST line printed is ``scale passages=… kind=… param=… p50_ms=… recall@10=… memory_gb=… build_s=…``
for the fastest setting of the best kind that reaches recall@10 ≥ 0.95.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SET = Path(__file__).resolve().parent / "retrieval_set.jsonl"
HNSW_EF = (16, 32, 64, 128, 256)
IVF_NPROBE = (4, 8, 16, 32, 64)
RECALL_TARGET = 0.95
T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def rss_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def index_gb(index) -> float:
    """Size of the index's data (vectors, graph or lists, ids): what it holds in memory."""
    import faiss

    return faiss.serialize_index(index).nbytes / 1024**3


def synthetic_vectors(real: np.ndarray, n: int, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    step = 100_000
    for i in range(0, n, step):
        m = min(step, n - i)
        x = real[rng.integers(0, len(real), m)] + rng.standard_normal((m, real.shape[1]), dtype=np.float32) * noise
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[i : i + m] = x
        log(f"  vectors {i + m:,}/{n:,}")
    return out


def timed_search(index, queries: np.ndarray, k: int = 10) -> tuple[float, np.ndarray]:
    """p50 (ms) of one-query-at-a-time search, and the ids found."""
    ids, lat = np.empty((len(queries), k), dtype=np.int64), []
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        _, found = index.search(q[None, :], k)
        lat.append(time.perf_counter() - t0)
        ids[i] = found[0]
    return statistics.median(lat) * 1000, ids


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def build_hnsw(vecs: np.ndarray, m: int, ef_construction: int):
    import faiss

    index = faiss.IndexHNSWFlat(vecs.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    step = max(50_000, len(vecs) // 20)
    for i in range(0, len(vecs), step):
        index.add(vecs[i : i + step])
        log(f"  hnsw add {min(i + step, len(vecs)):,}/{len(vecs):,}")
    return index, ("efSearch", HNSW_EF, lambda ix, v: setattr(ix.hnsw, "efSearch", v))


def build_ivf(vecs: np.ndarray, nlist: int, seed: int):
    import faiss

    quantizer = faiss.IndexFlatIP(vecs.shape[1])
    index = faiss.IndexIVFFlat(quantizer, vecs.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    train = vecs[np.random.default_rng(seed).choice(len(vecs), min(len(vecs), 40 * nlist), replace=False)]
    log(f"  ivf training {nlist} lists on {len(train):,} vectors")
    index.train(train)
    step = max(50_000, len(vecs) // 20)
    for i in range(0, len(vecs), step):
        index.add(vecs[i : i + step])
        log(f"  ivf add {min(i + step, len(vecs)):,}/{len(vecs):,}")
    index.make_direct_map()  # the serving code looks candidates' vectors up by id
    return index, ("nprobe", IVF_NPROBE, lambda ix, v: setattr(ix, "nprobe", v))


def bm25_at_scale(version, n: int, queries: list[str], seed: int) -> tuple[float, float, float]:
    """Build bm25s over n passages of 3 recombined real sentences; (build s, memory GB, query p50 ms)."""
    import bm25s

    from embeddings.search import lexical_tokens

    sentences = [s for p in version.passages for s in re.split(r"(?<=[。；！？;!?\n])", p.text) if len(s.strip()) > 4]
    tokens = [lexical_tokens(s) for s in sentences]
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(tokens), (n, 3))
    log(f"bm25: {n:,} passages from {len(sentences):,} real sentences")
    before, t0 = rss_gb(), time.perf_counter()
    corpus = [tokens[a] + tokens[b] + tokens[c] for a, b, c in picks]
    bm = bm25s.BM25(k1=0.9, b=0.9)
    bm.index(corpus, show_progress=False)
    del corpus
    build = time.perf_counter() - t0
    mem = rss_gb() - before
    log(f"  bm25 built in {build:.0f}s")
    lat = []
    for q in queries:
        toks = lexical_tokens(q)
        t0 = time.perf_counter()
        s = bm.get_scores(toks)
        np.argpartition(-s, 50)[:50]
        lat.append(time.perf_counter() - t0)
    return build, mem, statistics.median(lat) * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", type=int, default=1_000_000)
    ap.add_argument("--kinds", default="ivf,hnsw", help="comma-separated: hnsw, ivf")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--noise", type=float, default=0.03)
    ap.add_argument("--hnsw-m", type=int, default=32)
    ap.add_argument("--ef-construction", type=int, default=64)
    ap.add_argument("--nlist", type=int, help="IVF lists (default 4·√passages)")
    ap.add_argument("--bm25-passages", type=int, default=0,
                    help="also time BM25 over this many recombined passages (0 = skip)")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)

    import faiss

    from embeddings import index as idx
    from embeddings.encoder import Encoder
    from settings import get_settings

    s = get_settings()
    version = idx.load(s.index_dir)
    real = version.dense.reconstruct_n(0, version.dense.ntotal)
    questions = [json.loads(line)["q"] for line in SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = questions[: args.queries]
    log(f"encoding {len(questions)} real questions")
    queries = Encoder(s.encoder_dir, threads=2).queries(questions)

    log(f"synthesising {args.passages:,} passage vectors from {len(real)} real ones (noise σ={args.noise})")
    vecs = synthetic_vectors(real, args.passages, args.noise, args.seed)

    log("exact search (ground truth)")
    exact = faiss.IndexFlatIP(vecs.shape[1])
    exact.add(vecs)
    _, truth = exact.search(queries, 10)  # batched: BLAS, both cores
    faiss.omp_set_num_threads(1)  # timings: one query at a time on one thread, like a serving process
    exact_p50, _ = timed_search(exact, queries[:30])
    log(f"  exact p50 {exact_p50:.1f} ms")
    del exact

    rows, best = [], None
    for kind in [k.strip() for k in args.kinds.split(",") if k.strip()]:
        faiss.omp_set_num_threads(os.cpu_count() or 1)  # building uses every core
        log(f"building {kind}")
        t0 = time.perf_counter()
        if kind == "hnsw":
            index, (pname, values, setp) = build_hnsw(vecs, args.hnsw_m, args.ef_construction)
            label = f"HNSW M={args.hnsw_m} efConstruction={args.ef_construction}"
        elif kind == "ivf":
            nlist = args.nlist or int(4 * args.passages ** 0.5)
            index, (pname, values, setp) = build_ivf(vecs, nlist, args.seed)
            label = f"IVFFlat nlist={nlist}"
        else:
            ap.error(f"unknown kind {kind}")
        build_s = time.perf_counter() - t0
        mem = index_gb(index)
        log(f"  built in {build_s:.0f}s, +{mem:.2f} GB")
        faiss.omp_set_num_threads(1)
        for v in values:
            setp(index, v)
            p50, found = timed_search(index, queries)
            r = recall(found, truth)
            rows.append((label, f"{pname}={v}", build_s, mem, p50, r))
            log(f"  {pname}={v}: p50 {p50:.2f} ms, recall@10 {r:.3f}")
            if r >= RECALL_TARGET and (best is None or p50 < best[4]):
                best = (kind, f"{pname}={v}", build_s, mem, p50, r)
        del index

    bm25 = None
    if args.bm25_passages:
        bm25 = bm25_at_scale(version, args.bm25_passages, questions, args.seed)

    print()
    print(f"Synthetic corpus: {args.passages:,} passages (from {len(real)} real passage vectors, noise σ={args.noise}), "
          f"{len(queries)} real questions, one query at a time on one thread")
    print(f"exact search (IndexFlatIP): p50 {exact_p50:.1f} ms, memory {vecs.nbytes / 1024**3:.2f} GB")
    print(f"{'index':<34} {'setting':<14} {'build s':>8} {'memory GB':>10} {'p50 ms':>8} {'recall@10':>10}")
    for label, setting, b, m, p, r in rows:
        print(f"{label:<34} {setting:<14} {b:>8.0f} {m:>10.2f} {p:>8.2f} {r:>10.3f}")
    if bm25:
        print(f"BM25 (bm25s) over {args.bm25_passages:,} recombined passages: build {bm25[0]:.0f}s, "
              f"+{bm25[1]:.2f} GB, query p50 {bm25[2]:.1f} ms")
    if best:
        print(f"scale passages={args.passages} kind={best[0]} param={best[1]} p50_ms={best[4]:.2f} "
              f"recall@10={best[5]:.3f} memory_gb={best[3]:.2f} build_s={best[2]:.0f}")
    else:
        print(f"scale passages={args.passages} kind=none reached recall@10>={RECALL_TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
