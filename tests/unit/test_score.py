"""score.py: sacreBLEU metrics as sacreBLEU computes them, systems compared with sacreBLEU's paired
significance tests, model log-probabilities, n-best parsing and rescoring by the even average of list and
model scores [3.2]."""

from __future__ import annotations

import copy
import gzip
import io
import math
import os
from pathlib import Path
from typing import Callable

import pytest
import torch
from sacrebleu.metrics import BLEU, CHRF, TER

from s2scli.config import DecodeConfig
from s2scli.errors import S2SError
from s2scli.model import Seq2Seq
from s2scli.score import (NbestEntry, compare_systems, comparison_json, format_comparison, metric_scores,
                          model_scores, parse_metrics, parse_nbest, rescore_nbest, score_ids)
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


# ------------------------------------------------------------------------------- paired significance tests

# Real text: the first 100 lines of the bundled French validation pages (docs.dev.fr), and systems made
# from them deterministically: a poor baseline that drops every third word, a much better system that
# drops every twelfth, one that is the baseline with one line put right, and a copy of the baseline.
DOCS_FR = Path(__file__).resolve().parents[2] / "examples" / "docs" / "valid.fr.gz"


def drop_words(lines: list[str], every: int) -> list[str]:
    return [" ".join(w for i, w in enumerate(line.split(), 1) if i % every) for line in lines]


@pytest.fixture(scope="module")
def systems() -> dict[str, list[str]]:
    with gzip.open(DOCS_FR, "rt", encoding="utf-8") as f:
        ref = [next(f).rstrip("\n") for _ in range(100)]
    base = drop_words(ref, 3)
    return {"ref": ref, "base": base, "better": drop_words(ref, 12), "copy": list(base),
            "one_line": [r if i == 7 else b for i, (r, b) in enumerate(zip(ref, base))]}


