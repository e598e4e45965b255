"""search.py: greedy and beam search agree with each other, with the model's own scores, with exhaustive
search on a tiny case, and over ensembles."""

from __future__ import annotations

import copy
import itertools
from typing import Callable

import pytest
import torch

from s2scli.model import Seq2Seq, State
from s2scli.search import CHUNK, Hypothesis, beam_search, best_words, greedy, select, step
from s2scli.vocab import BOS, EOS, PAD, UNK

Search = list[list[Hypothesis]]


def random_batch(n: int, vocab_size: int, seed: int = 0, min_len: int = 1,
                 max_len: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=gen)
    src = torch.full((n, int(lengths.max())), PAD, dtype=torch.long)
    for i, length in enumerate(lengths.tolist()):
        src[i, :length] = torch.randint(4, vocab_size, (length,), generator=gen)
    return src, lengths


@torch.no_grad()
def model_score(models: list[Seq2Seq], src: torch.Tensor, length: int, ids: list[int]) -> float:
    """Mean over ``models`` of log p(ids + </s> | src[:length])."""
    s = src[:length].unsqueeze(0)
    tgt_in = torch.tensor([[BOS] + ids])
    tgt_out = torch.tensor([ids + [EOS]])
    return sum(float(m.score(s, torch.tensor([length]), tgt_in, tgt_out)) for m in models) / len(models)


@pytest.fixture
def search_model(make_tiny_model: Callable[..., Seq2Seq]) -> Seq2Seq:
    # A large init scale gives an untrained model peaky, input-dependent distributions, so that its
    # hypotheses vary in length and content (with 0.08 they are all empty or all of maximal length).
    return make_tiny_model(2, init_scale=2.0)


@pytest.fixture
def batch(search_model: Seq2Seq) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    src, lengths = random_batch(12, search_model.config.src_vocab_size, seed=1)
    max_lens = lengths * 2 + 3
    return src, lengths, max_lens


def assert_same(a: Search, b: Search, atol: float = 1e-5) -> None:
    assert len(a) == len(b)
    for ha, hb in zip(a, b):
        assert [h.ids for h in ha] == [h.ids for h in hb]
        for x, y in zip(ha, hb):
            assert x.score == pytest.approx(y.score, abs=atol)


def test_greedy_returns_one_hypothesis_per_sentence(search_model: Seq2Seq, batch: tuple) -> None:
    src, lengths, max_lens = batch
    found = greedy([search_model], src, lengths, max_lens, BOS, EOS)
    assert len(found) == src.size(0)
    assert all(len(h) == 1 for h in found)
    assert all(EOS not in h[0].ids for h in found)
    assert len({tuple(h[0].ids) for h in found}) > 1  # an untrained but peaky model still varies


def test_greedy_picks_the_most_probable_word_at_every_step(search_model: Seq2Seq, batch: tuple) -> None:
    src, lengths, max_lens = batch
    found = greedy([search_model], src, lengths, max_lens, BOS, EOS)
    for i, hyps in enumerate(found):
        ids = hyps[0].ids
        state = search_model.encode(src[i : i + 1, : int(lengths[i])], lengths[i : i + 1])
        token = torch.tensor([BOS])
        for pos, word in enumerate(ids + [EOS]):
            logp, state = search_model.step(token, state)
            logp[:, [PAD, BOS]] = float("-inf")  # not words (see test_search_never_emits_pad_or_bos)
            if pos < int(max_lens[i]):
                assert int(logp.argmax()) == word
            token = torch.tensor([word])


def test_beam_one_equals_greedy(search_model: Seq2Seq, batch: tuple) -> None:
    src, lengths, max_lens = batch
    g = greedy([search_model], src, lengths, max_lens, BOS, EOS)
    # beam=1 with nbest=2 runs the general beam code with one live hypothesis (nbest is capped at beam).
    b = beam_search([search_model], src, lengths, max_lens, BOS, EOS, beam=1, nbest=2)
    assert_same(g, b)
    assert_same(g, beam_search([search_model], src, lengths, max_lens, BOS, EOS, beam=1))


