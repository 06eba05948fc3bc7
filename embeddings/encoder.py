"""Sentence encoder: any local sentence-transformers model directory, loaded offline."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub at run time
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class Encoder:
    def __init__(self, model_dir: Path, threads: int | None = None):
        import torch
        from sentence_transformers import SentenceTransformer  # heavy import, only when needed

        if threads:
            # Serving processes share 2 cores with Rasa: one thread each answers a short query
            # faster (~60 ms) than two threads fighting the other processes (0.3–1 s).
            torch.set_num_threads(threads)

        if not (Path(model_dir) / "config.json").exists():
            raise FileNotFoundError(f"no sentence-transformers model at {model_dir}: run `make setup`")
        self.model_dir = Path(model_dir)
        self.model = SentenceTransformer(str(model_dir), device="cpu")
        self.dim = self.model.get_embedding_dimension()
        self.name = self.model_dir.name

    def _encode(self, texts: list[str], prompt: str, batch_size: int, progress: bool) -> np.ndarray:
        # e5 models want "query: " / "passage: "; other models may define other prompts or none.
        kw = {"prompt_name": prompt} if prompt in (self.model.prompts or {}) else {}
        vecs = self.model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=progress,
            convert_to_numpy=True, **kw,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, "query", 32, False)

    def passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self._encode(texts, "passage", 32, progress)
