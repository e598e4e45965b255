"""train.py: the learning-rate schedule, option checks, the paper's SGD step, learning, exact resume, and
stopping cleanly on a NaN loss."""

from __future__ import annotations

import io
import json
import math
from dataclasses import replace
from pathlib import Path
from threading import Event
from typing import Any, Callable

import pytest
import torch

from s2scli.checkpoint import load
from s2scli.config import ModelConfig, TrainConfig, check_train_config
from s2scli.data import PreparedData, epoch_seed, make_batches
from s2scli.errors import S2SError
from s2scli.model import Seq2Seq
import s2scli.train as train_module
from s2scli.train import (NullReporter, data_fingerprint, evaluate, learning_rate, perplexity,
                          schedule_position, train)
from s2scli.vocab import SPECIALS, Vocab

# ----------------------------------------------------------------------------------------- schedule


@pytest.mark.parametrize(
    "epoch, lr",
    [
        (0.0, 0.7), (1.0, 0.7), (4.5, 0.7), (4.999, 0.7),
        (5.0, 0.35), (5.25, 0.35), (5.499, 0.35),
        (5.5, 0.175), (5.9, 0.175),
        (6.0, 0.0875), (6.5, 0.04375), (7.0, 0.021875), (7.49, 0.021875), (7.5, 0.0109375),
    ],
)
def test_learning_rate_paper_schedule(epoch: float, lr: float) -> None:
    # [3.4] lr 0.7; after 5 epochs halved every half epoch; fractional epochs in between.
    assert learning_rate(TrainConfig(), epoch) == pytest.approx(lr, rel=1e-12)


def test_learning_rate_other_settings() -> None:
    cfg = TrainConfig(lr=1.0, decay_start=2.0, decay_every=1.0, decay_factor=0.1)
    assert learning_rate(cfg, 1.99) == 1.0
    assert learning_rate(cfg, 2.0) == pytest.approx(0.1)
    assert learning_rate(cfg, 3.5) == pytest.approx(0.01)
    assert learning_rate(TrainConfig(decay_factor=1.0), 7.0) == 0.7  # factor 1: no decay
    assert learning_rate(TrainConfig(decay_start=0.0), 0.0) == pytest.approx(0.35)


def test_learning_rate_is_monotone_non_increasing() -> None:
    cfg = TrainConfig()
    rates = [learning_rate(cfg, step / 37) for step in range(0, 37 * 8)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))


def test_learning_rate_boundaries_exact_for_decimal_decay_every() -> None:
    # With --decay-every 0.1 and 10 steps an epoch, step 51 (epoch 51/10 = 5.1) must see the second
    # halving. floor((5.1 - 5.0) / 0.1) in floating point is floor(0.999...) = 0, so it comes a step late.
    cfg = TrainConfig(decay_every=0.1)
    late = [step for step in range(50, 70)
            if learning_rate(cfg, step / 10) != pytest.approx(0.7 * 0.5 ** (step - 50 + 1))]
    assert late == []


# --------------------------------------------------------------------------------------------- checks


@pytest.mark.parametrize(
    "model_changes, train_changes, option",
    [
        ({"layers": 0}, {}, "--layers"),
        ({"hidden": 0}, {}, "--hidden"),
        ({"embedding": 0}, {}, "--embedding"),
        ({"init_scale": -0.1}, {}, "--init-scale"),
        ({}, {"batch_size": 0}, "--batch-size"),
        ({}, {"lr": -0.7}, "--lr"),
        ({}, {"lr": 0.0}, "--lr"),
        ({}, {"lr": float("nan")}, "--lr"),
        ({}, {"lr": float("inf")}, "--lr"),
        ({}, {"epochs": 0}, "--epochs"),
        ({}, {"epochs": -1.5}, "--epochs"),
        ({}, {"decay_every": 0}, "--decay-every"),
        ({}, {"decay_factor": 0}, "--decay-factor"),
        ({}, {"decay_factor": 1.5}, "--decay-factor"),
        ({}, {"decay_start": -1}, "--decay-start"),
        ({}, {"clip_norm": -5}, "--clip-norm"),
        ({}, {"valid_every": -1}, "--valid-every"),
        ({}, {"max_time": -1}, "--max-time"),
        ({}, {"schedule": "steps"}, "--schedule"),
        ({}, {"schedule": "time"}, "--schedule time needs --max-time"),
        ({}, {"schedule": "time", "max_time": 60, "decay_start": 5.0}, "--decay-start as a fraction"),
    ],
)
def test_check_config_refuses_out_of_range(tiny_model_config: ModelConfig, model_changes: dict[str, Any],
                                           train_changes: dict[str, Any], option: str) -> None:
    with pytest.raises(S2SError, match=option):
        check_train_config(replace(tiny_model_config, **model_changes), TrainConfig(**train_changes))


