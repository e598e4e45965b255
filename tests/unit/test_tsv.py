"""tsv.py: tab-separated sentence pairs (manythings.org/anki, the Keras seq2seq tutorial's format)."""

from __future__ import annotations

import pytest

from s2scli.errors import S2SError
from s2scli.tsv import check_column, count_pairs, read_column, read_pairs

ANKI = [
    "Go.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM) & #1158250 (Wittydev)",
    "Hi.\tSalut !\tCC-BY 2.0 (France) Attribution: tatoeba.org #538123 (CM) & #509819 (Aiji)",
    "Who?\tQui ?",  # no attribution: two columns are enough
    "Run!\tCours\u202f!\textra\tand more",  # a 4th column is ignored too
    " a b \t\t",  # spaces kept, an empty target kept (prepare drops it as an empty side)
]


def test_read_pairs_takes_the_first_two_columns() -> None:
    assert list(read_pairs(ANKI, "fra.txt")) == [
        ("Go.", "Va !"), ("Hi.", "Salut !"), ("Who?", "Qui ?"), ("Run!", "Cours\u202f!"), (" a b ", "")]


@pytest.mark.parametrize("bad", ["no tab here", "", "   "])
def test_a_line_with_fewer_than_two_columns_is_refused_with_its_number(bad: str) -> None:
    lines = ANKI[:2] + [bad] + ANKI[2:]
    with pytest.raises(S2SError, match=r"^fra\.txt:3: expected at least 2 tab-separated columns"):
        list(read_pairs(lines, "fra.txt"))
    with pytest.raises(S2SError, match=r"^fra\.txt:3:"):
        count_pairs(lines, "fra.txt")


def test_pairs_are_read_lazily() -> None:
    pairs = read_pairs(iter(["a\tb", "broken"]), "x.tsv")
    assert next(pairs) == ("a", "b")  # the first pair comes before the bad line is reached
    with pytest.raises(S2SError, match=r"^x\.tsv:2:"):
        next(pairs)


def test_read_column() -> None:
    assert list(read_column(ANKI, "fra.txt", 1)) == ["Go.", "Hi.", "Who?", "Run!", " a b "]
    assert list(read_column(ANKI, "fra.txt", 2)) == ["Va !", "Salut !", "Qui ?", "Cours\u202f!", ""]
    with pytest.raises(S2SError, match=r"^fra\.txt:2:"):
        list(read_column(["a\tb", "c"], "fra.txt", 1))


def test_count_pairs() -> None:
    assert count_pairs(ANKI, "fra.txt") == 5
    assert count_pairs([], "fra.txt") == 0


@pytest.mark.parametrize("column", [0, 3, -1])
def test_only_columns_1_and_2(column: int) -> None:
    with pytest.raises(S2SError, match="--column must be 1 .* or 2"):
        check_column(column)
    with pytest.raises(S2SError, match="--column"):
        read_column(ANKI, "fra.txt", column)
