"""Versioned index: builds, staleness, atomic publish, rollback, and no half-written version."""

import dataclasses
import json

import pytest

from embeddings import index as idx
from knowledge.records import load_knowledge


@pytest.fixture(scope="module")
def small_kb():
    kb = load_knowledge()
    keep = {"passport", "marriage-registration"}
    policy = [p for p in kb.passages if p.doc_id == "001"][:4]
    return dataclasses.replace(kb, guides=[g for g in kb.guides if g.id in keep],
                               passages=[p for p in kb.passages if p.doc_id in keep] + policy)


def test_build_writes_a_complete_version_and_publishes_it(tmp_path, small_kb, engine):
    path = idx.build(small_kb, engine.encoder, tmp_path)
    assert idx.current_version(tmp_path) == path.name
    loaded = idx.load(tmp_path)
    assert loaded.dense.ntotal == len(loaded.passages) == len(small_kb.passages)
    m = loaded.manifest
    assert m["model"] == engine.encoder.name and m["dimensions"] == 384 and m["fingerprint"] == small_kb.fingerprint
    assert {g.id for g in loaded.guides} == {"passport", "marriage-registration"}


def test_staleness_follows_the_sources(tmp_path, small_kb, engine):
    idx.build(small_kb, engine.encoder, tmp_path)
    assert not idx.is_stale(tmp_path, small_kb, engine.encoder.name)
    changed = dataclasses.replace(small_kb, checksums={**small_kb.checksums, "guides/passport.yaml": "edited"})
    assert idx.is_stale(tmp_path, changed, engine.encoder.name)
    assert idx.is_stale(tmp_path, small_kb, "another-model")


def test_a_crash_mid_build_leaves_the_live_version_untouched(tmp_path, small_kb, engine, monkeypatch):
    first = idx.build(small_kb, engine.encoder, tmp_path)

    def boom(*a, **k):
        raise RuntimeError("power cut")

    monkeypatch.setattr(idx.faiss, "write_index", boom)
    with pytest.raises(RuntimeError):
        idx.build(small_kb, engine.encoder, tmp_path)
    assert idx.current_version(tmp_path) == first.name
    assert [d.name for d in tmp_path.iterdir() if d.is_dir()] == [first.name]  # no temp dir, no half version


def test_staged_build_is_not_published_and_rollback_is_one_pointer(tmp_path, small_kb, engine):
    first = idx.build(small_kb, engine.encoder, tmp_path)
    staged = idx.build(dataclasses.replace(small_kb, checksums={"x": "1"}), engine.encoder, tmp_path, activate=False)
    assert idx.current_version(tmp_path) == first.name
    idx.set_current(tmp_path, staged.name)
    assert idx.current_version(tmp_path) == staged.name
    idx.set_current(tmp_path, first.name)  # roll back
    assert idx.current_version(tmp_path) == first.name
    with pytest.raises(FileNotFoundError):
        idx.set_current(tmp_path, "v-does-not-exist")


def test_old_versions_are_pruned_but_current_is_kept(tmp_path, small_kb, engine):
    first = idx.build(small_kb, engine.encoder, tmp_path, keep=2)
    for i in range(3):
        idx.build(dataclasses.replace(small_kb, checksums={"n": str(i)}), engine.encoder, tmp_path, keep=2, activate=False)
    names = {d.name for d in tmp_path.glob("v*")}
    assert first.name in names and len(names) == 3  # the two newest, and the current one


def test_a_running_engine_swaps_versions_without_a_gap(tmp_path, small_kb, engine, monkeypatch):
    from assistant.engine import Engine
    from settings import Settings

    first = idx.build(small_kb, engine.encoder, tmp_path)
    eng = Engine.__new__(Engine)  # reuse the loaded encoder instead of loading the model again
    eng.settings, eng.encoder = Settings(index_dir=tmp_path), engine.encoder
    import threading
    eng._lock, eng._loading, eng._checked = threading.Lock(), False, 0.0
    eng.current = eng._load(None)
    second = idx.build(dataclasses.replace(small_kb, checksums={"v": "2"}), engine.encoder, tmp_path)
    assert eng.current.version == first.name  # still answering with the old one
    assert eng.current.answerer.run("护照多少钱").matter == "passport"
    assert eng.reload() == second.name and eng.current.version == second.name