def test_check_config_accepts_defaults_and_edges(tiny_model_config: ModelConfig) -> None:
    check_train_config(tiny_model_config, TrainConfig())
    check_train_config(replace(tiny_model_config, init_scale=0.0),
                 TrainConfig(clip_norm=0, decay_factor=1.0, decay_start=0, valid_every=0, epochs=0.01))


def test_perplexity() -> None:
    assert perplexity(0.0, 10) == 1.0
    assert perplexity(10 * math.log(7.0), 10) == pytest.approx(7.0)
    assert math.isfinite(perplexity(1e9, 1))  # capped, never overflows
    assert perplexity(0.0, 0) == 1.0


# ------------------------------------------------------------------------------------------ training


@pytest.fixture
def small_config(tiny_model_config: ModelConfig) -> ModelConfig:
    return replace(tiny_model_config, layers=1, hidden=16, embedding=8)


class StepRecorder(NullReporter):
    """Records each step's stats; sets ``stop`` after step ``stop_at``."""

    def __init__(self, stop: Event | None = None, stop_at: int = -1) -> None:
        self.updates: list[tuple[int, dict[str, float]]] = []
        self.messages: list[str] = []
        self.stop, self.stop_at = stop, stop_at
        self.started: tuple[int, int] | None = None
        self.closed = False

    def start(self, total_steps: int, step: int) -> None:
        self.started = (total_steps, step)

    def update(self, step: int, stats: dict[str, float]) -> None:
        self.updates.append((step, stats))
        if self.stop is not None and step == self.stop_at:
            self.stop.set()

    def message(self, text: str) -> None:
        self.messages.append(text)

    def close(self) -> None:
        self.closed = True


def weights_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_training_lowers_validation_perplexity(tiny_prepared: Callable[..., PreparedData], small_config: ModelConfig,
                                              tmp_path: Path) -> None:
    data = tiny_prepared(96, seed=1)
    valid = tiny_prepared(24, seed=2, name="valid.s2s")
    cfg = TrainConfig(batch_size=8, epochs=4, lr=0.7, seed=3)
    torch.manual_seed(cfg.seed)
    untrained = Seq2Seq(small_config)
    before = perplexity(*evaluate(untrained, valid, 8, torch.device("cpu")))
    log = io.StringIO()
    reporter = StepRecorder()
    result = train(data, valid, small_config, cfg, tmp_path / "m.pt", log=log, reporter=reporter)
    assert result.status == "finished"
    assert result.step == 48 and result.epoch == pytest.approx(4.0)
    assert result.valid_ppl is not None
    assert result.valid_ppl < 0.7 * before
    records = [json.loads(line) for line in log.getvalue().splitlines()]
    assert records == result.history
    assert [r["step"] for r in records] == list(range(6, 49, 6))  # every half epoch (12 steps an epoch)
    assert records[0]["valid_ppl"] == pytest.approx(before, rel=0.3)  # after 6 steps, about where it began
    assert records[-1]["valid_ppl"] == result.valid_ppl
    for key in ("epoch", "lr", "train_loss", "train_ppl", "tokens_per_s", "elapsed_s", "valid_loss"):
        assert key in records[0]
    # the opening summary, one estimate of the run's time (after 30 steps), then one per validation
    estimates = [m for m in reporter.messages if "target tokens/s on cpu: about" in m]
    assert len(estimates) == 1
    assert len(reporter.messages) == len(records) + 2
    assert " pairs, vocabularies " in reporter.messages[0] and "parameters" in reporter.messages[0]
    assert reporter.messages[-1].startswith("step 48 epoch 4.00: train ppl ")
    assert f"valid ppl {result.valid_ppl:.2f}" in reporter.messages[-1]
    ckpt = load(tmp_path / "m.pt")
    assert ckpt.train_state is not None and ckpt.train_state["step"] == 48
    assert ckpt.model_config == small_config and ckpt.train_config == cfg
    assert ckpt.src_vocab == data.src_vocab and ckpt.tgt_vocab == data.tgt_vocab


