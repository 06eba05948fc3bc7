"""Retrieval behaviour on the live index (runs after `make setup`: encoder and index exist)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embeddings.search import Homophones, char_grams, lexical_tokens

LABELLED = Path(__file__).resolve().parent.parent / "bench" / "retrieval_set.jsonl"


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
    # Dense alone nearly ties 结婚登记 and 出生登记 (cosines 0.001 apart with the int8 query encoder).
    top = [h.passage.doc_id for h in hits[: 1 if mode != "dense" else 2]]
    assert "marriage-registration" in top
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
    plain = [h.passage.doc_id for h in searcher.run("那要多少钱", k=10)]
    nudged = [h.passage.doc_id for h in searcher.run("那要多少钱", k=3, prefer_doc="passport")]
    assert "passport" in nudged[:2] and ("passport" not in plain or plain.index("passport") > nudged.index("passport"))


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
    want = [searcher.passages[i].id for i in np.argsort(-fused, kind="stable")[:8]]
    hits = searcher.run(q, k=8)
    assert [h.passage.id for h in hits] == want
    assert [h.score for h in hits] == pytest.approx(list(fused[np.argsort(-fused, kind="stable")[:8]] / fused.max()),
                                                    abs=1e-4)


def test_dense_score_is_the_real_cosine_also_for_passages_found_by_bm25_alone(searcher, monkeypatch):
    import embeddings.search as search

    monkeypatch.setattr(search, "CANDIDATES", 3)  # small pools: the union holds BM25-only candidates
    q = "港澳通行证签注办理"
    cos, bm = _full_corpus(searcher, q)
    ids = [h.passage.id for h in searcher.run(q, k=6)]
    dense_top = {searcher.passages[i].id for i in cos.argsort()[::-1][:6]}
    assert set(ids) - dense_top, "expected a candidate found by BM25 alone"
    pos = {p.id: i for i, p in enumerate(searcher.passages)}
    for h in searcher.run(q, k=6):
        assert h.dense == pytest.approx(float(cos[pos[h.passage.id]]), abs=1e-5)
