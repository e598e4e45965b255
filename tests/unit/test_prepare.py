"""prepare.py: raw parallel text to a prepared file, with counts of kept and dropped pairs."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2scli.config import PrepareConfig
from s2scli.data import PreparedData
from s2scli.errors import S2SError
from s2scli.prepare import PrepareStats, parallel_pairs, prepare, prepare_pairs
from s2scli.tsv import read_pairs
from s2scli.vocab import SPECIALS, UNK, Vocab


def run_prepare(tmp_path: Path, src: list[str], tgt: list[str], src_vocab: Vocab, tgt_vocab: Vocab,
                max_len: int = 100, names: tuple[str, str] = ("train.en", "train.fr")) -> tuple[PrepareStats, Path]:
    path = tmp_path / "out.s2s"
    with open(path, "wb") as f:
        stats = prepare(src, tgt, src_vocab, tgt_vocab, f, PrepareConfig(max_len=max_len), names)
    return stats, path


def read_back(path: Path) -> PreparedData:
    with open(path, "rb") as f:
        return PreparedData(f, str(path))


def test_prepare_maps_tokens_to_ids(tmp_path: Path, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    stats, path = run_prepare(tmp_path, ["a b c", "h"], ["u v", "z z z"], tiny_src_vocab, tiny_tgt_vocab)
    data = read_back(path)
    assert len(data) == 2
    assert data.pair(0)[0].tolist() == tiny_src_vocab.encode(["a", "b", "c"]) == [4, 5, 6]
    assert data.pair(0)[1].tolist() == [4, 5]
    assert data.pair(1)[0].tolist() == [11]
    assert data.pair(1)[1].tolist() == [9, 9, 9]
    assert (stats.pairs, stats.kept, stats.empty, stats.too_long) == (2, 2, 0, 0)
    assert (stats.src_tokens, stats.tgt_tokens) == (4, 5)
    assert data.src_vocab == tiny_src_vocab and data.tgt_vocab == tiny_tgt_vocab
    assert data.header["max_len"] == 100


def test_prepare_counts_unknown_words(tmp_path: Path, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    stats, path = run_prepare(tmp_path, ["a QQ <s> b"], ["u </s> v"], tiny_src_vocab, tiny_tgt_vocab)
    data = read_back(path)
    # Literal special-token strings in the text are unknown words, never control ids.
    assert data.pair(0)[0].tolist() == [4, UNK, UNK, 5]
    assert data.pair(0)[1].tolist() == [4, UNK, 5]
    assert (stats.src_unk, stats.tgt_unk) == (2, 1)
    assert stats.unk_rate("src") == pytest.approx(2 / 4)
    assert stats.unk_rate("tgt") == pytest.approx(1 / 3)


def test_prepare_drops_empty_and_too_long_pairs(tmp_path: Path, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    src = ["a b", "", "a", "   ", "a b c d", "c", "d"]
    tgt = ["u", "v", "", "w", "u", "v w x y z", "x"]
    stats, path = run_prepare(tmp_path, src, tgt, tiny_src_vocab, tiny_tgt_vocab, max_len=3)
    assert stats.pairs == 7
    assert stats.empty == 3  # line 2 (src), 3 (tgt), 4 (whitespace-only src)
    assert stats.too_long == 2  # line 5 (src 4 tokens), 6 (tgt 5 tokens)
    assert stats.kept == 2 and stats.dropped == 5
    data = read_back(path)
    assert [data.pair(i)[0].tolist() for i in range(len(data))] == [[4, 5], [7]]
    assert (stats.src_tokens, stats.tgt_tokens) == (3, 2)


def test_prepare_max_len_boundary_and_zero_means_no_limit(tmp_path: Path, tiny_src_vocab: Vocab,
                                                          tiny_tgt_vocab: Vocab) -> None:
    src, tgt = ["a b c"], ["u v w"]
    assert run_prepare(tmp_path, src, tgt, tiny_src_vocab, tiny_tgt_vocab, max_len=3)[0].kept == 1
    assert run_prepare(tmp_path, src, tgt, tiny_src_vocab, tiny_tgt_vocab, max_len=2)[0].kept == 0
    long_src = [" ".join(["a"] * 500)]
    stats, path = run_prepare(tmp_path, long_src, tgt, tiny_src_vocab, tiny_tgt_vocab, max_len=0)
    assert stats.kept == 1
    assert read_back(path).src_lens.tolist() == [500]


def test_prepare_negative_max_len_refused(tmp_path: Path, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    with pytest.raises(S2SError, match="--max-len"):
        run_prepare(tmp_path, ["a"], ["u"], tiny_src_vocab, tiny_tgt_vocab, max_len=-1)


@pytest.mark.parametrize("n_src, n_tgt", [(5, 3), (3, 5), (1, 0), (0, 2)])
def test_prepare_unequal_line_counts_refused(tmp_path: Path, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab,
                                             n_src: int, n_tgt: int) -> None:
    with pytest.raises(S2SError) as exc:
        run_prepare(tmp_path, ["a"] * n_src, ["u"] * n_tgt, tiny_src_vocab, tiny_tgt_vocab)
    assert str(exc.value).startswith(f"train.en has {n_src} lines but train.fr has {n_tgt}")
    # The half-written output has no end marker, so it can never be mistaken for a complete file.
    with pytest.raises(S2SError, match="truncated"):
        read_back(tmp_path / "out.s2s")


def test_prepare_accepts_generators_and_empty_input(tmp_path: Path, tiny_src_vocab: Vocab,
                                                    tiny_tgt_vocab: Vocab) -> None:
    stats, path = run_prepare(tmp_path, iter([]), iter([]), tiny_src_vocab, tiny_tgt_vocab)  # type: ignore[arg-type]
    assert stats == PrepareStats()
    assert len(read_back(path)) == 0
    assert stats.unk_rate("src") == 0.0


def test_prepare_uses_the_vocabularys_tokenizer(tmp_path: Path) -> None:
    src_vocab = Vocab(list(SPECIALS) + ["Hello", ",", "world", "!"], "moses", "en")
    tgt_vocab = Vocab(list(SPECIALS) + ["Bonjour", "monde"], "none", "fr")
    stats, path = run_prepare(tmp_path, ["Hello, world!"], ["Bonjour, monde"], src_vocab, tgt_vocab)
    data = read_back(path)
    assert data.pair(0)[0].tolist() == [4, 5, 6, 7]  # Moses splits the punctuation off
    assert data.pair(0)[1].tolist() == [UNK, 5]  # whitespace split keeps "Bonjour," whole
    assert stats.tgt_unk == 1


def test_prepare_with_character_vocabularies(tmp_path: Path) -> None:
    src_vocab = Vocab(list(SPECIALS) + ["G", "o", ".", "\u2581", "<U+0009>"], "char", "en")
    tgt_vocab = Vocab(list(SPECIALS) + ["V", "a", "\u2581", "!"], "char", "fr")
    stats, path = run_prepare(tmp_path, ["Go. \tGo"], ["Va !"], src_vocab, tgt_vocab)
    data = read_back(path)
    assert data.pair(0)[0].tolist() == [4, 5, 6, 7, 8, 4, 5]
    assert data.pair(0)[1].tolist() == [4, 5, 6, 7]
    assert stats.src_unk == stats.tgt_unk == 0


def test_prepare_pairs_gives_the_bytes_of_two_parallel_files(tmp_path: Path, tiny_src_vocab: Vocab,
                                                             tiny_tgt_vocab: Vocab) -> None:
    src, tgt = ["a b c", "", "d e f g h", "a"], ["u v", "w", "x y z", ""]
    _, from_files = run_prepare(tmp_path, src, tgt, tiny_src_vocab, tiny_tgt_vocab, max_len=4)
    expected = from_files.read_bytes()
    path = tmp_path / "pairs.s2s"
    with open(path, "wb") as f:
        stats = prepare_pairs(zip(src, tgt), tiny_src_vocab, tiny_tgt_vocab, f, PrepareConfig(max_len=4))
    assert path.read_bytes() == expected
    assert (stats.pairs, stats.kept, stats.empty, stats.too_long) == (4, 1, 2, 1)


def test_prepare_pairs_from_a_tab_separated_file(tmp_path: Path, tiny_src_vocab: Vocab,
                                                 tiny_tgt_vocab: Vocab) -> None:
    lines = ["a b\tu v\tCC-BY 2.0 (France) Attribution: tatoeba.org", "c\tw", "d\tx\textra\tcolumns"]
    path = tmp_path / "pairs.s2s"
    with open(path, "wb") as f:
        stats = prepare_pairs(read_pairs(lines, "fra.txt"), tiny_src_vocab, tiny_tgt_vocab, f)
    assert stats.kept == 3 and stats.src_unk == stats.tgt_unk == 0
    data = read_back(path)
    assert [data.pair(i)[1].tolist() for i in range(3)] == [[4, 5], [6], [7]]


def test_prepare_pairs_bad_line_leaves_a_truncated_file(tmp_path: Path, tiny_src_vocab: Vocab,
                                                        tiny_tgt_vocab: Vocab) -> None:
    path = tmp_path / "pairs.s2s"
    with open(path, "wb") as f, pytest.raises(S2SError, match=r"^fra\.txt:2:"):
        prepare_pairs(read_pairs(["a\tu", "b"], "fra.txt"), tiny_src_vocab, tiny_tgt_vocab, f)
    with pytest.raises(S2SError, match="truncated"):
        read_back(path)


def test_parallel_pairs_insists_on_equal_lengths() -> None:
    assert list(parallel_pairs(["a", "b"], ["u", "v"], ("s", "t"))) == [("a", "u"), ("b", "v")]
    with pytest.raises(S2SError, match="^s has 3 lines but t has 2"):
        list(parallel_pairs(["a", "b", "c"], ["u", "v"], ("s", "t")))
