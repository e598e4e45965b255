"""``s2s vocab`` through the command line: the vocabulary file it prints, its options, its errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from clitools import Cli, write_lines

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]


def parse_vocab(text: str) -> tuple[list[str], list[tuple[str, int]]]:
    """Header fields and the (token, count) entries of a vocabulary file's text."""
    lines = text.splitlines()
    header = lines[0].split("\t")
    entries = []
    for line in lines[1:]:
        tok, count = line.split("\t")
        entries.append((tok, int(count)))
    return header, entries


def test_vocab_prints_header_specials_then_words_by_frequency(cli: Cli, tmp_path: Path) -> None:
    corpus = write_lines(tmp_path / "corpus.en", ["b a c a", "a b", "d"])
    result = cli("vocab", "--tokenizer", "none", corpus)
    header, entries = parse_vocab(result.stdout)
    assert header == ["#s2s-vocab", "version=1", "tokenizer=none", "lang=en"]
    assert [t for t, _ in entries[:4]] == SPECIALS
    assert entries[4:] == [("a", 3), ("b", 2), ("c", 1), ("d", 1)]  # ties in code-point order
    # Only data on stdout; the summary goes to stderr.
    assert "s2s vocab:" not in result.stdout
    assert result.stderr.startswith("s2s vocab: 4 distinct tokens, kept 4")


def test_vocab_size_and_min_count(cli: Cli, tmp_path: Path) -> None:
    corpus = write_lines(tmp_path / "corpus.en", ["a a a a b b b c c d", "e e f"])
    _, top3 = parse_vocab(cli("vocab", "--tokenizer", "none", "--size", "3", corpus).stdout)
    assert top3[4:] == [("a", 4), ("b", 3), ("c", 2)]
    _, frequent = parse_vocab(cli("vocab", "--tokenizer", "none", "--min-count", "2", corpus).stdout)
    assert frequent[4:] == [("a", 4), ("b", 3), ("c", 2), ("e", 2)]
    _, both = parse_vocab(cli("vocab", "--tokenizer", "none", "--min-count", "3", "--size", "1", corpus).stdout)
    assert both[4:] == [("a", 4)]


def test_vocab_moses_tokenizes_and_guesses_language_from_file_name(cli: Cli, tmp_path: Path) -> None:
    corpus = write_lines(tmp_path / "train.fr", ["Bonjour, le monde !", "L'homme dit : « oui »."])
    header, entries = parse_vocab(cli("vocab", corpus).stdout)
    assert header == ["#s2s-vocab", "version=1", "tokenizer=moses", "lang=fr"]
    words = dict(entries[4:])
    assert words["Bonjour"] == 1 and words[","] == 1 and words["!"] == 1
    assert "L'" in words and "homme" in words  # French elision split by the Moses tokenizer
    assert not any(" " in w for w in words)


def test_vocab_reads_stdin_and_several_files(cli: Cli, tmp_path: Path) -> None:
    a = write_lines(tmp_path / "a.txt", ["x y"])
    b = write_lines(tmp_path / "b.txt", ["y z"])
    from_files = parse_vocab(cli("vocab", "--tokenizer", "none", a, b).stdout)[1]
    from_stdin = parse_vocab(cli("vocab", "--tokenizer", "none", input="x y\ny z\n").stdout)[1]
    from_dash = parse_vocab(cli("vocab", "--tokenizer", "none", "-", input="x y\ny z\n").stdout)[1]
    assert from_files == from_stdin == from_dash
    assert dict(from_files[4:]) == {"x": 1, "y": 2, "z": 1}


def test_vocab_output_file(cli: Cli, tmp_path: Path) -> None:
    corpus = write_lines(tmp_path / "c.en", ["one two two"])
    out = tmp_path / "v.en"
    result = cli("vocab", "--tokenizer", "none", corpus, "-o", out)
    assert result.stdout == ""
    assert out.read_text(encoding="utf-8") == cli("vocab", "--tokenizer", "none", corpus).stdout


def test_vocab_crlf_input_gives_the_same_vocab_as_lf(cli: Cli, tmp_path: Path) -> None:
    lines = ["The cat sat.", "The dog, too!", "", "end"]
    lf = tmp_path / "lf.en"
    crlf = tmp_path / "crlf.en"
    lf.write_bytes("".join(l + "\n" for l in lines).encode())
    crlf.write_bytes("".join(l + "\r\n" for l in lines).encode())
    for tokenizer in ("none", "moses"):
        a = cli("vocab", "--tokenizer", tokenizer, "--lang", "en", lf).stdout
        b = cli("vocab", "--tokenizer", tokenizer, "--lang", "en", crlf).stdout
        assert a == b
        assert "\r" not in b


def test_vocab_counts_match_a_plain_count(cli: Cli, tiny) -> None:
    _, entries = parse_vocab(tiny.vocab_en.read_text(encoding="utf-8"))
    expected = Counter(w for line in tiny.train_en.read_text().splitlines() for w in line.split())
    assert dict(entries[4:]) == dict(expected)


# ----------------------------------------------------------------------------------------- errors


def test_vocab_missing_input_file(cli: Cli, tmp_path: Path) -> None:
    cli.fails("vocab", tmp_path / "nope.en", watch=tmp_path, contains=[str(tmp_path / "nope.en")])


def test_vocab_directory_as_input(cli: Cli, tmp_path: Path) -> None:
    cli.fails("vocab", tmp_path, contains=["directory"])


def test_vocab_output_in_missing_directory(cli: Cli, tmp_path: Path) -> None:
    corpus = write_lines(tmp_path / "c.en", ["a b"])
    cli.fails("vocab", corpus, "-o", tmp_path / "missing" / "v.en", watch=tmp_path, contains=["missing"])
    assert not (tmp_path / "missing").exists()


def test_vocab_invalid_utf8_names_file_and_line(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.en"
    bad.write_bytes(b"fine\nalso fine\nbroken \xff here\n")
    out = tmp_path / "v.en"
    cli.fails("vocab", "--tokenizer", "none", bad, "-o", out, watch=tmp_path, contains=[f"{bad}:3"])
    result = cli("vocab", "--tokenizer", "none", "--errors", "replace", bad)
    assert "\ufffd" in result.stdout


def test_vocab_bad_option_values(cli: Cli, tmp_path: Path) -> None:
    corpus = write_lines(tmp_path / "c.en", ["a b"])
    cli.fails("vocab", corpus, "--size", "-1", contains=["--size"])
    cli.fails("vocab", corpus, "--min-count", "0", contains=["--min-count"])
    cli.fails("vocab", corpus, "--tokenizer", "bogus", contains=["bogus"])
    cli.fails("vocab", corpus, "--errors", "ignore", contains=["ignore"])
