"""model.py: source reversal, encoding of mixed-length batches, the loss, step and score agree by hand."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import pytest
import torch
import torch.nn.functional as F

from s2scli.config import ModelConfig
from s2scli.model import Seq2Seq, count_parameters, reverse_padded, weight_shapes
from s2scli.vocab import BOS, EOS, PAD


def pad_rows(rows: list[list[int]], fill: int = PAD) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), fill, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r)
    return out, torch.tensor([len(r) for r in rows])


def targets(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    tgt_in, _ = pad_rows([[BOS] + r for r in rows])
    tgt_out, _ = pad_rows([r + [EOS] for r in rows])
    return tgt_in, tgt_out


SOURCES = [[4, 5, 6, 7, 8], [9], [10, 11, 4], [5, 6, 7, 8, 9], [6, 6], [11, 10, 9]]
TARGETS = [[4, 5, 6], [7], [8, 9, 4, 5], [6], [4, 4, 4, 4, 4], [9, 8]]


def test_reverse_padded_reverses_each_row_within_its_length() -> None:
    src = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0], [6, 7, 8, 9], [10, 0, 0, 0]])
    lengths = torch.tensor([3, 2, 4, 1])
    assert reverse_padded(src, lengths).tolist() == [[3, 2, 1, 0], [5, 4, 0, 0], [9, 8, 7, 6], [10, 0, 0, 0]]


def test_reverse_padded_keeps_padding_values_in_place() -> None:
    src = torch.tensor([[1, 2, 77, 88]])
    assert reverse_padded(src, torch.tensor([2])).tolist() == [[2, 1, 77, 88]]


def test_reverse_padded_is_an_involution() -> None:
    src, lengths = pad_rows(SOURCES)
    assert torch.equal(reverse_padded(reverse_padded(src, lengths), lengths), src)


@pytest.mark.parametrize("reverse", [True, False])
def test_encode_mixed_batch_equals_each_sentence_alone(make_tiny_model: Callable[..., Seq2Seq], reverse: bool) -> None:
    model = make_tiny_model(1, reverse=reverse)
    src, lengths = pad_rows(SOURCES)
    h, c = model.encode(src, lengths)[:2]
    assert h.shape == (model.config.layers, len(SOURCES), model.config.hidden) == c.shape
    for i, row in enumerate(SOURCES):
        h1, c1 = model.encode(torch.tensor([row]), torch.tensor([len(row)]))[:2]
        torch.testing.assert_close(h[:, i], h1[:, 0], rtol=0, atol=1e-6)
        torch.testing.assert_close(c[:, i], c1[:, 0], rtol=0, atol=1e-6)


def test_encoder_lstm_gets_contiguous_inputs_and_states(make_tiny_model: Callable[..., Seq2Seq]) -> None:
    """cuDNN refuses a non-contiguous state ("rnn: hx is not contiguous", seen on an H200); a CPU does not,
    so the encoder's calls are checked here: a mixed-length batch drops rows between its calls."""
    model = make_tiny_model(1, layers=2)
    seen: list[bool] = []

    def check(_module: torch.nn.Module, args: tuple) -> None:
        x, state = (args + (None,))[:2]
        seen.append(x.is_contiguous() and (state is None or all(t.is_contiguous() for t in state)))

    model.encoder.register_forward_pre_hook(check)
    src, lengths = pad_rows(SOURCES)
    model.encode(src, lengths)
    assert len(seen) == len(set(lengths.tolist())) > 1 and all(seen)


