"""Vocabularies: counting tokens, choosing the kept words, the vocabulary file, token <-> id.

The vocabulary file is plain UTF-8 text (see ``man/s2s-vocab.1``)::

    #s2s-vocab<TAB>version=1<TAB>tokenizer=moses<TAB>lang=en
    <pad><TAB>0
    <unk><TAB>0
    <s><TAB>0
    </s><TAB>0
    the<TAB>51234
    ...

Line ``n`` after the header is the token with id ``n - 1``. The four special tokens come first, in that
order; then words, most frequent first, ties in code-point order, with the count seen in the corpus.
Tokens never contain whitespace (tokenizers split on it or spell it, see ``text.py``), so the format
needs no quoting.

A subword vocabulary (``tokenizer=sentencepiece``, made by ``subword.py``) is one self-contained file
that also carries its sentencepiece model; its header says ``version=2`` (older readers refuse it)::

    #s2s-vocab<TAB>version=2<TAB>tokenizer=sentencepiece<TAB>lang=fr
    <pad><TAB>0                      the specials: sentencepiece's pad, unk, bos and eos ids 0-3
    ...
    <0x00><TAB>0                     256 byte pieces, then the learned pieces, all in the model's
    ...                              id order, each with its count in the training corpus
    ▁de<TAB>40921
    ...
    #sentencepiece-model             this line alone, then the serialized sentencepiece ModelProto
    Cg4KBTxwYWQ+FQAAAAAYAwoO...      in base64, 76 characters a line, to the end of the file

Token ``i`` must be piece ``i`` of the model. In memory and inside prepared files and model files
(``Vocab.to_dict``) the model travels as one base64 string, plain data that ``torch.load(weights_only=
True)`` and JSON accept. Files without a model are still written as ``version=1``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections import Counter
from typing import Any, Iterable, Iterator, TextIO

from .errors import S2SError
from .text import SENTENCEPIECE, VOCAB_TOKENIZERS, SentencePieceTokenizer, Tokenizer, get_tokenizer

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
HEADER = "#s2s-vocab"
VERSION = 2  # the newest format this s2s reads; files without a model are written as version 1
MODEL_MARKER = "#sentencepiece-model"
BASE64_WIDTH = 76
BASE64_LINE = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def check_lang(lang: object, option: str = "") -> None:
    """A language code is one word: no whitespace or control characters (the vocabulary header is
    tab-separated and line-based) and no '=' (it is written as lang=CODE)."""
    if not isinstance(lang, str) or not lang or any(ch.isspace() or not ch.isprintable() or ch == "="
                                                       for ch in lang):
        raise S2SError(f"{option + ': ' if option else ''}a language code must be one word without spaces, "
                       f"tabs, line breaks or '=', got {lang!r}")


class Vocab:
    """An ordered token list with the tokenizer settings it was built with. Ids index ``tokens``.

    ``tokenizer`` is the tokenizer's name (``text.py``) and ``tokenizer_model`` its own model as base64
    text (a sentencepiece model), or None. The vocabulary owns its tokenizer: ``text_tokenizer()``, and
    ``encode_line``, raw text to ids, the only way text becomes ids.
    """

    def __init__(self, tokens: Iterable[str], tokenizer: str, lang: str, tokenizer_model: str | None = None) -> None:
        self.tokens: tuple[str, ...] = tuple(tokens)
        self.tokenizer = tokenizer
        self.lang = lang
        self.tokenizer_model = tokenizer_model
        if tokenizer_model is not None and not isinstance(tokenizer_model, str):
            raise S2SError("a vocabulary's tokenizer model must be base64 text")
        if not all(isinstance(tok, str) for tok in self.tokens):
            raise S2SError("a vocabulary's tokens must be text")
        if not isinstance(tokenizer, str):
            raise S2SError("a vocabulary's tokenizer must be a name")
        check_lang(lang)
        if self.tokens[: len(SPECIALS)] != SPECIALS:
            raise S2SError(f"vocabulary must start with the special tokens {' '.join(SPECIALS)}")
        # Literal "<s>" etc. in text are ordinary unknown words, never control tokens.
        self._index = {tok: i for i, tok in enumerate(self.tokens) if i >= len(SPECIALS)}
        self._tokenizer: Tokenizer | None = None  # built on first use: a vocabulary file is read without it

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.to_dict() == other.to_dict()

    def text_tokenizer(self) -> Tokenizer:
        """The tokenizer this vocabulary was built with (``text.get_tokenizer``); a sentencepiece model
        must list the vocabulary's tokens."""
        if self._tokenizer is None:
            tok = get_tokenizer(self.tokenizer, self.lang, self.tokenizer_model)
            if isinstance(tok, SentencePieceTokenizer) and tok.pieces != self.tokens:
                raise S2SError("the vocabulary's tokens are not the pieces of its sentencepiece model")
            self._tokenizer = tok
        return self._tokenizer

    def encode_line(self, line: str) -> list[int]:
        """A line of raw text as ids: the vocabulary's tokenizer, then ``encode``."""
        return self.encode(self.text_tokenizer().tokenize(line))

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Token ids, unknown words as ``<unk>``; no ``<s>`` or ``</s>`` is added."""
        get = self._index.get
        return [get(tok, UNK) for tok in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens for ids, stopping at ``</s>`` and skipping ``<pad>`` and ``<s>``."""
        out = []
        for i in ids:
            if i == EOS:
                break
            if i not in (PAD, BOS):
                out.append(self.tokens[i])
        return out

    def to_dict(self) -> dict[str, Any]:
        """A plain dict for model files and prepared-file headers (strings and lists only)."""
        data: dict[str, Any] = {"tokens": list(self.tokens), "tokenizer": self.tokenizer, "lang": self.lang}
        if self.tokenizer_model is not None:
            data["tokenizer_model"] = self.tokenizer_model
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Vocab":
        return cls(data["tokens"], data["tokenizer"], data["lang"], data.get("tokenizer_model"))

    def fingerprint(self) -> str:
        """A short hash of tokens and tokenizer settings: equal fingerprints, interchangeable ids."""
        h = hashlib.sha256(f"{self.tokenizer}\t{self.lang}\n".encode())
        for tok in self.tokens:
            h.update(tok.encode() + b"\n")
        if self.tokenizer_model is not None:
            h.update(b"model\t" + self.tokenizer_model.encode() + b"\n")
        return h.hexdigest()[:16]


