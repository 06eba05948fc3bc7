"""Fit the hybrid search's numeric parameters on data that is NOT an evaluation set.

    python -m bench.fit

Fitting data: every guide's own `questions:` list, each question labelled with its guide. The
guides' "常见问题" passages (which contain those very questions) are held out of the index for the
fit, so each question is a fresh query. Searched grid: BM25 k1 and b, and the lexical share of the
fused score. Objective: mean reciprocal rank of the guide (document level), ties broken by hit@1.
The labelled set (bench/retrieval_set.jsonl) and MSGABench are never looked at here.
Prints the best setting and the neighbourhood, to copy into embeddings/search.py.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from dataclasses import replace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

K1S = (0.9, 1.2, 1.5, 2.0)
BS = (0.5, 0.75, 0.9)
WEIGHTS = (0.2, 0.3, 0.4, 0.5, 0.6)


def held_out_index(version):
    """The index version without the guides' question passages (vectors dropped alike)."""
    import faiss
    import numpy as np

    keep = [i for i, p in enumerate(version.passages) if p.section != "questions"]
    vectors = version.dense.reconstruct_n(0, version.dense.ntotal)[keep]
    dense = faiss.IndexFlatIP(vectors.shape[1])
    dense.add(np.ascontiguousarray(vectors))
    return replace(version, passages=[version.passages[i] for i in keep], dense=dense)


def doc_rank(hits, doc_id: str) -> int | None:
    seen: list[str] = []
    for h in hits:
        if h.passage.doc_id not in seen:
            seen.append(h.passage.doc_id)
            if h.passage.doc_id == doc_id:
                return len(seen)
    return None


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m bench.fit", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    from bench.retrieval import CachedEncoder
    from embeddings import index as idx
    from embeddings.encoder import Encoder
    from embeddings.search import HybridSearcher
    from settings import get_settings

    s = get_settings()
    version = held_out_index(idx.load(s.index_dir))
    pairs = [(q, g.id) for g in version.guides for q in g.questions]
    encoder = CachedEncoder(Encoder(s.encoder_dir))
    print(f"fitting on {len(pairs)} guide questions over {len(version.passages)} passages (question passages held out)")
    results = []
    for k1, b in itertools.product(K1S, BS):
        searcher = HybridSearcher(version, encoder, k1=k1, b=b)
        for w in WEIGHTS:
            searcher.bm25_weight = w
            ranks = [doc_rank(searcher.run(q, k=60), g) for q, g in pairs]
            mrr = sum(1 / r for r in ranks if r) / len(ranks)
            hit1 = sum(r == 1 for r in ranks) / len(ranks)
            results.append((round(mrr, 4), round(hit1, 4), k1, b, w))
        print(f"  k1={k1} b={b} done", file=sys.stderr, flush=True)
    results.sort(key=lambda r: (r[0], r[1]), reverse=True)
    print(f"{'mrr':>7} {'hit@1':>7} {'k1':>5} {'b':>5} {'bm25 weight':>12}")
    for r in results[:10]:
        print(f"{r[0]:>7.4f} {r[1]:>7.3f} {r[2]:>5} {r[3]:>5} {r[4]:>12}")
    best = results[0]
    print(f"best: BM25_K1 = {best[2]}, BM25_B = {best[3]}, BM25_WEIGHT = {best[4]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