def test_encode_ignores_padding_values(make_tiny_model: Callable[..., Seq2Seq]) -> None:
    model = make_tiny_model(2)
    src, lengths = pad_rows(SOURCES)
    garbage, _ = pad_rows(SOURCES, fill=7)
    for a, b in zip(model.encode(src, lengths), model.encode(garbage, lengths)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_encode_reverse_reads_the_source_backwards(make_tiny_model: Callable[..., Seq2Seq]) -> None:
    reversed_model = make_tiny_model(3, reverse=True)
    forward_model = make_tiny_model(3, reverse=False)  # same seed, same weights
    src, lengths = pad_rows(SOURCES)
    backwards, _ = pad_rows([list(reversed(r)) for r in SOURCES])
    for a, b in zip(reversed_model.encode(src, lengths), forward_model.encode(backwards, lengths)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    # And the order matters: reading forwards gives a different state.
    assert not torch.allclose(reversed_model.encode(src, lengths)[0], forward_model.encode(src, lengths)[0])


def test_forward_is_summed_nll_picked_by_hand(make_tiny_model: Callable[..., Seq2Seq]) -> None:
    model = make_tiny_model(4, init_scale=0.3)
    src, lengths = pad_rows(SOURCES)
    tgt_in, tgt_out = targets(TARGETS)
    loss = model(src, lengths, tgt_in, tgt_out)
    assert loss.dim() == 0
    expected = torch.zeros(())
    for i, (s, t) in enumerate(zip(SOURCES, TARGETS)):
        state = model.encode(torch.tensor([s]), torch.tensor([len(s)]))
        hidden, _ = model.decode(torch.tensor([[BOS] + t]), state)
        logp = F.log_softmax(model.output(hidden[0]), dim=-1)  # [T+1, V]
        for pos, word in enumerate(t + [EOS]):
            expected = expected - logp[pos, word]
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-4)


def test_forward_ignores_padding_positions(make_tiny_model: Callable[..., Seq2Seq]) -> None:
    model = make_tiny_model(5)
    src, lengths = pad_rows(SOURCES)
    tgt_in, tgt_out = targets(TARGETS)
    # Extra all-pad columns change nothing.
    wide_in = torch.cat([tgt_in, torch.full((len(TARGETS), 3), PAD)], dim=1)
    wide_out = torch.cat([tgt_out, torch.full((len(TARGETS), 3), PAD)], dim=1)
    torch.testing.assert_close(model(src, lengths, wide_in, wide_out), model(src, lengths, tgt_in, tgt_out))


def test_forward_has_gradients_for_all_parameters(make_tiny_model: Callable[..., Seq2Seq]) -> None:
    model = make_tiny_model(6).train()
    src, lengths = pad_rows(SOURCES)
    tgt_in, tgt_out = targets(TARGETS)
    model(src, lengths, tgt_in, tgt_out).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    # Embedding rows of ids never used get no gradient; used ones do.
    assert model.src_embed.weight.grad[4].abs().sum() > 0


def test_step_matches_decode_position_by_position(make_tiny_model: Callable[..., Seq2Seq]) -> None:
    model = make_tiny_model(7, init_scale=0.3)
    src, lengths = pad_rows(SOURCES)
    tgt = torch.tensor([[BOS, 4, 5, 6, 7]] * len(SOURCES))
    state = model.encode(src, lengths)
    hidden, final = model.decode(tgt, state)
    full = F.log_softmax(model.output(hidden), dim=-1)  # [B, T, V]
    step_state = state
    for t in range(tgt.size(1)):
        logp, step_state = model.step(tgt[:, t], step_state)
        assert logp.shape == (len(SOURCES), model.config.tgt_vocab_size)
        assert logp.dtype == torch.float32
        torch.testing.assert_close(logp, full[:, t], rtol=0, atol=1e-5)
    for a, b in zip(step_state, final):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_step_returns_normalised_log_probabilities(tiny_model: Seq2Seq) -> None:
    state = tiny_model.encode(torch.tensor([[4, 5]]), torch.tensor([2]))
    logp, _ = tiny_model.step(torch.tensor([BOS]), state)
    torch.testing.assert_close(logp.exp().sum(dim=-1), torch.ones(1))


def test_score_matches_forward_per_sentence(make_tiny_model: Callable[..., Seq2Seq]) -> None:
    model = make_tiny_model(8, init_scale=0.3)
    src, lengths = pad_rows(SOURCES)
    tgt_in, tgt_out = targets(TARGETS)
    scores = model.score(src, lengths, tgt_in, tgt_out)
    assert scores.shape == (len(SOURCES),)
    assert (scores < 0).all()
    for i, (s, t) in enumerate(zip(SOURCES, TARGETS)):
        one_in, one_out = targets([t])
        alone = model(torch.tensor([s]), torch.tensor([len(s)]), one_in, one_out)
        torch.testing.assert_close(scores[i], -alone, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(scores.sum(), -model(src, lengths, tgt_in, tgt_out), rtol=1e-5, atol=1e-4)


def test_parameters_initialised_uniformly_within_init_scale(make_tiny_model: Callable[..., Seq2Seq]) -> None:
    for scale in (0.08, 0.5):
        model = make_tiny_model(9, init_scale=scale)
        values = torch.cat([p.detach().flatten() for p in model.parameters()])
        assert values.abs().max() <= scale
        # Spread over the whole range (not, say, all zeros or PyTorch's default init).
        assert values.abs().max() > 0.95 * scale
        assert abs(values.mean().item()) < 0.1 * scale
        for name, p in model.named_parameters():
            assert p.detach().abs().max() <= scale, name
    zero = make_tiny_model(9, init_scale=0.0)
    assert all((p == 0).all() for p in zero.parameters())


def test_seed_determines_initialisation(make_tiny_model: Callable[..., Seq2Seq]) -> None:
    a, b, c = make_tiny_model(11), make_tiny_model(11), make_tiny_model(12)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), c.parameters()))


