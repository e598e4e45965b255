"""``s2s plot curves`` and ``s2s plot pca`` through the command line: PNGs that show what they should,
the coordinates on stdout, and one-line errors naming the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clitools import TINY, Cli, Tiny, write_lines
from s2scli.figures import figure_summary

PHRASES = Path(__file__).resolve().parents[2] / "examples" / "phrases" / "phrases.en"


def summary_of(path: Path) -> dict:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    return figure_summary(data)


@pytest.fixture(scope="module")
def train_log(tmp_path_factory: pytest.TempPathFactory, cli: Cli, tiny: Tiny) -> Path:
    """The metrics log of a real (tiny) training run, validated every 2 steps."""
    d = tmp_path_factory.mktemp("log")
    log = d / "train.jsonl"
    cli("train", tiny.train_s2s, "--valid", tiny.dev_s2s, "-o", d / "m.pt", "--log", log, "--valid-every", "2",
        *TINY)
    return log


def test_curves_of_a_real_training_log(cli: Cli, train_log: Path, tmp_path: Path) -> None:
    records = [json.loads(line) for line in train_log.read_text().splitlines()]
    validated = sum("valid_ppl" in r for r in records)
    assert len(records) >= 2 and validated >= 2
    png = tmp_path / "curves.png"
    result = cli("plot", "curves", train_log, "-o", png)
    assert result.stdout == ""
    assert result.stderr.startswith(f"s2s plot curves: {len(records)} records ({validated} validated)")
    by_step, by_time, lr = summary_of(png)["axes"]
    assert (by_step["xlabel"], by_step["ylabel"], lr["ylabel"]) == ("step", "perplexity", "learning rate")
    assert by_time["xlabel"] == "elapsed time (minutes)"
    for ax in (by_step, by_time):
        assert {s["label"]: s["points"] for s in ax["series"]} == {"train": len(records), "validation": validated}
    assert lr["series"] == [{"label": "learning rate", "points": len(records)}]


def test_curves_from_stdin_with_a_title(cli: Cli, train_log: Path, tmp_path: Path) -> None:
    png = tmp_path / "c.png"
    cli("plot", "curves", "-", "-o", png, "--title", "tiny run", input=train_log.read_text())
    assert summary_of(png)["axes"][0]["series"][0]["label"] == "train"
    bare = tmp_path / "bare.png"  # no LOG at all: stdin, like every other command
    cli("plot", "curves", "-o", bare, "--title", "tiny run", input=train_log.read_text())
    assert summary_of(bare) == summary_of(png)


def test_curves_errors(cli: Cli, train_log: Path, tmp_path: Path) -> None:
    png = tmp_path / "c.png"
    good = train_log.read_text().splitlines()
    bad = write_lines(tmp_path / "bad.jsonl", [good[0], "step 2 lr 0.7"])
    cli.fails("plot", "curves", bad, "-o", png, watch=tmp_path, contains=[f"{bad}:2: not JSON"])
    partial = write_lines(tmp_path / "partial.jsonl", [good[0], json.dumps({"step": 4, "lr": 0.7})])
    cli.fails("plot", "curves", partial, "-o", png, watch=tmp_path,
              contains=[f"{partial}:2: no 'elapsed_s', 'train_ppl'"])
    empty = write_lines(tmp_path / "empty.jsonl", [])
    cli.fails("plot", "curves", empty, "-o", png, watch=tmp_path, contains=[f"{empty}: no records"])
    cli.fails("plot", "curves", tmp_path / "missing.jsonl", "-o", png, watch=tmp_path,
              contains=["missing.jsonl: no such file"])
    cli.fails("plot", "curves", train_log, "-o", tmp_path / "no" / "c.png", contains=["does not exist"])
    cli.fails("plot", "curves", train_log, "-o", "-", contains=["needs a file name"])
    assert cli.invoke(["plot", "curves", train_log]).exit_code == 2  # -o is required


def test_pca_of_the_papers_phrases(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    vectors = tmp_path / "phrases.vec"
    cli("encode", "-m", tiny.model, "--layer", "all", "-o", vectors, PHRASES)
    phrases = PHRASES.read_text(encoding="utf-8").splitlines()
    assert len(phrases) == 12
    png = tmp_path / "pca.png"
    result = cli("plot", "pca", vectors, "--labels", PHRASES, "-o", png)
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [r[2] for r in rows] == phrases
    coords = [(float(x), float(y)) for x, y, _ in rows]
    assert abs(sum(x for x, _ in coords)) < 1e-4 and abs(sum(y for _, y in coords)) < 1e-4  # centred
    assert "12 vectors of 16 numbers" in result.stderr
    (ax,) = summary_of(png)["axes"]
    assert ax["series"] == [{"label": "sentences", "points": 12}] and ax["texts"] == 12
    assert ax["xlabel"].startswith("first principal component (")
    assert ax["ylabel"].startswith("second principal component (")
    # The same vectors give the same coordinates (fixed signs): the plot can be redrawn from stdout.
    again = cli("plot", "pca", "-", "--labels", PHRASES, "-o", tmp_path / "again.png", input=vectors.read_text())
    assert again.stdout == result.stdout


def test_pca_without_labels_uses_line_numbers(cli: Cli, tmp_path: Path) -> None:
    vectors = write_lines(tmp_path / "v.txt", ["0 0 1", "1 0 0", "0 2 0"])
    result = cli("plot", "pca", vectors, "-o", tmp_path / "p.png", "--title", "three")
    assert [line.split("\t")[2] for line in result.stdout.splitlines()] == ["1", "2", "3"]
    piped = cli("plot", "pca", "-o", tmp_path / "q.png", input=vectors.read_text())  # no VECTORS: stdin
    assert piped.stdout == result.stdout


def test_pca_errors(cli: Cli, tmp_path: Path) -> None:
    png = tmp_path / "p.png"
    vectors = write_lines(tmp_path / "v.txt", ["0 0 1", "1 0 0", "0 2 0"])
    labels = write_lines(tmp_path / "labels.txt", ["a", "b"])
    cli.fails("plot", "pca", vectors, "--labels", labels, "-o", png, watch=tmp_path,
              contains=[f"{vectors} has 3 vectors but {labels} has 2 lines"])
    ragged = write_lines(tmp_path / "ragged.txt", ["0 0 1", "1 0", "0 2 0"])
    cli.fails("plot", "pca", ragged, "-o", png, watch=tmp_path, contains=[f"{ragged}:2: 2 numbers, but line 1 has 3"])
    words = write_lines(tmp_path / "words.txt", ["0 0 1", "1 0 0", "0 two 0"])
    cli.fails("plot", "pca", words, "-o", png, watch=tmp_path, contains=[f"{words}:3: cannot read 'two'"])
    one = write_lines(tmp_path / "one.txt", ["0 0 1"])
    cli.fails("plot", "pca", one, "-o", png, watch=tmp_path, contains=["at least 2 vectors"])
    empty = write_lines(tmp_path / "empty.txt", [])
    cli.fails("plot", "pca", empty, "-o", png, watch=tmp_path, contains=[f"{empty}: no vectors"])
    cli.fails("plot", "pca", tmp_path / "missing.txt", "-o", png, watch=tmp_path,
              contains=["missing.txt: no such file"])
    cli.fails("plot", "pca", vectors, "--labels", tmp_path / "nolabels.txt", "-o", png, watch=tmp_path,
              contains=["nolabels.txt: no such file"])
    cli.fails("plot", "pca", "-", "--labels", "-", "-o", png, input="1 2\n", contains=["both be stdin"])
    cli.fails("plot", "pca", "--labels", "-", "-o", png, input="1 2\n", contains=["both be stdin"])


def test_curves_of_two_logs_in_one_figure(cli: Cli, train_log: Path, tmp_path: Path) -> None:
    records = len(train_log.read_text().splitlines())
    other = tmp_path / "reversed.jsonl"
    other.write_text(train_log.read_text())
    png = tmp_path / "both.png"
    result = cli("plot", "curves", train_log, other, "--label", "forward", "--label", "reversed", "-o", png)
    assert result.stderr.startswith(f"s2s plot curves: forward: {records} records (")
    assert "; reversed: " in result.stderr
    labels = {s["label"] for s in summary_of(png)["axes"][0]["series"]}
    assert {"forward train", "forward validation", "reversed train", "reversed validation"} <= labels
    by_name = tmp_path / "names.png"  # no --label: the file names
    cli("plot", "curves", train_log, other, "-o", by_name)
    assert "reversed train" in {s["label"] for s in summary_of(by_name)["axes"][0]["series"]}
    cli.fails("plot", "curves", train_log, other, "--label", "one", "-o", png, contains=["1 --label for 2 LOG"])
    cli.fails("plot", "curves", "-", "-", "-o", png, contains=["only one LOG can be stdin"])
