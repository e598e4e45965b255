"""score.py: sacreBLEU metrics as sacreBLEU computes them, model log-probabilities, n-best parsing and
rescoring by the even average of list and model scores [3.2]."""

from __future__ import annotations

import copy
import io
import math
from typing import Callable

import pytest
import torch
from sacrebleu.metrics import BLEU, CHRF, TER

from s2scli.config import DecodeConfig
from s2scli.errors import S2SError
from s2scli.model import Seq2Seq
from s2scli.score import (NbestEntry, metric_scores, model_scores, parse_metrics, parse_nbest, rescore_nbest,
                          score_ids)
from s2scli.translate import MAX_SOURCE_TOKENS, translate
from s2scli.vocab import BOS, EOS, Vocab

HYPS = ["the cat sat on the mat", "a dog barks loudly", "hello world", "it is raining today"]
REFS = ["the cat sat on a mat", "the dog barks loudly", "hello , world", "today it rains"]
REFS2 = ["a cat was sitting on the mat", "a dog is barking", "hello world !", "it is raining"]


@pytest.fixture
def model(make_tiny_model: Callable[..., Seq2Seq]) -> Seq2Seq:
    return make_tiny_model(5, init_scale=0.5)


# -------------------------------------------------------------------------------------------- metrics


def test_metric_scores_equal_sacrebleu_directly() -> None:
    results = metric_scores(HYPS, [REFS], ["bleu", "chrf", "ter"])
    assert [r.name for r in results] == ["BLEU", "chrF2", "TER"]
    for result, metric in zip(results, [BLEU(), CHRF(), TER()]):
        direct = metric.corpus_score(HYPS, [REFS])
        assert result.score == direct.score
        assert result.signature == str(metric.get_signature())
        assert result.text.startswith(result.name + "|")
        assert result.json["score"] == pytest.approx(round(direct.score, 1))
    assert 0 < results[0].score < 100


def test_metric_scores_with_several_reference_streams() -> None:
    (bleu,) = metric_scores(HYPS, [REFS, REFS2], ["bleu"])
    assert bleu.score == BLEU().corpus_score(HYPS, [REFS, REFS2]).score
    assert "nrefs:2" in bleu.signature
    assert bleu.score >= metric_scores(HYPS, [REFS], ["bleu"])[0].score


def test_metric_scores_perfect_and_width() -> None:
    bleu, ter = metric_scores(REFS, [REFS], ["bleu", "ter"], width=3)
    assert bleu.score == pytest.approx(100.0)
    assert ter.score == pytest.approx(0.0)
    assert "= 100.000" in bleu.text


def test_parse_metrics() -> None:
    assert parse_metrics("bleu") == ["bleu"]
    assert parse_metrics(" BLEU, chrF ,ter") == ["bleu", "chrf", "ter"]
    with pytest.raises(S2SError, match="meteor"):
        parse_metrics("bleu,meteor")
    with pytest.raises(S2SError, match="--metrics"):
        parse_metrics(" , ")


# ------------------------------------------------------------------------------------------ model scores


def expected_score(models: list[Seq2Seq], src_ids: list[int], tgt_ids: list[int]) -> float:
    with torch.no_grad():
        values = [float(m.score(torch.tensor([src_ids]), torch.tensor([len(src_ids)]), torch.tensor([[BOS] + tgt_ids]),
                                torch.tensor([tgt_ids + [EOS]]))) for m in models]
    return sum(values) / len(values)


PAIRS = [("a b c", "u v"), ("d", "w x y z"), ("h g f", ""), ("e e", "u"), ("a QQ", "zz v")]


