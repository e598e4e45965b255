"""Teacher-forced decoding with input feeding, as one autograd function with a hand-written backward pass.

Tensors in, tensors out, like ``model.py``, which calls ``decode_fed`` while training (gradients wanted) a
model with ``dot`` or ``general`` attention and input feeding. It computes exactly what ``Seq2Seq``'s loop
over positions computes (``_decode_fed``: the decoder LSTM by hand in ``nn.LSTM``'s gate order, then Luong
attention), summed in another order, and it is faster because:

- the forward pass records no autograd graph: per position and layer autograd would keep ~20 nodes, and
  run each one's backward as its own small operation;
- the forward loop runs only what the next position needs: each cell writes its activations into
  buffers for all positions (``Cells``), and the factors of its derivative are computed from them after
  the loop, a few operations over all positions at once; the backward pass then runs each cell's
  derivative as three element-wise operations on them. Padding is masked by adding a -inf row to the
  attention scores in the same product that computes them;
- every weight's gradient is one large matrix product after the backward loop (the gates' gradients of all
  positions against the inputs of all positions), not one small product and one accumulation per position;
  likewise the gradients of the attention's memory and keys (one batched product over all positions).

Notation (one position t, B sentences, hidden size H, L layers, source length S):

    layer 0:   gates = G0[t] + [feed; h_0] W_0^T             G0 = the embeddings' share plus biases [T, B, 4H]
    layer l:   gates = b_l + [x_l; h_l] W_l^T                 x_l = layer l-1's new h (times a dropout mask)
    cell:      i, f, g, o = sig, sig, tanh, sig of gates;  c' = f c + i g;  h' = o tanh(c')
    attention: s = q K^T (q = the top layer's h', K = keys [B, S, H]);  a = softmax over real positions;
               ctx = a M (M = memory [B, S, H]);  h~ = tanh([ctx; q] W_c^T);  feed for t + 1 = h~

Precision: the LSTM's and the attentional layer's matrix products run in the weights' dtype (bf16 under
autocast, as ``model.py`` casts them); the cell, the attention (scores, softmax, context) and every
derivative factor in float32 (float64 stays float64): small batched products gain nothing from bf16 on a
CPU. The cell state c stays float32 across positions, as in ``model.lstm_cell``.
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from .packed import Product


def decode_fed(
    gates0: torch.Tensor, feed: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, memory: torch.Tensor,
    keys: torch.Tensor, mask: torch.Tensor, w_c: torch.Tensor,
    weights: list[tuple[torch.Tensor, Optional[torch.Tensor]]], dropout_masks: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The decoder with input feeding over T positions, differentiable in every tensor input.

    gates0 [T, B, 4H]: layer 0's gate inputs from the embeddings, with layer 0's biases; feed [B, H]: h~
    before the first position; h0, c0 [L, B, H]: the starting state; memory, keys [B, S, H] (the same
    tensor for ``dot``); mask [B, S] True at real source positions; w_c [H, 2H]: the attentional layer
    (no bias); weights: per layer (W [4H, I + H], the input part then W_hh; bias [4H], None for layer 0),
    from ``Seq2Seq._decoder_weights``; dropout_masks [L - 1, T, B, H]: what multiplies layer l's input
    (l >= 1) at each position (already scaled by 1 / (1 - p)), or None.
    Returns h~ [T, B, H], the final h [L, B, H] and c [L, B, H], and the last position's attention
    weights [B, S] (float32; not differentiable).
    """
    flat = [t for w, b in weights for t in ((w,) if b is None else (w, b))]
    return _FedDecoder.apply(len(weights), dropout_masks, gates0, feed, h0, c0, memory, keys, mask, w_c, *flat)


class Cells:
    """One layer's LSTM cells at all T positions, as the forward pass leaves them (float, B rows):

        act [T, B, 4H]   i, f, g, o after their nonlinearities
        c   [T + 1, B, H] the cell state before each position (c[0] = the starting state) and after the last
        tc  [T, B, H]    tanh of each position's new cell state

    ``step`` runs one position's cell into these buffers; ``factors`` derives, in a few operations over all
    positions at once after the loop, what the backward pass multiplies by at each position:

        d gates = P * [dc*, dc*, dc*, dh]      P = (g i(1-i), c f(1-f), i (1-g^2), tc o(1-o))
        dc*     = dc + dh * Q                  Q = o (1 - tc^2)
        dc_prev = dc* * f
    """

    __slots__ = ("act", "c", "tc", "hidden")

    def __init__(self, c0: torch.Tensor, steps: int) -> None:
        batch, self.hidden = c0.shape
        self.act = c0.new_empty((steps, batch, 4 * self.hidden))
        self.c = c0.new_empty((steps + 1, batch, self.hidden))
        self.c[0] = c0
        self.tc = c0.new_empty((steps, batch, self.hidden))

    def step(self, gates: torch.Tensor, t: int) -> torch.Tensor:
        """gates [B, 4H] (float) at position t -> the cell's new h [B, H] (float)."""
        act, hidden = self.act[t], self.hidden
        torch.sigmoid(gates, out=act)  # the g quarter is replaced by its tanh below
        torch.tanh(gates[:, 2 * hidden: 3 * hidden], out=act[:, 2 * hidden: 3 * hidden])
        i, f, g, o = act.split(hidden, dim=1)
        c = torch.mul(f, self.c[t], out=self.c[t + 1]).addcmul_(i, g)  # c' = f c + i g
        return o * torch.tanh(c, out=self.tc[t])

    def factors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """P [T, B, 4H], Q [T, B, H] and f [T, B, H] of the backward pass (the class docstring)."""
        i, f, g, o = self.act.split(self.hidden, dim=2)
        p = torch.addcmul(self.act, self.act, self.act, value=-1)  # sigma' = s (1 - s) for i, f, o
        torch.addcmul(torch.ones_like(g), g, g, value=-1, out=p[:, :, 2 * self.hidden: 3 * self.hidden])  # 1 - g^2
        p.mul_(torch.cat([g, self.c[:-1], i, self.tc], dim=2))
        return p, torch.addcmul(o, o * self.tc, self.tc, value=-1), f  # q = o - o tc^2


