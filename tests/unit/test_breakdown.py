"""breakdown.py: keys from source sentences (length, average frequency rank), bins of nearly equal size
that never split equal keys, per-bin sacreBLEU scores, the table, the JSON and the plot."""

from __future__ import annotations

import io
import json

import pytest
from sacrebleu.metrics import BLEU, CHRF

from s2scli.breakdown import (Breakdown, breakdown, cut_bins, format_table, length_keys, plot, rank_keys, to_json,
                              word_ranks)
from s2scli.errors import S2SError
from s2scli.figures import figure_summary
from s2scli.vocab import SPECIALS, Vocab

VOCAB = Vocab([*SPECIALS, "the", "cat", "sat", "mat"], "none", "en")

SRC = ["the cat", "the cat sat", "a b c d e", "the", "cat sat on the mat", "mat mat", "", "sat"]
HYP = ["le chat", "le chat assis", "a b c d", "", "chat assis sur le tapis", "tapis tapis", "rien", "assis"]
REF = ["le chat", "le chat est assis", "a b c d e", "le", "le chat sur le tapis", "tapis", "", "assis"]


# ------------------------------------------------------------------------------------------ keys


def test_word_ranks_start_at_one_after_the_specials() -> None:
    assert word_ranks(VOCAB) == {"the": 1, "cat": 2, "sat": 3, "mat": 4}


def test_word_ranks_refuse_a_sentencepiece_vocabulary() -> None:
    vocab = Vocab([*SPECIALS, "\u2581a"], "sentencepiece", "en", tokenizer_model="AAAA")
    with pytest.raises(S2SError, match="sentencepiece"):
        word_ranks(vocab)


def test_length_keys_count_tokens_and_skip_blank_lines() -> None:
    assert length_keys(["a b  c", "", "   ", "x"], str.split) == [3.0, None, None, 1.0]


def test_rank_keys_average_ranks_with_unknown_words_one_past_the_last() -> None:
    ranks = word_ranks(VOCAB)
    keys = rank_keys(["the cat", "the dog", "dog cow", "<unk> mat", ""], str.split, ranks)
    # the=1 cat=2; dog is unknown: rank len(words)+1 = 5; "<unk>" typed in text is an unknown word too.
    assert keys == [1.5, 3.0, 5.0, 4.5, None]


# ------------------------------------------------------------------------------------------ bins


def sizes(groups: list[list[int]]) -> list[int]:
    return [len(g) for g in groups]


def test_cut_bins_equal_sizes_for_distinct_keys() -> None:
    keys = [float(k) for k in [5, 3, 8, 1, 7, 2, 6, 4, 9]]
    groups = cut_bins(keys, 3)
    assert [sorted(keys[i] for i in g) for g in groups] == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert sizes(cut_bins(keys, 4)) in ([2, 2, 2, 3], [3, 2, 2, 2], [2, 3, 2, 2], [2, 2, 3, 2])
    assert sum(sizes(cut_bins(keys, 4))) == 9


def test_cut_bins_never_split_equal_keys() -> None:
    keys = [1.0] * 5 + [2.0] * 1 + [3.0] * 4
    groups = cut_bins(keys, 2)
    assert [sorted({keys[i] for i in g}) for g in groups] == [[1.0], [2.0, 3.0]]
    assert sizes(groups) == [5, 5]
    for n in range(1, 12):
        groups = cut_bins(keys, n)
        seen = [{keys[i] for i in g} for g in groups]
        assert all(a.isdisjoint(b) for k, a in enumerate(seen) for b in seen[k + 1:])
        assert sorted(i for g in groups for i in g) == list(range(len(keys)))
        assert len(groups) == min(n, 3)  # never more bins than distinct keys


def test_cut_bins_keys_increase_from_bin_to_bin_and_sizes_are_near_equal() -> None:
    keys = [float((i * 37) % 101) for i in range(1000)]  # 101 distinct keys, about 10 lines each
    groups = cut_bins(keys, 8)
    assert len(groups) == 8
    for a, b in zip(groups, groups[1:]):
        assert max(keys[i] for i in a) < min(keys[i] for i in b)
    assert max(sizes(groups)) - min(sizes(groups)) <= 20  # off by at most one key's worth each side


def test_cut_bins_more_bins_than_lines_and_bad_counts() -> None:
    assert sizes(cut_bins([2.0, 1.0], 8)) == [1, 1]
    assert cut_bins([], 3) == []
    with pytest.raises(S2SError, match="--bins"):
        cut_bins([1.0], 0)


# ------------------------------------------------------------------------------------------ scores


