"""Sentence vectors: the encoder's final state for each source line, and their 2-D PCA (the paper's Figure 2).

The vector of a sentence is exactly what the decoder starts from [3.8]: the encoder LSTM's final hidden
state ``h`` (and/or cell state ``c``) after reading the tokenized source (reversed, when the model reads
it reversed). ``layer="top"`` keeps the top layer's (the paper's figure); ``"all"`` concatenates the
layers from the bottom up. With ``state="hc"`` the vector is the chosen layers' ``h`` followed by their
``c``. An attention model's vectors are its final state too, not its attention memory.

A line without tokens gives the zero vector: the state before the encoder has read anything.

Vector files are plain text, one vector a line, its numbers separated by single spaces (``%.6g``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence, TextIO

import torch

from .batching import SourceStats, ids_to_tensor, read_sources
from .errors import S2SError
from .model import Seq2Seq
from .pacing import Ready
from .vocab import Vocab

STATES = ("h", "c", "hc")
LAYERS = ("top", "all")


@dataclass
class EncodeStats(SourceStats):
    """SourceStats (lines, empty lines, sources cut), and the size of the vectors written."""

    dim: int = 0


def check_choices(state: str, layer: str, batch_size: int) -> None:
    if state not in STATES:
        raise S2SError(f"--state must be one of {', '.join(STATES)}, got {state!r}")
    if layer not in LAYERS:
        raise S2SError(f"--layer must be one of {', '.join(LAYERS)}, got {layer!r}")
    if batch_size < 1:
        raise S2SError(f"--batch-size must be at least 1, got {batch_size}")


def vector_size(model: Seq2Seq, state: str = "h", layer: str = "top") -> int:
    """How many numbers each sentence vector has."""
    return model.config.hidden * len(state) * (model.config.layers if layer == "all" else 1)


def state_vectors(h: torch.Tensor, c: torch.Tensor, state: str = "h", layer: str = "top") -> torch.Tensor:
    """The encoder's final (h, c), each [layers, B, hidden], as sentence vectors [B, size].

    ``layer="top"``: the last layer only; ``"all"``: the layers bottom to top, side by side. ``state``
    ``"h"``, ``"c"``, or ``"hc"`` (the chosen layers' h, then their c).
    """
    parts = []
    for part in state:
        t = h if part == "h" else c
        if layer == "top":
            t = t[-1:]
        parts.extend(t.unbind(0))  # each [B, hidden], bottom layer first
    return torch.cat(parts, dim=1)


@torch.no_grad()
def encode_ids(model: Seq2Seq, sources: Sequence[Sequence[int]], state: str = "h", layer: str = "top",
               device: torch.device | str = "cpu") -> torch.Tensor:
    """Sentence vectors [B, size] (float32, on the CPU) for id lists; an empty list gives zeros."""
    out = torch.zeros((len(sources), vector_size(model, state, layer)), dtype=torch.float32)
    todo = [i for i, ids in enumerate(sources) if ids]
    if todo:
        src, lengths = ids_to_tensor([list(sources[i]) for i in todo], torch.device(device))
        h, c, _ = model.encode_source(src, lengths, outputs=False)
        out[todo] = state_vectors(h, c, state, layer).float().cpu()
    return out


def encode_batches(
    lines: Iterable[str], model: Seq2Seq, src_vocab: Vocab, state: str = "h", layer: str = "top",
    batch_size: int = 64, device: torch.device | str = "cpu", stats: EncodeStats | None = None,
    warn: Callable[[str], None] | None = None, ready: Ready | None = None,
) -> Iterator[torch.Tensor]:
    """Sentence vectors for lines of raw text, in order: one tensor [n, size] per ``batch_size`` lines.

    Lines are read as ``translate`` reads them (``batching.read_sources``): tokenized with the source
    vocabulary's tokenizer, and a line of more than ``MAX_SOURCE_TOKENS`` tokens cut to that many (and
    ``warn`` is told its line number).
    ``ready`` (from ``pacing.paced``): when the input pauses, the lines read so far make a batch.
    """
    check_choices(state, layer, batch_size)
    stats = stats if stats is not None else EncodeStats()
    stats.dim = vector_size(model, state, layer)
    model.eval()
    for chunk in read_sources(lines, src_vocab, batch_size, stats, warn, "encoded", ready):
        yield encode_ids(model, chunk.ids, state, layer, device)


def encode_lines(lines: Iterable[str], model: Seq2Seq, src_vocab: Vocab, state: str = "h", layer: str = "top",
                 batch_size: int = 64, device: torch.device | str = "cpu") -> Iterator[list[float]]:
    """One sentence vector (a list of floats) for each line of raw text, in order."""
    for batch in encode_batches(lines, model, src_vocab, state, layer, batch_size, device):
        yield from batch.tolist()


def write_vectors(
    lines: Iterable[str], model: Seq2Seq, src_vocab: Vocab, out: TextIO, state: str = "h", layer: str = "top",
    batch_size: int = 64, device: torch.device | str = "cpu", stats: EncodeStats | None = None,
    warn: Callable[[str], None] | None = None, ready: Ready | None = None,
) -> EncodeStats:
    """Write one vector line (:func:`format_vector`) for each line of ``lines``, flushing each batch."""
    stats = stats if stats is not None else EncodeStats()
    for batch in encode_batches(lines, model, src_vocab, state, layer, batch_size, device, stats, warn, ready):
        for row in batch.tolist():
            out.write(format_vector(row) + "\n")
        out.flush()
    return stats


def format_vector(values: Iterable[float]) -> str:
    """A vector as one line of text: its numbers as ``%.6g``, separated by single spaces."""
    return " ".join(f"{v:.6g}" for v in values)


MAX_COORDINATE = 1e100


def read_vectors(lines: Iterable[str], name: str) -> list[list[float]]:
    """Parse a vector file (one vector a line, numbers separated by white space); every vector must be
    finite and as long as the first. Errors name ``name`` and the line."""
    vectors: list[list[float]] = []
    for lineno, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            raise S2SError(f"{name}:{lineno}: empty line; expected a vector (numbers separated by spaces)")
        try:
            vector = [float(f) for f in fields]
        except ValueError:
            bad = next(f for f in fields if not is_number(f))
            raise S2SError(f"{name}:{lineno}: cannot read {bad[:40]!r} as a number") from None
        if not all(math.isfinite(v) for v in vector):
            raise S2SError(f"{name}:{lineno}: not a finite number (nan or inf)")
        if not all(abs(v) <= MAX_COORDINATE for v in vector):  # their squares and sums must stay finite
            raise S2SError(f"{name}:{lineno}: a number beyond +-{MAX_COORDINATE:g}, too large to project")
        if vectors and len(vector) != len(vectors[0]):
            raise S2SError(f"{name}:{lineno}: {len(vector)} number{'s' if len(vector) != 1 else ''}, but line 1 "
                           f"has {len(vectors[0])}; every vector must have the same size")
        vectors.append(vector)
    return vectors


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass
class Projection:
    """Rows projected on the first two principal components."""

    coords: list[tuple[float, float]]  # one (x, y) per input vector
    explained: tuple[float, float]  # the share of the total variance along each axis (0 when none)


def pca_2d(vectors: Sequence[Sequence[float]]) -> Projection:
    """Centre the vectors and project them on their two main principal directions (SVD).

    Signs are fixed so the same data always gives the same picture: along each component, the vector
    entry with the largest absolute loading is positive. Vectors of one dimension (or all equal) give
    zeros on the missing axes.
    """
    import numpy as np

    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise S2SError(f"PCA needs at least 2 vectors, got {x.shape[0] if x.ndim else 0}")
    x = x - x.mean(axis=0, keepdims=True)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    k = min(2, s.size)
    for i in range(k):
        if vt[i, np.argmax(np.abs(vt[i]))] < 0:
            u[:, i], vt[i] = -u[:, i], -vt[i]
    coords = np.zeros((x.shape[0], 2))
    coords[:, :k] = u[:, :k] * s[:k]
    total = float((s ** 2).sum())
    explained = [float(s[i] ** 2 / total) if i < k and total > 0 else 0.0 for i in range(2)]
    return Projection([(float(a), float(b)) for a, b in coords], (explained[0], explained[1]))
