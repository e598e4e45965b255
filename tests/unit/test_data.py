"""data.py: the prepared file (write/read round trip, refusals), batches and the length-bucketed order."""

from __future__ import annotations

import json
import os
import random
import struct
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from s2scli import data as data_mod
from s2scli.data import FOOTER, MAGIC, PreparedData, PreparedWriter, epoch_seed, make_batches
from s2scli.errors import S2SError
from s2scli.vocab import BOS, EOS, PAD, Vocab


def random_pairs(n: int, src_vocab: Vocab, tgt_vocab: Vocab, seed: int = 0,
                 max_len: int = 9) -> list[tuple[list[int], list[int]]]:
    rng = random.Random(seed)
    return [([rng.randrange(1, len(src_vocab)) for _ in range(rng.randint(1, max_len))],
             [rng.randrange(1, len(tgt_vocab)) for _ in range(rng.randint(1, max_len))]) for _ in range(n)]


def open_data(path: Path) -> PreparedData:
    with open(path, "rb") as f:
        return PreparedData(f, str(path))


def test_round_trip_ids_lengths_and_header(tmp_path: Path, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab,
                                           write_prepared: Callable[..., Path]) -> None:
    pairs = random_pairs(57, tiny_src_vocab, tiny_tgt_vocab, seed=3)
    path = write_prepared(tmp_path / "rt.s2s", pairs, tiny_src_vocab, tiny_tgt_vocab, max_len=42)
    data = open_data(path)
    assert len(data) == 57
    for i, (s, t) in enumerate(pairs):
        got_s, got_t = data.pair(i)
        assert got_s.tolist() == s
        assert got_t.tolist() == t
    assert data.src_lens.tolist() == [len(s) for s, _ in pairs]
    assert data.tgt_lens.tolist() == [len(t) for _, t in pairs]
    assert data.n_target_tokens() == sum(len(t) for _, t in pairs) + len(pairs)
    assert data.src_vocab == tiny_src_vocab and data.tgt_vocab == tiny_tgt_vocab
    assert data.header["max_len"] == 42
    assert data.header["format"] == "s2s-prepared" and data.header["version"] == 1
    assert data.name == str(path)


def test_layout_matches_documented_format(tmp_path: Path, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab,
                                          write_prepared: Callable[..., Path]) -> None:
    path = write_prepared(tmp_path / "l.s2s", [([4, 5], [6]), ([7], [8, 9])], tiny_src_vocab, tiny_tgt_vocab)
    raw = path.read_bytes()
    assert raw[:8] == MAGIC
    (hlen,) = struct.unpack("<Q", raw[8:16])
    assert hlen % 8 == 0
    json.loads(raw[16 : 16 + hlen])
    magic, n, data_offset, index_offset = FOOTER.unpack(raw[-FOOTER.size :])
    assert (magic, n, data_offset) == (b"S2SEND01", 2, 16 + hlen)
    assert np.frombuffer(raw[data_offset:index_offset], dtype="<i4").tolist() == [4, 5, 6, 7, 8, 9]
    assert np.frombuffer(raw[index_offset : index_offset + 16], dtype="<i4").tolist() == [2, 1, 1, 2]
    assert index_offset + 16 + FOOTER.size == len(raw)


def test_unicode_in_header_round_trips(tmp_path: Path, write_prepared: Callable[..., Path]) -> None:
    src = Vocab(["<pad>", "<unk>", "<s>", "</s>", "été", "日本"], "moses", "fr")
    tgt = Vocab(["<pad>", "<unk>", "<s>", "</s>", "Ω"], "moses", "el")
    path = write_prepared(tmp_path / "u.s2s", [([4, 5], [4])], src, tgt)
    data = open_data(path)
    assert data.src_vocab == src and data.tgt_vocab == tgt


def test_empty_file_round_trips(tmp_path: Path, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab,
                                write_prepared: Callable[..., Path]) -> None:
    data = open_data(write_prepared(tmp_path / "e.s2s", [], tiny_src_vocab, tiny_tgt_vocab))
    assert len(data) == 0
    assert data.n_target_tokens() == 0


@pytest.mark.parametrize("cut", [1, 7, 8, 31, 32, 33, 40, 100])
def test_truncated_file_refused(tmp_path: Path, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab,
                                write_prepared: Callable[..., Path], cut: int) -> None:
    path = write_prepared(tmp_path / "t.s2s", random_pairs(20, tiny_src_vocab, tiny_tgt_vocab),
                          tiny_src_vocab, tiny_tgt_vocab)
    raw = path.read_bytes()
    path.write_bytes(raw[:-cut])
    with pytest.raises(S2SError, match="truncated") as exc:
        open_data(path)
    assert str(path) in str(exc.value)


def test_file_cut_inside_header_refused(tmp_path: Path, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab,
                                        write_prepared: Callable[..., Path]) -> None:
    path = write_prepared(tmp_path / "h.s2s", [([4], [4])], tiny_src_vocab, tiny_tgt_vocab)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(S2SError, match=r"h\.s2s: truncated"):
        open_data(path)


