"""Unit tests for streams.py: outputs that appear only when complete, with the usual permissions."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from s2scli.errors import S2SError
from s2scli.streams import atomic_binary, check_writable


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_output_file_mode_follows_the_umask_like_open_would(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        with atomic_binary(str(tmp_path / "out.bin")) as f:
            f.write(b"data")
        with open(tmp_path / "plain.bin", "wb") as f:
            f.write(b"data")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "out.bin").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.bin").stat().st_mode) == 0o666 & ~umask


def test_failed_block_leaves_no_file_and_no_temporary(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with atomic_binary(str(tmp_path / "out.bin")) as f:
            f.write(b"half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(S2SError, match="does not exist"):
        with atomic_binary(str(tmp_path / "nope" / "out.bin")):
            pass


def test_a_symbolic_link_is_followed_and_stays_a_link(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("old\n")
    (tmp_path / "link.txt").symlink_to("real.txt")
    with atomic_binary(str(tmp_path / "link.txt")) as f:
        f.write(b"new\n")
    assert (tmp_path / "link.txt").is_symlink()
    assert (tmp_path / "real.txt").read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.txt", "real.txt"]


def test_an_existing_file_keeps_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "private.txt"
    path.write_text("old\n")
    path.chmod(0o600)
    with atomic_binary(str(path)) as f:
        f.write(b"new\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "new\n"


def test_a_device_or_fifo_is_written_into_not_replaced(tmp_path: Path) -> None:
    check_writable(os.devnull)
    with atomic_binary(os.devnull) as f:
        f.write(b"gone\n")
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so that opening it for writing does not block
    try:
        with atomic_binary(str(fifo)) as f:
            f.write(b"through the pipe\n")
        assert os.read(reader, 100) == b"through the pipe\n"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_an_output_that_is_also_an_input_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data.txt").write_text("x\n")
    (tmp_path / "alias.txt").symlink_to("data.txt")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(S2SError, match=r"^data.txt: this command also uses this file; write the output"):
        check_writable("data.txt", ["-", None, "data.txt"])
    with pytest.raises(S2SError, match=r"^alias.txt: the same file as ./data.txt, which this command also uses"):
        check_writable("alias.txt", ["./data.txt"])
    with pytest.raises(S2SError, match=r"^new.log: the same file as ./new.log"):  # neither exists yet
        check_writable("new.log", ["./new.log"])
    check_writable("other.txt", ["data.txt", "-", None])
    check_writable(os.devnull, [os.devnull])  # /dev/null as input and output is harmless


@pytest.mark.parametrize("name, message", [
    ("", "the output file name is empty"),
    ("data.txt/out", "out: cannot write: data.txt is not a directory"),
    ("nope/out", "nope/out: cannot write: directory nope does not exist"),
])
def test_impossible_output_names_say_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                                         message: str) -> None:
    (tmp_path / "data.txt").write_text("x\n")
    monkeypatch.chdir(tmp_path)
    for check in (check_writable, lambda path: atomic_binary(path).__enter__()):
        with pytest.raises(S2SError, match=re.escape(message)):
            check(name)
