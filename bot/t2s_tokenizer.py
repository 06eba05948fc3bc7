"""Jieba tokenisation of the simplified form of a message.

Citizens type traditional characters (不約了, 預約, 護照) as often as simplified ones, but the
sparse features (word and character n-gram counts) only know the simplified forms the training
data mostly uses. This tokenizer converts each message with OpenCC t2s, the same conversion the
app's search applies (embeddings/text.py), and tokenises that. OpenCC's t2s maps character for
character, so token offsets still point into the original text and entities keep the user's own
characters; if a conversion ever changed the length the original text is tokenised instead.
"""

from __future__ import annotations

from typing import List, Text

from opencc import OpenCC
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.training_data.message import Message

_t2s = OpenCC("t2s")


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=True)
class SimplifiedJiebaTokenizer(JiebaTokenizer):
    def tokenize(self, message: Message, attribute: Text) -> List[Token]:
        import jieba

        text = message.get(attribute)
        simple = _t2s.convert(text)
        if len(simple) != len(text):
            return super().tokenize(message, attribute)
        return self._apply_token_pattern([Token(word, start) for word, start, _ in jieba.tokenize(simple)])
