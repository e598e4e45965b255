"""What every command shares: --help, --version, usage errors (status 2), stdin named <stdin> in errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from clitools import Cli, Tiny
from s2scli import __version__

COMMANDS = ["vocab", "prepare", "train", "translate", "score"]


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert result.stdout.strip() == f"s2s {__version__}"


def test_top_level_help_lists_every_command(cli: Cli) -> None:
    out = cli("--help").stdout
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help(cli: Cli, command: str) -> None:
    result = cli(command, "-h")
    assert "Usage:" in result.stdout and command in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_option_is_a_usage_error(cli: Cli, command: str) -> None:
    result = cli.invoke([command, "--no-such-option"])
    assert result.exit_code == 2
    assert "--no-such-option" in result.stderr
    assert result.stdout == ""


def test_unknown_command_is_a_usage_error(cli: Cli) -> None:
    result = cli.invoke(["tranlsate"])
    assert result.exit_code == 2
    assert "tranlsate" in result.stderr


def test_non_numeric_option_is_a_usage_error(cli: Cli, tiny: Tiny) -> None:
    result = cli.invoke(["translate", "-m", tiny.model, "--beam", "wide", tiny.dev_en])
    assert result.exit_code == 2
    assert "--beam" in result.stderr
    assert result.stdout == ""


def test_missing_input_file_for_every_command(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    nope = tmp_path / "nope.txt"
    cases = {
        "vocab": ["vocab", nope],
        "prepare": ["prepare", "--src-vocab", tiny.vocab_en, "--tgt-vocab", tiny.vocab_fr, nope, tiny.train_fr],
        "train": ["train", nope, "-o", tmp_path / "m.pt"],
        "translate": ["translate", "-m", tiny.model, nope],
        "score": ["score", nope, "--ref", tiny.dev_fr],
    }
    for args in cases.values():
        cli.fails(*args, watch=tmp_path, contains=[str(nope)])


@pytest.mark.parametrize("given,expected", [(None, "256"), ("1024", "1024")])
def test_onednn_cache_is_capped_unless_the_user_says(given: str | None, expected: str) -> None:
    """oneDNN's kernel cache (one entry per LSTM input shape) is capped at 256 before torch first uses it;
    a value in the environment is kept. (In a fresh process: the cache reads it once, when first used.)"""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
    if given is not None:
        env["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = given
    code = "import os, s2scli.cli; print(os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected
