"""vectors.py: sentence vectors are the decoder's starting state; vector files; the 2-D PCA."""

from __future__ import annotations

import io
import math
from typing import Callable

import numpy as np
import pytest
import torch

from s2scli.errors import S2SError
from s2scli.model import Seq2Seq
from s2scli.translate import MAX_SOURCE_TOKENS, ids_to_tensor
from s2scli.vectors import (EncodeStats, check_choices, encode_ids, encode_lines, format_vector, pca_2d,
                            read_vectors, state_vectors, vector_size, write_vectors)
from s2scli.vocab import Vocab

LINES = ["a b c", "", "h g f e d c b a", "d e", "zzz", "   ", "a"]


def decoder_start(model: Seq2Seq, vocab: Vocab, line: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The (h, c) [layers, hidden] that ``model.encode`` hands the decoder for one line."""
    src, lengths = ids_to_tensor([vocab.encode(line.split())], torch.device("cpu"))
    with torch.no_grad():
        state = model.encode(src, lengths)
    return state.h[:, 0], state.c[:, 0]


@pytest.mark.parametrize("attention", ["none", "general"])
@pytest.mark.parametrize("reverse", [True, False])
def test_vectors_are_the_state_the_decoder_starts_from(make_tiny_model: Callable[..., Seq2Seq],
                                                       tiny_src_vocab: Vocab, attention: str,
                                                       reverse: bool) -> None:
    model = make_tiny_model(3, init_scale=0.5, attention=attention, reverse=reverse)
    got = {(state, layer): list(encode_lines(LINES, model, tiny_src_vocab, state, layer, batch_size=3))
           for state in ("h", "c", "hc") for layer in ("top", "all")}
    for i, line in enumerate(LINES):
        if not line.split():
            continue
        h, c = decoder_start(model, tiny_src_vocab, line)  # [layers=2, hidden=16]
        expected = {
            ("h", "top"): h[-1], ("c", "top"): c[-1], ("hc", "top"): torch.cat([h[-1], c[-1]]),
            ("h", "all"): torch.cat([h[0], h[1]]), ("c", "all"): torch.cat([c[0], c[1]]),
            ("hc", "all"): torch.cat([h[0], h[1], c[0], c[1]]),
        }
        for key, want in expected.items():
            assert torch.allclose(torch.tensor(got[key][i]), want, atol=1e-6), (key, line)


def test_one_vector_per_line_and_empty_lines_give_zeros(make_tiny_model: Callable[..., Seq2Seq],
                                                        tiny_src_vocab: Vocab) -> None:
    model = make_tiny_model(0, init_scale=0.5)
    vectors = list(encode_lines(LINES, model, tiny_src_vocab, "hc", "all"))
    assert len(vectors) == len(LINES)
    assert all(len(v) == vector_size(model, "hc", "all") == 2 * 2 * 16 for v in vectors)
    for line, v in zip(LINES, vectors):
        assert (not any(v)) == (not line.split()), line
    assert list(encode_lines([], model, tiny_src_vocab)) == []


def test_batching_changes_nothing(make_tiny_model: Callable[..., Seq2Seq], tiny_src_vocab: Vocab) -> None:
    model = make_tiny_model(1, init_scale=0.5)
    one = torch.tensor(list(encode_lines(LINES, model, tiny_src_vocab, batch_size=1)))
    many = torch.tensor(list(encode_lines(LINES, model, tiny_src_vocab, batch_size=64)))
    assert torch.allclose(one, many, atol=1e-6)


def test_state_vectors_order() -> None:
    h = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 3, 4)  # [layers, B, hidden]
    c = -h
    assert torch.equal(state_vectors(h, c, "h", "top"), h[1])
    assert torch.equal(state_vectors(h, c, "hc", "all"), torch.cat([h[0], h[1], c[0], c[1]], dim=1))


def test_encode_ids_of_only_empty_sources(make_tiny_model: Callable[..., Seq2Seq]) -> None:
    model = make_tiny_model(0)
    assert torch.equal(encode_ids(model, [[], []]), torch.zeros(2, 16))


def test_write_vectors_lines_stats_and_truncation(make_tiny_model: Callable[..., Seq2Seq],
                                                  tiny_src_vocab: Vocab) -> None:
    model = make_tiny_model(0, init_scale=0.5)
    out, warnings, stats = io.StringIO(), [], EncodeStats()
    long_line = " ".join(["a"] * (MAX_SOURCE_TOKENS + 5))
    write_vectors(LINES + [long_line], model, tiny_src_vocab, out, batch_size=2, stats=stats,
                  warn=warnings.append)
    rows = out.getvalue().split("\n")
    assert rows[-1] == "" and len(rows) - 1 == len(LINES) + 1
    assert (stats.lines, stats.empty, stats.truncated, stats.dim) == (8, 2, 1, 16)
    assert warnings == [f"line 8: {MAX_SOURCE_TOKENS + 5} tokens, only the first {MAX_SOURCE_TOKENS} are encoded"]
    parsed = read_vectors(rows[:-1], "v")
    direct = list(encode_lines(LINES, model, tiny_src_vocab))
    assert np.allclose(parsed[: len(LINES)], direct, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("state,layer,size", [("x", "top", 1), ("h", "middle", 1), ("h", "top", 0)])
def test_bad_choices(state: str, layer: str, size: int) -> None:
    with pytest.raises(S2SError):
        check_choices(state, layer, size)


def test_format_and_read_round_trip() -> None:
    rows = [[0.1, -2.5e-7, 3.0], [1e6, 0.0, -1.25]]
    text = [format_vector(r) for r in rows]
    assert text[0] == "0.1 -2.5e-07 3"
    assert read_vectors(text, "v") == rows


@pytest.mark.parametrize("lines,message", [
    (["1 2", ""], "v:2: empty line"),
    (["1 2", "1 x"], "v:2: cannot read 'x' as a number"),
    (["1 nan"], "v:1: not a finite number"),
    (["1 2 3", "1 2 3", "1 2"], "v:3: 2 numbers, but line 1 has 3"),
])
def test_read_vectors_errors_name_the_line(lines: list[str], message: str) -> None:
    with pytest.raises(S2SError, match=message):
        read_vectors(lines, "v")


def test_pca_recovers_a_plane_and_keeps_distances() -> None:
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(10, 2)) * [3.0, 1.0]
    basis = np.linalg.qr(rng.normal(size=(6, 2)))[0].T  # two orthonormal rows in 6-D
    points = plane @ basis + 5.0  # rank 2 after centring
    proj = pca_2d(points.tolist())
    coords = np.array(proj.coords)
    assert np.allclose(coords.mean(axis=0), 0, atol=1e-9)
    dist = lambda a: np.linalg.norm(a[:, None] - a[None], axis=2)  # noqa: E731
    assert np.allclose(dist(coords), dist(points), atol=1e-9)
    assert math.isclose(sum(proj.explained), 1.0) and proj.explained[0] > proj.explained[1]
    assert np.var(coords[:, 0]) >= np.var(coords[:, 1])


def test_pca_signs_are_fixed_and_degenerate_cases() -> None:
    points = [[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]]  # along x only
    proj = pca_2d(points)
    assert np.allclose(proj.coords, [(-2.0, 0.0), (0.0, 0.0), (2.0, 0.0)])
    assert proj.explained == pytest.approx((1.0, 0.0))
    flipped = pca_2d([[-p for p in row] for row in points])
    assert np.allclose(flipped.coords, [(2.0, 0.0), (0.0, 0.0), (-2.0, 0.0)])  # the largest loading stays positive
    assert np.allclose(pca_2d([[1.0], [3.0]]).coords, [(-1.0, 0.0), (1.0, 0.0)])
    assert pca_2d([[1.0, 2.0], [1.0, 2.0]]).explained == (0.0, 0.0)
    with pytest.raises(S2SError, match="at least 2 vectors"):
        pca_2d([[1.0, 2.0]])