def test_model_scores_equal_model_score(model: Seq2Seq, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    got = list(model_scores(PAIRS, [model], tiny_src_vocab, tiny_tgt_vocab))
    assert len(got) == len(PAIRS)
    for (src, hyp), value in zip(PAIRS, got):
        want = expected_score([model], tiny_src_vocab.encode(src.split()), tiny_tgt_vocab.encode(hyp.split()))
        assert value == pytest.approx(want, abs=1e-4)
        assert value < 0


def test_model_scores_batch_size_does_not_matter(model: Seq2Seq, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    a = list(model_scores(PAIRS, [model], tiny_src_vocab, tiny_tgt_vocab, batch_size=1))
    b = list(model_scores(PAIRS, [model], tiny_src_vocab, tiny_tgt_vocab, batch_size=2))
    c = list(model_scores(PAIRS, [model], tiny_src_vocab, tiny_tgt_vocab, batch_size=64))
    assert a == pytest.approx(b, abs=1e-5) and a == pytest.approx(c, abs=1e-5)


def test_model_scores_empty_source_is_nan(model: Seq2Seq, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    got = list(model_scores([("a", "u"), ("", "u"), ("   ", ""), ("b", "v")], [model], tiny_src_vocab,
                            tiny_tgt_vocab, batch_size=2))
    assert math.isfinite(got[0]) and math.isfinite(got[3])
    assert math.isnan(got[1]) and math.isnan(got[2])
    assert list(model_scores([("", "u")], [model], tiny_src_vocab, tiny_tgt_vocab)) != [0.0]


def test_model_scores_ensemble_is_the_mean(make_tiny_model: Callable[..., Seq2Seq], tiny_src_vocab: Vocab,
                                           tiny_tgt_vocab: Vocab) -> None:
    a, b = make_tiny_model(1, init_scale=0.5), make_tiny_model(2, init_scale=0.5)
    sa = list(model_scores(PAIRS, [a], tiny_src_vocab, tiny_tgt_vocab))
    sb = list(model_scores(PAIRS, [b], tiny_src_vocab, tiny_tgt_vocab))
    both = list(model_scores(PAIRS, [a, b], tiny_src_vocab, tiny_tgt_vocab))
    assert both == pytest.approx([(x + y) / 2 for x, y in zip(sa, sb)], abs=1e-5)


def test_model_scores_truncates_sources_like_translate(model: Seq2Seq, tiny_src_vocab: Vocab,
                                                       tiny_tgt_vocab: Vocab) -> None:
    words = ["a", "b", "c"] * ((MAX_SOURCE_TOKENS + 10) // 3 + 1)
    long_src, cut_src = " ".join(words[: MAX_SOURCE_TOKENS + 10]), " ".join(words[:MAX_SOURCE_TOKENS])
    (long_score,) = model_scores([(long_src, "u v")], [model], tiny_src_vocab, tiny_tgt_vocab)
    (cut_score,) = model_scores([(cut_src, "u v")], [model], tiny_src_vocab, tiny_tgt_vocab)
    assert long_score == pytest.approx(cut_score, abs=1e-5)


def test_score_ids(model: Seq2Seq) -> None:
    pairs = [([4, 5], [6]), ([7], [4, 5, 6]), ([8, 9, 10], [])]
    got = score_ids([model], pairs, torch.device("cpu"))
    assert got == pytest.approx([expected_score([model], s, t) for s, t in pairs], abs=1e-4)


def test_model_scores_agree_with_translate_nbest(make_tiny_model: Callable[..., Seq2Seq], tiny_src_vocab: Vocab,
                                                 tiny_tgt_vocab: Vocab) -> None:
    # The score translate prints for a hypothesis is the model's log-probability of its text.
    model = make_tiny_model(3, init_scale=2.0)
    with torch.no_grad():  # only real words in hypotheses, so the printed text is the whole hypothesis
        model.output.bias[[0, 1, 2]] -= 30.0
    sources = ["a b c", "d e", "f"]
    out = io.StringIO()
    translate(sources, [model], tiny_src_vocab, tiny_tgt_vocab, DecodeConfig(beam=3, nbest=3), out)
    entries = list(parse_nbest(out.getvalue().splitlines(), "nbest"))
    assert len(entries) == 9
    scores = list(model_scores(((sources[e.index], e.text) for e in entries), [model], tiny_src_vocab, tiny_tgt_vocab))
    for e, s in zip(entries, scores):
        assert e.score == pytest.approx(s, abs=2e-4)


# -------------------------------------------------------------------------------------------- n-best


def test_parse_nbest_three_and_four_fields() -> None:
    lines = [
        "0 ||| le chat ||| -1.5",
        "0 ||| un chat ||| d: 0 lm: -3.2 tm: -1 ||| -2.25",
        "1 |||  ||| 0",
        "12 ||| a b ||| -1e-3",
        "3 ||| x y ||| lm: -1 ||| -4.5 ||| 0-0 1-1",  # Moses with an alignment field after the score
    ]
    entries = list(parse_nbest(lines, "list.nbest"))
    assert entries == [
        NbestEntry(0, "le chat", -1.5),
        NbestEntry(0, "un chat", -2.25),
        NbestEntry(1, "", 0.0),
        NbestEntry(12, "a b", -0.001),
        NbestEntry(3, "x y", -4.5),
    ]


@pytest.mark.parametrize(
    "bad, message",
    [
        ("just a sentence", "not an n-best line"),
        ("0 ||| only two fields", "not an n-best line"),
        ("x ||| text ||| -1.0", "n-best line needs an integer index and a numeric score"),
        ("0 ||| text ||| high", "n-best line needs an integer index and a numeric score"),
        ("1.5 ||| text ||| -1", "n-best line needs an integer index and a numeric score"),
        ("-1 ||| text ||| -1", "negative sentence index -1"),
    ],
)
def test_parse_nbest_errors_name_the_line(bad: str, message: str) -> None:
    lines = ["0 ||| ok ||| -1", "0 ||| fine ||| -2", bad, "1 ||| later ||| -3"]
    it = parse_nbest(lines, "list.nbest")
    assert next(it).text == "ok" and next(it).text == "fine"
    with pytest.raises(S2SError, match=rf"^list\.nbest:3: {message}"):
        next(it)


def test_rescore_arithmetic_matches_model_scores(model: Seq2Seq, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    sources = ["a b c", "d e"]
    entries = [NbestEntry(0, "u v", -1.0), NbestEntry(0, "w", -3.0), NbestEntry(0, "x y z", -2.0),
               NbestEntry(1, "u", -0.5), NbestEntry(1, "v v", -4.0)]
    lp = list(model_scores(((sources[e.index], e.text) for e in entries), [model], tiny_src_vocab, tiny_tgt_vocab))
    out = list(rescore_nbest(entries, sources, [model], tiny_src_vocab, tiny_tgt_vocab))
    expected = {(e.index, e.text): 0.5 * e.score + 0.5 * s for e, s in zip(entries, lp)}
    assert len(out) == len(entries)
    for e in out:
        assert e.score == pytest.approx(expected[(e.index, e.text)], abs=1e-5)
    # Grouped by sentence in index order, best first within each.
    assert [e.index for e in out] == [0, 0, 0, 1, 1]
    for index in (0, 1):
        got = [e.text for e in out if e.index == index]
        want = sorted((t for (i, t) in expected if i == index), key=lambda t: -expected[(index, t)])
        assert got == want


def test_rescore_batch_size_does_not_matter(model: Seq2Seq, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    entries = [NbestEntry(i % 2, t, -float(i)) for i, t in enumerate(["u", "v w", "x", "y z u", "", "w"])]
    a = list(rescore_nbest(entries, ["a b", "c"], [model], tiny_src_vocab, tiny_tgt_vocab, batch_size=1))
    b = list(rescore_nbest(entries, ["a b", "c"], [model], tiny_src_vocab, tiny_tgt_vocab, batch_size=64))
    assert [(e.index, e.text) for e in a] == [(e.index, e.text) for e in b]
    assert [e.score for e in a] == pytest.approx([e.score for e in b], abs=1e-5)


def test_rescore_weight(model: Seq2Seq, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    sources = ["a b"]
    entries = [NbestEntry(0, "u", -1.0), NbestEntry(0, "v w", -7.0)]
    lp = list(model_scores([("a b", "u"), ("a b", "v w")], [model], tiny_src_vocab, tiny_tgt_vocab))
    only_list = list(rescore_nbest(entries, sources, [model], tiny_src_vocab, tiny_tgt_vocab, weight=0.0))
    assert [(e.text, e.score) for e in only_list] == [("u", -1.0), ("v w", -7.0)]
    only_model = list(rescore_nbest(entries, sources, [model], tiny_src_vocab, tiny_tgt_vocab, weight=1.0))
    assert sorted(e.score for e in only_model) == pytest.approx(sorted(lp), abs=1e-5)


def test_rescore_can_change_the_ranking(model: Seq2Seq, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    # Two hypotheses with equal list scores: the model decides. With a big list-score gap, the list decides.
    sources = ["a b c"]
    lp = dict(zip(["u v", "w x y z u v"],
                  model_scores([("a b c", "u v"), ("a b c", "w x y z u v")], [model], tiny_src_vocab, tiny_tgt_vocab)))
    model_best = max(lp, key=lambda t: lp[t])
    tied = [NbestEntry(0, t, -5.0) for t in sorted(lp, key=lambda t: lp[t])]  # worse model score first
    assert next(iter(rescore_nbest(tied, sources, [model], tiny_src_vocab, tiny_tgt_vocab))).text == model_best


def test_rescore_keeps_list_score_for_empty_source(model: Seq2Seq, tiny_src_vocab: Vocab,
                                                   tiny_tgt_vocab: Vocab) -> None:
    entries = [NbestEntry(0, "u", -2.0), NbestEntry(0, "v", -1.0), NbestEntry(1, "w", -3.0)]
    out = list(rescore_nbest(entries, ["", "a"], [model], tiny_src_vocab, tiny_tgt_vocab))
    assert [(e.index, e.text, e.score) for e in out[:2]] == [(0, "v", -1.0), (0, "u", -2.0)]
    assert math.isfinite(out[2].score) and out[2].score != -3.0


def test_rescore_refuses_index_beyond_the_source(model: Seq2Seq, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    entries = [NbestEntry(0, "u", -1.0), NbestEntry(2, "v", -1.0)]
    with pytest.raises(S2SError, match=r"list\.nbest: sentence index 2 but the source has only 2 lines"):
        list(rescore_nbest(entries, ["a", "b"], [model], tiny_src_vocab, tiny_tgt_vocab, name="list.nbest"))


def test_rescore_ensemble_of_copies_equals_single(model: Seq2Seq, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    entries = [NbestEntry(0, "u v", -1.0), NbestEntry(0, "w", -1.5)]
    one = list(rescore_nbest(entries, ["a b"], [model], tiny_src_vocab, tiny_tgt_vocab))
    two = list(rescore_nbest(entries, ["a b"], [model, copy.deepcopy(model)], tiny_src_vocab, tiny_tgt_vocab))
    assert [e.text for e in one] == [e.text for e in two]
    assert [e.score for e in one] == pytest.approx([e.score for e in two], abs=1e-6)
