"""Beam search with GNMT's length penalty (translate --length-penalty): lp(n) = ((5 + n) / 6) ** a, n the
hypothesis's tokens with </s>. Complete hypotheses are ranked by log-probability / lp; the scores
returned (and printed in n-best lists) stay raw log-probabilities; a = 0 is the paper's search."""

from __future__ import annotations

import io
import itertools
import re
from typing import Callable

import pytest
import torch

from s2scli.config import DecodeConfig
from s2scli.errors import S2SError
from s2scli.model import Seq2Seq
from s2scli.search import beam_search, length_penalty
from s2scli.translate import check_config, translate
from s2scli.vocab import BOS, EOS, PAD, UNK


def random_batch(n: int, vocab_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 8, (n,), generator=gen)
    src = torch.full((n, int(lengths.max())), PAD, dtype=torch.long)
    for i, length in enumerate(lengths.tolist()):
        src[i, :length] = torch.randint(4, vocab_size, (length,), generator=gen)
    return src, lengths


@torch.no_grad()
def log_prob(model: Seq2Seq, src: torch.Tensor, length: int, ids: list[int]) -> float:
    return float(model.score(src[:length].unsqueeze(0), torch.tensor([length]), torch.tensor([[BOS] + ids]),
                             torch.tensor([ids + [EOS]])))


def normalised(score: float, ids: list[int], alpha: float) -> float:
    return score / length_penalty(len(ids) + 1, alpha)


def test_length_penalty_values() -> None:
    assert length_penalty(1, 0.0) == 1.0 and length_penalty(50, 0.0) == 1.0
    assert length_penalty(1, 1.0) == 1.0  # a one-token hypothesis (just </s>) is never rescaled
    assert length_penalty(7, 1.0) == pytest.approx(2.0)
    assert length_penalty(7, 0.5) == pytest.approx(2.0 ** 0.5)


@pytest.fixture(params=["none", "dot"])
def model(request, make_tiny_model: Callable[..., Seq2Seq]) -> Seq2Seq:
    return make_tiny_model(2, init_scale=2.0, attention=request.param)


@pytest.mark.parametrize("beam", [1, 4])
def test_zero_is_the_papers_search(model: Seq2Seq, beam: int) -> None:
    src, lengths = random_batch(10, model.config.src_vocab_size, seed=1)
    max_lens = lengths * 2 + 3
    a = beam_search([model], src, lengths, max_lens, BOS, EOS, beam=beam, nbest=beam)
    b = beam_search([model], src, lengths, max_lens, BOS, EOS, beam=beam, nbest=beam, alpha=0.0)
    assert a == b


@pytest.mark.parametrize("alpha", [0.6, 1.0, 2.0])
def test_nbest_ranked_by_normalised_score_with_raw_scores(model: Seq2Seq, alpha: float) -> None:
    src, lengths = random_batch(12, model.config.src_vocab_size, seed=3)
    max_lens = lengths * 2 + 3
    found = beam_search([model], src, lengths, max_lens, BOS, EOS, beam=5, nbest=5, alpha=alpha)
    plain = beam_search([model], src, lengths, max_lens, BOS, EOS, beam=5, nbest=5)
    for i, hyps in enumerate(found):
        keys = [normalised(h.score, h.ids, alpha) for h in hyps]
        assert keys == sorted(keys, reverse=True)
        for h in hyps:  # the score is the raw log-probability
            assert h.score == pytest.approx(log_prob(model, src[i], int(lengths[i]), h.ids), abs=1e-4)
    # The penalty does reorder: somewhere a longer hypothesis now comes first.
    assert any([h.ids for h in f] != [h.ids for h in p] for f, p in zip(found, plain))
    assert sum(len(f[0].ids) for f in found) > sum(len(p[0].ids) for p in plain)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 3.0])
def test_stopping_rule_keeps_the_best_normalised_hypothesis(make_tiny_model: Callable[..., Seq2Seq],
                                                            alpha: float) -> None:
    """A beam that holds every hypothesis (2 words + <unk>, at most 3 tokens) must return the best one by
    normalised score, which exhaustive enumeration finds, even with nbest 1, where the search stops as
    soon as no live hypothesis can overtake the best complete one."""
    model = make_tiny_model(20, init_scale=0.5, tgt_vocab_size=6)  # a seed where stopping early would be wrong
    src, lengths = random_batch(4, model.config.src_vocab_size, seed=4)
    max_lens = torch.tensor([3, 3, 3, 3])
    words = [UNK, 4, 5]
    everything = [list(p) for n in range(4) for p in itertools.product(words, repeat=n)]
    full = beam_search([model], src, lengths, max_lens, BOS, EOS, beam=60, nbest=60, alpha=alpha)
    one = beam_search([model], src, lengths, max_lens, BOS, EOS, beam=60, nbest=1, alpha=alpha)
    for i in range(len(src)):
        exact = max(everything, key=lambda ids: normalised(log_prob(model, src[i], int(lengths[i]), ids), ids, alpha))
        assert sorted(tuple(h.ids) for h in full[i]) == sorted(map(tuple, everything))
        assert full[i][0].ids == exact and one[i][0].ids == exact


def test_translate_prints_raw_scores_in_normalised_order(model: Seq2Seq, tiny_src_vocab, tiny_tgt_vocab) -> None:
    lines = ["a b c", "d e", "h g f e d c b a", "a"]
    out = io.StringIO()
    translate(lines, [model], tiny_src_vocab, tiny_tgt_vocab, DecodeConfig(beam=4, nbest=4, length_penalty=1.0), out)
    rows = [re.match(r"^(\d+) \|\|\| (.*) \|\|\| (-?\d+\.\d{4})$", line).groups() for line in out.getvalue().splitlines()]
    for index in range(len(lines)):
        group = [(text, float(score)) for i, text, score in rows if int(i) == index]
        keys = [score / length_penalty(len(text.split()) + 1, 1.0) for text, score in group]
        assert keys == sorted(keys, reverse=True)


@pytest.mark.parametrize("value", [-0.5, float("nan"), float("inf")])
def test_negative_or_infinite_penalty_refused(value: float) -> None:
    with pytest.raises(S2SError, match="--length-penalty"):
        check_config(DecodeConfig(length_penalty=value))
