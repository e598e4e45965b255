"""``s2s translate`` through the command line: one line out per line in, n-best lists, ensembles, errors."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch

from clitools import TINY, Cli, Tiny, write_lines

# Small decoding settings keep an untrained model's outputs short.
FAST = ["--max-len-a", "1", "--max-len-b", "3", "--device", "cpu", "--quiet"]


def translate(cli: Cli, model: Path, *args: object, input: str | bytes | None = None) -> list[str]:
    return cli("translate", "-m", model, *FAST, *args, input=input).stdout.split("\n")[:-1]


def test_one_output_line_per_input_line_including_empty_ones(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    lines = ["the cat sees a dog", "", "a big red house", "   ", "zebra xylophone", "", "fish"]
    src = write_lines(tmp_path / "in.en", lines)
    result = cli("translate", "-m", tiny.model, *FAST[:-1], src)
    out = result.stdout.split("\n")
    assert out[-1] == "" and len(out) - 1 == len(lines)  # every line ends with \n, nothing else
    for given, got in zip(lines, out):
        if not given.strip():
            assert got == ""
    # Words the tiny model knows: every output token is one of its target words.
    french = set(tiny.vocab_fr.read_text().split()) | {"<unk>"}
    assert all(tok in french for line in out for tok in line.split())
    assert re.match(r"^s2s translate: 7 lines \(3 empty\)", result.stderr), result.stderr


def test_file_stdin_and_dash_give_the_same_output(cli: Cli, tiny: Tiny) -> None:
    text = tiny.dev_en.read_text(encoding="utf-8")
    from_file = translate(cli, tiny.model, tiny.dev_en)
    assert len(from_file) == len(text.splitlines()) == 8
    assert translate(cli, tiny.model, input=text) == from_file
    assert translate(cli, tiny.model, "-", input=text) == from_file
    # The batch size changes only how many lines are decoded together.
    assert translate(cli, tiny.model, "--batch-size", "3", tiny.dev_en) == from_file


def test_crlf_input_gives_the_same_output(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    crlf = tmp_path / "crlf.en"
    crlf.write_bytes(tiny.dev_en.read_bytes().replace(b"\n", b"\r\n"))
    assert translate(cli, tiny.model, crlf) == translate(cli, tiny.model, tiny.dev_en)


def test_output_file(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    out = tmp_path / "hyp.fr"
    result = cli("translate", "-m", tiny.model, *FAST, tiny.dev_en, "-o", out)
    assert result.stdout == ""
    assert out.read_text(encoding="utf-8").split("\n")[:-1] == translate(cli, tiny.model, tiny.dev_en)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hyp.fr"]


def test_nbest_format(cli: Cli, tiny: Tiny) -> None:
    lines = translate(cli, tiny.model, "--beam", "4", "--nbest", "3", tiny.dev_en)
    assert len(lines) == 3 * 8
    parsed = []
    for line in lines:
        fields = line.split(" ||| ")
        assert len(fields) == 3, line
        parsed.append((int(fields[0]), fields[1], float(fields[2])))
    assert [i for i, _, _ in parsed] == [i for i in range(8) for _ in range(3)]
    for i in range(8):
        group = parsed[3 * i : 3 * i + 3]
        scores = [s for _, _, s in group]
        assert scores == sorted(scores, reverse=True) and all(s <= 0 for s in scores)
        assert len({text for _, text, _ in group}) == 3  # three different hypotheses
    # The best of the n-best list is what plain beam search prints.
    best = translate(cli, tiny.model, "--beam", "4", tiny.dev_en)
    assert [parsed[3 * i][1] for i in range(8)] == best


def test_ensemble_of_one_model_twice_equals_the_model(cli: Cli, tiny: Tiny) -> None:
    single = translate(cli, tiny.model, "--beam", "3", tiny.dev_en)
    double = cli("translate", "-m", tiny.model, "-m", tiny.model, "--beam", "3", *FAST, tiny.dev_en)
    assert double.stdout.split("\n")[:-1] == single


def test_ensemble_summary_counts_models(cli: Cli, tiny: Tiny) -> None:
    result = cli("translate", "-m", tiny.model, "-m", tiny.model, *FAST[:-1], tiny.dev_en)
    assert "2 model(s)" in result.stderr


def test_invalid_utf8_names_file_and_line_unless_replaced(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    bad = tmp_path / "bad.en"
    bad.write_bytes(b"the cat\nthe dog\na \xe9 bird\nfish\n")
    out = tmp_path / "out.fr"
    cli.fails("translate", "-m", tiny.model, *FAST, bad, "-o", out, watch=tmp_path, contains=[f"{bad}:3", "UTF-8"])
    cli.fails("translate", "-m", tiny.model, *FAST, input=bad.read_bytes(), contains=["<stdin>:3"])
    replaced = translate(cli, tiny.model, "--errors", "replace", bad)
    assert len(replaced) == 4
    assert replaced[:2] == translate(cli, tiny.model, input="the cat\nthe dog\n")


def test_moses_model_translates_raw_text(cli: Cli, tmp_path: Path) -> None:
    en = write_lines(tmp_path / "train.en", ["Hello, world!", "The cat's bed.", "Where is it?"] * 4)
    fr = write_lines(tmp_path / "train.fr", ["Bonjour, le monde !", "Le lit du chat.", "Où est-il ?"] * 4)
    cli("vocab", en, "-o", tmp_path / "v.en")
    cli("vocab", fr, "-o", tmp_path / "v.fr")
    cli("prepare", "--src-vocab", tmp_path / "v.en", "--tgt-vocab", tmp_path / "v.fr", en, fr,
        "-o", tmp_path / "train.s2s")
    cli("train", tmp_path / "train.s2s", "-o", tmp_path / "m.pt", *TINY)
    out = translate(cli, tmp_path / "m.pt", input="Hello, cat!\n\nWhere is the world?\n")
    assert len(out) == 3 and out[1] == ""


# ----------------------------------------------------------------------------------------- errors


def test_missing_model(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    cli.fails("translate", "-m", tmp_path / "nope.pt", tiny.dev_en, "-o", tmp_path / "out", watch=tmp_path,
              contains=[str(tmp_path / "nope.pt")])


@pytest.mark.parametrize("text", [
    "hello world\n",
    "sees big dog\nhouse house\n",
    "In the beginning, God created the heavens and the earth.\n",
], ids=["hello", "words", "prose"])
def test_text_file_as_model(cli: Cli, tiny: Tiny, tmp_path: Path, text: str) -> None:
    model = tmp_path / "model.txt"
    model.write_text(text, encoding="utf-8")
    message = cli.fails("translate", "-m", model, tiny.dev_en, "-o", tmp_path / "out", watch=tmp_path,
                        contains=[str(model)])
    # It must say what is wrong: not a model file (not an internal error, nor a warning about code).
    assert re.search(r"not an? (s2s )?model file", message), message


def test_directory_as_model(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    cli.fails("translate", "-m", tiny.dir, tiny.dev_en, contains=["directory"])


def test_truncated_model(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    cut = tmp_path / "cut.pt"
    cut.write_bytes(tiny.model.read_bytes()[:-100])
    cli.fails("translate", "-m", cut, tiny.dev_en, contains=[str(cut)])


def test_torch_file_of_another_program(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"weight": torch.zeros(3, 3)}, "epoch": 3}, foreign)
    cli.fails("translate", "-m", foreign, tiny.dev_en, contains=[str(foreign), "not an s2s model"])


def test_torch_file_with_code_is_refused(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    pickled = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), pickled)  # a whole pickled module: loading it could run code
    cli.fails("translate", "-m", pickled, tiny.dev_en, contains=[str(pickled)])


def test_ensemble_with_different_target_vocabularies(cli: Cli, tiny: Tiny, other_model: Path,
                                                     tmp_path: Path) -> None:
    cli.fails("translate", "-m", tiny.model, "-m", other_model, tiny.dev_en, "-o", tmp_path / "out",
              watch=tmp_path, contains=["target vocabular", str(other_model)])


@pytest.mark.parametrize("options", [
    ["--beam", "0"], ["--nbest", "5", "--beam", "4"], ["--nbest", "-1"], ["--batch-size", "0"],
    ["--max-len-a", "-1"], ["--errors", "ignore"], ["--device", "nonsense"],
], ids=" ".join)
def test_out_of_range_options(cli: Cli, tiny: Tiny, tmp_path: Path, options: list[str]) -> None:
    cli.fails("translate", "-m", tiny.model, *options, tiny.dev_en, "-o", tmp_path / "out", watch=tmp_path,
              contains=[options[0]])


def test_output_in_missing_directory(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    cli.fails("translate", "-m", tiny.model, tiny.dev_en, "-o", tmp_path / "missing" / "out", watch=tmp_path,
              contains=["missing"])


def test_missing_or_directory_input(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    cli.fails("translate", "-m", tiny.model, tmp_path / "nope.en", "-o", tmp_path / "out", watch=tmp_path,
              contains=[str(tmp_path / "nope.en")])
    shutil.copy(tiny.model, tmp_path / "m.pt")
    cli.fails("translate", "-m", tmp_path / "m.pt", tmp_path, "-o", tmp_path / "out", watch=tmp_path,
              contains=["directory"])


def test_precision_options(cli: Cli, tiny: Tiny) -> None:
    n = len(tiny.dev_en.read_text().splitlines())
    for precision in ("bf16", "int8"):
        out = cli("translate", "-m", tiny.model, "--precision", precision, "--beam", "2", tiny.dev_en).stdout
        assert len(out.splitlines()) == n
    cli.fails("translate", "-m", tiny.model, "--precision", "fp8", tiny.dev_en, contains=["--precision"])
