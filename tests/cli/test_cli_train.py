"""``s2s train`` through the command line: the model file, the metrics log, time limits, resuming, errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from clitools import TINY, Cli, Tiny, tiny_options, write_lines
from s2scli import checkpoint


def trained_step(model: Path) -> int:
    state = checkpoint.load(model).train_state
    assert state is not None
    return int(state["step"])


def test_train_writes_a_model_and_reports_only_on_stderr(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    model = tmp_path / "m.pt"
    result = cli("train", tiny.train_s2s, "--valid", tiny.dev_s2s, "-o", model, *TINY)
    assert result.stdout == ""
    assert re.search(r"^s2s train: finished at step 5 \(epoch 1\.00\), valid ppl [\d.]+; model saved to ",
                     result.stderr, re.M), result.stderr
    ckpt = checkpoint.load(model)
    assert ckpt.model_config.layers == 1 and ckpt.model_config.hidden == 16 and ckpt.model_config.embedding == 8
    assert ckpt.train_config.batch_size == 8
    assert len(ckpt.src_vocab) == len(tiny.vocab_en.read_text().splitlines()) - 1
    assert trained_step(model) == 5  # 40 pairs / batch 8
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left


def test_train_log_has_one_json_line_per_validation(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    result = cli("train", tiny.train_s2s, "--valid", tiny.dev_s2s, "-o", tmp_path / "m.pt", "--log", log,
                 "--valid-every", "2", *TINY)
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [r["step"] for r in records] == [2, 4, 5]
    assert len(records) == len(re.findall(r"valid ppl", result.stderr)) - 1  # the last line repeats it
    for r in records:
        assert isinstance(r["valid_ppl"], float) and r["valid_ppl"] > 1
        assert r["train_ppl"] > 1
    # --log appends: a second run adds its own lines.
    cli("train", tiny.train_s2s, "--valid", tiny.dev_s2s, "-o", tmp_path / "m.pt", "--force", "--log", log,
        "--valid-every", "2", *TINY)
    assert len(log.read_text(encoding="utf-8").splitlines()) == 6


def test_train_max_time_stops_cleanly(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    model = tmp_path / "m.pt"
    result = cli("train", tiny.train_s2s, "-o", model, "--max-time", "1", *tiny_options(epochs=100000))
    assert "time limit" in result.stderr
    step = trained_step(model)
    assert 0 < step < 100000 * 5
    # The checkpoint is complete and resumable.
    resumed = cli("train", tiny.train_s2s, "-o", model, "--resume", "--max-time", "1")
    assert trained_step(model) > step
    assert "time limit" in resumed.stderr


def test_train_time_schedule_spreads_the_papers_decays_over_the_budget(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    model, log = tmp_path / "m.pt", tmp_path / "log.jsonl"
    result = cli("train", tiny.train_s2s, "--valid", tiny.dev_s2s, "-o", model, "--log", log, "--schedule", "time",
                 "--max-time", "2", "--valid-every", "1", *tiny_options(epochs=100000))
    assert "time limit" in result.stderr
    cfg = checkpoint.load(model).train_config
    assert cfg.schedule == "time" and cfg.max_time == 2.0
    assert cfg.decay_start == pytest.approx(5 / 7.5) and cfg.decay_every == pytest.approx(0.5 / 7.5)
    rates = [json.loads(line)["lr"] for line in log.read_text().splitlines()]
    assert rates[0] == 0.7 and rates[-1] < 0.7 / 2  # decayed within the two seconds
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    # Given decay points are fractions of the budget; out-of-range ones and a missing budget are refused.
    cli("train", tiny.train_s2s, "-o", model, "--force", "--schedule", "time", "--max-time", "1",
        "--decay-start", "0.5", "--decay-every", "0.1", *tiny_options(epochs=100000))
    assert checkpoint.load(model).train_config.decay_start == 0.5
    cli.fails("train", tiny.train_s2s, "-o", tmp_path / "n.pt", "--schedule", "time", *TINY, watch=tmp_path,
              contains=["--schedule time needs --max-time"])
    cli.fails("train", tiny.train_s2s, "-o", tmp_path / "n.pt", "--schedule", "time", "--max-time", "5",
              "--decay-start", "3", *TINY, watch=tmp_path, contains=["--decay-start", "fraction"])


def test_train_resume_continues_where_it_stopped(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    model = tmp_path / "m.pt"
    shutil.copy(tiny.model, model)
    assert trained_step(model) == 5
    log = tmp_path / "log.jsonl"
    # Run-control options may change on --resume; repeating a stored setting with its own value is fine.
    result = cli("train", tiny.train_s2s, "--valid", tiny.dev_s2s, "-o", model, "--resume", "--epochs", "2",
                 "--valid-every", "1", "--log", log, "--layers", "1")
    assert "finished at step 10 (epoch 2.00)" in result.stderr
    assert trained_step(model) == 10
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == [6, 7, 8, 9, 10]  # continued from step 5, not from the start
    ckpt = checkpoint.load(model)
    assert ckpt.model_config.hidden == 16 and ckpt.train_config.epochs == 2


def test_train_force_overwrites(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    model = tmp_path / "m.pt"
    model.write_bytes(b"old")
    cli("train", tiny.train_s2s, "-o", model, "--force", *TINY)
    assert trained_step(model) == 5


# ----------------------------------------------------------------------------------------- errors


def test_train_truncated_prepared_file(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    cut = tmp_path / "cut.s2s"
    cut.write_bytes(tiny.train_s2s.read_bytes()[:-10])
    cli.fails("train", cut, "-o", tmp_path / "m.pt", *TINY, watch=tmp_path, contains=[str(cut), "truncated"])


def test_train_text_file_as_prepared_data(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    cli.fails("train", tiny.train_en, "-o", tmp_path / "m.pt", *TINY, watch=tmp_path,
              contains=[str(tiny.train_en), "not an s2s prepared file"])


def test_train_missing_and_directory_data(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    cli.fails("train", tmp_path / "nope.s2s", "-o", tmp_path / "m.pt", *TINY, watch=tmp_path,
              contains=[str(tmp_path / "nope.s2s")])
    cli.fails("train", tmp_path, "-o", tmp_path / "m.pt", *TINY, watch=tmp_path, contains=["directory"])
    cli.fails("train", tiny.train_s2s, "--valid", tmp_path / "nope.s2s", "-o", tmp_path / "m.pt", *TINY,
              watch=tmp_path, contains=[str(tmp_path / "nope.s2s")])


def test_train_dev_prepared_with_another_vocab(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    other_vocab = tmp_path / "other.fr"
    cli("vocab", "--tokenizer", "none", "--size", "3", tiny.train_fr, "-o", other_vocab)
    dev = tmp_path / "dev.s2s"
    cli("prepare", "--src-vocab", tiny.vocab_en, "--tgt-vocab", other_vocab, tiny.dev_en, tiny.dev_fr, "-o", dev)
    cli.fails("train", tiny.train_s2s, "--valid", dev, "-o", tmp_path / "m.pt", *TINY, watch=tmp_path,
              contains=[str(dev), "vocabular"])


def test_train_refuses_to_overwrite_a_model(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    model = tmp_path / "m.pt"
    shutil.copy(tiny.model, model)
    before = model.read_bytes()
    cli.fails("train", tiny.train_s2s, "-o", model, *TINY, watch=tmp_path, contains=[str(model), "--force"])
    assert model.read_bytes() == before


def test_train_resume_without_a_model_file(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    cli.fails("train", tiny.train_s2s, "-o", tmp_path / "m.pt", "--resume", watch=tmp_path,
              contains=[str(tmp_path / "m.pt")])


@pytest.mark.parametrize("option", [["--lr", "0.5"], ["--hidden", "32"], ["--no-reverse"], ["--seed", "7"]],
                         ids=" ".join)
def test_train_resume_with_a_conflicting_option(cli: Cli, tiny: Tiny, tmp_path: Path, option: list[str]) -> None:
    model = tmp_path / "m.pt"
    shutil.copy(tiny.model, model)
    before = model.read_bytes()
    error = cli.fails("train", tiny.train_s2s, "-o", model, "--resume", "--epochs", "2", *option, watch=tmp_path,
                      contains=[f"error: {option[0]} ", "differs from the checkpoint's"])
    if option == ["--no-reverse"]:  # a switch is named as it is written, not as "--reverse False"
        assert "--no-reverse differs from the checkpoint's --reverse;" in error
    assert model.read_bytes() == before


def test_train_resume_on_other_data(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    model = tmp_path / "m.pt"
    shutil.copy(tiny.model, model)
    before = model.read_bytes()
    cli.fails("train", tiny.dev_s2s, "-o", model, "--resume", "--epochs", "2", watch=tmp_path,
              contains=[str(tiny.dev_s2s)])
    assert model.read_bytes() == before


@pytest.mark.parametrize("option", [
    ["--lr", "-1"], ["--lr", "0"], ["--layers", "0"], ["--hidden", "0"], ["--embedding", "0"],
    ["--batch-size", "0"], ["--epochs", "0"], ["--clip-norm", "-1"], ["--decay-factor", "2"],
    ["--valid-every", "-1"], ["--max-time", "-5"], ["--max-time", "soon"], ["--device", "tpu"],
    ["--optimizer", "rmsprop"],
], ids=" ".join)
def test_train_out_of_range_options(cli: Cli, tiny: Tiny, tmp_path: Path, option: list[str]) -> None:
    cli.fails("train", tiny.train_s2s, "-o", tmp_path / "m.pt", *TINY, *option, watch=tmp_path,
              contains=[option[0]])


@pytest.mark.parametrize(("options", "optimizer", "lr"), [
    ([], "sgd", 0.7), (["--optimizer", "adam"], "adam", 0.001), (["--optimizer", "adam", "--lr", "0.002"], "adam", 0.002),
])
def test_train_learning_rate_default_follows_the_optimizer(cli: Cli, tiny: Tiny, tmp_path: Path, options: list[str],
                                                          optimizer: str, lr: float) -> None:
    model = tmp_path / "m.pt"
    cli("train", tiny.train_s2s, "-o", model, *TINY, *options)
    cfg = checkpoint.load(model).train_config
    assert (cfg.optimizer, cfg.lr) == (optimizer, lr)


def test_train_output_in_missing_directory(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    cli.fails("train", tiny.train_s2s, "-o", tmp_path / "missing" / "m.pt", *TINY, watch=tmp_path,
              contains=["missing"])
    cli.fails("train", tiny.train_s2s, "-o", tmp_path / "m.pt", "--log", tmp_path / "missing" / "log", *TINY,
              watch=tmp_path, contains=["missing"])
    cli.fails("train", tiny.train_s2s, "-o", tmp_path, *TINY, watch=tmp_path, contains=["directory"])


def test_train_on_an_empty_prepared_file(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    blank = write_lines(tmp_path / "blank.txt", ["", ""])
    empty = tmp_path / "empty.s2s"
    cli("prepare", "--src-vocab", tiny.vocab_en, "--tgt-vocab", tiny.vocab_fr, blank, blank, "-o", empty)
    cli.fails("train", empty, "-o", tmp_path / "m.pt", *TINY, watch=tmp_path, contains=[str(empty)])


def test_train_usage_error_exits_2(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    no_output = cli.invoke(["train", tiny.train_s2s])
    assert no_output.exit_code == 2
    assert "--output" in no_output.stderr and no_output.stdout == ""
    not_a_number = cli.invoke(["train", tiny.train_s2s, "-o", tmp_path / "m.pt", "--layers", "two"])
    assert not_a_number.exit_code == 2
    assert "--layers" in not_a_number.stderr
    assert list(tmp_path.iterdir()) == []


def test_train_bf16_and_resume_may_change_precision(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    model = tmp_path / "m.pt"
    cli("train", tiny.train_s2s, "-o", model, *tiny_options(), "--precision", "bf16")
    assert checkpoint.load(model).train_config.precision == "bf16"
    cli("train", tiny.train_s2s, "-o", model, "--resume", "--epochs", "2", "--precision", "fp32")
    assert checkpoint.load(model).train_config.precision == "fp32"
    cli.fails("train", tiny.train_s2s, "-o", tmp_path / "x.pt", *tiny_options(), "--precision", "fp16",
              contains=["--precision"])


def test_keep_last_then_average(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    model = tmp_path / "m.pt"
    cli("train", tiny.train_s2s, "-o", model, *tiny_options(epochs=3), "--valid-every", "2", "--keep-last", "3")
    steps = sorted(tmp_path.glob("m.step*.pt"))
    assert len(steps) == 3
    avg = tmp_path / "avg.pt"
    result = cli("average", "-o", avg, *steps)
    assert "3 models averaged" in result.stderr and result.stdout == ""
    weights = [checkpoint.load(p).weights for p in steps]
    got = checkpoint.load(avg)
    assert got.train_state is None
    for key, value in got.weights.items():
        expected = sum(w[key].double() for w in weights) / 3
        assert torch.allclose(value.double(), expected, atol=1e-6)
    out = cli("translate", "-m", avg, tiny.dev_en).stdout
    assert len(out.splitlines()) == len(tiny.dev_en.read_text().splitlines())
    cli.fails("average", "-o", avg, *steps, contains=["exists"])
    cli.fails("train", tiny.train_s2s, "-o", avg, "--resume", contains=["no training state"])


def test_patience_needs_valid_and_writes_best(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    cli.fails("train", tiny.train_s2s, "-o", tmp_path / "m.pt", *tiny_options(), "--patience", "2",
              contains=["--patience needs --valid"])
    model = tmp_path / "p.pt"
    result = cli("train", tiny.train_s2s, "--valid", tiny.dev_s2s, "-o", model, *tiny_options(epochs=2),
                 "--valid-every", "2", "--patience", "5")
    assert (tmp_path / "p.best.pt").exists()
    assert "model saved to" in result.stderr
