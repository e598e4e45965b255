"""feeding.py: the input-feeding decoder's hand-written backward pass against autograd's finite differences
(float64 gradcheck: every input, with dropout masks, with and without gradients reaching the final state),
and the model's use of it: training takes this path, dropout reaches it, bf16 stays close to float32.
(Its agreement with nn.LSTM called once per position, loss and every parameter's gradient, is in
test_decoder_by_hand.py.)"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import s2scli.model as model_module
from s2scli.config import ModelConfig
from s2scli.feeding import decode_fed
from s2scli.packed import Product
from s2scli.model import Seq2Seq

T, B, H, S = 3, 3, 3, 5


def inputs(layers: int, same_keys: bool, dropout: bool, seed: int = 0) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Random float64 inputs of ``decode_fed`` (all requiring grad but the mask and dropout masks)."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return (torch.rand(*shape, generator=g, dtype=torch.float64) - 0.5).requires_grad_()

    memory = rand(B, S, H)
    tensors = [rand(T, B, 4 * H), rand(B, H), rand(layers, B, H), rand(layers, B, H), memory,
               memory if same_keys else rand(B, S, H), rand(H, 2 * H), rand(4 * H, 2 * H)]
    for _ in range(1, layers):
        tensors += [rand(4 * H, 2 * H), rand(4 * H)]
    mask = torch.arange(S).unsqueeze(0) < torch.tensor([[S], [2], [4]])  # [B, S]: rows of lengths 5, 2, 4
    drop = (torch.rand(layers - 1, T, B, H, generator=g) < 0.7).double() / 0.7 if dropout and layers > 1 else None
    return tensors, mask if drop is None else (mask, drop)


def call(layers: int, mask: torch.Tensor, drop: torch.Tensor | None, state_grads: bool, *tensors: torch.Tensor):
    gates0, feed, h0, c0, memory, keys, w_c, *flat = tensors
    weights = [(flat[0], None)] + [(flat[2 * i - 1], flat[2 * i]) for i in range(1, layers)]
    outs, h, c, attn = decode_fed(gates0, feed, h0, c0, memory, keys, mask, w_c, weights, drop)
    assert not attn.requires_grad
    return (outs, h, c) if state_grads else outs


@pytest.mark.parametrize("layers,same_keys,dropout,state_grads", [
    (1, True, False, False), (1, False, False, True), (2, False, True, True), (2, True, False, True),
    (3, False, True, False)])
def test_backward_matches_finite_differences(layers: int, same_keys: bool, dropout: bool, state_grads: bool) -> None:
    tensors, masks = inputs(layers, same_keys, dropout)
    mask, drop = masks if isinstance(masks, tuple) else (masks, None)
    unique = list({id(t): t for t in tensors}.values())  # dot: memory and keys are one tensor

    def f(*args: torch.Tensor):
        by_id = {id(u): a for u, a in zip(unique, args)}
        return call(layers, mask, drop, state_grads, *(by_id[id(t)] for t in tensors))

    assert torch.autograd.gradcheck(f, unique, eps=1e-6, atol=1e-7, rtol=1e-5)


def test_padding_positions_get_no_attention_and_no_gradient() -> None:
    tensors, mask = inputs(2, same_keys=False, dropout=False)
    outs, _, _, attn = decode_fed(*tensors[:6], mask, tensors[6], [(tensors[7], None), (tensors[8], tensors[9])])
    assert torch.all(attn[~mask] == 0)
    outs.sum().backward()
    memory, keys = tensors[4], tensors[5]
    assert torch.all(memory.grad[1, 2:] == 0) and torch.all(keys.grad[2, 4:] == 0)
    assert memory.grad[1, :2].abs().sum() > 0 and keys.grad[2, :4].abs().sum() > 0


@pytest.mark.parametrize("rows", [64, 7])
def test_product_with_a_packed_weight_equals_mm(rows: int) -> None:
    """Packed for 64 rows (a batch), used for 64 or for fewer (a last, smaller batch)."""
    g = torch.Generator().manual_seed(0)
    w, x = torch.randn(96, 40, generator=g), torch.randn(rows, 40, generator=g)
    torch.testing.assert_close(Product(w, 64)(x), x @ w.t(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(Product(w.double(), 64)(x.double()), x.double() @ w.double().t())
    wb, xb = w.bfloat16(), x.bfloat16()  # oneDNN's packed bf16 where the CPU has it, else torch.mm
    torch.testing.assert_close(Product(wb, 64)(xb), xb @ wb.t())


def small_batch(config: ModelConfig) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(5)
    src = torch.randint(4, config.src_vocab_size, (4, 7), generator=g)
    lengths = torch.tensor([7, 3, 5, 1])
    tgt_in = torch.randint(4, config.tgt_vocab_size, (4, 6), generator=g)
    tgt_out = torch.randint(4, config.tgt_vocab_size, (4, 6), generator=g)
    tgt_out[1, 3:] = config.pad_id
    return src, lengths, tgt_in, tgt_out


@pytest.mark.parametrize("attention", ["dot", "general"])
def test_training_takes_the_fused_path_and_scoring_does_not(tiny_model_config: ModelConfig, attention: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(model_module, "decode_fed", lambda *a, **k: calls.append(1) or decode_fed(*a, **k))
    torch.manual_seed(0)
    model = Seq2Seq(replace(tiny_model_config, attention=attention)).train()
    batch = small_batch(model.config)
    model(*batch).backward()
    assert len(calls) == 1
    with torch.no_grad():
        model.eval().score(*batch)
    assert len(calls) == 1


def test_dropout_between_layers_reaches_the_fused_path(tiny_model_config: ModelConfig) -> None:
    torch.manual_seed(0)
    model = Seq2Seq(replace(tiny_model_config, attention="general", dropout=0.5, layers=3, init_scale=0.5))
    batch = small_batch(model.config)
    model.eval()
    clean = model(*batch)
    model.train()
    model.logits = lambda hidden: model.output(hidden)  # no dropout before the output layer: only the LSTM's
    torch.manual_seed(1)
    first = model(*batch)
    torch.manual_seed(1)
    again = model(*batch)
    torch.manual_seed(2)
    other = model(*batch)
    assert first.item() == again.item()  # the masks come from torch's generator
    assert first.item() != clean.item() and first.item() != other.item()
    first.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_bf16_gradients_stay_close_to_float32(tiny_model_config: ModelConfig) -> None:
    torch.manual_seed(0)
    model = Seq2Seq(replace(tiny_model_config, attention="general", init_scale=0.3)).train()
    batch = small_batch(model.config)
    reference = torch.autograd.grad(model(*batch), list(model.parameters()))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(*batch)
    low = torch.autograd.grad(loss, list(model.parameters()))
    for (name, _), g, r in zip(model.named_parameters(), low, reference):
        assert g.dtype == torch.float32, name
        torch.testing.assert_close(g, r, rtol=0.1, atol=0.05 * r.abs().max().item() + 1e-4, msg=name)
