"""Dense features for Rasa NLU from the project's own sentence encoder (multilingual-e5-small).

Runs the int8 ONNX export built by `python -m embeddings.export_onnx` (setup does it) with
onnxruntime + `tokenizers` — the Rasa environment has no torch — and never downloads anything:
the model folder is `model_dir` in config.yml, overridden by the environment variable
BST_E5_ONNX_DIR (relative paths are taken from the directory Rasa runs in, the repository root).

For each message it adds, like Rasa's own ConveRT / language-model featurizers:
* a sentence feature: the e5 sentence embedding ("query: " prompt, mean-pooled, L2-normalised) —
  what lets DIET generalise to phrasings, typos and traditional characters it has not seen;
* sequence features, one per token of the pipeline's tokenizer (jieba): the mean of the e5
  sub-word vectors whose characters overlap the token (zeros for a token none overlaps).

When serving, the sentence embedding of the message's text also goes into its parse data
(`e5_query`, embeddings/query_vector.py), so the action server's retrieval reuses it instead of
encoding the same text again. The features themselves are unchanged by that.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Text, Type

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES, TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.exceptions import RasaException
from rasa.shared.nlu.constants import ACTION_TEXT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from embeddings import query_vector
from embeddings.onnx_model import OnnxModel

logger = logging.getLogger(__name__)
ENV_DIR = "BST_E5_ONNX_DIR"
BATCH = 64


def _model_dir(config: Dict[Text, Any]) -> Path:
    return Path(os.environ.get(ENV_DIR) or config["model_dir"]).expanduser().resolve()


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class E5Featurizer(DenseFeaturizer, GraphComponent):
    """Sentence and token features from the local int8 ONNX multilingual-e5-small."""

    @classmethod
    def required_components(cls) -> List[Type]:
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            **DenseFeaturizer.get_default_config(),
            "model_dir": "var/models/multilingual-e5-small-onnx",
            "prompt": "query",  # e5: "query: " for short texts that are compared or classified
            "threads": 1,  # the Rasa server answers one message at a time on a shared machine
        }

    @staticmethod
    def required_packages() -> List[Text]:
        return ["onnxruntime", "tokenizers"]

    @classmethod
    def fingerprint_addon(cls, config: Dict[Text, Any]) -> Optional[Text]:
        # A re-exported model changes the features: Rasa must not reuse cached ones.
        meta = _model_dir({**cls.get_default_config(), **config}) / "export.json"
        return hashlib.sha256(meta.read_bytes()).hexdigest() if meta.exists() else None

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        if not (_model_dir(config) / "model.int8.onnx").exists():
            raise RasaException(f"E5Featurizer: no ONNX encoder at {_model_dir(config)}: run `make setup` "
                                f"(python -m embeddings.export_onnx) or set {ENV_DIR} to the model folder")

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "E5Featurizer":
        return cls(execution_context.node_name, config)

    def __init__(self, name: Text, config: Dict[Text, Any]) -> None:
        super().__init__(name, config)
        self.validate_config(self._config)
        path = _model_dir(self._config)
        try:
            self.model = OnnxModel(path, threads=self._config["threads"])
        except FileNotFoundError as exc:
            raise RasaException(f"E5Featurizer: {exc} (or set {ENV_DIR} to the model folder)") from exc
        logger.info("E5Featurizer: %s from %s (%d dimensions)", self.model.name, path, self.model.dim)

    def _features(self, messages: List[Message], attribute: Text, share: bool = False) -> None:
        for start in range(0, len(messages), BATCH):
            batch = messages[start : start + BATCH]
            outs = self.model.encode_tokens([m.get(attribute) for m in batch], self._config["prompt"])
            for message, out in zip(batch, outs):
                tokens = message.get(TOKENS_NAMES[attribute]) or []
                seq = np.zeros((len(tokens), self.model.dim), dtype=np.float32)
                for i, tok in enumerate(tokens):
                    overlap = [j for j, (a, b) in enumerate(out.offsets) if a < tok.end and b > tok.start]
                    if overlap:
                        seq[i] = out.tokens[overlap].mean(axis=0)
                self.add_features_to_message(seq, out.sentence[None, :], attribute, message)
                if share:
                    # One message at a time when serving (no padding in the batch): the vector is
                    # what the action server's encoder would make of this text with this export.
                    message.set(query_vector.PROPERTY, query_vector.pack(
                        message.get(attribute), out.sentence, self.model.export_id, self._config["prompt"]),
                        add_to_output=True)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for attribute in DENSE_FEATURIZABLE_ATTRIBUTES:
            examples = [m for m in training_data.training_examples
                        if m.get(attribute) and m.get(TOKENS_NAMES[attribute])]
            if examples:
                self._features(examples, attribute)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for attribute in (TEXT, ACTION_TEXT):
            todo = [m for m in messages if m.get(attribute) and m.get(TOKENS_NAMES[attribute])]
            if todo:
                self._features(todo, attribute, share=attribute == TEXT and len(todo) == 1)
        return messages