def test_count_parameters_small_model(tiny_model_config: ModelConfig) -> None:
    cfg = tiny_model_config
    model = Seq2Seq(cfg)
    v_s, v_t, e, h, n = cfg.src_vocab_size, cfg.tgt_vocab_size, cfg.embedding, cfg.hidden, cfg.layers
    lstm = 4 * h * (e + h) + 8 * h + (n - 1) * (4 * h * (h + h) + 8 * h)
    assert count_parameters(model) == v_s * e + v_t * e + 2 * lstm + h * v_t + v_t


def test_count_parameters_of_the_papers_model() -> None:
    # [3.4]: 384M parameters, 64M of them recurrent, for 160k/80k vocabularies and 4 x 1000 LSTMs.
    cfg = ModelConfig(160_000, 80_000)
    with torch.device("meta"):
        model = Seq2Seq(cfg)
    assert round(count_parameters(model) / 1e6) == 384
    recurrent = count_parameters(model.encoder) + count_parameters(model.decoder)
    assert round(recurrent / 1e6) == 64


def test_model_works_in_double_precision(tiny_model_config: ModelConfig) -> None:
    torch.manual_seed(0)
    model = Seq2Seq(replace(tiny_model_config, init_scale=0.3)).double().eval()
    src, lengths = pad_rows(SOURCES)
    tgt_in, tgt_out = targets(TARGETS)
    h = model.encode(src, lengths).h
    assert h.dtype == torch.float64
    assert torch.isfinite(model(src, lengths, tgt_in, tgt_out))


@pytest.mark.parametrize("attention", ["none", "dot", "general", "concat"])
@pytest.mark.parametrize("input_feeding, layers", [(True, 1), (False, 3), (True, 2)])
def test_weight_shapes_are_the_state_dict_of_the_built_model(attention: str, input_feeding: bool,
                                                               layers: int) -> None:
    cfg = ModelConfig(11, 13, layers, 6, 5, attention=attention, input_feeding=input_feeding)
    built = {name: tuple(t.shape) for name, t in Seq2Seq(cfg).state_dict().items()}
    assert weight_shapes(cfg) == built


@pytest.mark.parametrize("changes", [{"hidden": 0}, {"layers": 2.0}, {"embedding": "8"}, {"dropout": 1.5},
                                     {"attention": "luong"}, {"reverse": "yes"}])
