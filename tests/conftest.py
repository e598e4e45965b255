"""Shared fixtures: a tiny vocabulary pair, tiny models and checkpoints, prepared-file helpers.

Everything here is small enough for a unit test on a laptop CPU (hidden 16, two layers, vocabularies of
ten-odd tokens, tokenizer ``none`` so no Moses tables are loaded). Other test tiers may reuse these.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

import pytest
import torch

from s2scli.checkpoint import Checkpoint, save
from s2scli.config import ModelConfig, TrainConfig
from s2scli.data import PreparedData, PreparedWriter
from s2scli.model import Seq2Seq
from s2scli.vocab import SPECIALS, Vocab

# Tiny tensors gain nothing from intra-op threads, and on a shared machine the thread pool's spinning
# can make them many times slower.
torch.set_num_threads(1)

# Source words and the target word each one "translates" to (a learnable toy mapping).
TINY_SRC_WORDS = ["a", "b", "c", "d", "e", "f", "g", "h"]
TINY_TGT_WORDS = ["u", "v", "w", "x", "y", "z"]
TINY_TRANSLATION = {s: TINY_TGT_WORDS[i % len(TINY_TGT_WORDS)] for i, s in enumerate(TINY_SRC_WORDS)}


def tiny_src_vocab_object() -> Vocab:
    return Vocab(list(SPECIALS) + TINY_SRC_WORDS, "none", "en")


def tiny_tgt_vocab_object() -> Vocab:
    return Vocab(list(SPECIALS) + TINY_TGT_WORDS, "none", "fr")


def tiny_parallel_lines(n: int, seed: int = 0, min_len: int = 1, max_len: int = 6) -> tuple[list[str], list[str]]:
    """``n`` source lines of random tiny-vocabulary words and their word-by-word toy translations."""
    rng = random.Random(seed)
    src, tgt = [], []
    for _ in range(n):
        words = [rng.choice(TINY_SRC_WORDS) for _ in range(rng.randint(min_len, max_len))]
        src.append(" ".join(words))
        tgt.append(" ".join(TINY_TRANSLATION[w] for w in words))
    return src, tgt


@pytest.fixture
def tiny_src_vocab() -> Vocab:
    """Source vocabulary: the 4 specials + 8 words, tokenizer ``none``, lang ``en``."""
    return tiny_src_vocab_object()


@pytest.fixture
def tiny_tgt_vocab() -> Vocab:
    """Target vocabulary: the 4 specials + 6 words, tokenizer ``none``, lang ``fr``."""
    return tiny_tgt_vocab_object()


@pytest.fixture
def tiny_model_config(tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> ModelConfig:
    """2 layers, hidden 16, embedding 12, sized for the tiny vocabularies."""
    return ModelConfig(len(tiny_src_vocab), len(tiny_tgt_vocab), layers=2, hidden=16, embedding=12)


@pytest.fixture
def make_tiny_model(tiny_model_config: ModelConfig) -> Callable[..., Seq2Seq]:
    """``make_tiny_model(seed=0, **config_overrides)``: a fresh untrained tiny model in eval mode.

    A larger ``init_scale`` (e.g. 0.5) makes an untrained model's distributions peaky and its
    translations varied, which search tests want.
    """

    def make(seed: int = 0, **overrides: object) -> Seq2Seq:
        torch.manual_seed(seed)
        return Seq2Seq(replace(tiny_model_config, **overrides)).eval()

    return make


@pytest.fixture
def tiny_model(make_tiny_model: Callable[..., Seq2Seq]) -> Seq2Seq:
    """An untrained tiny model (seed 0, init_scale 0.5) in eval mode."""
    return make_tiny_model(0, init_scale=0.5)


@pytest.fixture
def tiny_checkpoint(tiny_model: Seq2Seq, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> Checkpoint:
    """A Checkpoint of ``tiny_model`` (no training state) with the tiny vocabularies."""
    weights = {k: v.detach().clone() for k, v in tiny_model.state_dict().items()}
    return Checkpoint(tiny_model.config, TrainConfig(batch_size=4), tiny_src_vocab, tiny_tgt_vocab, weights)


@pytest.fixture
def tiny_checkpoint_path(tiny_checkpoint: Checkpoint, tmp_path: Path) -> Path:
    """``tiny_checkpoint`` saved as ``tmp_path / 'tiny.pt'``."""
    path = tmp_path / "tiny.pt"
    save(tiny_checkpoint, path)
    return path


def write_prepared_file(path: Path, pairs: list[tuple[list[int], list[int]]], src_vocab: Vocab, tgt_vocab: Vocab,
                        max_len: int = 100) -> Path:
    """Write ``pairs`` of id lists as a prepared file at ``path``."""
    with open(path, "wb") as f:
        writer = PreparedWriter(f, {"src_vocab": src_vocab.to_dict(), "tgt_vocab": tgt_vocab.to_dict(),
                                    "max_len": max_len})
        for s, t in pairs:
            writer.add(s, t)
        writer.close()
    return path


def tiny_pairs_as_ids(n: int, seed: int = 0, min_len: int = 1, max_len: int = 6) -> list[tuple[list[int], list[int]]]:
    """The ``tiny_parallel_lines`` pairs as id lists of the tiny vocabularies."""
    src_vocab, tgt_vocab = tiny_src_vocab_object(), tiny_tgt_vocab_object()
    src, tgt = tiny_parallel_lines(n, seed, min_len, max_len)
    return [(src_vocab.encode(s.split()), tgt_vocab.encode(t.split())) for s, t in zip(src, tgt)]


@pytest.fixture
def tiny_prepared(tmp_path: Path) -> Iterator[Callable[..., PreparedData]]:
    """``tiny_prepared(n, seed=0, name='train.s2s')``: a prepared file of ``n`` toy pairs, opened."""
    streams = []

    def make(n: int, seed: int = 0, name: str = "train.s2s", min_len: int = 1, max_len: int = 6) -> PreparedData:
        path = write_prepared_file(tmp_path / name, tiny_pairs_as_ids(n, seed, min_len, max_len),
                                   tiny_src_vocab_object(), tiny_tgt_vocab_object())
        stream = open(path, "rb")
        streams.append(stream)
        return PreparedData(stream, str(path))

    yield make
    for stream in streams:
        stream.close()


@pytest.fixture
def write_prepared() -> Callable[..., Path]:
    """``write_prepared(path, pairs, src_vocab, tgt_vocab, max_len=100)``: write id pairs as a prepared file."""
    return write_prepared_file


@pytest.fixture
def make_tiny_lines() -> Callable[..., tuple[list[str], list[str]]]:
    """``make_tiny_lines(n, seed=0, min_len=1, max_len=6)``: toy (source lines, target lines) in the tiny
    vocabularies, each target word the fixed translation of its source word (``TINY_TRANSLATION``)."""
    return tiny_parallel_lines
