"""Batches that do not wait for a pause to end: input read from a pipe is gathered into batches as usual
while it flows, but when it pauses (no complete line arrives for ``PAUSE_S``) the lines already read go
out as a smaller batch at once. A program that feeds ``s2s translate`` through a pipe and waits for each
answer before sending the next line then gets its answer instead of a deadlock.

Regular files never pause and are read as before; only pipes, sockets and terminals are watched, and
only between lines, when no complete line is already buffered, so input that streams costs nothing.
"""

from __future__ import annotations

import io
import os
import select
import stat
from typing import BinaryIO, Callable, Iterable, Iterator, Optional, TypeVar

T = TypeVar("T")

# How long input may pause before the lines read so far are processed as a (partial) batch.
PAUSE_S = 0.05
BLOCK = 1 << 16

Ready = Callable[[float], bool]


class PipeInput:
    """A binary line reader over a pipe's file descriptor that can tell whether a line is waiting."""

    def __init__(self, fd: int, owner: object = None) -> None:
        self.fd = fd
        self.owner = owner  # the stream the descriptor belongs to, kept open as long as this reader
        self.buf = bytearray()
        self.pos = 0  # bytes of buf already returned
        self.eof = False

    def fill(self) -> None:
        if self.pos > BLOCK:  # drop what was returned, now and then (not per line)
            del self.buf[: self.pos]
            self.pos = 0
        block = os.read(self.fd, BLOCK)
        if block:
            self.buf += block
        else:
            self.eof = True

    def readline(self, limit: int = -1) -> bytes:
        while True:
            end = self.buf.find(b"\n", self.pos)
            if end >= 0 and (limit < 0 or end + 1 - self.pos <= limit):
                end += 1
                break
            if limit >= 0 and len(self.buf) - self.pos >= limit:
                end = self.pos + limit
                break
            if self.eof:
                end = len(self.buf)
                break
            self.fill()
        line = bytes(self.buf[self.pos : end])
        self.pos = end
        return line

    def ready(self, timeout: float) -> bool:
        """Whether a line (or the end of input) can be read now, waiting at most ``timeout`` seconds."""
        if self.eof or self.buf.find(b"\n", self.pos) >= 0:
            return True
        readable, _, _ = select.select([self.fd], [], [], timeout)
        return bool(readable)


def paced(stream: BinaryIO) -> tuple[BinaryIO, Optional[Ready]]:
    """``stream`` itself and None for a regular file (or anything without a descriptor); for a pipe, a
    ``PipeInput`` over its descriptor and its ``ready``."""
    if not isinstance(stream, io.BufferedReader):
        return stream, None
    try:
        fd = stream.fileno()
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return stream, None  # a file never pauses
    except (OSError, ValueError):
        return stream, None
    # Nothing has been read from the stream yet (its buffer is empty), so reading its descriptor directly
    # loses nothing.
    reader = PipeInput(fd, stream)
    return reader, reader.ready  # type: ignore[return-value]


def batches(lines: Iterable[T], size: int, ready: Optional[Ready] = None) -> Iterator[list[T]]:
    """Lists of up to ``size`` lines (or other items); with ``ready``, a list ends early when the next line
    does not come within ``PAUSE_S``."""
    it = iter(lines)
    while True:
        chunk: list[T] = []
        for line in it:
            chunk.append(line)
            if len(chunk) >= size or (ready is not None and not ready(PAUSE_S)):
                break
        if not chunk:
            return
        yield chunk
