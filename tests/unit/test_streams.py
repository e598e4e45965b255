"""Unit tests for streams.py: outputs that appear only when complete, with the usual permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from s2scli.errors import S2SError
from s2scli.streams import atomic_binary


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