def test_interrupted_writer_without_close_refused(tmp_path: Path, tiny_src_vocab: Vocab,
                                                  tiny_tgt_vocab: Vocab) -> None:
    path = tmp_path / "i.s2s"
    with open(path, "wb") as f:
        writer = PreparedWriter(f, {"src_vocab": tiny_src_vocab.to_dict(), "tgt_vocab": tiny_tgt_vocab.to_dict()})
        for s, t in random_pairs(30, tiny_src_vocab, tiny_tgt_vocab):
            writer.add(s, t)
    with pytest.raises(S2SError, match="truncated"):
        open_data(path)


@pytest.mark.parametrize("content", [b"", b"hello", b"hello world, this is a plain text file\n" * 3,
                                     bytes(range(256))])
def test_non_s2s_file_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "other.txt"
    path.write_bytes(content)
    with pytest.raises(S2SError, match=r"other\.txt: not an s2s prepared file"):
        open_data(path)


def test_damaged_header_refused(tmp_path: Path, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab,
                                write_prepared: Callable[..., Path]) -> None:
    path = write_prepared(tmp_path / "d.s2s", [([4], [4])], tiny_src_vocab, tiny_tgt_vocab)
    raw = bytearray(path.read_bytes())
    raw[16] = ord("X")  # the JSON header's opening brace
    path.write_bytes(bytes(raw))
    with pytest.raises(S2SError, match=r"d\.s2s: damaged prepared-file header"):
        open_data(path)


def test_newer_version_refused(tmp_path: Path, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab,
                               write_prepared: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_mod, "VERSION", 2)
    path = write_prepared(tmp_path / "v2.s2s", [([4], [4])], tiny_src_vocab, tiny_tgt_vocab)
    monkeypatch.setattr(data_mod, "VERSION", 1)
    with pytest.raises(S2SError, match=r"v2\.s2s: prepared-file version 2 is newer"):
        open_data(path)


def test_index_that_disagrees_with_data_refused(tmp_path: Path, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab,
                                                write_prepared: Callable[..., Path]) -> None:
    path = write_prepared(tmp_path / "x.s2s", [([4, 5], [6]), ([7], [8, 9])], tiny_src_vocab, tiny_tgt_vocab)
    raw = bytearray(path.read_bytes())
    _, n, _, index_offset = FOOTER.unpack(bytes(raw[-FOOTER.size :]))
    raw[index_offset : index_offset + 4] = struct.pack("<i", 3)  # first source length 2 -> 3
    path.write_bytes(bytes(raw))
    with pytest.raises(S2SError, match=r"x\.s2s: damaged prepared file"):
        open_data(path)


def test_empty_side_in_index_refused(tmp_path: Path, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab,
                                     write_prepared: Callable[..., Path]) -> None:
    path = write_prepared(tmp_path / "z.s2s", [([4, 5], [6]), ([], [8, 9, 7])], tiny_src_vocab, tiny_tgt_vocab)
    with pytest.raises(S2SError, match="damaged"):
        open_data(path)


def test_pipe_refused(tmp_path: Path) -> None:
    r, w = os.pipe()
    os.write(w, b"S2SDATA1")
    os.close(w)
    with open(r, "rb", buffering=0) as f, pytest.raises(S2SError, match="regular file"):
        PreparedData(f, "<stdin>")


def test_batch_tensors(tmp_path: Path, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab,
                       write_prepared: Callable[..., Path]) -> None:
    pairs = [([4, 5, 6], [4, 5]), ([7], [6, 7, 8, 9]), ([8, 9], [4])]
    data = open_data(write_prepared(tmp_path / "b.s2s", pairs, tiny_src_vocab, tiny_tgt_vocab))
    batch = data.batch([2, 0, 1])
    assert batch.src.dtype == torch.long and batch.tgt_in.dtype == torch.long
    assert batch.src.tolist() == [[8, 9, PAD], [4, 5, 6], [7, PAD, PAD]]
    assert batch.src_lengths.tolist() == [2, 3, 1]
    assert batch.tgt_in.tolist() == [
        [BOS, 4, PAD, PAD, PAD],
        [BOS, 4, 5, PAD, PAD],
        [BOS, 6, 7, 8, 9],
    ]
    assert batch.tgt_out.tolist() == [
        [4, EOS, PAD, PAD, PAD],
        [4, 5, EOS, PAD, PAD],
        [6, 7, 8, 9, EOS],
    ]
    assert batch.n_tokens == (1 + 1) + (2 + 1) + (4 + 1)
    assert (batch.tgt_out != PAD).sum().item() == batch.n_tokens
    moved = batch.to(torch.device("cpu"))
    assert torch.equal(moved.src, batch.src) and torch.equal(moved.tgt_out, batch.tgt_out)
    assert moved.n_tokens == batch.n_tokens


