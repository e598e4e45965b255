"""From raw source lines to padded ids: the one path that translate, score and encode share.

- **tokenize and encode**: ``Vocab.encode_line`` (the vocabulary's own tokenizer, then token -> id), also
  what ``prepare`` uses for both sides;
- **cut**: a source of more than ``MAX_SOURCE_TOKENS`` ids is cut to that many, counted in
  ``SourceStats.truncated`` and said through ``warn`` with its line number (``cut_source``);
- **chunk**: lines (or any items) are taken ``size`` at a time, fewer when a pipe pauses
  (``pacing.batches``); ``read_sources`` yields each chunk of source lines tokenized, encoded and cut;
- **skip empty**: a sentence without tokens never reaches a model (``on_nonempty``);
- **pad**: id lists become one ``<pad>``-filled tensor [B, S] (``pad_ids``), with lengths [B] for
  sources (``ids_to_tensor``); training batches (``data.PreparedData.batch``) are padded the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np
import torch

from .pacing import Ready, batches
from .vocab import PAD, Vocab

# Sources longer than this many tokens are cut (and a warning is given): a runaway line must not
# exhaust memory, and such a sentence is far outside anything the model was trained on.
MAX_SOURCE_TOKENS = 1000

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class SourceStats:
    """What a run over many source lines counts: lines read, empty lines, and sources cut to
    MAX_SOURCE_TOKENS."""

    lines: int = 0
    empty: int = 0
    truncated: int = 0


@dataclass
class SourceChunk:
    """One chunk of source lines, read: ``first`` lines came before it; for each line its tokens and its
    ids (cut to MAX_SOURCE_TOKENS; the tokens are not cut)."""

    first: int
    tokens: list[list[str]]
    ids: list[list[int]]


def cut_source(ids: list[int], line_number: int, stats: SourceStats, warn: Callable[[str], None] | None,
               done: str) -> list[int]:
    """``ids`` cut to MAX_SOURCE_TOKENS; a cut is counted in ``stats.truncated`` and reported through
    ``warn`` ("line N: M tokens, only the first 1000 are ``done``")."""
    if len(ids) <= MAX_SOURCE_TOKENS:
        return ids
    stats.truncated += 1
    if warn:
        warn(f"line {line_number}: {len(ids)} tokens, only the first {MAX_SOURCE_TOKENS} are {done}")
    return ids[:MAX_SOURCE_TOKENS]


def source_ids(line: str, vocab: Vocab, line_number: int, stats: SourceStats,
               warn: Callable[[str], None] | None, done: str) -> list[int]:
    """A raw source line as ids (``Vocab.encode_line``), cut to MAX_SOURCE_TOKENS (``cut_source``)."""
    return cut_source(vocab.encode_line(line), line_number, stats, warn, done)


def read_sources(lines: Iterable[str], vocab: Vocab, size: int, stats: SourceStats,
                 warn: Callable[[str], None] | None, done: str, ready: Ready | None = None) -> Iterator[SourceChunk]:
    """Chunks of up to ``size`` source lines (fewer when the input pauses, see ``pacing``), tokenized with
    the vocabulary's tokenizer, encoded and cut; ``stats`` counts the lines and the empty ones."""
    tok = vocab.text_tokenizer()  # a vocabulary that cannot tokenize fails before any line is read
    for chunk in batches(lines, size, ready):
        tokens = [tok.tokenize(line) for line in chunk]
        ids = [cut_source(vocab.encode(t), stats.lines + k + 1, stats, warn, done) for k, t in enumerate(tokens)]
        first = stats.lines
        stats.lines += len(chunk)
        stats.empty += sum(not i for i in ids)
        yield SourceChunk(first, tokens, ids)


def on_nonempty(items: Sequence[T], run: Callable[[list[T]], Sequence[R]], empty: R,
                source: Callable[[T], Sequence[int]] | None = None) -> list[R]:
    """``run`` on the items whose source (the item itself, or ``source(item)``) has ids, in order, one
    result each; the others get ``empty`` without reaching a model."""
    todo = [i for i, item in enumerate(items) if (source(item) if source else item)]
    results = [empty] * len(items)
    if todo:
        for i, value in zip(todo, run([items[i] for i in todo])):
            results[i] = value
    return results


def pad_ids(rows: Sequence[Sequence[int]], prefix: int | None = None, suffix: int | None = None) -> torch.Tensor:
    """Id lists (or int arrays), each with ``prefix`` before and ``suffix`` after it when given, as one
    tensor [B, S] (int64, on the CPU) padded with ``<pad>`` at the end."""
    start = int(prefix is not None)
    width = max(len(r) for r in rows) + start + int(suffix is not None)
    out = np.full((len(rows), width), PAD, dtype=np.int64)  # [B, S]
    for i, r in enumerate(rows):
        out[i, start : start + len(r)] = r
        if suffix is not None:
            out[i, start + len(r)] = suffix
    if prefix is not None:
        out[:, 0] = prefix
    return torch.from_numpy(out)


def ids_to_tensor(rows: Sequence[Sequence[int]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad id lists into [B, S] with lengths [B], both on ``device``."""
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.long, device=device)
    return pad_ids(rows).to(device), lengths
