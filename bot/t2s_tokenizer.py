"""Jieba tokenisation of the simplified form of a message, of at most HEAD + TAIL characters.

Citizens type traditional characters (不約了, 預約, 護照) as often as simplified ones, but the
sparse features (word and character n-gram counts) only know the simplified forms the training
data mostly uses. This tokenizer converts each message with OpenCC t2s, the same conversion the
app's search applies (embeddings/text.py), and tokenises that. OpenCC's t2s maps character for
character, so token offsets still point into the original text and entities keep the user's own
characters; if a conversion ever changed the length the original text is tokenised instead.

Every later component's work grows with the number of tokens (DIET's attention with its square,
the e5 featurizer's token alignment with tokens × sub-words), so one 15,000-character message
took Rasa about 21 s while everyone else's chat waited. Only the first HEAD and the last TAIL
characters are tokenised: a long message says what it wants at its start or, after the story,
at its end. The app still refuses anything over settings.max_message_chars at its edge, and the
actions read the whole text (retrieval is bounded on its own).
"""

from __future__ import annotations

from typing import List, Text

from opencc import OpenCC
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.training_data.message import Message

_t2s = OpenCC("t2s")
HEAD, TAIL = 100, 400  # characters; every training example is far shorter


def windows(text: str) -> list[tuple[int, str]]:
    """(offset, part) of the text the NLU reads: all of it, or its head and its tail."""
    if len(text) <= HEAD + TAIL:
        return [(0, text)]
    return [(0, text[:HEAD]), (len(text) - TAIL, text[-TAIL:])]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=True)
class SimplifiedJiebaTokenizer(JiebaTokenizer):
    def tokenize(self, message: Message, attribute: Text) -> List[Token]:
        import jieba

        text = message.get(attribute)
        tokens: List[Token] = []
        for offset, part in windows(text):
            simple = _t2s.convert(part)
            if len(simple) != len(part):
                simple = part  # offsets must point into the user's own text
            tokens.extend(Token(word, offset + start) for word, start, _ in jieba.tokenize(simple))
        return self._apply_token_pattern(tokens)