def different_sides(a: tuple[Vocab, Vocab], b: tuple[Vocab, Vocab]) -> tuple[str, ...]:
    """Which of ``("source", "target")`` differ between two (source, target) vocabulary pairs: empty when
    ids mean the same on both sides (same tokens, tokenizer, language and tokenizer model)."""
    return tuple(side for side, x, y in zip(("source", "target"), a, b) if x != y)


def count_tokens(token_lines: Iterable[list[str]]) -> Counter[str]:
    """How often each token occurs."""
    counts: Counter[str] = Counter()
    for tokens in token_lines:
        counts.update(tokens)
    return counts


def build_vocab(
    counts: Counter[str], tokenizer: str, lang: str, size: int = 0, min_count: int = 1
) -> tuple[Vocab, list[int]]:
    """The specials then the ``size`` most frequent words seen at least ``min_count`` times.

    Returns the vocabulary and the count of each of its tokens (0 for specials). Ties are broken by
    code-point order so the result never depends on input order.
    """
    if size < 0:
        raise S2SError(f"--size must be 0 (all) or positive, got {size}")
    if min_count < 1:
        raise S2SError(f"--min-count must be at least 1, got {min_count}")
    words = [(w, c) for w, c in counts.items() if c >= min_count and w not in SPECIALS]
    words.sort(key=lambda wc: (-wc[1], wc[0]))
    if size:
        words = words[:size]
    vocab = Vocab(list(SPECIALS) + [w for w, _ in words], tokenizer, lang)
    return vocab, [0] * len(SPECIALS) + [c for _, c in words]


def write_vocab(vocab: Vocab, counts: list[int], out: TextIO) -> None:
    """Write the vocabulary file format described in this module's docstring."""
    version = 1 if vocab.tokenizer_model is None else 2
    out.write(f"{HEADER}\tversion={version}\ttokenizer={vocab.tokenizer}\tlang={vocab.lang}\n")
    for tok, count in zip(vocab.tokens, counts):
        out.write(f"{tok}\t{count}\n")
    if vocab.tokenizer_model is not None:
        out.write(MODEL_MARKER + "\n")
        model = vocab.tokenizer_model
        for start in range(0, len(model), BASE64_WIDTH):
            out.write(model[start:start + BASE64_WIDTH] + "\n")
    out.flush()


