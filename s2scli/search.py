"""Left-to-right decoding [3.2]: batched greedy and beam search over one model or an ensemble.

An ensemble is a list of models that share a target vocabulary; at every step their log-probabilities
are averaged (models with and without attention may be mixed). Scores are summed log-probabilities (the
paper's ranking: no length normalisation), so a hypothesis's score can only fall as it grows, which
gives an exact stopping rule for beam search. With a length penalty ``a`` > 0 complete hypotheses are
ranked by score / lp(length), lp(n) = ((5 + n) / 6) ** a (Wu et al. 2016, GNMT), n counting </s>.

With an attention model in the list, each hypothesis also records, for each of its words, the source
position the first attention model attended to most when it chose that word (its alignment).

Work is batched over sentences and beams; sentences that are finished leave the batch, so the cost of
a batch follows its longest *unfinished* sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from .model import Seq2Seq, State


@dataclass(frozen=True)
class Hypothesis:
    ids: list[int]  # target ids without </s>
    score: float  # log-probability, </s> included (never length-normalised)
    alignment: Optional[list[int]] = None  # for each of ids, the source position attended most (attention)


def length_penalty(n: int | torch.Tensor, alpha: float) -> float | torch.Tensor:
    """GNMT's lp(n) = ((5 + n) / 6) ** alpha for a hypothesis of n tokens (</s> included)."""
    return ((5 + n) / 6) ** alpha


def first_attention(models: list[Seq2Seq]) -> Optional[int]:
    """The index of the first model with attention (whose weights give alignments), or None."""
    return next((i for i, m in enumerate(models) if m.config.attention != "none"), None)


def encode(models: list[Seq2Seq], src: torch.Tensor, lengths: torch.Tensor) -> list[State]:
    """Each model's encoder state for the batch (the encoder runs once per sentence)."""
    return [m.encode(src, lengths) for m in models]


def step(
    models: list[Seq2Seq], tokens: torch.Tensor, states: list[State], banned: tuple[int, ...] = ()
) -> tuple[torch.Tensor, list[State]]:
    """Ensemble step: tokens [N] -> mean log-probs [N, V] and each model's new state.

    Ids in ``banned`` (``<pad>`` and ``<s>``, never words of a translation) get log-probability -inf.
    """
    outs = [m.step(tokens, s) for m, s in zip(models, states)]
    logp = outs[0][0] if len(outs) == 1 else torch.stack([o[0] for o in outs]).mean(dim=0)
    if banned:
        logp[:, list(banned)] = float("-inf")
    return logp, [o[1] for o in outs]


def select(states: list[State], rows: torch.Tensor) -> list[State]:
    """Keep/reorder the batch rows ``rows`` [N'] of every model's state (see ``State.select``)."""
    return [s.select(rows) for s in states]


@torch.no_grad()
def greedy(
    models: list[Seq2Seq],
    src: torch.Tensor,
    lengths: torch.Tensor,
    max_lens: torch.Tensor,
    bos: int,
    eos: int,
    forbid: tuple[int, ...] = (),
) -> list[list[Hypothesis]]:
    """The most probable next word at every step (beam 1).

    src: [B, S], lengths: [B], max_lens: [B] (tokens before </s> is forced); ``forbid``: ids never to
    output besides <pad> and <s> (e.g. <unk>). One hypothesis a sentence.
    """
    b = src.size(0)
    device = src.device
    banned = (models[0].config.pad_id, bos, *forbid)
    states = encode(models, src, lengths)
    alive = torch.arange(b, device=device)  # original row of each live hypothesis
    tokens = torch.full((b,), bos, dtype=torch.long, device=device)
    limit = int(max_lens.max()) + 1
    out = torch.full((b, limit), eos, dtype=torch.long, device=device)
    scores = torch.zeros(b, device=device)
    att = first_attention(models)
    align = torch.zeros((b, limit), dtype=torch.long, device=device) if att is not None else None
    for t in range(limit):
        logp, states = step(models, tokens, states, banned)  # [n, V]
        if align is not None:
            align[alive, t] = states[att].attn.argmax(dim=1)
        best_score, best = logp.max(dim=-1)  # [n]
        forced = max_lens[alive] <= t
        if forced.any():
            best = torch.where(forced, torch.full_like(best, eos), best)
            best_score = torch.where(forced, logp[:, eos], best_score)
        scores[alive] += best_score
        out[alive, t] = best
        keep = best != eos
        if not bool(keep.all()):
            rows = keep.nonzero(as_tuple=True)[0]
            alive, best = alive[rows], best[rows]
            states = select(states, rows)
        if alive.numel() == 0:
            break
        tokens = best
    results = []
    align_rows = align.tolist() if align is not None else [None] * b
    for row, score, arow in zip(out.tolist(), scores.tolist(), align_rows):
        ids = row[: row.index(eos)] if eos in row else row
        results.append([Hypothesis(ids, score, None if arow is None else arow[: len(ids)])])
    return results


