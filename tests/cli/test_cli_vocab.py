"""``s2s vocab`` through the command line: the vocabulary file it prints, its options (characters, subwords,
columns of tab-separated pairs included), its errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from clitools import Cli, write_lines

from s2scli.lines import read_lines
from s2scli.vocab import read_vocab

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


# ------------------------------------------------------------------- characters, subwords, columns


def test_vocab_char_tokenizer(cli: Cli, tmp_path: Path) -> None:
    corpus = write_lines(tmp_path / "c.fr", ["Va !", "Cours\u202f!\tvite"])
    result = cli("vocab", "--tokenizer", "char", corpus)
    header, entries = parse_vocab(result.stdout)
    assert header == ["#s2s-vocab", "version=1", "tokenizer=char", "lang=fr"]
    words = dict(entries[4:])
    assert words["!"] == 2 and words["\u2581"] == 1 and words["<U+202F>"] == 1 and words["<U+0009>"] == 1
    assert all(len(w) == 1 or w.startswith("<U+") for w in words)


def test_vocab_subword_writes_one_self_contained_file(cli: Cli, tmp_path: Path) -> None:
    corpus = write_lines(tmp_path / "c.fr", [f"le chat numéro {i} voit {i * 3} oiseaux" for i in range(200)])
    out = tmp_path / "v.fr"
    result = cli("vocab", "--subword", "bpe", "--size", "300", corpus, "-o", out)
    assert result.stdout == ""
    assert result.stderr == ("s2s vocab: 300 sentencepiece bpe pieces (4 specials, 256 bytes, 40 learned); "
                             "tokenizer sentencepiece, lang fr\n")
    text = out.read_text(encoding="utf-8")
    assert text.startswith("#s2s-vocab\tversion=2\ttokenizer=sentencepiece\tlang=fr\n<pad>\t0\n")
    assert "\n#sentencepiece-model\n" in text
    with open(out, "rb") as f:
        vocab = read_vocab(read_lines(f, str(out)), str(out))
    assert len(vocab) == 300 and vocab.tokenizer_model
    # The same corpus from stdin gives the same file (training is deterministic).
    assert cli("vocab", "--subword", "bpe", "--size", "300", "-l", "fr", input=corpus.read_text()).stdout == text


def test_vocab_subword_unigram(cli: Cli, tmp_path: Path) -> None:
    corpus = write_lines(tmp_path / "c.en", [f"the cat number {i} sees {i * 3} birds" for i in range(200)])
    header, entries = parse_vocab(cli("vocab", "--subword", "unigram", "-s", "290", corpus).stdout.split(
        "#sentencepiece-model\n")[0])
    assert header[1:3] == ["version=2", "tokenizer=sentencepiece"] and len(entries) == 290


def test_vocab_subword_refusals(cli: Cli, tmp_path: Path) -> None:
    corpus = write_lines(tmp_path / "c.en", ["a few words", "and a few more"])
    cli.fails("vocab", "--subword", "bpe", corpus, contains=["--subword needs --size N"])
    cli.fails("vocab", "--subword", "bpe", "--size", "100000", corpus, watch=tmp_path,
              contains=["--size 100000", "Vocabulary size too high"])
    cli.fails("vocab", "--subword", "bpe", "--size", "100", corpus, contains=["--size 100: too small for this text", "give a larger --size"])
    cli.fails("vocab", "--subword", "wordpiece", "--size", "300", corpus, contains=["wordpiece", "bpe, unigram"])
    cli.fails("vocab", "--subword", "bpe", "--size", "300", "--tokenizer", "none", corpus,
              contains=["--tokenizer: not with --subword"])
    cli.fails("vocab", "--subword", "bpe", "--size", "300", "--min-count", "2", corpus,
              contains=["--min-count: not with --subword"])
    cli.fails("vocab", "--subword", "bpe", "--size", "300", input="\n\n", contains=["no text"])
    bad = tmp_path / "bad.en"
    bad.write_bytes(b"fine\nbroken \xff here\n")
    cli.fails("vocab", "--subword", "bpe", "--size", "300", bad, contains=[f"{bad}:2"])


def test_vocab_column_of_tab_separated_pairs(cli: Cli, tmp_path: Path) -> None:
    pairs = write_lines(tmp_path / "fra.txt", ["Go.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272",
                                               "Hi.\tSalut !\tCC-BY 2.0", "Go!\tFile !"])
    _, en = parse_vocab(cli("vocab", "--tokenizer", "none", "--column", "1", pairs).stdout)
    _, fr = parse_vocab(cli("vocab", "--tokenizer", "none", "--column", "2", pairs).stdout)
    assert dict(en[4:]) == {"Go.": 1, "Hi.": 1, "Go!": 1}
    assert dict(fr[4:]) == {"!": 3, "Va": 1, "Salut": 1, "File": 1}
    assert "CC-BY" not in cli("vocab", "--tokenizer", "none", "--column", "2", pairs).stdout


def test_vocab_column_refusals(cli: Cli, tmp_path: Path) -> None:
    pairs = write_lines(tmp_path / "fra.txt", ["Go.\tVa !", "Hi.\tSalut !", "no tab here", "Go!\tFile !"])
    out = tmp_path / "v.fr"
    cli.fails("vocab", "--column", "2", "-l", "fr", pairs, "-o", out, watch=tmp_path,
              contains=[f"{pairs}:3", "at least 2 tab-separated columns"])
    cli.fails("vocab", "--column", "3", pairs, contains=["--column must be 1 (source) or 2 (target), got 3"])


def test_vocab_says_it_guessed_the_language_after_the_work_and_not_on_error(cli: Cli, tmp_path: Path) -> None:
    corpus = write_lines(tmp_path / "corpus.txt", ["Hello, world!"])
    notes = cli("vocab", corpus).stderr.splitlines()
    assert notes[-1] == "s2s vocab: no language code in the file names; tokenized as 'en' (set --lang)"
    assert notes[0].startswith("s2s vocab: ") and "lang en" in notes[0]
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nbroken \xff here\n")
    cli.fails("vocab", bad, contains=[f"{bad}:2"])  # one line: the error, no note before it
