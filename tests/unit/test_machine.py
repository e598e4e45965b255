"""--precision auto and the run-time estimate (s2scli.machine), without the hardware they describe."""

from __future__ import annotations

from pathlib import Path

import torch

from s2scli import machine
from s2scli.machine import bf16_is_fast, cpu_flags, resolve_precision, run_estimate

CPU = torch.device("cpu")


def test_auto_picks_bf16_on_a_cpu_with_avx512_bf16_or_amx() -> None:
    assert resolve_precision("auto", CPU, {"avx512f", "avx512_bf16"}) == ("bf16", "auto: the CPU has avx512_bf16")
    assert resolve_precision("auto", CPU, {"amx_bf16", "amx_tile"})[0] == "bf16"


def test_auto_picks_fp32_elsewhere() -> None:
    precision, why = resolve_precision("auto", CPU, {"avx2", "fma", "avx512f"})
    assert precision == "fp32" and "no AVX-512 BF16 or AMX" in why
    assert resolve_precision("auto", CPU, set())[0] == "fp32"


def test_explicit_precisions_are_kept() -> None:
    assert resolve_precision("fp32", CPU, {"avx512_bf16"}) == ("fp32", "")
    assert resolve_precision("bf16", CPU, set()) == ("bf16", "")


def test_auto_on_a_gpu_follows_its_compute_capability(monkeypatch) -> None:
    cuda = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    assert bf16_is_fast(cuda)[0] and resolve_precision("auto", cuda)[0] == "bf16"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert resolve_precision("auto", cuda)[0] == "fp32"


def test_cpu_flags_reads_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 avx512_bf16\n\n"
                    "processor\t: 1\nflags\t\t: fpu avx2 avx512_bf16\n")
    assert cpu_flags(info) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == set()


def test_the_warning_fires_for_the_paper_model_on_a_slow_device() -> None:
    # The paper's 4x1000 model on 2 CPU cores: about 9 s a step, 1,124 steps an epoch of docs.train.
    line, warn = run_estimate(9.0, 1124, 7.5, 0.0, 290.0, "cpu", "")
    assert warn and line.startswith("warning: ")
    assert "2.8 h an epoch" in line and "21.1 h for 7.5 epochs" in line and "--preset small" in line
    # the same with the preset named explicitly, and with a time limit
    line, warn = run_estimate(9.0, 1124, 7.5, 7200.0, 290.0, "cpu", "paper")
    assert warn and "--max-time stops it after 2.0 h" in line and "--preset small" in line


def test_no_warning_for_the_small_preset() -> None:
    # --preset small on the same machine: about 0.25 s a step, 1,124 steps an epoch, a 30-minute budget.
    line, warn = run_estimate(0.25, 1124, 1e6, 1800.0, 5000.0, "cpu", "small")
    assert not warn and "5 min an epoch" in line and "--max-time stops it after 30 min" in line
    # a slow run that already uses the small preset is told how to shorten it, not to use it
    line, warn = run_estimate(10.0, 1124, 7.5, 0.0, 100.0, "cpu", "small")
    assert warn and "--preset small" not in line
    # a slow model that --max-time keeps under an hour is the user's choice: no warning
    line, warn = run_estimate(9.0, 1124, 7.5, 1200.0, 290.0, "cpu", "")
    assert not warn and "--max-time stops it after 20 min" in line


def test_the_threshold_is_an_hour_an_epoch() -> None:
    assert not run_estimate(machine.LONG_EPOCH_S / 1000, 1000, 1, 0, 1, "cpu", "")[1]
    assert run_estimate(machine.LONG_EPOCH_S / 1000 * 1.01, 1000, 1, 0, 1, "cpu", "")[1]


def test_speed_meter_leaves_out_the_warm_up_and_reports_once(monkeypatch) -> None:
    clock = iter(float(t) for t in range(100))
    monkeypatch.setattr(machine.time, "monotonic", lambda: next(clock))
    meter = machine.SpeedMeter(warm_up=2, window_s=1000.0, window_steps=3)
    assert [meter.after_step(999) for _ in range(2)] == [None, None]  # warm-up: its tokens are not counted
    assert [meter.after_step(10) for _ in range(2)] == [None, None]
    assert meter.after_step(10) == (1.0, 10.0)  # 3 steps of 10 tokens over 3 s (one tick a call)
    assert meter.after_step(10) is None
