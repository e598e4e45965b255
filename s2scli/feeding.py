"""Teacher-forced decoding with input feeding, as one autograd function with a hand-written backward pass.

Tensors in, tensors out, like ``model.py``, which calls ``decode_fed`` while training (gradients wanted) a
model with ``dot`` or ``general`` attention and input feeding. It computes exactly what ``Seq2Seq``'s loop
over positions computes (``_decode_fed``: the decoder LSTM by hand in ``nn.LSTM``'s gate order, then Luong
attention), summed in another order, and it is faster because:

- the forward pass records no autograd graph: per position and layer autograd would keep ~20 nodes, and
  run each one's backward as its own small operation;
- the backward pass runs each LSTM cell's derivative as three element-wise operations on factors the
  forward pass left ready (``Cell``);
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


class Cell:
    """The factors one LSTM cell's backward pass needs (all [B, H] or [B, 4H]); ``Cell.run`` also returns the
    cell's new (h, c), which it does not keep (the backward pass never reads them).

    With ``act`` = (i, f, g, o) after their nonlinearities and tc = tanh(c'):
        d gates = P * [dc*, dc*, dc*, dh]      P = (g i(1-i), c f(1-f), i (1-g^2), tc o(1-o))
        dc*     = dc + dh * Q                  Q = o (1 - tc^2)
        dc_prev = dc* * f
    """

    __slots__ = ("p", "q", "f")

    def __init__(self, p: torch.Tensor, q: torch.Tensor, f: torch.Tensor) -> None:
        self.p, self.q, self.f = p, q, f

    @staticmethod
    def run(gates: torch.Tensor, c: torch.Tensor, hidden: int) -> tuple["Cell", torch.Tensor, torch.Tensor]:
        """gates [B, 4H], c [B, H] (float) -> the cell's backward factors and its new h, c [B, H]."""
        act = torch.sigmoid(gates)  # [B, 4H]; the g quarter is replaced by its tanh below
        g = act[:, 2 * hidden: 3 * hidden]
        torch.tanh(gates[:, 2 * hidden: 3 * hidden], out=g)
        i, f, o = act[:, :hidden], act[:, hidden: 2 * hidden], act[:, 3 * hidden:]
        c_new = torch.addcmul(f * c, i, g)  # [B, H]
        tc = torch.tanh(c_new)
        h = o * tc
        p = torch.addcmul(act, act, act, value=-1)  # sigma' = s (1 - s) for i, f, o
        torch.addcmul(torch.ones_like(g), g, g, value=-1, out=p[:, 2 * hidden: 3 * hidden])  # tanh' = 1 - g^2
        p.mul_(torch.cat([g, c, i, tc], dim=1))
        return Cell(p, torch.addcmul(o, h, tc, value=-1), f), h, c_new  # q = o - o tc^2

    def backward(self, dh: torch.Tensor, dc: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """dh, dc [B, H] (float) -> d gates into ``out`` [B, 4H] (any dtype); returns dc_prev [B, H]."""
        dc = torch.addcmul(dc, dh, self.q)
        torch.mul(self.p, torch.cat([dc, dc, dc, dh], dim=1), out=out)
        return dc * self.f


class Product:
    """x -> x W^T for a weight W [out, in] used at every position: on a CPU in fp32 through MKL with W packed
    once (1.1-1.4x faster for products of 64 rows measured alone, 1.05x on a whole training step; the same
    sums as ``torch.mm``), else a plain ``torch.mm``."""

    def __init__(self, w: torch.Tensor, rows: int) -> None:
        self.w, self.rows, self.packed = w, rows, None
        mkl = getattr(torch.ops, "mkl", None)
        if w.device.type == "cpu" and w.dtype == torch.float32 and torch.backends.mkl.is_available() and mkl:
            try:
                self.packed = mkl._mkl_reorder_linear_weight(w, rows)
            except (AttributeError, RuntimeError):  # an older or a different build of torch
                self.packed = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.packed is None:
            return torch.mm(x, self.w.t())
        return torch.ops.mkl._mkl_linear(x, self.packed, self.w, None, self.rows)


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
        blocked = ~mask  # [B, S]
        h = [x.to(dt) for x in h0.unbind(0)]  # per layer [B, H]
        c = [x.to(acc) for x in c0.unbind(0)]
        x_in = [gates0.new_empty((steps, batch, w.size(1)), dtype=dt) for w in ws]  # [x; h] per layer, position
        cells: list[list[Cell]] = [[] for _ in range(layers)]
        u = gates0.new_empty((steps, batch, 2 * hidden), dtype=dt)  # [ctx; q] per position
        outs = gates0.new_empty((steps, batch, hidden), dtype=dt)  # h~
        attn, tanh_grad = [], []
        h_tilde = feed.to(dt)
        forward = [Product(w, batch) for w in ws]  # [x; h] -> gates without the bias
        for t in range(steps):
            x = h_tilde
            for layer in range(layers):
                if layer and drop is not None:
                    x = x * drop[layer - 1, t].to(dt)
                torch.cat([x, h[layer]], dim=1, out=x_in[layer][t])
                gates = forward[layer](x_in[layer][t]).add_(gates0[t] if layer == 0 else bs[layer])  # [B, 4H]
                cell, h_new, c[layer] = Cell.run(gates.to(acc), c[layer], hidden)
                cells[layer].append(cell)
                h[layer] = h_new.to(dt)
                x = h[layer]
            q = h[-1]  # [B, H]
            scores = torch.bmm(q.to(acc).unsqueeze(1), keys_t).squeeze(1)  # [B, S]
            a = torch.softmax(scores.masked_fill_(blocked, float("-inf")), dim=1)  # [B, S]
            context = torch.bmm(a.unsqueeze(1), mem).squeeze(1)  # [B, H]
            torch.cat([context.to(dt), q], dim=1, out=u[t])
            h_tilde = torch.tanh(torch.mm(u[t], wc.t()), out=outs[t])  # [B, H]
            h_acc = h_tilde.to(acc)
            tanh_grad.append(1 - h_acc * h_acc)
            attn.append(a)
        ctx.layers, ctx.hidden, ctx.dt, ctx.acc = layers, hidden, dt, acc
        ctx.cells, ctx.x_in, ctx.u, ctx.attn, ctx.tanh_grad = cells, x_in, u, attn, tanh_grad
        ctx.drop, ctx.ws, ctx.mem, ctx.key, ctx.wc = drop, ws, mem, key, wc
        ctx.dtypes = (gates0.dtype, feed.dtype, h0.dtype, c0.dtype, memory.dtype, keys.dtype, w_c.dtype)
        ctx.mark_non_differentiable(attn[-1])
        return outs, torch.stack(h), torch.stack(c), attn[-1]

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
        d_context = ctx.u.new_empty((steps, batch, hidden), dtype=acc)
        d_scores = ctx.u.new_empty((steps, batch, ctx.mem.size(1)), dtype=acc)
        mem_t = ctx.mem.transpose(1, 2)  # [B, H, S]
        backward = [Product(w.t().contiguous(), batch) for w in ws]  # d gates -> d [x; h]
        for t in range(steps - 1, -1, -1):
            d_tilde = d_feed if d_outs is None else d_feed + d_outs[t].to(acc)
            torch.mul(d_tilde, ctx.tanh_grad[t], out=d_pre[t])
            du = torch.mm(d_pre[t], ctx.wc)  # [B, 2H]: d context, d q
            d_context[t] = du[:, :hidden]
            a = ctx.attn[t]
            da = torch.bmm(d_context[t].unsqueeze(1), mem_t).squeeze(1)  # [B, S]
            ds = torch.mul(a, da - (a * da).sum(dim=1, keepdim=True), out=d_scores[t])  # softmax's; 0 at padding
            dq = torch.baddbmm(du[:, hidden:].to(acc).unsqueeze(1), ds.unsqueeze(1), ctx.key).squeeze(1)  # [B, H]
            dh[-1] = dh[-1] + dq
            for layer in range(layers - 1, -1, -1):
                dc[layer] = ctx.cells[layer][t].backward(dh[layer], dc[layer], d_gates[layer][t])
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
        weights_t = torch.stack(ctx.attn).permute(1, 2, 0)  # [B, S, T]
        d_memory = torch.bmm(weights_t, d_context.transpose(0, 1))  # [B, S, H]
        queries = ctx.u[:, :, hidden:].transpose(0, 1).to(acc)  # [B, T, H]
        d_keys = torch.bmm(d_scores.permute(1, 2, 0), queries)  # [B, S, H]
        dtypes = ctx.dtypes
        flat_grads: list[Optional[torch.Tensor]] = [d_ws[0]]
        for layer in range(1, layers):
            flat_grads += [d_ws[layer], d_bs[layer]]
        return (None, None, d_gates[0].to(dtypes[0]), d_feed.to(dtypes[1]), torch.stack(dh).to(dtypes[2]),
                torch.stack(dc).to(dtypes[3]), d_memory.to(dtypes[4]), d_keys.to(dtypes[5]), None,
                d_wc.to(dtypes[6]), *flat_grads)
