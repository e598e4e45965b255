"""The experiment drivers (``experiments/common.run``) pass SIGTERM and SIGHUP on to the s2s command they
are running and then stop, so killing a driver never leaves a training run going on its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A driver whose "s2s command" is a Python child that records its pid, then waits for a signal and
# writes which one it got (as s2s train does, saving its checkpoint, before it exits).
DRIVER = textwrap.dedent("""
    import sys
    from pathlib import Path
    sys.path.insert(0, {experiments!r})
    import common
    common.S2S = [sys.executable, "-c", {child!r}]
    common.run(["train"], Path({cwd!r}))
    print("driver went on after the command", flush=True)
""")
CHILD = textwrap.dedent("""
    import os, signal, sys, time
    from pathlib import Path
    got = []
    signal.signal(signal.SIGTERM, lambda s, f: got.append(s))
    signal.signal(signal.SIGHUP, lambda s, f: got.append(s))
    Path("child.pid").write_text(str(os.getpid()))
    deadline = time.monotonic() + 120
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    Path("child.got").write_text(str(got[0] if got else 0))
""")


def wait_for(path: Path, proc: subprocess.Popen) -> None:
    """Wait until ``path`` exists (the child has started); fail if the driver ended first."""
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_to_the_driver_reaches_the_command_and_stops_the_driver(tmp_path: Path, signum: int) -> None:
    script = DRIVER.format(experiments=str(ROOT / "experiments"), child=CHILD, cwd=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for(tmp_path / "child.pid", proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert (tmp_path / "child.got").read_text() == str(int(signum))  # the command got the same signal
    assert proc.returncode == 1 and "driver went on" not in out
    assert err.strip() == f"stopped by signal {int(signum)} (passed on to: s2s train)"
    child = int((tmp_path / "child.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)  # the command has ended (it was waited for, so not even a zombie is left)
    assert "$ s2s train" in (tmp_path / "log.txt").read_text()


# Two commands side by side (``common.side_by_side``, table1.py --jobs): each child records its pid under
# its own name (the job's argument), then waits for a signal as above.
PARALLEL_DRIVER = textwrap.dedent("""
    import sys
    from pathlib import Path
    sys.path.insert(0, {experiments!r})
    import common
    common.S2S = [sys.executable, "-c", {child!r}]
    jobs = [lambda n=n: common.run([n], Path({cwd!r}), log="log." + n + ".txt") for n in ("a", "b")]
    common.side_by_side(jobs, 2)
    print("driver went on after the commands", flush=True)
""")
PARALLEL_CHILD = CHILD.replace('"child.pid"', 'sys.argv[1] + ".pid"').replace('"child.got"', 'sys.argv[1] + ".got"')


def test_a_signal_reaches_every_command_running_side_by_side(tmp_path: Path) -> None:
    script = PARALLEL_DRIVER.format(experiments=str(ROOT / "experiments"), child=PARALLEL_CHILD, cwd=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for(tmp_path / "a.pid", proc)
    wait_for(tmp_path / "b.pid", proc)  # both run at once: neither has been signalled yet
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    for name in ("a", "b"):
        assert (tmp_path / f"{name}.got").read_text() == str(int(signal.SIGTERM))
        with pytest.raises(ProcessLookupError):
            os.kill(int((tmp_path / f"{name}.pid").read_text()), 0)
        assert f"$ s2s {name}" in (tmp_path / f"log.{name}.txt").read_text()  # each command its own log
    assert proc.returncode == 1 and "driver went on" not in out
    assert err.strip().startswith(f"stopped by signal {int(signal.SIGTERM)}")


def test_side_by_side_returns_every_result_in_order_and_stops_on_a_failure(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("experiments_common", ROOT / "experiments" / "common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    assert common.side_by_side([lambda i=i: i * i for i in range(5)], 3) == [0, 1, 4, 9, 16]
    assert common.side_by_side([lambda: "one"], 1) == ["one"]

    def failing() -> None:
        raise SystemExit("s2s train failed (1)")

    with pytest.raises(SystemExit, match="failed"):
        common.side_by_side([lambda: 1, failing, lambda: 3], 2)