@torch.no_grad()
def beam_search(
    models: list[Seq2Seq],
    src: torch.Tensor,
    lengths: torch.Tensor,
    max_lens: torch.Tensor,
    bos: int,
    eos: int,
    beam: int,
    nbest: int = 1,
    forbid: tuple[int, ...] = (),
    alpha: float = 0.0,
) -> list[list[Hypothesis]]:
    """Beam search with ``beam`` partial hypotheses a sentence [3.2]; returns the ``nbest`` best, best first.

    At each step every live hypothesis is extended by every word; of the 2*beam best extensions, those
    ending in </s> among the top ``beam`` leave the beam as complete hypotheses and the best ``beam``
    others continue. A sentence is done when it has ``beam`` complete hypotheses, when its ``nbest``-th
    best complete hypothesis scores at least as well as its best live one (no live one can overtake
    it, as scores only fall), or when it reaches its length limit (</s> is then forced).

    ``alpha`` > 0 (a length penalty) ranks complete hypotheses by score / ``length_penalty(n, alpha)``.
    Live hypotheses all have the same length at a step, so their ranking is unchanged; a longer one
    may now overtake a complete one, so the comparison above is made with the best normalised score a
    live hypothesis could still reach: its score so far divided by lp at the sentence's length limit
    (scores only fall and lp only grows). Returned scores stay raw log-probabilities.
    """
    if alpha < 0:
        raise ValueError(f"length penalty must not be negative, got {alpha}")
    if beam == 1 and nbest <= 1:
        return greedy(models, src, lengths, max_lens, bos, eos, forbid)
    k, nbest = beam, max(1, min(nbest, beam))
    banned = (models[0].config.pad_id, bos, *forbid)
    b = src.size(0)
    device = src.device
    states = select(encode(models, src, lengths), torch.arange(b, device=device).repeat_interleave(k))
    scores = torch.full((b, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live hypothesis (<s>) to start with
    tokens = torch.full((b * k,), bos, dtype=torch.long, device=device)
    history = torch.zeros((b, k, 0), dtype=torch.long, device=device)  # [b, k, t]
    att = first_attention(models)
    aligned = torch.zeros((b, k, 0), dtype=torch.long, device=device) if att is not None else None  # [b, k, t]
    sent = torch.arange(b, device=device)  # original index of each sentence still in the batch
    finished: list[list[Hypothesis]] = [[] for _ in range(b)]
    n_finished = torch.zeros(b, dtype=torch.long, device=device)  # [n] complete hypotheses so far
    top_finished = torch.full((b, nbest), float("-inf"), device=device)  # [n, nbest] their best (normalised) scores
    best_lp = length_penalty(max_lens.double() + 1, alpha).float() if alpha else None  # [b] lp at the limit
    only_eos = None
    t = 0
    while sent.numel():
        n = sent.numel()
        logp, states = step(models, tokens, states, banned)  # [n*k, V]
        vocab = logp.size(1)
        forced = max_lens[sent] <= t  # [n]
        if bool(forced.any()):
            if only_eos is None:
                only_eos = torch.full_like(logp[0], float("-inf"))
                only_eos[eos] = 0.0
            rows = forced.repeat_interleave(k).unsqueeze(1)  # [n*k, 1]
            logp = torch.where(rows, logp + only_eos, logp)
        cand = (scores.unsqueeze(2) + logp.view(n, k, vocab)).view(n, k * vocab)  # [n, k*V]
        top_scores, top_idx = cand.topk(min(2 * k, k * vocab), dim=1)  # [n, 2k]
        top_beam, top_tok = top_idx // vocab, top_idx % vocab
        is_eos = (top_tok == eos) & torch.isfinite(top_scores)  # [n, 2k]
        attended = states[att].attn.argmax(dim=1).view(n, k) if aligned is not None else None  # [n, k]

        # Complete hypotheses: </s> among the top k extensions.
        ends = is_eos[:, :k]  # [n, k]
        if bool(ends.any()):
            s_idx, j_idx = ends.nonzero(as_tuple=True)
            done_beam = top_beam[s_idx, j_idx]
            done_ids = history[s_idx, done_beam].tolist()
            done_align = aligned[s_idx, done_beam].tolist() if aligned is not None else [None] * len(done_ids)
            for i, ids, score, al in zip(sent[s_idx].tolist(), done_ids, top_scores[s_idx, j_idx].tolist(),
                                         done_align):
                finished[i].append(Hypothesis(ids, score, al))
            n_finished = n_finished + ends.sum(dim=1)
            ended = top_scores[:, :k].masked_fill(~ends, float("-inf"))  # [n, k]
            if alpha:
                ended = ended / length_penalty(t + 1, alpha)  # each has t words and </s>
            top_finished = torch.cat([top_finished, ended], dim=1).topk(nbest, dim=1).values

        # Live hypotheses: the best k extensions that do not end the sentence.
        scores, pick = top_scores.masked_fill(is_eos, float("-inf")).topk(k, dim=1)  # [n, k]
        new_beam = top_beam.gather(1, pick)
        new_tok = top_tok.gather(1, pick)
        rows = torch.arange(n, device=device).unsqueeze(1)
        history = torch.cat([history[rows, new_beam], new_tok.unsqueeze(2)], dim=2)  # [n, k, t+1]
        if aligned is not None:
            aligned = torch.cat([aligned[rows, new_beam], attended[rows, new_beam].unsqueeze(2)], dim=2)

        # A sentence is done when nothing live can still enter its n best.
        best_live = scores[:, 0]
        reachable = best_live / best_lp[sent] if alpha else best_live
        done = forced | (n_finished >= k) | torch.isinf(best_live) | (top_finished[:, -1] >= reachable)
        if bool(done.any()):
            keep = (~done).nonzero(as_tuple=True)[0]
            sent, scores, history, n_finished, top_finished = (
                sent[keep], scores[keep], history[keep], n_finished[keep], top_finished[keep])
            if aligned is not None:
                aligned = aligned[keep]
            new_beam, new_tok = new_beam[keep], new_tok[keep]
            flat = (keep.unsqueeze(1) * k + new_beam).view(-1)
        else:
            flat = (rows * k + new_beam).view(-1)
        states = select(states, flat)
        tokens = new_tok.reshape(-1)
        t += 1
    if alpha:
        return [sorted(f, key=lambda h: -h.score / length_penalty(len(h.ids) + 1, alpha))[:nbest] for f in finished]
    return [sorted(f, key=lambda h: -h.score)[:nbest] for f in finished]
