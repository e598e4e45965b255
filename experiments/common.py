"""What the experiment drivers share: running ``s2s`` commands as a user would, and reading results.

Each command runs as ``python -m s2scli ...`` in a row's directory; its stderr is appended to that
directory's ``log.txt`` so a failed row can be read after the fact. ``ENV`` is the environment every
command gets (the drivers' ``--threads`` sets ``OMP_NUM_THREADS`` in it; ``PYTHONPATH`` starts with this
checkout, so the ``s2s`` run is the one beside the driver).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
DATA = (ROOT / ".." / "shared" / "data" / "enfr").resolve()
S2S = [sys.executable, "-m", "s2scli"]
ENV = dict(os.environ)
# The s2s that runs is this checkout's, whatever is installed in the environment.
ENV["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)


def run(args: list[str], cwd: Path, stdout: Path | None = None, stdin: Path | None = None,
        log: str = "log.txt") -> str:
    """Run one s2s command; its stderr is appended to cwd/``log`` (log.txt); returns stdout unless redirected.

    A SIGTERM or SIGHUP sent to the driver is passed on to the command (``s2s train`` then saves a
    checkpoint that a rerun resumes) and the driver stops once the command has ended, so killing the
    driver never leaves a command running on its own. Commands run from threads (``side_by_side``) get the
    signal from the main thread's handler, which passes it on to every command running.
    """
    with open(cwd / log, "a") as err:
        err.write("$ s2s " + " ".join(args) + "\n")
        err.flush()
        out = open(stdout, "wb") if stdout else subprocess.PIPE
        inp = open(stdin, "rb") if stdin else None
        try:
            proc = subprocess.Popen(S2S + args, cwd=cwd, stdout=out, stdin=inp, stderr=err, env=ENV)
            _RUNNING.add(proc)
            try:
                main = threading.current_thread() is threading.main_thread()
                with passed_on() if main else contextlib.nullcontext():
                    output, _ = proc.communicate()
            finally:
                _RUNNING.discard(proc)
        finally:
            if stdout:
                out.close()
            if inp:
                inp.close()
    if _RECEIVED:
        raise SystemExit(f"stopped by signal {_RECEIVED[0]} (passed on to: s2s {' '.join(args)})")
    if proc.returncode != 0:
        raise SystemExit(f"s2s {' '.join(args)} failed ({proc.returncode}); see {cwd / log}")
    return "" if stdout else output.decode()


_RUNNING: set[subprocess.Popen] = set()  # the s2s commands running now (several under side_by_side)
_RECEIVED: list[int] = []  # the signals the driver received while commands ran


@contextlib.contextmanager
def passed_on() -> Iterator[None]:
    """While the body runs, SIGTERM and SIGHUP go to every s2s command running (and are noted in _RECEIVED).
    Only the main thread can install signal handlers, so ``side_by_side`` holds this around its threads."""

    def forward(signum: int, _frame: object) -> None:
        _RECEIVED.append(signum)
        for proc in list(_RUNNING):
            proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def side_by_side(jobs: list[Callable[[], T]], n: int) -> list[T]:
    """Each job's result, ``n`` jobs running at a time in threads (each job runs s2s commands through ``run``).

    For a GPU, which one small model leaves mostly idle. A SIGTERM or SIGHUP to the driver reaches every
    command running; the first job to fail (or to be stopped) stops the driver once the others have ended.
    """
    if n <= 1:
        return [job() for job in jobs]
    with passed_on(), ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(job) for job in jobs]
        return [f.result() for f in futures]


def parse_duration(text: str) -> float:
    """Seconds in '30m', '2h', '90s' or '1800'."""
    units = {"s": 1, "m": 60, "h": 3600}
    return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)


def score(hyp: Path, ref: Path, cwd: Path) -> dict[str, float]:
    """sacreBLEU's BLEU and chrF of a hypothesis file, through ``s2s score --json``."""
    lines = run(["score", "--ref", str(ref), "--metrics", "bleu,chrf", "--json", "-w", "2", str(hyp)], cwd)
    return {m["name"].lower().rstrip("2"): m["score"] for m in json.loads(lines)}


def steps_done(model: Path) -> int:
    """How many training steps a checkpoint has taken."""
    from s2scli import checkpoint

    return checkpoint.TrainState.from_dict(checkpoint.load(model).train_state).step


def train_pairs(prepared: Path) -> int:
    """Sentence pairs in a prepared file."""
    from s2scli.data import PreparedData

    with open(prepared, "rb") as f:
        return len(PreparedData(f, prepared.name))


def head(src: Path, dst: Path, n: int) -> Path:
    """The first ``n`` lines of ``src`` written to ``dst`` (all of them when n is 0)."""
    with open(src, "rb") as f:
        lines = f.readlines()
    dst.write_bytes(b"".join(lines[:n] if n else lines))
    return dst
