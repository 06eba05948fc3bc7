"""Hybrid retrieval over one index version: BM25 on jieba tokens + dense FAISS, fused.

`HybridSearcher.run(query, k)` returns ranked hits; mode "bm25" or "dense" runs one side alone
(the benchmarks compare all three on the same index).
"""

from __future__ import annotations

from dataclasses import dataclass

import bm25s
import numpy as np

from embeddings.encoder import Encoder
from embeddings.index import IndexVersion
from embeddings.text import add_terms, normalize, tokenize
from knowledge.schema import Passage

POOL = 50  # candidates taken from each side before fusion


@dataclass
class Hit:
    passage: Passage
    score: float  # fused score, comparable within one query
    dense: float  # cosine similarity of query and passage (0 when not a dense candidate)
    bm25: float  # BM25 score divided by the query's best BM25 score (0..1)


class HybridSearcher:
    def __init__(self, index: IndexVersion, encoder: Encoder, dense_weight: float = 0.6):
        self.index = index
        self.encoder = encoder
        self.dense_weight = dense_weight
        terms = [t for g in index.guides for t in (g.name, *g.aliases)]
        add_terms(terms)
        self.passages = index.passages
        corpus = [tokenize(f"{p.title} {p.text}") for p in self.passages]
        self.bm25 = bm25s.BM25()
        self.bm25.index(corpus, show_progress=False)

    def _bm25_scores(self, query: str) -> np.ndarray:
        toks = tokenize(query)
        if not toks:
            return np.zeros(len(self.passages), dtype=np.float32)
        return np.asarray(self.bm25.get_scores(toks), dtype=np.float32)

    def _dense_scores(self, query: str) -> np.ndarray:
        q = self.encoder.queries([normalize(query)])
        n = self.index.dense.ntotal
        scores, ids = self.index.dense.search(q, min(n, max(POOL, 1)))
        out = np.zeros(n, dtype=np.float32)
        valid = ids[0] >= 0
        out[ids[0][valid]] = scores[0][valid]
        return out

    def run(self, query: str, k: int = 5, mode: str = "hybrid", prefer_doc: str | None = None) -> list[Hit]:
        if not self.passages or not query.strip():
            return []
        n = len(self.passages)
        bm = self._bm25_scores(query) if mode in ("hybrid", "bm25") else np.zeros(n, np.float32)
        de = self._dense_scores(query) if mode in ("hybrid", "dense") else np.zeros(n, np.float32)
        bm_top = bm.max() if bm.size else 0.0
        bm_norm = bm / bm_top if bm_top > 0 else bm
        if mode == "bm25":
            fused = bm_norm
        elif mode == "dense":
            fused = de
        else:
            # Min-max over the dense candidate pool: e5 cosines crowd into 0.7–0.9, so raw values
            # would let BM25 dominate; rescaled, both sides speak on 0..1.
            pool = de[de > 0]
            lo, hi = (pool.min(), pool.max()) if pool.size else (0.0, 1.0)
            de_mm = np.where(de > 0, (de - lo) / (hi - lo + 1e-6), 0.0)
            fused = self.dense_weight * de_mm + (1 - self.dense_weight) * bm_norm
        if prefer_doc:
            # The matter the conversation is about gets a nudge, not a guarantee.
            fused = fused + np.array([0.15 if p.doc_id == prefer_doc else 0.0 for p in self.passages])
        order = np.argsort(-fused)[:k]
        return [Hit(self.passages[i], float(fused[i]), float(de[i]), float(bm_norm[i])) for i in order if fused[i] > 0]
