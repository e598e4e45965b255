"""Dropout (Zaremba et al. 2014) and label smoothing, beyond the paper: both off by default, dropout only
in training mode, label smoothing only in the training loss (validation perplexity stays the true
one); training with them, attention included, still resumes bit for bit."""

from __future__ import annotations


from dataclasses import replace
from pathlib import Path
from threading import Event
from typing import Callable

import pytest
import torch
import torch.nn.functional as F

from s2scli.checkpoint import load
from s2scli.config import ModelConfig, TrainConfig, check_train_config
from s2scli.data import PreparedData
from s2scli.errors import S2SError
from s2scli.model import Seq2Seq
from s2scli.train import NullReporter, evaluate, forward_backward, perplexity, train
from s2scli.vocab import BOS, EOS, PAD

SOURCES = [[4, 5, 6, 7, 8], [9], [10, 11, 4], [5, 6, 7, 8, 9]]
TARGETS = [[4, 5, 6], [7], [8, 9, 4, 5], [6]]


def pad_rows(rows: list[list[int]]) -> torch.Tensor:
    out = torch.full((len(rows), max(len(r) for r in rows)), PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r)
    return out


def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    return (pad_rows(SOURCES), torch.tensor([len(r) for r in SOURCES]), pad_rows([[BOS] + t for t in TARGETS]),
            pad_rows([t + [EOS] for t in TARGETS]))


@pytest.fixture
def small_config(tiny_model_config: ModelConfig) -> ModelConfig:
    return replace(tiny_model_config, layers=2, hidden=16, embedding=8)


def test_defaults_are_the_paper() -> None:
    assert ModelConfig(10, 10).dropout == 0.0 and TrainConfig().label_smoothing == 0.0


@pytest.mark.parametrize("attention", ["none", "general"])
def test_dropout_is_off_in_eval_mode(make_tiny_model: Callable[..., Seq2Seq], attention: str) -> None:
    dropped = make_tiny_model(1, dropout=0.5, attention=attention)
    plain = make_tiny_model(1, attention=attention)  # the same seed: the same weights
    assert all(torch.equal(a, b) for a, b in zip(dropped.parameters(), plain.parameters()))
    assert dropped.encoder.dropout == 0.5 and dropped.decoder.dropout == 0.5  # between the two layers
    dropped.eval()
    torch.manual_seed(0)
    first = dropped(*batch())
    assert torch.equal(first, dropped(*batch())) and torch.equal(first, plain.eval()(*batch()))
    assert torch.equal(dropped.score(*batch()), plain.score(*batch()))
    dropped.train()
    a, b = dropped(*batch()), dropped(*batch())
    assert not torch.equal(a, b) and not torch.equal(a, first)  # random masks in training mode


def test_dropout_before_the_output_layer_with_one_layer(make_tiny_model: Callable[..., Seq2Seq]) -> None:
    model = make_tiny_model(2, dropout=0.5, layers=1)  # no layer to drop between: only the output's input
    assert model.encoder.dropout == 0.0
    model.train()
    assert not torch.equal(model(*batch()), model(*batch()))
    model.eval()
    assert torch.equal(model(*batch()), model(*batch()))


@pytest.mark.parametrize("attention", ["none", "dot"])
def test_label_smoothing_loss_by_hand(make_tiny_model: Callable[..., Seq2Seq], attention: str) -> None:
    model = make_tiny_model(3, init_scale=0.3, attention=attention)
    src, lengths, tgt_in, tgt_out = batch()
    nll = model(src, lengths, tgt_in, tgt_out)
    assert torch.equal(model(src, lengths, tgt_in, tgt_out, 0.0), nll)
    smoothed = model(src, lengths, tgt_in, tgt_out, 0.1)
    hidden, _ = model.decode(tgt_in, model.encode(src, lengths))
    mask = tgt_out != PAD
    logp = F.log_softmax(model.output(hidden[mask]), dim=-1)  # [N, V]
    uniform = -logp.mean(dim=1).sum()  # cross-entropy against the uniform distribution
    torch.testing.assert_close(smoothed, 0.9 * nll + 0.1 * uniform, rtol=1e-5, atol=1e-4)
    assert not torch.allclose(smoothed, nll, rtol=1e-3)


