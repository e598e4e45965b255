"""Presets (config.PRESETS) and the policy config.py owns: defaults that depend on other fields, the
three layers of resolution (defaults < preset < given), and the resume rules."""

from __future__ import annotations

import pytest

from s2scli.config import (
    ADAM_LR, PRESETS, TIME_DECAY_EVERY, TIME_DECAY_START, DecodeConfig, ModelConfig, TrainConfig, VocabConfig,
    check_train_config, get_preset, resolve, resume_configs, train_configs,
)
from s2scli.errors import S2SError


def test_paper_preset_is_exactly_the_defaults() -> None:
    paper = PRESETS["paper"]
    assert not (paper.vocab or paper.model or paper.train or paper.decode)
    assert resolve(TrainConfig, paper.train, {}) == TrainConfig()
    assert resolve(ModelConfig, paper.model, {}, src_vocab_size=9, tgt_vocab_size=7) == ModelConfig(9, 7)
    assert resolve(DecodeConfig, paper.decode, {}) == DecodeConfig()
    cfg = TrainConfig()  # the paper's recipe [3.4]
    assert (cfg.lr, cfg.decay_start, cfg.decay_every, cfg.epochs, cfg.batch_size) == (0.7, 5.0, 0.5, 7.5, 128)
    assert (ModelConfig(9, 7).layers, ModelConfig(9, 7).hidden, DecodeConfig().beam) == (4, 1000, 12)


def test_small_preset_resolves_to_its_documented_values() -> None:
    small = PRESETS["small"]
    vocab = resolve(VocabConfig, small.vocab, {})
    model = resolve(ModelConfig, small.model, {}, src_vocab_size=9, tgt_vocab_size=7)
    train = resolve(TrainConfig, small.train, {})
    decode = resolve(DecodeConfig, small.decode, {})
    assert (vocab.subword, vocab.size) == ("bpe", 8000)
    assert (model.layers, model.hidden, model.embedding, model.attention, model.reverse) == (2, 256, 256, "general", True)
    assert model.input_feeding is False
    assert (train.batch_size, train.precision, train.schedule, train.max_time) == (64, "auto", "time", 1800.0)
    assert (train.optimizer, train.lr, train.decay_start, train.decay_every, train.valid_bleu) == ("adam", 0.002, 0.6, 0.1, 200)
    assert (decode.beam, decode.length_penalty) == (5, 1.0)
    # what --help and the man pages print is what the preset holds
    settings = small.settings()
    for text in ("--subword bpe", "--size 8000", "--layers 2", "--attention general", "--no-input-feeding",
                 "--optimizer adam", "--lr 0.002", "--precision auto",
                 "--max-time 30m", "--beam 5", "--length-penalty 1"):
        assert text in settings


def test_explicit_options_override_the_preset() -> None:
    small = PRESETS["small"]
    model = resolve(ModelConfig, small.model, {"layers": 1, "attention": "none"}, src_vocab_size=9, tgt_vocab_size=7)
    assert (model.layers, model.attention, model.hidden) == (1, "none", 256)
    train = resolve(TrainConfig, small.train, {"max_time": 60.0, "precision": "fp32"})
    assert (train.max_time, train.precision, train.batch_size) == (60.0, "fp32", 64)
    assert resolve(DecodeConfig, small.decode, {"beam": 1}).beam == 1
    # keys of other configs are ignored, so one mapping serves them all
    assert resolve(DecodeConfig, {"layers": 3}, {"hidden": 5}) == DecodeConfig()


def test_unknown_preset_names_the_known_ones() -> None:
    assert get_preset(None) is None and get_preset("") is None
    with pytest.raises(S2SError, match="unknown preset 'fast'.*paper, small, paper-small"):
        get_preset("fast")


def test_dependent_defaults_are_the_configs_own() -> None:
    """From Python as from the shell: Adam's rate, and the time schedule's decay points."""
    assert TrainConfig(optimizer="adam").lr == ADAM_LR
    assert TrainConfig(optimizer="adam", lr=0.01).lr == 0.01
    timed = TrainConfig(schedule="time", max_time=60.0)
    assert (timed.decay_start, timed.decay_every) == (TIME_DECAY_START, TIME_DECAY_EVERY)
    assert TrainConfig(schedule="time", max_time=60.0, decay_start=0.5).decay_start == 0.5


def test_resume_keeps_the_checkpoints_settings_but_run_control() -> None:
    old = (ModelConfig(9, 7, layers=2), TrainConfig(batch_size=4, epochs=2, max_time=30.0))
    new = (ModelConfig(9, 7, layers=2), TrainConfig(batch_size=4, epochs=5, valid_bleu=10))
    model, train = resume_configs(old, new, {"epochs", "valid_bleu"})
    assert model == old[0] and (train.epochs, train.valid_bleu, train.batch_size) == (5, 10, 4)
    assert train.max_time == 0.0  # --max-time limits one run: not carried over unless given
    with pytest.raises(S2SError, match="--layers 3 differs from the checkpoint's 2"):
        resume_configs(old, (ModelConfig(9, 7, layers=3), new[1]), {"layers"})
    with pytest.raises(S2SError, match="--preset small differs from the checkpoint's none"):
        resume_configs(old, (old[0], TrainConfig(preset="small")), {"preset"})


def test_resume_keeps_a_time_schedules_budget() -> None:
    old = (ModelConfig(9, 7), TrainConfig(schedule="time", max_time=1800.0))
    _, train = resume_configs(old, (ModelConfig(9, 7), TrainConfig()), set())
    assert train.max_time == 1800.0
    _, train = resume_configs(old, (ModelConfig(9, 7), TrainConfig(max_time=60.0)), {"max_time"})
    assert train.max_time == 60.0


def test_the_library_checks_as_the_shell_does() -> None:
    """config.check_train_config (which train.train calls) accepts the dependent defaults from Python and
    refuses what the shell refuses, with the same message."""
    model = ModelConfig(9, 7)
    check_train_config(model, TrainConfig(optimizer="adam"))
    check_train_config(model, TrainConfig(schedule="time", max_time=60.0))  # decay points as fractions
    with pytest.raises(S2SError, match="--schedule time needs --max-time"):
        check_train_config(model, TrainConfig(schedule="time"))
    with pytest.raises(S2SError, match="--optimizer must be one of sgd, adam"):
        check_train_config(model, TrainConfig(optimizer="rmsprop"))


def test_train_configs_lay_given_over_preset_over_defaults() -> None:
    model, train = train_configs(get_preset("small"), {"layers": 1, "max_time": 60.0}, 9, 7)
    assert (model.layers, model.hidden, model.src_vocab_size, model.tgt_vocab_size) == (1, 256, 9, 7)
    assert (train.preset, train.optimizer, train.max_time) == ("small", "adam", 60.0)
    model, train = train_configs(None, {"optimizer": "adam"}, 9, 7)
    assert model == ModelConfig(9, 7) and train == TrainConfig(optimizer="adam") and train.lr == ADAM_LR
