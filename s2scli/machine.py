"""What the machine a run is on can do: whether bfloat16 is fast there (``--precision auto``), and how
long a training run will take once its first steps are timed (the warning that saves a day).

Both are pure functions of what they are given (CPU flags, measured step times), so they are tested
without the hardware they describe.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

# CPU flags (Linux /proc/cpuinfo) of instructions that make bfloat16 matrix products fast: AVX-512 BF16
# (Intel Cooper Lake and later, AMD Zen 4 and later) and AMX (Intel Sapphire Rapids and later).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
# An epoch longer than this gets a warning on the first progress line.
LONG_EPOCH_S = 3600.0
# The preset suggested by that warning: the one that trains a translator in minutes on a CPU.
FAST_PRESET = "small"


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo is missing, as on macOS)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def bf16_is_fast(device: torch.device, flags: set[str] | None = None) -> tuple[bool, str]:
    """Whether bfloat16 autocast pays off on ``device``, and why, in a few words.

    A CUDA GPU of compute capability 8.0 or later (Ampere on) has bfloat16 tensor cores; a CPU needs
    AVX-512 BF16 or AMX, without which bfloat16 is emulated and slower than fp32.
    """
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return (major >= 8, f"GPU compute capability {major}.{minor}"
                + (" has bf16 tensor cores" if major >= 8 else " has no bf16 tensor cores"))
    if device.type != "cpu":
        return False, f"no bf16 rule for device {device.type}"
    found = sorted(set(BF16_CPU_FLAGS) & (cpu_flags() if flags is None else flags))
    if found:
        return True, f"the CPU has {' and '.join(found)}"
    return False, "the CPU has no AVX-512 BF16 or AMX"


def resolve_precision(precision: str, device: torch.device, flags: set[str] | None = None) -> tuple[str, str]:
    """``precision`` with "auto" made "bf16" or "fp32" for ``device``; the second item says why ("" when
    nothing was chosen)."""
    if precision != "auto":
        return precision, ""
    fast, why = bf16_is_fast(device, flags)
    return ("bf16" if fast else "fp32"), f"auto: {why}"


class SpeedMeter:
    """Times a run's steps once, for the run-time estimate: the first ``warm_up`` steps are left out
    (they build the kernels of new batch shapes), then the speed is taken over ``window_s`` seconds or
    ``window_steps`` steps, whichever ends first."""

    def __init__(self, warm_up: int = 5, window_s: float = 20.0, window_steps: int = 25) -> None:
        self.warm_up, self.window_s, self.window_steps = warm_up, window_s, window_steps
        self.steps = self.tokens = 0  # since the start of the window (or of the run, during warm-up)
        self.since: float | None = None  # when the window began
        self.done = False

    def after_step(self, tokens: int) -> tuple[float, float] | None:
        """Count a step of ``tokens`` target tokens; once, when the window closes, return (seconds a
        step, target tokens a second) over it."""
        if self.done:
            return None
        now = time.monotonic()
        if self.since is None:
            self.steps += 1
            if self.steps >= self.warm_up:
                self.since, self.steps, self.tokens = now, 0, 0
            return None
        self.steps += 1
        self.tokens += tokens
        timed = now - self.since
        if timed < self.window_s and self.steps < self.window_steps:
            return None
        self.done = True
        return timed / self.steps, self.tokens / max(timed, 1e-9)


def duration(seconds: float) -> str:
    """'45 s', '12 min', '3.4 h', '2.1 days'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def run_estimate(seconds_per_step: float, steps_per_epoch: int, epochs: float, max_time: float,
                 tokens_per_s: float, device: str, preset: str) -> tuple[str, bool]:
    """One line on how long the run will take at the measured speed, and whether it is a warning: an
    epoch takes longer than LONG_EPOCH_S and so does the run (a run that ``max_time`` keeps short is
    the user's choice). The warning names the preset that fits a CPU, unless the run already uses it."""
    epoch_s = seconds_per_step * steps_per_epoch
    whole_s = epoch_s * epochs
    if max_time and max_time < whole_s:  # the clock ends the run (as with --schedule time)
        run = f"--max-time stops it after {duration(max_time)}, {max_time / epoch_s:.2g} epochs"
    else:
        run = f"{duration(whole_s)} for {epochs:g} epochs"
    line = f"{tokens_per_s:,.0f} target tokens/s on {device}: about {duration(epoch_s)} an epoch, {run}"
    run_s = min(whole_s, max_time) if max_time else whole_s
    if epoch_s <= LONG_EPOCH_S or run_s <= LONG_EPOCH_S:
        return line, False
    hint = (f"; --preset {FAST_PRESET} trains a smaller model that translates within 30 minutes on a CPU"
            if preset != FAST_PRESET else "; a smaller model or a shorter --max-time shortens it")
    return f"warning: this model is slow here: {line}{hint}", True
