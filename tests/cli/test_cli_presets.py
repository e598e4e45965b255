"""Presets on the command line (vocab, train, translate), --precision auto, the first progress line's
estimate, and --valid-bleu: its figures are what ``s2s score`` gives for the same translations."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import torch

from clitools import TINY, Cli, Tiny, write_lines
from s2scli import checkpoint
from s2scli.data import PreparedData
from s2scli.machine import resolve_precision
from s2scli.watch import pick_sample

ROOT = Path(__file__).resolve().parents[2]
# The tiny model's shape, typed over --preset small's: explicit options win.
SHAPE = ["--layers", "1", "--hidden", "16", "--embedding", "8", "--batch-size", "8", "--device", "cpu"]


def test_train_preset_records_every_resolved_value_and_explicit_options_win(cli: Cli, tiny: Tiny,
                                                                            tmp_path: Path) -> None:
    model = tmp_path / "m.pt"
    result = cli("train", "--preset", "small", tiny.train_s2s, "--valid", tiny.dev_s2s, "-o", model, *SHAPE,
                 "--max-time", "1", "--valid-every", "3")
    ckpt = checkpoint.load(model)
    m, t = ckpt.model_config, ckpt.train_config
    assert (m.layers, m.hidden, m.embedding) == (1, 16, 8)
    assert m.attention == "general"  # from the preset
    assert (t.preset, t.schedule, t.decay_start, t.decay_every, t.valid_bleu) == ("small", "time", 0.6, 0.1, 200)
    assert t.max_time == 1.0 and t.batch_size == 8  # given, over the preset's 30m and 64
    assert t.precision == resolve_precision("auto", torch.device("cpu"))[0]  # recorded as run, never "auto"
    first = result.stderr.splitlines()[0]
    assert f"precision {t.precision} (auto: the CPU has" in first and "preset small" in first


def test_translate_decodes_with_the_models_preset_unless_told_otherwise(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    model = tmp_path / "m.pt"
    cli("train", "--preset", "small", tiny.train_s2s, "-o", model, *SHAPE, "--max-time", "1")
    used = cli("translate", "-m", model, tiny.dev_en)
    assert re.search(r"beam 5, 1 model\(s\), preset small \(the model's\)$", used.stderr.strip()), used.stderr
    overridden = cli("translate", "-m", model, "--beam", "2", tiny.dev_en)
    assert "beam 2, 1 model(s), preset small" in overridden.stderr
    paper = cli("translate", "-m", model, "--preset", "paper", tiny.dev_en)
    assert "beam 12, 1 model(s), preset paper" in paper.stderr
    plain = cli("translate", "-m", tiny.model, tiny.dev_en)  # trained without a preset: the defaults
    assert "beam 12, 1 model(s)" in plain.stderr and "preset" not in plain.stderr


def test_vocab_presets(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    with gzip.open(ROOT / "examples" / "bible" / "dev.en.gz", "rt", encoding="utf-8") as f:
        text = write_lines(tmp_path / "dev.en", f.read().splitlines())
    small = cli("vocab", "--preset", "small", "--size", "400", text)
    assert "400 sentencepiece bpe pieces" in small.stderr  # the preset's subwords, the size given
    words = cli("vocab", "--preset", "small", "--subword", "none", "--tokenizer", "none", tiny.train_en)
    assert "tokenizer none" in words.stderr and "sentencepiece" not in words.stderr
    capped = cli("vocab", "--preset", "paper-small", text)
    assert "tokenizer moses" in capped.stderr
    cli.fails("vocab", "--preset", "huge", text, contains=["unknown preset 'huge'", "small"])


def test_train_and_translate_refuse_an_unknown_preset(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    cli.fails("train", "--preset", "fast", tiny.train_s2s, "-o", tmp_path / "m.pt", *TINY, watch=tmp_path,
              contains=["--preset: unknown preset 'fast'"])
    cli.fails("translate", "-m", tiny.model, "--preset", "fast", tiny.dev_en, contains=["unknown preset"])


def test_resume_refuses_another_preset(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    model = tmp_path / "m.pt"
    cli("train", tiny.train_s2s, "-o", model, *TINY)
    cli.fails("train", tiny.train_s2s, "-o", model, "--resume", "--preset", "small",
              contains=["--preset small differs from the checkpoint's none"])


def test_the_first_progress_line_estimates_the_run(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    result = cli("train", tiny.train_s2s, "-o", tmp_path / "m.pt", *TINY[:-8], "--epochs", "8",
                 "--batch-size", "8", "--device", "cpu")  # 40 steps: the estimate comes at step 30
    lines = [line for line in result.stderr.splitlines() if "target tokens/s on cpu" in line]
    assert len(lines) == 1, result.stderr
    assert re.search(r"about [\d.]+ (s|min|h) an epoch, [\d.]+ (s|min|h) for 8 epochs", lines[0]), lines[0]
    assert not lines[0].startswith("s2s train: warning")  # a tiny model is not slow


def test_valid_bleu_equals_s2s_score_on_the_same_translations(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    model, log = tmp_path / "m.pt", tmp_path / "log.jsonl"
    result = cli("train", tiny.train_s2s, "--valid", tiny.dev_s2s, "-o", model, "--log", log, *TINY[:-8],
                 "--epochs", "6", "--batch-size", "8", "--device", "cpu", "--valid-bleu", "6", "--valid-examples", "2")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    last = records[-1]  # the last validation saw the model that was saved
    assert last["valid_bleu_sentences"] == 6 and last["valid_bleu_s"] >= 0
    assert result.stderr.count("example 1 source:") == len(records)
    assert "example 2 output:" in result.stderr and "example 3" not in result.stderr
    with open(tiny.dev_s2s, "rb") as f:
        sample = pick_sample(PreparedData(f, str(tiny.dev_s2s)), 6)
    src = write_lines(tmp_path / "sample.en", sample.source_text)
    ref = write_lines(tmp_path / "sample.fr", sample.references)
    hyp = tmp_path / "sample.hyp"
    cli("translate", "-m", model, "--beam", "1", src, "-o", hyp)
    scored = json.loads(cli("score", "--ref", ref, "--metrics", "bleu,chrf", "--json", "-w", "4", hyp).stdout)
    by_name = {s["name"]: s["score"] for s in scored}
    assert by_name["BLEU"] > 0 or by_name["chrF2"] > 0  # a comparison of two zeros would prove little
    assert abs(by_name["BLEU"] - last["valid_bleu"]) < 0.0051  # the log keeps two decimals
    assert abs(by_name["chrF2"] - last["valid_chrf"]) < 0.0051