def read_vocab(lines: Iterator[str], name: str) -> Vocab:
    """Parse a vocabulary file given as lines (see ``lines.read_lines``); errors name ``name:line``."""
    header = next(lines, None)
    if header is None:
        raise S2SError(f"{name}: empty file, not an s2s vocabulary (make one with 's2s vocab')")
    fields = header.split("\t")
    if fields[0] != HEADER:
        raise S2SError(f"{name}:1: not an s2s vocabulary (no '{HEADER}' header; make one with 's2s vocab')")
    settings = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
    try:
        version = int(settings.get("version", "0"))
    except ValueError:
        version = 0
    if version < 1 or version > VERSION:
        raise S2SError(f"{name}:1: vocabulary format version {settings.get('version')!r} is not supported "
                       f"(this s2s reads versions 1 to {VERSION})")
    if "tokenizer" not in settings or "lang" not in settings:
        raise S2SError(f"{name}:1: header lacks tokenizer= or lang=")
    if settings["tokenizer"] not in VOCAB_TOKENIZERS:
        raise S2SError(f"{name}:1: unknown tokenizer {settings['tokenizer']!r} (this s2s knows "
                       f"{', '.join(VOCAB_TOKENIZERS)})")
    tokens: list[str] = []
    seen: set[str] = set()
    marker_line = 0
    for lineno, line in enumerate(lines, start=2):
        if line == MODEL_MARKER:
            marker_line = lineno
            break
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0] or not parts[1].isdigit() or any(ch.isspace() for ch in parts[0]):
            raise S2SError(f"{name}:{lineno}: expected 'token<TAB>count', got {line[:60]!r}")
        if parts[0] in seen:
            raise S2SError(f"{name}:{lineno}: token {parts[0]!r} appears twice")
        seen.add(parts[0])
        tokens.append(parts[0])
    for i, special in enumerate(SPECIALS):
        if i >= len(tokens) or tokens[i] != special:
            raise S2SError(f"{name}:{i + 2}: expected the special token {special} "
                           f"(the first entries must be {' '.join(SPECIALS)})")
    model = read_model_section(lines, name, marker_line) if marker_line else None
    if model is None and settings["tokenizer"] == SENTENCEPIECE:
        raise S2SError(f"{name}: no '{MODEL_MARKER}' section at the end; a sentencepiece vocabulary "
                       "carries its model (is the file cut short?)")
    if model is not None and settings["tokenizer"] != SENTENCEPIECE:
        raise S2SError(f"{name}:{marker_line}: a '{MODEL_MARKER}' section in a vocabulary of tokenizer "
                       f"{settings['tokenizer']!r}")
    vocab = Vocab(tokens, settings["tokenizer"], settings["lang"], model)
    if model is not None:
        check_pieces(vocab, name, marker_line)
    return vocab


def read_model_section(lines: Iterator[str], name: str, marker_line: int) -> str:
    """The base64 lines after the model marker, joined and checked, in canonical form."""
    parts = []
    for lineno, line in enumerate(lines, start=marker_line + 1):
        if not BASE64_LINE.fullmatch(line):
            raise S2SError(f"{name}:{lineno}: expected a line of base64 (the sentencepiece model), "
                           f"got {line[:60]!r}")
        parts.append(line)
    try:
        proto = base64.b64decode("".join(parts), validate=True)
    except binascii.Error:
        raise S2SError(f"{name}:{marker_line + 1}: the sentencepiece model is not valid base64 "
                       "(is the file cut short?)") from None
    if not proto:
        raise S2SError(f"{name}:{marker_line}: the sentencepiece model section is empty")
    return base64.b64encode(proto).decode("ascii")


def check_pieces(vocab: Vocab, name: str, marker_line: int) -> None:
    """The listed tokens must be the pieces of the embedded model, in order."""
    try:
        tok = SentencePieceTokenizer(vocab.lang, vocab.tokenizer_model or "")
    except S2SError as exc:
        raise S2SError(f"{name}:{marker_line + 1}: {exc}") from None
    for i, (token, piece) in enumerate(zip(vocab.tokens, tok.pieces)):
        if token != piece:
            raise S2SError(f"{name}:{i + 2}: token {token!r} is not piece {i} of the embedded sentencepiece "
                           f"model ({piece!r})")
    if len(vocab.tokens) != len(tok.pieces):
        raise S2SError(f"{name}: {len(vocab.tokens)} tokens listed but the embedded sentencepiece model has "
                       f"{len(tok.pieces)} pieces")
