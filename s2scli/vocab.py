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
Tokens never contain whitespace (tokenizers split on it), so the format needs no quoting.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any, Iterable, Iterator, TextIO

from .errors import S2SError

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
HEADER = "#s2s-vocab"
VERSION = 1


class Vocab:
    """An ordered token list with the tokenizer settings it was built with. Ids index ``tokens``."""

    def __init__(self, tokens: Iterable[str], tokenizer: str, lang: str) -> None:
        self.tokens: tuple[str, ...] = tuple(tokens)
        self.tokenizer = tokenizer
        self.lang = lang
        if self.tokens[: len(SPECIALS)] != SPECIALS:
            raise S2SError(f"vocabulary must start with the special tokens {' '.join(SPECIALS)}")
        # Literal "<s>" etc. in text are ordinary unknown words, never control tokens.
        self._index = {tok: i for i, tok in enumerate(self.tokens) if i >= len(SPECIALS)}

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.to_dict() == other.to_dict()

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
        """A plain dict for model files and prepared-file headers."""
        return {"tokens": list(self.tokens), "tokenizer": self.tokenizer, "lang": self.lang}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Vocab":
        return cls(data["tokens"], data["tokenizer"], data["lang"])

    def fingerprint(self) -> str:
        """A short hash of tokens and tokenizer settings: equal fingerprints, interchangeable ids."""
        h = hashlib.sha256(f"{self.tokenizer}\t{self.lang}\n".encode())
        for tok in self.tokens:
            h.update(tok.encode() + b"\n")
        return h.hexdigest()[:16]


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
    out.write(f"{HEADER}\tversion={VERSION}\ttokenizer={vocab.tokenizer}\tlang={vocab.lang}\n")
    for tok, count in zip(vocab.tokens, counts):
        out.write(f"{tok}\t{count}\n")
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
                       f"(this s2s reads version {VERSION})")
    if "tokenizer" not in settings or "lang" not in settings:
        raise S2SError(f"{name}:1: header lacks tokenizer= or lang=")
    tokens: list[str] = []
    seen: set[str] = set()
    for lineno, line in enumerate(lines, start=2):
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
    return Vocab(tokens, settings["tokenizer"], settings["lang"])