def test_weight_shapes_refuse_configs_no_network_has(changes: dict) -> None:
    with pytest.raises(ValueError):
        weight_shapes(replace(ModelConfig(11, 13, 2, 6, 5), **changes))


def steps_without_grad(model: Seq2Seq, tokens: list[int]) -> torch.Tensor:
    """Log-probs [T, B, V] of feeding ``tokens`` to every sentence of SOURCES, as decoding runs (no gradients)."""
    src, lengths = pad_rows(SOURCES)
    with torch.no_grad():
        state = model.encode(src, lengths)
        out = []
        for token in tokens:
            logp, state = model.step(torch.full((len(SOURCES),), token), state)
            out.append(logp)
    return torch.stack(out)


@pytest.mark.parametrize("attention,input_feeding", [("none", False), ("general", False), ("general", True)])
def test_decoding_with_derived_weights_equals_the_modules(make_tiny_model: Callable[..., Seq2Seq], attention: str,
                                                          input_feeding: bool) -> None:
    """Decoding (gradients off) uses weights derived once (``DecodeCache``); with gradients on, the modules'."""
    model = make_tiny_model(3, init_scale=0.3, attention=attention, input_feeding=input_feeding)
    cached = steps_without_grad(model, [BOS, 4, 5, 6])
    assert model.decode_cache.entries  # the derived weights were kept
    src, lengths = pad_rows(SOURCES)
    state, direct = model.encode(src, lengths), []
    for token in [BOS, 4, 5, 6]:
        logp, state = model.step(torch.full((len(SOURCES),), token), state)
        direct.append(logp.detach())
    assert not model.decode_cache.entries  # gradients on: nothing kept
    torch.testing.assert_close(cached, torch.stack(direct), rtol=0, atol=1e-6)


@pytest.mark.parametrize("update", ["sgd", "sgd foreach", "adam fused", "load_state_dict"])
def test_decoding_after_the_weights_change_uses_the_new_weights(make_tiny_model: Callable[..., Seq2Seq],
                                                                update: str) -> None:
    """As training does between validations: decode (eval mode), change the weights, decode again. The SGD
    steps and load_state_dict run in eval mode (they move version counters); fused Adam, whose step moves
    none, runs between train() and eval() as ``s2s train`` runs it."""
    model = make_tiny_model(4, init_scale=0.3, attention="general", input_feeding=False)
    before = steps_without_grad(model, [BOS, 4, 5])
    if update == "load_state_dict":
        other = make_tiny_model(5, init_scale=0.3, attention="general", input_feeding=False)
        model.load_state_dict(other.state_dict())
    else:
        if update == "adam fused":
            model.train()
            optimizer: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=0.05, fused=True)
        else:
            optimizer = torch.optim.SGD(model.parameters(), lr=0.5, foreach=update == "sgd foreach")
        src, lengths = pad_rows(SOURCES)
        tgt_in, tgt_out = targets([[4, 5, 6]] * len(SOURCES))
        model(src, lengths, tgt_in, tgt_out).backward()
        optimizer.step()
        model.eval()
    fresh = make_tiny_model(0, attention="general", input_feeding=False)
    fresh.load_state_dict(model.state_dict())
    after, expected = steps_without_grad(model, [BOS, 4, 5]), steps_without_grad(fresh, [BOS, 4, 5])
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, expected, rtol=0, atol=0)


def test_decoding_under_autocast_runs_the_output_layer_as_autocast_does(
        make_tiny_model: Callable[..., Seq2Seq]) -> None:
    """Under bf16 autocast (no gradients) the output layer is nn.Linear's, cast by autocast, not the packed fp32
    product."""
    model = make_tiny_model(6, init_scale=0.3)
    hidden = torch.randn(5, model.config.hidden)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model.logits(hidden)
    assert logits.dtype == torch.bfloat16
    assert "output layer" not in model.decode_cache.entries
