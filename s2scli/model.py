"""The sequence-to-sequence network of Sutskever, Vinyals & Le (2014), as a small torch module.

Tensors in, tensors out: this module knows nothing of files, strings or vocabularies.

    source ids --embed--> encoder LSTM stack (reads the source reversed [3.3])
                          final (h, c) of layer i --> initial (h, c) of decoder layer i
    <s> y1 .. yn --embed--> decoder LSTM stack --linear--> logits over the target vocabulary [2]

With ``attention="none"`` (the default, the paper's model) the whole source reaches the decoder through
the encoder's final state. The other settings add Luong et al. (2015) global attention with input
feeding: at step t the top decoder output h_t is compared with the encoder's top-layer output hbar_s
of every source position s (``dot``: h_t . hbar_s; ``general``: h_t . W_a hbar_s; ``concat``:
v . tanh(W_a [h_t; hbar_s])), the softmax of those scores over the real source positions weights
the context c_t = sum_s a_t(s) hbar_s, and the attentional state h~_t = tanh(W_c [c_t; h_t]) feeds
the output layer and, concatenated to the next target embedding, the decoder's first layer (input
feeding). With ``input_feeding=False`` the decoder reads the target embeddings alone, so teacher-forced
training runs the decoder over all positions in one call and attends for all of them at once (faster
on a CPU, where the per-position loop dominates); ``attn_out`` then maps all positions' [c_t; h_t] in one
matrix product, the same function of each position as with input feeding. With input feeding (and in
``step``, one position at a time) the decoder's LSTM cell is run by hand from ``nn.LSTM``'s own weights,
in its gate order, the embedding's share of layer 1's gates computed for all positions in one product
before the loop: the same function as ``nn.LSTM``, summed in another order. Training (gradients wanted,
``dot`` or ``general`` attention) runs that loop as one autograd function with a hand-written backward
pass (``feeding.py``): again the same function, summed in another order.

``dropout`` (Zaremba et al. 2014) is applied between LSTM layers and to what enters the output layer,
in training mode only.

Decoding (gradients off) derives what it needs from the weights once rather than at every step
(``DecodeCache``: the decoder's concatenated weights and summed biases, the output layer's weight packed
for the CPU's kernels by ``packed.Product``), and derives it again when a parameter changes.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .config import ATTENTIONS, ModelConfig
from .feeding import decode_fed
from .packed import Product


class State(NamedTuple):
    """The decoder's state for N rows (sentences, or the hypotheses of beam search) of M sentences.

    A model without attention uses only ``h`` and ``c``; an attention model also carries the encoder's
    outputs. Those are per sentence (M rows), the rest per decoder row (N rows, a multiple of M): the
    N / M rows of a sentence are consecutive (sentence-major), and attend to that sentence's memory. In
    training and greedy search N = M; beam search keeps k rows a sentence without copying its memory.
    """

    h: torch.Tensor  # [layers, N, hidden]
    c: torch.Tensor  # [layers, N, hidden]
    memory: Optional[torch.Tensor] = None  # [M, S, hidden] encoder top-layer outputs, ORIGINAL source order
    keys: Optional[torch.Tensor] = None  # [M, S, hidden] memory projected by W_a (general, concat); None: memory
    mask: Optional[torch.Tensor] = None  # [M, S] True at real source tokens
    feed: Optional[torch.Tensor] = None  # [N, hidden] the last attentional state h~ (input feeding)
    attn: Optional[torch.Tensor] = None  # [N, S] attention weights of the step that made this state

    def select(self, rows: torch.Tensor, sentences: Optional[torch.Tensor] = None) -> "State":
        """Keep/reorder the decoder rows ``rows`` [N'] (``h``, ``c`` along dim 1, ``feed``, ``attn`` dim 0) and
        the sentences ``sentences`` [M'] of the encoder's tensors (default: ``rows``, for one row a sentence)."""
        sentences = rows if sentences is None else sentences
        return State(*(None if t is None else t.index_select(1 if i < 2 else 0, sentences if 2 <= i <= 4 else rows)
                       for i, t in enumerate(self)))

    def select_decoder(self, rows: torch.Tensor) -> "State":
        """Keep/reorder/repeat the decoder rows ``rows`` [N'] only, within the same sentences (the encoder's
        tensors stay where they are): rows ``rows[j]`` must belong to sentence ``j // (N' / M)``."""
        return self._replace(h=self.h.index_select(1, rows), c=self.c.index_select(1, rows),
                             **{name: None if getattr(self, name) is None else getattr(self, name).index_select(0, rows)
                                for name in ("feed", "attn")})


class DecodeCache:
    """What decoding derives from the weights once rather than at every step: the decoder's concatenated
    weights and summed biases, the output layer's packed weight. Each entry is kept with the data pointer and
    version counter of every parameter it was made from (an in-place update such as ``load_state_dict`` or
    most optimizers' steps moves the counter), and rebuilt when they change. ``Seq2Seq`` uses it only in
    eval mode with gradients off, and empties it whenever its mode is set (a fused optimizer's step moves no
    counter). A copy of the model starts with an empty cache."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[tuple[tuple[int, int], ...], Any]] = {}

    def get(self, name: str, params: list[torch.Tensor], build: Callable[[], Any]) -> Any:
        key = tuple((p.data_ptr(), p._version) for p in params)
        hit = self.entries.get(name)
        if hit is None or hit[0] != key:
            hit = self.entries[name] = (key, build())
        return hit[1]

    def __deepcopy__(self, memo: dict) -> "DecodeCache":
        return DecodeCache()


class Seq2Seq(nn.Module):
    # Training with input feeding runs feeding.py's hand-written backward pass; False: autograd's own, through
    # the loop over positions (the reference it is tested and benchmarked against).
    hand_backward: bool = True

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        check_attention(config.attention)
        self.config = config
        self.attention = config.attention != "none"
        between = config.dropout if config.layers > 1 else 0.0  # nn.LSTM drops between layers only
        self.input_feeding = self.attention and config.input_feeding
        dec_input = config.embedding + (config.hidden if self.input_feeding else 0)
        self.src_embed = nn.Embedding(config.src_vocab_size, config.embedding)
        self.tgt_embed = nn.Embedding(config.tgt_vocab_size, config.embedding)
        self.encoder = nn.LSTM(config.embedding, config.hidden, config.layers, dropout=between)
        self.decoder = nn.LSTM(dec_input, config.hidden, config.layers, dropout=between)
        self.output = nn.Linear(config.hidden, config.tgt_vocab_size)
        if config.attention in ("general", "concat"):
            self.attn_key = nn.Linear(config.hidden, config.hidden, bias=False)  # W_a's source half
        if config.attention == "concat":
            self.attn_query = nn.Linear(config.hidden, config.hidden, bias=False)  # W_a's target half
            self.attn_v = nn.Linear(config.hidden, 1, bias=False)
        if self.attention:
            self.attn_out = nn.Linear(2 * config.hidden, config.hidden, bias=False)  # W_c
        self.decode_cache = DecodeCache()
        self.reset_parameters()

    def train(self, mode: bool = True) -> "Seq2Seq":
        """nn.Module's, and ``decode_cache`` is emptied: the weights change while training, and a fused
        optimizer's update (``Adam(fused=True)``) does not move their version counters, so what decoding
        derived from them is dropped whenever the mode is set (``s2s train`` sets eval mode to validate and
        training mode after)."""
        self.decode_cache.entries.clear()
        return super().train(mode)

    def _decoding(self) -> bool:
        """Eval mode with gradients off: the only time ``decode_cache`` is used."""
        return not (self.training or torch.is_grad_enabled())

    def _derived(self, name: str, params: list[torch.Tensor], build: Callable[[], Any]) -> Any:
        """``build()`` of ``params``: while decoding (``_decoding``) made once and kept in ``decode_cache``
        until a parameter changes or the mode is set; otherwise made at every call (and the cache emptied)."""
        if not self._decoding():
            self.decode_cache.entries.clear()
            return build()
        return self.decode_cache.get(name, params, build)

    def reset_parameters(self) -> None:
        """Every parameter uniform in [-init_scale, init_scale] [3.4]."""
        for p in self.parameters():
            nn.init.uniform_(p, -self.config.init_scale, self.config.init_scale)

    # ------------------------------------------------------------------------------------ encoder

    def encode(self, src: torch.Tensor, lengths: torch.Tensor) -> State:
        """The decoder's starting state for each source sentence.

        src: [B, S] ids in reading order, padded at the end; lengths: [B], each >= 1.
        Returns the encoder's final (h, c), each [layers, B, hidden], and for an attention model also
        its top-layer outputs (``memory`` [B, S', hidden], S' the longest length), the source mask and
        a zero input-feeding vector. ``memory[b, i]`` is the output for source token ``i`` of the
        sentence as given (the encoder's output after reading it, whatever the reading direction), so
        attention weights index original source positions.

        The LSTM always sees plain dense tensors (the fast path on CPU and GPU) and padding never enters
        the state: rows sorted longest first, it runs up to the shortest length for all rows, continues
        from there for the rows still running up to the next length, and so on.
        """
        h, c, memory = self.encode_source(src, lengths, outputs=self.attention)
        if memory is None:
            return State(h, c)
        mask = torch.arange(memory.size(1), device=memory.device).unsqueeze(0) < lengths.unsqueeze(1)  # [B, S']
        keys = self.attn_key(memory) if hasattr(self, "attn_key") else None
        feed = memory.new_zeros((memory.size(0), self.config.hidden)) if self.input_feeding else None
        return State(h, c, memory, keys, mask, feed)

    def encode_source(
        self, src: torch.Tensor, lengths: torch.Tensor, outputs: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """The encoder's final (h, c) [layers, B, hidden] and, with ``outputs``, its top layer's
        outputs [B, S', hidden] (S' = the longest length; zeros past each length), in original source
        order: with ``reverse`` the encoder reads token S-1 first, and its output after reading token
        i is put back at position i."""
        if self.config.reverse:
            src = reverse_padded(src, lengths)
        lens = lengths.tolist()
        if min(lens) == max(lens):
            out, (h, c) = self._encode_dense(src[:, : lens[0]])
            memory = out if outputs else None
        else:  # rows longest first; the LSTM runs up to each distinct length, then drops the rows that end there
            order = sorted(range(len(lens)), key=lambda i: -lens[i])  # [B] row indices, longest first
            ends = sorted(set(lens))  # ascending
            emb = self.src_embed(src[torch.tensor(order, device=src.device)].t())  # [S', B, E], rows in ``order``
            state, start, outs, finals = None, 0, [], []
            for end in ends:
                running = sum(1 for length in lens if length >= end)  # the first ``running`` rows of ``order``
                if state is not None:  # cuDNN takes only contiguous states (a slice of dim 1 is not)
                    state = (state[0][:, :running].contiguous(), state[1][:, :running].contiguous())
                out, state = self.encoder(emb[start:end, :running].contiguous(), state)  # [end - start, running, H]
                outs.append(F.pad(out, (0, 0, 0, len(lens) - running)) if outputs else None)  # zeros for ended rows
                finals.append((state[0][:, running - lens.count(end):], state[1][:, running - lens.count(end):]))
                start = end
            unsort = torch.tensor(sorted(range(len(lens)), key=lambda i: order[i]), device=src.device)  # [B]
            h = torch.cat([f[0] for f in reversed(finals)], dim=1).index_select(1, unsort)  # [layers, B, H]
            c = torch.cat([f[1] for f in reversed(finals)], dim=1).index_select(1, unsort)
            memory = torch.cat(outs).transpose(0, 1).index_select(0, unsort) if outputs else None  # [B, S', H]
        if memory is not None and self.config.reverse:
            memory = reverse_padded(memory, lengths)
        return h, c, memory

    def _encode_dense(self, src: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """src: [B, S] with no padding -> top-layer outputs [B, S, hidden] (a view) and final (h, c)."""
        emb = self.src_embed(src.t())  # [S, B, E]
        out, state = self.encoder(emb)
        return out.transpose(0, 1), state

    # ------------------------------------------------------------------------------------ decoder

    def decode(self, tgt_in: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Run the decoder over whole target prefixes (teacher forcing).

        tgt_in: [B, T] (<s> y1 .. y_{T-1}); state: from ``encode``.
        Returns what enters the output layer at each position [B, T, hidden] (the top layer's outputs,
        or with attention the attentional states h~) and the final state.
        """
        emb = self.tgt_embed(tgt_in.t())  # [T, B, E]
        if not self.input_feeding:  # every position's input is known: one LSTM call for all of them
            out, (h, c) = self.decoder(emb, (state.h, state.c))  # out: [T, B, H]
            out = out.transpose(0, 1)  # [B, T, H]
            if not self.attention:
                return out, state._replace(h=h, c=c)
            h_tilde, weights = self._attend(out, state)  # [B, T, H], [B, T, S]
            return h_tilde, state._replace(h=h, c=c, attn=weights[:, -1])
        return self._decode_fed(emb, state)

    # The decoder with input feeding runs one position at a time (position t reads h~_{t-1}). Rather than
    # calling nn.LSTM once per position (a heavy call, slow on CPU), it runs the same LSTM by hand with the
    # same parameters, gates in nn.LSTM's order (i, f, g, o):
    #     gates = W_ih x + b_ih + W_hh h + b_hh;  c' = sigma(f) * c + sigma(i) * tanh(g);  h' = sigma(o) * tanh(c')
    # The first layer's input is [emb_t; h~_{t-1}], so W_ih x = W_ih[:, :E] emb_t + W_ih[:, E:] h~_{t-1}: the
    # embeddings' share is computed for all positions in one matrix product before the loop. Only the order
    # of floating-point sums differs from nn.LSTM.

    def _decoder_weights(self, dtype: torch.dtype) -> list[tuple[torch.Tensor, Optional[torch.Tensor]]]:
        """Per decoder layer: the recurrent weights [4H, I' + H] (the input part, then W_hh) and the bias
        b_ih + b_hh [4H] (None for the first layer, whose bias ``_embedding_gates`` adds), in ``dtype``
        (under bf16 autocast they are cast once here, not at every step; while decoding, made once for all
        steps). For the first layer the input part is W_ih[:, E:], the h~ part (none without input feeding):
        ``_embedding_gates`` applies the rest."""
        return self._derived(f"decoder weights {dtype}", list(self.decoder.parameters()),
                             lambda: self._concatenated_decoder_weights(dtype))

    def _concatenated_decoder_weights(self, dtype: torch.dtype) -> list[tuple[torch.Tensor, Optional[torch.Tensor]]]:
        lstm, e = self.decoder, self.config.embedding
        weights = []
        for layer in range(self.config.layers):
            w_ih = getattr(lstm, f"weight_ih_l{layer}")  # [4H, I]
            if layer == 0:
                w_ih = w_ih[:, e:]  # [4H, H] (input feeding) or [4H, 0]
            w_hh = getattr(lstm, f"weight_hh_l{layer}")  # [4H, H]
            w = torch.cat([w_ih, w_hh], dim=1) if w_ih.size(1) else w_hh  # [4H, I' + H]
            bias = getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")  # [4H]
            weights.append((w.to(dtype), bias.to(dtype) if layer else None))
        return weights

    def _embedding_gates(self, emb: torch.Tensor) -> torch.Tensor:
        """emb [..., E] -> the first decoder layer's gate inputs from the embeddings, plus its biases [..., 4H]."""
        lstm = self.decoder
        w, b = self._derived("embedding gates", [lstm.weight_ih_l0, lstm.bias_ih_l0, lstm.bias_hh_l0],
                             lambda: (lstm.weight_ih_l0[:, : self.config.embedding], lstm.bias_ih_l0 + lstm.bias_hh_l0))
        return F.linear(emb, w, b)

    def _decoder_step(
        self, gates0: torch.Tensor, feed: Optional[torch.Tensor], h: list[torch.Tensor], c: list[torch.Tensor],
        weights: list[tuple[torch.Tensor, Optional[torch.Tensor]]],
    ) -> None:
        """One position through the decoder stack, updating the lists ``h`` and ``c`` (per layer [N, H]) in place.

        gates0 [N, 4H]: the first layer's gates from the embedding (``_embedding_gates``); feed [N, H]: h~_{t-1},
        or None without input feeding. Dropout between layers as nn.LSTM applies it (training only).
        """
        x = feed
        for layer, (w, bias) in enumerate(weights):
            if layer == 0:
                xh = h[0] if feed is None else torch.cat([feed.to(h[0].dtype), h[0]], dim=1)  # [N, (H +) H]
                gates = torch.addmm(gates0, xh, w.t())  # [N, 4H]
            else:
                if self.config.dropout and self.training:
                    x = F.dropout(x, self.config.dropout, training=True)
                gates = torch.addmm(bias, torch.cat([x, h[layer]], dim=1), w.t())  # [N, 4H]
            h[layer], c[layer] = lstm_cell(gates, c[layer])
            x = h[layer]

    def _decode_fed(self, emb: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Teacher-forced decoding with input feeding: emb [T, B, E] -> h~ [B, T, H] and the final state."""
        outs = []
        if type(self.decoder) is not nn.LSTM:  # see _position
            for emb_t in emb.unbind(0):
                top, state = self._position(emb_t, state)
                h_tilde, state = self._attention_position(top, state)
                outs.append(h_tilde)
            return torch.stack(outs, dim=1), state
        gates0 = self._embedding_gates(emb)  # [T, B, 4H]
        weights = self._decoder_weights(gates0.dtype)
        if self.hand_backward and torch.is_grad_enabled() and self.config.attention in ("dot", "general"):
            return self._decode_fed_fused(gates0, weights, state)  # training: feeding.py's backward pass
        gates0 = gates0.unbind(0)  # per position [B, 4H]
        h, c = list(state.h.unbind(0)), list(state.c.unbind(0))  # per layer [B, H]
        for gates0_t in gates0:  # input feeding makes each step depend on the last one's h~
            self._decoder_step(gates0_t, state.feed, h, c, weights)
            h_tilde, state = self._attention_position(h[-1], state)  # [B, H]
            outs.append(h_tilde)
        return torch.stack(outs, dim=1), state._replace(h=torch.stack(h), c=torch.stack(c))

    def _decode_fed_fused(
        self, gates0: torch.Tensor, weights: list[tuple[torch.Tensor, Optional[torch.Tensor]]], state: State
    ) -> tuple[torch.Tensor, State]:
        """``_decode_fed``'s loop as one autograd function with a hand-written backward (``feeding.py``): the
        same function, faster to train. gates0 [T, B, 4H] -> h~ [B, T, H] and the final state."""
        assert state.memory is not None and state.mask is not None and state.feed is not None
        drop = None
        if self.config.dropout and self.training and self.config.layers > 1:  # nn.LSTM's, between layers
            keep = 1 - self.config.dropout
            shape = (self.config.layers - 1, gates0.size(0), gates0.size(1), self.config.hidden)
            drop = torch.empty(shape, device=gates0.device).bernoulli_(keep).div_(keep)  # [L-1, T, B, H]
        keys = state.memory if state.keys is None else state.keys
        outs, h, c, attn = decode_fed(gates0, state.feed, state.h, state.c, state.memory, keys, state.mask,
                                      self.attn_out.weight.to(gates0.dtype), weights, drop)  # outs: [T, B, H]
        return outs.transpose(0, 1), state._replace(h=h, c=c, feed=outs[-1], attn=attn)

    def _attend(self, query: torch.Tensor, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        """Global attention for T decoder positions at once.

        query: [N, T, H] top decoder outputs h_t -> attentional states h~_t [N, T, H] and the
        weights a_t [N, T, S] (float32) over the real source positions. The N rows are those of
        ``state`` (g = N / M consecutive rows a sentence): each sentence's g*T queries go through one
        matrix product with its memory.
        """
        assert state.memory is not None and state.mask is not None
        n, t, hidden = query.shape
        m = state.memory.size(0)
        query = query.reshape(m, n // m * t, hidden)  # [M, g*T, H]
        keys = state.memory if state.keys is None else state.keys  # [M, S, H]
        if self.config.attention == "concat":
            mixed = torch.tanh(self.attn_query(query).unsqueeze(2) + keys.unsqueeze(1))  # [M, g*T, S, H]
            scores = self.attn_v(mixed).squeeze(3)  # [M, g*T, S]
        else:
            scores = torch.bmm(query, keys.transpose(1, 2).to(query.dtype))  # [M, g*T, S]
        weights = F.softmax(scores.float().masked_fill(~state.mask.unsqueeze(1), float("-inf")), dim=2)
        context = torch.bmm(weights.to(state.memory.dtype), state.memory)  # [M, g*T, H]
        h_tilde = torch.tanh(self.attn_out(torch.cat([context.to(query.dtype), query], dim=2)))  # [M, g*T, H]
        return h_tilde.view(n, t, hidden), weights.view(n, t, -1)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The output layer, after dropout when training with ``dropout`` > 0."""
        if self.config.dropout and self.training:
            hidden = F.dropout(hidden, self.config.dropout, training=True)
        if not self._decoding() or type(self.output) is not nn.Linear or autocast_on(hidden.device.type):
            return self.output(hidden)
        # Decoding: the output layer's weight packed once for all steps (the same sums as nn.Linear's).
        flat = hidden.reshape(-1, hidden.size(-1)).contiguous()  # [N, H]
        layer = self._derived("output layer", [self.output.weight, self.output.bias],
                              lambda: Product(self.output.weight, flat.size(0), self.output.bias))
        return layer(flat).view(*hidden.shape[:-1], -1)

    def forward(
        self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor, tgt_out: torch.Tensor,
        label_smoothing: float = 0.0,
    ) -> torch.Tensor:
        """Summed negative log-likelihood of the targets (a scalar); with ``label_smoothing`` e > 0, the
        summed cross-entropy against targets smoothed to 1 - e on the right word and e / V everywhere.

        src: [B, S], src_lengths: [B], tgt_in: [B, T] (<s> y1..), tgt_out: [B, T] (y1 .. </s>), with
        ``pad_id`` where a target is shorter. The output layer runs only at non-pad positions.
        """
        hidden, _ = self.decode(tgt_in, self.encode(src, src_lengths))  # [B, T, H]
        mask = tgt_out != self.config.pad_id  # [B, T]
        logits = self.logits(hidden[mask])  # [N, V]
        if label_smoothing:
            return F.cross_entropy(logits.float(), tgt_out[mask], reduction="sum", label_smoothing=label_smoothing)
        return F.cross_entropy(logits.float(), tgt_out[mask], reduction="sum")

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One decoding step: log-probabilities of the next token.

        tokens: [N] the previous token of each hypothesis; state: [N] rows.
        Returns log-probs [N, V] (float32) and the new state (with attention: ``attn`` [N, S], the
        weights this step gave each source position).
        """
        top, state = self._position(self.tgt_embed(tokens), state)  # [N, H]
        if not self.attention:
            return F.log_softmax(self.logits(top).float(), dim=-1), state
        h_tilde, state = self._attention_position(top, state)  # [N, H]
        return F.log_softmax(self.logits(h_tilde).float(), dim=-1), state

    def _position(self, emb: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One position through the decoder stack: emb [N, E] -> the top layer's output [N, H] and the state
        with the new (h, c). By hand (see above), unless the decoder is no longer a plain nn.LSTM (int8
        dynamic quantization replaces it with its own module): then that module is called."""
        if type(self.decoder) is not nn.LSTM:
            x = emb if state.feed is None else torch.cat([emb, state.feed.to(emb.dtype)], dim=1)  # [N, E (+ H)]
            out, (h, c) = self.decoder(x.unsqueeze(0), (state.h, state.c))  # out: [1, N, H]
            return out[0], state._replace(h=h, c=c)
        gates0 = self._embedding_gates(emb)  # [N, 4H]
        h, c = list(state.h.unbind(0)), list(state.c.unbind(0))  # per layer [N, H]
        self._decoder_step(gates0, state.feed, h, c, self._decoder_weights(gates0.dtype))
        return h[-1], state._replace(h=torch.stack(h), c=torch.stack(c))

    def _attention_position(self, top: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """top [N, H] (the decoder's top output at one position) -> h~ [N, H] and the state with this
        position's attention weights and, with input feeding, h~ to feed to the next position."""
        h_tilde, attn = self._attend(top.unsqueeze(1), state)  # [N, 1, H], [N, 1, S]
        h_tilde = h_tilde[:, 0]
        return h_tilde, state._replace(feed=h_tilde if state.feed is not None else None, attn=attn[:, 0])

    def score(
        self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor, tgt_out: torch.Tensor
    ) -> torch.Tensor:
        """Log-probability of each target sentence given its source: [B] (sum over its tokens and </s>)."""
        hidden, _ = self.decode(tgt_in, self.encode(src, src_lengths))  # [B, T, H]
        logp = F.log_softmax(self.logits(hidden).float(), dim=-1)  # [B, T, V]
        mask = tgt_out != self.config.pad_id
        picked = logp.gather(2, tgt_out.clamp(min=0).unsqueeze(2)).squeeze(2)  # [B, T]
        return (picked * mask).sum(dim=1)


def lstm_cell(gates: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """nn.LSTM's cell: gates [N, 4H] (i, f, g, o), c [N, H] -> the new (h, c), each [N, H].

    With bf16 (or fp16) gates the cell runs in float32 and c stays float32, so the cell state does not
    gather bf16 rounding from step to step; h comes back in the gates' dtype, as the next matrix products
    want it. In float32 and float64 nothing is converted.
    """
    dtype = gates.dtype
    if dtype in (torch.bfloat16, torch.float16):
        gates, c = gates.float(), c.float()
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return (torch.sigmoid(o) * torch.tanh(c)).to(dtype), c


def autocast_on(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` ("cpu", "cuda"), on every torch from 2.2."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: no device argument
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def reverse_padded(src: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row's first ``lengths[b]`` entries, leaving the padding at the end.

    src: [B, S] or [B, S, ...], lengths: [B] -> the same shape (dims after the second move along).
    """
    b, s = src.shape[:2]
    pos = torch.arange(s, device=src.device).unsqueeze(0)  # [1, S]
    idx = lengths.unsqueeze(1) - 1 - pos  # [B, S]
    idx = torch.where(idx >= 0, idx, pos)  # padding positions stay where they are
    if src.dim() > 2:
        idx = idx.view(b, s, *([1] * (src.dim() - 2))).expand_as(src)
    return src.gather(1, idx)


def check_attention(attention: str) -> None:
    """ValueError unless ``attention`` is one the model knows (``ATTENTIONS``)."""
    if attention not in ATTENTIONS:
        raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}, got {attention!r}")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def weight_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The name and shape of every entry of ``Seq2Seq(config).state_dict()``, without building it (a
    model file's weights are checked against these before torch meets them; building even on the meta
    device cost seconds, for nn.Embedding's normal_ init there)."""
    sizes = (config.src_vocab_size, config.tgt_vocab_size, config.layers, config.hidden, config.embedding)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes):
        raise ValueError(f"sizes must be positive integers, got {sizes}")
    check_attention(config.attention)
    if not isinstance(config.dropout, (int, float)) or isinstance(config.dropout, bool) or not 0 <= config.dropout <= 1:
        raise ValueError(f"dropout must be a number in [0, 1], got {config.dropout!r}")  # as nn.LSTM asks
    if not all(isinstance(flag, bool) for flag in (config.reverse, config.input_feeding)):
        raise ValueError("reverse and input_feeding must be true or false")
    emb, hid, layers = config.embedding, config.hidden, config.layers
    feeding = config.attention != "none" and config.input_feeding
    shapes: dict[str, tuple[int, ...]] = {"src_embed.weight": (config.src_vocab_size, emb),
                                          "tgt_embed.weight": (config.tgt_vocab_size, emb)}
    for name, first_input in (("encoder", emb), ("decoder", emb + (hid if feeding else 0))):
        for i in range(layers):  # nn.LSTM's own names and gate-stacked shapes
            shapes |= {f"{name}.weight_ih_l{i}": (4 * hid, first_input if i == 0 else hid),
                       f"{name}.weight_hh_l{i}": (4 * hid, hid),
                       f"{name}.bias_ih_l{i}": (4 * hid,), f"{name}.bias_hh_l{i}": (4 * hid,)}
    shapes |= {"output.weight": (config.tgt_vocab_size, hid), "output.bias": (config.tgt_vocab_size,)}
    if config.attention in ("general", "concat"):
        shapes["attn_key.weight"] = (hid, hid)
    if config.attention == "concat":
        shapes |= {"attn_query.weight": (hid, hid), "attn_v.weight": (1, hid)}
    if config.attention != "none":
        shapes["attn_out.weight"] = (hid, 2 * hid)
    return shapes
