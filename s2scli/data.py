"""The prepared-data file: token ids of sentence pairs, read lazily, served in length-bucketed batches.

Format (all integers little-endian; see ``man/s2s-prepare.1``)::

    offset 0   8 bytes   magic b"S2SDATA1"
    offset 8   8 bytes   uint64 H, the length of the JSON header
    offset 16  H bytes   JSON header: {"format": "s2s-prepared", "version": 1, "src_vocab": {...},
                         "tgt_vocab": {...}, "max_len": ..}, padded with spaces to a multiple of 8
    data       int32[]   for each pair, its source ids then its target ids (no <s> or </s>)
    index      int32[N]  source lengths, then int32[N] target lengths
    footer     32 bytes  magic b"S2SEND01", uint64 N, uint64 data offset, uint64 index offset

It is written front to back in one pass (so it can go to a pipe) and read with ``os.pread``, a pair at a
time: the reader keeps only the lengths and offsets in memory (three int64 a pair, 24 bytes: 290 MB for
the paper's 12M pairs), never the ids. A file without its footer (an interrupted ``prepare``) is refused
as truncated. A file rewritten in place while it is read (``s2s prepare ... > train.s2s`` during
training) is noticed at the next read (its size, modification time or inode changed, or a read came up
short) and raises ``DataChanged`` instead of the SIGBUS a memory map would give; a file replaced by a
rename is not noticed and not needed, as the open file is the old one. Batches are padded by
``batching.pad_ids``.
"""

from __future__ import annotations

import json
import os
import struct
from array import array
from dataclasses import dataclass
from typing import Any, BinaryIO, Sequence

import numpy as np
import torch

from .batching import pad_ids
from .errors import S2SError
from .vocab import BOS, EOS, Vocab

MAGIC = b"S2SDATA1"
END_MAGIC = b"S2SEND01"
FOOTER = struct.Struct("<8sQQQ")
VERSION = 1


@dataclass
class Batch:
    """One training batch. Target rows are ``<s> y1..yn`` (input) and ``y1..yn </s>`` (output)."""

    src: torch.Tensor  # [B, S] source ids in reading order, padded with <pad> at the end
    src_lengths: torch.Tensor  # [B]
    tgt_in: torch.Tensor  # [B, T+1] <s> y1..yT, padded with <pad>
    tgt_out: torch.Tensor  # [B, T+1] y1..yT </s>, padded with <pad>
    n_tokens: int  # target tokens counted by the loss (words + </s>)

    def to(self, device: torch.device) -> "Batch":
        return Batch(self.src.to(device), self.src_lengths.to(device), self.tgt_in.to(device),
                     self.tgt_out.to(device), self.n_tokens)


class DataChanged(S2SError):
    """The prepared file was rewritten in place while it was being read."""


class PreparedWriter:
    """Writes a prepared file front to back; ``close()`` writes the index and footer."""

    def __init__(self, out: BinaryIO, header: dict[str, Any]) -> None:
        self.out = out
        blob = json.dumps(dict(header, format="s2s-prepared", version=VERSION), ensure_ascii=False).encode()
        blob += b" " * (-len(blob) % 8)
        out.write(MAGIC + struct.pack("<Q", len(blob)) + blob)
        self.data_offset = 16 + len(blob)
        self.src_lens = array("i")
        self.tgt_lens = array("i")
        self.n_ids = 0

    def add(self, src: list[int], tgt: list[int]) -> None:
        ids = array("i", src)
        ids.extend(tgt)
        self.out.write(ids.tobytes())
        self.src_lens.append(len(src))
        self.tgt_lens.append(len(tgt))
        self.n_ids += len(ids)

    def close(self) -> None:
        index_offset = self.data_offset + 4 * self.n_ids
        self.out.write(self.src_lens.tobytes())
        self.out.write(self.tgt_lens.tobytes())
        self.out.write(FOOTER.pack(END_MAGIC, len(self.src_lens), self.data_offset, index_offset))
        self.out.flush()