def test_breakdown_scores_each_bin_like_sacrebleu_directly() -> None:
    keys = length_keys(SRC, str.split)
    result = breakdown("length", keys, HYP, [REF], bins=2)
    assert result.skipped == 1  # the blank source line
    kept = [i for i, k in enumerate(keys) if k is not None]
    # Lengths of the kept lines: 2 3 5 1 5 2 1 -> sorted 1 1 2 2 | 3 5 5
    assert [(b.low, b.high, b.lines) for b in result.bins] == [(1, 2, 4), (3, 5, 3)]
    first = [i for i in kept if keys[i] <= 2]
    second = [i for i in kept if keys[i] > 2]
    for b, lines in zip(result.bins, (first, second)):
        hyps, refs = [HYP[i] for i in lines], [[REF[i] for i in lines]]
        assert b.scores["BLEU"] == BLEU().corpus_score(hyps, refs).score
        assert b.scores["chrF2"] == CHRF().corpus_score(hyps, refs).score
    assert result.bins[0].mean == pytest.approx(1.5)
    assert result.overall.lines == 7
    assert result.overall.scores["BLEU"] == BLEU().corpus_score([HYP[i] for i in kept], [[REF[i] for i in kept]]).score
    assert set(result.signatures) == {"BLEU", "chrF2"}
    bleu = BLEU()
    bleu.corpus_score(HYP, [REF])
    assert result.signatures["BLEU"] == str(bleu.get_signature())


def test_breakdown_with_two_reference_streams_and_a_perfect_bin() -> None:
    hyps = ["the cat sat on the mat today", "a dog barked at the postman twice", "one two", "three four five"]
    ref1 = ["a cat sat on a mat", "the dog barks at him", "one", "three five"]
    ref2 = [hyps[0], hyps[1], "two", "four"]
    result = breakdown("freq", [10.0, 10.0, 20.0, 30.0], hyps, [ref1, ref2], bins=2)
    assert [b.lines for b in result.bins] == [2, 2]
    assert result.bins[0].scores["BLEU"] == pytest.approx(100.0)  # ref2 is the hypothesis itself
    assert result.bins[1].scores["BLEU"] == BLEU().corpus_score(hyps[2:], [ref1[2:], ref2[2:]]).score
    assert "nrefs:2" in result.signatures["BLEU"]
    assert result.skipped == 0


def test_breakdown_errors() -> None:
    with pytest.raises(S2SError, match="no source line"):
        breakdown("length", [None, None], ["a", "b"], [["a", "b"]])
    with pytest.raises(S2SError, match="unknown breakdown"):
        breakdown("size", [1.0], ["a"], [["a"]])
    with pytest.raises(S2SError, match="--bins"):
        breakdown("length", [1.0], ["a"], [["a"]], bins=0)


# ------------------------------------------------------------------------------------------ output


@pytest.fixture
def result() -> Breakdown:
    return breakdown("length", length_keys(SRC, str.split), HYP, [REF], bins=3)


def test_format_table(result: Breakdown) -> None:
    text = format_table(result, width=2, describe="whitespace-separated tokens")
    lines = text.splitlines()
    assert lines[0].startswith("# BLEU by source sentence length; key: whitespace-separated tokens")
    assert "1 line(s) with a blank source left out" in lines[0]
    assert lines[1].split() == ["bin", "length", "lines", "BLEU", "chrF2"]
    assert [line.split()[0] for line in lines[2:]] == ["1", "2", "3", "all"]
    assert len({len(line) for line in lines[1:]}) == 1  # aligned columns
    first = lines[2].split()
    # Lengths 1 1 2 2 3 5 5: the cuts fall where the key changes, nearest to an equal share.
    assert [line.split()[1] for line in lines[2:]] == ["1", "2", "3-5", "1-5"]
    assert first[2] == "2" and first[3] == f"{result.bins[0].scores['BLEU']:.2f}"


def test_to_json(result: Breakdown) -> None:
    data = json.loads(json.dumps(to_json(result, 1, "whitespace-separated tokens")))
    assert data["breakdown"] == "length" and data["skipped"] == 1
    assert [b["bin"] for b in data["bins"]] == [1, 2, 3]
    assert data["all"]["lines"] == 7 and data["all"]["bin"] == 0
    assert data["bins"][0]["BLEU"] == round(result.bins[0].scores["BLEU"], 1)


@pytest.mark.parametrize("kind, xlabel", [("length", "sentence length (tokens)"),
                                          ("freq", "average word-frequency rank")])
def test_plot_shows_one_point_per_bin(kind: str, xlabel: str) -> None:
    keys = [float(k) for k in range(1, 9)]
    res = breakdown(kind, keys, HYP, [REF], bins=4)
    out = io.BytesIO()
    summary = plot(res, out)
    data = out.getvalue()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert figure_summary(data) == summary
    (axes,) = summary["axes"]
    assert axes["xlabel"] == xlabel and axes["ylabel"] == "BLEU"
    series = {s["label"]: s["points"] for s in axes["series"]}
    assert series["BLEU"] == 4 and series["chrF2"] == 4
    assert any(label.startswith("BLEU, all 8 lines") for label in series)
