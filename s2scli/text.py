"""Tokenizers behind one small interface: raw text to tokens and back.

``moses`` is the Moses tokenizer and detokenizer from sacremoses for a given language (no XML escaping,
so ``&`` stays ``&``); ``none`` is for text that is already tokenized: it splits on whitespace and joins
with single spaces. A tokenizer is named by ``(name, lang)``; vocabularies record both so that
``prepare`` and ``translate`` apply exactly the one the vocabulary was built with.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

from .errors import S2SError

TOKENIZERS = ("moses", "none")


class Tokenizer(Protocol):
    name: str
    lang: str

    def tokenize(self, line: str) -> list[str]: ...

    def detokenize(self, tokens: list[str]) -> str: ...


class WhitespaceTokenizer:
    """Tokens are the whitespace-separated fields of the line."""

    name = "none"

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def tokenize(self, line: str) -> list[str]:
        return line.split()

    def detokenize(self, tokens: list[str]) -> str:
        return " ".join(tokens)


class MosesTokenizer:
    """The Moses tokenizer and detokenizer (sacremoses) for one language."""

    name = "moses"

    def __init__(self, lang: str) -> None:
        from sacremoses import MosesDetokenizer
        from sacremoses import MosesTokenizer as _Tok

        self.lang = lang
        self._tok = _Tok(lang=lang)
        self._detok = MosesDetokenizer(lang=lang)

    def tokenize(self, line: str) -> list[str]:
        # sacremoses splits on whitespace at the end, so no token ever holds a space, tab or newline.
        return self._tok.tokenize(line, escape=False)

    def detokenize(self, tokens: list[str]) -> str:
        return self._detok.detokenize(tokens)


@lru_cache(maxsize=None)
def get_tokenizer(name: str, lang: str) -> Tokenizer:
    """The tokenizer called ``name`` for language ``lang`` (cached: Moses loads its tables once)."""
    if name == "moses":
        return MosesTokenizer(lang)
    if name == "none":
        return WhitespaceTokenizer(lang)
    raise S2SError(f"unknown tokenizer {name!r} (choose one of: {', '.join(TOKENIZERS)})")


def guess_lang(filename: str) -> str | None:
    """The two-letter language code a corpus file name ends with (``train.en`` -> ``en``,
    ``x.fr.gz`` -> ``fr``); None for other names (``corpus.txt``)."""
    parts = filename.split("/")[-1].split(".")
    if parts and parts[-1] == "gz":
        parts = parts[:-1]
    if len(parts) >= 2 and len(parts[-1]) == 2 and parts[-1].isalpha():
        return parts[-1].lower()
    return None