def test_sgd_step_is_the_papers_recipe(tiny_prepared: Callable[..., PreparedData], small_config: ModelConfig,
                                       tmp_path: Path) -> None:
    # One step: gradient of the summed NLL divided by the batch size, rescaled to clip_norm when larger,
    # then plain SGD (no momentum, no weight decay).
    data = tiny_prepared(8, seed=4)
    for clip in (0.05, 0.0):
        cfg = TrainConfig(batch_size=8, epochs=1, lr=0.7, clip_norm=clip, seed=5)
        train(data, None, small_config, cfg, tmp_path / "one.pt")
        got = load(tmp_path / "one.pt").weights

        torch.manual_seed(cfg.seed)
        model = Seq2Seq(small_config).train()
        (indices,) = make_batches(data.src_lens, data.tgt_lens, 8, epoch_seed(cfg.seed, 0))
        batch = data.batch(indices)
        (model(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out) / 8).backward()
        grads = [p.grad for p in model.parameters()]
        norm = torch.sqrt(sum((g**2).sum() for g in grads))
        scale = min(1.0, clip / float(norm)) if clip else 1.0
        if clip:
            assert scale < 1.0  # the test really exercises clipping
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.7 * scale * p.grad
        for k, v in model.state_dict().items():
            torch.testing.assert_close(got[k], v, rtol=1e-4, atol=1e-6)


def test_learning_rate_used_at_each_step(tiny_prepared: Callable[..., PreparedData], small_config: ModelConfig,
                                         tmp_path: Path) -> None:
    data = tiny_prepared(16)
    cfg = TrainConfig(batch_size=4, epochs=3, lr=0.5, decay_start=1.0, decay_every=0.5, seed=1)
    reporter = StepRecorder()
    result = train(data, None, small_config, cfg, tmp_path / "m.pt", reporter=reporter)
    assert result.step == 12
    assert reporter.started == (12, 0) and reporter.closed
    lrs = [stats["lr"] for _, stats in reporter.updates]
    assert lrs == pytest.approx([0.5] * 4 + [0.25] * 2 + [0.125] * 2 + [0.0625] * 2 + [0.03125] * 2)
    assert [s for s, _ in reporter.updates] == list(range(1, 13))
    assert all(math.isfinite(stats["loss"]) and stats["loss"] > 0 for _, stats in reporter.updates)


def test_fractional_epochs_give_whole_steps(tiny_prepared: Callable[..., PreparedData], small_config: ModelConfig,
                                            tmp_path: Path) -> None:
    data = tiny_prepared(16)  # 4 steps an epoch at batch size 4
    result = train(data, None, small_config, TrainConfig(batch_size=4, epochs=1.3), tmp_path / "m.pt")
    assert result.step == 6  # ceil(1.3 * 4)
    assert result.epoch == pytest.approx(1.5)


@pytest.mark.parametrize("stop_at", [3, 4, 11])
def test_resume_is_bit_exact(tiny_prepared: Callable[..., PreparedData], small_config: ModelConfig, tmp_path: Path,
                             stop_at: int) -> None:
    data = tiny_prepared(40, seed=6)  # 5 steps an epoch at batch size 8
    valid = tiny_prepared(8, seed=7, name="valid.s2s")
    cfg = TrainConfig(batch_size=8, epochs=3, lr=0.7, decay_start=1.0, decay_every=0.5, seed=9)

    whole = train(data, valid, small_config, cfg, tmp_path / "whole.pt")
    assert whole.status == "finished" and whole.step == 15

    stop = Event()
    first = train(data, valid, small_config, cfg, tmp_path / "part.pt", stop=stop,
                  reporter=StepRecorder(stop, stop_at))
    assert first.status == "interrupted" and first.step == stop_at
    partial = load(tmp_path / "part.pt")
    assert partial.train_state is not None and partial.train_state["step"] == stop_at

    rest = train(data, valid, small_config, cfg, tmp_path / "part.pt", resume=partial)
    assert rest.status == "finished" and rest.step == 15
    assert weights_equal(load(tmp_path / "whole.pt").weights, load(tmp_path / "part.pt").weights)
    assert rest.valid_ppl == whole.valid_ppl


