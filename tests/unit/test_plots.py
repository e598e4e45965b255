"""plots.py: reading 'train --log' files, and what the curves and PCA figures show."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from s2scli.errors import S2SError
from s2scli.figures import figure_summary
from s2scli.plots import LogRecord, format_point, plot_curves, plot_points, plot_runs, read_log, time_unit


def record(step: int, valid: bool = True, **changes: Any) -> str:
    obj = {"step": step, "epoch": step / 100, "lr": 0.7, "train_loss": 5.0, "train_ppl": 150.0 - step,
           "tokens_per_s": 1000.0, "elapsed_s": 1.5 * step}
    if valid:
        obj.update(valid_loss=4.0, valid_ppl=100.0 - step / 2)
    obj.update(changes)
    return json.dumps({k: v for k, v in obj.items() if v is not None})


def test_read_log_records() -> None:
    lines = [record(10), record(20, valid=False), "", record(30, lr=0.35)]
    records = read_log(lines, "log")
    assert [r.step for r in records] == [10, 20, 30]
    assert records[0] == LogRecord(10, 15.0, 0.7, 140.0, 95.0)
    assert records[1].valid_ppl is None and records[2].lr == 0.35


def test_a_step_going_back_drops_the_records_it_replaces() -> None:
    warnings: list[str] = []
    records = read_log([record(10), record(20), record(30), record(20), record(40)], "log", warnings.append)
    assert [r.step for r in records] == [10, 20, 40]
    assert len(warnings) == 1 and warnings[0].startswith("log:4: step 20 is not after step 30")


@pytest.mark.parametrize("line,message", [
    ('{"step": 1,', "log:2: not JSON"),
    ("[1, 2]", "log:2: a JSON list, expected an object"),
    (record(20, lr=None), "log:2: no 'lr'"),
    (json.dumps({"a": 1}), "log:2: no 'step', 'elapsed_s', 'lr', 'train_ppl'"),
    (record(20, train_ppl="12"), "log:2: 'train_ppl' is \"12\", expected a number"),
    (record(20, valid_ppl=True), "log:2: 'valid_ppl' is true, expected a number"),
])
def test_read_log_errors_name_the_line(line: str, message: str) -> None:
    with pytest.raises(S2SError, match=message.replace("[", r"\[")):
        read_log([record(10), line], "log")


def test_read_log_needs_records() -> None:
    with pytest.raises(S2SError, match="^log: no records"):
        read_log(["", "  "], "log")


def test_time_unit() -> None:
    assert time_unit(600) == ("minutes", 60.0)
    assert time_unit(5 * 3600) == ("hours", 3600.0)


def test_curves_figure_shows_every_record() -> None:
    records = read_log([record(s, valid=s % 20 == 0) for s in range(10, 110, 10)], "log")
    out = io.BytesIO()
    summary = plot_curves(records, out)
    assert out.getvalue().startswith(b"\x89PNG\r\n\x1a\n")
    assert figure_summary(out.getvalue()) == summary
    by_step, by_time, lr = summary["axes"]
    assert (by_step["xlabel"], by_step["ylabel"]) == ("step", "perplexity")
    assert (by_time["xlabel"], by_time["ylabel"]) == ("elapsed time (minutes)", "perplexity")
    assert lr["ylabel"] == "learning rate"
    for ax in (by_step, by_time):
        assert {s["label"]: s["points"] for s in ax["series"]} == {"train": 10, "validation": 5}
    assert lr["series"] == [{"label": "learning rate", "points": 10}]


def test_curves_without_validation() -> None:
    out = io.BytesIO()
    summary = plot_curves(read_log([record(1, valid=False)], "log"), out, title="run 1")
    assert [s["label"] for s in summary["axes"][0]["series"]] == ["train"]


def test_pca_figure_labels_every_point() -> None:
    coords = [(0.0, 0.0), (1.0, 0.5), (1.0, 0.5), (-2.0, 1.0)]  # two on the same spot
    labels = ["John admires Mary", "Mary admires John", "same place", "far away"]
    out = io.BytesIO()
    summary = plot_points(coords, labels, (0.75, 0.2), out)
    assert figure_summary(out.getvalue()) == summary
    (ax,) = summary["axes"]
    assert ax["xlabel"] == "first principal component (75.0% of variance)"
    assert ax["ylabel"] == "second principal component (20.0% of variance)"
    assert ax["series"] == [{"label": "sentences", "points": 4}]
    assert ax["texts"] == 4


def test_format_point() -> None:
    assert format_point(0.5, -1.25e-7, "a\tb") == "0.5\t-1.25e-07\ta b"


def test_curves_add_a_panel_for_validation_bleu_and_chrf() -> None:
    """A log from 'train --valid-bleu' gets a third panel: BLEU and chrF against the step."""
    lines = [record(s, valid_bleu=s / 10, valid_chrf=s / 5) if s % 20 == 0 else record(s) for s in range(10, 110, 10)]
    records = read_log(lines, "log")
    assert records[1].valid_bleu == 2.0 and records[1].valid_chrf == 4.0 and records[0].valid_bleu is None
    out = io.BytesIO()
    summary = plot_curves(records, out)
    assert figure_summary(out.getvalue()) == summary
    scores = [ax for ax in summary["axes"] if ax["title"] == "validation BLEU and chrF (greedy)"]
    assert len(scores) == 1 and scores[0]["xlabel"] == "step"
    assert {s["label"]: s["points"] for s in scores[0]["series"]} == {"BLEU": 5, "chrF": 5}
    with pytest.raises(S2SError, match="'valid_bleu' is \"x\", expected a number"):
        read_log([record(10, valid_bleu="x")], "log")


def test_several_runs_share_one_figure() -> None:
    """plot_runs: each run's lines carry its label; a run labelled None draws as plot_curves does."""
    forward = read_log([record(s, valid=s % 20 == 0) for s in range(10, 110, 10)], "forward")
    reversed_ = read_log([record(s, valid=True) for s in range(10, 60, 10)], "reversed")
    out = io.BytesIO()
    summary = plot_runs([("forward", forward), ("reversed", reversed_)], out, title="two runs")
    assert figure_summary(out.getvalue()) == summary
    by_step, by_time, lr = summary["axes"]
    for ax in (by_step, by_time):
        assert {s["label"]: s["points"] for s in ax["series"]} == {
            "forward train": 10, "forward validation": 5, "reversed train": 5, "reversed validation": 5}
    assert {s["label"]: s["points"] for s in lr["series"]} == {"forward learning rate": 10,
                                                               "reversed learning rate": 5}
    single, alone = io.BytesIO(), io.BytesIO()
    assert plot_runs([(None, forward)], single) == plot_curves(forward, alone)