def test_label_smoothing_changes_the_training_loss_not_validation(
        tiny_prepared: Callable[..., PreparedData], small_config: ModelConfig, tmp_path: Path) -> None:
    data, valid = tiny_prepared(48, seed=1), tiny_prepared(16, seed=2, name="valid.s2s")
    # One step's loss on the same weights and batch: smoothed or not.
    torch.manual_seed(0)
    model = Seq2Seq(replace(small_config, init_scale=1.0))  # peaky, so that smoothing shows
    b = data.batch(list(range(8)))
    plain_loss, _ = forward_backward(model, model, b, 1 / 8, 5.0)
    model.zero_grad()
    smooth_loss, _ = forward_backward(model, model, b, 1 / 8, 5.0, label_smoothing=0.2)
    assert float(smooth_loss) != pytest.approx(float(plain_loss), rel=1e-2)
    # Trained with smoothing: the logged train loss is the smoothed one, the validation perplexity is
    # the true one (the checkpoint's weights score the same on their own).
    cfg = TrainConfig(batch_size=8, epochs=2, seed=3, label_smoothing=0.2)
    result = train(data, valid, small_config, cfg, tmp_path / "m.pt")
    trained = load(tmp_path / "m.pt")
    nll, tokens = evaluate(trained.build_model(), valid, 8, torch.device("cpu"))
    assert result.valid_ppl == pytest.approx(perplexity(nll, tokens), rel=1e-6)
    plain = train(data, valid, small_config, replace(cfg, label_smoothing=0.0), tmp_path / "p.pt")
    assert result.history[0]["train_loss"] != pytest.approx(plain.history[0]["train_loss"], rel=1e-3)


@pytest.mark.parametrize("changes, message", [
    ({"attention": "luong"}, "--attention must be one of none, dot, general, concat"),
    ({"dropout": 1.0}, "--dropout must be in [0, 1)"),
    ({"dropout": -0.1}, "--dropout"),
])
def test_model_options_checked(small_config: ModelConfig, changes: dict, message: str) -> None:
    with pytest.raises(S2SError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        check_train_config(replace(small_config, **changes), TrainConfig())


@pytest.mark.parametrize("value", [-0.1, 1.0])
def test_label_smoothing_checked(small_config: ModelConfig, value: float) -> None:
    with pytest.raises(S2SError, match="--label-smoothing"):
        check_train_config(small_config, TrainConfig(label_smoothing=value))


class StopAfter(NullReporter):
    def __init__(self, stop: Event, step: int) -> None:
        self.stop, self.at = stop, step

    def update(self, step: int, stats: dict[str, float]) -> None:
        if step == self.at:
            self.stop.set()


@pytest.mark.parametrize("attention", ["none", "concat"])
def test_resume_with_attention_and_dropout_is_bit_exact(tiny_prepared: Callable[..., PreparedData],
                                                        small_config: ModelConfig, tmp_path: Path,
                                                        attention: str) -> None:
    data, valid = tiny_prepared(40, seed=6), tiny_prepared(8, seed=7, name="valid.s2s")
    model_cfg = replace(small_config, attention=attention, dropout=0.3)
    cfg = TrainConfig(batch_size=8, epochs=2, seed=9, label_smoothing=0.1)
    whole = train(data, valid, model_cfg, cfg, tmp_path / "whole.pt")
    stop = Event()
    first = train(data, valid, model_cfg, cfg, tmp_path / "part.pt", stop=stop, reporter=StopAfter(stop, 3))
    assert first.status == "interrupted" and first.step == 3
    partial = load(tmp_path / "part.pt")
    assert partial.model_config == model_cfg and partial.train_config.label_smoothing == 0.1
    rest = train(data, valid, model_cfg, cfg, tmp_path / "part.pt", resume=partial)
    assert rest.step == whole.step == 10
    a, b = load(tmp_path / "whole.pt").weights, load(tmp_path / "part.pt").weights
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert rest.valid_ppl == whole.valid_ppl
    # Dropout did act: without it the same run ends elsewhere.
    train(data, valid, replace(model_cfg, dropout=0.0), cfg, tmp_path / "nodrop.pt")
    c = load(tmp_path / "nodrop.pt").weights
    assert not all(torch.equal(a[k], c[k]) for k in a)

