"""bot/e5_featurizer.py inside the Rasa environment (.venv/rasa: no torch), on real jieba tokens.

Its effect on intent classification is measured by `python -m bench.nlu` (bench/README.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RASA_PY = ROOT / ".venv/rasa/bin/python"

SCRIPT = r"""
import json, sys
import numpy as np
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from bot.e5_featurizer import E5Featurizer

import tempfile
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource

texts = json.loads(sys.argv[1])
storage = LocalModelStorage(tempfile.mkdtemp())
ctx = ExecutionContext(graph_schema=None, node_name="tok")
tok = JiebaTokenizer.create(JiebaTokenizer.get_default_config(), storage, Resource("tok"), ctx)
feat = E5Featurizer.create(E5Featurizer.get_default_config(), storage, Resource("e5"), ExecutionContext(None, node_name="e5"))
train = TrainingData([Message(data={"text": t, "intent": "x"}) for t in texts[:2]])
tok.process_training_data(train)
feat.process_training_data(train)
msgs = [Message(data={"text": t}) for t in texts[2:]]
tok.process(msgs)
feat.process(msgs)
out = []
for m in train.training_examples + msgs:
    seq, sent = m.get_dense_features("text", ["e5"])
    out.append({"tokens": [t.text for t in m.get("text_tokens")], "seq": list(seq.features.shape),
                "sent": sent.features[0].tolist(), "seq_nonzero": int((np.abs(seq.features).sum(1) > 0).sum())})
print(json.dumps(out))
"""


def run_in_rasa(texts: list[str], env_extra: dict | None = None) -> subprocess.CompletedProcess:
    if not RASA_PY.exists():
        pytest.fail("Rasa environment missing: run `make setup`", pytrace=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "RASA_TELEMETRY_ENABLED": "false",
           **(env_extra or {})}
    return subprocess.run([str(RASA_PY), "-W", "ignore", "-c", SCRIPT, json.dumps(texts, ensure_ascii=False)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_features_in_the_rasa_environment():
    texts = ["我要补办身份证", "身份证丢了怎么办", "身分證遺失了怎麼辦", "今天天气怎么样"]
    proc = run_in_rasa(texts)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for item in out:
        # one sequence vector per jieba token (training and serving alike), each covered by e5 sub-words
        assert item["seq"] == [len(item["tokens"]), 384]
        assert item["seq_nonzero"] == len(item["tokens"])
    sent = [item["sent"] for item in out]
    cos = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731 (vectors are normalised)
    # The traditional-character, typo'd question sits next to its simplified twin, far from chit-chat.
    assert cos(sent[1], sent[2]) > cos(sent[1], sent[3]) + 0.05
    assert cos(sent[0], sent[1]) > cos(sent[0], sent[3])


def test_missing_model_folder_is_a_clear_error(tmp_path):
    proc = run_in_rasa(["你好", "谢谢", "再见"], {"BST_E5_ONNX_DIR": str(tmp_path / "nowhere")})
    assert proc.returncode != 0
    assert "no ONNX encoder at" in proc.stderr and "BST_E5_ONNX_DIR" in proc.stderr