def test_resume_with_more_epochs_is_bit_exact(tiny_prepared: Callable[..., PreparedData], small_config: ModelConfig,
                                              tmp_path: Path) -> None:
    # Train 1.4 epochs (fractional), then resume the same file with --epochs 2.5.
    data = tiny_prepared(40, seed=6)
    cfg = TrainConfig(batch_size=8, epochs=2.5, seed=2)
    whole = train(data, None, small_config, cfg, tmp_path / "whole.pt")
    short = train(data, None, small_config, replace(cfg, epochs=1.4), tmp_path / "part.pt")
    assert short.status == "finished" and short.step == 7
    rest = train(data, None, small_config, cfg, tmp_path / "part.pt", resume=load(tmp_path / "part.pt"))
    assert rest.step == whole.step == 13
    assert weights_equal(load(tmp_path / "whole.pt").weights, load(tmp_path / "part.pt").weights)


def test_interrupt_saves_a_resumable_checkpoint_without_validation(tiny_prepared: Callable[..., PreparedData],
                                                                   small_config: ModelConfig, tmp_path: Path) -> None:
    data = tiny_prepared(40)
    stop = Event()
    stop.set()  # already set: stop after the first step
    result = train(data, None, small_config, TrainConfig(batch_size=8, epochs=2), tmp_path / "m.pt", stop=stop)
    assert result.status == "interrupted" and result.step == 1
    assert result.history == []
    assert load(tmp_path / "m.pt").train_state["step"] == 1  # type: ignore[index]