@pytest.mark.parametrize("beam", [1, 4])
def test_scores_equal_model_score(search_model: Seq2Seq, batch: tuple, beam: int) -> None:
    src, lengths, max_lens = batch
    found = beam_search([search_model], src, lengths, max_lens, BOS, EOS, beam=beam, nbest=beam)
    for i, hyps in enumerate(found):
        for h in hyps:
            assert h.score == pytest.approx(model_score([search_model], src[i], int(lengths[i]), h.ids), abs=1e-4)


@pytest.mark.parametrize("beam", [1, 3])
def test_hypotheses_respect_max_lens(search_model: Seq2Seq, beam: int) -> None:
    src, lengths = random_batch(10, search_model.config.src_vocab_size, seed=2)
    max_lens = torch.tensor([1, 2, 3, 1, 2, 3, 1, 2, 3, 4])
    # Make </s> unlikely so that the limit is what stops most hypotheses.
    model = copy.deepcopy(search_model)
    with torch.no_grad():
        model.output.bias[EOS] -= 20.0
    found = beam_search([model], src, lengths, max_lens, BOS, EOS, beam=beam, nbest=beam)
    for i, hyps in enumerate(found):
        assert hyps
        for h in hyps:
            assert len(h.ids) <= int(max_lens[i])
            # The forced </s> is scored too.
            assert h.score == pytest.approx(model_score([model], src[i], int(lengths[i]), h.ids), abs=1e-3)
    assert sum(len(h[0].ids) == int(m) for h, m in zip(found, max_lens)) >= 8


def test_beam_nbest_sorted_best_first_and_distinct(search_model: Seq2Seq, batch: tuple) -> None:
    src, lengths, max_lens = batch
    found = beam_search([search_model], src, lengths, max_lens, BOS, EOS, beam=4, nbest=4)
    assert len(found) == src.size(0)
    for hyps in found:
        assert len(hyps) == 4
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.ids) for h in hyps}) == 4
        assert all(EOS not in h.ids and BOS not in h.ids for h in hyps)


def test_nbest_is_capped_at_beam(search_model: Seq2Seq, batch: tuple) -> None:
    src, lengths, max_lens = batch
    found = beam_search([search_model], src, lengths, max_lens, BOS, EOS, beam=2, nbest=5)
    assert all(1 <= len(h) <= 2 for h in found)


def test_beam_four_scores_at_least_as_well_as_greedy_on_average(search_model: Seq2Seq) -> None:
    # Beam search is not guaranteed to beat greedy on every sentence; over 20 it should on average.
    model = copy.deepcopy(search_model)
    with torch.no_grad():  # keep this test about search quality only: no <pad>/<s> candidates
        model.output.bias[PAD] -= 30.0
        model.output.bias[BOS] -= 30.0
    src, lengths = random_batch(20, model.config.src_vocab_size, seed=3)
    max_lens = lengths * 2 + 3
    g = greedy([model], src, lengths, max_lens, BOS, EOS)
    b = beam_search([model], src, lengths, max_lens, BOS, EOS, beam=4, nbest=1)
    diffs = [hb[0].score - hg[0].score for hb, hg in zip(b, g)]
    assert sum(diffs) / len(diffs) > 0
    assert sum(d >= -1e-4 for d in diffs) >= 15
    assert any(d > 1e-3 for d in diffs)  # beam search really found something better somewhere
    assert len({len(h[0].ids) for h in b}) > 2  # and the hypotheses are not degenerate


