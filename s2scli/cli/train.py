"""``s2s train`` and ``s2s average``: training progress on stderr, the model file's options, signals."""

from __future__ import annotations

import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from threading import Event
from typing import Any, Optional

import typer

from ..config import (
    ADAM_LR,
    TIME_DECAY_EVERY,
    TIME_DECAY_START,
    ModelConfig,
    TrainConfig,
    get_preset,
    resume_configs,
    train_configs,
)
from ..errors import S2SError
from ..streams import check_regular_input, check_writable, open_binary, output_lock
from .core import PRESET_HELP, Device, command, given_options, parse_duration, pick_device, say


class ProgressReporter:
    """Training progress on stderr: a rich progress bar on a terminal, else a plain line every 30 s."""

    def __init__(self, every_s: float = 30.0) -> None:
        self.every_s = every_s
        self.tty = sys.stderr.isatty()
        self.progress: Any = None
        self.task: Any = None
        self.last = 0.0

    def start(self, total_steps: int, step: int) -> None:
        """``total_steps`` 0: the run ends on the clock (--schedule time), the bar shows no step count."""
        self.total = total_steps
        if self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
            )

            self.progress = Progress(
                TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                console=Console(stderr=True), transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task("train", total=total_steps or None, completed=step, info="")
        self.last = time.monotonic()

    def update(self, step: int, s: dict[str, float]) -> None:
        info = (f"ep {s['epoch']:.2f} loss {s['loss']:.3f} ppl {s['ppl']:.1f} {s['tok_s']:.0f} tok/s "
                f"lr {s['lr']:.3g} ETA {format_seconds(s['eta_s'])}")
        if self.progress is not None:
            self.progress.update(self.task, completed=step, info=info)
        elif time.monotonic() - self.last >= self.every_s:
            say(f"s2s train: step {step}{f'/{self.total}' if self.total else ''} {info}")
            self.last = time.monotonic()

    def message(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(f"s2s train: {text}", markup=False, highlight=False)
        else:
            say(f"s2s train: {text}")

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def format_seconds(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"



def open_prepared(path: str, stack: ExitStack) -> Any:
    from ..data import PreparedData

    if path == "-":
        raise S2SError("prepared data must be a file, not stdin (train reads it more than once)")
    if path.endswith(".gz"):
        raise S2SError(f"{path}: prepared data must be uncompressed (train reads its pairs in place)")
    check_regular_input(path, "prepared data file")  # a FIFO would block, and could not be read twice
    data = PreparedData(stack.enter_context(open_binary(path)), path)
    check_tokenizers(data.src_vocab, data.tgt_vocab, path)
    return data


def check_tokenizers(src_vocab: Any, tgt_vocab: Any, where: str) -> None:
    """Build both vocabularies' tokenizers once: a model that could never translate is refused at the start."""
    for side, vocab in (("source", src_vocab), ("target", tgt_vocab)):
        try:
            vocab.text_tokenizer()
        except S2SError as exc:
            raise S2SError(f"{where}: its {side} vocabulary cannot tokenize text: {exc}") from None


@command("train")
def train_cmd(
    ctx: typer.Context,
    data: str = typer.Argument(..., metavar="DATA", help="Prepared training data (from 's2s prepare')."),
    output: str = typer.Option(..., "--output", "-o", help="The model file to write (updated at each checkpoint)."),
    valid: Optional[str] = typer.Option(None, "--valid", help="Prepared validation data for perplexity."),
    layers: int = typer.Option(4, "--layers", help="LSTM layers in the encoder and in the decoder [3.4]."),
    hidden: int = typer.Option(1000, "--hidden", help="Cells per LSTM layer [3.4]."),
    embedding: int = typer.Option(1000, "--embedding", help="Word embedding size [3.4]."),
    reverse: bool = typer.Option(True, "--reverse/--no-reverse", help="Read the source reversed [3.3]."),
    init_scale: float = typer.Option(0.08, "--init-scale", help="Initialise uniformly in [-x, x] [3.4]."),
    attention: str = typer.Option(ModelConfig.attention, "--attention",
                                  help="none (the paper), or Luong global attention with input feeding scored "
                                  "by dot, general or concat."),
    input_feeding: bool = typer.Option(ModelConfig.input_feeding, "--input-feeding/--no-input-feeding",
                                       help="With --attention: feed each step's attentional state to the next "
                                       "step (Luong et al. 2015). --no-input-feeding trains faster on a CPU."),
    dropout: float = typer.Option(ModelConfig.dropout, "--dropout",
                                  help="Dropout between LSTM layers and before the output layer, in training "
                                  "(0: off, the paper)."),
    label_smoothing: float = typer.Option(TrainConfig.label_smoothing, "--label-smoothing",
                                          help="Smooth the training loss's targets by this much (0: off, the "
                                          "paper); validation perplexity stays the true one."),
    batch_size: int = typer.Option(TrainConfig.batch_size, "--batch-size", "-b", help="Sentences a batch [3.4]."),
    optimizer: str = typer.Option(TrainConfig.optimizer, "--optimizer",
                                  help="sgd: plain SGD, the paper [3.4]; adam: Adam (beyond the paper)."),
    lr: Optional[float] = typer.Option(None, "--lr", show_default=False,
                                       help=f"Learning rate. Default: 0.7 with sgd [3.4], {ADAM_LR} with adam."),
    schedule: str = typer.Option(TrainConfig.schedule, "--schedule",
                                 help="epochs: --decay-start and --decay-every count epochs [3.4]; time: they "
                                 "are fractions of --max-time (default 0.667 and 0.0667, the paper's "
                                 "proportions), which becomes the model's whole training-time budget."),
    decay_start: Optional[float] = typer.Option(None, "--decay-start", show_default=False,
                                                help="Epoch after which the rate is decayed. Default: 5 [3.4], "
                                                f"{TIME_DECAY_START:.3g} with --schedule time."),
    decay_every: Optional[float] = typer.Option(None, "--decay-every", show_default=False,
                                                help="Epochs between decays after --decay-start. Default: 0.5 "
                                                f"[3.4], {TIME_DECAY_EVERY:.3g} with --schedule time."),
    decay_factor: float = typer.Option(TrainConfig.decay_factor, "--decay-factor",
                                       help="Multiply the rate by this at each decay [3.4]."),
    epochs: float = typer.Option(TrainConfig.epochs, "--epochs", help="Epochs to train, fractions allowed [3.4]."),
    clip_norm: float = typer.Option(TrainConfig.clip_norm, "--clip-norm",
                                    help="Rescale the batch-mean gradient to this norm when larger; 0: off [3.4]."),
    seed: int = typer.Option(TrainConfig.seed, "--seed", help="Random seed (initialisation and batch order)."),
    valid_every: int = typer.Option(TrainConfig.valid_every, "--valid-every",
                                    help="Steps between validations and checkpoints (0: every half epoch)."),
    max_time: str = typer.Option("0", "--max-time",
                                 help="Stop cleanly after this long, e.g. 600, 20m, 2h (0: no limit)."),
    log: Optional[str] = typer.Option(None, "--log", help="Append one JSON line of metrics per validation here."),
    resume: bool = typer.Option(False, "--resume", help="Continue training from the model file given by -o."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing model file instead of refusing."),
    device: Device = "auto",
    precision: str = typer.Option(TrainConfig.precision, "--precision",
                                  help="fp32; bf16: bfloat16 autocast for the forward pass (fp32 weights); auto: "
                                  "bf16 where the CPU (AVX-512 BF16 or AMX) or GPU (compute capability 8+) runs "
                                  "it fast, else fp32. The first line of the run says which."),
    patience: int = typer.Option(TrainConfig.patience, "--patience",
                                 help="Stop after N validations without a better perplexity, keeping the best "
                                 "model in MODEL-stem.best.suffix (0: never)."),
    keep_last: int = typer.Option(TrainConfig.keep_last, "--keep-last",
                                  help="Also keep the last N checkpoints as MODEL-stem.stepNNNNNNNN.suffix, "
                                  "for 's2s average' (0: none)."),
    valid_bleu: int = typer.Option(TrainConfig.valid_bleu, "--valid-bleu",
                                   help="At each validation, translate N sentences of --valid greedily and print "
                                   "their BLEU and chrF (also in --log); 0: off."),
    valid_examples: int = typer.Option(TrainConfig.valid_examples, "--valid-examples",
                                       help="With --valid-bleu: print this many of them (source, reference, "
                                       "output) at each validation."),
    preset: Optional[str] = typer.Option(None, "--preset", show_default=False, help=PRESET_HELP),
) -> None:
    """Train a model on prepared data with the paper's recipe, saving it to -o.

    Defaults are the paper's (section numbers in brackets). Progress goes to stderr: a bar on a terminal,
    a line every 30 s otherwise. Validation perplexity is computed at least every half epoch, and each
    validation writes a checkpoint atomically. Ctrl-C or SIGTERM saves a resumable checkpoint and exits
    with status 130/143; continue with --resume.

    Under torchrun ('torchrun --nproc-per-node N -m -- s2scli train ...') the N processes train together
    with DistributedDataParallel, each step on N batches; only rank 0 writes MODEL, --log and progress.
    """
    from .. import distributed
    from ..train import train

    group = distributed.from_env()  # rank and world size from torchrun; a single process without it
    given, recipe = given_options(ctx), get_preset(preset)
    typed = {name: ctx.params[name] for name in given}
    if "max_time" in typed:
        typed["max_time"] = parse_duration(max_time)
    check_model_output(output, data, valid, log, resume, force, group.is_main)
    with ExitStack() as stack:
        if group.is_main:  # a second run on the same -o is refused while this one lives
            stack.enter_context(output_lock(output))
        train_data = open_prepared(data, stack)
        valid_data = open_prepared(valid, stack) if valid else None
        model_cfg, train_cfg, previous = run_configs(recipe, typed, given, train_data, output, resume, group.is_main)
        log_stream = stack.enter_context(open(log, "a", encoding="utf-8")) if log and group.is_main else None
        train_device = distributed.rank_device(pick_device(device), group)
        group = stack.enter_context(distributed.started(group, train_device))
        stop = stack.enter_context(StopOnSignals(group.is_main))
        result = train(train_data, valid_data, model_cfg, train_cfg, output, resume=previous, device=train_device,
                       reporter=ProgressReporter() if group.is_main else None, log=log_stream, stop=stop.event,
                       group=group)
    report_result(result, output, group.is_main, stop)


def check_model_output(output: str, data: str, valid: Optional[str], log: Optional[str], resume: bool, force: bool,
                       is_main: bool) -> None:
    """Refuse, before any work, a model file name train could not (or must not) write, and a --log over an input;
    only the process that writes them (``is_main``) checks what it would write."""
    if Path(output).is_dir():
        raise S2SError(f"{output}: is a directory, expected a model file name")
    if resume and not Path(output).exists():  # every rank reads the model file it resumes
        raise S2SError(f"{output}: no model file to resume from")
    if is_main:  # the one process that writes MODEL and the log
        if not resume and Path(output).exists() and not force:
            raise S2SError(f"{output} exists; use --resume to continue training it or --force to overwrite it")
        check_writable(output, [data, valid, log])
        if log:
            check_writable(log, [data, valid, output])


def run_configs(recipe: Any, typed: dict[str, Any], given: set[str], train_data: Any, output: str, resume: bool,
                is_main: bool) -> tuple[ModelConfig, TrainConfig, Any]:
    """The run's model and training configs (the paper's defaults, then the preset, then the options typed;
    on --resume, the model file's, with what may change) and the checkpoint it resumes (None for a new run)."""
    from .. import checkpoint
    from ..train import check_output_names

    model_cfg, train_cfg = train_configs(recipe, typed, len(train_data.src_vocab), len(train_data.tgt_vocab))
    previous = None
    if resume:
        previous = checkpoint.load(output)
        model_cfg, train_cfg = resume_configs((previous.model_config, previous.train_config),
                                              (model_cfg, train_cfg), given)
    if is_main:
        check_output_names(output, train_cfg)
    return model_cfg, train_cfg, previous


class StopOnSignals:
    """While entered, Ctrl-C, SIGTERM and SIGHUP set ``event`` (train saves a checkpoint after the step and
    returns) instead of killing the process; ``received`` lists the signals that came."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self, is_main: bool) -> None:
        self.event, self.received, self.is_main = Event(), [], is_main
        self.previous: dict[Any, Any] = {}

    def on_signal(self, signum: int, _frame: Any) -> None:
        self.received.append(signum)
        self.event.set()
        if self.is_main:
            say(f"s2s train: {signal.Signals(signum).name} received, saving a checkpoint after this step")

    def __enter__(self) -> "StopOnSignals":
        self.previous = {s: signal.signal(s, self.on_signal) for s in self.SIGNALS}
        return self

    def __exit__(self, *_exc: Any) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)


def report_result(result: Any, output: str, is_main: bool, stop: StopOnSignals) -> None:
    """The run's last line on stderr; an interrupted run exits 128 + the signal's number."""
    if result.status == "interrupted":
        if is_main:
            say(f"s2s train: interrupted at step {result.step}; resumable checkpoint saved to {output} "
                "(continue with --resume)")
        raise typer.Exit(128 + (stop.received[0] if stop.received else signal.SIGINT))
    if is_main:
        ppl = f", valid ppl {result.valid_ppl:.2f}" if result.valid_ppl is not None else ""
        say(f"s2s train: {result.status} at step {result.step} (epoch {result.epoch:.2f}){ppl}; "
            f"model saved to {output}")


@command("average")
def average_cmd(
    models: list[str] = typer.Argument(..., metavar="MODEL...", help="Model files of one training run."),
    output: str = typer.Option(..., "--output", "-o", help="The averaged model file to write."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
) -> None:
    """Average the weights of several checkpoints of one model (e.g. those 'train --keep-last N' keeps).

    The models must share their configuration and vocabularies. The result is a model file without
    training state (it translates and scores, but does not resume).
    """
    from .. import checkpoint

    check_writable(output, models)  # never over one of its inputs, even with --force
    if Path(output).exists() and not force:
        raise S2SError(f"{output} exists; use --force to overwrite it")
    averaged = checkpoint.average([checkpoint.load(p) for p in models], models)
    with output_lock(output):
        checkpoint.save(averaged, output)
    say(f"s2s average: {len(models)} models averaged into {output}")


# ----------------------------------------------------------------------------------------- translate