class PreparedData:
    """A prepared file opened for reading; pairs are read from disk on demand."""

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self.name = name
        try:
            stream.seek(0, 2)
            size = stream.tell()
            stream.seek(0)
        except (OSError, ValueError):
            raise S2SError(f"{name}: prepared data must be a regular file, not a pipe") from None
        head = stream.read(16)
        if len(head) < 16 or head[:8] != MAGIC:
            raise S2SError(f"{name}: not an s2s prepared file (make one with 's2s prepare')")
        (hlen,) = struct.unpack("<Q", head[8:])
        if size < 16 + hlen + FOOTER.size:
            raise S2SError(f"{name}: truncated prepared file ({size} bytes); run 's2s prepare' again")
        stream.seek(size - FOOTER.size)
        magic, n, data_offset, index_offset = FOOTER.unpack(stream.read(FOOTER.size))
        if magic != END_MAGIC or index_offset + 8 * n + FOOTER.size != size or data_offset != 16 + hlen:
            raise S2SError(f"{name}: truncated or damaged prepared file (no valid end marker); "
                           "run 's2s prepare' again")
        stream.seek(16)
        try:
            self.header: dict[str, Any] = json.loads(stream.read(hlen).decode())
            self.src_vocab = Vocab.from_dict(self.header["src_vocab"])
            self.tgt_vocab = Vocab.from_dict(self.header["tgt_vocab"])
        except (ValueError, KeyError, TypeError, S2SError):
            raise S2SError(f"{name}: damaged prepared-file header") from None
        version = self.header.get("version")
        if not isinstance(version, int):
            raise S2SError(f"{name}: damaged prepared-file header (no format version)")
        if version > VERSION:
            raise S2SError(f"{name}: prepared-file version {version} is newer than this "
                           f"s2s reads ({VERSION}); upgrade s2s")
        index = np.fromfile(stream, dtype="<i4", count=2 * n, offset=index_offset - 16 - hlen) if n else \
            np.zeros(0, dtype="<i4")
        self.src_lens = index[:n].astype(np.int64)
        self.tgt_lens = index[n:].astype(np.int64)
        self.offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(self.src_lens + self.tgt_lens, out=self.offsets[1:])
        if self.offsets[-1] * 4 != index_offset - data_offset or (n and min(self.src_lens.min(),
                                                                             self.tgt_lens.min()) < 1):
            raise S2SError(f"{name}: damaged prepared file (index does not match the data)")
        try:
            self.fd = os.dup(stream.fileno())  # its own descriptor: readable after the stream closes
        except (OSError, ValueError):
            raise S2SError(f"{name}: prepared data must be a regular file") from None
        self.data_offset = data_offset
        self.identity = file_identity(os.fstat(self.fd))
        if self.identity[1] != size:
            raise DataChanged(f"{name}: the file changed while it was being opened")

    def __len__(self) -> int:
        return len(self.src_lens)

    def __del__(self) -> None:
        fd = getattr(self, "fd", None)
        if fd is not None:
            os.close(fd)
            self.fd = None

    def check_unchanged(self) -> None:
        """Raise ``DataChanged`` if the open file is no longer what was opened (rewritten in place)."""
        if file_identity(os.fstat(self.fd)) != self.identity:
            raise DataChanged(f"{self.name}: the file was rewritten while training read it; "
                              "rewrite prepared data only under another name")

    def pair(self, i: int, checked: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Source and target ids of pair ``i`` (``checked``: the caller has just called ``check_unchanged``)."""
        if not checked:
            self.check_unchanged()
        start, end = int(self.offsets[i]), int(self.offsets[i + 1])
        want = 4 * (end - start)
        try:
            raw = os.pread(self.fd, want, self.data_offset + 4 * start)
        except OSError as exc:
            raise S2SError(f"{self.name}: cannot read ({exc.strerror or exc})") from None
        if len(raw) != want:
            raise DataChanged(f"{self.name}: the file was cut short while training read it; "
                              "rewrite prepared data only under another name")
        ids = np.frombuffer(raw, dtype="<i4")
        mid = int(self.src_lens[i])
        return ids[:mid], ids[mid:]

    def n_target_tokens(self) -> int:
        """Target tokens the loss counts over the whole file (words + one </s> a sentence)."""
        return int(self.tgt_lens.sum()) + len(self)

    def batch(self, indices: Sequence[int]) -> Batch:
        """Gather pairs into padded tensors; ids outside the vocabularies are refused."""
        self.check_unchanged()
        pairs = [self.pair(int(i), checked=True) for i in indices]
        self.check_unchanged()  # a rewrite during the reads: what was read may mix two files
        sources, targets = [x for x, _ in pairs], [y for _, y in pairs]
        src = pad_ids(sources)  # [B, S]
        tgt_in = pad_ids(targets, prefix=BOS)  # [B, T+1]
        tgt_out = pad_ids(targets, suffix=EOS)  # [B, T+1]
        if int(src.max()) >= len(self.src_vocab) or int(tgt_in.max()) >= len(self.tgt_vocab) or \
                min(int(src.min()), int(tgt_in.min())) < 0:
            raise S2SError(f"{self.name}: damaged prepared file (token id out of range in one of pairs "
                           f"{', '.join(str(int(i) + 1) for i in list(indices)[:3])}...)")
        n_tokens = int(sum(len(y) for y in targets)) + len(pairs)
        src_lengths = torch.tensor([len(x) for x in sources], dtype=torch.long)  # [B]
        return Batch(src, src_lengths, tgt_in, tgt_out, n_tokens)


def file_identity(st: os.stat_result) -> tuple[int, int, int, int]:
    """What changes when a file is rewritten in place: device, size, modification time, inode."""
    return (st.st_dev, st.st_size, st.st_mtime_ns, st.st_ino)


def make_batches(src_lens: np.ndarray, tgt_lens: np.ndarray, batch_size: int, seed: int) -> list[np.ndarray]:
    """One epoch's batches: pairs of similar length together [3.4], batch order shuffled.

    Pairs are shuffled, then stably sorted by (source length, target length) and cut into batches of
    ``batch_size``, so most batches hold sources of one exact length (no padding for the encoder) and
    similar target lengths. The result depends only on the lengths, ``batch_size`` and ``seed``.
    """
    n = len(src_lens)
    if n == 0:
        return []
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=gen).numpy()
    order = perm[np.lexsort((tgt_lens[perm], src_lens[perm]))]
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    shuffle = torch.randperm(len(batches), generator=gen).tolist()
    return [batches[i] for i in shuffle]


def epoch_seed(seed: int, epoch: int) -> int:
    """The batch-order seed of one epoch: every epoch gets a fresh order, reproducible from ``seed``."""
    return (seed * 1_000_003 + epoch * 7_919) % (2**63 - 1)
