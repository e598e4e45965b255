"""The pipeline tier: ``s2s`` run as real subprocesses and chained by pipes the way a user would, on a slice
of the real English-French data (the first 1500 pairs of the Bible training set, 50 of its dev set).

vocab -> prepare -> train (a tiny model, seconds) -> ``cat dev.en | s2s translate | s2s score --ref``,
the sacrebleu command's numbers, ``| head -1`` (broken pipe), line-by-line streaming, SIGINT/SIGTERM.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Sequence

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = (ROOT / ".." / "shared" / "data" / "enfr").resolve()
if not (DATA / "bible.train.en").is_file():
    pytest.skip(f"the English-French data is not at {DATA} (expected beside the repository as "
                "../shared/data/enfr)", allow_module_level=True)

TRAIN_LINES, DEV_LINES = 1500, 50
BATCH = 64
TINY = ["--layers", "1", "--hidden", "32", "--embedding", "16", "--batch-size", str(BATCH)]
TIMEOUT = 180  # seconds any one command may take before the test fails instead of hanging

_script = Path(sys.executable).parent / "s2s"
S2S: list[str] = [str(_script)] if _script.is_file() else [sys.executable, "-m", "s2scli"]
SACREBLEU = Path(sys.executable).parent / "sacrebleu"


def environment() -> dict[str, str]:
    """The user's environment, minus what would hide bugs (unbuffered output, debug tracebacks), with
    one thread per process: tiny models gain nothing from threads, and on a busy 2-core machine
    oversubscribed OpenMP threads slow them down many times over."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONUNBUFFERED", "S2S_DEBUG")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = "1"
    return env


ENV = environment()


def shell_s2s() -> str:
    return " ".join(shlex.quote(p) for p in S2S)


