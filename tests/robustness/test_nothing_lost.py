"""Nothing lost, round 2, on real processes: data rewritten under a training, two trainings on one model
file, SIGTERM and SIGHUP while an output file is being written, and a pipe that pauses.

Every wait here is bounded by a generous timeout, so that a regression fails instead of hanging, and no
assertion depends on the machine's speed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from procs import env, reversal_corpus, s2s
from s2scli import checkpoint


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    tmp = reversal_corpus(tmp_path_factory.mktemp("lost"), seed=5, words=20, lines=300, max_len=7)
    # Other data for the same vocabularies: what a user rewrites train.s2s with.
    (tmp / "other.src").write_text("w1 w2\nw3 w4 w5\n")
    (tmp / "other.tgt").write_text("w2 w1\nw5 w4 w3\n")
    subprocess.run(s2s("prepare", "--src-vocab", "vocab.src", "--tgt-vocab", "vocab.tgt", "-o", "other.s2s",
                       "other.src", "other.tgt"), cwd=tmp, env=env(), check=True, capture_output=True)
    return tmp


# A training that runs until it is stopped (at most --max-time), with a checkpoint every few steps.
LONG = ["--layers", "1", "--hidden", "16", "--embedding", "8", "--batch-size", "8", "--epochs", "1000",
        "--valid-every", "5", "--max-time", "120", "--device", "cpu"]


class Running:
    """A subprocess whose stderr is read in a thread; ``wait_for(text)`` waits until a line holds it."""

    def __init__(self, args: list[str], cwd: Path, **kwargs) -> None:
        self.proc = subprocess.Popen(s2s(*args), cwd=cwd, env=env(), stderr=subprocess.PIPE, text=True,
                                     **kwargs)
        self.lines: list[str] = []
        self.changed = threading.Condition()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self) -> None:
        for line in self.proc.stderr:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()
        with self.changed:
            self.lines.append("")  # the end
            self.changed.notify_all()

    def wait_for(self, text: str, timeout: float = 120) -> None:
        with self.changed:
            ok = self.changed.wait_for(lambda: any(text in line for line in self.lines) or "" in self.lines,
                                       timeout)
        assert ok and any(text in line for line in self.lines), f"no {text!r} in:\n{self.stderr()}"

    def finish(self, timeout: float = 120) -> int:
        code = self.proc.wait(timeout=timeout)
        with self.changed:
            self.changed.wait_for(lambda: "" in self.lines, 10)
        return code

    def stderr(self) -> str:
        return "".join(self.lines)


def wait_until(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_rewriting_the_data_under_training_stops_it_with_a_resumable_checkpoint(corpus: Path) -> None:
    data = corpus / "rewritten.s2s"
    shutil.copyfile(corpus / "train.s2s", data)
    run = Running(["train", data.name, "-o", "rewritten.pt", *LONG], corpus, stdout=subprocess.DEVNULL)
    run.wait_for("parameters")
    wait_until(lambda: (corpus / "rewritten.pt").exists())  # at least one checkpoint: steps are done
    shutil.copyfile(corpus / "other.s2s", data)  # as 'cp' does: the same file, truncated and rewritten
    code = run.finish()
    stderr = run.stderr()
    assert code == 1, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0].startswith("s2s train: error: rewritten.s2s: "), stderr
    assert "resumable checkpoint of step" in errors[0], errors[0]
    saved = int(errors[0].split("resumable checkpoint of step ")[1].split()[0])
    ckpt = checkpoint.load(corpus / "rewritten.pt")
    assert ckpt.train_state is not None and ckpt.train_state["step"] == saved > 0
    # With the data back, training continues from that step.
    shutil.copyfile(corpus / "train.s2s", data)
    resumed = subprocess.run(s2s("train", data.name, "-o", "rewritten.pt", "--resume", *LONG[:-4],
                                 "--max-time", "2", "--device", "cpu"),
                             cwd=corpus, env=env(), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming at step {saved}" in resumed.stderr


def test_a_second_training_on_the_same_model_file_is_refused_at_its_start(corpus: Path) -> None:
    first = Running(["train", "train.s2s", "-o", "locked.pt", *LONG], corpus, stdout=subprocess.DEVNULL)
    try:
        first.wait_for("parameters")
        second = subprocess.run(s2s("train", "train.s2s", "-o", "locked.pt", "--force", *LONG),
                                cwd=corpus, env=env(), capture_output=True, text=True, timeout=120)
        assert second.returncode == 1, second.stderr
        assert second.stderr.startswith("s2s train: error: locked.pt: another s2s process is writing"), \
            second.stderr
        assert len(second.stderr.splitlines()) == 1, second.stderr
        first.proc.send_signal(signal.SIGTERM)
        assert first.finish() == 143, first.stderr()
    finally:
        if first.proc.poll() is None:
            first.proc.kill()
    assert checkpoint.load(corpus / "locked.pt").train_state is not None
    assert not (corpus / ".locked.pt.lock").exists()  # the lock file goes with the run
    # The lock died with its process: the next run on that file may start.
    again = subprocess.run(s2s("train", "train.s2s", "-o", "locked.pt", "--resume", *LONG[:-4], "--max-time",
                               "1", "--device", "cpu"),
                           cwd=corpus, env=env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr


def test_the_lock_dies_with_a_killed_training(corpus: Path) -> None:
    run = Running(["train", "train.s2s", "-o", "killed.pt", *LONG], corpus, stdout=subprocess.DEVNULL)
    run.wait_for("parameters")
    run.proc.kill()
    run.finish()
    after = subprocess.run(s2s("train", "train.s2s", "-o", "killed.pt", "--force", *LONG[:-4], "--max-time", "1",
                               "--device", "cpu"),
                           cwd=corpus, env=env(), capture_output=True, text=True, timeout=120)
    assert after.returncode == 0, after.stderr


@pytest.fixture(scope="module")
def model(corpus: Path) -> Path:
    subprocess.run(s2s("train", "train.s2s", "-o", "tiny.pt", *LONG[:-4], "--max-time", "1", "--device", "cpu"),
                   cwd=corpus, env=env(), check=True, capture_output=True, timeout=120)
    return corpus / "tiny.pt"


@pytest.mark.parametrize("command,signum", [("translate", signal.SIGTERM), ("encode", signal.SIGHUP),
                                            ("prepare", signal.SIGTERM), ("translate", signal.SIGHUP)])
def test_a_signal_while_writing_an_output_file_leaves_no_file(corpus: Path, model: Path, command: str,
                                                              signum: int) -> None:
    out = f"out-{command}-{signum}.txt"
    args = {"translate": ["translate", "-m", model.name, "-o", out, "-b", "1000"],
            "encode": ["encode", "-m", model.name, "-o", out, "-b", "1000"],
            "prepare": ["prepare", "--src-vocab", "vocab.src", "--tgt-vocab", "vocab.tgt", "-o", out, "-",
                        "train.tgt"]}[command]
    before = set(os.listdir(corpus))
    run = Running(args, corpus, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        wait_until(lambda: any(name.startswith(f".{out}.") for name in os.listdir(corpus)))  # writing now
        run.proc.stdin.write("w1 w2\n")  # some input read, still more to come: the output is half done
        run.proc.stdin.flush()
        time.sleep(0.2)
        run.proc.send_signal(signum)
        code = run.finish()
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    stderr = run.stderr()
    assert code == 128 + signum, stderr
    assert "Traceback" not in stderr
    assert len(stderr.splitlines()) == 1 and stderr.startswith(f"s2s {command}: "), stderr
    assert set(os.listdir(corpus)) == before, "a temporary or output file was left behind"


@pytest.mark.parametrize("command", ["translate", "encode"])
def test_each_line_of_a_pipe_that_pauses_is_answered(corpus: Path, model: Path, command: str) -> None:
    """A program that writes a line and waits for its answer before writing the next one."""
    proc = subprocess.Popen(s2s(command, "-m", model.name, "-q"), cwd=corpus, env=env(), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    answers: list[str] = []
    got = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            answers.append(line)
            got.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        for i, line in enumerate(["w1 w2", "w3", "w4 w5 w6"]):  # fewer than a batch (64)
            got.clear()
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            assert got.wait(timeout=60), f"no answer to line {i + 1} while the pipe stays open"
            assert len(answers) == i + 1
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("args", [["translate", "-m", "tiny.pt"], ["vocab", "--tokenizer", "none"]])
def test_a_closed_standard_input_is_one_error_line(corpus: Path, model: Path, args: list[str]) -> None:
    done = subprocess.run(["bash", "-c", 'exec "$@" <&-', "bash", *s2s(*args)], cwd=corpus, env=env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr == f"s2s {args[0]}: error: standard input is closed; give a file name or redirect stdin\n"
