"""Output paths that would destroy an input are refused before any work; values no run can use
(non-finite numbers) are refused with the option's name; running out of memory is one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from clitools import TINY, Cli, Tiny


def copy(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


def test_train_refuses_to_write_over_its_data_or_its_model(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    data = copy(tiny.train_s2s, tmp_path / "train.s2s")
    before = data.read_bytes()
    cli.fails("train", data, "-o", tmp_path / "m.pt", "--log", data, *TINY,
              contains=["train.s2s: this command also uses this file"])
    cli.fails("train", data, "-o", data, "--force", *TINY, contains=["this command also uses this file"])
    cli.fails("train", data, "--valid", tiny.dev_s2s, "-o", tmp_path / "m.pt", "--log", f"{tmp_path}/./m.pt",
              *TINY, contains=["the same file as", "m.pt"], watch=tmp_path)
    assert data.read_bytes() == before


def test_translate_and_encode_refuse_to_write_over_the_model(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    model = copy(tiny.model, tmp_path / "model.pt")
    before = model.read_bytes()
    cli.fails("translate", "-m", model, tiny.dev_en, "-o", model, contains=["model.pt: this command also uses"])
    cli.fails("encode", "-m", model, tiny.dev_en, "-o", model, contains=["model.pt: this command also uses"])
    text = copy(tiny.dev_en, tmp_path / "dev.en")
    cli.fails("translate", "-m", model, text, "-o", text, contains=["dev.en: this command also uses"])
    assert model.read_bytes() == before


def test_vocab_and_prepare_refuse_to_write_over_their_text(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    text = copy(tiny.train_en, tmp_path / "train.en")
    before = text.read_bytes()
    cli.fails("vocab", "--tokenizer", "none", text, "-o", text, contains=["train.en: this command also uses"])
    cli.fails("prepare", "--src-vocab", tiny.vocab_en, "--tgt-vocab", tiny.vocab_fr, text, tiny.train_fr,
              "-o", text, contains=["train.en: this command also uses"])
    cli.fails("prepare", "--src-vocab", tiny.vocab_en, "--tgt-vocab", tiny.vocab_fr, text, tiny.train_fr,
              "-o", tiny.vocab_en, contains=["vocab.en: this command also uses"])
    assert text.read_bytes() == before


def test_output_through_a_symbolic_link_writes_its_target(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    (tmp_path / "vocab.txt").write_text("old\n")
    (tmp_path / "link").symlink_to("vocab.txt")
    cli("vocab", "--tokenizer", "none", tiny.train_en, "-o", tmp_path / "link")
    assert (tmp_path / "link").is_symlink()
    assert (tmp_path / "vocab.txt").read_text() == tiny.vocab_en.read_text()


@pytest.mark.parametrize("args, message", [
    (["--max-len-a", "nan"], "--max-len-a must be a finite number, got nan"),
    (["--max-len-a", "inf"], "--max-len-a must be a finite number, got inf"),
])
def test_translate_refuses_non_finite_lengths(cli: Cli, tiny: Tiny, args: list[str], message: str) -> None:
    cli.fails("translate", "-m", tiny.model, tiny.dev_en, *args, contains=[message])


def test_translate_caps_a_huge_length_limit(cli: Cli, tiny: Tiny) -> None:
    out = cli("translate", "-m", tiny.model, "--beam", "1", "--max-len-a", "0", "--max-len-b", "1000000000000",
              "-q", tiny.dev_en).stdout
    assert len(out.splitlines()) == len(tiny.dev_en.read_text().splitlines())


@pytest.mark.parametrize("args, message", [
    (["--epochs", "inf"], "--epochs must be positive and at most 1e+06, got inf"),
    (["--epochs", "1e308"], "--epochs must be positive and at most 1e+06"),
    (["--epochs", "nan"], "--epochs must be positive"),
    (["--max-time", "nan"], "--max-time must be a finite duration"),
    (["--max-time", "inf"], "--max-time must be a finite duration"),
    (["--decay-every", "inf"], "--decay-every must be positive and finite"),
    (["--clip-norm", "nan"], "--clip-norm must be finite and not negative"),
    (["--init-scale", "inf"], "--init-scale must be finite and not negative"),
])
def test_train_refuses_non_finite_values(cli: Cli, tiny: Tiny, tmp_path: Path, args: list[str],
                                         message: str) -> None:
    cli.fails("train", tiny.train_s2s, "-o", tmp_path / "m.pt", *TINY, *args, contains=[message], watch=tmp_path)


def test_running_out_of_memory_is_one_line(cli: Cli, tiny: Tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_memory(*args: object, **kwargs: object) -> None:
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 800000000000 bytes.")

    monkeypatch.setattr(torch.nn.LSTM, "forward", no_memory)
    cli.fails("translate", "-m", tiny.model, tiny.dev_en, contains=["out of memory (try a smaller --batch-size"])


def test_score_refuses_two_inputs_from_stdin(cli: Cli, tiny: Tiny) -> None:
    text = tiny.dev_fr.read_text()
    cli.fails("score", "--ref", "-", input=text, contains=["only one input can be stdin"])
    cli.fails("score", "--ref", "-", "--ref", "-", tiny.dev_fr, input=text, contains=["only one input can be stdin"])
    assert "BLEU" in cli("score", "--ref", "-", tiny.dev_fr, input=text).stdout  # a file HYP and the --ref on stdin
