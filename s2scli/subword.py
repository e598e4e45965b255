"""Subword vocabularies: a sentencepiece model (BPE or unigram) trained on raw text, as a ``Vocab``.

The model is trained so that its ids are ours (``<pad>`` 0, ``<unk>`` 1, ``<s>`` 2, ``</s>`` 3), with 256
byte pieces (``byte_fallback``: a character it has no piece for becomes its UTF-8 bytes, never
``<unk>``), no normalization (``identity``), spaces kept as they are (no extra-whitespace removal, no
dummy prefix), and ``character_coverage`` 0.9995. ``text.SentencePieceTokenizer`` shows the model each
line without its whitespace other than spaces (spelled as byte pieces instead), and so does training
here. With these settings detokenizing the pieces of a line gives back the line exactly.

The vocabulary's tokens are the model's pieces in id order, and the model travels with it as base64
text (``Vocab.tokenizer_model``; the file format is in ``vocab.py``). Training is deterministic: the
same lines and size give the same model.
"""

from __future__ import annotations

import base64
import io
import re
import tempfile
from collections import Counter
from typing import IO, Iterable, Iterator

from .errors import S2SError
from .text import SENTENCEPIECE, SentencePieceTokenizer, split_spelled
from .vocab import SPECIALS, Vocab

KINDS = ("bpe", "unigram")
CHARACTER_COVERAGE = 0.9995
THREADS = 16  # fixed: sentencepiece's result depends on its thread count, never on the machine
BYTE_PIECES = 256


MAX_PIECES = 1_000_000


def train_subword(lines: Iterable[str], kind: str, size: int, lang: str) -> tuple[Vocab, list[int]]:
    """A sentencepiece ``kind`` model of ``size`` pieces in all (specials and byte pieces included,
    sentencepiece's ``vocab_size``) learned from ``lines``, as a vocabulary with the count of each piece
    in those lines."""
    if kind not in KINDS:
        raise S2SError(f"--subword must be one of {', '.join(KINDS)}, got {kind!r}")
    if size < 1:
        raise S2SError("--subword needs --size N, the number of pieces in the vocabulary "
                       f"(at least {len(SPECIALS) + BYTE_PIECES + 1})")
    if size > MAX_PIECES:  # sentencepiece's vocab_size is a 32-bit int; far fewer make sense
        raise S2SError(f"--size {size}: at most {MAX_PIECES} subword pieces")
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n") as spool:
        has_text = False
        for line in lines:
            spool.write(line + "\n")
            has_text = has_text or bool(line.strip())
        if not has_text:
            raise S2SError("no text to learn subword pieces from (no lines, or only blank ones)")
        model = base64.b64encode(train_model(segments(reread(spool)), kind, size)).decode("ascii")
        tok = SentencePieceTokenizer(lang, model)
        counts = Counter(piece for line in reread(spool) for piece in tok.tokenize(line))
    vocab = Vocab(tok.pieces, SENTENCEPIECE, lang, model)
    return vocab, [0 if i < len(SPECIALS) else counts[p] for i, p in enumerate(tok.pieces)]


def reread(spool: IO[str]) -> Iterator[str]:
    """The spooled lines again, from the start."""
    spool.seek(0)
    return (line[:-1] for line in spool)


def segments(lines: Iterable[str]) -> Iterator[str]:
    """The text of each line that the model sees (the tokenizer spells the rest as bytes)."""
    for line in lines:
        for segment, spelled in split_spelled(line):
            if not spelled:
                yield segment


def train_model(sentences: Iterator[str], kind: str, size: int) -> bytes:
    """The serialized sentencepiece model trained on ``sentences``; its errors as one line."""
    import sentencepiece

    out = io.BytesIO()
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=sentences, model_writer=out, model_type=kind, vocab_size=size,
            character_coverage=CHARACTER_COVERAGE, byte_fallback=True,
            normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=False,
            pad_id=0, unk_id=1, bos_id=2, eos_id=3,
            pad_piece=SPECIALS[0], unk_piece=SPECIALS[1], bos_piece=SPECIALS[2], eos_piece=SPECIALS[3],
            num_threads=THREADS, minloglevel=2,
        )
    except RuntimeError as exc:
        needed = re.search(r"required_chars\. \d+ vs (\d+)", str(exc))
        if needed:  # sentencepiece's advice names its own option, which s2s does not have
            raise S2SError(f"--size {size}: too small for this text, whose characters alone need "
                           f"{needed.group(1)} pieces; give a larger --size") from None
        raise S2SError(f"--size {size}: sentencepiece cannot train: {trainer_message(exc)}") from None
    return out.getvalue()


def trainer_message(exc: RuntimeError) -> str:
    """sentencepiece's own sentence from ``INTERNAL: file.cc(123) [condition] Sentence.``"""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.rsplit("] ", 1)[-1]
