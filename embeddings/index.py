"""Versioned retrieval index: records → FAISS (dense) + passages + guides snapshot + manifest.

Layout under settings.index_dir:

    v20261122T031500-<fingerprint>/   one complete version (written to a temp dir, then renamed)
        dense.faiss  passages.jsonl  guides.json  manifest.json
    CURRENT                           name of the live version (replaced atomically)

A build never touches the live version, so the server keeps answering while it runs; a crash
leaves at most a `.tmp-*` directory that the next build removes. Rolling back is pointing
CURRENT at an older version.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from embeddings.encoder import Encoder
from knowledge.records import KnowledgeBase
from knowledge.schema import Guide, Passage

FORMAT = 1
# Above this many passages the dense side is an approximate (IVF) index; below it, exact search.
# Chosen with `python -m bench.scale` (bench/README.md): at 50,000 synthetic passages IVF reached
# recall@10 0.958 at 0.20 ms (nprobe 32 of 894 lists) and built in 23 s, HNSW 0.971 at 0.64 ms and
# built in 79 s; exact search is linear in the corpus (milliseconds from tens of thousands of
# passages). At 1,000,000 passages IVF (4,000 lists) reached 0.973 at 2.45 ms with nprobe 64, HNSW
# (M 32) only 0.831 at efSearch 256, and exact search took 52 ms. Both real corpora (561 and 1,370
# passages) stay exact.
ANN_MIN_PASSAGES = 50_000
# Share of the lists searched per query, at least 32: 64 of 4,000 lists at 1,000,000 passages, and
# the floor of 32 (of 894) at 50,000 — the two settings measured above.
IVF_PROBE_SHARE = 0.016


def _log(msg: str) -> None:
    print(f"[index] {msg}", file=sys.stderr, flush=True)


@dataclass
class IndexVersion:
    path: Path
    manifest: dict
    passages: list[Passage]
    guides: list[Guide]
    dense: faiss.Index
    # First and second moments of the passage vectors (mean, E[v vᵀ]): a query's mean and spread of
    # cosine over ALL passages follow from them exactly, without scoring every passage.
    moments: tuple[np.ndarray, np.ndarray]

    @property
    def version(self) -> str:
        return self.path.name


def passage_text_for_embedding(p: Passage) -> str:
    # The title gives a short clause the context of its document or guide.
    return p.text if p.text.startswith(p.title) else f"{p.title}：{p.text}"


class IncompatibleIndex(ValueError):
    """The index was built with another encoder: its vectors cannot be compared with this encoder's."""


def check_encoder(manifest: dict, model: str, dim: int, dense: faiss.Index | None = None) -> None:
    """Refuse an index whose manifest (or FAISS file) names another model or dimension."""
    got_model, got_dim = manifest.get("model"), manifest.get("dimensions")
    if dense is not None and dense.d != got_dim:
        got_dim = f"{got_dim} in the manifest, {dense.d} in dense.faiss"
    if got_model != model or got_dim != dim:
        raise IncompatibleIndex(
            f"index {manifest.get('version')} was built with encoder {got_model!r} ({got_dim} dimensions), "
            f"but this installation encodes queries with {model!r} ({dim} dimensions); its vectors are not "
            f"comparable. Rebuild it with `python -m embeddings build --force`, or activate a version built "
            f"with {model!r} (`python -m embeddings versions` lists each version's model)")


def current_version(root: Path) -> str | None:
    ptr = root / "CURRENT"
    if not ptr.exists():
        return None
    name = ptr.read_text().strip()
    return name if (root / name / "manifest.json").exists() else None


def set_current(root: Path, version: str, encoder: tuple[str, int] | None = None) -> None:
    """Point CURRENT at version; with encoder=(model name, dimension), refuse a version built with another."""
    if not (root / version / "manifest.json").exists():
        raise FileNotFoundError(f"no index version {version}")
    if encoder is not None:
        check_encoder(json.loads((root / version / "manifest.json").read_text()), *encoder)
    tmp = root / f".CURRENT.{os.getpid()}"
    tmp.write_text(version + "\n")
    os.replace(tmp, root / "CURRENT")  # atomic on POSIX


