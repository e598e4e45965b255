"""nbest.py: the Moses n-best format, written and read back."""

from __future__ import annotations

from s2scli.nbest import NbestEntry, format_nbest, parse_nbest


def test_format_nbest_plain_and_with_alignment() -> None:
    assert format_nbest(3, "le chat", -1.23456) == "3 ||| le chat ||| -1.2346\n"
    assert format_nbest(0, "a b", -2.0, "0-0 1-1") == "0 ||| a b ||| s2s= -2.0000 ||| -2.0000 ||| 0-0 1-1\n"


def test_what_is_written_reads_back() -> None:
    lines = [format_nbest(1, "x y", -0.5).rstrip("\n"), format_nbest(2, "z", -1.5, "0-0").rstrip("\n")]
    assert list(parse_nbest(lines, "n")) == [NbestEntry(1, "x y", -0.5), NbestEntry(2, "z", -1.5)]
