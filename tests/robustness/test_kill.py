"""``kill -9`` at random moments never costs more than the steps since the last checkpoint.

A real training subprocess is killed with SIGKILL at 20 random moments (seeded, so a failure can be
replayed), resumed each time with ``--resume``, and finally run to the end. The kill moments are
fractions of the uninterrupted run's own training time, counted from the moment each run reports that
it has started training, so the test does not depend on the machine's speed. After every kill the model
file, if one was written yet, must load; at the end the weights must equal, bit for bit, those of an
uninterrupted run with the same seed. That holds on CPU because the batch order is a function of
(seed, epoch), the position in the data is the step count, and a checkpoint stores weights, optimizer
and RNG state together, written atomically (temporary file, fsync, rename).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import torch

from procs import env, reversal_corpus, s2s
from s2scli import checkpoint

KILLS = 20


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return reversal_corpus(tmp_path_factory.mktemp("kill"), seed=7, words=30, lines=600, max_len=9)


TRAIN = ["train", "train.s2s", "--layers", "2", "--hidden", "32", "--embedding", "16", "--batch-size", "16",
         "--epochs", "8", "--decay-start", "6", "--valid-every", "7", "--seed", "3", "--device", "cpu"]


def started_training(proc: subprocess.Popen) -> tuple[threading.Event, list[str]]:
    """Read ``proc``'s stderr in a thread; the event is set at the line that says training starts (the
    model summary, printed after the data, the model and any checkpoint to resume from are loaded)."""
    started, lines = threading.Event(), []

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)
            if "parameters" in line:
                started.set()
        started.set()  # the run ended (or never started): nothing left to wait for

    threading.Thread(target=read, daemon=True).start()
    return started, lines


def timed_run(args: list[str], cwd: Path) -> tuple[subprocess.Popen, float, float, list[str]]:
    """Run to the end; returns the process, the seconds before training started and the seconds it took."""
    t0 = time.monotonic()
    proc = subprocess.Popen(s2s(*args), cwd=cwd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    started, lines = started_training(proc)
    started.wait()
    t_start = time.monotonic()
    proc.wait()
    time.sleep(0.1)  # let the reader thread take the last lines
    return proc, t_start - t0, time.monotonic() - t_start, lines


def test_kill9_at_random_moments_then_resume_equals_uninterrupted(corpus: Path) -> None:
    reference, _, training_s, lines = timed_run([*TRAIN, "-o", "ref.pt"], corpus)
    assert reference.returncode == 0, "".join(lines)

    # Each run is killed a random fraction (0.2-1.5) of one KILLS-th of the uninterrupted training time
    # after it starts training: on average the kills leave more than a third of the run undone, so most
    # of them hit a live process, whatever the machine's speed.
    rng = random.Random(20261128)
    model = corpus / "killed.pt"
    kills_that_hit = 0
    for attempt in range(KILLS):
        args = [*TRAIN, "-o", model.name] + (["--resume"] if model.exists() else [])
        proc = subprocess.Popen(s2s(*args), cwd=corpus, env=env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        started, lines = started_training(proc)
        started.wait(timeout=120)
        time.sleep(rng.uniform(0.2, 1.5) * training_s / KILLS)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills_that_hit += 1
        proc.wait(timeout=60)
        time.sleep(0.1)
        stderr = "".join(lines)
        assert "Traceback" not in stderr, stderr
        if model.exists():  # whatever moment the kill hit, the file on disk is a complete model
            ckpt = checkpoint.load(model)
            assert ckpt.train_state is not None and ckpt.train_state["step"] > 0, attempt
    assert kills_that_hit >= KILLS // 2, "the runs ended before most kills: make the training longer"

    final = subprocess.run(s2s(*TRAIN, "-o", model.name, "--resume"), cwd=corpus, env=env(),
                           capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    ref, got = checkpoint.load(corpus / "ref.pt"), checkpoint.load(model)
    assert got.train_state["step"] == ref.train_state["step"]
    for name, tensor in ref.weights.items():
        assert torch.equal(tensor, got.weights[name]), f"{name} differs after kill -9 and resume"