def test_batch_general_invariants(tmp_path: Path, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab,
                                  write_prepared: Callable[..., Path]) -> None:
    pairs = random_pairs(40, tiny_src_vocab, tiny_tgt_vocab, seed=5)
    data = open_data(write_prepared(tmp_path / "g.s2s", pairs, tiny_src_vocab, tiny_tgt_vocab))
    idx = list(range(0, 40, 3))
    batch = data.batch(idx)
    assert (batch.tgt_in[:, 0] == BOS).all()
    for row, i in enumerate(idx):
        s, t = pairs[i]
        assert batch.src[row, : len(s)].tolist() == s
        assert (batch.src[row, len(s) :] == PAD).all()
        assert batch.tgt_in[row, 1 : len(t) + 1].tolist() == t
        assert batch.tgt_out[row, : len(t)].tolist() == t
        assert batch.tgt_out[row, len(t)].item() == EOS
        assert (batch.tgt_out[row, len(t) + 1 :] == PAD).all()
        assert (batch.tgt_in[row, len(t) + 1 :] == PAD).all()


def test_batch_with_id_outside_vocabulary_refused(tmp_path: Path, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab,
                                                  write_prepared: Callable[..., Path]) -> None:
    path = write_prepared(tmp_path / "o.s2s", [([4], [4]), ([4, 999], [5])], tiny_src_vocab, tiny_tgt_vocab)
    data = open_data(path)
    data.batch([0])  # the good pair is fine
    with pytest.raises(S2SError, match=r"o\.s2s: damaged prepared file \(token id out of range.* 2"):
        data.batch([1])


def test_batch_with_negative_target_id_refused(tmp_path: Path, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab,
                                               write_prepared: Callable[..., Path]) -> None:
    path = write_prepared(tmp_path / "n.s2s", [([4], [-3])], tiny_src_vocab, tiny_tgt_vocab)
    with pytest.raises(S2SError, match="out of range"):
        open_data(path).batch([0])


def lengths(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(1, 12, n).astype(np.int64), rng.integers(1, 15, n).astype(np.int64)


def test_make_batches_covers_every_index_once() -> None:
    src, tgt = lengths(1003)
    batches = make_batches(src, tgt, 32, seed=7)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1003))
    assert all(1 <= len(b) <= 32 for b in batches)
    assert len(batches) == -(-1003 // 32)


def test_make_batches_deterministic_per_seed_and_different_across_seeds() -> None:
    src, tgt = lengths(500)
    a = make_batches(src, tgt, 16, seed=1)
    b = make_batches(src, tgt, 16, seed=1)
    c = make_batches(src, tgt, 16, seed=2)
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    assert [x.tolist() for x in a] != [x.tolist() for x in c]


def test_make_batches_group_equal_source_lengths() -> None:
    src, tgt = lengths(2000, seed=4)
    batches = make_batches(src, tgt, 20, seed=3)
    single = sum(1 for b in batches if len(set(src[b].tolist())) == 1)
    assert single >= 0.8 * len(batches)
    # Within a batch, targets are sorted too: spreads stay small.
    assert np.mean([tgt[b].max() - tgt[b].min() for b in batches]) < 5


def test_make_batches_edge_cases() -> None:
    assert make_batches(np.zeros(0, np.int64), np.zeros(0, np.int64), 4, 0) == []
    one = make_batches(np.array([3]), np.array([2]), 4, 0)
    assert [b.tolist() for b in one] == [[0]]
    src, tgt = lengths(10)
    assert sorted(np.concatenate(make_batches(src, tgt, 1, 5)).tolist()) == list(range(10))


def test_epoch_seed_differs_by_epoch_and_seed() -> None:
    seeds = {epoch_seed(s, e) for s in range(1, 4) for e in range(10)}
    assert len(seeds) == 30
    assert all(0 <= x < 2**63 - 1 for x in seeds)
    assert epoch_seed(1, 3) == epoch_seed(1, 3)


def test_header_with_non_integer_version_refused_cleanly(tmp_path: Path, tiny_src_vocab: Vocab,
                                                         tiny_tgt_vocab: Vocab) -> None:
    # A hand-made or damaged header must give an S2SError, not a TypeError from comparing "2" > 1.
    blob = json.dumps({"format": "s2s-prepared", "version": "2", "src_vocab": tiny_src_vocab.to_dict(),
                       "tgt_vocab": tiny_tgt_vocab.to_dict()}).encode()
    blob += b" " * (-len(blob) % 8)
    data_offset = 16 + len(blob)
    body = struct.pack("<2i", 4, 4)
    raw = MAGIC + struct.pack("<Q", len(blob)) + blob + body + struct.pack("<2i", 1, 1)
    raw += FOOTER.pack(b"S2SEND01", 1, data_offset, data_offset + len(body))
    path = tmp_path / "sv.s2s"
    path.write_bytes(raw)
    with pytest.raises(S2SError, match=r"sv\.s2s"):
        open_data(path)
