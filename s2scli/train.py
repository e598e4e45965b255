"""The training loop: the paper's recipe [3.4], validation, progress, metrics log, checkpoints, resume.

The loop sees token ids only (from ``data.PreparedData``); it never tokenizes. The batch order of epoch
``e`` is a pure function of ``(seed, e)``, so the position in the data is the step count alone and a
resumed run continues exactly where the interrupted one stopped.

Several processes (``distributed.Group``, started by torchrun) split each step: every rank builds the
same batch list of the epoch, and at step ``s`` of the epoch rank ``r`` of ``W`` takes batch ``s*W + r``,
so a step consumes ``W`` batches (the global batch) and an epoch has ``floor(batches / W)`` steps; the
``batches % W`` left over are skipped that epoch (the order is reshuffled every epoch, so a different few
each time). Each rank's loss is scaled so that the gradient DDP averages is exactly that of the global
batch: its summed NLL divided by the global batch's sentences [3.4]. The learning rate is a function of
the fractional epoch, the same for any number of processes (not scaled with it). Rank 0 alone saves,
logs and reports; stops, time limits and non-finite losses are agreed on by all ranks at the same step.

A run is a few named objects that ``loop`` reads at once: ``Run`` (what stays fixed: data, configs, model,
optimizer, where output goes), ``Progress`` (the step, the validations so far, early stopping, the last
checkpoint), ``Clock`` (``--max-time`` and the time schedule), ``Window`` (the training loss since the
last validation) and ``EpochBatches``. ``validate`` returns a ``Validation`` record that ``Progress``
reads for early stopping; ``save_checkpoint`` writes a ``checkpoint.TrainState``, which ``restore`` reads
back on ``--resume``. The checks of the configs are ``config.check_train_config``'s.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from threading import Event
from typing import Any, Protocol, TextIO

import numpy as np
import torch

from .checkpoint import Checkpoint, TrainState, save
from .config import MAX_EPOCHS, ModelConfig, TrainConfig, check_train_config
from .data import Batch, DataChanged, PreparedData, epoch_seed, make_batches
from .distributed import SINGLE, Group, any_rank, barrier, check_same, sum_over_ranks, wrap
from .errors import S2SError
from .machine import SpeedMeter, resolve_precision, run_estimate
from .model import Seq2Seq, count_parameters
from .streams import TEMP_EXTRA, check_name_length
from .vocab import different_sides
from .watch import Sample, examples, pick_sample, translate_sample


class Reporter(Protocol):
    """Where progress goes; the CLI draws a progress bar or writes log lines on stderr."""

    def start(self, total_steps: int, step: int) -> None: ...

    def update(self, step: int, stats: dict[str, float]) -> None: ...

    def message(self, text: str) -> None: ...

    def close(self) -> None: ...


class NullReporter:
    def start(self, total_steps: int, step: int) -> None:
        pass

    def update(self, step: int, stats: dict[str, float]) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def best_path(out_path: str | Path) -> Path:
    """Where the best model by validation perplexity goes: ``model.pt`` -> ``model.best.pt``."""
    p = Path(out_path)
    return p.with_name(f"{p.stem}.best{p.suffix}")


def step_path(out_path: str | Path, step: int) -> Path:
    """Where ``--keep-last`` keeps the checkpoint of ``step``: ``model.pt`` -> ``model.step00001234.pt``."""
    p = Path(out_path)
    return p.with_name(f"{p.stem}.step{step:08d}{p.suffix}")


def keep_last_checkpoints(out_path: str | Path, step: int, keep: int) -> None:
    """Copy the checkpoint just saved at ``out_path`` to its step file and delete all but the newest
    ``keep`` step files of this model (a hard link where the file system allows, else a copy).

    Newest by the time they were written, not by their step number: after a ``--force`` restart the
    previous run's higher step numbers are the old files (they go first), never this run's."""
    target = step_path(out_path, step)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        os.link(out_path, tmp)
    except OSError:
        shutil.copyfile(out_path, tmp)
    os.replace(tmp, target)
    p = Path(out_path)
    pattern = re.compile(re.escape(p.stem) + r"\.step(\d{8})" + re.escape(p.suffix) + "$")
    found = []
    for f in p.parent.iterdir():
        if pattern.match(f.name):
            try:
                found.append((f.stat().st_mtime_ns, f == target, f.name, f))
            except OSError:
                continue
    found.sort()  # oldest first; the file just written last whatever the clock's resolution
    for *_, old in found[:-keep]:
        old.unlink(missing_ok=True)


def check_output_names(out_path: str | Path, cfg: TrainConfig) -> None:
    """Refuse at the start a model name too long for the files written beside it (--patience's best model,
    --keep-last's step files, each under a temporary name), rather than at the first checkpoint."""
    for path, on, extra in ((best_path(out_path), cfg.patience, TEMP_EXTRA),
                            (step_path(out_path, 0), cfg.keep_last, 5)):
        if on:
            check_name_length(str(path), Path(path), extra)


@dataclass
class TrainResult:
    status: str  # "finished", "time limit", "early stop" or "interrupted"
    step: int
    epoch: float
    valid_ppl: float | None
    history: list[dict[str, Any]] = field(default_factory=list)


def learning_rate(cfg: TrainConfig, epoch: float) -> float:
    """The rate at fractional epoch ``epoch``: ``lr`` until ``decay_start``, then multiplied by
    ``decay_factor`` at the start of every ``decay_every`` epochs [3.4]. With ``schedule="time"`` pass
    the fraction of ``max_time`` spent instead of the epoch (see ``schedule_position``)."""
    if epoch < cfg.decay_start:
        return cfg.lr
    # The epsilon keeps decimal steps exact: (5.1 - 5.0) / 0.1 is 0.999... in floating point.
    halvings = math.floor((epoch - cfg.decay_start) / cfg.decay_every + 1e-9) + 1
    return cfg.lr * cfg.decay_factor**halvings


def schedule_position(cfg: TrainConfig, epoch: float, trained_s: float) -> float:
    """Where the schedule stands: the fractional epoch, or with ``schedule="time"`` the fraction of
    ``max_time`` spent after ``trained_s`` seconds of training (resumes included)."""
    return trained_s / cfg.max_time if cfg.schedule == "time" else epoch


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Plain SGD without momentum [3.4], or Adam (beyond the paper; its rate follows the same schedule).

    Adam runs as one fused kernel over all parameters (the same update; on a CPU its element-wise work
    was a sixth of a small attention model's step), where this torch has one.
    """
    if cfg.optimizer == "adam":
        try:
            return torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)
        except (RuntimeError, TypeError):  # an older torch, or a device without the fused kernel
            return torch.optim.Adam(model.parameters(), lr=cfg.lr)
    return torch.optim.SGD(model.parameters(), lr=cfg.lr)


def check_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """A resumed optimizer's per-parameter tensors must have their parameter's shape (else the first step
    fails deep inside torch)."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            for value in optimizer.state.get(param, {}).values():
                if isinstance(value, torch.Tensor) and value.dim() and value.shape != param.shape:
                    raise ValueError("the optimizer state does not fit the weights")


def data_fingerprint(data: PreparedData) -> dict[str, Any]:
    """What identifies a training file for ``--resume``: its vocabularies and size."""
    return {"src_vocab": data.src_vocab.fingerprint(), "tgt_vocab": data.tgt_vocab.fingerprint(),
            "pairs": len(data), "tokens": int(data.offsets[-1])}


@torch.no_grad()
def evaluate(model: Seq2Seq, data: PreparedData, batch_size: int, device: torch.device,
             rank: int = 0, world_size: int = 1) -> tuple[float, int]:
    """Summed target NLL and token count over ``data`` (batches sorted by length, no shuffling).

    With ``world_size`` > 1, only this rank's share: batches ``rank``, ``rank + world_size``, ...; the
    shares' sums add up to the whole.
    """
    was_training = model.training
    model.eval()
    order = np.lexsort((data.tgt_lens, data.src_lens))
    total, tokens = 0.0, 0
    for i in range(rank * batch_size, len(order), world_size * batch_size):
        batch = data.batch(order[i : i + batch_size]).to(device)
        total += float(model(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out))
        tokens += batch.n_tokens
    model.train(was_training)
    return total, tokens


def perplexity(nll: float, tokens: int) -> float:
    return math.exp(min(nll / max(tokens, 1), 700.0))


def steps_per_epoch(n_batches: int, world_size: int) -> int:
    """Steps an epoch of ``n_batches`` batches takes on ``world_size`` ranks (each step takes one batch
    a rank); the remainder is skipped."""
    return n_batches // world_size


def resume_step(state: TrainState, per_epoch: int, world_size: int) -> int:
    """The step to continue from, for ``world_size`` ranks, of a checkpoint saved by any number of ranks.

    The same number of ranks continues at the saved step. Another number continues at the same epoch
    and the first step not before the batches already consumed in it (``batch_in_epoch``, counted over
    all ranks): no batch is taken twice in an epoch, and up to ``world_size - 1`` may be skipped.
    """
    if state.world_size == world_size:
        return state.step
    if state.epoch is None or state.batch_in_epoch is None:  # a file from before they were saved
        raise KeyError("epoch" if state.epoch is None else "batch_in_epoch")
    return state.epoch * per_epoch + min(math.ceil(state.batch_in_epoch / world_size), per_epoch)


def forward_backward(
    net: torch.nn.Module, model: Seq2Seq, batch: Batch, scale: float, clip_norm: float, precision: str = "fp32",
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step's gradient, left in ``model``'s parameters: backward of ``scale`` x the batch's summed NLL,
    then clipping to ``clip_norm`` (0: none) [3.4]. Returns the summed NLL and the norm before clipping.

    ``net`` is the model or DDP around it (its backward all-reduces, so clipping sees the averaged
    gradient). ``precision="bf16"`` runs the forward pass under bfloat16 autocast (CPU and CUDA): the
    weights, their gradients and the loss stay fp32.
    """
    device_type = batch.src.device.type
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        nll = net(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out, label_smoothing)
    (nll * scale).backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm or float("inf"))
    return nll.detach(), grad_norm


class Clock:
    """The run's time: the seconds trained before (earlier runs, from the checkpoint) and in this run.

    It owns ``--max-time`` and the time schedule: where the learning-rate schedule stands (the fractional
    epoch, or with ``schedule="time"`` the fraction of ``max_time`` spent), and when the time is up
    (``--max-time`` limits this run, or with ``schedule="time"`` the model's whole training time).
    """

    def __init__(self, cfg: TrainConfig, before: float) -> None:
        self.cfg, self.before, self.start = cfg, before, time.monotonic()
        self.agreed = before  # seconds trained so far as every rank agrees (set after each step)

    def trained(self, now: float | None = None) -> float:
        """Training time of the model so far (or at ``now``, a ``time.monotonic()``): earlier runs and this one."""
        return self.before + (time.monotonic() if now is None else now) - self.start

    def elapsed(self) -> float:
        """Seconds of this run."""
        return time.monotonic() - self.start

    def learning_rate(self, epoch: float) -> float:
        """The rate at fractional epoch ``epoch`` and the agreed training time."""
        return learning_rate(self.cfg, schedule_position(self.cfg, epoch, self.agreed))

    def spent(self) -> float:
        """The seconds ``--max-time`` counts."""
        return self.trained() if self.cfg.schedule == "time" else self.elapsed()

    def out_of_time(self, spent: float) -> bool:
        return bool(self.cfg.max_time) and spent >= self.cfg.max_time

    def eta(self, steps_left: int, steps_done: int, spent: float) -> float:
        """Seconds left: the steps left at this run's speed so far, or less when the time runs out first."""
        remaining = steps_left * (self.elapsed() / max(steps_done, 1))
        return min(remaining, max(self.cfg.max_time - spent, 0.0)) if self.cfg.max_time else remaining


@dataclass
class Window:
    """The training loss since the last validation (or the start of the run)."""

    nll: float = 0.0
    tokens: int = 0
    start: float = field(default_factory=time.monotonic)

    def add(self, nll: float, tokens: int) -> None:
        self.nll += nll
        self.tokens += tokens

    def rate(self) -> float:
        """Target tokens a second."""
        return self.tokens / max(time.monotonic() - self.start, 1e-9)


@dataclass(frozen=True)
class Validation:
    """One validation: its line of the metrics log, and the example translations to print."""

    record: dict[str, Any]
    examples: list[str]

    @property
    def ppl(self) -> float | None:
        return self.record.get("valid_ppl")


@dataclass
class Progress:
    """Where this run stands: the step, the validations so far, early stopping, the last checkpoint."""

    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_ppl: float = math.inf  # early stopping [--patience]: the best perplexity ...
    since_best: int = 0  # ... and how many validations ago
    last_saved: int | None = None
    valid_ppl: float | None = None  # the last validation's perplexity
    trained_before: float = 0.0  # seconds of training in earlier runs (resumes)

    def record(self, validation: Validation) -> bool:
        """Add a validation; returns whether it set a new best perplexity."""
        self.history.append(validation.record)
        if validation.ppl is None:
            return False
        self.valid_ppl = validation.ppl
        improved = validation.ppl < self.best_ppl
        self.best_ppl, self.since_best = (validation.ppl, 0) if improved else (self.best_ppl, self.since_best + 1)
        return improved


@dataclass
class Run:
    """What stays fixed during a run: the data, the configs, the model and its optimizer, where output goes."""

    data: PreparedData
    valid: PreparedData | None
    model_config: ModelConfig
    cfg: TrainConfig
    out_path: str | Path
    device: torch.device
    group: Group
    reporter: Reporter
    log: TextIO | None
    model: Seq2Seq
    optimizer: torch.optim.Optimizer
    per_epoch: int
    fingerprint: dict[str, Any]
    net: torch.nn.Module  # what a step runs: the model, or DDP around it once a resume is restored
    sample: Sample | None = None

    @property
    def world(self) -> int:
        return self.group.world_size

    @property
    def total_steps(self) -> int:
        return max(1, math.ceil(self.cfg.epochs * self.per_epoch))

    @property
    def valid_every(self) -> int:
        return self.cfg.valid_every or max(1, self.per_epoch // 2)  # at least every half epoch


def check_inputs(data: PreparedData, valid: PreparedData | None, cfg: TrainConfig) -> None:
    """Refuse data that cannot be trained or validated on, with the file's name."""
    if len(data) == 0:
        raise S2SError(f"{data.name}: no sentence pairs to train on")
    if valid is not None and len(valid) == 0:  # validation would silently never happen
        raise S2SError(f"{valid.name}: no sentence pairs to validate on (--valid)")
    if cfg.patience and valid is None:
        raise S2SError("--patience needs --valid (early stopping watches validation perplexity)")
    if valid is None:
        return
    differ = different_sides((valid.src_vocab, valid.tgt_vocab), (data.src_vocab, data.tgt_vocab))
    if differ:
        raise S2SError(f"{valid.name} and {data.name} were prepared with different {differ[0]} vocabularies")


def epoch_steps(data: PreparedData, cfg: TrainConfig, world: int) -> int:
    """Steps an epoch of ``data`` takes on ``world`` ranks; refused when there are none."""
    n_batches = math.ceil(len(data) / cfg.batch_size)
    per_epoch = steps_per_epoch(n_batches, world)
    if per_epoch == 0:
        raise S2SError(f"{data.name}: its {n_batches} batches of {cfg.batch_size} cannot give each of "
                       f"{world} processes one; use a smaller --batch-size or fewer processes")
    return per_epoch


def restore(run: Run, resume: Checkpoint) -> Progress:
    """Load a checkpoint's weights, optimizer and random state into ``run``; returns where it stood.
    A damaged or hostile training state is refused in one line, not met as a crash later."""
    if resume.train_state is None:
        raise S2SError(f"{run.out_path}: has no training state to resume from")
    try:
        state = TrainState.from_dict(resume.train_state)
    except RESUME_ERRORS as exc:
        raise damaged_state(run.out_path, exc) from None
    if state.data != run.fingerprint:
        raise S2SError(f"{run.data.name} is not the data {run.out_path} was trained on; cannot resume")
    run.model.load_state_dict(resume.weights)
    try:
        run.optimizer.load_state_dict(state.optimizer)
        check_optimizer_state(run.optimizer)
        torch.set_rng_state(state.rng)
        step = resume_step(state, run.per_epoch, run.world)
    except RESUME_ERRORS as exc:
        raise damaged_state(run.out_path, exc) from None
    if not (0 <= step <= MAX_EPOCHS * run.per_epoch and 0 <= state.elapsed < math.inf and state.since_best >= 0
            and all(isinstance(r, dict) for r in state.history)):
        raise S2SError(f"{run.out_path}: damaged training state (step {step}, elapsed {state.elapsed}); "
                       "cannot resume")
    return Progress(step, state.history, state.best_valid_ppl, state.since_best, last_saved=step,
                    valid_ppl=state.history[-1].get("valid_ppl") if state.history else None,
                    trained_before=state.elapsed)


RESUME_ERRORS = (KeyError, TypeError, ValueError, RuntimeError, IndexError, OverflowError)


def damaged_state(out_path: str | Path, exc: Exception) -> S2SError:
    return S2SError(f"{out_path}: damaged training state ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0][:100] if str(exc) else ''}); cannot resume")


def announce(run: Run, step: int, resumed: bool, chosen: str) -> None:
    """The run's first line: the data, the model, the device, the preset, where it resumes."""
    m, cfg, group = run.model_config, run.cfg, run.group
    processes = (f", {run.world} processes ({group.backend}), global batch {run.world}x{cfg.batch_size}"
                 if run.world > 1 else "")
    run.reporter.message(f"{len(run.data)} pairs, vocabularies {m.src_vocab_size}/{m.tgt_vocab_size}, "
                         f"{m.layers}x{m.hidden} LSTM, {count_parameters(run.model):,} parameters, "
                         f"device {run.device}{processes}, precision {cfg.precision}"
                         + (f" ({chosen})" if chosen else "") + (f", preset {cfg.preset}" if cfg.preset else "")
                         + (f", resuming at step {step}" if resumed else ""))


def save_checkpoint(run: Run, at: Progress, clock: Clock, improved: bool) -> None:
    """Save the model and its training state (rank 0), also as the best model when ``improved``."""
    if run.group.is_main:
        state = TrainState(step=at.step, epoch=at.step // run.per_epoch,
                           batch_in_epoch=at.step % run.per_epoch * run.world, world_size=run.world,
                           elapsed=clock.trained(), rng=torch.get_rng_state(), optimizer=run.optimizer.state_dict(),
                           data=run.fingerprint, history=at.history, best_valid_ppl=at.best_ppl,
                           since_best=at.since_best)
        weights = {k: v.detach().to("cpu", copy=True) for k, v in run.model.state_dict().items()}
        ckpt = Checkpoint(run.model_config, run.cfg, run.data.src_vocab, run.data.tgt_vocab, weights,
                          state.to_dict())
        save(ckpt, run.out_path)
        if run.cfg.patience and improved:
            save(ckpt, best_path(run.out_path))
        if run.cfg.keep_last:
            keep_last_checkpoints(run.out_path, at.step, run.cfg.keep_last)
    at.last_saved = at.step


def validate(run: Run, step: int, lr: float, window: Window, clock: Clock) -> Validation:
    """Score the validation data (each rank its share) and the greedy sample; the metrics log's record."""
    now = time.monotonic()
    record: dict[str, Any] = {
        "step": step,
        "epoch": round(step / run.per_epoch, 4),
        "lr": lr,  # the rate of the last step
        "train_loss": window.nll / max(window.tokens, 1),
        "train_ppl": perplexity(window.nll, window.tokens),
        "tokens_per_s": window.tokens / max(now - window.start, 1e-9),
        "elapsed_s": round(clock.trained(now), 3),
    }
    if run.valid is not None and len(run.valid):
        # Each rank scores its share of the validation batches; the sums are added up.
        nll, tokens = sum_over_ranks(run.group, evaluate(run.model, run.valid, run.cfg.batch_size, run.device,
                                                         run.group.rank, run.world))
        tokens = int(tokens)
        record.update(valid_loss=nll / tokens, valid_ppl=perplexity(nll, tokens))
    shown: list[str] = []
    if run.sample is not None and run.sample.indices:  # rank 0 alone: the others wait at the next step
        scored = translate_sample(run.model, run.sample, run.data.tgt_vocab, run.device)
        record.update(valid_bleu=round(scored.bleu, 2), valid_chrf=round(scored.chrf, 2),
                      valid_bleu_sentences=len(run.sample.indices), valid_bleu_s=round(scored.seconds, 3))
        shown = examples(run.sample, scored, run.cfg.valid_examples)
    return Validation(record, shown)


def report_validation(run: Run, validation: Validation) -> None:
    """Write a validation to the metrics log and as a progress line (with its examples)."""
    record = validation.record
    if run.log is not None:
        run.log.write(json.dumps(record) + "\n")
        run.log.flush()
    run.reporter.message(
        f"step {record['step']} epoch {record['epoch']:.2f}: train ppl {record['train_ppl']:.2f}"
        + (f", valid ppl {record['valid_ppl']:.2f}" if "valid_ppl" in record else "")
        + (f", greedy BLEU {record['valid_bleu']:.1f} chrF {record['valid_chrf']:.1f} on "
           f"{record['valid_bleu_sentences']} sentences ({record['valid_bleu_s']:.1f} s)"
           if "valid_bleu" in record else "")
        + f", lr {record['lr']:.4g}, {record['tokens_per_s']:.0f} tok/s"
    )
    for line in validation.examples:
        run.reporter.message(line)


class EpochBatches:
    """The batches of each step: epoch ``e``'s order is a function of ``(seed, e)``, built once an epoch."""

    def __init__(self, run: Run) -> None:
        self.run, self.epoch, self.batches = run, -1, []

    def shares(self, step: int) -> list[np.ndarray]:
        """The global batch of ``step``: one share a rank."""
        run = self.run
        epoch, position = divmod(step, run.per_epoch)
        if epoch != self.epoch:
            self.batches = make_batches(run.data.src_lens, run.data.tgt_lens, run.cfg.batch_size,
                                        epoch_seed(run.cfg.seed, epoch))
            self.epoch = epoch
        return self.batches[position * run.world : (position + 1) * run.world]


def train_step(run: Run, shares: list[np.ndarray], lr: float, clock: Clock, at: Progress) -> tuple[float, int]:
    """One optimizer step on the global batch ``shares``; returns its summed NLL and target tokens (all
    ranks), and sets the agreed training time. A loss or gradient that is not finite stops the run."""
    batch = run.data.batch(shares[run.group.rank]).to(run.device)
    sentences = sum(len(share) for share in shares)
    for param_group in run.optimizer.param_groups:
        param_group["lr"] = lr
    # [3.4] the gradient divided by the batch size: DDP averages the ranks' gradients, so each
    # rank's NLL x world / the global batch's sentences gives the global batch's (one rank: nll / B).
    nll, grad_norm = forward_backward(run.net, run.model, batch, run.world / sentences, run.cfg.clip_norm,
                                      run.cfg.precision, run.cfg.label_smoothing)
    # The loss and tokens of the global batch, and the training clock every rank agrees on.
    nll_value, n_tokens, agreed = sum_over_ranks(run.group, [float(nll.detach()), batch.n_tokens, clock.trained()])
    clock.agreed = agreed / run.world
    if not (math.isfinite(nll_value) and math.isfinite(float(grad_norm))):
        what = "loss" if not math.isfinite(nll_value) else "gradient norm"
        kept = (f"the last good checkpoint {run.out_path} (step {at.last_saved}) is intact"
                if at.last_saved is not None else "no checkpoint had been written yet")
        raise S2SError(f"{what} became {nll_value if what == 'loss' else float(grad_norm)} at step "
                       f"{at.step + 1}; training stopped and {kept} (try a lower --lr)")
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return nll_value, int(n_tokens)


def report_step(run: Run, at: Progress, first_step: int, loss: tuple[float, int], lr: float, window: Window,
                clock: Clock, spent: float) -> None:
    """The progress of a step: loss, speed, rate, epoch and the time left."""
    nll, tokens = loss
    eta = clock.eta(run.total_steps - at.step, at.step - first_step, spent)
    run.reporter.update(at.step, {"loss": nll / tokens, "ppl": perplexity(nll, tokens), "tok_s": window.rate(),
                                  "lr": lr, "epoch": at.step / run.per_epoch, "eta_s": eta})


def estimate_once(run: Run, meter: SpeedMeter, tokens: int) -> None:
    """After the first steps, once: the run's time at their speed (``machine.run_estimate``)."""
    speed = meter.after_step(tokens)
    if speed is not None:
        run.reporter.message(run_estimate(speed[0], run.per_epoch, run.cfg.epochs, run.cfg.max_time, speed[1],
                                          str(run.device), run.cfg.preset)[0])


def loop(run: Run, at: Progress, clock: Clock, stop: Event) -> str:
    """Train from ``at.step`` until the epochs, the time or the patience run out, or ``stop`` is set:
    validate and save at every ``valid_every`` steps and at the end. Returns how the run ended."""
    cfg, batches, window, meter, first_step = run.cfg, EpochBatches(run), Window(), SpeedMeter(), at.step
    # With --schedule time the run ends on the clock: no step count to show progress against.
    run.reporter.start(run.total_steps if cfg.schedule != "time" else 0, at.step)
    while at.step < run.total_steps:
        lr = clock.learning_rate(at.step / run.per_epoch)
        loss = train_step(run, batches.shares(at.step), lr, clock, at)
        at.step += 1
        window.add(*loss)
        estimate_once(run, meter, loss[1])
        spent = clock.spent()
        report_step(run, at, first_step, loss, lr, window, clock, spent)
        # Decided once, by all ranks together: a signal or the clock on any rank stops every rank here.
        stopping, out_of_time = any_rank(run.group, [stop.is_set(), clock.out_of_time(spent)])
        if at.step % run.valid_every == 0 or at.step == run.total_steps or out_of_time or stopping:
            improved = False
            if not stopping:
                validation = validate(run, at.step, lr, window, clock)
                improved = at.record(validation)
                report_validation(run, validation)
                window = Window()
            save_checkpoint(run, at, clock, improved)
        if stopping:
            return "interrupted"
        if cfg.patience and at.since_best >= cfg.patience and at.step < run.total_steps:
            # the last checkpoint was just written by the validation above
            run.reporter.message(f"no better validation perplexity in {at.since_best} validations; stopping "
                                 f"(best {at.best_ppl:.2f} kept in {best_path(run.out_path)})")
            return "early stop"
        if out_of_time and at.step < run.total_steps:
            return "time limit"
    return "finished"


def start_run(data: PreparedData, valid: PreparedData | None, model_config: ModelConfig, cfg: TrainConfig,
              out_path: str | Path, device: torch.device, group: Group, reporter: Reporter,
              log: TextIO | None) -> Run:
    """The model (seeded) on its device, its optimizer, and what stays fixed for the run."""
    if group.world_size > 1 and not group.active:
        raise ValueError("train: start the process group first (distributed.started)")
    per_epoch = epoch_steps(data, cfg, group.world_size)
    torch.manual_seed(cfg.seed)
    # On the device before the optimizer exists: a resumed optimizer's state then lands beside the weights.
    model = Seq2Seq(model_config).to(device)
    sample = pick_sample(valid, cfg.valid_bleu) if valid is not None and cfg.valid_bleu and group.is_main else None
    return Run(data, valid, model_config, cfg, out_path, device, group, reporter, log, model,
               make_optimizer(model, cfg), per_epoch, data_fingerprint(data), net=model, sample=sample)


def train(
    data: PreparedData,
    valid: PreparedData | None,
    model_config: ModelConfig,
    cfg: TrainConfig,
    out_path: str | Path,
    *,
    resume: Checkpoint | None = None,
    device: torch.device | str = "cpu",
    reporter: Reporter | None = None,
    log: TextIO | None = None,
    stop: Event | None = None,
    group: Group = SINGLE,
) -> TrainResult:
    """Train a model on ``data`` and save it to ``out_path``; returns how training ended.

    ``resume``: a checkpoint from an earlier run; the caller passes its configs (see ``config.resume_configs``). ``stop``: set
    it (from a signal handler) to save a resumable checkpoint and return "interrupted" after the current
    step. ``log`` receives one JSON line per validation. ``group``: this process's place among several,
    already started (``distributed.started``), with ``device`` its own; only rank 0 writes ``out_path``
    and ``log`` and reports, so the others should get no ``log`` and no reporter.
    """
    check_train_config(model_config, cfg)
    check_inputs(data, valid, cfg)
    device = torch.device(device)
    precision, chosen = resolve_precision(cfg.precision, device)
    cfg = replace(cfg, precision=precision)  # the model file records what ran, not "auto"
    run = start_run(data, valid, model_config, cfg, out_path, device, group, reporter or NullReporter(), log)
    at = restore(run, resume) if resume is not None else Progress()
    check_same(group, [len(data), run.fingerprint["tokens"], at.step],
               "the training data and the step to resume from")
    run.model.train()
    run.net = wrap(run.model, group)
    announce(run, at.step, resume is not None, chosen)
    clock = Clock(cfg, at.trained_before)
    try:
        status = loop(run, at, clock, stop or Event())
        barrier(group)  # no rank exits before rank 0 has written the model file
    except DataChanged as exc:
        # The data was rewritten under the run: keep the steps done, resumable once the data is back.
        if at.step != at.last_saved and at.step > 0:
            save_checkpoint(run, at, clock, improved=False)
        kept = (f"resumable checkpoint of step {at.step} saved to {out_path}" if at.last_saved is not None
                else "no step was completed, nothing saved")
        raise DataChanged(f"{exc}; training stopped, {kept}") from None
    finally:
        run.reporter.close()
    return TrainResult(status, at.step, at.step / run.per_epoch, at.valid_ppl, at.history)
