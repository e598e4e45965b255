"""model.py runs the decoder LSTM by hand (one cell per position, the embeddings' share of the first layer's
gates computed for all positions at once) wherever it goes one position at a time: teacher forcing with
input feeding, and every ``step``. Here it is checked against the straightforward code it replaced, which
calls ``nn.LSTM`` once per position: the same parameters give the same log-probabilities, states and
gradients up to the order of floating-point sums (float32), for 1-3 layers, every attention, with and
without input feeding."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from s2scli.config import ModelConfig
from s2scli.model import ATTENTIONS, Seq2Seq, State
from s2scli.vocab import BOS, EOS, PAD

SOURCES = [[4, 5, 6, 7, 8], [9], [10, 11, 4], [5, 6, 7, 8, 9], [6, 6], [11, 10, 9]]
TARGETS = [[4, 5, 6], [7], [8, 9, 4, 5], [6], [4, 4, 4, 4, 4, 6, 7], [9, 8]]
CASES = [(a, f) for a in ATTENTIONS for f in ((True, False) if a != "none" else (True,))]


def pad_rows(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    out = torch.full((len(rows), max(len(r) for r in rows)), PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r)
    return out, torch.tensor([len(r) for r in rows])


# -------------------------------------------------------- the reference: nn.LSTM called once per position


def reference_attention_step(model: Seq2Seq, emb: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
    x = emb if state.feed is None else torch.cat([emb, state.feed.to(emb.dtype)], dim=1)
    out, (h, c) = model.decoder(x.unsqueeze(0), (state.h, state.c))
    h_tilde, weights = model._attend(out.transpose(0, 1), state)
    feed = h_tilde[:, 0] if state.feed is not None else None
    return h_tilde[:, 0], state._replace(h=h, c=c, feed=feed, attn=weights[:, 0])


def reference_decode(model: Seq2Seq, tgt_in: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
    emb = model.tgt_embed(tgt_in.t())
    if not model.input_feeding:
        out, (h, c) = model.decoder(emb, (state.h, state.c))
        out = out.transpose(0, 1)
        if not model.attention:
            return out, state._replace(h=h, c=c)
        h_tilde, weights = model._attend(out, state)
        return h_tilde, state._replace(h=h, c=c, attn=weights[:, -1])
    outs = []
    for t in range(emb.size(0)):
        h_tilde, state = reference_attention_step(model, emb[t], state)
        outs.append(h_tilde)
    return torch.stack(outs, dim=1), state


def reference_step(model: Seq2Seq, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
    emb = model.tgt_embed(tokens)
    if not model.attention:
        out, (h, c) = model.decoder(emb.unsqueeze(0), (state.h, state.c))
        return F.log_softmax(model.logits(out[0]).float(), dim=-1), state._replace(h=h, c=c)
    h_tilde, state = reference_attention_step(model, emb, state)
    return F.log_softmax(model.logits(h_tilde).float(), dim=-1), state


def reference_loss(model: Seq2Seq, src, lengths, tgt_in, tgt_out) -> torch.Tensor:
    hidden, _ = reference_decode(model, tgt_in, model.encode(src, lengths))
    mask = tgt_out != model.config.pad_id
    return F.cross_entropy(model.logits(hidden[mask]).float(), tgt_out[mask], reduction="sum")


# ------------------------------------------------------------------------------------------------ tests


def make(config: ModelConfig, layers: int, attention: str, feeding: bool, seed: int = 3) -> Seq2Seq:
    torch.manual_seed(seed)
    return Seq2Seq(replace(config, layers=layers, attention=attention, input_feeding=feeding, init_scale=0.3)).eval()


def assert_same_state(a: State, b: State) -> None:
    for name, x, y in zip(State._fields, a, b):
        if x is None or y is None:
            assert x is None and y is None, name
        else:
            torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("attention,feeding", CASES)
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_decode_equals_nn_lstm_per_position(tiny_model_config: ModelConfig, layers: int, attention: str,
                                            feeding: bool) -> None:
    model = make(tiny_model_config, layers, attention, feeding)
    src, lengths = pad_rows(SOURCES)
    tgt_in, _ = pad_rows([[BOS] + t for t in TARGETS])
    with torch.no_grad():
        state = model.encode(src, lengths)
        hidden, final = model.decode(tgt_in, state)
        ref_hidden, ref_final = reference_decode(model, tgt_in, state)
        logp = F.log_softmax(model.logits(hidden), dim=-1)
        ref_logp = F.log_softmax(model.logits(ref_hidden), dim=-1)
    torch.testing.assert_close(logp, ref_logp, rtol=0, atol=1e-5)
    assert_same_state(final, ref_final)


@pytest.mark.parametrize("attention,feeding", CASES)
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_step_equals_nn_lstm_per_position(tiny_model_config: ModelConfig, layers: int, attention: str,
                                          feeding: bool) -> None:
    model = make(tiny_model_config, layers, attention, feeding)
    src, lengths = pad_rows(SOURCES)
    with torch.no_grad():
        state = ref_state = model.encode(src, lengths)
        for word in [BOS, 4, 9, 5, 5, 6]:
            tokens = torch.full((len(SOURCES),), word)
            logp, state = model.step(tokens, state)
            ref_logp, ref_state = reference_step(model, tokens, ref_state)
            torch.testing.assert_close(logp, ref_logp, rtol=0, atol=1e-5)
            assert_same_state(state, ref_state)
            # Search reorders rows between steps: the state must stay usable after select.
            rows = torch.arange(len(SOURCES) - 1, -1, -1)
            state, ref_state = state.select(rows), ref_state.select(rows)


@pytest.mark.parametrize("attention,feeding", CASES)
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_loss_and_gradients_equal_nn_lstm_per_position(tiny_model_config: ModelConfig, layers: int, attention: str,
                                                       feeding: bool) -> None:
    model = make(tiny_model_config, layers, attention, feeding).train()  # dropout 0: training = eval here
    src, lengths = pad_rows(SOURCES)
    tgt_in, _ = pad_rows([[BOS] + t for t in TARGETS])
    tgt_out, _ = pad_rows([t + [EOS] for t in TARGETS])
    loss = model(src, lengths, tgt_in, tgt_out)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    ref_loss = reference_loss(model, src, lengths, tgt_in, tgt_out)
    ref_grads = torch.autograd.grad(ref_loss, list(model.parameters()))
    torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=1e-5)
    for (name, _), g, r in zip(model.named_parameters(), grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("attention,feeding", CASES)
def test_bf16_autocast_stays_close_to_float32(tiny_model_config: ModelConfig, attention: str, feeding: bool) -> None:
    model = make(tiny_model_config, 2, attention, feeding)
    src, lengths = pad_rows(SOURCES)
    tgt_in, _ = pad_rows([[BOS] + t for t in TARGETS])
    tgt_out, _ = pad_rows([t + [EOS] for t in TARGETS])
    with torch.no_grad():
        reference = model.score(src, lengths, tgt_in, tgt_out)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model.score(src, lengths, tgt_in, tgt_out)
    torch.testing.assert_close(low.float(), reference, rtol=0.02, atol=0.1)


def test_parameters_are_nn_lstms_own(tiny_model_config: ModelConfig) -> None:
    """Model files keep loading: the decoder is still an nn.LSTM with its usual parameter names and shapes."""
    model = make(tiny_model_config, 2, "general", True)
    h, e = model.config.hidden, model.config.embedding
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters() if n.startswith("decoder.")}
    assert shapes == {"decoder.weight_ih_l0": (4 * h, e + h), "decoder.weight_hh_l0": (4 * h, h),
                      "decoder.bias_ih_l0": (4 * h,), "decoder.bias_hh_l0": (4 * h,),
                      "decoder.weight_ih_l1": (4 * h, h), "decoder.weight_hh_l1": (4 * h, h),
                      "decoder.bias_ih_l1": (4 * h,), "decoder.bias_hh_l1": (4 * h,)}