def list_versions(root: Path) -> list[dict]:
    out = []
    for d in sorted(root.glob("v*"), reverse=True):
        if (d / "manifest.json").exists():
            out.append(json.loads((d / "manifest.json").read_text()))
    return out


def is_stale(root: Path, kb: KnowledgeBase, model_name: str) -> bool:
    cur = current_version(root)
    if cur is None:
        return True
    m = json.loads((root / cur / "manifest.json").read_text())
    return m.get("fingerprint") != kb.fingerprint or m.get("model") != model_name or m.get("format") != FORMAT


def dense_index(vecs: np.ndarray, ann_min: int = ANN_MIN_PASSAGES) -> faiss.Index:
    """Exact inner product (= cosine on normalised vectors) below ann_min vectors, IVF above."""
    dim = vecs.shape[1]
    if len(vecs) < ann_min:
        index = faiss.IndexFlatIP(dim)
        index.add(vecs)
        return index
    nlist = max(1, min(len(vecs) // 39, int(4 * len(vecs) ** 0.5)))  # faiss wants ≥ 39 points per list
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(0).choice(len(vecs), min(len(vecs), 40 * nlist), replace=False)
    index.train(vecs[np.sort(sample)])
    index.add(vecs)
    index.make_direct_map()  # search looks candidates' vectors up by id (stored with the index)
    index.nprobe = max(1, min(nlist, max(32, int(np.ceil(IVF_PROBE_SHARE * nlist)))))
    return index


def moments(vecs: np.ndarray, step: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """(mean, E[v vᵀ]) of the rows, in float64, a chunk at a time."""
    dim = vecs.shape[1]
    s1, s2 = np.zeros(dim), np.zeros((dim, dim))
    for i in range(0, len(vecs), step):
        x = np.asarray(vecs[i : i + step], dtype=np.float64)
        s1 += x.sum(0)
        s2 += x.T @ x
    n = max(1, len(vecs))
    return s1 / n, s2 / n


def _index_moments(index: faiss.Index, step: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    dim, n = index.d, index.ntotal
    s1, s2 = np.zeros(dim), np.zeros((dim, dim))
    for i in range(0, n, step):
        m1, m2 = moments(index.reconstruct_n(i, min(step, n - i)))
        w = min(step, n - i)
        s1 += m1 * w
        s2 += m2 * w
    return s1 / max(1, n), s2 / max(1, n)


def encoder_stamp(encoder: Encoder) -> str:
    """Identifies the encoder's files (name, size, mtime of each): vectors are reused only from the same files."""
    import hashlib

    h = hashlib.sha256(encoder.name.encode())
    for f in sorted(Path(encoder.model_dir).rglob("*")):
        if f.is_file():
            st = f.stat()
            h.update(f"{f.relative_to(encoder.model_dir)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _reusable_vectors(root: Path, encoder: Encoder, stamp: str) -> dict[str, np.ndarray]:
    """Passage text → vector from the live version, when the same encoder files built it.

    A city's knowledge base changes a few guides at a time: re-encoding only the passages whose text
    changed turns a rebuild of thousands of guides from minutes of encoding into seconds."""
    version = current_version(root)
    if not version or not (root / version / "manifest.json").exists():
        return {}
    try:
        manifest = json.loads((root / version / "manifest.json").read_text())
        if manifest.get("encoder_stamp") != stamp:
            return {}
        dense = faiss.read_index(str(root / version / "dense.faiss"))
        if hasattr(dense, "make_direct_map"):
            dense.make_direct_map()
        with open(root / version / "passages.jsonl", encoding="utf-8") as f:
            texts = [passage_text_for_embedding(Passage.model_validate_json(line)) for line in f if line.strip()]
        if len(texts) != dense.ntotal:
            return {}
        vecs = dense.reconstruct_n(0, dense.ntotal)
    except (OSError, ValueError, RuntimeError):
        return {}  # unreadable: encode everything
    return dict(zip(texts, vecs))


def build(kb: KnowledgeBase, encoder: Encoder, root: Path, keep: int = 5, activate: bool = True,
          ann_min: int = ANN_MIN_PASSAGES, reuse: bool = True) -> Path:
    """Build a new version from kb; make it CURRENT if activate. Returns the version directory."""
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".tmp-*"):  # left behind by a crashed build
        shutil.rmtree(stale, ignore_errors=True)
    t0 = time.perf_counter()
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    name = f"v{stamp}-{kb.fingerprint}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        stamp = encoder_stamp(encoder)
        texts = [passage_text_for_embedding(p) for p in kb.passages]
        known = _reusable_vectors(root, encoder, stamp) if reuse else {}
        todo = sorted({t for t in texts if t not in known})
        _log(f"encoding {len(todo)} passages with {encoder.name}" + (
            f" ({len(texts) - sum(t not in known for t in texts)} of {len(texts)} unchanged, reused)" if known else ""))
        step = 128
        for i in range(0, len(todo), step):
            known.update(zip(todo[i : i + step], encoder.passages(todo[i : i + step])))
            _log(f"  {min(i + step, len(todo))}/{len(todo)}")
        vecs = (np.vstack([known[t] for t in texts]).astype(np.float32) if texts
                else np.zeros((0, encoder.dim), dtype=np.float32))
        index = dense_index(vecs, ann_min)
        faiss.write_index(index, str(tmp / "dense.faiss"))
        mean, second = moments(vecs)
        np.savez(tmp / "dense_moments.npz", mean=mean, second=second)
        with open(tmp / "passages.jsonl", "w", encoding="utf-8") as f:
            for p in kb.passages:
                f.write(p.model_dump_json() + "\n")
        (tmp / "guides.json").write_text(
            json.dumps([g.model_dump(mode="json") for g in kb.guides], ensure_ascii=False), encoding="utf-8"
        )
        # Two builds of the same knowledge in one second (a rebuild that reuses every vector) would get
        # the same name: the later one is told apart, never renamed onto the first.
        n = 1
        while (root / name).exists():
            n += 1
            name = f"v{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%S')}-{kb.fingerprint}-{n}"
        manifest = {
            "version": name, "format": FORMAT, "model": encoder.name, "dimensions": encoder.dim,
            "fingerprint": kb.fingerprint, "checksums": kb.checksums, "passages": len(kb.passages),
            "guides": len(kb.guides), "dense_index": type(index).__name__, "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "build_seconds": round(time.perf_counter() - t0, 1), "encoder_stamp": stamp,
            "encoded_passages": len(todo),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
        for f in tmp.iterdir():  # make the files durable before the rename publishes them
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        tmp.rename(root / name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if activate:
        set_current(root, name)
    _prune(root, keep)
    _log(f"built {name} in {time.perf_counter() - t0:.1f}s")
    return root / name


def _prune(root: Path, keep: int) -> None:
    cur = current_version(root)
    # Newest last by build time (names can tie within a second).
    versions = sorted((d for d in root.glob("v*") if d.is_dir()), key=lambda d: (d.stat().st_mtime, d.name))
    for d in versions[:-keep] if keep > 0 else []:
        if d.name != cur:
            shutil.rmtree(d, ignore_errors=True)


def load(root: Path, version: str | None = None, encoder: tuple[str, int] | None = None) -> IndexVersion:
    """Load version (default CURRENT); with encoder=(model name, dimension), refuse one built with another."""
    version = version or current_version(root)
    if version is None:
        raise FileNotFoundError(f"no index under {root}: run `make index`")
    path = root / version
    manifest = json.loads((path / "manifest.json").read_text())
    with open(path / "passages.jsonl", encoding="utf-8") as f:
        passages = [Passage.model_validate_json(line) for line in f if line.strip()]
    guides = [Guide.model_validate(g) for g in json.loads((path / "guides.json").read_text(encoding="utf-8"))]
    dense = faiss.read_index(str(path / "dense.faiss"))
    if encoder is not None:
        check_encoder(manifest, *encoder, dense=dense)
    if (path / "dense_moments.npz").exists():
        with np.load(path / "dense_moments.npz") as z:
            mom = (z["mean"], z["second"])
    else:  # written before the moments were stored: same numbers, computed once here
        mom = _index_moments(dense)
    return IndexVersion(path, manifest, passages, guides, dense, mom)
