"""Opening the files the command line names: ``-`` for stdin/stdout, ``.gz`` read transparently, clear
errors for missing files and directories, and atomic output files (written to a temporary file and
renamed into place only when the command succeeds, so a failed run never leaves a half-written file).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gzip
import io
import os
import re
import stat
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, TextIO

from .errors import S2SError


def display_name(path: str | None) -> str:
    return "<stdin>" if path in (None, "-") else str(path)


def open_binary(path: str | None) -> BinaryIO:
    """An input file (or stdin for ``-``/None) as a binary stream; ``.gz`` files are decompressed."""
    if path in (None, "-"):
        if sys.stdin is None:  # started with stdin closed (``s2s translate <&-``)
            raise S2SError("standard input is closed; give a file name or redirect stdin")
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


def stdin_is_terminal() -> bool:
    """Whether standard input is a terminal (False when it is closed)."""
    return sys.stdin is not None and sys.stdin.isatty()


def check_readable(path: str) -> None:
    """Fail early (before any work) when an input file cannot be opened."""
    if path != "-":
        open_binary(path).close()


@contextlib.contextmanager
def output_text(path: str | None) -> Iterator[TextIO]:
    """A UTF-8 text output: stdout for ``-``/None, else a file that appears only if the block succeeds."""
    if path in (None, "-"):
        yield sys.stdout
        sys.stdout.flush()  # a failed write (a full disk) is reported before any summary of success
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


def is_special(target: Path) -> bool:
    """Whether ``target`` exists and is not a regular file: a device (``/dev/null``), a FIFO, a socket."""
    try:
        mode = target.stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def output_target(path: str) -> Path:
    """Where writing ``path`` really goes: a symbolic link's final target, so the link itself stays a link."""
    if path == "":
        raise S2SError("the output file name is empty")
    target = Path(path)
    return Path(os.path.realpath(target)) if target.is_symlink() else target


@contextlib.contextmanager
def atomic_binary(path: str) -> Iterator[BinaryIO]:
    """A binary output file written to a temporary name and renamed to ``path`` on success.

    A symbolic link is followed (its target is replaced, the link stays); a device or FIFO that already
    exists (``-o /dev/null``) is written directly, as there is nothing to replace; an existing file keeps
    its permission bits.
    """
    check_writable(path)
    target = output_target(path)
    if is_special(target):
        try:
            with open(target, "wb") as f:
                yield f
        except OSError as exc:
            raise S2SError(f"{path}: could not write ({exc.strerror or exc})") from None
        return
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise S2SError(f"{path}: cannot create a file in {directory} ({exc.strerror})") from None
    ok = False
    try:
        try:
            mode = stat.S_IMODE(target.stat().st_mode)  # an existing file keeps its permissions
        except OSError:
            mode = 0o666 & ~current_umask()  # what open() would have made, not mkstemp's 0600
        os.fchmod(fd, mode)
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


def check_writable(path: str | None, inputs: Iterable[str | None] = ()) -> None:
    """Fail early when an output path cannot be created (before hours of work), or when it is the same
    file as one of the command's ``inputs`` (writing it would destroy what is being read)."""
    if path in (None, "-"):
        return
    target = output_target(path)
    if target.is_dir():
        raise S2SError(f"{path}: is a directory, expected a file name")
    for name in inputs:
        if name not in (None, "-") and same_file(target, Path(name)):
            what = "this command also uses this file" if name == path else \
                f"the same file as {name}, which this command also uses"
            raise S2SError(f"{path}: {what}; write the output to another file")
    if is_special(target):
        if not os.access(target, os.W_OK):
            raise S2SError(f"{path}: cannot write: permission denied")
        return
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.exists():
        raise S2SError(f"{path}: cannot write: directory {directory} does not exist")
    if not directory.is_dir():
        raise S2SError(f"{path}: cannot write: {directory} is not a directory")
    if not os.access(directory, os.W_OK):
        raise S2SError(f"{path}: cannot write: no permission in {directory}")
    check_name_length(path, target, TEMP_EXTRA)


# What atomic_binary's temporary name adds to the output's name: "." + name + ".XXXXXXXX" + ".tmp".
TEMP_EXTRA = 14


def check_name_length(path: str, target: Path, extra: int) -> None:
    """Refuse an output name that is legal but leaves no room for the ``extra`` bytes of the temporary
    name it is written under (it would fail only at the end, when the work is done)."""
    directory = target.parent if str(target.parent) else Path(".")
    try:
        limit = os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    length = len(os.fsencode(target.name))
    if length + extra > limit:
        raise S2SError(f"{path}: file name too long ({length} bytes; at most {limit - extra} here, as the "
                       f"file is written under a temporary name {extra} bytes longer)")


def check_regular_input(path: str, what: str = "file") -> None:
    """Refuse an input that is not a regular file (a FIFO would block forever, a device never end)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise S2SError(f"{path}: no such {what}") from None
    except OSError as exc:
        raise S2SError(f"{path}: cannot open ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise S2SError(f"{path}: is a directory, not a {what}")
    if not stat.S_ISREG(mode):
        raise S2SError(f"{path}: not a regular file (a FIFO, device or socket); a {what} must be a file")


def lock_path(target: Path) -> Path:
    """The lock file of an output: ``.NAME.lock`` beside it."""
    return target.with_name(f".{target.name}.lock")


@contextlib.contextmanager
def output_lock(path: str) -> Iterator[None]:
    """Hold an exclusive lock on the output ``path`` for the block, or refuse at once if another process
    holds it. The lock (``flock`` on ``.NAME.lock`` beside it) dies with its process, so a killed run
    never leaves a stale lock; the lock file is removed when the block ends."""
    target = output_target(path)
    lock = lock_path(target)
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise S2SError(f"{path}: cannot create its lock file {lock} ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise S2SError(f"{path}: another s2s process is writing this file (it holds {lock}); "
                               "wait for it to end or choose another output") from None
            raise S2SError(f"{path}: cannot lock {lock} ({exc.strerror})") from None
        try:  # the file may have been removed by its previous holder between open and flock: retry
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except OSError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        remove_stale_temporaries(target)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Delete the temporary files that a killed writer of ``target`` left beside it (``.NAME.XXXXXXXX.tmp``
    from atomic_binary, ``.NAME.tmp`` from a step copy); only call it holding ``output_lock``."""
    directory = target.parent if str(target.parent) else Path(".")
    stem, suffix = target.stem, target.suffix
    names = [re.escape(target.name) + r"\.[A-Za-z0-9_]{8}\.tmp",
             re.escape(f"{stem}.best{suffix}") + r"\.[A-Za-z0-9_]{8}\.tmp",
             re.escape(stem) + r"\.step\d{8}" + re.escape(suffix) + r"(\.[A-Za-z0-9_]{8})?\.tmp"]
    pattern = re.compile(r"\.(?:" + "|".join(names) + ")")
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (through links, ``./`` and the like), existing or not."""
    if is_special(a):
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare the names
        return os.path.realpath(a) == os.path.realpath(b)
