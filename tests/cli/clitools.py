"""Helpers for the CLI tier: running ``s2s`` in process through typer's CliRunner, and tiny corpora.

``cli(...)`` runs a command that must succeed; ``cli.fails(...)`` runs one that must fail the way the
project promises: exactly one stderr line ``s2s <command>: error: ...`` (``s2s plot pca: error: ...``
for a subcommand), exit status 1 (user error), no traceback anywhere, and no output file left behind
in the directory it watches.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from click.testing import Result
from typer.testing import CliRunner

from s2scli.cli import app

# Commands that are groups of subcommands: their errors name both words (``s2s plot pca: error: ...``).
GROUPS = {"plot"}

# A tiny model: trains in well under a second on a few dozen pairs.
TINY_SETTINGS = {"layers": 1, "hidden": 16, "embedding": 8, "epochs": 1, "batch-size": 8, "device": "cpu"}


def tiny_options(**changes: object) -> list[str]:
    """The tiny model's training options, with some changed (``batch_size=4`` -> ``--batch-size 4``)."""
    settings = dict(TINY_SETTINGS, **{k.replace("_", "-"): v for k, v in changes.items()})
    return [str(x) for k, v in settings.items() for x in (f"--{k}", v)]


TINY = tiny_options()

# Source words and their "translations": the tiny corpus is a word-for-word code, already tokenized.
LEXICON = {
    "the": "le", "cat": "chat", "dog": "chien", "sees": "voit", "eats": "mange", "a": "un",
    "bird": "oiseau", "fish": "poisson", "big": "grand", "small": "petit", "house": "maison", "red": "rouge",
}


def tiny_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    words = sorted(LEXICON)
    pairs = []
    for _ in range(n):
        src = [rng.choice(words) for _ in range(rng.randint(2, 6))]
        pairs.append((" ".join(src), " ".join(LEXICON[w] for w in src)))
    return pairs


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def listing(directory: Path) -> set[str]:
    """Every name in ``directory`` (hidden temporary files included)."""
    return {p.name for p in directory.iterdir()}


class Cli:
    """Runs ``s2s`` commands in process through typer's CliRunner."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def invoke(self, args: Sequence[object], input: str | bytes | None = None) -> Result:
        result = self.runner.invoke(app, [str(a) for a in args], input=input)
        assert "Traceback" not in result.output, result.output
        assert "Traceback" not in result.stderr, result.stderr
        # A command may only end by returning or by exiting: an escaped exception is a bug.
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        return result

    def __call__(self, *args: object, input: str | bytes | None = None) -> Result:
        result = self.invoke(args, input)
        assert result.exit_code == 0, (f"s2s {' '.join(map(str, args))} exited {result.exit_code}\n"
                                       f"stderr: {result.stderr}")
        return result

    def fails(self, *args: object, input: str | bytes | None = None, code: int = 1,
              watch: Path | None = None, contains: Sequence[str] = (), stdout_empty: bool = True) -> str:
        """Run a command that must fail; returns its one error line.

        ``watch``: a directory in which the failed command must not leave any new file (temporary
        files included). ``contains``: strings the error message must mention.
        """
        before = listing(watch) if watch is not None else None
        result = self.invoke(args, input)
        command = " ".join(str(a) for a in args[:2]) if str(args[0]) in GROUPS else str(args[0])
        assert result.exit_code == code, (f"s2s {' '.join(map(str, args))}: expected exit {code}, got "
                                          f"{result.exit_code}\nstderr: {result.stderr}")
        lines = result.stderr.splitlines()
        assert len(lines) == 1, f"expected exactly one stderr line, got {len(lines)}:\n{result.stderr}"
        assert lines[0].startswith(f"s2s {command}: error: "), lines[0]
        for text in contains:
            assert text in lines[0], f"{text!r} not in {lines[0]!r}"
        if stdout_empty:
            assert result.stdout == "", f"stdout should be empty on error, got {result.stdout[:200]!r}"
        if watch is not None:
            assert listing(watch) == before, f"files left behind: {sorted(listing(watch) - before)}"
        return lines[0]


@dataclass
class Tiny:
    """A tiny whitespace-tokenized corpus with everything built from it."""

    dir: Path
    train_en: Path
    train_fr: Path
    dev_en: Path
    dev_fr: Path
    vocab_en: Path
    vocab_fr: Path
    train_s2s: Path
    dev_s2s: Path
    model: Path  # a tiny model trained on train_s2s (validated on dev_s2s)
