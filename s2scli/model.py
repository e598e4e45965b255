"""The sequence-to-sequence network of Sutskever, Vinyals & Le (2014), as a small torch module.

Tensors in, tensors out: this module knows nothing of files, strings or vocabularies.

    source ids --embed--> encoder LSTM stack (reads the source reversed [3.3])
                          final (h, c) of layer i --> initial (h, c) of decoder layer i
    <s> y1 .. yn --embed--> decoder LSTM stack --linear--> logits over the target vocabulary [2]

There is no attention: the whole source reaches the decoder through the encoder's final state.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig

State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each [layers, B, hidden]


class Seq2Seq(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.src_embed = nn.Embedding(config.src_vocab_size, config.embedding)
        self.tgt_embed = nn.Embedding(config.tgt_vocab_size, config.embedding)
        self.encoder = nn.LSTM(config.embedding, config.hidden, config.layers)
        self.decoder = nn.LSTM(config.embedding, config.hidden, config.layers)
        self.output = nn.Linear(config.hidden, config.tgt_vocab_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every parameter uniform in [-init_scale, init_scale] [3.4]."""
        for p in self.parameters():
            nn.init.uniform_(p, -self.config.init_scale, self.config.init_scale)

    def encode(self, src: torch.Tensor, lengths: torch.Tensor) -> State:
        """Final state of the encoder for each source sentence.

        src: [B, S] ids in reading order, padded at the end; lengths: [B], each >= 1.
        Returns (h, c), each [layers, B, hidden].

        Rows are run in groups of equal length, so the LSTM always sees plain dense tensors (the fast
        path on CPU and GPU) and padding never enters the state.
        """
        if self.config.reverse:
            src = reverse_padded(src, lengths)
        lens = lengths.tolist()
        if min(lens) == max(lens):
            return self._encode_dense(src[:, : lens[0]])
        b, layers, hidden = src.size(0), self.config.layers, self.config.hidden
        h = src.new_zeros((layers, b, hidden), dtype=self.src_embed.weight.dtype)
        c = torch.zeros_like(h)
        for length in sorted(set(lens)):
            rows = (lengths == length).nonzero(as_tuple=True)[0]  # [b_len]
            h_l, c_l = self._encode_dense(src[rows, :length])
            h[:, rows] = h_l.to(h.dtype)
            c[:, rows] = c_l.to(c.dtype)
        return h, c

    def _encode_dense(self, src: torch.Tensor) -> State:
        """src: [B, S] with no padding -> final (h, c) [layers, B, hidden]."""
        emb = self.src_embed(src.t())  # [S, B, E]
        _, state = self.encoder(emb)
        return state

    def decode(self, tgt_in: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Run the decoder over whole target prefixes.

        tgt_in: [B, T] (<s> y1 .. y_{T-1}); state: the encoder's (h, c).
        Returns the top layer's outputs [B, T, hidden] and the final state.
        """
        out, state = self.decoder(self.tgt_embed(tgt_in.t()), state)  # out: [T, B, H]
        return out.transpose(0, 1), state

    def forward(
        self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor, tgt_out: torch.Tensor
    ) -> torch.Tensor:
        """Summed negative log-likelihood of the targets (a scalar).

        src: [B, S], src_lengths: [B], tgt_in: [B, T] (<s> y1..), tgt_out: [B, T] (y1 .. </s>), with
        ``pad_id`` where a target is shorter. The output layer runs only at non-pad positions.
        """
        hidden, _ = self.decode(tgt_in, self.encode(src, src_lengths))  # [B, T, H]
        mask = tgt_out != self.config.pad_id  # [B, T]
        logits = self.output(hidden[mask])  # [N, V]
        return F.cross_entropy(logits.float(), tgt_out[mask], reduction="sum")

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One decoding step: log-probabilities of the next token.

        tokens: [N] the previous token of each hypothesis; state: (h, c) [layers, N, hidden].
        Returns log-probs [N, V] (float32) and the new state.
        """
        out, state = self.decoder(self.tgt_embed(tokens).unsqueeze(0), state)  # [1, N, H]
        return F.log_softmax(self.output(out[0]).float(), dim=-1), state

    def score(
        self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor, tgt_out: torch.Tensor
    ) -> torch.Tensor:
        """Log-probability of each target sentence given its source: [B] (sum over its tokens and </s>)."""
        hidden, _ = self.decode(tgt_in, self.encode(src, src_lengths))  # [B, T, H]
        logp = F.log_softmax(self.output(hidden).float(), dim=-1)  # [B, T, V]
        mask = tgt_out != self.config.pad_id
        picked = logp.gather(2, tgt_out.clamp(min=0).unsqueeze(2)).squeeze(2)  # [B, T]
        return (picked * mask).sum(dim=1)


def reverse_padded(src: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row's first ``lengths[b]`` entries, leaving the padding at the end.

    src: [B, S], lengths: [B] -> [B, S].
    """
    b, s = src.shape
    pos = torch.arange(s, device=src.device).unsqueeze(0)  # [1, S]
    idx = lengths.unsqueeze(1) - 1 - pos  # [B, S]
    idx = torch.where(idx >= 0, idx, pos)  # padding positions stay where they are
    return src.gather(1, idx)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
