"""Hybrid retrieval over one index version: BM25 + dense cosine, fused on standardised scores.

`HybridSearcher.run(query, k)` returns ranked hits; mode "bm25" or "dense" runs one side alone
(the benchmarks compare all three on the same index).

How the hybrid score is made (each choice measured in bench/README.md):

* Lexical side: BM25 over two views of the same text, in one bag: jieba search-mode words (with
  the guides' names and aliases taught to jieba) and character n-grams (unigrams without question
  function characters, bigrams, marked "#"). Character bigrams keep working where jieba segments a
  question and a passage differently, and carry a misspelt or traditional word's other half.
* Dense side: cosine of the e5 query vector with the passage vectors. Candidates come from the
  FAISS index (exact below `index.ANN_MIN_PASSAGES` passages, IVF above); every candidate's
  `Hit.dense` is its real cosine (looked up from the index for candidates found by BM25 alone).
* Candidates: the top `CANDIDATES` (or k, if larger) of each side, and the preferred matter's
  passages; only their union is fused and ranked, never the whole corpus.
* Fusion: each side is standardised over all passages of the index (z-score: how far above this
  query's typical passage), then mixed with a fixed weight. Unlike min-max, a side whose best
  passage does not stand out cannot push its noise to the top; unlike reciprocal-rank fusion, how
  much better the best passage is still counts. The statistics are exact without scoring every
  passage: the dense side's mean and variance over all passages are q·μ and qᵀE[vvᵀ]q − (q·μ)²
  from moments stored with the index; BM25's come from the sparse score accumulation bm25s does
  anyway (passages sharing no token with the query score 0). Standardising over the candidate
  pool instead was measured and loses ranking quality (bench/README.md).
* Homophone typos: a question window that sounds exactly like a guide name or alias but is
  written differently (社宝卡 → 社保卡, 协议离昏 → 协议离婚) adds the correct term to the query.

The weights were fitted on the guides' own `questions:` lists (each question → its guide, with the
guides' question passages held out of the index), never on the labelled evaluation set or MSGABench.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import bm25s
import numpy as np
from pypinyin import lazy_pinyin

from embeddings.encoder import Encoder
from embeddings.index import IndexVersion
from embeddings.text import add_terms, normalize, tokenize
from knowledge.schema import Passage

# Fitted by `python -m bench.fit` (guides' own questions; see the module docstring).
BM25_K1 = 0.9
BM25_B = 0.9
BM25_WEIGHT = 0.3  # share of the lexical side in the fused score; the dense side has the rest
PREFER_BONUS = 0.15  # nudge for the matter the conversation is about (scores are 0..1, best = 1)
COINED_BONUS = 0.5  # a passage that says a quoted term the question names (see run)
OTHER_REGION_WEIGHT = 0.8  # a passage of a region the question does not name (see run's `region`)
CANDIDATES = 50  # per side, fused on the union (bench/README.md: same hit@1 as fusing every passage)

_RUNS = re.compile(r"[\u4e00-\u9fff]+|[a-z0-9]+")
# Characters that make a sentence a question rather than say what it is about.
_QUESTION_CHARS = frozenset("的了吗呢啊吧呀么是在和与及或有什怎如何哪些可以能需要请问我您你该")


@dataclass
class Hit:
    passage: Passage
    score: float  # fused score, comparable within one query
    dense: float  # cosine similarity of query and passage (0 when not a dense candidate)
    bm25: float  # BM25 score divided by the query's best BM25 score (0..1)


def char_grams(text: str) -> list[str]:
    """Character unigrams (question function characters dropped) and bigrams of each Han run;
    Latin/digit runs stay whole."""
    out: list[str] = []
    for run in _RUNS.findall(normalize(text).lower()):
        if not "\u4e00" <= run[0] <= "\u9fff":
            out.append(run)
            continue
        out.extend(c for c in run if c not in _QUESTION_CHARS)
        out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out


def lexical_tokens(text: str) -> list[str]:
    """The BM25 bag: jieba words plus marked character n-grams."""
    return tokenize(text) + [f"#{g}" for g in char_grams(text)]


def _standardise(s: np.ndarray, mean: float, var: float) -> np.ndarray:
    sd = var ** 0.5 if var > 1e-18 else 0.0
    return (s - mean) / sd if sd > 1e-9 else np.zeros_like(s)


class Homophones:
    """Known terms (guide names, aliases) indexed by toneless pinyin, to repair same-sounding typos."""

    def __init__(self, terms: list[str]):
        self.tables: dict[int, dict[tuple[str, ...], list[str]]] = {}
        for t in {normalize(t) for t in terms}:
            if 2 <= len(t) <= 8 and re.fullmatch(r"[\u4e00-\u9fff]+", t):
                self.tables.setdefault(len(t), {}).setdefault(tuple(lazy_pinyin(t)), []).append(t)

    def corrections(self, text: str) -> list[str]:
        found: list[str] = []
        for run in re.findall(r"[\u4e00-\u9fff]+", normalize(text)):
            py = lazy_pinyin(run)
            if len(py) != len(run):  # pypinyin grouped something unexpectedly: no safe alignment
                continue
            for n, table in self.tables.items():
                for i in range(len(run) - n + 1):
                    window = run[i : i + n]
                    for term in table.get(tuple(py[i : i + n]), ()):
                        diff = sum(a != b for a, b in zip(window, term))
                        # A typo changes a character or two, never the whole word.
                        if 0 < diff <= max(1, n // 3) and term not in text and term not in found:
                            found.append(term)
        return found


class HybridSearcher:
    def __init__(self, index: IndexVersion, encoder: Encoder, bm25_weight: float = BM25_WEIGHT,
                 k1: float = BM25_K1, b: float = BM25_B):
        self.index = index
        self.encoder = encoder
        self.bm25_weight = bm25_weight
        terms = [t for g in index.guides for t in (g.name, *g.aliases)]
        # Terms the policy texts coin in quotes ("五个零", "一件事", "最多跑一趟") stay one word, so a
        # question naming one finds it ("五个零指的是什么" is not 五个 / 零指).
        coined = {m for p in index.passages for m in re.findall(r"[“\"]([\u4e00-\u9fff]{2,8})[”\"]", p.text)}
        add_terms(terms + sorted(coined))
        self.coined = sorted(coined, key=len, reverse=True)
        self.homophones = Homophones(terms)
        self.passages = index.passages
        self.doc_ids = np.array([p.doc_id for p in self.passages], dtype=object)
        self.regions = np.array([p.region for p in self.passages], dtype=object)
        self.by_doc: dict[str, np.ndarray] = {}
        for i, d in enumerate(self.doc_ids):
            self.by_doc.setdefault(d, []).append(i)
        self.by_doc = {d: np.array(ix, dtype=np.int64) for d, ix in self.by_doc.items()}
        self.bm25 = bm25s.BM25(k1=k1, b=b)
        if self.passages:
            self.bm25.index([lexical_tokens(f"{p.title} {p.text}") for p in self.passages], show_progress=False)
        self.mean, self.second = (np.asarray(m, dtype=np.float64) for m in index.moments)

    def query_vector(self, text: str) -> np.ndarray:
        # The encoder keeps recent query vectors (an LRU): agents re-run the same searches as they type.
        v = self.encoder.queries([normalize(text)])
        v.flags.writeable = False
        return v

    def expand(self, query: str) -> str:
        """The query as searched: with the correct spelling of any homophone-typo'd matter name."""
        extra = self.homophones.corrections(query)
        return f"{query} {' '.join(extra)}" if extra else query

    def _bm25_scores(self, query: str) -> np.ndarray:
        """bm25s accumulates the postings of the query's tokens: a passage sharing none scores 0."""
        toks = lexical_tokens(query)
        if not toks:
            return np.zeros(len(self.passages), dtype=np.float32)
        return np.asarray(self.bm25.get_scores(toks), dtype=np.float32)

    def _dense_candidates(self, q: np.ndarray, n: int) -> np.ndarray:
        _, ids = self.index.dense.search(q, min(n, self.index.dense.ntotal))
        return ids[0][ids[0] >= 0]

    def _cosines(self, q: np.ndarray, ids: np.ndarray) -> np.ndarray:
        # einsum, not `@`: a BLAS call leaves OpenBLAS threads spinning, and on two cores they
        # then slow the next query's encoder down several-fold.
        vecs = self.index.dense.reconstruct_batch(ids)
        return np.einsum("ij,j->i", vecs, q[0]).astype(np.float32, copy=False)

    def _dense_stats(self, q: np.ndarray) -> tuple[float, float]:
        """Mean and variance of the query's cosine over every passage, from the stored moments."""
        qd = q[0].astype(np.float64)
        mean = float(np.einsum("i,i->", qd, self.mean))
        return mean, float(np.einsum("i,ij,j->", qd, self.second, qd)) - mean * mean

    def run(self, query: str, k: int = 5, mode: str = "hybrid", prefer_doc: str | None = None,
            region: str | None = "") -> list[Hit]:
        """`prefer_doc`: the matter in context gets a nudge. `region`: the place the question names
        (None: none): a district's or another county's passage only outranks a city-wide one when the
        question names that place — citizens asking in general ask about Xiamen's rules. The default
        ("") ranks without regard to region (the hotline's search shows every region, tagged)."""
        if not self.passages or not query.strip():
            return []
        text = self.expand(query)
        pool = max(k, CANDIDATES)
        parts = [self.by_doc.get(prefer_doc, np.zeros(0, np.int64))] if prefer_doc else []
        bm_all = q = None
        if mode in ("hybrid", "bm25"):
            bm_all = self._bm25_scores(text)
            top = np.argpartition(-bm_all, pool - 1)[:pool] if len(bm_all) > pool else np.arange(len(bm_all))
            parts.append(top[bm_all[top] > 0])
        if mode in ("hybrid", "dense"):
            q = self.query_vector(text)
            parts.append(self._dense_candidates(q, pool))
        ids = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)  # sorted: stable ties
        if not len(ids):
            return []
        de = self._cosines(q, ids) if q is not None else np.zeros(len(ids), np.float32)
        bm = bm_all[ids] if bm_all is not None else np.zeros(len(ids), np.float32)
        bm_top = float(bm_all.max()) if bm_all is not None and bm_all.size else 0.0
        bm_norm = bm / bm_top if bm_top > 0 else bm
        if mode == "bm25":
            score = bm_norm
        elif mode == "dense":
            score = de
        else:
            n = len(bm_all)
            bm_mean = float(bm_all.sum(dtype=np.float64)) / n
            bm_var = float(np.einsum("i,i->", bm_all, bm_all, dtype=np.float64)) / n - bm_mean * bm_mean
            fused = (1 - self.bm25_weight) * _standardise(de, *self._dense_stats(q)) \
                + self.bm25_weight * _standardise(bm, bm_mean, bm_var)
            top = fused.max()
            # Rescaled so the best passage scores 1 and the index's average passage 0: the
            # answer composer compares and nudges these (city-wide preference, matter in context).
            score = fused / top if top > 0 else de
        if prefer_doc:
            # The matter the conversation is about gets a nudge, not a guarantee.
            score = score + PREFER_BONUS * (self.doc_ids[ids] == prefer_doc)
        if region != "":
            regions = self.regions[ids]
            score = score * np.where((regions == "厦门市") | (regions == (region or "厦门市")), 1.0, OTHER_REGION_WEIGHT)
        named = [t for t in self.coined if t in text]
        if named:
            # A term the texts coin ("五个零") is their own vocabulary, which the encoder has never seen:
            # the passages that say it are what the question is about, whichever region they are from
            # (after the region weight: the one text that coins it may be a district's).
            says = np.array([any(t in self.passages[i].text for t in named) for i in ids])
            score = score + COINED_BONUS * says
        order = np.argsort(-score, kind="stable")[:k]
        return [Hit(self.passages[ids[i]], float(score[i]), float(de[i]), float(bm_norm[i]))
                for i in order if score[i] > 0]
