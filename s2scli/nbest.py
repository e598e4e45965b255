"""The Moses n-best list: ``i ||| hypothesis ||| score``, one line a hypothesis, ``i`` the input line from 0.

``translate --nbest`` writes it (``format_nbest``; with ``--align`` in Moses's full form ``i ||| hypothesis
||| s2s= score ||| score ||| alignment``), ``score -m --nbest`` reads it (``parse_nbest``, which also takes
Moses's ``i ||| hypothesis ||| features ||| score [||| ...]``) and writes it back re-ranked. Scores are
written with four decimals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Iterator

from .errors import S2SError


@dataclass
class NbestEntry:
    index: int
    text: str
    score: float


def format_nbest(index: int, text: str, score: float, alignment: str | None = None) -> str:
    """One n-best line, with its line break; with ``alignment`` (``i-j ...``) in Moses's full form."""
    if alignment is None:
        return f"{index} ||| {text} ||| {score:.4f}\n"
    return f"{index} ||| {text} ||| s2s= {score:.4f} ||| {score:.4f} ||| {alignment}\n"


def parse_nbest(lines: Iterable[str], name: str) -> Iterator[NbestEntry]:
    """Read n-best lines: ``i ||| hypothesis ||| score`` (as ``translate --nbest`` writes) or Moses's
    ``i ||| hypothesis ||| features ||| score [||| alignment ...]``."""
    for lineno, line in enumerate(lines, start=1):
        fields = line.split(" ||| ")
        if len(fields) < 3:
            raise S2SError(f"{name}:{lineno}: not an n-best line (expected 'i ||| hypothesis ||| score')")
        try:
            index, score = int(fields[0]), float(fields[2] if len(fields) == 3 else fields[3])
        except ValueError:
            raise S2SError(f"{name}:{lineno}: n-best line needs an integer index and a numeric score") from None
        if index < 0:
            raise S2SError(f"{name}:{lineno}: negative sentence index {index}")
        if not math.isfinite(score):
            raise S2SError(f"{name}:{lineno}: score {score} is not a finite number")
        yield NbestEntry(index, fields[1], score)