def assert_clean(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert "Exception ignored" not in stderr, stderr
    assert "internal error" not in stderr, stderr


def s2s(args: Sequence[object], cwd: Path, stdin: IO[bytes] | None = None, input: bytes | None = None,
        stdout: IO[bytes] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run one ``s2s`` command to completion; it must succeed without a traceback."""
    proc = subprocess.run([*S2S, *map(str, args)], cwd=cwd, env=ENV, stdin=stdin, input=input,
                          stdout=stdout if stdout is not None else subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=TIMEOUT)
    stderr = proc.stderr.decode()
    assert_clean(stderr)
    assert proc.returncode == 0, f"s2s {' '.join(map(str, args))} exited {proc.returncode}:\n{stderr}"
    return proc


def head(src: Path, dst: Path, n: int) -> Path:
    with open(src, "rb") as f:
        dst.write_bytes(b"".join(f.readline() for _ in range(n)))
    return dst


@dataclass
class Work:
    dir: Path
    stderr: dict[str, str] = field(default_factory=dict)  # each step's stderr
    stdout: dict[str, bytes] = field(default_factory=dict)  # each step's stdout (when not redirected)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Work:
    """vocab -> prepare -> train on the data slice, each step's stdout redirected to its file."""
    d = tmp_path_factory.mktemp("pipeline")
    w = Work(d)
    for lang in ("en", "fr"):
        head(DATA / f"bible.train.{lang}", d / f"train.{lang}", TRAIN_LINES)
        head(DATA / f"bible.dev.{lang}", d / f"dev.{lang}", DEV_LINES)
        with open(d / f"vocab.{lang}", "wb") as out:
            w.stderr[f"vocab.{lang}"] = s2s(["vocab", "--size", "1000", f"train.{lang}"], d, stdout=out).stderr.decode()
    for part in ("train", "dev"):
        with open(d / f"{part}.s2s", "wb") as out:
            w.stderr[f"prepare.{part}"] = s2s(["prepare", "--src-vocab", "vocab.en", "--tgt-vocab", "vocab.fr",
                                               f"{part}.en", f"{part}.fr"], d, stdout=out).stderr.decode()
    proc = s2s(["train", "train.s2s", "--valid", "dev.s2s", "-o", "model.pt", "--epochs", "1", "--log", "log.jsonl",
                *TINY], d)
    w.stdout["train"], w.stderr["train"] = proc.stdout, proc.stderr.decode()
    return w


def steps_per_epoch(work: Work) -> int:
    """Training batches in the pairs that prepare kept."""
    kept = re.search(r"(\d+) kept", work.stderr["prepare.train"])
    assert kept, work.stderr["prepare.train"]
    return -(-int(kept.group(1)) // BATCH)


def test_each_step_writes_only_data_to_stdout(work: Work) -> None:
    d = work.dir
    for lang in ("en", "fr"):
        lines = (d / f"vocab.{lang}").read_text(encoding="utf-8").splitlines()
        assert lines[0] == f"#s2s-vocab\tversion=1\ttokenizer=moses\tlang={lang}"
        assert len(lines) == 1 + 4 + 1000
        assert all(re.fullmatch(r"\S+\t\d+", line) for line in lines[1:]), "a non-vocabulary line on stdout"
        assert re.fullmatch(rf"s2s vocab: \d+ distinct tokens, kept 1000 \(\+4 specials\); tokenizer moses, "
                            rf"lang {lang}\n", work.stderr[f"vocab.{lang}"])
    for part, n in (("train", TRAIN_LINES), ("dev", DEV_LINES)):
        data = (d / f"{part}.s2s").read_bytes()
        assert data.startswith(b"S2SDATA1") and data[-32:].startswith(b"S2SEND01")
        assert re.fullmatch(rf"s2s prepare: {n} pairs read, \d+ kept, \d+ dropped .*<unk> rate: source [\d.]+%, "
                            r"target [\d.]+%\n", work.stderr[f"prepare.{part}"])
    assert work.stdout["train"] == b""
    train_log = work.stderr["train"].splitlines()
    assert all(line.startswith("s2s train: ") for line in train_log), train_log
    per_epoch = steps_per_epoch(work)
    assert f"finished at step {per_epoch} (epoch 1.00)" in train_log[-1]
    records = [json.loads(line) for line in (d / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [per_epoch // 2, per_epoch]  # every half epoch by default
    assert all(r["valid_ppl"] > 1 for r in records)


@pytest.fixture(scope="module")
def translated(work: Work) -> subprocess.CompletedProcess[str]:
    """``cat dev.en | s2s translate -m model.pt | tee hyp.fr | s2s score --ref dev.fr``."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is needed for the shell pipeline")
    cmd = (f"set -o pipefail; cat dev.en | {shell_s2s()} translate -m model.pt | tee hyp.fr "
           f"| {shell_s2s()} score --ref dev.fr")
    return subprocess.run([bash, "-c", cmd], cwd=work.dir, env=ENV, capture_output=True, text=True,
                          timeout=TIMEOUT)


def test_translate_then_score_through_pipes(work: Work, translated: subprocess.CompletedProcess[str]) -> None:
    assert_clean(translated.stderr)
    assert translated.returncode == 0, translated.stderr
    out = translated.stdout.splitlines()
    assert len(out) == 1 and out[0].startswith("BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:"), out
    bleu = float(out[0].split(" = ")[1].split()[0])
    assert 0 <= bleu <= 100
    hyps = (work.dir / "hyp.fr").read_text(encoding="utf-8").split("\n")
    assert hyps[-1] == "" and len(hyps) - 1 == DEV_LINES  # one line per input line, data only
    assert not any(line.startswith("s2s ") for line in hyps)
    assert re.search(rf"^s2s translate: {DEV_LINES} lines \(0 empty\)", translated.stderr, re.M)


def synthetic_hypotheses(refs: list[str]) -> list[str]:
    """Near-misses of the references (swapped and dropped words), so every metric is far from 0 and 100."""
    out = []
    for i, line in enumerate(refs):
        words = line.split()
        if len(words) > 3:
            words[1], words[2] = words[2], words[1]
        if i % 3 == 0:
            words = words[:-1]
        out.append(" ".join(words))
    return out


@pytest.mark.parametrize("which", ["model", "synthetic"])
def test_score_agrees_with_the_sacrebleu_command(work: Work, translated: subprocess.CompletedProcess[str],
                                                 which: str) -> None:
    if not SACREBLEU.is_file():
        pytest.skip(f"no sacrebleu command next to {sys.executable}")
    d = work.dir
    hyp = d / "hyp.fr"
    if which == "synthetic":
        hyp = d / "synthetic.fr"
        refs = (d / "dev.fr").read_text(encoding="utf-8").splitlines()
        hyp.write_text("".join(line + "\n" for line in synthetic_hypotheses(refs)), encoding="utf-8")
    assert hyp.is_file()
    ours = s2s(["score", hyp, "--ref", "dev.fr", "--metrics", "bleu,chrf,ter"], d).stdout.decode().splitlines()
    theirs = subprocess.run([str(SACREBLEU), "dev.fr", "-i", str(hyp), "-m", "bleu", "chrf", "ter", "-f", "text"],
                            cwd=d, env=ENV, capture_output=True, text=True, timeout=TIMEOUT)
    assert theirs.returncode == 0, theirs.stderr
    assert ours == [line.strip() for line in theirs.stdout.splitlines() if line.strip()]
    scores_only = subprocess.run([str(SACREBLEU), "dev.fr", "-i", str(hyp), "-m", "bleu", "chrf", "ter", "-b"],
                                 cwd=d, env=ENV, capture_output=True, text=True, timeout=TIMEOUT)
    numbers = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", scores_only.stdout)]
    assert [float(line.split(" = ")[1].split()[0]) for line in ours] == numbers
    if which == "synthetic":
        assert 10 < numbers[0] < 100 and 10 < numbers[1] < 100 and 0 < numbers[2] < 100


def test_broken_pipe_to_head_exits_quietly(work: Work) -> None:
    d = work.dir
    head(d / "train.en", d / "many.en", 400)
    with open(d / "broken.err", "wb") as err:
        translate = subprocess.Popen([*S2S, "translate", "-m", "model.pt", "--beam", "1", "--batch-size", "4",
                                      "many.en"], cwd=d, env=ENV, stdout=subprocess.PIPE, stderr=err)
        first = subprocess.run(["head", "-1"], stdin=translate.stdout, capture_output=True, timeout=TIMEOUT)
        assert translate.stdout is not None
        translate.stdout.close()  # only head reads the pipe; once it exits, writes fail with EPIPE
        code = translate.wait(timeout=TIMEOUT)
    stderr = (d / "broken.err").read_text()
    assert len(first.stdout.splitlines()) == 1
    assert_clean(stderr)
    assert "BrokenPipe" not in stderr
    assert code == 141, stderr  # 128 + SIGPIPE, like any Unix filter whose reader went away


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_a_full_disk_or_closed_stdout_is_one_error_line(work: Work) -> None:
    """Writing the output can fail for reasons outside s2s: a full disk (``> /dev/full``) or a standard
    output the shell closed (``>&-``). Either is one line on stderr and exit 1, not a crash."""
    for redirect, message in (("> /dev/full", "writing the output: No space left on device"),
                              (">&-", "writing the output: standard output is closed")):
        for command in ("translate -m model.pt --beam 1 -q dev.en", "vocab train.en"):
            cmd = f"{shell_s2s()} {command} {redirect}"
            proc = subprocess.run(["bash", "-c", cmd], cwd=work.dir, env=ENV, capture_output=True, text=True,
                                  timeout=TIMEOUT)
            assert_clean(proc.stderr)
            assert proc.returncode == 1, (cmd, proc.stderr)
            assert proc.stderr.splitlines()[-1] == f"s2s {command.split()[0]}: error: {message}", proc.stderr


def test_output_to_dev_null_leaves_it_a_device(work: Work) -> None:
    before = os.stat(os.devnull)
    s2s(["translate", "-m", "model.pt", "--beam", "1", "-q", "dev.en", "-o", os.devnull], work.dir)
    after = os.stat(os.devnull)
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)


def read_line_with_timeout(stream: IO[bytes], timeout: float) -> bytes:
    """One line from ``stream``, or fail the test after ``timeout`` seconds instead of hanging."""
    box: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: box.put(stream.readline()), daemon=True).start()
    try:
        return box.get(timeout=timeout)
    except queue.Empty:
        pytest.fail(f"no output line within {timeout} s: translate does not stream its output")


def test_translate_streams_one_line_at_a_time(work: Work) -> None:
    proc = subprocess.Popen([*S2S, "translate", "-m", "model.pt", "--batch-size", "1", "--beam", "2"], cwd=work.dir,
                            env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        lines = work.dir.joinpath("dev.en").read_bytes().splitlines(keepends=True)
        for line in lines[:2]:
            proc.stdin.write(line)
            proc.stdin.flush()
            out = read_line_with_timeout(proc.stdout, 90)
            assert out.endswith(b"\n")  # a whole line came back while stdin is still open
        assert proc.poll() is None
        proc.stdin.close()
        rest, stderr = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
        assert proc.wait(timeout=TIMEOUT) == 0, stderr.decode()
        assert rest == b""
        assert_clean(stderr.decode())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def start_training(work: Work, model: str, *extra: str) -> subprocess.Popen[bytes]:
    """A long training run (many epochs), returned once its first checkpoint exists."""
    path = work.dir / model
    proc = subprocess.Popen([*S2S, "train", "train.s2s", "-o", model, "--epochs", "1000", "--valid-every", "5",
                             *TINY, *extra], cwd=work.dir, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + TIMEOUT
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"training ended early with {proc.returncode}: {proc.stderr.read().decode()}")  # type: ignore
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no checkpoint written in time")
        time.sleep(0.05)
    return proc


def stop_training(proc: subprocess.Popen[bytes], signum: int) -> tuple[int, str, bytes]:
    proc.send_signal(signum)
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stderr.decode(), stdout


def test_sigint_saves_a_checkpoint_that_resume_continues(work: Work) -> None:
    proc = start_training(work, "sigint.pt")
    code, stderr, stdout = stop_training(proc, signal.SIGINT)
    assert_clean(stderr)
    assert "KeyboardInterrupt" not in stderr
    assert code == 130, stderr
    assert stdout == b""
    m = re.search(r"interrupted at step (\d+); resumable checkpoint saved to sigint\.pt", stderr)
    assert m, stderr
    step = int(m.group(1))
    assert step >= 5
    per_epoch = steps_per_epoch(work)
    # Continue for about 3 more steps, validating after each; --max-time only bounds a wrong run.
    epochs = (step + 3) / per_epoch
    resumed = s2s(["train", "train.s2s", "--valid", "dev.s2s", "-o", "sigint.pt", "--resume", "--epochs",
                   f"{epochs!r}", "--valid-every", "1", "--log", "resume.jsonl", "--max-time", "5"], work.dir)
    stderr = resumed.stderr.decode()
    end = re.search(r"finished at step (\d+)", stderr)
    assert end, stderr
    steps = [json.loads(line)["step"] for line in (work.dir / "resume.jsonl").read_text().splitlines()]
    assert steps == list(range(step + 1, int(end.group(1)) + 1))  # from the interrupted step on, not from 0
    assert 3 <= len(steps) <= 4


def test_sigterm_exits_143_with_a_checkpoint(work: Work) -> None:
    proc = start_training(work, "sigterm.pt")
    code, stderr, _ = stop_training(proc, signal.SIGTERM)
    assert_clean(stderr)
    assert code == 143, stderr
    assert "SIGTERM" in stderr and "sigterm.pt" in stderr
    # The checkpoint translates.
    out = s2s(["translate", "-m", "sigterm.pt", "--beam", "1", "-q"], work.dir, input=b"In the beginning.\n\n")
    assert out.stdout.count(b"\n") == 2
