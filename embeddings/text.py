"""Question and passage text normalisation, and Chinese tokenisation for BM25.

Citizens type traditional characters, full-width digits, emoji, pasted HTML and stray
whitespace; all of it is folded here so that every downstream step sees one form.
"""

from __future__ import annotations

import html
import re
import unicodedata
from functools import lru_cache

import jieba
from opencc import OpenCC

jieba.setLogLevel(60)  # jieba prints its dictionary-loading chatter at INFO

_t2s = OpenCC("t2s")
_TAGS = re.compile(r"<[^>]{0,200}>")
_NOISE = re.compile(r"[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F\u200b-\u200f]")
_SPACES = re.compile(r"\s+")
# Punctuation-only tokens carry no meaning for BM25.
_PUNCT = re.compile(r"^[\W_]+$")
_STOP = frozenset("的 了 吗 呢 啊 吧 呀 么 要 我 你 请问 请 是 在 和 与 及 或 有 什么 怎么 怎样 如何 哪些 哪里 一下 可以 能 需要 办理 办".split())


# Cached: passages are normalised again each time a hit is scored or highlighted, and OpenCC's
# pure-Python conversion costs about 0.2 ms per passage.
@lru_cache(maxsize=4096)
def normalize(text: str) -> str:
    text = html.unescape(_TAGS.sub(" ", text))
    text = unicodedata.normalize("NFKC", text)  # full-width → half-width
    text = _NOISE.sub("", text)
    text = _t2s.convert(text)
    return _SPACES.sub(" ", text).strip()


def add_terms(terms: list[str]) -> None:
    """Teach jieba the matter names and aliases so they stay one token."""
    for t in terms:
        t = normalize(t)
        if 1 < len(t) <= 12:
            jieba.add_word(t, freq=20000)
    _tokens.cache_clear()


@lru_cache(maxsize=4096)
def _tokens(text: str) -> tuple[str, ...]:
    return tuple(
        t.lower() for t in jieba.lcut_for_search(text) if t.strip() and not _PUNCT.match(t) and t not in _STOP
    )


def tokenize(text: str) -> list[str]:
    return list(_tokens(normalize(text)))
