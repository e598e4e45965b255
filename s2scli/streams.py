"""Opening the files the command line names: ``-`` for stdin/stdout, ``.gz`` read transparently, clear
errors for missing files and directories, and atomic output files (written to a temporary file and
renamed into place only when the command succeeds, so a failed run never leaves a half-written file).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator, TextIO

from .errors import S2SError


def display_name(path: str | None) -> str:
    return "<stdin>" if path in (None, "-") else str(path)


def open_binary(path: str | None) -> BinaryIO:
    """An input file (or stdin for ``-``/None) as a binary stream; ``.gz`` files are decompressed."""
    if path in (None, "-"):
        return sys.stdin.buffer
    p = Path(path)
    if p.is_dir():
        raise S2SError(f"{path}: is a directory, expected a file")
    try:
        f: BinaryIO = open(p, "rb")
    except FileNotFoundError:
        raise S2SError(f"{path}: no such file") from None
    except OSError as exc:
        raise S2SError(f"{path}: cannot open ({exc.strerror})") from None
    if p.suffix == ".gz":
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    return f


def check_readable(path: str) -> None:
    """Fail early (before any work) when an input file cannot be opened."""
    if path != "-":
        open_binary(path).close()


@contextlib.contextmanager
def output_text(path: str | None) -> Iterator[TextIO]:
    """A UTF-8 text output: stdout for ``-``/None, else a file that appears only if the block succeeds."""
    if path in (None, "-"):
        yield sys.stdout
        return
    with atomic_binary(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="\n", write_through=False)
        yield text
        text.flush()
        text.detach()


def current_umask() -> int:
    """The process's file-creation mask (reading it means setting it, so it is set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_binary(path: str) -> Iterator[BinaryIO]:
    """A binary output file written to a temporary name and renamed to ``path`` on success."""
    target = Path(path)
    if target.is_dir():
        raise S2SError(f"{path}: is a directory, expected a file name")
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except FileNotFoundError:
        raise S2SError(f"{path}: cannot write: directory {directory} does not exist") from None
    except OSError as exc:
        raise S2SError(f"{path}: cannot write ({exc.strerror})") from None
    ok = False
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # what open() would have made, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        ok = True
    except OSError as exc:
        raise S2SError(f"{path}: could not write ({exc.strerror or exc}); the previous file, if any, "
                       "is unchanged") from None
    finally:
        if not ok:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def check_writable(path: str | None) -> None:
    """Fail early when an output path cannot be created (before hours of work)."""
    if path in (None, "-"):
        return
    target = Path(path)
    if target.is_dir():
        raise S2SError(f"{path}: is a directory, expected a file name")
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise S2SError(f"{path}: cannot write: directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise S2SError(f"{path}: cannot write: no permission in {directory}")
