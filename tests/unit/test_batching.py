"""batching.py: the one path from raw source lines to padded ids."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from s2scli.batching import (MAX_SOURCE_TOKENS, SourceStats, cut_source, ids_to_tensor, on_nonempty, pad_ids,
                             read_sources, source_ids)
from s2scli.errors import S2SError
from s2scli.vocab import BOS, EOS, PAD, UNK, Vocab


def test_pad_ids_with_prefix_and_suffix() -> None:
    rows = [[4, 5, 6], [7], np.array([8, 9], dtype=np.int32)]
    assert pad_ids(rows).tolist() == [[4, 5, 6], [7, PAD, PAD], [8, 9, PAD]]
    assert pad_ids(rows, prefix=BOS).tolist() == [[BOS, 4, 5, 6], [BOS, 7, PAD, PAD], [BOS, 8, 9, PAD]]
    assert pad_ids(rows, suffix=EOS).tolist() == [[4, 5, 6, EOS], [7, EOS, PAD, PAD], [8, 9, EOS, PAD]]
    assert pad_ids(rows).dtype == torch.long


def test_ids_to_tensor_gives_lengths() -> None:
    src, lengths = ids_to_tensor([[4], [5, 6]], torch.device("cpu"))
    assert src.tolist() == [[4, PAD], [5, 6]] and lengths.tolist() == [1, 2] and lengths.dtype == torch.long


def test_on_nonempty_keeps_empty_sources_from_the_model() -> None:
    seen: list[list[list[int]]] = []

    def run(todo: list[list[int]]) -> list[int]:
        seen.append(todo)
        return [len(ids) for ids in todo]

    assert on_nonempty([[4, 5], [], [6]], run, -1) == [2, -1, 1]
    assert seen == [[[4, 5], [6]]]
    assert on_nonempty([[], []], run, -1) == [-1, -1] and len(seen) == 1  # nothing to run: not called
    pairs = [([4], [5]), ([], [6])]
    assert on_nonempty(pairs, lambda todo: [0.5] * len(todo), math.nan, source=lambda p: p[0])[0] == 0.5


def test_cut_source_counts_and_warns() -> None:
    stats, said = SourceStats(), []
    assert cut_source([4] * MAX_SOURCE_TOKENS, 1, stats, said.append, "read") == [4] * MAX_SOURCE_TOKENS
    assert cut_source([4] * (MAX_SOURCE_TOKENS + 2), 7, stats, said.append, "read") == [4] * MAX_SOURCE_TOKENS
    assert stats.truncated == 1
    assert said == [f"line 7: {MAX_SOURCE_TOKENS + 2} tokens, only the first {MAX_SOURCE_TOKENS} are read"]


def test_read_sources_chunks_tokenizes_and_counts(tiny_src_vocab: Vocab) -> None:
    stats = SourceStats()
    word = tiny_src_vocab.tokens[4]
    lines = [word, "", f"{word} nosuchword", word]
    chunks = list(read_sources(lines, tiny_src_vocab, 3, stats, None, "read"))
    assert [c.first for c in chunks] == [0, 3]
    assert chunks[0].tokens == [[word], [], [word, "nosuchword"]]
    assert chunks[0].ids == [[4], [], [4, UNK]] and chunks[1].ids == [[4]]
    assert (stats.lines, stats.empty, stats.truncated) == (4, 1, 0)
    assert source_ids(f"{word} {word}", tiny_src_vocab, 1, stats, None, "read") == [4, 4]


def test_read_sources_refuses_a_vocabulary_that_cannot_tokenize() -> None:
    broken = Vocab(["<pad>", "<unk>", "<s>", "</s>"], "nosuch", "en")
    with pytest.raises(S2SError, match="unknown tokenizer"):
        next(read_sources([], broken, 2, SourceStats(), None, "read"))
