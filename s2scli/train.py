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

from .checkpoint import Checkpoint, save
from .config import MAX_EPOCHS, OPTIMIZERS, SCHEDULES, TRAIN_PRECISIONS, ModelConfig, TrainConfig
from .data import Batch, DataChanged, PreparedData, epoch_seed, make_batches
from .distributed import SINGLE, Group, any_rank, barrier, check_same, sum_over_ranks, wrap
from .errors import S2SError
from .streams import TEMP_EXTRA, check_name_length
from .machine import SpeedMeter, resolve_precision, run_estimate
from .model import ATTENTIONS, Seq2Seq, count_parameters
from .watch import examples, pick_sample, translate_sample


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


# Sizes beyond this are refused (an overflow or an allocation of terabytes otherwise): the paper's are 1000.
MAX_SIZE = 1 << 20
# --lr and --init-scale beyond this overflow float32 sooner or later (the paper's are 0.7 and 0.08).
MAX_RATE = 1e6


def check_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """A resumed optimizer's per-parameter tensors must have their parameter's shape (else the first step
    fails deep inside torch)."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            for value in optimizer.state.get(param, {}).values():
                if isinstance(value, torch.Tensor) and value.dim() and value.shape != param.shape:
                    raise ValueError("the optimizer state does not fit the weights")


def check_config(model: ModelConfig, cfg: TrainConfig) -> None:
    """Refuse settings out of range with the option's name."""
    checks = [
        (model.layers >= 1, f"--layers must be at least 1, got {model.layers}"),
        (model.hidden >= 1, f"--hidden must be at least 1, got {model.hidden}"),
        (model.embedding >= 1, f"--embedding must be at least 1, got {model.embedding}"),
        (0 <= model.init_scale < math.inf, f"--init-scale must be finite and not negative, got {model.init_scale}"),
        (cfg.batch_size >= 1, f"--batch-size must be at least 1, got {cfg.batch_size}"),
        (cfg.lr > 0 and math.isfinite(cfg.lr), f"--lr must be positive, got {cfg.lr}"),
        (0 < cfg.epochs <= MAX_EPOCHS, f"--epochs must be positive and at most {MAX_EPOCHS:g}, got {cfg.epochs}"),
        (0 < cfg.decay_every < math.inf, f"--decay-every must be positive and finite, got {cfg.decay_every}"),
        (0 < cfg.decay_factor <= 1, f"--decay-factor must be in (0, 1], got {cfg.decay_factor}"),
        (0 <= cfg.decay_start < math.inf, f"--decay-start must be finite and not negative, got {cfg.decay_start}"),
        (0 <= cfg.clip_norm < math.inf, f"--clip-norm must be finite and not negative (0 = off), got {cfg.clip_norm}"),
        (cfg.valid_every >= 0, f"--valid-every must not be negative, got {cfg.valid_every}"),
        (cfg.max_time >= 0, f"--max-time must not be negative, got {cfg.max_time}"),
        (cfg.patience >= 0, f"--patience must not be negative, got {cfg.patience}"),
        (cfg.keep_last >= 0, f"--keep-last must not be negative, got {cfg.keep_last}"),
        (cfg.precision in TRAIN_PRECISIONS,
         f"--precision must be one of {', '.join(TRAIN_PRECISIONS)}, got {cfg.precision!r}"),
        (cfg.valid_bleu >= 0, f"--valid-bleu must not be negative, got {cfg.valid_bleu}"),
        (cfg.valid_examples >= 0, f"--valid-examples must not be negative, got {cfg.valid_examples}"),
        (model.attention in ATTENTIONS, f"--attention must be one of {', '.join(ATTENTIONS)}, got {model.attention!r}"),
        (0 <= model.dropout < 1, f"--dropout must be in [0, 1), got {model.dropout}"),
        (cfg.optimizer in OPTIMIZERS, f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {cfg.optimizer!r}"),
        (0 <= cfg.label_smoothing < 1, f"--label-smoothing must be in [0, 1), got {cfg.label_smoothing}"),
        (cfg.schedule in SCHEDULES, f"--schedule must be one of {', '.join(SCHEDULES)}, got {cfg.schedule!r}"),
        (cfg.schedule != "time" or cfg.max_time > 0, "--schedule time needs --max-time (the training-time "
         "budget the schedule is spread over)"),
        (cfg.schedule != "time" or cfg.decay_start <= 1, "--schedule time reads --decay-start as a fraction of "
         f"--max-time, in [0, 1]; got {cfg.decay_start}"),
    ]
    checks += [(size <= MAX_SIZE, f"{option} must be at most {MAX_SIZE}, got {size}") for option, size in (
        ("--layers", model.layers), ("--hidden", model.hidden), ("--embedding", model.embedding),
        ("--batch-size", cfg.batch_size))]
    checks += [(model.init_scale <= MAX_RATE, f"--init-scale must be at most {MAX_RATE:g}, got {model.init_scale}"),
               (cfg.lr <= MAX_RATE, f"--lr must be at most {MAX_RATE:g}, got {cfg.lr}"),
               (-(2**63) <= cfg.seed < 2**63, f"--seed must fit in 64 bits, got {cfg.seed}")]
    for ok, message in checks:
        if not ok:
            raise S2SError(message)


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


def resume_step(state: dict[str, Any], per_epoch: int, world_size: int) -> int:
    """The step to continue from, for ``world_size`` ranks, of a checkpoint saved by any number of ranks.

    The same number of ranks continues at the saved step. Another number continues at the same epoch
    and the first step not before the batches already consumed in it (``batch_in_epoch``, counted over
    all ranks): no batch is taken twice in an epoch, and up to ``world_size - 1`` may be skipped.
    """
    if int(state.get("world_size", 1)) == world_size:
        return int(state["step"])
    epoch, done = int(state["epoch"]), int(state["batch_in_epoch"])
    return epoch * per_epoch + min(math.ceil(done / world_size), per_epoch)


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
    check_config(model_config, cfg)
    if len(data) == 0:
        raise S2SError(f"{data.name}: no sentence pairs to train on")
    if valid is not None and len(valid) == 0:  # validation would silently never happen
        raise S2SError(f"{valid.name}: no sentence pairs to validate on (--valid)")
    if cfg.patience and valid is None:
        raise S2SError("--patience needs --valid (early stopping watches validation perplexity)")
    if valid is not None:
        for side in ("src_vocab", "tgt_vocab"):
            if getattr(valid, side) != getattr(data, side):
                raise S2SError(f"{valid.name} and {data.name} were prepared with different "
                               f"{'source' if side == 'src_vocab' else 'target'} vocabularies")
    device = torch.device(device)
    precision, chosen = resolve_precision(cfg.precision, device)
    cfg = replace(cfg, precision=precision)  # the model file records what ran, not "auto"
    reporter = reporter or NullReporter()
    stop = stop or Event()
    world = group.world_size
    if world > 1 and not group.active:
        raise ValueError("train: start the process group first (distributed.started)")
    n_batches = math.ceil(len(data) / cfg.batch_size)
    per_epoch = steps_per_epoch(n_batches, world)
    if per_epoch == 0:
        raise S2SError(f"{data.name}: its {n_batches} batches of {cfg.batch_size} cannot give each of "
                       f"{world} processes one; use a smaller --batch-size or fewer processes")

    torch.manual_seed(cfg.seed)
    # On the device before the optimizer exists: a resumed optimizer's state then lands beside the weights.
    model = Seq2Seq(model_config).to(device)
    optimizer = make_optimizer(model, cfg)
    step, elapsed_before = 0, 0.0
    history: list[dict[str, Any]] = []
    best_ppl, since_best = math.inf, 0  # early stopping [--patience]: the best perplexity and how long ago
    improved = False  # the last validation set a new best (snapshot then also writes the best model)
    fingerprint = data_fingerprint(data)
    if resume is not None:
        state = resume.train_state
        if state is None:
            raise S2SError(f"{out_path}: has no training state to resume from")
        if state.get("data") != fingerprint:
            raise S2SError(f"{data.name} is not the data {out_path} was trained on; cannot resume")
        model.load_state_dict(resume.weights)
        try:  # a damaged or hostile training state is refused in one line, not met as a crash later
            optimizer.load_state_dict(state["optimizer"])
            check_optimizer_state(optimizer)
            torch.set_rng_state(state["rng"])
            step, elapsed_before = resume_step(state, per_epoch, world), float(state["elapsed"])
            history = list(state.get("history", []))
            best_ppl, since_best = float(state.get("best_valid_ppl", math.inf)), int(state.get("since_best", 0))
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, OverflowError) as exc:
            raise S2SError(f"{out_path}: damaged training state ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0][:100] if str(exc) else ''}); cannot resume") from None
        if not (0 <= step <= MAX_EPOCHS * per_epoch and 0 <= elapsed_before < math.inf and since_best >= 0
                and all(isinstance(r, dict) for r in history)):
            raise S2SError(f"{out_path}: damaged training state (step {step}, elapsed {elapsed_before}); "
                           "cannot resume")
    check_same(group, [len(data), fingerprint["tokens"], step], "the training data and the step to resume from")
    model.train()
    net = wrap(model, group)  # what the training step runs: the model, or DDP around it
    processes = (f", {world} processes ({group.backend}), global batch {world}x{cfg.batch_size}"
                 if world > 1 else "")
    reporter.message(f"{len(data)} pairs, vocabularies {model_config.src_vocab_size}/{model_config.tgt_vocab_size}, "
                     f"{model_config.layers}x{model_config.hidden} LSTM, {count_parameters(model):,} parameters, "
                     f"device {device}{processes}, precision {precision}" + (f" ({chosen})" if chosen else "")
                     + (f", preset {cfg.preset}" if cfg.preset else "")
                     + (f", resuming at step {step}" if resume is not None else ""))
    sample = pick_sample(valid, cfg.valid_bleu) if valid is not None and cfg.valid_bleu and group.is_main else None

    total_steps = max(1, math.ceil(cfg.epochs * per_epoch))
    valid_every = cfg.valid_every or max(1, per_epoch // 2)  # at least every half epoch
    last_saved = step if resume is not None else None
    start = time.monotonic()
    window_nll, window_tokens, window_start = 0.0, 0, time.monotonic()
    window_steps = 0
    epoch_batches: list[np.ndarray] = []
    current_epoch = -1
    status = "finished"
    valid_ppl: float | None = history[-1].get("valid_ppl") if history else None

    def trained_seconds() -> float:
        """Training time of the model so far: earlier runs (from the checkpoint) and this one."""
        return elapsed_before + time.monotonic() - start

    def snapshot() -> None:
        nonlocal last_saved, improved
        train_state = {
            "step": step,  # the schedule and the data position follow from it (and the seed)
            "epoch": step // per_epoch,
            "batch_in_epoch": step % per_epoch * world,  # batches of the epoch consumed, all ranks together
            "world_size": world,
            "elapsed": trained_seconds(),
            "rng": torch.get_rng_state(),
            "optimizer": optimizer.state_dict(),
            "data": fingerprint,
            "history": history,
            "best_valid_ppl": best_ppl,
            "since_best": since_best,
        }
        if group.is_main:
            weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            save(Checkpoint(model_config, cfg, data.src_vocab, data.tgt_vocab, weights, train_state), out_path)
            if cfg.patience and improved:
                save(Checkpoint(model_config, cfg, data.src_vocab, data.tgt_vocab, weights, train_state),
                     best_path(out_path))
            if cfg.keep_last:
                keep_last_checkpoints(out_path, step, cfg.keep_last)
        last_saved = step
        improved = False

    def validate() -> None:
        nonlocal window_nll, window_tokens, window_start, window_steps, valid_ppl, best_ppl, since_best, improved
        now = time.monotonic()
        record: dict[str, Any] = {
            "step": step,
            "epoch": round(step / per_epoch, 4),
            "lr": lr,  # the rate of the last step
            "train_loss": window_nll / max(window_tokens, 1),
            "train_ppl": perplexity(window_nll, window_tokens),
            "tokens_per_s": window_tokens / max(now - window_start, 1e-9),
            "elapsed_s": round(elapsed_before + now - start, 3),
        }
        if valid is not None and len(valid):
            # Each rank scores its share of the validation batches; the sums are added up.
            nll, tokens = sum_over_ranks(group, evaluate(model, valid, cfg.batch_size, device, group.rank, world))
            tokens = int(tokens)
            valid_ppl = perplexity(nll, tokens)
            record.update(valid_loss=nll / tokens, valid_ppl=valid_ppl)
            improved = valid_ppl < best_ppl
            best_ppl, since_best = (valid_ppl, 0) if improved else (best_ppl, since_best + 1)
        shown: list[str] = []
        if sample is not None and sample.indices:  # rank 0 alone: the others wait at the next step
            scored = translate_sample(model, sample, data.tgt_vocab, device)
            record.update(valid_bleu=round(scored.bleu, 2), valid_chrf=round(scored.chrf, 2),
                          valid_bleu_sentences=len(sample.indices), valid_bleu_s=round(scored.seconds, 3))
            shown = examples(sample, scored, cfg.valid_examples)
        history.append(record)
        if log is not None:
            log.write(json.dumps(record) + "\n")
            log.flush()
        reporter.message(
            f"step {step} epoch {record['epoch']:.2f}: train ppl {record['train_ppl']:.2f}"
            + (f", valid ppl {record['valid_ppl']:.2f}" if "valid_ppl" in record else "")
            + (f", greedy BLEU {record['valid_bleu']:.1f} chrF {record['valid_chrf']:.1f} on "
               f"{record['valid_bleu_sentences']} sentences ({record['valid_bleu_s']:.1f} s)"
               if "valid_bleu" in record else "")
            + f", lr {record['lr']:.4g}, {record['tokens_per_s']:.0f} tok/s"
        )
        for line in shown:
            reporter.message(line)
        window_nll, window_tokens, window_start, window_steps = 0.0, 0, time.monotonic(), 0

    first_step = step
    meter = SpeedMeter()  # the first progress line: the run's time at the speed of its first steps
    clock = elapsed_before  # seconds trained so far, as every rank agrees (the time schedule's clock)
    # With --schedule time the run ends on the clock: no step count to show progress against.
    reporter.start(total_steps if cfg.schedule != "time" else 0, step)
    try:
        while step < total_steps:
            epoch, position = divmod(step, per_epoch)
            if epoch != current_epoch:
                epoch_batches = make_batches(data.src_lens, data.tgt_lens, cfg.batch_size,
                                             epoch_seed(cfg.seed, epoch))
                current_epoch = epoch
            shares = epoch_batches[position * world : (position + 1) * world]  # this step's global batch
            batch = data.batch(shares[group.rank]).to(device)
            sentences = sum(len(share) for share in shares)
            lr = learning_rate(cfg, schedule_position(cfg, step / per_epoch, clock))
            for param_group in optimizer.param_groups:
                param_group["lr"] = lr
            # [3.4] the gradient divided by the batch size: DDP averages the ranks' gradients, so each
            # rank's NLL x world / the global batch's sentences gives the global batch's (one rank: nll / B).
            nll, grad_norm = forward_backward(net, model, batch, world / sentences, cfg.clip_norm, cfg.precision,
                                             cfg.label_smoothing)
            # The loss and tokens of the global batch, and the training clock every rank agrees on.
            nll_value, n_tokens, clock = sum_over_ranks(group, [float(nll.detach()), batch.n_tokens,
                                                                trained_seconds()])
            n_tokens, clock = int(n_tokens), clock / world
            if not (math.isfinite(nll_value) and math.isfinite(float(grad_norm))):
                what = "loss" if not math.isfinite(nll_value) else "gradient norm"
                kept = (f"the last good checkpoint {out_path} (step {last_saved}) is intact"
                        if last_saved is not None else "no checkpoint had been written yet")
                raise S2SError(f"{what} became {nll_value if what == 'loss' else float(grad_norm)} at step "
                               f"{step + 1}; training stopped and {kept} (try a lower --lr)")
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            window_nll += nll_value
            window_tokens += n_tokens
            window_steps += 1
            elapsed = time.monotonic() - start
            speed = meter.after_step(n_tokens)
            if speed is not None:
                reporter.message(run_estimate(speed[0], per_epoch, cfg.epochs, cfg.max_time, speed[1],
                                              str(device), cfg.preset)[0])
            rate = window_tokens / max(time.monotonic() - window_start, 1e-9)
            remaining = (total_steps - step) * (elapsed / max(step - first_step, 1))
            # --max-time limits this run, or with --schedule time the model's whole training time.
            spent = trained_seconds() if cfg.schedule == "time" else elapsed
            if cfg.max_time:
                remaining = min(remaining, max(cfg.max_time - spent, 0.0))
            reporter.update(step, {"loss": nll_value / n_tokens, "ppl": perplexity(nll_value, n_tokens),
                                   "tok_s": rate, "lr": lr, "epoch": step / per_epoch, "eta_s": remaining})
            # Decided once, by all ranks together: a signal or the clock on any rank stops every rank here.
            stopping, out_of_time = any_rank(group, [stop.is_set(), bool(cfg.max_time) and spent >= cfg.max_time])
            if step % valid_every == 0 or step == total_steps or out_of_time or stopping:
                if not stopping:
                    validate()
                snapshot()
            if stopping:
                status = "interrupted"
                break
            if cfg.patience and since_best >= cfg.patience and step < total_steps:
                status = "early stop"  # the last checkpoint was just written by the validation above
                reporter.message(f"no better validation perplexity in {since_best} validations; stopping "
                                 f"(best {best_ppl:.2f} kept in {best_path(out_path)})")
                break
            if out_of_time and step < total_steps:
                status = "time limit"
                break
        barrier(group)  # no rank exits before rank 0 has written the model file
    except DataChanged as exc:
        # The data was rewritten under the run: keep the steps done, resumable once the data is back.
        if step != last_saved and step > 0:
            snapshot()
        kept = (f"resumable checkpoint of step {step} saved to {out_path}" if last_saved is not None
                else "no step was completed, nothing saved")
        raise DataChanged(f"{exc}; training stopped, {kept}") from None
    finally:
        reporter.close()
    return TrainResult(status, step, step / per_epoch, valid_ppl, history)
