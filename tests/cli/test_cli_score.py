"""``s2s score`` through the command line: sacreBLEU metrics against references, model scores, n-best
re-ranking, and the errors."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from sacrebleu.metrics import BLEU, CHRF, TER

from clitools import Cli, Tiny, write_lines

from s2scli.figures import figure_summary

HYP = ["The cat sat on the mat.", "A dog barks loudly at night.", "", "It is raining today, again."]
REF = ["The cat sat on a mat.", "A dog barks at night.", "Nothing.", "Today it is raining again."]
REF2 = ["The cat was sitting on the mat.", "The dog barks loudly at night.", "Nothing at all.", "It rains today."]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    return write_lines(tmp_path / "hyp.fr", HYP), write_lines(tmp_path / "ref.fr", REF), \
        write_lines(tmp_path / "ref2.fr", REF2)


def value(line: str) -> float:
    """The score in a sacreBLEU text line 'NAME|signature = 12.3 ...'."""
    return float(line.split(" = ")[1].split()[0])


def test_bleu_against_a_reference(cli: Cli, files: tuple[Path, Path, Path]) -> None:
    hyp, ref, _ = files
    out = cli("score", hyp, "--ref", ref).stdout.splitlines()
    assert len(out) == 1
    assert out[0].startswith("BLEU|nrefs:1|")
    assert value(out[0]) == round(BLEU().corpus_score(HYP, [REF]).score, 1)
    assert value(out[0]) > 0


def test_hypotheses_from_stdin(cli: Cli, files: tuple[Path, Path, Path]) -> None:
    hyp, ref, _ = files
    assert cli("score", "--ref", ref, input=hyp.read_text()).stdout == cli("score", hyp, "--ref", ref).stdout
    assert cli("score", "-", "--ref", ref, input=hyp.read_text()).stdout == cli("score", hyp, "--ref", ref).stdout


def test_three_metrics(cli: Cli, files: tuple[Path, Path, Path]) -> None:
    hyp, ref, _ = files
    out = cli("score", hyp, "--ref", ref, "--metrics", "bleu,chrf,ter", "-w", "2").stdout.splitlines()
    assert len(out) == 3
    assert out[0].startswith("BLEU|nrefs:1|")
    assert out[1].startswith("chrF2|nrefs:1|")
    assert out[2].startswith("TER|nrefs:1|")
    expected = [BLEU().corpus_score(HYP, [REF]).score, CHRF().corpus_score(HYP, [REF]).score,
                TER().corpus_score(HYP, [REF]).score]
    assert [value(line) for line in out] == [round(x, 2) for x in expected]
    assert all(re.search(r" = \d+\.\d\d\b", line) for line in out)


def test_json_output(cli: Cli, files: tuple[Path, Path, Path]) -> None:
    hyp, ref, _ = files
    data = json.loads(cli("score", hyp, "--ref", ref, "--metrics", "bleu,ter", "--json").stdout)
    assert [d["name"] for d in data] == ["BLEU", "TER"]
    assert data[0]["score"] == round(BLEU().corpus_score(HYP, [REF]).score, 1)
    assert "nrefs:1" in data[0]["signature"]


def test_two_references(cli: Cli, files: tuple[Path, Path, Path]) -> None:
    hyp, ref, ref2 = files
    line = cli("score", hyp, "--ref", ref, "--ref", ref2).stdout.strip()
    assert line.startswith("BLEU|nrefs:2|")
    assert value(line) == round(BLEU().corpus_score(HYP, [REF, REF2]).score, 1)


def test_model_scores_one_float_per_line(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    src = write_lines(tmp_path / "src.en", ["the cat", "a big dog", "", "fish"])
    hyp = write_lines(tmp_path / "hyp.fr", ["le chat", "un grand chien", "le", ""])
    out = cli("score", hyp, "-m", tiny.model, "--src", src, "--device", "cpu").stdout.splitlines()
    assert len(out) == 4
    scores = [float(x) for x in out]
    assert math.isnan(scores[2])  # an empty source cannot be scored
    assert all(s < 0 for i, s in enumerate(scores) if i != 2)
    # An ensemble of the model with itself gives the same log-probabilities; so does a small batch.
    same = cli("score", hyp, "-m", tiny.model, "-m", tiny.model, "--src", src, "-b", "1").stdout.splitlines()
    assert [float(x) for x in same if x != "nan"] == pytest.approx([s for s in scores if not math.isnan(s)],
                                                                   abs=2e-4)


def test_model_rescoring_of_an_nbest_list(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    nbest = tmp_path / "nbest.txt"
    cli("translate", "-m", tiny.model, "--beam", "4", "--nbest", "3", "--max-len-a", "1", "--max-len-b", "3",
        tiny.dev_en, "-o", nbest)
    entries = [line.split(" ||| ") for line in nbest.read_text().splitlines()]
    # Give the list its own scores that disagree with the model: the reverse of its ranking.
    listed = [(int(i), text, float(j)) for j, (i, text, _) in enumerate(entries)]
    write_lines(nbest, [f"{i} ||| {text} ||| {s:.4f}" for i, text, s in listed])
    out = cli("score", nbest, "-m", tiny.model, "--src", tiny.dev_en, "--nbest").stdout.splitlines()
    assert len(out) == len(listed)
    rescored = [(int(i), text, float(s)) for i, text, s in (line.split(" ||| ") for line in out)]
    # The model's own log-probability of each hypothesis.
    sources = tiny.dev_en.read_text().splitlines()
    src_rep = write_lines(tmp_path / "src.rep", [sources[i] for i, _, _ in listed])
    hyp_rep = write_lines(tmp_path / "hyp.rep", [text for _, text, _ in listed])
    logp = [float(x) for x in cli("score", hyp_rep, "-m", tiny.model, "--src", src_rep).stdout.split()]
    expected = {(i, text): 0.5 * s + 0.5 * lp for (i, text, s), lp in zip(listed, logp)}
    assert {(i, t) for i, t, _ in rescored} == set(expected)
    for i, text, s in rescored:
        assert s == pytest.approx(expected[(i, text)], abs=2e-3)
    # Grouped by sentence in order, best first within each.
    assert [i for i, _, _ in rescored] == sorted(i for i, _, _ in rescored)
    for k in range(8):
        group = [s for i, _, s in rescored if i == k]
        assert group == sorted(group, reverse=True)
    # --weight 0 keeps the list's own order.
    kept = cli("score", nbest, "-m", tiny.model, "--src", tiny.dev_en, "--nbest", "--weight", "0").stdout
    assert [tuple(line.split(" ||| ")[:2]) for line in kept.splitlines()] == \
        [(str(i), t) for i, t, _ in sorted(listed, key=lambda e: (e[0], -e[2]))]


# ----------------------------------------------------------------------------------------- errors


def test_hyp_and_ref_of_different_lengths(cli: Cli, tmp_path: Path) -> None:
    hyp = write_lines(tmp_path / "hyp", ["a", "b", "c"])
    ref = write_lines(tmp_path / "ref", ["a", "b"])
    message = cli.fails("score", hyp, "--ref", ref)
    assert str(hyp) in message and str(ref) in message and "3" in message and "2" in message


def test_neither_ref_nor_model(cli: Cli, files: tuple[Path, Path, Path]) -> None:
    cli.fails("score", files[0], contains=["--ref"])


def test_model_without_src_and_model_with_ref(cli: Cli, tiny: Tiny, files: tuple[Path, Path, Path]) -> None:
    hyp, ref, _ = files
    cli.fails("score", hyp, "-m", tiny.model, contains=["--src"])
    cli.fails("score", hyp, "-m", tiny.model, "--src", tiny.dev_en, "--ref", ref, contains=["--ref"])


def test_model_scores_of_different_lengths(cli: Cli, tiny: Tiny, files: tuple[Path, Path, Path]) -> None:
    message = cli.fails("score", files[0], "-m", tiny.model, "--src", tiny.dev_en)
    assert str(files[0]) in message and str(tiny.dev_en) in message


def test_unknown_metric(cli: Cli, files: tuple[Path, Path, Path]) -> None:
    cli.fails("score", files[0], "--ref", files[1], "--metrics", "bleu,meteor", contains=["meteor"])


def test_missing_files(cli: Cli, files: tuple[Path, Path, Path], tmp_path: Path) -> None:
    cli.fails("score", tmp_path / "nope", "--ref", files[1], contains=[str(tmp_path / "nope")])
    cli.fails("score", files[0], "--ref", tmp_path / "nope", contains=[str(tmp_path / "nope")])
    cli.fails("score", files[0], "--ref", tmp_path, contains=["directory"])


def test_invalid_utf8_in_the_reference(cli: Cli, files: tuple[Path, Path, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.fr"
    bad.write_bytes(b"ok\nok\nok\nnot \xff ok\n")
    cli.fails("score", files[0], "--ref", bad, contains=[f"{bad}:4"])
    assert cli("score", files[0], "--ref", bad, "--errors", "replace").stdout.startswith("BLEU|")


def test_malformed_nbest_list(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    nbest = write_lines(tmp_path / "nbest", ["0 ||| le chat ||| -1.5", "0 le chien -2.0"])
    cli.fails("score", nbest, "-m", tiny.model, "--src", tiny.dev_en, "--nbest", contains=[f"{nbest}:2"])
    write_lines(nbest, ["0 ||| le chat ||| -1.5", "99 ||| le chien ||| -2.0"])
    cli.fails("score", nbest, "-m", tiny.model, "--src", tiny.dev_en, "--nbest", contains=["99"])


# ------------------------------------------------------------------------------ --breakdown [3.7]

BD_SRC = ["the cat", "the cat sat on the mat", "a dog", "", "the red house is big", "cat"]
BD_HYP = ["le chat", "le chat sur le tapis", "un chien", "rien", "", "chat"]
BD_REF = ["le chat", "le chat est sur le tapis", "un chien", "", "la maison rouge est grande", "chat"]
BD_VOCAB = ["#s2s-vocab\tversion=1\ttokenizer=none\tlang=en", "<pad>\t0", "<unk>\t0", "<s>\t0", "</s>\t0",
            "the\t9", "cat\t5", "a\t3", "sat\t1"]


@pytest.fixture
def bd(tmp_path: Path) -> dict[str, Path]:
    return {"src": write_lines(tmp_path / "src.en", BD_SRC), "hyp": write_lines(tmp_path / "hyp.fr", BD_HYP),
            "ref": write_lines(tmp_path / "ref.fr", BD_REF), "vocab": write_lines(tmp_path / "vocab.en", BD_VOCAB)}


def test_breakdown_by_length_table(cli: Cli, bd: dict[str, Path]) -> None:
    out = cli("score", bd["hyp"], "-r", bd["ref"], "--src", bd["src"], "--breakdown", "length", "--bins", "2")
    lines = out.stdout.splitlines()
    assert lines[0].startswith("# BLEU by source sentence length; key: whitespace-separated tokens")
    assert "1 line(s) with a blank source left out" in lines[0]
    assert lines[1].split() == ["bin", "length", "lines", "BLEU", "chrF2"]
    rows = [line.split() for line in lines[2:]]
    # Lengths 2 6 2 5 1 (the blank source left out): 1 2 2 | 5 6.
    assert [(r[0], r[1], r[2]) for r in rows] == [("1", "1-2", "3"), ("2", "5-6", "2"), ("all", "1-6", "5")]
    first = [0, 2, 5]
    assert float(rows[0][3]) == round(BLEU().corpus_score([BD_HYP[i] for i in first],
                                                          [[BD_REF[i] for i in first]]).score, 1)
    assert float(rows[0][4]) == round(CHRF().corpus_score([BD_HYP[i] for i in first],
                                                          [[BD_REF[i] for i in first]]).score, 1)
    assert out.stderr == ""


def test_breakdown_by_frequency_rank_json(cli: Cli, bd: dict[str, Path]) -> None:
    out = cli("score", bd["hyp"], "-r", bd["ref"], "--src", bd["src"], "--breakdown", "freq", "--vocab", bd["vocab"],
              "--bins", "3", "--json", "-w", "2").stdout
    data = json.loads(out)
    assert data["breakdown"] == "freq" and data["skipped"] == 1
    assert "4 ranked words, others rank 5" in data["tokens"]
    # the=1 cat=2 a=3 sat=4, others 5: keys 1.5, (1+2+4+5+1+5)/6, (3+5)/2, -, (1+5+5+5+5)/5, 2.
    means = sorted([1.5, 18 / 6, 4.0, 21 / 5, 2.0])
    # Five lines in three bins: 2, then an equal share of the three left is 1.5, a tie kept low: 1, then 2.
    assert [(b["low"], b["high"]) for b in data["bins"]] == [(means[0], means[1]), (means[2], means[2]),
                                                             (means[3], means[4])]
    assert data["all"]["lines"] == 5
    assert "nrefs:1" in data["signatures"]["BLEU"]


def test_breakdown_length_with_a_vocabulary_uses_its_tokenizer(cli: Cli, bd: dict[str, Path],
                                                                tmp_path: Path) -> None:
    char_vocab = write_lines(tmp_path / "chars.en", ["#s2s-vocab\tversion=1\ttokenizer=char\tlang=en", "<pad>\t0",
                                                     "<unk>\t0", "<s>\t0", "</s>\t0", "t\t1"])
    lines = cli("score", bd["hyp"], "-r", bd["ref"], "--src", bd["src"], "--breakdown", "length", "--vocab",
                char_vocab, "--bins", "1").stdout.splitlines()
    assert "tokens of char (en)" in lines[0]
    assert lines[2].split()[1] == "3-22"  # "cat" to "the cat sat on the mat", in characters


def test_breakdown_plot(cli: Cli, bd: dict[str, Path], tmp_path: Path) -> None:
    png = tmp_path / "fig3.png"
    table = cli("score", bd["hyp"], "-r", bd["ref"], "--src", bd["src"], "--breakdown", "freq",
                "--vocab", bd["vocab"], "--bins", "3", "--plot", png).stdout
    assert len(table.splitlines()) == 2 + 3 + 1  # the table still goes to stdout
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    (axes,) = figure_summary(data)["axes"]
    assert axes["xlabel"] == "average word-frequency rank" and axes["ylabel"] == "BLEU"
    points = {s["label"]: s["points"] for s in axes["series"]}
    assert points["BLEU"] == 3 and points["chrF2"] == 3
    cli("score", bd["hyp"], "-r", bd["ref"], "--src", bd["src"], "--breakdown", "length", "--plot", png)
    (axes,) = figure_summary(png.read_bytes())["axes"]
    assert axes["xlabel"] == "sentence length (tokens)"
    assert {s["label"]: s["points"] for s in axes["series"]}["BLEU"] == 4  # 4 distinct lengths: 4 bins, not 8
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary file left


def test_breakdown_errors(cli: Cli, bd: dict[str, Path], tmp_path: Path) -> None:
    hyp, ref, src = bd["hyp"], bd["ref"], bd["src"]
    png = tmp_path / "out" / "fig.png"
    png.parent.mkdir()
    watch = png.parent
    cli.fails("score", hyp, "-r", ref, "--breakdown", "length", "--plot", png, watch=watch, contains=["--src"])
    cli.fails("score", hyp, "-r", ref, "--src", src, "--breakdown", "freq", "--plot", png, watch=watch,
              contains=["--vocab"])
    cli.fails("score", hyp, "-r", ref, "--src", src, "--breakdown", "size", contains=["size", "length", "freq"])
    cli.fails("score", hyp, "-r", ref, "--src", src, "--breakdown", "length", "--bins", "0", "--plot", png,
              watch=watch, contains=["--bins", "0"])
    short = write_lines(tmp_path / "short.en", BD_SRC[:4])
    message = cli.fails("score", hyp, "-r", ref, "--src", short, "--breakdown", "length", "--plot", png,
                        watch=watch)
    assert str(hyp) in message and str(short) in message and "6" in message and "4" in message
    short_ref = write_lines(tmp_path / "short.fr", BD_REF[:5])
    message = cli.fails("score", hyp, "-r", short_ref, "--src", src, "--breakdown", "length", "--plot", png,
                        watch=watch)
    assert str(short_ref) in message and "5" in message
    blank = write_lines(tmp_path / "blank.en", [""] * 6)
    cli.fails("score", hyp, "-r", ref, "--src", blank, "--breakdown", "length", "--plot", png, watch=watch,
              contains=["no source line"])
    # Options that belong to --breakdown, or that it does not take.
    cli.fails("score", hyp, "-r", ref, "--bins", "3", contains=["--bins", "--breakdown"])
    cli.fails("score", hyp, "-r", ref, "--plot", png, watch=watch, contains=["--plot"])
    cli.fails("score", hyp, "-r", ref, "--src", src, contains=["--src"])
    cli.fails("score", hyp, "-r", ref, "--src", src, "--breakdown", "length", "--metrics", "ter",
              contains=["--metrics"])
    cli.fails("score", hyp, "-r", ref, "--src", src, "--breakdown", "length", "--plot", "-", contains=["--plot"])
    cli.fails("score", hyp, "-r", ref, "--src", src, "--breakdown", "length", "--plot", tmp_path / "no" / "f.png",
              contains=["does not exist"])
    cli.fails("score", hyp, "-r", ref, "--src", src, "--breakdown", "freq", "--vocab", tmp_path / "nope",
              contains=[str(tmp_path / "nope")])
    cli.fails("score", hyp, "-r", ref, "--src", "-", "--breakdown", "length", input="a\n", contains=["stdin"])