def compare(systems: dict[str, list[str]], names: list[str], test: str | None, **kw: object) -> object:
    return compare_systems([(n, systems[n]) for n in names], [systems["ref"]], ["bleu", "chrf"], test,
                           **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("test", ["bs", "ar"])
def test_a_copy_of_the_baseline_gets_p_one(systems: dict[str, list[str]], test: str) -> None:
    c = compare(systems, ["base", "copy"], test, n=200)
    for metric in ("BLEU", "chrF2"):
        base, copy_ = c.scores[metric]
        assert base.p_value is None and base.significant is None
        assert copy_.p_value == 1.0 and copy_.significant is False
        assert (copy_.score, copy_.mean, copy_.ci) == (base.score, base.mean, base.ci)


@pytest.mark.parametrize("test", ["bs", "ar"])
def test_a_clearly_better_system_gets_a_small_p(systems: dict[str, list[str]], test: str) -> None:
    c = compare(systems, ["base", "better"], test, n=200)
    for metric in ("BLEU", "chrF2"):
        base, better = c.scores[metric]
        assert better.score > base.score + 20
        # Not one of the 200 samples shows a difference as large: sacreBLEU's smallest p, 1/(n+1).
        assert better.p_value == pytest.approx(1 / 201) and better.significant


def test_bootstrap_gives_means_and_intervals_and_a_small_difference_is_not_significant(
        systems: dict[str, list[str]]) -> None:
    c = compare(systems, ["base", "one_line", "better"], "bs", n=200)
    assert (c.test, c.n, c.seed, c.systems) == ("bs", 200, 12345, ["base", "one_line", "better"])
    for metric in ("BLEU", "chrF2"):
        for s in c.scores[metric]:
            assert s.mean is not None and s.ci is not None and 0 < s.ci < 10
            assert abs(s.mean - s.score) < s.ci
        one_line = c.scores[metric][1]
        assert one_line.score > c.scores[metric][0].score
        assert one_line.p_value is not None and one_line.p_value > 0.05 and not one_line.significant
    assert "bs:200" in c.signatures["BLEU"] and "seed:12345" in c.signatures["BLEU"]
    ar = compare(systems, ["base", "one_line"], "ar", n=200)
    assert ar.scores["BLEU"][1].mean is None and ar.scores["BLEU"][1].ci is None  # as sacrebleu --paired-ar
    assert "ar:200" in ar.signatures["BLEU"]


@pytest.mark.parametrize("test", ["bs", "ar"])
def test_the_numbers_are_sacrebleus_paired_test(systems: dict[str, list[str]], test: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from sacrebleu.significance import PairedTest

    c = compare(systems, ["base", "one_line", "better"], test, n=100, seed=777)
    monkeypatch.setenv("SACREBLEU_SEED", "777")
    named = [(n, systems[n]) for n in ["base", "one_line", "better"]]
    sigs, table = PairedTest(named, {"bleu": BLEU(references=[systems["ref"]]),
                                     "chrf": CHRF(references=[systems["ref"]])}, None, test, 100)()
    for metric in ("BLEU", "chrF2"):
        assert [(s.score, s.mean, s.ci, s.p_value) for s in c.scores[metric]] == [
            (r.score, None if r.mean is None else float(r.mean), None if r.ci is None else float(r.ci),
             r.p_value) for r in table[metric]]
        assert c.signatures[metric] == sigs[metric].format()


def test_the_seed_sets_the_samples_and_leaves_the_environment_alone(systems: dict[str, list[str]],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SACREBLEU_SEED", raising=False)
    one = compare(systems, ["base", "one_line"], "bs", n=100, seed=1)
    assert "SACREBLEU_SEED" not in os.environ
    again = compare(systems, ["base", "one_line"], "bs", n=100, seed=1)
    other = compare(systems, ["base", "one_line"], "bs", n=100, seed=2)
    assert one.scores == again.scores
    assert [s.score for s in one.scores["BLEU"]] == [s.score for s in other.scores["BLEU"]]
    assert [s.mean for s in one.scores["BLEU"]] != [s.mean for s in other.scores["BLEU"]]
    monkeypatch.setenv("SACREBLEU_SEED", "99")
    compare(systems, ["base", "one_line"], "ar", n=10, seed=5)
    assert os.environ["SACREBLEU_SEED"] == "99"


def test_without_a_test_each_system_is_scored(systems: dict[str, list[str]]) -> None:
    c = compare(systems, ["base", "better"], None)
    assert (c.test, c.n, c.seed) == (None, None, None)
    for i, name in enumerate(["base", "better"]):
        bleu, chrf = metric_scores(systems[name], [systems["ref"]], ["bleu", "chrf"])
        assert c.scores["BLEU"][i].score == bleu.score and c.scores["chrF2"][i].score == chrf.score
        assert c.scores["BLEU"][i].p_value is None and c.scores["BLEU"][i].mean is None
    assert c.signatures["BLEU"] == bleu.signature


def test_comparison_table(systems: dict[str, list[str]]) -> None:
    c = compare(systems, ["base", "one_line", "better"], "bs", n=200)
    lines = format_comparison(c, 2).splitlines()
    comments = [line for line in lines if line.startswith("#")]
    assert comments[0] == "# paired bootstrap resampling, 200 resamples, seed 12345: each system against " \
                          "the baseline, base"
    assert any(line.startswith("# BLEU: nrefs:1|bs:200|seed:12345|") for line in comments)
    head, *rows = lines[len(comments):]
    assert [x.strip() for x in head.split("  ") if x.strip()] == ["system", "BLEU (μ ± 95% CI)", "p",
                                                                  "chrF2 (μ ± 95% CI)", "p"]
    assert [r.split()[0] for r in rows] == ["base", "one_line", "better"]
    bleu = c.scores["BLEU"]
    assert f"{bleu[2].score:.2f} ({bleu[2].mean:.2f} ± {bleu[2].ci:.2f})" in rows[2]
    assert rows[0].split()[5] == "-"  # the baseline has no p-value
    p_one_line = f"{bleu[1].p_value:.4f}"
    assert f" {p_one_line} " in rows[1] and f"{p_one_line}*" not in rows[1]
    assert f"{bleu[2].p_value:.4f}*" in rows[2]
    assert all(line == line.rstrip() for line in lines)
    ar = format_comparison(compare(systems, ["base", "better"], "ar", n=50), 1).splitlines()
    assert "# paired approximate randomization, 50 trials, seed 12345" in ar[0]
    assert [line.split() for line in ar if line.startswith("system")] == [["system", "BLEU", "p", "chrF2", "p"]]
    plain = compare(systems, ["base", "better"], None)
    lines = format_comparison(plain, 1).splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["# BLEU", "# chrF2"]
    assert [line.split() for line in lines[2:]] == [
        ["system", "BLEU", "chrF2"],
        *([name, f"{plain.scores['BLEU'][i].score:.1f}", f"{plain.scores['chrF2'][i].score:.1f}"]
          for i, name in enumerate(["base", "better"]))]


def test_comparison_json(systems: dict[str, list[str]]) -> None:
    c = compare(systems, ["base", "copy"], "bs", n=50)
    data = comparison_json(c)
    assert (data["test"], data["n"], data["seed"], data["baseline"]) == ("bs", 50, 12345, "base")
    assert [s["system"] for s in data["systems"]] == ["base", "copy"]
    copy_ = data["systems"][1]["scores"]["BLEU"]
    assert copy_ == {"score": c.scores["BLEU"][1].score, "mean": c.scores["BLEU"][1].mean,
                     "ci": c.scores["BLEU"][1].ci, "p_value": 1.0, "significant": False}
    assert data["systems"][0]["scores"]["chrF2"]["p_value"] is None
    assert set(data["signatures"]) == {"BLEU", "chrF2"}


def test_compare_systems_errors(systems: dict[str, list[str]]) -> None:
    with pytest.raises(S2SError, match="unknown test 'xx'"):
        compare(systems, ["base", "better"], "xx")
    with pytest.raises(S2SError, match="two or more systems"):
        compare(systems, ["base"], "bs")
    with pytest.raises(S2SError, match="--paired-n must be at least 1, got 0"):
        compare(systems, ["base", "better"], "bs", n=0)
    with pytest.raises(S2SError, match="--seed must be a positive integer, got 0"):
        compare(systems, ["base", "better"], "ar", seed=0)
    with pytest.raises(S2SError, match="short has 99 lines but the references have 100"):
        compare_systems([("base", systems["base"]), ("short", systems["better"][:99])], [systems["ref"]],
                        ["bleu"], "bs")


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
