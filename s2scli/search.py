"""Left-to-right decoding [3.2]: batched greedy and beam search over one model or an ensemble.

An ensemble is a list of models that share a target vocabulary; at every step their log-probabilities
are averaged (models with and without attention may be mixed). Scores are summed log-probabilities (the
paper's ranking: no length normalisation), so a hypothesis's score can only fall as it grows, which
gives an exact stopping rule for beam search. With a length penalty ``a`` > 0 complete hypotheses are
ranked by score / lp(length), lp(n) = ((5 + n) / 6) ** a (Wu et al. 2016, GNMT), n counting </s>
(``ranking_score``, the one place the penalty enters the search).

With an attention model in the list, each hypothesis also records, for each of its words, the source
position the first attention model attended to most when it chose that word (its alignment).

Work is batched over sentences and beams; sentences that are finished leave the batch, so the cost of
a batch follows its longest *unfinished* sentence. The encoder's outputs are kept once a sentence, not
once a hypothesis (``State``): reordering hypotheses within their sentences leaves them where they are.

One step of beam search, for the n sentences left with k live hypotheses each (``Beams``):
``step`` (log-probs [n*k, V]) -> ``force_eos`` (at length limits) -> ``extend`` (the 2k best
extensions [n, 2k]) -> ``collect_complete`` (those ending in </s> among the top k) -> ``advance`` (the
k best others live on: [n, k]) -> ``is_done`` (the stopping rule [n]) -> ``reorder`` (decoder states
follow their hypotheses; finished sentences leave).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

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


# Words are ranked in chunks of this many: the best m of a row (or of a sentence's k rows) lie in the m
# chunks with the highest maxima, so one pass of max over all N x V values and a top-m over m * CHUNK of
# them replace a top-m over all N x V (torch's topk is ~10x slower per value than a max).
CHUNK = 64


def best_words(values: torch.Tensor, bias: torch.Tensor, k: int, m: int) -> tuple[torch.Tensor, ...]:
    """The m best (row, word) pairs of each group of k consecutive rows, by ``values[r, w] + bias[r]``.

    values: [n*k, V] (any float precision), bias: [n*k] float32 (-inf: an empty row), m <= k * V.
    Returns scores [n, m] (float32, best first), slot [n, m] (the row within its group, 0..k-1) and
    word [n, m]; where fewer than m finite pairs exist the rest have score -inf. Ties may be broken in
    another order than a topk over all pairs would."""
    rows, vocab = values.shape
    n, q = rows // k, vocab // CHUNK
    maxima = [values[:, : q * CHUNK].view(rows, q, CHUNK).amax(dim=2)] if q else []  # [N, q]
    if vocab > q * CHUNK:
        maxima.append(values[:, q * CHUNK:].amax(dim=1, keepdim=True))  # the short last chunk
    chunk_max = torch.cat(maxima, dim=1) if len(maxima) > 1 else maxima[0]  # [N, Q]
    n_chunks = chunk_max.size(1)
    per_chunk = (chunk_max.float() + bias.unsqueeze(1)).view(n, k * n_chunks)  # [n, k*Q]
    picked = per_chunk.topk(min(m, k * n_chunks), dim=1).indices  # [n, C]
    chunk_slot = picked // n_chunks  # [n, C] the row within its group each chunk is from
    row = torch.arange(n, device=values.device).unsqueeze(1) * k + chunk_slot  # [n, C]
    cols = (picked % n_chunks).unsqueeze(2) * CHUNK + torch.arange(CHUNK, device=values.device)  # [n, C, CHUNK]
    flat = row.unsqueeze(2) * vocab + cols.clamp(max=vocab - 1)  # [n, C, CHUNK] into values.view(-1)
    cand = values.reshape(-1).take(flat).float() + bias[row].unsqueeze(2)  # [n, C, CHUNK]
    cand = cand.masked_fill(cols >= vocab, float("-inf")).view(n, -1)  # past the vocabulary: nothing
    top, where = cand.topk(m, dim=1)  # [n, m]
    word = cols.view(n, -1).gather(1, where).clamp(max=vocab - 1)
    return top, chunk_slot.gather(1, where // CHUNK), word


def select(states: list[State], rows: torch.Tensor) -> list[State]:
    """Keep/reorder the batch rows ``rows`` [N'] of every model's state, one row a sentence (``State.select``)."""
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
    alive = torch.arange(b, device=device)  # [n] original row of each live hypothesis
    tokens = torch.full((b,), bos, dtype=torch.long, device=device)  # [n]
    limit = int(max_lens.max()) + 1
    out = torch.full((b, limit), eos, dtype=torch.long, device=device)  # [B, limit]
    scores = torch.zeros(b, device=device)  # [B]
    att = first_attention(models)
    align = torch.zeros((b, limit), dtype=torch.long, device=device) if att is not None else None  # [B, limit]
    for t in range(limit):
        logp, states = step(models, tokens, states, banned)  # [n, V]
        if align is not None:
            align[alive, t] = states[att].attn.argmax(dim=1)
        force_eos(logp, max_lens[alive] <= t, eos)
        best_score, best = logp.max(dim=-1)  # [n]
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
    return greedy_hypotheses(out, scores, align, eos)


def greedy_hypotheses(out: torch.Tensor, scores: torch.Tensor, align: Optional[torch.Tensor],
                      eos: int) -> list[list[Hypothesis]]:
    """out [B, T] (words, then </s>), scores [B], align [B, T] or None -> one hypothesis a sentence."""
    results = []
    align_rows = align.tolist() if align is not None else [None] * out.size(0)
    for row, score, arow in zip(out.tolist(), scores.tolist(), align_rows):
        ids = row[: row.index(eos)] if eos in row else row
        results.append([Hypothesis(ids, score, None if arow is None else arow[: len(ids)])])
    return results


def force_eos(logp: torch.Tensor, forced: torch.Tensor, eos: int) -> None:
    """In place: rows of logp [N, V] where forced [N] is True keep only </s> (the others -inf)."""
    if bool(forced.any()):
        rows = forced.nonzero(as_tuple=True)[0]  # [F]
        kept = logp[rows, eos]  # [F]
        logp[rows] = float("-inf")
        logp[rows, eos] = kept


# ---------------------------------------------------------------------------------------- beam search


@dataclass
class Beams:
    """The search's state for the n sentences still in the batch, k slots (live hypotheses) each.

    A slot whose score is -inf holds no hypothesis (at the first step, or where a sentence has fewer
    candidates than slots): it never completes, and it is dropped with its sentence.
    """

    sent: torch.Tensor  # [n] each sentence's index in the batch
    scores: torch.Tensor  # [n, k] summed log-probabilities of the live hypotheses, best first
    history: torch.Tensor  # [n, k, t] their words so far
    aligned: Optional[torch.Tensor]  # [n, k, t] for each word, the source position attended most; None: no attention
    tokens: torch.Tensor  # [n*k] the last word of each (<s> at first)
    states: list[State]  # each model's decoder state, [n*k] rows
    n_complete: torch.Tensor  # [n] complete hypotheses found so far
    top_complete: torch.Tensor  # [n, nbest] the best ranking scores among them (-inf: none yet)


class Extensions(NamedTuple):
    """The 2*beam best one-word extensions of each sentence's live hypotheses, best first: [n, 2k] each."""

    scores: torch.Tensor  # summed log-probabilities
    slot: torch.Tensor  # the live hypothesis (0..k-1) each one extends
    word: torch.Tensor  # the word it adds
    ends: torch.Tensor  # True where that word is </s> (and the score finite)


def ranking_score(score: float | torch.Tensor, length: int | torch.Tensor, alpha: float) -> float | torch.Tensor:
    """What complete hypotheses are ranked by: the summed log-probability ``score`` of a hypothesis of
    ``length`` tokens (</s> included), divided by ``length_penalty(length, alpha)`` when ``alpha`` > 0.

    The one place the length penalty enters the search. A tensor ``length`` has its penalty computed in
    float64 and divides in ``score``'s precision."""
    if not alpha:
        return score
    if isinstance(length, torch.Tensor):
        return score / length_penalty(length.double(), alpha).to(score.dtype)
    return score / length_penalty(length, alpha)


def start(models: list[Seq2Seq], src: torch.Tensor, lengths: torch.Tensor, bos: int, k: int, nbest: int) -> Beams:
    """k slots for each of the B sentences of src [B, S]: one live hypothesis (<s>, score 0), k-1 empty.

    (Running the first step on one row a sentence would save most of a step, but the decoder's matrix
    products over fewer rows can sum in another order, and outputs would no longer be bit-identical.)"""
    b, device = src.size(0), src.device
    scores = torch.full((b, k), float("-inf"), device=device)  # [B, k]
    scores[:, 0] = 0.0
    attention = first_attention(models) is not None
    return Beams(
        sent=torch.arange(b, device=device),
        scores=scores,
        history=torch.zeros((b, k, 0), dtype=torch.long, device=device),
        aligned=torch.zeros((b, k, 0), dtype=torch.long, device=device) if attention else None,
        tokens=torch.full((b * k,), bos, dtype=torch.long, device=device),
        states=[s.select_decoder(torch.arange(b, device=device).repeat_interleave(k))  # k rows a sentence
                for s in encode(models, src, lengths)],
        n_complete=torch.zeros(b, dtype=torch.long, device=device),
        top_complete=torch.full((b, nbest), float("-inf"), device=device),
    )


def extend(scores: torch.Tensor, logp: torch.Tensor, k: int, eos: int) -> Extensions:
    """scores [n, k] of the live hypotheses, logp [n*k, V] of their next word -> the 2k best extensions."""
    top, slot, word = best_words(logp, scores.view(-1), k, min(2 * k, k * logp.size(1)))  # [n, 2k]
    return Extensions(top, slot, word, (word == eos) & torch.isfinite(top))


def collect_complete(beams: Beams, ext: Extensions, k: int, t: int, alpha: float,
                     finished: list[list[Hypothesis]]) -> None:
    """Extensions ending in </s> among the top k leave the beam: each becomes a Hypothesis of its
    sentence in ``finished``, and the sentences' counts and best ranking scores are updated (in place)."""
    ends = ext.ends[:, :k]  # [n, k]
    if not bool(ends.any()):
        return
    s_idx, j_idx = ends.nonzero(as_tuple=True)  # [E] each
    slot = ext.slot[s_idx, j_idx]  # [E]
    ids = beams.history[s_idx, slot].tolist()
    aligns = beams.aligned[s_idx, slot].tolist() if beams.aligned is not None else [None] * len(ids)
    for i, words, score, al in zip(beams.sent[s_idx].tolist(), ids, ext.scores[s_idx, j_idx].tolist(), aligns):
        finished[i].append(Hypothesis(words, score, al))
    beams.n_complete = beams.n_complete + ends.sum(dim=1)
    ended = ranking_score(ext.scores[:, :k].masked_fill(~ends, float("-inf")), t + 1, alpha)  # [n, k]: t words + </s>
    nbest = beams.top_complete.size(1)
    beams.top_complete = torch.cat([beams.top_complete, ended], dim=1).topk(nbest, dim=1).values


def advance(beams: Beams, ext: Extensions, attended: Optional[torch.Tensor], k: int) -> torch.Tensor:
    """The best k extensions that do not end become the live hypotheses (in place); returns the state
    row [n*k] each continues from. attended [n*k]: this step's most attended source position."""
    n = beams.scores.size(0)
    beams.scores, pick = ext.scores.masked_fill(ext.ends, float("-inf")).topk(k, dim=1)  # [n, k]
    slot = ext.slot.gather(1, pick)  # [n, k]
    word = ext.word.gather(1, pick)  # [n, k]
    rows = torch.arange(n, device=slot.device).unsqueeze(1)  # [n, 1]
    beams.history = torch.cat([beams.history[rows, slot], word.unsqueeze(2)], dim=2)  # [n, k, t+1]
    if beams.aligned is not None:
        beams.aligned = torch.cat([beams.aligned[rows, slot], attended.view(n, k)[rows, slot].unsqueeze(2)], dim=2)
    beams.tokens = word.view(-1)  # [n*k]
    return (rows * k + slot).view(-1)


def is_done(beams: Beams, forced: torch.Tensor, k: int, limit: torch.Tensor, alpha: float) -> torch.Tensor:
    """[n] True where nothing live can still enter a sentence's n best: it was forced to end, has k
    complete hypotheses, has no live one, or its nbest-th complete one ranks at least as well as its best
    live one could at the length limit ``limit`` [n] (</s> included): scores only fall, and the penalty
    only grows with length."""
    best_live = beams.scores[:, 0]  # [n]
    reachable = ranking_score(best_live, limit, alpha)  # [n]
    return forced | (beams.n_complete >= k) | torch.isinf(best_live) | (beams.top_complete[:, -1] >= reachable)


def reorder(beams: Beams, rows: torch.Tensor, done: torch.Tensor, k: int) -> None:
    """Move the decoder states to rows [n*k] (in place) and drop the sentences that are done [n]."""
    if bool(done.any()):
        keep = (~done).nonzero(as_tuple=True)[0]  # [n']
        for name in ("sent", "scores", "history", "aligned", "n_complete", "top_complete"):
            value = getattr(beams, name)
            setattr(beams, name, None if value is None else value[keep])
        rows = rows.view(-1, k)[keep].view(-1)  # [n'*k]
        beams.tokens = beams.tokens.view(-1, k)[keep].view(-1)
        beams.states = [s.select(rows, keep) for s in beams.states]
    else:
        beams.states = [s.select_decoder(rows) for s in beams.states]


def nbest_lists(finished: list[list[Hypothesis]], nbest: int, alpha: float) -> list[list[Hypothesis]]:
    """Each sentence's ``nbest`` best complete hypotheses, best ranking score first."""
    return [sorted(f, key=lambda h: -ranking_score(h.score, len(h.ids) + 1, alpha))[:nbest] for f in finished]


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

    src: [B, S], lengths: [B], max_lens: [B] (tokens before </s> is forced). At each step every live
    hypothesis is extended by every word; of the 2*beam best extensions, those ending in </s> among the
    top ``beam`` leave the beam as complete hypotheses and the best ``beam`` others continue. A sentence
    is done when it has ``beam`` complete hypotheses, when no live one can still enter its ``nbest``
    (see ``is_done``), or when it reaches its length limit (</s> is then forced); it then leaves the batch.

    ``alpha`` > 0 (a length penalty) ranks complete hypotheses by ``ranking_score``. Live hypotheses all
    have the same length at a step, so their ranking is unchanged. Returned scores stay raw log-probabilities.
    """
    if alpha < 0:
        raise ValueError(f"length penalty must not be negative, got {alpha}")
    if beam == 1 and nbest <= 1:
        return greedy(models, src, lengths, max_lens, bos, eos, forbid)
    k, nbest = beam, max(1, min(nbest, beam))
    banned = (models[0].config.pad_id, bos, *forbid)
    att = first_attention(models)
    beams = start(models, src, lengths, bos, k, nbest)
    finished: list[list[Hypothesis]] = [[] for _ in range(src.size(0))]
    t = 0
    while beams.sent.numel():
        logp, states = step(models, beams.tokens, beams.states, banned)  # [n*k, V]
        beams.states = states
        forced = max_lens[beams.sent] <= t  # [n]
        force_eos(logp, forced.repeat_interleave(k), eos)
        ext = extend(beams.scores, logp, k, eos)
        collect_complete(beams, ext, k, t, alpha, finished)
        rows = advance(beams, ext, states[att].attn.argmax(dim=1) if att is not None else None, k)
        reorder(beams, rows, is_done(beams, forced, k, max_lens[beams.sent] + 1, alpha), k)
        t += 1
    return nbest_lists(finished, nbest, alpha)