def test_beam_finds_the_exact_best_when_the_beam_holds_everything(make_tiny_model: Callable[..., Seq2Seq]) -> None:
    # Target vocabulary of 6: the 4 specials + 2 words. Hypotheses are made of <unk> and the two words
    # (never <pad> or <s>, see below), at most 2 tokens: 1 + 3 + 9 = 13 hypotheses in all.
    model = make_tiny_model(14, init_scale=0.5, tgt_vocab_size=6)
    src, lengths = random_batch(3, model.config.src_vocab_size, seed=4)
    max_lens = torch.tensor([2, 2, 2])
    found = beam_search([model], src, lengths, max_lens, BOS, EOS, beam=40, nbest=40)
    words = [UNK, 4, 5]
    everything = [[]] + [[w] for w in words] + [list(p) for p in itertools.product(words, repeat=2)]
    for i, hyps in enumerate(found):
        exact = sorted(((model_score([model], src[i], int(lengths[i]), ids), ids) for ids in everything),
                       key=lambda x: -x[0])
        assert sorted(tuple(h.ids) for h in hyps) == sorted(tuple(ids) for ids in everything)
        assert hyps[0].ids == exact[0][1]
        assert [h.score for h in hyps] == pytest.approx([s for s, _ in exact], abs=1e-4)
    # With nbest 1 and a beam that holds everything, the stopping rule must still return the best one.
    best = beam_search([model], src, lengths, max_lens, BOS, EOS, beam=40, nbest=1)
    assert [h[0].ids for h in best] == [h[0].ids for h in found]


@pytest.mark.parametrize("beam", [1, 4])
def test_search_never_emits_pad_or_bos(search_model: Seq2Seq, batch: tuple, beam: int) -> None:
    # <pad> and <s> are not words: a hypothesis holding them prints the same text as one without them
    # (Vocab.decode drops them), and Seq2Seq.score cannot score it (it masks <pad> positions as
    # padding), so the search must never choose them. <unk> is a legitimate output word.
    src, lengths, max_lens = batch
    model = copy.deepcopy(search_model)
    with torch.no_grad():
        model.output.bias[PAD] += 5.0
        model.output.bias[BOS] += 5.0
    found = beam_search([model], src, lengths, max_lens, BOS, EOS, beam=beam, nbest=beam)
    bad = [h.ids for hyps in found for h in hyps if PAD in h.ids or BOS in h.ids]
    assert bad == []


@pytest.mark.parametrize("beam", [1, 4])
def test_batch_results_equal_sentence_by_sentence(search_model: Seq2Seq, batch: tuple, beam: int) -> None:
    src, lengths, max_lens = batch
    together = beam_search([search_model], src, lengths, max_lens, BOS, EOS, beam=beam, nbest=beam)
    for i in range(src.size(0)):
        alone = beam_search([search_model], src[i : i + 1, : int(lengths[i])], lengths[i : i + 1],
                            max_lens[i : i + 1], BOS, EOS, beam=beam, nbest=beam)
        assert_same([together[i]], alone, atol=1e-4)


@pytest.mark.parametrize("beam", [1, 4])
def test_ensemble_of_one_or_two_copies_equals_the_model(search_model: Seq2Seq, batch: tuple, beam: int) -> None:
    src, lengths, max_lens = batch
    single = beam_search([search_model], src, lengths, max_lens, BOS, EOS, beam=beam, nbest=beam)
    twin = copy.deepcopy(search_model)
    doubled = beam_search([search_model, twin], src, lengths, max_lens, BOS, EOS, beam=beam, nbest=beam)
    same_object = beam_search([search_model, search_model], src, lengths, max_lens, BOS, EOS, beam=beam, nbest=beam)
    assert_same(single, doubled)
    assert_same(single, same_object)
    if beam == 1:
        assert_same(single, greedy([search_model], src, lengths, max_lens, BOS, EOS))


@pytest.mark.parametrize("beam", [1, 3])
def test_ensemble_score_is_the_mean_of_the_models_scores(make_tiny_model: Callable[..., Seq2Seq], beam: int) -> None:
    a, b = make_tiny_model(21, init_scale=0.5), make_tiny_model(22, init_scale=0.5)
    src, lengths = random_batch(6, a.config.src_vocab_size, seed=5)
    max_lens = lengths + 3
    found = beam_search([a, b], src, lengths, max_lens, BOS, EOS, beam=beam, nbest=beam)
    for i, hyps in enumerate(found):
        for h in hyps:
            expected = model_score([a, b], src[i], int(lengths[i]), h.ids)
            assert h.score == pytest.approx(expected, abs=1e-4)


