"""Tokenizers behind one small interface: raw text to tokens and back.

``moses`` is the Moses tokenizer and detokenizer from sacremoses for a given language (no XML escaping,
so ``&`` stays ``&``); ``none`` is for text that is already tokenized: it splits on whitespace and joins
with single spaces. ``char`` makes every character (code point) a token; ``sentencepiece`` cuts text
into the subword pieces of a sentencepiece model that the vocabulary carries (``s2s vocab --subword``,
see ``subword.py``). ``char`` and ``sentencepiece`` give back exactly the text they were given.

Vocabulary tokens never contain whitespace (see ``vocab.py``), so both exact tokenizers spell the
characters that are whitespace in Python (``str.isspace``) and the marker U+2581 itself visibly: a
space is U+2581 ``▁``; any other whitespace character (tab, no-break space, ...) and a literal ``▁``
are ``<U+XXXX>`` for ``char`` and their UTF-8 bytes as sentencepiece byte pieces (``<0x09>``) for
``sentencepiece``.

A tokenizer is named by ``(name, lang)`` plus, for ``sentencepiece``, the model; vocabularies record all
of it so that ``prepare`` and ``translate`` apply exactly the one the vocabulary was built with
(``Vocab.text_tokenizer`` in ``vocab.py``, which imports this module; this module knows nothing of
vocabularies). ``MAKERS`` is the one list of tokenizers.
"""

from __future__ import annotations

import base64
import binascii
import re
from functools import lru_cache
from typing import Any, Callable, Iterator, Protocol

from .errors import S2SError

SENTENCEPIECE = "sentencepiece"  # recorded by 's2s vocab --subword'; needs the vocabulary's model

SPACE_MARK = "\u2581"  # '▁', the visible space of sentencepiece and of the char tokenizer
CHAR_ESCAPE = re.compile(r"<U\+([0-9A-F]{4,6})>")
BYTE_PIECE = re.compile(r"<0x([0-9A-F]{2})>")


class Tokenizer(Protocol):
    name: str
    lang: str

    def tokenize(self, line: str) -> list[str]: ...

    def detokenize(self, tokens: list[str]) -> str: ...


def is_spelled(ch: str) -> bool:
    """Whether ``ch`` cannot be a token as it is: whitespace, or the space marker itself."""
    return ch.isspace() or ch == SPACE_MARK


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


class CharTokenizer:
    """Every character a token: a space is ``▁``, other whitespace and ``▁`` itself are ``<U+XXXX>``.

    ``detokenize(tokenize(line)) == line`` for every line. A token that is neither one character nor an
    escape (``<unk>`` from a model) is written as it is.
    """

    name = "char"

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def tokenize(self, line: str) -> list[str]:
        return [char_token(ch) for ch in line]

    def detokenize(self, tokens: list[str]) -> str:
        return "".join(char_text(tok) for tok in tokens)


def char_token(ch: str) -> str:
    if ch == " ":
        return SPACE_MARK
    if is_spelled(ch):
        return f"<U+{ord(ch):04X}>"
    return ch


def char_text(token: str) -> str:
    if token == SPACE_MARK:
        return " "
    escaped = CHAR_ESCAPE.fullmatch(token)
    if escaped and int(escaped.group(1), 16) <= 0x10FFFF and char_token(chr(int(escaped.group(1), 16))) == token:
        return chr(int(escaped.group(1), 16))
    return token


