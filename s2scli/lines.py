"""Reading and writing lines of UTF-8 text, the way ``wc -l`` counts them.

A UTF-8 byte-order mark at the very start of a stream is dropped. A line ends at ``\\n`` only (a trailing
``\\r`` from CRLF files is dropped; a lone ``\\r`` inside a line is kept as text), so line N of the input
is always line N of the output. Invalid UTF-8 and NUL bytes are reported with the file name and line
number instead of being silently changed. Inputs that go line by line together must have as many lines
(``check_same_count``).
"""

from __future__ import annotations

import gzip
import zlib
from typing import BinaryIO, Iterable, Iterator, TextIO

from .errors import S2SError

ERROR_MODES = ("strict", "replace")

# A line longer than this many bytes is refused rather than read whole into memory.
MAX_LINE_BYTES = 1 << 24


def read_lines(stream: BinaryIO, name: str, errors: str = "strict") -> Iterator[str]:
    """Yield each line of ``stream`` decoded, without its line ending.

    ``errors="replace"`` turns invalid UTF-8 into U+FFFD instead of stopping. A final line without a
    newline still counts as a line; an empty stream has no lines.
    """
    if errors not in ERROR_MODES:
        raise S2SError(f"unknown --errors mode {errors!r} (choose strict or replace)")
    lineno = 0
    while True:
        raw = read_line(stream, name, lineno + 1)
        if not raw:
            return
        lineno += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            raise S2SError(f"{name}:{lineno}: line longer than {MAX_LINE_BYTES} bytes, refused")
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]  # a byte-order mark, as Windows editors write: not part of the text
        if raw.endswith(b"\n"):
            raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
        if b"\0" in raw:
            column = raw.index(b"\0") + 1
            raise S2SError(f"{name}:{lineno}: NUL byte at byte {column}; is this a text file?")
        try:
            yield raw.decode("utf-8", errors=errors)
        except UnicodeDecodeError as exc:
            raise S2SError(
                f"{name}:{lineno}: invalid UTF-8 at byte {exc.start + 1} of the line "
                "(use --errors replace to substitute U+FFFD)"
            ) from None


def read_line(stream: BinaryIO, name: str, lineno: int) -> bytes:
    """The next raw line (at most MAX_LINE_BYTES + 1 bytes); a damaged ``.gz`` or a failing read is an
    S2SError naming the file and line."""
    try:
        return stream.readline(MAX_LINE_BYTES + 1)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise S2SError(f"{name}:{lineno}: not gzip data, or damaged ({exc})") from None
    except OSError as exc:
        raise S2SError(f"{name}:{lineno}: cannot read ({exc.strerror or exc})") from None


def count_lines(stream: BinaryIO) -> int:
    """Lines in a seekable binary stream (a last line without ``\\n`` counts), leaving it rewound."""
    start = stream.tell()
    count = 0
    last = b"\n"
    while True:
        block = stream.read(1 << 20)
        if not block:
            break
        count += block.count(b"\n")
        last = block[-1:]
    stream.seek(start)
    return count + (0 if last == b"\n" else 1)


def write_lines(lines: Iterable[str], out: TextIO) -> int:
    """Write each string as one line and flush; returns the number of lines written."""
    n = 0
    for line in lines:
        out.write(line + "\n")
        n += 1
    out.flush()
    return n


PARALLEL_HINT = "parallel files must have one line per sentence pair"


def check_same_count(name: str, count: int, other: str, other_count: int, hint: str = "",
                     other_verb: str = "has") -> None:
    """Refuse two inputs that must go line by line together but do not: ``NAME has N lines but OTHER
    has M`` (``other_verb`` for a plural OTHER: "have"), then ``; hint`` when given."""
    if count != other_count:
        raise S2SError(f"{name} has {count} lines but {other} {other_verb} {other_count}"
                       + (f"; {hint}" if hint else ""))
