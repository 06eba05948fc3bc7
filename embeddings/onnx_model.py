"""The int8 ONNX export of the sentence encoder (built by `python -m embeddings.export_onnx`).

Needs only numpy, onnxruntime and `tokenizers` — no torch — so both the app's query encoder and
the Rasa NLU featurizer (bot/e5_featurizer.py, in the Rasa environment) run it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_TOKENS = 512  # the model's position embeddings; sentence-transformers truncates there too
BATCH = 32


@dataclass
class TokenOutput:
    """One text's token vectors, with each token's character span in the text (prompt excluded)."""

    sentence: np.ndarray  # [dim], L2-normalised mean of the tokens
    tokens: np.ndarray  # [n_tokens, dim], special tokens removed
    offsets: list[tuple[int, int]]


class OnnxModel:
    def __init__(self, onnx_dir: Path, threads: int | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        onnx_dir = Path(onnx_dir)
        meta_path = onnx_dir / "export.json"
        if not (meta_path.exists() and (onnx_dir / "model.int8.onnx").exists()):
            raise FileNotFoundError(f"no ONNX encoder at {onnx_dir}: run `make setup` (python -m embeddings.export_onnx)")
        self.dir = onnx_dir
        self.meta = json.loads(meta_path.read_text())
        # Identity of this export (a re-export with other weights or quantisation changes it): a
        # vector made by another process is only reused when it names the same one.
        self.export_id = hashlib.sha256(meta_path.read_bytes()).hexdigest()[:16]
        self.dim = int(self.meta["dimension"])
        self.prompts: dict[str, str] = self.meta.get("prompts", {})
        self.name = self.meta["source_model"]
        self.tokenizer = Tokenizer.from_file(str(onnx_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.pad_id = self.tokenizer.token_to_id("<pad>")
        self.tokenizer.enable_padding(pad_id=self.pad_id if self.pad_id is not None else 0, pad_token="<pad>")
        opts = ort.SessionOptions()
        if threads:
            # Serving processes share the cores with Rasa: one thread per process avoids contention.
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_dir / "model.int8.onnx"), opts, providers=["CPUExecutionProvider"])

    def _inputs(self, texts: list[str], prompt: str):
        enc = self.tokenizer.encode_batch([prompt + t for t in texts])
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        return enc, {"input_ids": ids, "attention_mask": mask}

    def encode(self, texts: list[str], prompt_name: str) -> np.ndarray:
        """L2-normalised sentence embeddings [len(texts), dim], float32."""
        prompt = self.prompts.get(prompt_name, "")
        out = [np.zeros((0, self.dim), dtype=np.float32)]
        for i in range(0, len(texts), BATCH):
            _, feed = self._inputs(texts[i : i + BATCH], prompt)
            out.append(self.session.run(["sentence_embedding"], feed)[0])
        return np.ascontiguousarray(np.vstack(out), dtype=np.float32)

    def encode_tokens(self, texts: list[str], prompt_name: str) -> list[TokenOutput]:
        """Sentence and per-token vectors, with token offsets into each text (for featurizers)."""
        prompt = self.prompts.get(prompt_name, "")
        result: list[TokenOutput] = []
        for i in range(0, len(texts), BATCH):
            enc, feed = self._inputs(texts[i : i + BATCH], prompt)
            sent, toks = self.session.run(["sentence_embedding", "token_embeddings"], feed)
            for j, e in enumerate(enc):
                keep, spans = [], []
                for k, ((a, b), special, m) in enumerate(zip(e.offsets, e.special_tokens_mask, e.attention_mask)):
                    if m and not special and b > len(prompt):
                        keep.append(k)
                        spans.append((max(a - len(prompt), 0), b - len(prompt)))
                result.append(TokenOutput(sent[j].astype(np.float32), toks[j, keep].astype(np.float32), spans))
        return result
