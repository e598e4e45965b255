"""``s2s score`` through the command line: sacreBLEU metrics against references, several systems compared
with paired significance tests (checked against the sacrebleu command), model scores, n-best re-ranking,
and the errors."""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import subprocess
import sys
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


def test_every_mode_names_a_short_stdin_file_the_same_way(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    """One reader serves --ref's modes (and -m's count check): standard input is ``<stdin>`` in each message."""
    hyp = write_lines(tmp_path / "hyp", ["a", "b", "c"])
    other = write_lines(tmp_path / "other", ["a", "b", "d"])
    two = "a\nb\n"
    expected = f"s2s score: error: {hyp} has 3 lines but <stdin> has 2"
    assert cli.fails("score", hyp, "--ref", "-", input=two) == expected
    assert cli.fails("score", hyp, other, "--ref", "-", input=two) == expected
    assert cli.fails("score", hyp, "--ref", other, "--src", "-", "--breakdown", "length", input=two) == expected
    assert cli.fails("score", hyp, "-m", tiny.model, "--src", "-", input=two) == expected
    assert cli.fails("score", "-", "--ref", hyp, input="") == "s2s score: error: <stdin>: no lines to score"


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


# ------------------------------------------------------------ several systems, paired significance tests

SACREBLEU = Path(sys.executable).parent / "sacrebleu"
DOCS_FR = Path(__file__).resolve().parents[2] / "examples" / "docs" / "valid.fr.gz"
SCORE_CELL = re.compile(r"(\d+\.\d+) \((\d+\.\d+) ± (\d+\.\d+)\)")
P_CELL = re.compile(r"\(p = (\d\.\d{4})\)")


def drop_words(lines: list[str], every: int, phase: int = 0) -> list[str]:
    return [" ".join(w for i, w in enumerate(line.split(), 1 + phase) if i % every) for line in lines]


@pytest.fixture
def systems(tmp_path: Path) -> dict[str, Path]:
    """The first 100 lines of the bundled docs.dev.fr as the reference, and systems made from it: a poor
    baseline that drops every third word, a much better one that drops every twelfth, the baseline with
    a few lines put right, one as poor that drops other words in half its lines, and a copy of the
    baseline."""
    with gzip.open(DOCS_FR, "rt", encoding="utf-8") as f:
        ref = [next(f).rstrip("\n") for _ in range(100)]
    base, d = drop_words(ref, 3), tmp_path / "systems"
    d.mkdir()
    return {"ref": write_lines(d / "ref.fr", ref), "base": write_lines(d / "base.fr", base),
            "better": write_lines(d / "better.fr", drop_words(ref, 12)),
            "few": write_lines(d / "few.fr", [r if i % 25 == 0 else b for i, (r, b) in enumerate(zip(ref, base))]),
            "mixed": write_lines(d / "mixed.fr", [b if i % 2 else o for i, (o, b) in
                                                  enumerate(zip(drop_words(ref, 3, phase=1), base))]),
            "copy": write_lines(d / "copy.fr", base)}


def sacrebleu_command(args: list[object], seed: str) -> str:
    if not SACREBLEU.exists():
        pytest.skip(f"no sacrebleu command next to {sys.executable}")
    env = dict(os.environ, SACREBLEU_SEED=seed, NO_COLOR="1")
    return subprocess.run([str(SACREBLEU), *map(str, args)], env=env, capture_output=True, text=True,
                          check=True).stdout


def test_several_files_without_a_test_are_scored_each(cli: Cli, systems: dict[str, Path]) -> None:
    out = cli("score", "-r", systems["ref"], systems["base"], systems["better"], "--metrics", "bleu,chrf", "-w", "2")
    lines = out.stdout.splitlines()
    assert lines[0].startswith("# BLEU: nrefs:1|case:mixed|") and lines[1].startswith("# chrF2: nrefs:1|")
    assert lines[2].split() == ["system", "BLEU", "chrF2"]
    ref = systems["ref"].read_text().splitlines()
    for line, name in zip(lines[3:], ["base", "better"]):
        hyps = systems[name].read_text().splitlines()
        assert line.split() == [str(systems[name]), f"{BLEU().corpus_score(hyps, [ref]).score:.2f}",
                                f"{CHRF().corpus_score(hyps, [ref]).score:.2f}"]
    assert len(lines) == 5 and out.stderr == ""
    data = json.loads(cli("score", "-r", systems["ref"], systems["base"], systems["better"], "--json").stdout)
    assert data["test"] is None and [s["system"] for s in data["systems"]] == [str(systems["base"]),
                                                                                str(systems["better"])]


def test_paired_bootstrap_matches_the_sacrebleu_command(cli: Cli, systems: dict[str, Path],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    files = [systems[n] for n in ("base", "few", "better", "copy")]
    text = sacrebleu_command([systems["ref"], "-i", *files, "-m", "bleu", "chrf", "--paired-bs", "--paired-bs-n",
                              "200", "-w", "4", "-f", "text", "--no-color"], seed="4321")
    theirs = [tuple(map(float, cell)) for cell in SCORE_CELL.findall(text)]  # row by row, BLEU then chrF2
    their_p = [float(p) for p in P_CELL.findall(text)]  # systems 2..4, BLEU then chrF2
    assert len(theirs) == 8 and len(their_p) == 6
    monkeypatch.delenv("SACREBLEU_SEED", raising=False)
    args = ["score", "-r", systems["ref"], *files, "--paired", "bs", "--paired-n", "200", "--metrics", "bleu,chrf"]
    data = json.loads(cli(*args, "--seed", "4321", "--json").stdout)
    assert (data["test"], data["n"], data["seed"], data["baseline"]) == ("bs", 200, 4321, str(systems["base"]))
    ours = [(round(m["score"], 4), round(m["mean"], 4), round(m["ci"], 4))
            for s in data["systems"] for m in (s["scores"]["BLEU"], s["scores"]["chrF2"])]
    assert ours == theirs
    our_p = [round(s["scores"][m]["p_value"], 4) for s in data["systems"][1:] for m in ("BLEU", "chrF2")]
    # The same p-values, but for the copy of the baseline: sacreBLEU counts only strictly larger
    # differences, so the copy, whose every sample differs by exactly 0, gets its smallest p, 1/201.
    assert our_p[:4] == their_p[:4] and their_p[4:] == [0.005, 0.005] and our_p[4:] == [1.0, 1.0]
    assert [s["scores"]["BLEU"]["significant"] for s in data["systems"]] == [None, False, True, False]
    assert our_p[0] > 0.05 and our_p[2] < 0.05  # a few lines put right: no evidence; a better system: p small
    assert "bs:200|seed:4321" in data["signatures"]["BLEU"]
    # The seed may come from the environment, as the sacrebleu command takes it; --seed wins over it.
    monkeypatch.setenv("SACREBLEU_SEED", "4321")
    assert json.loads(cli(*args, "--json").stdout) == data
    monkeypatch.setenv("SACREBLEU_SEED", "1")
    assert json.loads(cli(*args, "--seed", "4321", "--json").stdout) == data


def test_paired_approximate_randomization_matches_the_sacrebleu_command(cli: Cli, systems: dict[str, Path]) -> None:
    files = [systems[n] for n in ("base", "mixed", "better")]
    theirs = json.loads(sacrebleu_command([systems["ref"], "-i", *files, "-m", "bleu", "chrf", "ter", "--paired-ar",
                                           "--paired-ar-n", "200", "-f", "json"], seed="99"))
    data = json.loads(cli("score", "-r", systems["ref"], *files, "--paired", "ar", "--paired-n", "200",
                          "--metrics", "bleu,chrf,ter", "--seed", "99", "--json").stdout)
    for our, their in zip(data["systems"], theirs, strict=True):
        for metric in ("BLEU", "chrF2", "TER"):
            assert our["scores"][metric]["score"] == pytest.approx(their[metric]["score"], abs=1e-9)
            assert our["scores"][metric]["p_value"] == their[metric]["p_value"]
            assert our["scores"][metric]["mean"] is None and our["scores"][metric]["ci"] is None
    assert data["systems"][1]["scores"]["BLEU"]["p_value"] > 0.5  # as poor: no evidence of a difference
    assert data["systems"][2]["scores"]["BLEU"]["p_value"] == pytest.approx(1 / 201)  # clearly better


def test_paired_table(cli: Cli, systems: dict[str, Path]) -> None:
    out = cli("score", "-r", systems["ref"], systems["base"], systems["better"], systems["copy"], "--paired", "bs",
              "--paired-n", "200")
    lines = out.stdout.splitlines()
    assert lines[0] == (f"# paired bootstrap resampling, 200 resamples, seed 12345: each system against the "
                        f"baseline, {systems['base']}")
    table = [line for line in lines if not line.startswith("#")]
    assert [c.strip() for c in table[0].split("  ") if c.strip()] == ["system", "BLEU (μ ± 95% CI)", "p"]
    base, better, copy_ = (row.split() for row in table[1:])
    assert base[0] == str(systems["base"]) and base[-1] == "-"
    assert re.fullmatch(r"\d+\.\d \(\d+\.\d ± \d+\.\d\)", " ".join(better[1:5]))
    assert better[-1] == "0.0050*" and copy_[-1] == "1.0000"
    assert copy_[1:5] == base[1:5]
    assert out.stderr == ""


def test_several_systems_errors(cli: Cli, systems: dict[str, Path], files: tuple[Path, Path, Path], tiny: Tiny,
                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ref, base, better = systems["ref"], systems["base"], systems["better"]
    short = write_lines(tmp_path / "short.fr", better.read_text().splitlines()[:99])
    assert cli.fails("score", "-r", ref, base, short, "--paired", "bs") == \
        f"s2s score: error: {short} has 99 lines but {ref} has 100"
    cli.fails("score", "-r", ref, base, short, contains=[str(short), "99", "100"])
    cli.fails("score", "-r", ref, base, "--paired", "bs", contains=["--paired", "two or more HYP"])
    cli.fails("score", "-r", ref, base, better, "--paired", "t", contains=["'t'", "bs", "ar"])
    cli.fails("score", "-r", ref, base, better, "--paired", "bs", "--paired-n", "0", contains=["--paired-n", "0"])
    cli.fails("score", "-r", ref, base, better, "--paired", "ar", "--seed", "0", contains=["--seed", "0"])
    cli.fails("score", "-r", ref, base, better, "--seed", "7", contains=["--seed", "--paired"])
    cli.fails("score", "-r", ref, base, better, "--paired-n", "7", contains=["--paired-n", "--paired"])
    cli.fails("score", "-r", ref, base, "-", "-", input="x\n", contains=["stdin"])
    monkeypatch.setenv("SACREBLEU_SEED", "none")
    cli.fails("score", "-r", ref, base, better, "--paired", "bs", contains=["SACREBLEU_SEED", "--seed"])
    assert cli("score", "-r", ref, base, better, "--paired", "bs", "--paired-n", "10", "--seed", "3").stdout
    cli("score", "-r", ref, base, better)  # no test: no seed to read
    monkeypatch.delenv("SACREBLEU_SEED")
    # Several HYP files, and the test's options, belong to scoring against references only.
    hyp, _, _ = files
    cli.fails("score", hyp, hyp, "-m", tiny.model, "--src", tiny.dev_en, contains=["-m", "one HYP"])
    cli.fails("score", hyp, "-m", tiny.model, "--src", tiny.dev_en, "--paired", "bs", contains=["--paired", "-m"])
    cli.fails("score", base, better, "-r", ref, "--src", ref, "--breakdown", "length",
              contains=["--breakdown", "one HYP"])
    cli.fails("score", base, "-r", ref, "--src", ref, "--breakdown", "length", "--seed", "3",
              contains=["--seed", "--breakdown"])
