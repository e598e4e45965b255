"""Beyond the paper through the command line: train --attention/--dropout/--label-smoothing, translate
--align/--replace-unk/--length-penalty, their errors, and resuming an attention model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from clitools import TINY, Cli, Tiny

FAST = ["--max-len-a", "1", "--max-len-b", "3", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def attention_model(cli: Cli, tiny: Tiny, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = tmp_path_factory.mktemp("attention") / "att.pt"
    cli("train", tiny.train_s2s, "--valid", tiny.dev_s2s, "-o", model, *TINY, "--attention", "general",
        "--dropout", "0.2", "--label-smoothing", "0.1")
    return model


def test_options_are_stored_in_the_model_file(attention_model: Path) -> None:
    data = torch.load(attention_model, weights_only=True)
    assert data["model_config"]["attention"] == "general" and data["model_config"]["dropout"] == 0.2
    assert data["train_config"]["label_smoothing"] == 0.1
    assert "attn_key.weight" in data["weights"] and "attn_out.weight" in data["weights"]


def test_defaults_train_the_papers_model(tiny: Tiny) -> None:
    data = torch.load(tiny.model, weights_only=True)
    assert data["model_config"]["attention"] == "none" and data["model_config"]["dropout"] == 0.0
    assert data["train_config"]["label_smoothing"] == 0.0
    assert not any(k.startswith("attn") for k in data["weights"])


def test_translate_align_and_replace_unk(cli: Cli, tiny: Tiny, attention_model: Path) -> None:
    plain = cli("translate", "-m", attention_model, *FAST, tiny.dev_en).stdout.splitlines()
    aligned = cli("translate", "-m", attention_model, *FAST, "--align", tiny.dev_en).stdout.splitlines()
    sources = tiny.dev_en.read_text().splitlines()
    assert len(aligned) == len(plain) == len(sources)
    for source, text, line in zip(sources, plain, aligned):
        got, links = line.split(" ||| ")
        assert got == text
        pairs = [tuple(map(int, p.split("-"))) for p in links.split()]
        assert [j for _, j in pairs] == list(range(len(text.split())))
        assert all(0 <= i < len(source.split()) for i, _ in pairs)
    replaced = cli("translate", "-m", attention_model, *FAST, "--replace-unk", input="zebra xylophone\n").stdout
    assert "<unk>" not in replaced
    nbest = cli("translate", "-m", attention_model, *FAST, "-k", "3", "-n", "2", "--align", "--length-penalty",
                "1.0", tiny.dev_en).stdout.splitlines()
    assert all(re.match(r"^\d+ \|\|\| .* \|\|\| s2s= -?\d+\.\d{4} \|\|\| -?\d+\.\d{4} \|\|\| [\d\- ]*$", n)
               for n in nbest)
    # An ensemble of a plain and an attention model aligns with the attention model.
    mixed = cli("translate", "-m", tiny.model, "-m", attention_model, *FAST, "--align", tiny.dev_en)
    assert all(" ||| " in line for line in mixed.stdout.splitlines())


@pytest.mark.parametrize("option", ["--align", "--replace-unk"])
def test_align_refused_for_a_model_without_attention(cli: Cli, tiny: Tiny, option: str) -> None:
    cli.fails("translate", "-m", tiny.model, *FAST, option, input="the cat\n",
              contains=[f"{option} needs a model trained with --attention", f"{tiny.model} has none"])


@pytest.mark.parametrize("option, message", [
    (["--attention", "bahdanau"], "--attention must be one of none, dot, general, concat"),
    (["--dropout", "1"], "--dropout must be in [0, 1)"),
    (["--dropout", "-0.5"], "--dropout"),
    (["--label-smoothing", "1.5"], "--label-smoothing must be in [0, 1)"),
])
def test_train_refuses_bad_values(cli: Cli, tiny: Tiny, tmp_path: Path, option: list[str], message: str) -> None:
    cli.fails("train", tiny.train_s2s, "-o", tmp_path / "m.pt", *TINY, *option, watch=tmp_path, contains=[message])


def test_translate_refuses_a_negative_length_penalty(cli: Cli, tiny: Tiny) -> None:
    cli.fails("translate", "-m", tiny.model, "--length-penalty", "-1", input="the cat\n",
              contains=["--length-penalty must be 0 (off) or positive"])


def test_resume_keeps_attention_and_refuses_a_change(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    model = tmp_path / "m.pt"
    cli("train", tiny.train_s2s, "-o", model, *TINY, "--attention", "dot", "--dropout", "0.1")
    cli("train", tiny.train_s2s, "-o", model, *TINY, "--resume", "--epochs", "2")
    data = torch.load(model, weights_only=True)
    assert data["model_config"]["attention"] == "dot" and data["train_state"]["step"] == 10
    for option in (["--attention", "none"], ["--dropout", "0.3"], ["--label-smoothing", "0.1"]):
        cli.fails("train", tiny.train_s2s, "-o", model, *TINY, "--resume", *option, contains=["differs from"])