def test_schedule_position_counts_epochs_or_the_budget_spent() -> None:
    assert schedule_position(TrainConfig(), 2.5, 1000.0) == 2.5
    timed = TrainConfig(schedule="time", max_time=200.0, decay_start=0.5, decay_every=0.25, lr=1.0)
    assert schedule_position(timed, 2.5, 50.0) == 0.25
    assert [learning_rate(timed, schedule_position(timed, 0.0, t)) for t in (0, 99, 100, 149, 150, 199)] == \
        pytest.approx([1.0, 1.0, 0.5, 0.5, 0.25, 0.25])


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """A clock for train.py that stands still except that every training step takes 10 seconds."""
    now = [1000.0]
    real_step = train_module.forward_backward

    def slow_step(*args: Any, **kwargs: Any) -> Any:
        out = real_step(*args, **kwargs)
        now[0] += 10.0
        return out

    monkeypatch.setattr(train_module.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(train_module, "forward_backward", slow_step)
    return now


# 10 s a step, budget 100 s, decays from half of it every fifth: step j runs at the clock of step j-1.
TIMED = TrainConfig(batch_size=8, epochs=100, lr=1.0, schedule="time", max_time=100.0, decay_start=0.5,
                    decay_every=0.2, seed=3)
TIMED_LRS = [1.0] * 5 + [0.5] * 2 + [0.25] * 2 + [0.125]


def test_time_schedule_follows_the_clock_and_stops_at_the_budget(
        tiny_prepared: Callable[..., PreparedData], small_config: ModelConfig, tmp_path: Path,
        fake_clock: list[float]) -> None:
    reporter = StepRecorder()
    result = train(tiny_prepared(40), None, small_config, TIMED, tmp_path / "m.pt", reporter=reporter)
    assert result.status == "time limit" and result.step == 10  # 2 epochs of 5 steps; --epochs 100 is far
    assert [stats["lr"] for _, stats in reporter.updates] == pytest.approx(TIMED_LRS)


def test_time_schedule_resumes_where_the_clock_stopped(
        tiny_prepared: Callable[..., PreparedData], small_config: ModelConfig, tmp_path: Path,
        fake_clock: list[float]) -> None:
    data = tiny_prepared(40)
    stop = Event()
    first = train(data, None, small_config, TIMED, tmp_path / "m.pt", stop=stop, reporter=StepRecorder(stop, 4))
    assert first.status == "interrupted" and first.step == 4
    fake_clock[0] += 3600.0  # time between the runs does not count
    reporter = StepRecorder()
    rest = train(data, None, small_config, TIMED, tmp_path / "m.pt", resume=load(tmp_path / "m.pt"),
                 reporter=reporter)
    assert rest.status == "time limit" and rest.step == 10
    assert [stats["lr"] for _, stats in reporter.updates] == pytest.approx(TIMED_LRS[4:])


def test_time_limit_stops_cleanly(tiny_prepared: Callable[..., PreparedData], small_config: ModelConfig,
                                  tmp_path: Path) -> None:
    data = tiny_prepared(40)
    result = train(data, None, small_config, TrainConfig(batch_size=8, epochs=2, max_time=1e-9), tmp_path / "m.pt")
    assert result.status == "time limit" and result.step == 1
    assert load(tmp_path / "m.pt").train_state["step"] == 1  # type: ignore[index]


def test_nan_loss_stops_naming_the_step_and_keeps_last_checkpoint(
        tiny_prepared: Callable[..., PreparedData], small_config: ModelConfig, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = tiny_prepared(40, seed=3)
    cfg = TrainConfig(batch_size=8, epochs=2, valid_every=1, seed=4)
    train(data, None, small_config, replace(cfg, epochs=2 / 5), tmp_path / "two.pt")  # exactly 2 steps

    original = Seq2Seq.forward
    calls = {"n": 0}

    def poisoned(self: Seq2Seq, *args: Any) -> torch.Tensor:
        out = original(self, *args)
        if self.training:
            calls["n"] += 1
            if calls["n"] == 3:
                return out * float("nan")
        return out

    monkeypatch.setattr(Seq2Seq, "forward", poisoned)
    path = tmp_path / "m.pt"
    with pytest.raises(S2SError) as exc:
        train(data, None, small_config, cfg, path)
    msg = str(exc.value)
    assert "loss became nan at step 3" in msg
    assert f"{path} (step 2) is intact" in msg
    ckpt = load(path)
    assert ckpt.train_state is not None and ckpt.train_state["step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt.weights.values())
    assert weights_equal(ckpt.weights, load(tmp_path / "two.pt").weights)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "train.s2s", "two.pt"]


def test_non_finite_gradient_before_any_checkpoint(tiny_prepared: Callable[..., PreparedData],
                                                   small_config: ModelConfig, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    data = tiny_prepared(16)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda params, max_norm: torch.tensor(float("inf")))
    with pytest.raises(S2SError, match=r"gradient norm became inf at step 1; .*no checkpoint had been written"):
        train(data, None, small_config, TrainConfig(batch_size=4), tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()


def test_train_refuses_empty_data(tmp_path: Path, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab,
                                  write_prepared: Callable[..., Path], small_config: ModelConfig) -> None:
    path = write_prepared(tmp_path / "empty.s2s", [], tiny_src_vocab, tiny_tgt_vocab)
    with open(path, "rb") as f:
        data = PreparedData(f, str(path))
    with pytest.raises(S2SError, match=r"empty\.s2s: no sentence pairs"):
        train(data, None, small_config, TrainConfig(), tmp_path / "m.pt")


def test_train_refuses_bad_config_before_work(tiny_prepared: Callable[..., PreparedData], small_config: ModelConfig,
                                              tmp_path: Path) -> None:
    with pytest.raises(S2SError, match="--lr"):
        train(tiny_prepared(8), None, small_config, TrainConfig(lr=-1), tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()


def test_train_refuses_validation_data_with_other_vocabulary(
        tiny_prepared: Callable[..., PreparedData], small_config: ModelConfig, tmp_path: Path,
        tiny_src_vocab: Vocab, write_prepared: Callable[..., Path]) -> None:
    other_tgt = Vocab(list(SPECIALS) + ["p", "q", "r", "s", "t", "o"], "none", "fr")
    path = write_prepared(tmp_path / "valid.s2s", [([4], [4])], tiny_src_vocab, other_tgt)
    with open(path, "rb") as f:
        valid = PreparedData(f, str(path))
    with pytest.raises(S2SError, match=r"valid\.s2s and .*train\.s2s were prepared with different target"):
        train(tiny_prepared(8), valid, small_config, TrainConfig(), tmp_path / "m.pt")


def test_resume_refuses_other_data_or_missing_state(tiny_prepared: Callable[..., PreparedData],
                                                    small_config: ModelConfig, tmp_path: Path) -> None:
    cfg = TrainConfig(batch_size=8, epochs=1)
    data = tiny_prepared(16, seed=1)
    train(data, None, small_config, cfg, tmp_path / "m.pt")
    ckpt = load(tmp_path / "m.pt")
    other = tiny_prepared(24, seed=2, name="other.s2s")
    with pytest.raises(S2SError, match=r"other\.s2s is not the data .*m\.pt was trained on"):
        train(other, None, small_config, cfg, tmp_path / "m.pt", resume=ckpt)
    with pytest.raises(S2SError, match="no training state"):
        train(data, None, small_config, cfg, tmp_path / "m.pt", resume=replace(ckpt, train_state=None))


def test_data_fingerprint(tiny_prepared: Callable[..., PreparedData]) -> None:
    a, b = tiny_prepared(16, seed=1), tiny_prepared(16, seed=1, name="b.s2s")
    c = tiny_prepared(17, seed=1, name="c.s2s")
    assert data_fingerprint(a) == data_fingerprint(b)
    assert data_fingerprint(a) != data_fingerprint(c)
    assert data_fingerprint(a)["pairs"] == 16


def test_evaluate_restores_training_mode(tiny_prepared: Callable[..., PreparedData], small_config: ModelConfig) -> None:
    data = tiny_prepared(10)
    model = Seq2Seq(small_config).train()
    nll, tokens = evaluate(model, data, 3, torch.device("cpu"))
    assert model.training
    assert tokens == data.n_target_tokens()
    batch = data.batch(list(range(10)))
    with torch.no_grad():
        torch.testing.assert_close(torch.tensor(nll), model(batch.src, batch.src_lengths, batch.tgt_in,
                                                            batch.tgt_out), rtol=1e-5, atol=1e-4)


def test_bf16_step_is_close_to_fp32(tiny_prepared: Callable[..., PreparedData], small_config: ModelConfig) -> None:
    from s2scli.train import forward_backward

    data = tiny_prepared(16, seed=9)
    batch = data.batch(list(range(16)))
    grads = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = Seq2Seq(small_config).train()
        nll, norm = forward_backward(model, model, batch, 1 / 16, 0.0, precision)
        assert nll.dtype == torch.float32 and math.isfinite(float(nll))
        assert all(p.grad.dtype == torch.float32 for p in model.parameters())
        grads[precision] = (float(nll), torch.cat([p.grad.flatten() for p in model.parameters()]))
    (nll32, g32), (nll16, g16) = grads["fp32"], grads["bf16"]
    assert nll16 == pytest.approx(nll32, rel=0.02)
    assert torch.nn.functional.cosine_similarity(g32, g16, dim=0) > 0.98


def test_bf16_training_run_and_bad_precision(tiny_prepared: Callable[..., PreparedData], small_config: ModelConfig,
                                             tmp_path: Path) -> None:
    data = tiny_prepared(16)
    result = train(data, data, small_config, TrainConfig(batch_size=4, epochs=2, precision="bf16"), tmp_path / "m.pt")
    assert result.status == "finished" and math.isfinite(result.valid_ppl)
    assert load(tmp_path / "m.pt").train_config.precision == "bf16"
    with pytest.raises(S2SError, match="--precision"):
        check_train_config(small_config, TrainConfig(precision="fp16"))


def test_patience_stops_early_and_keeps_the_best_model(tiny_prepared: Callable[..., PreparedData],
                                                       small_config: ModelConfig, tmp_path: Path) -> None:
    from s2scli.train import best_path

    data, valid = tiny_prepared(32, seed=1), tiny_prepared(8, seed=2, name="valid.s2s")
    # A learning rate far too high: validation perplexity soon stops improving.
    cfg = TrainConfig(batch_size=4, epochs=50, lr=20.0, clip_norm=0, valid_every=2, patience=2, seed=3)
    out = tmp_path / "m.pt"
    result = train(data, valid, small_config, cfg, out)
    assert result.status == "early stop" and result.step < 50 * 8
    ppls = [r["valid_ppl"] for r in result.history]
    best = min(ppls)
    assert ppls.index(best) == len(ppls) - 3  # the best, then exactly `patience` worse validations
    assert best_path(out) == tmp_path / "m.best.pt"
    best_ckpt, last = load(tmp_path / "m.best.pt"), load(out)
    assert best_ckpt.train_state["step"] == result.history[ppls.index(best)]["step"]
    assert last.train_state["step"] == result.step and last.train_state["best_valid_ppl"] == best
    nll, tokens = evaluate(best_ckpt.build_model(), valid, 4, torch.device("cpu"))
    assert perplexity(nll, tokens) == pytest.approx(best, rel=1e-5)


def test_patience_needs_validation_data(tiny_prepared: Callable[..., PreparedData], small_config: ModelConfig,
                                        tmp_path: Path) -> None:
    with pytest.raises(S2SError, match="--patience needs --valid"):
        train(tiny_prepared(8), None, small_config, TrainConfig(batch_size=4, patience=1), tmp_path / "m.pt")


def test_keep_last_keeps_the_newest_step_files(tiny_prepared: Callable[..., PreparedData],
                                               small_config: ModelConfig, tmp_path: Path) -> None:
    data = tiny_prepared(16)
    out = tmp_path / "m.pt"
    train(data, None, small_config, TrainConfig(batch_size=4, epochs=3, valid_every=2, keep_last=2), out)
    kept = sorted(p.name for p in tmp_path.glob("m.step*.pt"))
    assert kept == ["m.step00000010.pt", "m.step00000012.pt"]
    assert load(tmp_path / kept[-1]).weights.keys() == load(out).weights.keys()
    assert all(torch.equal(v, load(out).weights[k]) for k, v in load(tmp_path / kept[-1]).weights.items())
    assert not list(tmp_path.glob(".*tmp"))


def test_adam_is_used_saved_and_resumed_bit_exactly(tiny_prepared: Callable[..., PreparedData],
                                                    small_config: ModelConfig, tmp_path: Path) -> None:
    data = tiny_prepared(40, seed=6)
    cfg = TrainConfig(batch_size=8, epochs=2.0, lr=0.01, optimizer="adam", decay_start=1.0, seed=3)
    whole = train(data, None, small_config, cfg, tmp_path / "whole.pt")
    state = load(tmp_path / "whole.pt").train_state
    assert state is not None
    moments = state["optimizer"]["state"]
    assert moments and all("exp_avg" in s and "exp_avg_sq" in s for s in moments.values())
    short = train(data, None, small_config, replace(cfg, epochs=1.0), tmp_path / "part.pt")
    rest = train(data, None, small_config, cfg, tmp_path / "part.pt", resume=load(tmp_path / "part.pt"))
    assert short.step == 5 and rest.step == whole.step == 10
    assert weights_equal(load(tmp_path / "whole.pt").weights, load(tmp_path / "part.pt").weights)
    sgd = train(data, None, small_config, replace(cfg, optimizer="sgd"), tmp_path / "sgd.pt")
    assert sgd.step == whole.step
    assert not weights_equal(load(tmp_path / "sgd.pt").weights, load(tmp_path / "whole.pt").weights)


def test_unknown_optimizer_is_refused(small_config: ModelConfig) -> None:
    with pytest.raises(S2SError, match="--optimizer must be one of sgd, adam, got 'rmsprop'"):
        check_train_config(small_config, TrainConfig(optimizer="rmsprop"))