def test_ensemble_step_averages_log_probabilities(make_tiny_model: Callable[..., Seq2Seq]) -> None:
    a, b = make_tiny_model(31), make_tiny_model(32)
    src, lengths = random_batch(4, a.config.src_vocab_size, seed=6)
    states = [a.encode(src, lengths), b.encode(src, lengths)]
    tokens = torch.full((4,), BOS)
    logp, new_states = step([a, b], tokens, states)
    la, _ = a.step(tokens, states[0])
    lb, _ = b.step(tokens, states[1])
    words = [i for i in range(logp.size(1)) if i not in (PAD, BOS)]  # whether or not step masks those
    torch.testing.assert_close(logp[:, words], ((la + lb) / 2)[:, words])
    assert len(new_states) == 2


def test_select_reorders_state_rows() -> None:
    h = torch.arange(2 * 3 * 2, dtype=torch.float).view(2, 3, 2)
    c = -h
    ((h2, c2, *rest),) = select([State(h, c)], torch.tensor([2, 0, 0]))
    assert rest == [None] * 5
    assert torch.equal(h2, h[:, [2, 0, 0]]) and torch.equal(c2, c[:, [2, 0, 0]])


def test_search_without_gradients(search_model: Seq2Seq, batch: tuple) -> None:
    src, lengths, max_lens = batch
    for p in search_model.parameters():
        p.requires_grad_(True)
    found = beam_search([search_model], src, lengths, max_lens, BOS, EOS, beam=2)
    assert isinstance(found[0][0].score, float)
    assert all(p.grad is None for p in search_model.parameters())


@pytest.mark.parametrize("beam", [1, 3])
def test_forbidden_unk_never_output(search_model: Seq2Seq, batch: tuple, beam: int) -> None:
    src, lengths, max_lens = batch
    biased = copy.deepcopy(search_model)
    with torch.no_grad():
        biased.output.bias[UNK] += 5.0  # make <unk> the favourite word
    allowed = beam_search([biased], src, lengths, max_lens, BOS, EOS, beam)
    assert any(UNK in h[0].ids for h in allowed)
    forbidden = beam_search([biased], src, lengths, max_lens, BOS, EOS, beam, forbid=(UNK,))
    assert all(UNK not in h.ids for hyps in forbidden for h in hyps)
    assert all(h[0].score > float("-inf") for h in forbidden)


# ------------------------------------------- against a plain, one-sentence-at-a-time reference search


@torch.no_grad()
def reference_beam(models: list[Seq2Seq], src: torch.Tensor, length: int, max_len: int, beam: int, nbest: int,
                   alpha: float, forbid: tuple[int, ...] = ()) -> list[tuple[list[int], float]]:
    """The rules of ``beam_search`` written plainly for one sentence, with Python lists and sorts: of the
    2*beam best extensions, those ending in </s> among the top ``beam`` complete; the best ``beam`` others
    live on; stop at ``beam`` complete ones, at the length limit (</s> forced), when nothing lives, or when
    the nbest-th complete one ranks at least as well as the best live one could at the limit."""
    nbest = min(nbest, beam)

    def rank(score: float, n: int) -> float:
        return score / ((5 + n) / 6) ** alpha if alpha else score

    states = [m.encode(src[:length].unsqueeze(0), torch.tensor([length])) for m in models]
    live: list[tuple[float, list[int], list[State]]] = [(0.0, [], states)]
    complete: list[tuple[list[int], float]] = []
    for t in range(max_len + 1):
        cands = []
        for score, ids, sts in live:
            outs = [m.step(torch.tensor([ids[-1] if ids else BOS]), s) for m, s in zip(models, sts)]
            logp = sum(o[0][0] for o in outs) / len(outs)
            logp[[PAD, BOS, *forbid]] = float("-inf")
            words = [EOS] if t >= max_len else range(logp.size(0))
            cands += [(score + float(logp[w]), ids + [w], [o[1] for o in outs]) for w in words]
        cands = [c for c in sorted(cands, key=lambda c: -c[0])[: 2 * beam] if c[0] > float("-inf")]
        complete += [(c[1][:-1], c[0]) for c in cands[:beam] if c[1][-1] == EOS]
        live = [c for c in cands if c[1][-1] != EOS][:beam]
        ranks = sorted((rank(s, len(ids) + 1) for ids, s in complete), reverse=True)
        if (not live or len(complete) >= beam
                or (len(ranks) >= nbest and ranks[nbest - 1] >= rank(live[0][0], max_len + 1))):
            break
    return sorted(complete, key=lambda h: -rank(h[1], len(h[0]) + 1))[:nbest]


