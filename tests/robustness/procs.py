"""Helpers for the robustness tier: running ``s2s`` as a real subprocess on this checkout, and a small
synthetic corpus (target = source reversed) with its vocabularies and prepared file, built through s2s."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def env() -> dict[str, str]:
    """This checkout first on PYTHONPATH, and one OpenMP thread: the same thread count in every run gives
    the same sums, so runs can be compared bit for bit."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), e.get("PYTHONPATH")]))
    e["OMP_NUM_THREADS"] = e["MKL_NUM_THREADS"] = "1"
    return e


def s2s(*args: str) -> list[str]:
    return [sys.executable, "-m", "s2scli", *args]


def reversal_corpus(tmp: Path, seed: int, words: int, lines: int, max_len: int) -> Path:
    """``train.src``/``train.tgt`` (the target is the source reversed), ``vocab.src``/``vocab.tgt`` and
    ``train.s2s`` in ``tmp``, made with s2s itself."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(words)]
    src = [" ".join(rng.choice(vocab) for _ in range(rng.randint(2, max_len))) for _ in range(lines)]
    (tmp / "train.src").write_text("".join(s + "\n" for s in src))
    (tmp / "train.tgt").write_text("".join(" ".join(reversed(s.split())) + "\n" for s in src))
    for side in ("src", "tgt"):
        subprocess.run(s2s("vocab", "--tokenizer", "none", "-o", f"vocab.{side}", f"train.{side}"),
                       cwd=tmp, env=env(), check=True, capture_output=True)
    subprocess.run(s2s("prepare", "--src-vocab", "vocab.src", "--tgt-vocab", "vocab.tgt", "-o", "train.s2s",
                       "train.src", "train.tgt"), cwd=tmp, env=env(), check=True, capture_output=True)
    return tmp
