"""``s2s prepare`` through the command line: the prepared file, its statistics, its errors, and the
tab-separated pairs of ``--tsv``."""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

from clitools import Cli, Tiny, write_lines

MAGIC = b"S2SDATA1"
STATS = re.compile(
    r"^s2s prepare: (\d+) pairs read, (\d+) kept, (\d+) dropped \((\d+) with an empty side, (\d+) longer than "
    r"(\d+) tokens\); <unk> rate: source ([\d.]+)%, target ([\d.]+)%$"
)


def stats(stderr: str) -> tuple[int, ...]:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    m = STATS.match(lines[0])
    assert m, lines[0]
    return tuple(int(g) for g in m.groups()[:6]) + (float(m.group(7)), float(m.group(8)))


def make_vocab(cli: Cli, path: Path, lines: list[str], *extra: str) -> Path:
    corpus = write_lines(path.parent / (path.name + ".corpus"), lines)
    cli("vocab", "--tokenizer", "none", corpus, "-o", path, *extra)
    return path


def test_prepare_to_stdout_and_to_file_give_the_same_bytes(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    args = ["prepare", "--src-vocab", tiny.vocab_en, "--tgt-vocab", tiny.vocab_fr, tiny.train_en, tiny.train_fr]
    to_stdout = cli(*args)
    out = tmp_path / "p.s2s"
    to_file = cli(*args, "-o", out)
    assert to_file.stdout_bytes == b""
    assert to_stdout.stdout_bytes.startswith(MAGIC)
    assert to_stdout.stdout_bytes == out.read_bytes() == tiny.train_s2s.read_bytes()
    assert stats(to_stdout.stderr)[:3] == (40, 40, 0)


def test_prepare_reports_kept_dropped_and_unk_rates(cli: Cli, tmp_path: Path) -> None:
    src_vocab = make_vocab(cli, tmp_path / "v.src", ["a b c"])
    tgt_vocab = make_vocab(cli, tmp_path / "v.tgt", ["x y"])
    src = write_lines(tmp_path / "s.txt", [
        "a b",          # kept
        "",             # dropped: empty source
        "a q",          # kept, one unknown source word
        "a b c a b",    # dropped: 5 tokens > --max-len 4
        "c",            # dropped: empty target
        "b b b b",      # kept: exactly 4
        "   ",          # dropped: blank (whitespace only) source
    ])
    tgt = write_lines(tmp_path / "t.txt", ["x", "x y", "x z z", "x", "", "y y y y", "x"])
    out = tmp_path / "p.s2s"
    result = cli("prepare", "--src-vocab", src_vocab, "--tgt-vocab", tgt_vocab, "--max-len", "4", src, tgt, "-o", out)
    pairs, kept, dropped, empty, too_long, max_len, src_unk, tgt_unk = stats(result.stderr)
    assert (pairs, kept, dropped, empty, too_long, max_len) == (7, 3, 4, 3, 1, 4)
    # Kept pairs: sources a b | a q | b b b b -> 1 unknown in 8 tokens; targets x | x z z | y y y y -> 2 in 8.
    assert src_unk == 12.5 and tgt_unk == 25.0
    assert out.read_bytes().startswith(MAGIC)


def test_prepare_without_length_limit_keeps_long_pairs_and_says_so(cli: Cli, tmp_path: Path) -> None:
    src_vocab = make_vocab(cli, tmp_path / "v.src", ["a b"])
    tgt_vocab = make_vocab(cli, tmp_path / "v.tgt", ["x y"])
    src = write_lines(tmp_path / "s.txt", ["a " * 300, "b"])
    tgt = write_lines(tmp_path / "t.txt", ["x", "y " * 200])
    result = cli("prepare", "--src-vocab", src_vocab, "--tgt-vocab", tgt_vocab, "--max-len", "0", src, tgt,
                 "-o", tmp_path / "p.s2s")
    assert "2 pairs read, 2 kept, 0 dropped (0 with an empty side, no length limit)" in result.stderr


def test_prepare_with_moses_vocabularies(cli: Cli, tmp_path: Path) -> None:
    en = write_lines(tmp_path / "c.en", ["Hello, world!", "It's a dog.", "Hello again."])
    fr = write_lines(tmp_path / "c.fr", ["Bonjour, le monde !", "C'est un chien.", "Re-bonjour."])
    cli("vocab", en, "-o", tmp_path / "v.en")
    cli("vocab", fr, "-o", tmp_path / "v.fr")
    result = cli("prepare", "--src-vocab", tmp_path / "v.en", "--tgt-vocab", tmp_path / "v.fr", en, fr,
                 "-o", tmp_path / "p.s2s")
    # Every token of the data is in its own vocabulary: the Moses tokenizer recorded in the vocabulary was used.
    assert stats(result.stderr)[:3] == (3, 3, 0)
    assert stats(result.stderr)[6:] == (0.0, 0.0)


def test_prepare_one_side_from_stdin(cli: Cli, tiny: Tiny) -> None:
    text = tiny.train_fr.read_text(encoding="utf-8")
    result = cli("prepare", "--src-vocab", tiny.vocab_en, "--tgt-vocab", tiny.vocab_fr, tiny.train_en, "-",
                 input=text)
    assert result.stdout_bytes == tiny.train_s2s.read_bytes()


# ----------------------------------------------------------------------------------------- errors


def prepare_args(tiny: Tiny, src: Path | str, tgt: Path | str, *extra: object) -> list[object]:
    return ["prepare", "--src-vocab", tiny.vocab_en, "--tgt-vocab", tiny.vocab_fr, src, tgt, *extra]


def test_prepare_line_count_mismatch_names_both_files_and_counts(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    src = write_lines(tmp_path / "s.en", ["the cat"] * 5)
    tgt = write_lines(tmp_path / "t.fr", ["le chat"] * 4)
    out = tmp_path / "out.s2s"
    message = cli.fails(*prepare_args(tiny, src, tgt, "-o", out), watch=tmp_path)
    assert re.search(rf"{re.escape(str(src))}\D+5\b.*{re.escape(str(tgt))}\D+4\b", message), message
    assert not out.exists()


def test_prepare_line_count_mismatch_from_stdin_leaves_no_file(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    src = write_lines(tmp_path / "s.en", ["the cat"] * 3)
    out = tmp_path / "out.s2s"
    message = cli.fails(*prepare_args(tiny, src, "-", "-o", out), input="le chat\n" * 5, watch=tmp_path)
    assert "3" in message and "5" in message and str(src) in message and "<stdin>" in message


def test_prepare_missing_input_file(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    out = tmp_path / "out.s2s"
    cli.fails(*prepare_args(tiny, tmp_path / "nope.en", tiny.train_fr, "-o", out), watch=tmp_path,
              contains=[str(tmp_path / "nope.en")])
    cli.fails(*prepare_args(tiny, tiny.train_en, tmp_path / "nope.fr", "-o", out), watch=tmp_path,
              contains=[str(tmp_path / "nope.fr")])


def test_prepare_directory_as_input(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    cli.fails(*prepare_args(tiny, tmp_path, tiny.train_fr, "-o", tmp_path / "o.s2s"), watch=tmp_path,
              contains=["directory"])


def test_prepare_both_sides_stdin(cli: Cli, tiny: Tiny) -> None:
    cli.fails(*prepare_args(tiny, "-", "-"), input="a\n", contains=["stdin"])


def test_prepare_output_in_missing_directory(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    cli.fails(*prepare_args(tiny, tiny.train_en, tiny.train_fr, "-o", tmp_path / "missing" / "p.s2s"),
              watch=tmp_path, contains=["missing"])


def test_prepare_negative_max_len(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    cli.fails(*prepare_args(tiny, tiny.train_en, tiny.train_fr, "--max-len", "-1", "-o", tmp_path / "p.s2s"),
              watch=tmp_path, contains=["--max-len"])


def test_prepare_empty_vocab_file(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    empty = tmp_path / "empty.vocab"
    empty.write_bytes(b"")
    cli.fails("prepare", "--src-vocab", empty, "--tgt-vocab", tiny.vocab_fr, tiny.train_en, tiny.train_fr,
              "-o", tmp_path / "p.s2s", watch=tmp_path, contains=[str(empty), "empty"])


def test_prepare_malformed_vocab_line_names_file_and_line(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    bad = tmp_path / "bad.vocab"
    lines = tiny.vocab_fr.read_text(encoding="utf-8").splitlines()
    lines[7] = "two words\t3"  # line 8 of the file
    write_lines(bad, lines)
    cli.fails("prepare", "--src-vocab", tiny.vocab_en, "--tgt-vocab", bad, tiny.train_en, tiny.train_fr,
              "-o", tmp_path / "p.s2s", watch=tmp_path, contains=[f"{bad}:8"])
    lines[7] = "word\tmany"
    write_lines(bad, lines)
    cli.fails("prepare", "--src-vocab", tiny.vocab_en, "--tgt-vocab", bad, tiny.train_en, tiny.train_fr,
              "-o", tmp_path / "p.s2s", watch=tmp_path, contains=[f"{bad}:8"])


def test_prepare_text_file_as_vocab(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    shutil.copy(tiny.train_en, tmp_path / "corpus.en")
    cli.fails("prepare", "--src-vocab", tmp_path / "corpus.en", "--tgt-vocab", tiny.vocab_fr, tiny.train_en,
              tiny.train_fr, "-o", tmp_path / "p.s2s", watch=tmp_path,
              contains=[f"{tmp_path / 'corpus.en'}:1", "not an s2s vocabulary"])


def test_prepare_missing_vocab_file(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    cli.fails("prepare", "--src-vocab", tmp_path / "nope.vocab", "--tgt-vocab", tiny.vocab_fr, tiny.train_en,
              tiny.train_fr, "-o", tmp_path / "p.s2s", watch=tmp_path, contains=[str(tmp_path / "nope.vocab")])


def test_prepare_invalid_utf8_names_file_and_line(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    src = tmp_path / "s.en"
    src.write_bytes(b"the cat\nthe \xc3\x28 dog\n")
    tgt = write_lines(tmp_path / "t.fr", ["le chat", "le chien"])
    cli.fails(*prepare_args(tiny, src, tgt, "-o", tmp_path / "p.s2s"), watch=tmp_path, contains=[f"{src}:2"])
    result = cli(*prepare_args(tiny, src, tgt, "--errors", "replace", "-o", tmp_path / "p.s2s"))
    assert stats(result.stderr)[:2] == (2, 2)


# ------------------------------------------------------------------- tab-separated pairs (--tsv)


def anki_file(tiny: Tiny, path: Path) -> Path:
    """The tiny corpus as manythings.org/anki writes pairs: English<TAB>French<TAB>attribution."""
    en = tiny.train_en.read_text(encoding="utf-8").splitlines()
    fr = tiny.train_fr.read_text(encoding="utf-8").splitlines()
    return write_lines(path, [f"{s}\t{t}\tCC-BY 2.0 (France) Attribution: tatoeba.org #{i} (CM)"
                              for i, (s, t) in enumerate(zip(en, fr))])


def tsv_args(tiny: Tiny, *extra: object) -> list[object]:
    return ["prepare", "--src-vocab", tiny.vocab_en, "--tgt-vocab", tiny.vocab_fr, *extra]


def test_prepare_tsv_gives_the_bytes_of_the_two_files(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    pairs = anki_file(tiny, tmp_path / "fra.txt")
    result = cli(*tsv_args(tiny, "--tsv", pairs))
    assert result.stdout_bytes == tiny.train_s2s.read_bytes()
    assert stats(result.stderr)[:3] == (40, 40, 0)
    from_stdin = cli(*tsv_args(tiny, "--tsv", "-", "-o", tmp_path / "p.s2s"), input=pairs.read_text())
    assert from_stdin.stdout_bytes == b"" and (tmp_path / "p.s2s").read_bytes() == tiny.train_s2s.read_bytes()
    gz = tmp_path / "fra.txt.gz"
    gz.write_bytes(gzip.compress(pairs.read_bytes()))
    assert cli(*tsv_args(tiny, "--tsv", gz)).stdout_bytes == tiny.train_s2s.read_bytes()


def test_prepare_tsv_two_columns_are_enough(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    pairs = write_lines(tmp_path / "pairs.tsv", ["the cat\tle chat", "a dog\tun chien\tx\ty", "the\t"])
    result = cli(*tsv_args(tiny, "--tsv", pairs, "-o", tmp_path / "p.s2s"))
    assert stats(result.stderr)[:4] == (3, 2, 1, 1)  # the last pair has an empty target


def test_prepare_tsv_bad_line_names_file_and_line_and_writes_nothing(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    lines = anki_file(tiny, tmp_path / "fra.txt").read_text(encoding="utf-8").splitlines()
    lines[29] = "the cat le chat"  # no tab: line 30
    bad = write_lines(tmp_path / "bad.txt", lines)
    cli.fails(*tsv_args(tiny, "--tsv", bad), watch=tmp_path,
              contains=[f"{bad}:30: expected at least 2 tab-separated columns"])  # stdout empty too
    cli.fails(*tsv_args(tiny, "--tsv", bad, "-o", tmp_path / "p.s2s"), watch=tmp_path, contains=[f"{bad}:30"])
    cli.fails(*tsv_args(tiny, "--tsv", "-", "-o", tmp_path / "p.s2s"), input=bad.read_text(), watch=tmp_path,
              contains=["<stdin>:30"])
    lines[29] = ""  # a blank line is not a pair either
    write_lines(bad, lines)
    cli.fails(*tsv_args(tiny, "--tsv", bad), watch=tmp_path, contains=[f"{bad}:30"])


def test_prepare_tsv_or_two_files_not_both(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    pairs = anki_file(tiny, tmp_path / "fra.txt")
    cli.fails(*tsv_args(tiny, "--tsv", pairs, tiny.train_en), code=2, contains=["not both"])
    cli.fails(*tsv_args(tiny, "--tsv", pairs, tiny.train_en, tiny.train_fr), code=2, contains=["not both"])
    cli.fails(*tsv_args(tiny, tiny.train_en), code=2, contains=["missing TGT", "--tsv"])
    cli.fails(*tsv_args(tiny), code=2, contains=["missing SRC and TGT"])
