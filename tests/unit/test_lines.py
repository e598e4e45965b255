"""lines.py: lines end at \\n only, CRLF handled, errors name file:line, count_lines agrees with read_lines."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s2scli import lines as lines_mod
from s2scli.errors import S2SError
from s2scli.lines import count_lines, read_lines, write_lines


def read(data: bytes, errors: str = "strict", name: str = "in.txt") -> list[str]:
    return list(read_lines(io.BytesIO(data), name, errors))


def test_plain_lines() -> None:
    assert read(b"one\ntwo\nthree\n") == ["one", "two", "three"]


def test_empty_stream_has_no_lines() -> None:
    assert read(b"") == []
    assert count_lines(io.BytesIO(b"")) == 0


def test_single_newline_is_one_empty_line() -> None:
    assert read(b"\n") == [""]
    assert read(b"\n\n") == ["", ""]
    assert count_lines(io.BytesIO(b"\n\n")) == 2


def test_crlf_is_stripped() -> None:
    assert read(b"a b\r\nc\r\n") == ["a b", "c"]


def test_only_one_cr_is_stripped_before_lf() -> None:
    assert read(b"x\r\r\n") == ["x\r"]


def test_lone_cr_is_kept_as_text() -> None:
    assert read(b"a\rb\nc\n") == ["a\rb", "c"]
    assert count_lines(io.BytesIO(b"a\rb\nc\n")) == 2


def test_final_line_without_newline_is_counted() -> None:
    assert read(b"a\nb") == ["a", "b"]
    assert count_lines(io.BytesIO(b"a\nb")) == 2
    assert read(b"last") == ["last"]
    assert count_lines(io.BytesIO(b"last")) == 1


def test_utf8_is_decoded() -> None:
    assert read("déjà vu\n日本\n".encode()) == ["déjà vu", "日本"]


def test_invalid_utf8_names_file_line_and_byte() -> None:
    with pytest.raises(S2SError) as exc:
        read(b"good\nfine\nbad \xff here\n", name="corpus.en")
    msg = str(exc.value)
    assert "corpus.en:3:" in msg
    assert "byte 5" in msg
    assert "--errors replace" in msg


def test_invalid_utf8_error_only_after_good_lines() -> None:
    it = read_lines(io.BytesIO(b"ok\n\xc3\n"), "f", "strict")
    assert next(it) == "ok"
    with pytest.raises(S2SError, match=r"^f:2:"):
        next(it)


def test_errors_replace_substitutes_fffd() -> None:
    assert read(b"bad\xffx\nok\n", errors="replace") == ["bad\ufffdx", "ok"]


def test_unknown_errors_mode_refused() -> None:
    with pytest.raises(S2SError, match="ignore"):
        read(b"a\n", errors="ignore")


def test_nul_byte_refused_with_file_line_and_column() -> None:
    with pytest.raises(S2SError) as exc:
        read(b"a\nb\nxy\0z\n", name="bin.dat")
    msg = str(exc.value)
    assert "bin.dat:3:" in msg
    assert "NUL" in msg
    assert "byte 3" in msg


def test_nul_refused_even_with_errors_replace() -> None:
    with pytest.raises(S2SError, match="NUL"):
        read(b"\0\n", errors="replace")


def test_overlong_line_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lines_mod, "MAX_LINE_BYTES", 10)
    # Exactly the limit is fine, with or without the newline.
    assert read(b"0123456789\n0123456789") == ["0123456789", "0123456789"]
    with pytest.raises(S2SError, match=r"^long\.txt:2: line longer than 10 bytes"):
        read(b"short\n0123456789A\n", name="long.txt")
    with pytest.raises(S2SError, match=r"long\.txt:1:"):
        read(b"0123456789AB", name="long.txt")


def test_count_lines_rewinds_to_where_it_started() -> None:
    stream = io.BytesIO(b"header\na\nb\nc")
    stream.readline()
    start = stream.tell()
    assert count_lines(stream) == 3
    assert stream.tell() == start
    assert list(read_lines(stream, "x")) == ["a", "b", "c"]


def test_count_lines_across_block_boundary() -> None:
    block = 1 << 20
    # A newline exactly at the end of the first 1 MiB block, then a last line without newline.
    data = b"x" * (block - 1) + b"\n" + b"tail"
    assert count_lines(io.BytesIO(data)) == 2
    data2 = b"x" * (block - 1) + b"\n"
    assert count_lines(io.BytesIO(data2)) == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"\n", b"\r", b"\r\n", b"\xc3\xa9", b"\xff", b" "]), max_size=40))
def test_count_lines_agrees_with_read_lines(parts: list[bytes]) -> None:
    data = b"".join(parts)
    assert count_lines(io.BytesIO(data)) == len(read(data, errors="replace"))


def test_write_lines_returns_count_and_terminates_each_line() -> None:
    out = io.StringIO()
    assert write_lines(["a", "", "b c"], out) == 3
    assert out.getvalue() == "a\n\nb c\n"
    assert write_lines([], out) == 0


def test_write_then_read_round_trip() -> None:
    original = ["first", "", "späť", "  spaced  ", "tab\tinside"]
    out = io.StringIO()
    write_lines(original, out)
    assert read(out.getvalue().encode()) == original


def test_damaged_gzip_is_one_error_with_the_file_and_line() -> None:
    import gzip

    data = gzip.compress(("a line of text\n" * 2000).encode())
    cases = [(b"plain text, not gzip\n", r"x\.gz:1: not gzip data, or damaged \(Not a gzipped file"),
             (data[: len(data) // 2], r"x\.gz:\d+: not gzip data, or damaged \(Compressed file ended"),
             (data[:20] + bytes(b ^ 0xFF for b in data[20:40]) + data[40:], r"x\.gz:\d+: not gzip data, or damaged")]
    for raw, message in cases:
        with pytest.raises(S2SError, match=message):
            list(read_lines(gzip.GzipFile(fileobj=io.BytesIO(raw), mode="rb"), "x.gz"))  # type: ignore[arg-type]


def test_a_failing_read_is_one_error_with_the_file() -> None:
    class Failing(io.BytesIO):
        def readline(self, size: int | None = -1) -> bytes:
            raise OSError(5, "Input/output error")

    with pytest.raises(S2SError, match=r"^disk\.txt:1: cannot read \(Input/output error\)$"):
        list(read_lines(Failing(), "disk.txt"))


def test_check_same_count_names_both_inputs() -> None:
    from s2scli.lines import PARALLEL_HINT, check_same_count

    check_same_count("a", 3, "b", 3)
    with pytest.raises(S2SError, match=r"^a has 3 lines but b has 4$"):
        check_same_count("a", 3, "b", 4)
    with pytest.raises(S2SError, match=r"^a has 3 lines but the references have 4; parallel files must"):
        check_same_count("a", 3, "the references", 4, PARALLEL_HINT, other_verb="have")
