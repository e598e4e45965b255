"""Subword and character vocabularies end to end through the command line: ``vocab --subword`` and
``vocab --tokenizer char --column``, then ``prepare`` (files and ``--tsv``), ``train`` and ``translate``
of raw text. The prepared ids must spell the raw input exactly; translations must be raw text."""

from __future__ import annotations

import gzip
from pathlib import Path

from clitools import TINY, Cli, write_lines

from s2scli.checkpoint import load
from s2scli.data import PreparedData
from s2scli.lines import read_lines
from s2scli.vocab import Vocab, read_vocab

BIBLE = Path(__file__).resolve().parents[2] / "examples" / "bible"


def bible(tmp_path: Path, part: str, lang: str, n: int) -> Path:
    with gzip.open(BIBLE / f"{part}.{lang}.gz", "rt", encoding="utf-8") as f:
        lines = [line.rstrip("\n") for _, line in zip(range(n), f)]
    return write_lines(tmp_path / f"{part}.{lang}", lines)


def vocab_file(path: Path) -> Vocab:
    with open(path, "rb") as f:
        return read_vocab(read_lines(f, str(path)), str(path))


def spelled_back(data_path: Path, i: int) -> tuple[str, str]:
    """Pair ``i`` of a prepared file, its ids turned back into text with the file's own vocabularies."""
    with open(data_path, "rb") as f:
        data = PreparedData(f, str(data_path))
        s, t = (x.tolist() for x in data.pair(i))
        return (data.src_vocab.text_tokenizer().detokenize(data.src_vocab.decode(s)),
                data.tgt_vocab.text_tokenizer().detokenize(data.tgt_vocab.decode(t)))


def test_subword_pipeline(cli: Cli, tmp_path: Path) -> None:
    train_en, train_fr = bible(tmp_path, "train", "en", 1500), bible(tmp_path, "train", "fr", 1500)
    dev_en = bible(tmp_path, "dev", "en", 6)
    cli("vocab", "--subword", "bpe", "--size", "700", train_en, "-o", tmp_path / "v.en")
    cli("vocab", "--subword", "unigram", "--size", "700", train_fr, "-o", tmp_path / "v.fr")
    # A few tricky lines on top: whitespace and characters the models never saw.
    src = write_lines(tmp_path / "s.en", train_en.read_text().splitlines()[:200] + ["\tZoë  says 日本 ▁ "])
    tgt = write_lines(tmp_path / "s.fr", train_fr.read_text().splitlines()[:200] + ["Zoë\u00a0: « 日本 » "])
    data = tmp_path / "train.s2s"
    result = cli("prepare", "--src-vocab", tmp_path / "v.en", "--tgt-vocab", tmp_path / "v.fr", "--max-len", "0",
                 src, tgt, "-o", data)
    assert "201 pairs read, 201 kept" in result.stderr and "<unk> rate: source 0.00%, target 0.00%" in result.stderr
    for i in (0, 57, 200):
        assert spelled_back(data, i) == (src.read_text().splitlines()[i], tgt.read_text().splitlines()[i])

    model = tmp_path / "m.pt"
    cli("train", data, "-o", model, *TINY)
    ckpt = load(model)
    assert ckpt.src_vocab == vocab_file(tmp_path / "v.en") and ckpt.tgt_vocab == vocab_file(tmp_path / "v.fr")
    result = cli("translate", "-m", model, "--beam", "2", "--max-len-b", "20", "-q", dev_en)
    out = result.stdout.split("\n")
    assert len(out) == 7 and out[-1] == ""
    assert not any("\u2581" in line or "<0x" in line for line in out)  # pieces were joined into raw text
    nbest = cli("translate", "-m", model, "--beam", "2", "--nbest", "2", "--max-len-b", "20", "-q", dev_en).stdout
    assert nbest.count("\n") == 12 and "\u2581" not in nbest


def test_character_pipeline_from_tab_separated_pairs(cli: Cli, tmp_path: Path) -> None:
    """The Keras character-level tutorial's data as it comes: fra.txt, English<TAB>French<TAB>attribution."""
    en = bible(tmp_path, "train", "en", 120).read_text().splitlines()
    fr = bible(tmp_path, "train", "fr", 120).read_text().splitlines()
    pairs = write_lines(tmp_path / "fra.txt", [f"{s[:60]}\t{t[:60]}\tCC-BY 2.0 (France) Attribution: tatoeba.org "
                                               f"#{i}" for i, (s, t) in enumerate(zip(en, fr))])
    cli("vocab", "--tokenizer", "char", "--column", "1", "-l", "en", pairs, "-o", tmp_path / "c.en")
    cli("vocab", "--tokenizer", "char", "--column", "2", "-l", "fr", pairs, "-o", tmp_path / "c.fr")
    chars_fr = vocab_file(tmp_path / "c.fr")
    assert chars_fr.tokenizer == "char" and "\u2581" in chars_fr.tokens and "#" not in chars_fr.tokens  # no attribution
    data = tmp_path / "chars.s2s"
    result = cli("prepare", "--src-vocab", tmp_path / "c.en", "--tgt-vocab", tmp_path / "c.fr", "--tsv", pairs,
                 "-o", data)
    assert "120 pairs read, 120 kept" in result.stderr
    assert spelled_back(data, 7) == (en[7][:60], fr[7][:60])
    model = tmp_path / "chars.pt"
    cli("train", data, "-o", model, *TINY)
    result = cli("translate", "-m", model, "--beam", "1", "--max-len-b", "30", "-q", input="Hello.\n\nIn the\tend\n")
    out = result.stdout.split("\n")
    assert len(out) == 4 and out[1] == ""
    assert not any("\u2581" in line or "<U+" in line for line in out)