class SentencePieceTokenizer:
    """The pieces of a sentencepiece model (trained by ``subword.py``; ``model`` is its base64 text).

    The model sees the line without its whitespace other than spaces and without literal ``▁``: those
    characters become byte pieces here (the model has ``byte_fallback``), and ``detokenize`` decodes byte
    pieces itself, so ``detokenize(tokenize(line)) == line`` for every line.
    """

    name = SENTENCEPIECE

    def __init__(self, lang: str, model: str) -> None:
        self.lang = lang
        self._sp = load_sentencepiece(model)
        try:
            self.pieces: tuple[str, ...] = tuple(self._sp.id_to_piece(i) for i in range(self._sp.get_piece_size()))
        except (UnicodeDecodeError, RuntimeError, ValueError, SystemError):
            raise S2SError("damaged sentencepiece model (a piece is not valid UTF-8 text)") from None
        if "<0x00>" not in self.pieces:
            raise S2SError("the sentencepiece model has no byte pieces (it was not made by 's2s vocab --subword')")

    def tokenize(self, line: str) -> list[str]:
        tokens: list[str] = []
        for segment, spelled in split_spelled(line):
            if spelled:
                tokens.extend(f"<0x{b:02X}>" for b in segment.encode("utf-8"))
            else:
                tokens.extend(self._sp.encode(segment, out_type=str))
        return tokens

    def detokenize(self, tokens: list[str]) -> str:
        out: list[str] = []
        pending = bytearray()  # byte pieces in a row make one UTF-8 sequence
        for tok in tokens:
            byte = BYTE_PIECE.fullmatch(tok)
            if byte:
                pending.append(int(byte.group(1), 16))
                continue
            if pending:
                out.append(pending.decode("utf-8", errors="replace"))
                pending.clear()
            out.append(tok.replace(SPACE_MARK, " "))
        if pending:
            out.append(pending.decode("utf-8", errors="replace"))
        return "".join(out)


def split_spelled(line: str) -> Iterator[tuple[str, bool]]:
    """``line`` as (segment, spelled) pairs: each whitespace character other than a space and each ``▁``
    alone, spelled True; the text between them, spelled False, is what a sentencepiece model sees."""
    start = 0
    for i, ch in enumerate(line):
        if ch != " " and is_spelled(ch):
            if i > start:
                yield line[start:i], False
            yield ch, True
            start = i + 1
    if start < len(line):
        yield line[start:], False


def load_sentencepiece(model: str) -> Any:
    """A sentencepiece processor for a model in base64 text, or a one-line error if it is damaged."""
    import sentencepiece

    try:
        proto = base64.b64decode(model.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, AttributeError):
        raise S2SError("damaged sentencepiece model (not base64 text)") from None
    sp = sentencepiece.SentencePieceProcessor()
    try:
        sp.LoadFromSerializedProto(proto)
    except (RuntimeError, OSError):
        raise S2SError("damaged sentencepiece model (it does not parse)") from None
    return sp


# The one list of tokenizers: those 's2s vocab --tokenizer' offers, by name (a new tokenizer is a class above
# and a line here). 'sentencepiece' is made by 's2s vocab --subword' and needs the vocabulary's model.
MAKERS: dict[str, Callable[[str], Tokenizer]] = {
    "moses": MosesTokenizer,
    "none": WhitespaceTokenizer,
    "char": CharTokenizer,
}
TOKENIZERS = tuple(MAKERS)  # what 's2s vocab --tokenizer' offers
VOCAB_TOKENIZERS = (*TOKENIZERS, SENTENCEPIECE)  # what a vocabulary's header may name


def get_tokenizer(name: str, lang: str, model: str | None = None) -> Tokenizer:
    """The tokenizer called ``name`` for language ``lang`` (cached: Moses loads its tables once).

    ``model`` is the base64 sentencepiece model that ``sentencepiece`` needs and the others refuse.
    """
    return cached_tokenizer(name, lang, model)


@lru_cache(maxsize=None)
def cached_tokenizer(name: str, lang: str, model: str | None) -> Tokenizer:
    if name == SENTENCEPIECE:
        if model is None:
            raise S2SError("tokenizer 'sentencepiece' needs its model, which a vocabulary made with "
                           "'s2s vocab --subword' carries")
        return SentencePieceTokenizer(lang, model)
    if name not in TOKENIZERS:
        raise S2SError(f"unknown tokenizer {name!r} (choose one of: {', '.join(TOKENIZERS)})")
    if model is not None:
        raise S2SError(f"tokenizer {name!r} takes no model; only 'sentencepiece' vocabularies carry one")
    return MAKERS[name](lang)


def guess_lang(filename: str) -> str | None:
    """The two-letter language code a corpus file name ends with (``train.en`` -> ``en``,
    ``x.fr.gz`` -> ``fr``); None for other names (``corpus.txt``)."""
    parts = filename.split("/")[-1].split(".")
    if parts and parts[-1] == "gz":
        parts = parts[:-1]
    if len(parts) >= 2 and len(parts[-1]) == 2 and parts[-1].isalpha():
        return parts[-1].lower()
    return None
