"""Session fixtures for the CLI tier: a tiny corpus, its vocabularies, prepared files and tiny models, all
made through the command line itself (typer's CliRunner, in process) once per test session."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import torch

from clitools import TINY, Cli, Tiny, tiny_pairs, write_lines


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and on a busy 2-core machine oversubscribed OpenMP threads
    slow them down many times over; restore the setting for whatever runs next."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def cli() -> Cli:
    return Cli()


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory, cli: Cli) -> Tiny:
    d = tmp_path_factory.mktemp("tiny")
    train = tiny_pairs(40, seed=1)
    dev = tiny_pairs(8, seed=2)
    t = Tiny(d, write_lines(d / "train.en", [s for s, _ in train]), write_lines(d / "train.fr", [t for _, t in train]),
             write_lines(d / "dev.en", [s for s, _ in dev]), write_lines(d / "dev.fr", [t for _, t in dev]),
             d / "vocab.en", d / "vocab.fr", d / "train.s2s", d / "dev.s2s", d / "model.pt")
    cli("vocab", "--tokenizer", "none", t.train_en, "-o", t.vocab_en)
    cli("vocab", "--tokenizer", "none", t.train_fr, "-o", t.vocab_fr)
    cli("prepare", "--src-vocab", t.vocab_en, "--tgt-vocab", t.vocab_fr, t.train_en, t.train_fr, "-o", t.train_s2s)
    cli("prepare", "--src-vocab", t.vocab_en, "--tgt-vocab", t.vocab_fr, t.dev_en, t.dev_fr, "-o", t.dev_s2s)
    cli("train", t.train_s2s, "--valid", t.dev_s2s, "-o", t.model, *TINY)
    return t


@pytest.fixture(scope="session")
def other_model(tmp_path_factory: pytest.TempPathFactory, cli: Cli, tiny: Tiny) -> Path:
    """A tiny model with the same source vocabulary but a smaller target vocabulary."""
    d = tmp_path_factory.mktemp("other")
    vocab_fr = d / "vocab.fr"
    cli("vocab", "--tokenizer", "none", "--size", "5", tiny.train_fr, "-o", vocab_fr)
    data = d / "train.s2s"
    cli("prepare", "--src-vocab", tiny.vocab_en, "--tgt-vocab", vocab_fr, tiny.train_en, tiny.train_fr, "-o", data)
    model = d / "model.pt"
    cli("train", data, "-o", model, *TINY)
    return model
