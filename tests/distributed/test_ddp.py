"""Two CPU processes under a real ``torchrun --nproc-per-node 2`` (gloo) train exactly one global batch.

The reference is computed here with the library, in one process: at each step the batches that the two
ranks read (``2s`` and ``2s+1`` of the epoch's batch list) are concatenated into one batch, the summed
NLL divided by its sentences is back-propagated, the gradient clipped, and a plain SGD step taken at the
schedule's rate. The weights torchrun's rank 0 saves must equal it within 1e-5. A last batch of one
sentence (37 pairs in batches of 4) makes the global batch uneven; a clip norm of 1 clips some steps
and not others; the learning rate halves twice in the run.

Also: only rank 0 writes the model, the log and progress; the several-machines launch (``--nnodes 2
--node-rank R``, two torchrun agents on this machine) trains the same; checkpoints resume across world
sizes (2 -> 1 and 1 -> 2) at the same position in the data; a SIGINT to torchrun stops both ranks at one step with a
resumable checkpoint; a stop or a NaN on rank 1 alone stops both ranks (``ddp_worker.py``).

Each torchrun launch takes about 5 s on two cores (mostly importing torch three times).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pytest
import torch

from s2scli.checkpoint import load
from s2scli.config import ModelConfig, TrainConfig
from s2scli.data import PreparedData, PreparedWriter, epoch_seed, make_batches
from s2scli.model import Seq2Seq
from s2scli.train import NullReporter, evaluate, learning_rate, perplexity, train
from s2scli.vocab import SPECIALS, Vocab

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().with_name("ddp_worker.py")
TORCHRUN_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR",
                 "MASTER_PORT", "TORCHELASTIC_RUN_ID")

# 37 pairs in batches of 4: 10 batches an epoch, the last of one pair; 5 steps an epoch on 2 ranks.
PAIRS, BATCH = 37, 4
TRAIN = ["train", "train.s2s", "--layers", "1", "--hidden", "16", "--embedding", "8", "--batch-size", str(BATCH),
         "--lr", "0.7", "--clip-norm", "1", "--decay-start", "1", "--decay-every", "0.3", "--seed", "3",
         "--device", "cpu"]
TRAIN_CONFIG = TrainConfig(batch_size=BATCH, lr=0.7, clip_norm=1.0, decay_start=1.0, decay_every=0.3, seed=3)


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARS}
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), e.get("PYTHONPATH")]))
    e["OMP_NUM_THREADS"] = e["MKL_NUM_THREADS"] = "1"
    return e


def torchrun(logs: Path, *args: str, nodes: Sequence[str] = ("--standalone", "--nproc-per-node", "2")) -> list[str]:
    """torchrun with 2 local processes; ``--standalone`` picks free ports, so parallel runs never clash.

    ``-t 3`` tees each process's stdout and stderr to ``logs/<run>/attempt_0/<local rank>/``. The ``--`` keeps
    torchrun's parser from taking s2s's ``--log`` for an abbreviation of its own ``--log-dir``.
    """
    exe = Path(sys.executable).with_name("torchrun")
    launcher = [str(exe)] if exe.exists() else [sys.executable, "-m", "torch.distributed.run"]
    return [*launcher, *nodes, "--log-dir", str(logs), "-t", "3", *args]


def rank_stderr(logs: Path, local_rank: int) -> str:
    (path,) = logs.glob(f"*/attempt_0/{local_rank}/stderr.log")
    return path.read_text()


def write_data(path: Path, n: int, seed: int) -> None:
    """``n`` random pairs of 1-6 words in tiny vocabularies (tokenizer none), as a prepared file."""
    src_vocab = Vocab(list(SPECIALS) + [f"s{i}" for i in range(8)], "none", "en")
    tgt_vocab = Vocab(list(SPECIALS) + [f"t{i}" for i in range(6)], "none", "fr")
    rng = random.Random(seed)
    with open(path, "wb") as f:
        writer = PreparedWriter(f, {"src_vocab": src_vocab.to_dict(), "tgt_vocab": tgt_vocab.to_dict(),
                                    "max_len": 100})
        for _ in range(n):
            src = [rng.randrange(4, len(src_vocab)) for _ in range(rng.randint(1, 6))]
            writer.add(src, [4 + (i % 6) for i in reversed(src)])
        writer.close()


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def open_data(path: Path) -> PreparedData:
    return PreparedData(open(path, "rb"), str(path))


# ------------------------------------------------------------------------------ the reference


# One optimizer step: (epoch, positions in the epoch's batch list, fractional epoch for the schedule).
Step = tuple[int, Sequence[int], float]


def plan(epoch: int, positions: Sequence[int], world: int, per_epoch: int) -> list[Step]:
    """Steps ``positions`` (in steps) of ``epoch`` with ``world`` ranks: step s reads batches s*world.."""
    return [(epoch, range(s * world, (s + 1) * world), epoch + s / per_epoch) for s in positions]


def reference(data: PreparedData, model_config: ModelConfig, cfg: TrainConfig,
              steps: list[Step]) -> tuple[dict[str, torch.Tensor], int]:
    """The weights after ``steps``, one process, each step's batches taken as one global batch; and how
    many steps were clipped."""
    torch.manual_seed(cfg.seed)
    model = Seq2Seq(model_config).train()
    clipped = 0
    for epoch, positions, fraction in steps:
        batches = make_batches(data.src_lens, data.tgt_lens, cfg.batch_size, epoch_seed(cfg.seed, epoch))
        indices = np.concatenate([batches[p] for p in positions])
        batch = data.batch(indices)
        model.zero_grad(set_to_none=True)
        (model(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out) / len(indices)).backward()
        clipped += float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)) > cfg.clip_norm
        with torch.no_grad():
            for p in model.parameters():
                p -= learning_rate(cfg, fraction) * p.grad
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, clipped


def assert_weights_close(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert set(got) == set(want)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=0, atol=1e-5, msg=lambda m: f"{name}: {m}")


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


# ------------------------------------------------------------------------------ a 2-process run


@dataclass
class Run:
    dir: Path
    proc: subprocess.CompletedProcess[str]
    seconds: float

    @property
    def logs(self) -> Path:
        return self.dir / "torchrun-logs"


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """8 steps (1.6 epochs) on 2 ranks, validating every 3 steps, with a log."""
    tmp = tmp_path_factory.mktemp("ddp")
    write_data(tmp / "train.s2s", PAIRS, seed=1)
    write_data(tmp / "valid.s2s", 9, seed=2)
    start = time.monotonic()
    proc = subprocess.run(torchrun(tmp / "torchrun-logs", "-m", "--", "s2scli", *TRAIN, "--valid", "valid.s2s",
                                   "--epochs", "1.6", "--valid-every", "3", "-o", "ddp.pt", "--log", "ddp.jsonl"),
                          cwd=tmp, env=env(), capture_output=True, text=True, timeout=120)
    return Run(tmp, proc, time.monotonic() - start)


TWO_RANK_STEPS = plan(0, range(5), 2, 5) + plan(1, range(3), 2, 5)  # 1.6 epochs of 5 steps


def test_two_processes_equal_one_process_on_the_global_batch(ddp_run: Run) -> None:
    assert ddp_run.proc.returncode == 0, ddp_run.proc.stderr
    ckpt = load(ddp_run.dir / "ddp.pt")
    state = ckpt.train_state
    assert state is not None
    assert (state["step"], state["epoch"], state["batch_in_epoch"], state["world_size"]) == (8, 1, 6, 2)
    data = open_data(ddp_run.dir / "train.s2s")
    want, clipped = reference(data, ckpt.model_config, ckpt.train_config, TWO_RANK_STEPS)
    assert_weights_close(ckpt.weights, want)
    # The comparison has teeth: clipping happened, and leaving out rank 1's batches gives other weights.
    assert 0 < clipped < len(TWO_RANK_STEPS)
    rank0_only = [(e, positions[:1], f) for e, positions, f in TWO_RANK_STEPS]
    assert max_difference(ckpt.weights, reference(data, ckpt.model_config, ckpt.train_config, rank0_only)[0]) > 1e-3


def test_only_rank_0_writes_the_model_the_log_and_progress(ddp_run: Run) -> None:
    assert ddp_run.proc.returncode == 0, ddp_run.proc.stderr
    assert sorted(p.name for p in ddp_run.dir.iterdir()) == ["ddp.jsonl", "ddp.pt", "torchrun-logs", "train.s2s",
                                                            "valid.s2s"]
    records = [json.loads(line) for line in (ddp_run.dir / "ddp.jsonl").read_text().splitlines()]
    assert [(r["step"], r["epoch"]) for r in records] == [(3, 0.6), (6, 1.2), (8, 1.6)]
    # The rate of each record's last step: epochs 0.4, 1.0 and 1.4, decays at 1.0 and 1.3; the same
    # schedule as one process would follow, not scaled with the world size.
    assert [r["lr"] for r in records] == pytest.approx([0.7, 0.35, 0.175])
    # Validation is sharded over the ranks and summed: the same perplexity as one process computes.
    ckpt = load(ddp_run.dir / "ddp.pt")
    nll, tokens = evaluate(ckpt.build_model(), open_data(ddp_run.dir / "valid.s2s"), BATCH, torch.device("cpu"))
    assert records[-1]["valid_ppl"] == pytest.approx(perplexity(nll, tokens), rel=1e-6)
    rank0 = rank_stderr(ddp_run.logs, 0)
    assert rank0.count("37 pairs, vocabularies 12/10") == 1
    assert "device cpu, 2 processes (gloo), global batch 2x4" in rank0
    assert "s2s train: finished at step 8 (epoch 1.60), valid ppl" in rank0
    assert rank_stderr(ddp_run.logs, 1) == ""


def test_two_process_checkpoint_resumes_in_one_process_at_its_data_position(ddp_run: Run, tmp_path: Path) -> None:
    assert ddp_run.proc.returncode == 0, ddp_run.proc.stderr
    path = tmp_path / "m.pt"
    shutil.copy(ddp_run.dir / "ddp.pt", path)
    ckpt = load(path)
    data = open_data(ddp_run.dir / "train.s2s")
    reporter = Messages()
    # Epoch 1 has 6 of its 10 batches done: one process continues with batches 6..9 (steps 17..20).
    result = train(data, None, ckpt.model_config, replace(ckpt.train_config, epochs=2), path, resume=ckpt,
                   reporter=reporter)
    assert (result.status, result.step) == ("finished", 20)
    assert "resuming at step 16" in reporter.messages[0]
    steps = TWO_RANK_STEPS + plan(1, range(6, 10), 1, 10)
    assert_weights_close(load(path).weights, reference(data, ckpt.model_config, ckpt.train_config, steps)[0])
    assert load(path).train_state["world_size"] == 1  # type: ignore[index]


class Messages(NullReporter):
    def __init__(self) -> None:
        self.messages: list[str] = []

    def message(self, text: str) -> None:
        self.messages.append(text)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_torchrun_agents_train_like_two_machines(tmp_path: Path) -> None:
    """The several-machines command (``--nnodes 2 --node-rank R --master-addr ...``), both "machines"
    being this one with one process each: the same weights as the reference."""
    write_data(tmp_path / "train.s2s", PAIRS, seed=1)
    port = str(free_port())
    procs = [subprocess.Popen(torchrun(tmp_path / f"logs{node}", "-m", "--", "s2scli", *TRAIN, "--epochs", "1.6",
                                       "-o", "m.pt",
                                       nodes=("--nnodes", "2", "--nproc-per-node", "1", "--node-rank", str(node),
                                              "--master-addr", "127.0.0.1", "--master-port", port)),
                              cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for node in (1, 0)]
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
    assert "finished at step 8" in rank_stderr(tmp_path / "logs0", 0)
    assert rank_stderr(tmp_path / "logs1", 0) == ""  # node 1's one process is rank 1
    ckpt = load(tmp_path / "m.pt")
    data = open_data(tmp_path / "train.s2s")
    assert_weights_close(ckpt.weights, reference(data, ckpt.model_config, ckpt.train_config, TWO_RANK_STEPS)[0])


def test_one_process_checkpoint_resumes_on_two_ranks_at_its_data_position(tmp_path: Path) -> None:
    write_data(tmp_path / "train.s2s", PAIRS, seed=1)
    data = open_data(tmp_path / "train.s2s")
    model_config = ModelConfig(12, 10, layers=1, hidden=16, embedding=8)
    cfg = replace(TRAIN_CONFIG, epochs=0.3)  # 3 steps of one batch: batches 0, 1, 2 of epoch 0
    assert train(data, None, model_config, cfg, tmp_path / "m.pt").step == 3
    proc = subprocess.run(torchrun(tmp_path / "logs", "-m", "--", "s2scli", *TRAIN, "-o", "m.pt", "--resume",
                                   "--epochs", "1.6"), cwd=tmp_path, env=env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "resuming at step 2" in rank_stderr(tmp_path / "logs", 0)
    # Batch 3 cannot start a step of two (it would be taken again as the first of 2 and 3), so the two
    # ranks go on with batches 4+5, 6+7, 8+9, then epoch 1.
    steps = plan(0, range(3), 1, 10) + plan(0, range(2, 5), 2, 5) + plan(1, range(3), 2, 5)
    ckpt = load(tmp_path / "m.pt")
    assert ckpt.train_state is not None and ckpt.train_state["step"] == 8
    assert_weights_close(ckpt.weights, reference(data, model_config, cfg, steps)[0])


def test_sigint_to_torchrun_stops_both_ranks_at_one_step_with_a_resumable_checkpoint(tmp_path: Path) -> None:
    write_data(tmp_path / "train.s2s", PAIRS, seed=1)
    logs = tmp_path / "logs"
    proc = subprocess.Popen(torchrun(logs, "-m", "--", "s2scli", *TRAIN, "--epochs", "1000", "--valid-every", "1",
                                     "--max-time", "100", "-o", "m.pt", "--log", "m.jsonl"),
                            cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "m.jsonl"
    deadline = time.monotonic() + 60
    while not (log.exists() and log.read_text().count("\n") >= 2):  # both ranks are in the training loop
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.05)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)  # torchrun forwards it to both workers
    _, stderr = proc.communicate(timeout=90)
    stopped_in = time.monotonic() - sent
    assert proc.returncode != 0  # torchrun reports the signal (its own traceback) and exits 1
    # The workers ended by themselves, not by torchrun's SIGKILL after its 30 s shutdown timeout.
    assert stopped_in < 25 and "forcefully" not in stderr, stderr
    rank0 = rank_stderr(logs, 0)
    assert "SIGINT received, saving a checkpoint after this step" in rank0
    (line,) = [ln for ln in rank0.splitlines() if "interrupted at step" in ln]
    step = int(line.split("interrupted at step ")[1].split(";")[0])
    assert "resumable checkpoint saved to m.pt" in line
    assert rank_stderr(logs, 1) == ""
    # Rank 0 printed that after the last barrier, so rank 1 had left the loop at the same step.
    ckpt = load(tmp_path / "m.pt")
    state = ckpt.train_state
    assert state is not None and (state["step"], state["world_size"]) == (step, 2)
    data = open_data(tmp_path / "train.s2s")
    result = train(data, None, ckpt.model_config, replace(ckpt.train_config, epochs=state["epoch"] + 1),
                   tmp_path / "m.pt", resume=ckpt)
    assert (result.status, result.step) == ("finished", 10 * (state["epoch"] + 1))


def test_a_stop_or_a_nan_on_one_rank_stops_every_rank(tmp_path: Path) -> None:
    write_data(tmp_path / "train.s2s", PAIRS, seed=4)
    proc = subprocess.run(torchrun(tmp_path / "logs", str(WORKER), "train.s2s", str(tmp_path)), cwd=tmp_path,
                          env=env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    # Only rank 1's stop event was set, after step 3; both ranks stopped there, rank 0 saved step 3.
    assert [r["stop"] for r in ranks] == [{"status": "interrupted", "step": 3, "stop_set_here": False},
                                          {"status": "interrupted", "step": 3, "stop_set_here": True}]
    state = load(tmp_path / "stop.pt").train_state
    assert state is not None and (state["step"], state["world_size"]) == (3, 2)
    # Only rank 1's loss became NaN, at step 2; both raised the same error, the step-1 checkpoint intact.
    assert ranks[0]["nan"] == ranks[1]["nan"]
    assert "loss became nan at step 2; training stopped and the last good checkpoint" in ranks[0]["nan"]
    assert "(step 1) is intact" in ranks[0]["nan"]
    assert load(tmp_path / "nan.pt").train_state["step"] == 1  # type: ignore[index]