def test_an_index_built_with_another_encoder_is_refused(tmp_path, small_kb, engine, capsys, monkeypatch):
    from embeddings.__main__ import main
    from settings import get_settings

    ours = idx.build(small_kb, engine.encoder, tmp_path)
    other = idx.build(dataclasses.replace(small_kb, checksums={"o": "1"}), engine.encoder, tmp_path, activate=False)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest.update(model="bge-large-zh", dimensions=1024)  # as if built by another installation's encoder
    (other / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(idx.IncompatibleIndex, match="bge-large-zh.*1024.*multilingual-e5-small.*384"):
        idx.load(tmp_path, other.name, encoder=engine.encoder.signature)
    with pytest.raises(idx.IncompatibleIndex):
        idx.set_current(tmp_path, other.name, encoder=engine.encoder.signature)
    assert idx.current_version(tmp_path) == ours.name

    # The admin command refuses it with the message, and CURRENT stays where it was.
    monkeypatch.setenv("BST_INDEX_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert main(["activate", other.name]) == 1
    finally:
        get_settings.cache_clear()
    assert "built with encoder 'bge-large-zh' (1024 dimensions)" in capsys.readouterr().err
    assert idx.current_version(tmp_path) == ours.name

    # A running engine keeps answering with the version it has.
    from assistant.engine import Engine
    from settings import Settings

    eng = Engine.__new__(Engine)
    eng.settings, eng.encoder = Settings(index_dir=tmp_path), engine.encoder
    eng.current = eng._load(None)
    with pytest.raises(idx.IncompatibleIndex):
        eng.reload(other.name)
    assert eng.current.version == ours.name


def test_above_the_ann_threshold_the_dense_side_is_ivf_and_answers_alike(tmp_path, small_kb, engine):
    from embeddings.search import HybridSearcher

    idx.build(small_kb, engine.encoder, tmp_path / "exact")
    idx.build(small_kb, engine.encoder, tmp_path / "ann", ann_min=10)  # low threshold: the ANN path
    exact, ann = idx.load(tmp_path / "exact"), idx.load(tmp_path / "ann")
    assert exact.manifest["dense_index"] == "IndexFlatIP"
    assert ann.manifest["dense_index"] == "IndexIVFFlat" and ann.dense.ntotal == len(small_kb.passages)
    by_exact, by_ann = HybridSearcher(exact, engine.encoder), HybridSearcher(ann, engine.encoder)
    for q in ("护照过期了怎么换", "结婚登记要带什么材料", "护照加急要多少钱"):
        a, b = by_exact.run(q, k=5), by_ann.run(q, k=5)
        assert [h.passage.id for h in b] == [h.passage.id for h in a]
        assert [h.dense for h in b] == pytest.approx([h.dense for h in a], abs=1e-5)
    assert by_ann.run("护照过期了怎么换", k=1)[0].passage.doc_id == "passport"


def test_a_rebuild_encodes_only_the_passages_whose_text_changed(tmp_path, small_kb, engine, monkeypatch):
    import numpy as np

    first = idx.build(small_kb, engine.encoder, tmp_path)
    one = small_kb.passages[0]
    edited = dataclasses.replace(small_kb, passages=[one.model_copy(update={"text": one.text + "（已更新）"}),
                                                     *small_kb.passages[1:]])
    encoded = []
    real = engine.encoder.passages
    monkeypatch.setattr(engine.encoder, "passages", lambda texts: encoded.extend(texts) or real(texts))
    second = idx.build(edited, engine.encoder, tmp_path)
    assert len(encoded) == 1 and "（已更新）" in encoded[0]
    a, b = idx.load(tmp_path, first.name), idx.load(tmp_path, second.name)
    va, vb = a.dense.reconstruct_n(0, a.dense.ntotal), b.dense.reconstruct_n(0, b.dense.ntotal)
    assert np.allclose(va[1:], vb[1:], atol=1e-6) and not np.allclose(va[0], vb[0], atol=1e-3)
    fresh = idx.build(edited, engine.encoder, tmp_path, reuse=False)  # --force: everything again
    assert len(encoded) == 1 + len(edited.passages)
    vf = idx.load(tmp_path, fresh.name).dense
    assert np.allclose(vf.reconstruct_n(0, vf.ntotal), vb, atol=1e-4)
