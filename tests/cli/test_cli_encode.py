"""``s2s encode`` through the command line: one vector line per input line, the decoder's starting state."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from clitools import Cli, Tiny, write_lines
from s2scli import checkpoint
from s2scli.translate import ids_to_tensor

LINES = ["the cat sees a dog", "", "a big red house", "zebra xylophone", "fish"]


def vectors(text: str) -> list[list[float]]:
    assert text == "" or text.endswith("\n")
    return [[float(x) for x in line.split(" ")] for line in text.split("\n")[:-1]]


def test_one_vector_per_line_equal_to_the_decoders_start(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    src = write_lines(tmp_path / "in.en", LINES)
    result = cli("encode", "-m", tiny.model, "--device", "cpu", src)
    rows = vectors(result.stdout)
    assert len(rows) == len(LINES) and all(len(r) == 16 for r in rows)  # the tiny model: hidden 16, 1 layer
    assert rows[1] == [0.0] * 16  # an empty line: the state before reading anything
    assert re.match(r"^s2s encode: 5 lines \(1 empty\), 16 numbers each \(state h, top layer\)$",
                    result.stderr.strip()), result.stderr
    ckpt = checkpoint.load(tiny.model)
    model = ckpt.build_model()
    for line, row in zip(LINES, rows):
        if not line:
            continue
        src_ids, lengths = ids_to_tensor([ckpt.src_vocab.encode(line.split())], torch.device("cpu"))
        with torch.no_grad():
            h = model.encode(src_ids, lengths).h[-1, 0]
        assert torch.allclose(torch.tensor(row), h, rtol=1e-5, atol=1e-6), line


def test_state_and_layer_options_stdin_and_output_file(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    text = "\n".join(LINES) + "\n"
    h = vectors(cli("encode", "-m", tiny.model, "-q", input=text).stdout)
    hc = vectors(cli("encode", "-m", tiny.model, "-q", "--state", "hc", "--layer", "all", "-b", "2",
                     input=text).stdout)
    c = vectors(cli("encode", "-m", tiny.model, "-q", "--state", "c", "-", input=text).stdout)
    assert len(hc) == len(LINES) and all(len(r) == 32 for r in hc)
    for a, b, both in zip(h, c, hc):
        assert both == a + b
    out = tmp_path / "v.txt"
    result = cli("encode", "-m", tiny.model, "-q", "-o", out, input=text)
    assert result.stdout == "" and vectors(out.read_text()) == h


def test_errors(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    cli.fails("encode", "-m", tiny.model, tmp_path / "missing.en", contains=["missing.en: no such file"])
    cli.fails("encode", "-m", tmp_path / "none.pt", tiny.dev_en, contains=["none.pt"])
    cli.fails("encode", "-m", tiny.model, "--state", "x", tiny.dev_en, contains=["--state"])
    cli.fails("encode", "-m", tiny.model, "--layer", "middle", tiny.dev_en, contains=["--layer"])
    cli.fails("encode", "-m", tiny.model, "-b", "0", tiny.dev_en, contains=["--batch-size"])
    cli.fails("encode", "-m", tiny.model, "-o", tmp_path / "v.txt", input=b"ok\n\xff\n", watch=tmp_path,
              contains=["<stdin>:2: invalid UTF-8"])
