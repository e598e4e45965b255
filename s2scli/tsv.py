"""Tab-separated sentence-pair files, as the classic Keras character-level seq2seq tutorial reads them
(manythings.org/anki, e.g. ``fra.txt``): ``English<TAB>French<TAB>attribution``, one pair a line.

Column 1 is the source, column 2 its translation; a third column and any after it are ignored. A line
with fewer than two columns (a blank line included) is an error that names ``FILE:LINE``.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from .errors import S2SError

COLUMNS = (1, 2)


def read_pairs(lines: Iterable[str], name: str) -> Iterator[tuple[str, str]]:
    """(column 1, column 2) of each line of ``lines``, the lines of the file ``name``."""
    for lineno, line in enumerate(lines, start=1):
        fields = line.split("\t", 2)
        if len(fields) < 2:
            raise S2SError(f"{name}:{lineno}: expected at least 2 tab-separated columns (source<TAB>target), "
                           f"got {line[:60]!r}")
        yield fields[0], fields[1]


def check_column(column: int) -> None:
    if column not in COLUMNS:
        raise S2SError(f"--column must be 1 (source) or 2 (target), got {column}")


def read_column(lines: Iterable[str], name: str, column: int) -> Iterator[str]:
    """Column ``column`` (1 or 2) of each line; the lines must be pairs, as ``read_pairs`` wants them."""
    check_column(column)
    return (pair[column - 1] for pair in read_pairs(lines, name))


def count_pairs(lines: Iterable[str], name: str) -> int:
    """The number of pairs, after checking every line (so that a bad line is found before any output)."""
    return sum(1 for _ in read_pairs(lines, name))