class _FedDecoder(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, layers: int, drop: Optional[torch.Tensor], gates0: torch.Tensor, feed: torch.Tensor,
                h0: torch.Tensor, c0: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor,
                w_c: torch.Tensor, *flat: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.autocast(gates0.device.type, enabled=False):  # the dtypes here are chosen by hand
            return _FedDecoder._forward(ctx, layers, drop, gates0, feed, h0, c0, memory, keys, mask, w_c, flat)

    @staticmethod
    def _forward(ctx: Any, layers: int, drop: Optional[torch.Tensor], gates0: torch.Tensor, feed: torch.Tensor,
                 h0: torch.Tensor, c0: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor,
                 w_c: torch.Tensor, flat: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        ws, bs = [flat[0]], [None]
        for layer in range(1, layers):
            ws.append(flat[2 * layer - 1])
            bs.append(flat[2 * layer])
        dt = ws[0].dtype  # the matrix products' dtype
        acc = torch.float64 if dt == torch.float64 else torch.float32  # the cell's and derivatives' dtype
        steps, batch, hidden = gates0.size(0), gates0.size(1), h0.size(2)
        mem, key, wc = memory.to(acc), keys.to(acc), w_c.to(dt)  # attention in float: bf16 saves nothing there
        keys_t = key.transpose(1, 2)  # [B, H, S]
        blocked = torch.zeros(mask.shape, dtype=acc, device=mask.device).masked_fill_(~mask, float("-inf"))
        blocked = blocked.unsqueeze(1)  # [B, 1, S]: -inf at padding, added to the scores
        h = [x.to(dt) for x in h0.unbind(0)]  # per layer [B, H]
        cells = [Cells(x.to(acc), steps) for x in c0.unbind(0)]
        x_in = [gates0.new_empty((steps, batch, w.size(1)), dtype=dt) for w in ws]  # [x; h] per layer, position
        u = gates0.new_empty((steps, batch, 2 * hidden), dtype=dt)  # [ctx; q] per position
        outs = gates0.new_empty((steps, batch, hidden), dtype=dt)  # h~
        attn = []  # a [B, 1, S] per position
        h_tilde = feed.to(dt)
        forward = [Product(w, batch) for w in ws]  # [x; h] -> gates without the bias
        attentional = Product(wc, batch)  # [ctx; q] -> h~ before its tanh
        for t in range(steps):
            x = h_tilde
            for layer in range(layers):
                if layer and drop is not None:
                    x = x * drop[layer - 1, t].to(dt)
                torch.cat([x, h[layer]], dim=1, out=x_in[layer][t])
                gates = forward[layer](x_in[layer][t]).add_(gates0[t] if layer == 0 else bs[layer])  # [B, 4H]
                h_new = cells[layer].step(gates.to(acc), t)
                h[layer] = h_new.to(dt)
                x = h[layer]
            q = h[-1]  # [B, H]
            scores = torch.baddbmm(blocked, q.to(acc).unsqueeze(1), keys_t)  # [B, 1, S]
            a = torch.softmax(scores, dim=2)  # [B, 1, S]
            attn.append(a)
            context = torch.bmm(a, mem).squeeze(1)  # [B, H]
            torch.cat([context.to(dt), q], dim=1, out=u[t])
            h_tilde = torch.tanh(attentional(u[t]), out=outs[t])  # [B, H]
        h_acc = outs.to(acc)
        ctx.layers, ctx.hidden, ctx.dt, ctx.acc = layers, hidden, dt, acc
        ctx.factors = [cell.factors() for cell in cells]  # (P, Q, f) per layer
        ctx.x_in, ctx.u, ctx.attn, ctx.tanh_grad = x_in, u, torch.cat(attn, dim=1), 1 - h_acc * h_acc  # a: [B, T, S]
        ctx.drop, ctx.ws, ctx.mem, ctx.key, ctx.wc = drop, ws, mem, key, wc
        ctx.dtypes = (gates0.dtype, feed.dtype, h0.dtype, c0.dtype, memory.dtype, keys.dtype, w_c.dtype)
        last = attn[-1].squeeze(1)  # [B, S]
        ctx.mark_non_differentiable(last)
        return outs, torch.stack(h), torch.stack([cell.c[-1] for cell in cells]), last

    @staticmethod
    def backward(ctx: Any, d_outs: Optional[torch.Tensor], d_hn: Optional[torch.Tensor],
                 d_cn: Optional[torch.Tensor], _d_attn: Any) -> tuple[Optional[torch.Tensor], ...]:
        layers, hidden, dt, acc, ws = ctx.layers, ctx.hidden, ctx.dt, ctx.acc, ctx.ws
        steps, batch = ctx.u.size(0), ctx.u.size(1)
        zeros = ctx.u.new_zeros((batch, hidden), dtype=acc)
        dh = [zeros] * layers if d_hn is None else [x.to(acc) for x in d_hn.unbind(0)]
        dc = [zeros] * layers if d_cn is None else [x.to(acc) for x in d_cn.unbind(0)]
        d_feed = zeros
        d_gates = [ctx.u.new_empty((steps, batch, 4 * hidden), dtype=dt) for _ in range(layers)]
        d_pre = ctx.u.new_empty((steps, batch, hidden), dtype=dt)  # d (h~ before its tanh)
        d_u, d_scores = [], []  # per position, last first: d [ctx; q] [B, 2H], d scores [B, S]
        mem_t = ctx.mem.transpose(1, 2)  # [B, H, S]
        backward = [Product(w.t().contiguous(), batch) for w in ws]  # d gates -> d [x; h]
        attentional = Product(ctx.wc.t().contiguous(), batch)  # d (h~ before its tanh) -> d [ctx; q]
        for t in range(steps - 1, -1, -1):
            d_tilde = d_feed if d_outs is None else d_feed + d_outs[t].to(acc)
            torch.mul(d_tilde, ctx.tanh_grad[t], out=d_pre[t])
            du = attentional(d_pre[t])  # [B, 2H]: d context, d q
            d_u.append(du)
            a = ctx.attn[:, t]  # [B, S]
            da = torch.bmm(du[:, :hidden].to(acc).unsqueeze(1), mem_t).squeeze(1)  # [B, S]
            ds = torch._softmax_backward_data(da, a, 1, a.dtype)  # a (da - sum(a da)): 0 at padding
            d_scores.append(ds)
            dq = torch.baddbmm(du[:, hidden:].to(acc).unsqueeze(1), ds.unsqueeze(1), ctx.key).squeeze(1)  # [B, H]
            dh[-1] = dh[-1] + dq
            for layer in range(layers - 1, -1, -1):
                p, q, f = ctx.factors[layer]
                dc_now = torch.addcmul(dc[layer], dh[layer], q[t])  # dc*
                quarters, p_t = d_gates[layer][t].view(batch, 4, hidden), p[t].view(batch, 4, hidden)
                torch.mul(p_t[:, :3], dc_now.unsqueeze(1), out=quarters[:, :3])  # i, f, g: times dc*
                torch.mul(p_t[:, 3], dh[layer], out=quarters[:, 3])  # o: times dh
                dc[layer] = dc_now * f[t]
                dx = backward[layer](d_gates[layer][t]).to(acc)  # [B, I + H]: d input, d h_prev
                dh[layer] = dx[:, -hidden:]
                if layer:
                    d_in = dx[:, :-hidden]
                    if ctx.drop is not None:
                        d_in = d_in * ctx.drop[layer - 1, t].to(acc)
                    dh[layer - 1] = dh[layer - 1] + d_in
                else:
                    d_feed = dx[:, :-hidden]
        # Everything that does not feed back into the loop: one product over all positions each.
        d_ws, d_bs = [], []
        for layer in range(layers):
            g = d_gates[layer].view(steps * batch, -1)  # [T B, 4H]
            d_ws.append(torch.mm(g.t(), ctx.x_in[layer].view(steps * batch, -1)))  # [4H, I + H]
            d_bs.append(g.sum(dim=0) if layer else None)
        d_wc = torch.mm(d_pre.view(steps * batch, -1).t(), ctx.u.view(steps * batch, -1))  # [H, 2H]
        d_context = torch.stack(d_u[::-1], dim=1)[:, :, :hidden].to(acc)  # [B, T, H]
        d_memory = torch.bmm(ctx.attn.transpose(1, 2), d_context)  # [B, S, H]
        queries = ctx.u[:, :, hidden:].transpose(0, 1).to(acc)  # [B, T, H]
        d_keys = torch.bmm(torch.stack(d_scores[::-1], dim=2), queries)  # [B, S, H]
        dtypes = ctx.dtypes
        flat_grads: list[Optional[torch.Tensor]] = [d_ws[0]]
        for layer in range(1, layers):
            flat_grads += [d_ws[layer], d_bs[layer]]
        return (None, None, d_gates[0].to(dtypes[0]), d_feed.to(dtypes[1]), torch.stack(dh).to(dtypes[2]),
                torch.stack(dc).to(dtypes[3]), d_memory.to(dtypes[4]), d_keys.to(dtypes[5]), None,
                d_wc.to(dtypes[6]), *flat_grads)
