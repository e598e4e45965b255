"""Shared pieces of the benchmark scripts: timing, the machine's matmul peak, synthetic corpora.

Benchmarks print figures; they never pass or fail. Run them on a quiet machine and compare numbers
only within one run (or one machine): medians of repeated measurements, ratios side by side.
"""

from __future__ import annotations

import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from s2scli.allocator import keep_freed_memory
from s2scli.data import PreparedData
from s2scli.prepare import prepare
from s2scli.vocab import SPECIALS, Vocab


keep_freed_memory()  # as every `s2s` command does (allocator.py), so the figures are the tool's

ENFR = Path(__file__).resolve().parents[2] / "shared" / "data" / "enfr"  # ../shared/data/enfr beside the checkout


# OpenNMT-py's training, run with ``python -c ONMT_TRAIN config.yaml`` in the environment that has it.
ONMT_TRAIN = "import sys; from onmt.bin.train import main; sys.argv = ['onmt_train', '-config', sys.argv[1]]; main()"


def run_logged(cmd: list[str], log: Path, env: dict[str, str], stdin: Path | None = None,
               stdout: Path | None = None) -> tuple[float, str]:
    """Run ``cmd`` in ``log``'s folder with its stderr, and its stdout unless ``stdout`` names a file for it,
    into ``log``; ``stdin``: a file to read (default: none). Returns the wall seconds and the log's text; a
    failure ends the benchmark with the command and the log's last lines."""
    start = time.monotonic()
    with open(log, "w") as err, open(stdin or os.devnull) as inp, open(stdout or os.devnull, "w") as out:
        proc = subprocess.run(cmd, stdin=inp, stdout=out if stdout else err, stderr=err, env=env, cwd=log.parent)
    took = time.monotonic() - start
    text = log.read_text(errors="replace")
    if proc.returncode != 0:
        sys.exit(f"{Path(sys.argv[0]).stem}: {' '.join(cmd[:4])} ... failed ({proc.returncode}); its last lines:\n"
                 f"{text[-2000:]}")
    return took, text


def median_seconds(fn: Callable[[], object], repeat: int = 7, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` over ``repeat`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@dataclass(frozen=True)
class Peak:
    fp32: float  # GFLOP/s of a large fp32 matmul (torch.mm: MKL on x86 CPUs, cuBLAS on GPUs)
    bf16: float | None  # GFLOP/s of the same matmul in bfloat16, None where unsupported


def matmul_peak(device: torch.device, n: int = 2048) -> Peak:
    """The machine's practical matmul peak: the median rate of an n x n x n product, 2 n^3 FLOP."""

    def rate(dtype: torch.dtype) -> float:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)

        def run() -> None:
            a @ b
            if device.type == "cuda":
                torch.cuda.synchronize()

        return 2 * n**3 / median_seconds(run, repeat=5) / 1e9

    try:
        bf16: float | None = rate(torch.bfloat16)
    except RuntimeError:
        bf16 = None
    return Peak(rate(torch.float32), bf16)


def fp32_peak_at_shapes(shapes: list[tuple[int, int, int]], device: torch.device) -> dict[str, dict[tuple, float]]:
    """fp32 GFLOP/s of y = x W^T at the given (rows, inputs, outputs) shapes through each matmul library torch
    can reach here: ``mkl`` (torch.mm: MKL on x86 CPUs; cuBLAS on GPUs) and, on CPUs, ``onednn``
    (torch's mkldnn linear on mkldnn-layout tensors, and its dense-tensor linear; the better of the two).
    The best of them at the model's own shapes is the fp32 peak that "% of peak" should be measured against:
    on some CPUs oneDNN is twice MKL at these shapes, so MKL alone would flatter the utilisation."""
    results: dict[str, dict[tuple, float]] = {"mkl": {}}
    onednn = device.type == "cpu" and torch.backends.mkldnn.is_available()
    if onednn:
        results["onednn"] = {}
    for m, k, n in shapes:
        x = torch.randn(m, k, device=device)
        w = torch.randn(n, k, device=device)
        b = torch.randn(n, device=device)
        flop = 2 * m * k * n
        repeat = max(1, min(50, int(2e9 // flop)))  # about 2 GFLOP a timing

        def timed(fn: Callable[[], object]) -> float:
            def run() -> None:
                for _ in range(repeat):
                    fn()
                if device.type == "cuda":
                    torch.cuda.synchronize()

            return flop * repeat / median_seconds(run, repeat=5, warmup=1) / 1e9

        wt = w.t()
        results["mkl"][(m, k, n)] = timed(lambda: torch.mm(x, wt))
        if onednn:
            rates = []
            try:
                xm, wm, bm = x.to_mkldnn(), w.to_mkldnn(), b.to_mkldnn()
                rates.append(timed(lambda: torch._C._nn.mkldnn_linear(xm, wm, bm)))
            except (RuntimeError, AttributeError):
                pass
            try:
                rates.append(timed(lambda: torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")))
            except (RuntimeError, AttributeError):
                pass
            if rates:
                results["onednn"][(m, k, n)] = max(rates)
    return results


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        flags = " ".join(f for f in ("avx512f", "avx512_bf16", "amx_bf16") if f in text)
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}" + (f", {flags}" if flags else "")


def synthetic_vocab(size: int, lang: str) -> Vocab:
    """A vocabulary of ``size`` entries in all (the 4 specials + words w0, w1, ...)."""
    return Vocab(list(SPECIALS) + [f"w{i}" for i in range(size - len(SPECIALS))], "none", lang)


def synthetic_lines(n: int, vocab: Vocab, min_len: int, max_len: int, seed: int) -> list[str]:
    """``n`` lines of random words with Zipf-like frequencies, lengths uniform in [min_len, max_len]."""
    rng = random.Random(seed)
    words = vocab.tokens[len(SPECIALS):]
    weights = [1.0 / (i + 1) for i in range(len(words))]
    return [" ".join(rng.choices(words, weights, k=rng.randint(min_len, max_len))) for _ in range(n)]


def prepared_file(path: Path, src: list[str], tgt: list[str], src_vocab: Vocab, tgt_vocab: Vocab) -> PreparedData:
    with open(path, "wb") as out:
        prepare(src, tgt, src_vocab, tgt_vocab, out)
    return PreparedData(open(path, "rb"), str(path))
