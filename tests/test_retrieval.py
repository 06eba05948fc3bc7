"""Retrieval behaviour on the live index (runs after `make setup`: encoder and index exist)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embeddings.search import Homophones, char_grams, lexical_tokens

LABELLED = Path(__file__).resolve().parent.parent / "bench" / "retrieval_set.jsonl"
# e5 cosines of related matters sit this close together: a dense-only ranking inside this band is a
# property of the CPU that produced the vectors, not of retrieval (tests/test_query_noise.py).
DENSE_CROWD = 0.01


@pytest.fixture(scope="module")
def searcher(engine):
    return engine.get().searcher


def top_docs(searcher, q: str, k: int = 3, mode: str = "hybrid") -> list[str]:
    return [h.passage.doc_id for h in searcher.run(q, k=k, mode=mode)]


@pytest.mark.parametrize("q,guide", [
    ("護照要帶什麼材料", "passport"),
    ("結婚證遺失了怎麼補領", "marriage-certificate-reissue"),
    ("駕駛證到期換證", "driving-licence-renewal"),
    ("港澳通行証工本費多少", "hk-macao-permit"),
])
def test_traditional_characters_find_the_guide(searcher, q, guide):
    assert top_docs(searcher, q, k=1) == [guide]


@pytest.mark.parametrize("q,guide", [
    ("社宝卡补办", "social-security-card-replacement"),
    ("协议离昏要带啥", "divorce-registration"),
    ("护找丢了怎么补办", "passport"),
])
def test_homophone_typos_find_the_guide(searcher, q, guide):
    assert guide in top_docs(searcher, q, k=3)


def test_homophone_repair_only_touches_same_sounding_misspellings():
    h = Homophones(["社保卡", "协议离婚", "护照"])
    assert h.corrections("社宝卡怎么补") == ["社保卡"]
    assert h.corrections("协议离昏") == ["协议离婚"]
    assert h.corrections("社保卡怎么补") == []  # already spelt right
    assert h.corrections("今天天气怎么样") == []


def test_lexical_tokens_have_words_and_character_ngrams():
    toks = lexical_tokens("护照要多少钱")
    assert "护照" in toks  # jieba word
    assert "#护照" in toks and "#照" in toks  # character bigram and unigram
    assert "#要" not in char_grams("要")  # question function characters are no evidence alone


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "dense"])
def test_every_mode_returns_ranked_hits(searcher, mode):
    hits = searcher.run("结婚登记要带什么材料", k=8, mode=mode)
    assert len(hits) == 8
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    if mode == "dense":
        # Dense alone crowds 结婚登记, 出生登记 and 离婚登记 within a few thousandths of a cosine (which
        # of them is first depends on the CPU's kernels): the matter is among the best, not first.
        best = max(h.dense for h in hits if h.passage.doc_id == "marriage-registration")
        assert best >= hits[0].dense - DENSE_CROWD
    else:
        assert hits[0].passage.doc_id == "marriage-registration"
    for h in hits:
        assert 0 <= h.bm25 <= 1
        if mode == "bm25":
            assert h.dense == 0
        else:
            assert 0 < h.dense <= 1.0001  # the real cosine, for every passage
    if mode == "hybrid":
        assert scores[0] == pytest.approx(1.0)


def test_empty_and_unknown_queries(searcher):
    assert searcher.run("   ", k=5) == []
    assert searcher.run("zzqx", k=5, mode="bm25") == []  # nothing shares a token with it


def test_the_matter_in_context_is_preferred(searcher):
    """The matter under discussion gets PREFER_BONUS on top of its own score — a nudge, not a
    guarantee: it overtakes exactly the passages it trailed by less than the bonus."""
    from embeddings.search import PREFER_BONUS

    q, every = "那要多少钱", len(searcher.passages)
    # k = every passage: both runs fuse the same candidates, so their scores share one scale.
    plain = searcher.run(q, k=every)
    nudged = searcher.run(q, k=every, prefer_doc="passport")
    before = {h.passage.id: h.score for h in plain}
    for h in nudged:
        bonus = PREFER_BONUS if h.passage.doc_id == "passport" else 0.0
        if h.passage.id in before:
            assert h.score == pytest.approx(before[h.passage.id] + bonus, abs=1e-6)
        else:  # scored 0 or less without the nudge
            assert h.passage.doc_id == "passport" and h.score <= bonus + 1e-6

    def rivals_ahead(hits: list) -> list[str]:
        """Other matters' passages ranked above the best passport passage."""
        ids = [h.passage.doc_id for h in hits]
        return [h.passage.id for h in hits[: ids.index("passport")] if h.passage.doc_id != "passport"]

    best = max(h.score for h in plain if h.passage.doc_id == "passport")
    assert rivals_ahead(nudged) == [h.passage.id for h in plain
                                    if h.passage.doc_id != "passport" and h.score > best + PREFER_BONUS]
    # "那要多少钱" is every matter's fee question: the passport trails many of them by less than the bonus.
    assert len(rivals_ahead(nudged)) < len(rivals_ahead(plain))
    # What the answer composer asks for (a short list, the matter's passages added to the candidates)
    # ranks like the full fusion.
    short = searcher.run(q, k=3, prefer_doc="passport")
    assert [h.passage.id for h in short] == [h.passage.id for h in nudged[:3]]


