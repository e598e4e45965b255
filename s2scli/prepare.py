"""``prepare``: a parallel corpus of raw text to the prepared-data file of token ids (see ``data.py``).

The corpus is two files of one sentence a line (``prepare``) or any iterable of (source, target) pairs
(``prepare_pairs``, e.g. the tab-separated pairs of ``tsv.py``). Both sides are tokenized with the
tokenizer their vocabulary records and mapped to ids (``Vocab.encode_line``; unknown words to ``<unk>``).
Pairs with an empty side are dropped, and so are pairs longer than ``max_len`` tokens on either side; the
counts of each are returned so the CLI can report them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Iterable, Iterator

from .config import PrepareConfig
from .data import PreparedWriter
from .errors import S2SError
from .lines import PARALLEL_HINT, check_same_count
from .vocab import UNK, Vocab


@dataclass
class PrepareStats:
    pairs: int = 0  # lines read on each side
    kept: int = 0
    empty: int = 0  # dropped: a side is empty (blank line)
    too_long: int = 0  # dropped: a side is longer than max_len tokens
    src_tokens: int = 0  # tokens in kept pairs
    tgt_tokens: int = 0
    src_unk: int = 0
    tgt_unk: int = 0

    @property
    def dropped(self) -> int:
        return self.empty + self.too_long

    def unk_rate(self, side: str) -> float:
        tokens = self.src_tokens if side == "src" else self.tgt_tokens
        unk = self.src_unk if side == "src" else self.tgt_unk
        return unk / tokens if tokens else 0.0


def prepare(
    src_lines: Iterable[str],
    tgt_lines: Iterable[str],
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    out: BinaryIO,
    cfg: PrepareConfig = PrepareConfig(),
    names: tuple[str, str] = ("source", "target"),
) -> PrepareStats:
    """Write the prepared file for the pairs ``zip(src_lines, tgt_lines)`` to ``out``.

    The two inputs must have the same number of lines; if they do not, an error names both files and
    both counts, and the output is left without its end marker (readers refuse it as truncated).
    """
    return prepare_pairs(parallel_pairs(src_lines, tgt_lines, names), src_vocab, tgt_vocab, out, cfg)


def parallel_pairs(
    src_lines: Iterable[str], tgt_lines: Iterable[str], names: tuple[str, str]
) -> Iterator[tuple[str, str]]:
    """``zip`` of two parallel files that insists on equal line counts (an error names both counts)."""
    src_it, tgt_it = iter(src_lines), iter(tgt_lines)
    pairs = 0
    while True:
        src = next(src_it, None)
        tgt = next(tgt_it, None)
        if src is None or tgt is None:
            # The longer side is counted to its end (the shorter one is at its end already).
            n_src = pairs + (src is not None) + sum(1 for _ in src_it)
            n_tgt = pairs + (tgt is not None) + sum(1 for _ in tgt_it)
            check_same_count(names[0], n_src, names[1], n_tgt, PARALLEL_HINT)
            return
        pairs += 1
        yield src, tgt


def prepare_pairs(
    pairs: Iterable[tuple[str, str]],
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    out: BinaryIO,
    cfg: PrepareConfig = PrepareConfig(),
) -> PrepareStats:
    """Write the prepared file for the (source, target) ``pairs`` to ``out``.

    An error while the pairs are read leaves the output without its end marker (refused as truncated).
    """
    if cfg.max_len < 0:
        raise S2SError(f"--max-len must be 0 (no limit) or positive, got {cfg.max_len}")
    for vocab in (src_vocab, tgt_vocab):
        vocab.text_tokenizer()  # a vocabulary that cannot tokenize fails before anything is written
    writer = PreparedWriter(out, {"src_vocab": src_vocab.to_dict(), "tgt_vocab": tgt_vocab.to_dict(),
                                  "max_len": cfg.max_len})
    stats = PrepareStats()
    for src, tgt in pairs:
        stats.pairs += 1
        s, t = src_vocab.encode_line(src), tgt_vocab.encode_line(tgt)
        if not s or not t:
            stats.empty += 1
            continue
        if cfg.max_len and (len(s) > cfg.max_len or len(t) > cfg.max_len):
            stats.too_long += 1
            continue
        writer.add(s, t)
        stats.kept += 1
        stats.src_tokens += len(s)
        stats.tgt_tokens += len(t)
        stats.src_unk += s.count(UNK)
        stats.tgt_unk += t.count(UNK)
    writer.close()
    return stats