@pytest.mark.parametrize("beam,nbest,alpha,attention,ensemble", [
    (2, 2, 0.0, "none", False), (5, 1, 0.0, "dot", False), (5, 5, 1.0, "general", False),
    (12, 3, 0.0, "none", True), (3, 3, 0.6, "dot", True)])
def test_beam_equals_a_plain_reference_search(make_tiny_model: Callable[..., Seq2Seq], beam: int, nbest: int,
                                              alpha: float, attention: str, ensemble: bool) -> None:
    models = [make_tiny_model(2, init_scale=2.0, attention=attention)]
    if ensemble:
        models.append(make_tiny_model(3, init_scale=1.0))
    src, lengths = random_batch(8, models[0].config.src_vocab_size, seed=7)
    max_lens = torch.tensor([1, 2, 3, 5, 8, 12, 4, 6])
    found = beam_search(models, src, lengths, max_lens, BOS, EOS, beam=beam, nbest=nbest, forbid=(UNK,), alpha=alpha)
    for i, hyps in enumerate(found):
        expected = reference_beam(models, src[i], int(lengths[i]), int(max_lens[i]), beam, nbest, alpha, (UNK,))
        assert [h.ids for h in hyps] == [ids for ids, _ in expected]
        assert [h.score for h in hyps] == pytest.approx([s for _, s in expected], abs=1e-4)


@pytest.mark.parametrize("vocab", [5, CHUNK, CHUNK + 1, 3 * CHUNK - 7, 1000])
@pytest.mark.parametrize("k, m", [(1, 1), (3, 6), (5, 10), (4, 2)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_best_words_equal_a_topk_over_all_pairs(vocab: int, k: int, m: int, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(vocab * 100 + k * 10 + m)
    n = 6
    values = (torch.randn(n * k, vocab, generator=gen) * 4).to(dtype)
    values[0, :] = float("-inf")  # a row with no finite word
    values[:, 1] = float("-inf")  # a banned word
    bias = torch.randn(n * k, generator=gen) * 3
    bias[k + 1] = float("-inf")  # an empty slot
    m = min(m, k * vocab)
    top, slot, word = best_words(values, bias, k, m)
    everything = (values.float() + bias.unsqueeze(1)).view(n, k * vocab)
    expected = everything.topk(m, dim=1).values
    torch.testing.assert_close(top, expected)  # the same scores, best first (ties in any order)
    finite = torch.isfinite(top)
    picked = everything.gather(1, slot * vocab + word)  # each returned pair really has its score
    torch.testing.assert_close(picked[finite], top[finite])
    assert bool(((word >= 0) & (word < vocab) & (slot >= 0) & (slot < k)).all())
    for i in range(n):  # no pair twice
        pairs = [(s, w) for s, w, f in zip(slot[i].tolist(), word[i].tolist(), finite[i].tolist()) if f]
        assert len(pairs) == len(set(pairs))