@pytest.mark.parametrize("q,target", [
    ("两口子商量好了要离婚，去民政局要带啥", {"guide": "divorce-registration"}),
    ("身份证掉了，明天要坐高铁能不能办个临时的", {"guide": "id-card-reissue"}),
    ("回老家看病厦门医保怎么备案", {"guide": "medical-treatment-elsewhere-filing"}),
    ("来电人咨询：护照办理所需材料", {"guide": "passport"}),
    ("全流程网上审批服务事项要突破多少项", {"doc": "001", "clause": "一、(三)"}),
    ("东平首席代表在窗口要连续干几年", {"doc": "002", "clause": "二、(一)2."}),
    ("湖里行政许可类事项平均要交几份材料", {"doc": "003", "clause": "一、(二)4."}),
    ("海沧多测合一是怎么做的", {"doc": "004", "clause": "第24项"}),
    ("环保局审批流程统一整合成哪几个环节", {"doc": "000", "clause": "三、(九)"}),
])
def test_labelled_questions_hit_in_the_top_three(searcher, q, target):
    hits = searcher.run(q, k=3)
    if "guide" in target:
        assert target["guide"] in [h.passage.doc_id for h in hits]
    else:
        assert (target["doc"], target["clause"]) in [(h.passage.doc_id, h.passage.clause) for h in hits]


def test_hybrid_beats_both_sides_on_the_labelled_set(searcher):
    """Regression guard for the fusion (bench/retrieval.py prints the full table)."""
    items = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    items = [i for i in items if not i.get("oos")]

    def hit1(mode: str) -> float:
        ok = 0
        for i in items:
            hits = searcher.run(i["q"], k=1, mode=mode)
            p = hits[0].passage if hits else None
            if p is not None and p.doc_id == i.get("guide", i.get("doc")) and ("clause" not in i or p.clause == i["clause"]):
                ok += 1
        return ok / len(items)

    hybrid, bm25, dense = hit1("hybrid"), hit1("bm25"), hit1("dense")
    assert hybrid >= 0.85
    assert hybrid > bm25 and hybrid > dense


def _full_corpus(searcher, q: str):
    """Every passage's cosine and BM25 score, computed the slow way (the definition search follows)."""
    import numpy as np

    text = searcher.expand(q)
    cos = np.einsum("ij,j->i", searcher.index.dense.reconstruct_n(0, searcher.index.dense.ntotal),
                    searcher.query_vector(text)[0])
    return cos, np.asarray(searcher.bm25.get_scores(lexical_tokens(text)), dtype=np.float64)


@pytest.mark.parametrize("q", ["结婚登记要带什么材料", "护找丢了怎么补办", "湖里区申请公租房收入标准", "驾驶证到期换证"])
def test_fusing_the_candidates_ranks_like_fusing_every_passage(searcher, q):
    import numpy as np

    from embeddings.search import BM25_WEIGHT

    cos, bm = _full_corpus(searcher, q)
    fused = (1 - BM25_WEIGHT) * (cos - cos.mean()) / cos.std() + BM25_WEIGHT * (bm - bm.mean()) / bm.std()
    want = fused / fused.max()
    hits = searcher.run(q, k=8)
    # The eight best scores of the whole corpus, in order, and each hit carries its own passage's
    # score (float32 candidates against a float64 reference: near-equal passages may swap, so the
    # passages are checked through their scores, not their order).
    assert [h.score for h in hits] == pytest.approx(list(np.sort(want)[::-1][:8]), abs=1e-4)
    pos = {p.id: i for i, p in enumerate(searcher.passages)}
    assert [h.score for h in hits] == pytest.approx([float(want[pos[h.passage.id]]) for h in hits], abs=1e-4)
    assert len({h.passage.id for h in hits}) == 8


def test_dense_score_is_the_real_cosine_also_for_passages_found_by_bm25_alone(searcher, monkeypatch):
    import numpy as np

    import embeddings.search as search

    q, every = "港澳通行证签注办理", len(searcher.passages)
    cos, bm = _full_corpus(searcher, q)
    # Every passage a candidate (pools as large as the corpus); then the dense side is made to miss
    # every passage that shares a word with the question, so those come in through BM25 alone —
    # built here rather than hoped for from small pools, where it depends on the CPU's cosines.
    monkeypatch.setattr(search, "CANDIDATES", every)
    want = searcher.run(q, k=6)
    lexical = set(np.flatnonzero(bm > 0).tolist())
    dense_candidates = searcher._dense_candidates
    monkeypatch.setattr(searcher, "_dense_candidates",
                        lambda v, n: np.array([i for i in dense_candidates(v, n) if int(i) not in lexical], np.int64))
    hits = searcher.run(q, k=6)
    pos = {p.id: i for i, p in enumerate(searcher.passages)}
    assert [pos[h.passage.id] in lexical for h in hits].count(True) >= 1, "a hit found by BM25 alone"
    # Found by BM25 alone or not, a passage scores exactly the same: its real cosine is looked up.
    assert [(h.passage.id, h.score, h.dense) for h in hits] == [(h.passage.id, h.score, h.dense) for h in want]
    for h in hits:
        assert h.dense == pytest.approx(float(cos[pos[h.passage.id]]), abs=1e-5)
