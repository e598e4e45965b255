"""The ``s2s`` command line: options in, streams opened, library called, errors turned into one line.

Every command reads files or stdin and writes stdout (or ``-o FILE``); progress and messages go to
stderr, data only to stdout. A user error prints ``s2s <command>: error: <message>`` on stderr and exits
with status 1 (2 for bad usage); there is never a traceback unless ``S2S_DEBUG=1`` is set.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import math
import os
import signal
import sys
import time
import traceback
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from threading import Event
from typing import Any, Callable, Iterator, Optional, TypeVar

import typer

from . import __version__
from .config import (
    ADAM_LR, PRESETS, TIME_DECAY_EVERY, TIME_DECAY_START, DecodeConfig, ModelConfig, PrepareConfig, TrainConfig,
    VocabConfig, get_preset, resolve, resume_configs,
)
from .errors import S2SError
from .lines import check_same_count, read_lines
from .streams import (
    atomic_binary, check_readable, check_regular_input, check_writable, display_name, open_binary, output_lock,
    output_text, stdin_is_terminal,
)

app = typer.Typer(
    name="s2s",
    help="Sequence to sequence learning with neural networks (Sutskever, Vinyals & Le, 2014).\n\n"
    "Five steps, each reading files or stdin and writing stdout (--preset small: a model that translates "
    "after 30 minutes on a CPU; --preset paper, the default: the paper's recipe, days on a CPU):\n\n"
    "  s2s vocab --preset small train.en > vocab.en\n\n"
    "  s2s prepare --src-vocab vocab.en --tgt-vocab vocab.fr train.en train.fr > train.s2s\n\n"
    "  s2s train --preset small train.s2s --valid dev.s2s -o model.pt\n\n"
    "  s2s translate -m model.pt < test.en > hyp.fr\n\n"
    "  s2s score --ref test.fr < hyp.fr",
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., Any])

ERRORS_HELP = "What to do with invalid UTF-8: 'strict' stops with the file and line, 'replace' uses U+FFFD."
PRESET_HELP = ("A named recipe that sets several options of vocab, train and translate at once; options given "
               "explicitly override it. " + " ".join(
                   f"'{p.name}': {p.about}" + (f" (sets {' '.join(p.settings())})." if p.settings() else ".")
                   for p in PRESETS.values()))


def say(message: str) -> None:
    """A message for the user, on stderr."""
    typer.echo(message, err=True)


def command(name: str, parent: typer.Typer | None = None, label: str | None = None) -> Callable[[F], F]:
    """Register a command whose errors become one stderr line and an exit status.

    ``parent``: the typer group it belongs to (default: ``s2s`` itself); ``label``: how messages name it
    (default: ``name``; ``"plot pca"`` for a subcommand).
    """
    name, register = label or name, (parent or app).command(name)

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            previous = on_termination(raise_terminated)
            try:
                result = fn(*args, **kwargs)
                sys.stdout.flush()  # a full disk or a closed stdout is reported here, not at exit
                return result
            except Terminated as exc:  # SIGTERM or SIGHUP: the output files being written were removed
                say(f"s2s {name}: {signal.Signals(exc.signum).name} received, stopped")
                silence_stdout()
                raise typer.Exit(128 + exc.signum) from None
            except S2SError as exc:
                say(f"s2s {name}: error: {exc}")
                raise typer.Exit(exc.exit_code) from None
            except BrokenPipeError:
                # The reader went away (``s2s translate | head -1``): stop quietly.
                silence_stdout()
                raise typer.Exit(141) from None
            except KeyboardInterrupt:
                say(f"s2s {name}: interrupted")
                raise typer.Exit(130) from None
            except typer.Exit:
                raise
            except MemoryError:
                say(f"s2s {name}: error: out of memory")
                raise typer.Exit(1) from None
            except OSError as exc:  # the system refused: a full disk, a closed stdout, an I/O error
                where = f"{exc.filename}: " if exc.filename else "writing the output: " if exc.errno in (
                    errno.ENOSPC, errno.EBADF, errno.EDQUOT, errno.EFBIG) else ""
                say(f"s2s {name}: error: {where}{exc.strerror or exc}")
                silence_stdout()
                raise typer.Exit(1) from None
            except RuntimeError as exc:
                if type(exc).__name__ == "OutOfMemoryError":  # torch's CUDA out-of-memory error
                    say(f"s2s {name}: error: out of GPU memory (try a smaller --batch-size)")
                    raise typer.Exit(1) from None
                if "can't allocate memory" in str(exc):  # torch's CPU allocator
                    say(f"s2s {name}: error: out of memory (try a smaller --batch-size or --beam)")
                    raise typer.Exit(1) from None
                raise internal_error(name, exc) from None
            except Exception as exc:  # a bug: say so in one line, traceback on request
                raise internal_error(name, exc) from None
            finally:
                on_termination(previous)

        return register(run)  # type: ignore[no-any-return]

    return wrap


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds the command like Ctrl-C, so that the atomic writers remove
    their temporary files (not an Exception, so that no ``except Exception`` swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def raise_terminated(signum: int, _frame: Any) -> None:
    raise Terminated(signum)


TERMINATION = (signal.SIGTERM, signal.SIGHUP)


def on_termination(handler: Any) -> Any:
    """Install ``handler`` (a function, or a dict of the previous handlers) for SIGTERM and SIGHUP;
    returns the handlers it replaced. Outside the main thread (tests) nothing changes."""
    previous = {}
    for sig in TERMINATION:
        with contextlib.suppress(ValueError, TypeError, OSError):
            previous[sig] = signal.signal(sig, handler[sig] if isinstance(handler, dict) else handler)
    return previous


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that what could not be written is not tried again at exit."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def internal_error(name: str, exc: BaseException) -> typer.Exit:
    """Report a bug in one line (the traceback only with S2S_DEBUG=1); the caller raises the result."""
    if os.environ.get("S2S_DEBUG", "") not in ("", "0"):
        traceback.print_exception(exc)
    say(f"s2s {name}: internal error: {type(exc).__name__}: {exc} (set S2S_DEBUG=1 for a traceback)")
    return typer.Exit(70)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"s2s {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Sequence to sequence learning with neural networks."""


def text_lines(path: str | None, errors: str, stack: ExitStack) -> Iterator[str]:
    """Decoded lines of a file or stdin; the file is closed when ``stack`` closes."""
    stream = stack.enter_context(open_binary(path)) if path not in (None, "-") else open_binary(path)
    return read_lines(stream, display_name(path), errors)


def paced_lines(path: str | None, errors: str, stack: ExitStack) -> tuple[Iterator[str], Any]:
    """``text_lines``, and for a pipe the ``ready`` test with which a pause flushes a partial batch."""
    from .pacing import paced

    stream = stack.enter_context(open_binary(path)) if path not in (None, "-") else open_binary(path)
    source, ready = paced(stream)
    return read_lines(source, display_name(path), errors), ready


def pick_device(name: str) -> Any:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise S2SError(f"--device: unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type not in ("cpu", "cuda"):
        raise S2SError(f"--device {name}: s2s runs on cpu or cuda (auto, cpu, cuda or cuda:N)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise S2SError("--device cuda: no CUDA GPU is available here")
    return device


def parse_duration(text: str) -> float:
    """'90', '90s', '20m', '1.5h' -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    t = text.strip().lower()
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        raise S2SError(f"--max-time: cannot read {text!r} as a duration (examples: 600, 90s, 20m, 1.5h)") from None
    if not math.isfinite(value) or value < 0:
        raise S2SError(f"--max-time must be a finite duration, not negative, got {text}")
    return value


# --------------------------------------------------------------------------------------------- vocab


@command("vocab")
def vocab_cmd(
    ctx: typer.Context,
    files: Optional[list[str]] = typer.Argument(None, metavar="FILE", help="Text files, one sentence a line ('-' or none: stdin)."),
    size: int = typer.Option(VocabConfig.size, "--size", "-s",
                             help="Keep the N most frequent words (0: all); with --subword, the number of pieces "
                             "in all. The paper: 160000 source, 80000 target."),
    min_count: int = typer.Option(VocabConfig.min_count, "--min-count", help="Drop words seen fewer times."),
    tokenizer: str = typer.Option(VocabConfig.tokenizer, "--tokenizer",
                                  help="moses (sacremoses Moses tokenizer), none (text already tokenized) or char "
                                  "(every character a token)."),
    subword: Optional[str] = typer.Option(None, "--subword",
                                          help="bpe or unigram: learn a sentencepiece model of --size pieces from "
                                          "the raw text; the vocabulary file carries it (none: words, to undo a "
                                          "preset's)."),
    column: Optional[int] = typer.Option(None, "--column",
                                         help="Read column 1 (source) or 2 (target) of tab-separated sentence "
                                         "pairs (source<TAB>target<TAB>...), as 'prepare --tsv' does."),
    lang: Optional[str] = typer.Option(None, "--lang", "-l",
                                       help="Language code for the tokenizer [default: from the file name, "
                                       "e.g. train.en -> en, else en]."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    errors: str = typer.Option("strict", "--errors", help=ERRORS_HELP),
    preset: Optional[str] = typer.Option(None, "--preset", show_default=False, help=PRESET_HELP),
) -> None:
    """Count the words of a corpus and print its vocabulary, most frequent first.

    Reads FILES (or stdin), tokenizes each line, and writes the vocabulary file to stdout: a header that
    records the tokenizer and language, the special tokens, then one 'word<TAB>count' a line. With
    --subword, learns subword pieces from the raw text instead and adds the sentencepiece model to the file.
    """
    from .subword import train_subword
    from .text import get_tokenizer, guess_lang
    from .tsv import check_column
    from .vocab import build_vocab, check_lang, count_tokens, write_vocab

    given = given_options(ctx)
    recipe = get_preset(preset)
    cfg = resolve(VocabConfig, recipe.vocab if recipe else {}, {k: ctx.params[k] for k in given})
    size, subword = cfg.size, None if cfg.subword == "none" else cfg.subword
    if subword is not None:
        misplaced = given & {"tokenizer", "min_count"}
        if misplaced:
            raise S2SError(f"{option_names(ctx, misplaced)}: not with --subword, which learns its pieces "
                           "from the raw text")
    if column is not None:
        check_column(column)
    paths = files or ["-"]
    if lang is None:
        guesses = {guess_lang(p) for p in paths if p != "-"}
        lang = guesses.pop() if len(guesses) == 1 and None not in guesses else None
    for p in paths:
        check_readable(p)
    check_writable(output, paths)
    guessed = lang is None and tokenizer == "moses" and subword is None  # said after the work, not before
    if lang is None:
        lang = "en"
    check_lang(lang, "--lang")
    if subword is not None:
        with ExitStack() as stack:
            lines = (line for p in paths for line in corpus_lines(p, column, errors, stack))
            vocab, freqs = train_subword(lines, subword, size, lang)
        summary = f"{len(vocab)} sentencepiece {subword} pieces (4 specials, 256 bytes, {len(vocab) - 260} learned)"
    else:
        tok = get_tokenizer(tokenizer, lang)
        with ExitStack() as stack:
            lines = (line for p in paths for line in corpus_lines(p, column, errors, stack))
            counts = count_tokens(tok.tokenize(line) for line in lines)
        vocab, freqs = build_vocab(counts, tokenizer, lang, size, min_count)
        summary = f"{len(counts)} distinct tokens, kept {len(vocab) - 4} (+4 specials)"
    with output_text(output) as out:
        write_vocab(vocab, freqs, out)
    say(f"s2s vocab: {summary}; tokenizer {vocab.tokenizer}, lang {lang}")
    if guessed:
        say("s2s vocab: no language code in the file names; tokenized as 'en' (set --lang)")


def corpus_lines(path: str, column: int | None, errors: str, stack: ExitStack) -> Iterator[str]:
    """The lines of a text file, or with ``column`` that column of a tab-separated pairs file."""
    from .tsv import read_column

    lines = text_lines(path, errors, stack)
    return lines if column is None else read_column(lines, display_name(path), column)


def load_vocab(path: str) -> Any:
    from .vocab import read_vocab

    with ExitStack() as stack:
        return read_vocab(text_lines(path, "strict", stack), display_name(path))


# ------------------------------------------------------------------------------------------- prepare


@command("prepare")
def prepare_cmd(
    src: Optional[str] = typer.Argument(None, metavar="SRC", help="Source-language text, one sentence a line."),
    tgt: Optional[str] = typer.Argument(None, metavar="TGT", help="Its translation, line by line."),
    src_vocab: str = typer.Option(..., "--src-vocab", help="Source vocabulary (from 's2s vocab')."),
    tgt_vocab: str = typer.Option(..., "--tgt-vocab", help="Target vocabulary (from 's2s vocab')."),
    tsv: Optional[str] = typer.Option(None, "--tsv",
                                      help="Read the pairs from this tab-separated file instead of SRC and TGT: "
                                      "source<TAB>target a line, further columns ignored (manythings.org/anki)."),
    max_len: int = typer.Option(PrepareConfig.max_len, "--max-len",
                                help="Drop pairs with more tokens than this on either side (0: no limit)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    errors: str = typer.Option("strict", "--errors", help=ERRORS_HELP),
) -> None:
    """Turn a parallel corpus into the prepared file that 'train' reads.

    SRC and TGT are tokenized with the tokenizers their vocabularies record; words not in a vocabulary
    become <unk>. The binary result goes to stdout (redirect it) or to -o FILE. Pairs with an empty side
    or longer than --max-len are dropped; the counts and the <unk> rates are reported on stderr. One of
    SRC and TGT may be '-' (stdin). With --tsv FILE, the pairs are the first two columns of FILE.
    """
    from .prepare import prepare_pairs

    if tsv is not None and (src is not None or tgt is not None):
        raise S2SError("give SRC and TGT, or --tsv FILE, not both", exit_code=2)
    if tsv is None and (src is None or tgt is None):
        raise S2SError(f"missing {'SRC and TGT' if src is None else 'TGT'}: give SRC and TGT, or --tsv FILE",
                       exit_code=2)
    if src == "-" and tgt == "-":
        raise S2SError("SRC and TGT cannot both be stdin")
    sv, tv = load_vocab(src_vocab), load_vocab(tgt_vocab)
    check_writable(output, [src, tgt, tsv, src_vocab, tgt_vocab])
    if output in (None, "-") and sys.stdout.isatty():
        raise S2SError("refusing to write binary data to a terminal; redirect stdout or use -o FILE")
    with ExitStack() as stack:
        pairs = tsv_pairs(tsv, errors, stack) if tsv is not None else \
            parallel_files(str(src), str(tgt), errors, stack)
        cfg = PrepareConfig(max_len=max_len)
        if output in (None, "-"):
            stats = prepare_pairs(pairs, sv, tv, sys.stdout.buffer, cfg)
        else:
            with atomic_binary(output) as out:
                stats = prepare_pairs(pairs, sv, tv, out, cfg)
    say(f"s2s prepare: {stats.pairs} pairs read, {stats.kept} kept, {stats.dropped} dropped "
        f"({stats.empty} with an empty side, "
        + (f"{stats.too_long} longer than {max_len} tokens); " if max_len else "no length limit); ")
        + f"<unk> rate: source {100 * stats.unk_rate('src'):.2f}%, target {100 * stats.unk_rate('tgt'):.2f}%")


def parallel_files(src: str, tgt: str, errors: str, stack: ExitStack) -> Iterator[tuple[str, str]]:
    """The line pairs of two parallel files; when both are plain files their line counts are compared
    first, so that a mismatch writes nothing at all."""
    from .lines import PARALLEL_HINT, count_lines
    from .prepare import parallel_pairs

    streams = [stack.enter_context(open_binary(p)) if p != "-" else open_binary(p) for p in (src, tgt)]
    if all(p != "-" and not p.endswith(".gz") for p in (src, tgt)):
        check_same_count(src, count_lines(streams[0]), tgt, count_lines(streams[1]), PARALLEL_HINT)
    names = (display_name(src), display_name(tgt))
    return parallel_pairs(read_lines(streams[0], names[0], errors), read_lines(streams[1], names[1], errors), names)


def tsv_pairs(path: str, errors: str, stack: ExitStack) -> Iterator[tuple[str, str]]:
    """The pairs of a tab-separated file; a plain file is checked whole first, so that a bad line
    writes nothing at all."""
    from .tsv import count_pairs, read_pairs

    stream = stack.enter_context(open_binary(path)) if path != "-" else open_binary(path)
    name = display_name(path)
    if path != "-" and not path.endswith(".gz"):
        count_pairs(read_lines(stream, name, errors), name)
        stream.seek(0)
    return read_pairs(read_lines(stream, name, errors), name)


# --------------------------------------------------------------------------------------------- train


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
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

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


def given_options(ctx: typer.Context) -> set[str]:
    """Names of the parameters the user typed on the command line (not defaults)."""
    # Compared by name: typer may vendor its own copy of click's ParameterSource enum.
    return {name for name in ctx.params
            if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"}


def option_names(ctx: typer.Context, names: set[str]) -> str:
    """'--src, --nbest' for parameter names, in the order the command declares them."""
    return ", ".join(p.opts[-1] if len(p.opts) == 1 else max(p.opts, key=len)
                     for p in ctx.command.params if p.name in names)


def open_prepared(path: str, stack: ExitStack) -> Any:
    from .data import PreparedData

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
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda or cuda:N."),
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
    from . import checkpoint, distributed
    from .train import check_output_names, train

    group = distributed.from_env()  # rank and world size from torchrun; a single process without it
    given = given_options(ctx)
    recipe = get_preset(preset)
    typed = {name: ctx.params[name] for name in given}
    if "max_time" in typed:
        typed["max_time"] = parse_duration(max_time)
    if Path(output).is_dir():
        raise S2SError(f"{output}: is a directory, expected a model file name")
    if resume and not Path(output).exists():  # every rank reads the model file it resumes
        raise S2SError(f"{output}: no model file to resume from")
    if group.is_main:  # the one process that writes MODEL and the log
        if not resume and Path(output).exists() and not force:
            raise S2SError(f"{output} exists; use --resume to continue training it or --force to overwrite it")
        check_writable(output, [data, valid, log])
        if log:
            check_writable(log, [data, valid, output])

    with ExitStack() as stack:
        if group.is_main:  # a second run on the same -o is refused while this one lives
            stack.enter_context(output_lock(output))
        train_data = open_prepared(data, stack)
        valid_data = open_prepared(valid, stack) if valid else None
        # The paper's defaults, then the preset's values, then the options typed (config.resolve).
        train_cfg = resolve(TrainConfig, {**(recipe.train if recipe else {}), "preset": preset or ""}, typed)
        model_cfg = resolve(ModelConfig, recipe.model if recipe else {}, typed,
                            src_vocab_size=len(train_data.src_vocab), tgt_vocab_size=len(train_data.tgt_vocab))
        previous = None
        if resume:
            previous = checkpoint.load(output)
            model_cfg, train_cfg = resume_configs((previous.model_config, previous.train_config),
                                                  (model_cfg, train_cfg), given)
        if group.is_main:
            check_output_names(output, train_cfg)
        log_stream = stack.enter_context(open(log, "a", encoding="utf-8")) if log and group.is_main else None
        train_device = distributed.rank_device(pick_device(device), group)
        group = stack.enter_context(distributed.started(group, train_device))
        stop, received = Event(), []

        def on_signal(signum: int, _frame: Any) -> None:
            received.append(signum)
            stop.set()
            if group.is_main:
                say(f"s2s train: {signal.Signals(signum).name} received, saving a checkpoint after this step")

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            result = train(train_data, valid_data, model_cfg, train_cfg, output, resume=previous,
                           device=train_device, reporter=ProgressReporter() if group.is_main else None,
                           log=log_stream, stop=stop, group=group)
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
    ppl = f", valid ppl {result.valid_ppl:.2f}" if result.valid_ppl is not None else ""
    if result.status == "interrupted":
        if group.is_main:
            say(f"s2s train: interrupted at step {result.step}; resumable checkpoint saved to {output} "
                "(continue with --resume)")
        raise typer.Exit(128 + (received[0] if received else signal.SIGINT))
    if group.is_main:
        say(f"s2s train: {result.status} at step {result.step} (epoch {result.epoch:.2f}){ppl}; "
            f"model saved to {output}")


# ------------------------------------------------------------------------------------------- average


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
    from . import checkpoint

    check_writable(output, models)  # never over one of its inputs, even with --force
    if Path(output).exists() and not force:
        raise S2SError(f"{output} exists; use --force to overwrite it")
    averaged = checkpoint.average([checkpoint.load(p) for p in models], models)
    with output_lock(output):
        checkpoint.save(averaged, output)
    say(f"s2s average: {len(models)} models averaged into {output}")


# ----------------------------------------------------------------------------------------- translate


def load_models(paths: list[str], device: Any) -> tuple[list[Any], Any, Any]:
    nets, src_vocab, tgt_vocab, _ = load_ensemble(paths, device)
    return nets, src_vocab, tgt_vocab


def load_ensemble(paths: list[str], device: Any) -> tuple[list[Any], Any, Any, str]:
    """The models, their shared vocabularies and the preset the first was trained with ("" for none)."""
    from . import checkpoint
    from .translate import check_ensemble

    ckpts = [checkpoint.load(p) for p in paths]
    check_ensemble([(c.src_vocab, c.tgt_vocab) for c in ckpts], paths)
    return ([c.build_model(device) for c in ckpts], ckpts[0].src_vocab, ckpts[0].tgt_vocab,
            ckpts[0].train_config.preset)


@command("translate")
def translate_cmd(
    ctx: typer.Context,
    file: Optional[str] = typer.Argument(None, metavar="FILE", help="Text to translate, one sentence a line ('-' or none: stdin)."),
    models: list[str] = typer.Option(..., "--model", "-m",
                                     help="Model file; give several for an ensemble (log-probabilities averaged)."),
    beam: int = typer.Option(DecodeConfig.beam, "--beam", "-k", help="Beam size; 1 is greedy search [3.2]."),
    nbest: int = typer.Option(DecodeConfig.nbest, "--nbest", "-n",
                              help="Print the N best in Moses n-best format 'i ||| text ||| score' (0: plain)."),
    max_len_a: float = typer.Option(DecodeConfig.max_len_a, "--max-len-a",
                                    help="Output at most a*source_length+b tokens: the a."),
    max_len_b: int = typer.Option(DecodeConfig.max_len_b, "--max-len-b", help="... and the b."),
    batch_size: int = typer.Option(DecodeConfig.batch_size, "--batch-size", "-b",
                                   help="Sentences decoded together; output is flushed after each batch."),
    allow_unk: bool = typer.Option(DecodeConfig.allow_unk, "--unk/--no-unk",
                                   help="Whether translations may contain <unk> (the paper's may) [3.1]."),
    precision: str = typer.Option(DecodeConfig.precision, "--precision",
                                  help="fp32; bf16 (bfloat16 weights); int8 (dynamic quantization, CPU only)."),
    length_penalty: float = typer.Option(DecodeConfig.length_penalty, "--length-penalty",
                                         help="Rank complete translations by log-probability / ((5 + length) / 6)^A "
                                         "(0: pure log-probability, the paper)."),
    align: bool = typer.Option(DecodeConfig.align, "--align",
                               help="Append ' ||| ' and the alignment 'i-j ...' (source token i, target token j) "
                               "to each line; attention models only."),
    replace_unk: bool = typer.Option(DecodeConfig.replace_unk, "--replace-unk",
                                     help="Replace each <unk> in a translation by the source word it attends to "
                                     "most; attention models only."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda or cuda:N."),
    output: Optional[str] = typer.Option(None, "--output", "-o",
                                         help="Write here (only once complete) instead of stdout."),
    errors: str = typer.Option("strict", "--errors", help=ERRORS_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary on stderr."),
    preset: Optional[str] = typer.Option(None, "--preset", show_default=False,
                                         help=PRESET_HELP + " Default: the preset the (first) model was trained "
                                         "with, if any."),
) -> None:
    """Translate raw text, one output line for each input line, in order.

    Reads FILE (or stdin) and writes detokenized translations to stdout. An empty line gives an empty line.
    With several -m the models decode as an ensemble; they must share their vocabularies. A model trained
    with --preset decodes with that preset's settings (e.g. beam 5) unless options or --preset say otherwise.
    """
    from .translate import cap_beam, check_attention, check_config, translate

    given = given_options(ctx)
    typed = {name: ctx.params[name] for name in given}
    named = get_preset(preset)
    check_config(resolve(DecodeConfig, named.decode if named else {}, typed))  # before loading any model
    check_writable(output, [file, *models])
    dev = pick_device(device)
    nets, src_vocab, tgt_vocab, trained_with = load_ensemble(models, dev)
    recipe = named if preset is not None else get_preset(trained_with)
    cfg = resolve(DecodeConfig, recipe.decode if recipe else {}, typed)
    check_config(cfg)
    cfg = cap_beam(cfg, tgt_vocab)
    if file in (None, "-") and stdin_is_terminal():
        cfg = replace(cfg, batch_size=1)  # interactive: answer each line at once
    check_attention(nets, cfg, models)
    start = time.monotonic()
    with ExitStack() as stack:
        lines, ready = paced_lines(file, errors, stack)
        with output_text(output) as out:
            stats = translate(lines, nets, src_vocab, tgt_vocab, cfg, out, dev,
                              warn=lambda m: say(f"s2s translate: {display_name(file)}: {m}"), ready=ready)
    if not quiet:
        took = time.monotonic() - start
        say(f"s2s translate: {stats.lines} lines ({stats.empty} empty) in {took:.1f} s, "
            f"{stats.lines / max(took, 1e-9):.1f} lines/s, beam {cfg.beam}, {len(nets)} model(s)"
            + (f", preset {recipe.name}" + ("" if preset else " (the model's)") if recipe else ""))


# --------------------------------------------------------------------------------------------- score


@command("score")
def score_cmd(
    ctx: typer.Context,
    hyps: Optional[list[str]] = typer.Argument(None, metavar="HYP",
                                               help="Hypotheses, one a line ('-' or none: stdin). With --ref, "
                                               "several files are systems to compare, the first the baseline."),
    refs: Optional[list[str]] = typer.Option(None, "--ref", "-r", help="Reference translations; repeat for several."),
    metrics: str = typer.Option("bleu", "--metrics", help="Comma-separated: bleu, chrf, ter."),
    json_out: bool = typer.Option(False, "--json", help="Print the scores as JSON."),
    width: int = typer.Option(1, "--width", "-w", help="Decimals in the printed scores (as sacrebleu's -w)."),
    models: Optional[list[str]] = typer.Option(None, "--model", "-m",
                                               help="Score with a model (or ensemble) instead of references."),
    src: Optional[str] = typer.Option(None, "--src",
                                      help="With -m or --breakdown: the source sentences, line by line."),
    nbest: bool = typer.Option(False, "--nbest", help="With -m: HYP is a Moses n-best list; re-rank it."),
    weight: float = typer.Option(0.5, "--weight",
                                 help="With --nbest: the model's share of the new score (0.5: even average)."),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="With -m: sentences scored together."),
    device: str = typer.Option("auto", "--device", help="With -m: auto, cpu, cuda or cuda:N."),
    breakdown: Optional[str] = typer.Option(None, "--breakdown",
                                            help="With --ref and --src: BLEU and chrF by bins of source 'length' "
                                            "(tokens) or of average word-frequency rank, 'freq' [3.7]."),
    vocab: Optional[str] = typer.Option(None, "--vocab",
                                        help="With --breakdown: the source vocabulary, whose tokenizer cuts SRC "
                                        "and, for freq, whose order ranks the words (required for freq)."),
    bins: int = typer.Option(8, "--bins", help="With --breakdown: the number of bins of nearly equal size."),
    plot: Optional[str] = typer.Option(None, "--plot",
                                       help="With --breakdown: also draw the scores per bin as this PNG file."),
    paired: Optional[str] = typer.Option(None, "--paired",
                                         help="With several HYP: test each against the first with sacreBLEU's "
                                         "paired bootstrap resampling, 'bs' (scores with 95% confidence "
                                         "intervals), or approximate randomization, 'ar'."),
    paired_n: Optional[int] = typer.Option(None, "--paired-n",
                                           help="With --paired: bootstrap resamples (bs) or randomization "
                                           "trials (ar); sacreBLEU's defaults: 1000 and 10000."),
    seed: Optional[int] = typer.Option(None, "--seed",
                                       help="With --paired: the random seed (default: $SACREBLEU_SEED, else "
                                       "12345, as the sacrebleu command)."),
    errors: str = typer.Option("strict", "--errors", help=ERRORS_HELP),
) -> None:
    """Score translations: sacreBLEU metrics against --ref, or the model's log-probability with -m.

    With --ref: prints BLEU (and --metrics chrf,ter) with the sacreBLEU signature, the same numbers as the
    sacrebleu command. With -m and --src: prints log p(hypothesis | source) for each line, or with --nbest
    re-ranks the n-best list by an average of its scores and the model's (the paper's rescoring). With
    --ref, --src and --breakdown: a table of BLEU and chrF by bins of source length or word rarity. With
    --ref and several HYP files: a table of each file's scores; --paired adds significance tests against
    the first file, as sacrebleu's --paired-bs and --paired-ar.
    """
    given = given_options(ctx)
    if breakdown is None:
        misplaced = given & {"vocab", "bins", "plot"}
        if misplaced:
            raise S2SError(f"{option_names(ctx, misplaced)} only apply with --breakdown")
    hyps = hyps or []
    if len(hyps) > 1 or given & PAIRED_OPTIONS:
        if models or breakdown is not None:
            way = "-m" if models else "--breakdown"
            if len(hyps) > 1:
                raise S2SError(f"{way} scores one HYP file, not {len(hyps)} (several compare systems with --ref)")
            raise S2SError(f"{option_names(ctx, given & PAIRED_OPTIONS)} only apply with --ref, not with {way}")
    hyp = hyps[0] if hyps else None
    if models:
        if refs:
            raise S2SError("give either --ref (metrics) or -m with --src (model scores), not both")
        if not src:
            raise S2SError("-m needs --src, the source sentences the hypotheses translate")
        misplaced = given & {"metrics", "json_out", "width", "breakdown"}
        if misplaced:
            raise S2SError(f"{option_names(ctx, misplaced)} only apply with --ref, not with -m")
        if not 0.0 <= weight <= 1.0:
            raise S2SError(f"--weight must be between 0 and 1, got {weight}")
        return score_with_model(hyp, src, models, nbest, weight, batch_size, device, errors)
    if not refs:
        raise S2SError("give --ref REF (or -m MODEL --src SRC to score with a model)")
    if (hyps.count("-") if hyps else 1) + refs.count("-") > 1:  # no HYP: stdin
        raise S2SError("only one input can be stdin: give the other HYP and --ref inputs as files")
    model_only = {"nbest", "weight", "batch_size", "device"} | ({"src"} if breakdown is None else set())
    misplaced = given & model_only
    if misplaced:
        raise S2SError(f"{option_names(ctx, misplaced)} only apply with -m, not with --ref"
                       + (" (--src also with --breakdown)" if "src" in misplaced else ""))
    if not 0 <= width <= 10:
        raise S2SError(f"--width must be between 0 and 10, got {width}")
    if breakdown is not None:
        if "metrics" in given:
            raise S2SError("--metrics: --breakdown always reports BLEU and chrF2")
        return score_breakdown(hyp, refs, src, breakdown, vocab, bins, plot, json_out, width, errors)
    if len(hyps) > 1 or given & PAIRED_OPTIONS:
        test, n, seed = paired_settings(ctx, given, hyps, paired, paired_n, seed)
        return score_systems(hyps, refs, metrics, test, n, seed, json_out, width, errors)
    from .score import metric_scores, parse_metrics

    names = parse_metrics(metrics)
    with ExitStack() as stack:
        hyps = list(text_lines(hyp, errors, stack))
        ref_lists = [list(text_lines(r, errors, stack)) for r in refs]
    if not hyps:
        raise S2SError(f"{display_name(hyp)}: no lines to score")
    for r, lines in zip(refs, ref_lists):
        check_same_count(display_name(hyp), len(hyps), r, len(lines))
    results = metric_scores(hyps, ref_lists, names, width)
    if json_out:
        import json

        typer.echo(json.dumps([r.json for r in results], indent=1, ensure_ascii=False))
    else:
        for r in results:
            typer.echo(r.text)


PAIRED_OPTIONS = {"paired", "paired_n", "seed"}


def paired_settings(ctx: typer.Context, given: set[str], hyps: list[str], paired: Optional[str],
                    paired_n: Optional[int], seed: Optional[int]) -> tuple[Optional[str], Optional[int], int]:
    """``score --paired``'s checked options: the test (or None), its sample count (None: sacreBLEU's
    default), and the seed (``--seed``, else ``$SACREBLEU_SEED`` as the sacrebleu command reads it, else
    12345)."""
    from .score import DEFAULT_SEED, PAIRED_TESTS

    if paired is None:
        misplaced = given & {"paired_n", "seed"}
        if misplaced:
            raise S2SError(f"{option_names(ctx, misplaced)} only apply with --paired")
        return None, None, DEFAULT_SEED
    if paired not in PAIRED_TESTS:
        raise S2SError(f"--paired: unknown test {paired!r} (choose bs, paired bootstrap resampling, "
                       "or ar, approximate randomization)")
    if len(hyps) < 2:
        raise S2SError("--paired needs two or more HYP files: the baseline, then the systems to compare with it")
    if paired_n is not None and paired_n < 1:
        raise S2SError(f"--paired-n must be at least 1, got {paired_n}")
    if seed is None:
        env = os.environ.get("SACREBLEU_SEED")
        if env is None:
            return paired, paired_n, DEFAULT_SEED
        try:
            seed = int(env)
        except ValueError:
            seed = 0
        if seed < 1:
            raise S2SError(f"SACREBLEU_SEED={env!r}: the seed must be a positive integer (or give --seed)")
    if seed < 1:  # numpy refuses negative seeds; sacreBLEU leaves the systems' tests unseeded at 0
        raise S2SError(f"--seed must be a positive integer, got {seed}")
    return paired, paired_n, seed


def score_systems(hyps: list[str], refs: list[str], metrics: str, test: Optional[str], n: Optional[int],
                  seed: int, json_out: bool, width: int, errors: str) -> None:
    """``score --ref REF HYP HYP...``: a table of each file's scores; with --paired, each against the first."""
    from .score import compare_systems, comparison_json, format_comparison, parse_metrics

    names = parse_metrics(metrics)
    with ExitStack() as stack:
        systems = [(display_name(h), list(text_lines(h, errors, stack))) for h in hyps]
        ref_lists = [list(text_lines(r, errors, stack)) for r in refs]
    for name, lines in systems:
        if not lines:
            raise S2SError(f"{name}: no lines to score")
        for r, ref_lines in zip(refs, ref_lists):
            check_same_count(name, len(lines), display_name(r), len(ref_lines))
    result = compare_systems(systems, ref_lists, names, test, n, seed)
    if json_out:
        import json

        typer.echo(json.dumps(comparison_json(result), indent=1, ensure_ascii=False))
    else:
        typer.echo(format_comparison(result, width), nl=False)


def score_breakdown(hyp: Optional[str], refs: list[str], src: Optional[str], kind: str, vocab_path: Optional[str],
                    bins: int, plot: Optional[str], json_out: bool, width: int, errors: str) -> None:
    """``score --breakdown``: BLEU and chrF by bins of a property of the source sentences."""
    from . import breakdown as bd

    bd.check_kind(kind)
    bd.check_bins(bins)
    if not src:
        raise S2SError(f"--breakdown {kind} needs --src, the source sentences the hypotheses translate")
    if kind == "freq" and not vocab_path:
        raise S2SError("--breakdown freq needs --vocab, the source vocabulary whose order ranks the words")
    if src == "-" and hyp in (None, "-"):
        raise S2SError("--src and HYP cannot both be stdin")
    if plot == "-":
        raise S2SError("--plot needs a file name (standard output carries the table)")
    check_writable(plot, [hyp, *refs, src, vocab_path])
    vocab = load_vocab(vocab_path) if vocab_path else None
    ranks = bd.word_ranks(vocab) if kind == "freq" and vocab is not None else {}
    tokenize = vocab.text_tokenizer().tokenize if vocab is not None else str.split
    describe = (f"tokens of {vocab.tokenizer} ({vocab.lang}) as in {display_name(vocab_path)}" if vocab is not None
                else "whitespace-separated tokens")
    if kind == "freq":
        describe += f"; {len(ranks)} ranked words, others rank {len(ranks) + 1}"
    with ExitStack() as stack:
        hyps = list(text_lines(hyp, errors, stack))
        sources = list(text_lines(src, errors, stack))
        ref_lists = [list(text_lines(r, errors, stack)) for r in refs]
    if not hyps:
        raise S2SError(f"{display_name(hyp)}: no lines to score")
    for name, lines in [(src, sources), *zip(refs, ref_lists)]:
        check_same_count(display_name(hyp), len(hyps), display_name(name), len(lines))
    keys = bd.length_keys(sources, tokenize) if kind == "length" else bd.rank_keys(sources, tokenize, ranks)
    result = bd.breakdown(kind, keys, hyps, ref_lists, bins)
    if plot:
        with atomic_binary(plot) as out:
            bd.plot(result, out, f"{bd.TITLE[kind]}: {Path(display_name(hyp)).name}")
    if json_out:
        import json

        typer.echo(json.dumps(bd.to_json(result, width, describe), indent=1, ensure_ascii=False))
    else:
        typer.echo(bd.format_table(result, width, describe), nl=False)


def score_with_model(hyp: Optional[str], src: str, models: list[str], nbest: bool, weight: float,
                     batch_size: int, device: str, errors: str) -> None:
    from .nbest import format_nbest, parse_nbest
    from .score import model_scores, rescore_nbest

    if batch_size < 1:
        raise S2SError(f"--batch-size must be at least 1, got {batch_size}")
    dev = pick_device(device)
    nets, src_vocab, tgt_vocab = load_models(models, dev)

    def warn(message: str) -> None:  # a source line read cut
        say(f"s2s score: {display_name(src)}: {message}")

    with ExitStack() as stack:
        sources = list(text_lines(src, errors, stack))
        hyp_lines = text_lines(hyp, errors, stack)
        if nbest:
            entries = parse_nbest(hyp_lines, display_name(hyp))
            for e in rescore_nbest(entries, sources, nets, src_vocab, tgt_vocab, weight, dev, display_name(hyp),
                                   batch_size, warn):
                sys.stdout.write(format_nbest(e.index, e.text, e.score))
        else:
            hyps = list(hyp_lines)
            check_same_count(display_name(hyp), len(hyps), src, len(sources))
            for value in model_scores(zip(sources, hyps), nets, src_vocab, tgt_vocab, dev, batch_size, warn):
                sys.stdout.write(f"{value:.4f}\n")
    sys.stdout.flush()


# -------------------------------------------------------------------------------------------- encode


@command("encode")
def encode_cmd(
    file: Optional[str] = typer.Argument(None, metavar="FILE",
                                         help="Text to encode, one sentence a line ('-' or none: stdin)."),
    model: str = typer.Option(..., "--model", "-m", help="Model file."),
    state: str = typer.Option("h", "--state",
                              help="h: the final hidden state (the paper's Figure 2 [3.8]); c: the cell state; "
                              "hc: both, h first."),
    layer: str = typer.Option("top", "--layer",
                              help="top: the top layer's state; all: every layer's, bottom to top, side by side."),
    batch_size: int = typer.Option(64, "--batch-size", "-b",
                                   help="Sentences encoded together; output is flushed after each batch."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda or cuda:N."),
    output: Optional[str] = typer.Option(None, "--output", "-o",
                                         help="Write here (only once complete) instead of stdout."),
    errors: str = typer.Option("strict", "--errors", help=ERRORS_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary on stderr."),
) -> None:
    """Print each sentence's vector: the encoder's final state, which the decoder starts from.

    Reads FILE (or stdin) and writes one line of space-separated numbers for each input line, in order.
    An empty line gives the zero vector (the state before reading anything). 's2s plot pca' draws them.
    """
    from . import checkpoint
    from .vectors import EncodeStats, check_choices, write_vectors

    check_choices(state, layer, batch_size)
    check_writable(output, [file, model])
    if file in (None, "-") and stdin_is_terminal():
        batch_size = 1  # interactive: answer each line at once
    dev = pick_device(device)
    ckpt = checkpoint.load(model)
    net = ckpt.build_model(dev)
    stats = EncodeStats()
    with ExitStack() as stack:
        lines, ready = paced_lines(file, errors, stack)
        with output_text(output) as out:
            write_vectors(lines, net, ckpt.src_vocab, out, state, layer, batch_size, dev, stats,
                          warn=lambda m: say(f"s2s encode: {display_name(file)}: {m}"), ready=ready)
    if not quiet:
        say(f"s2s encode: {stats.lines} lines ({stats.empty} empty), {stats.dim} numbers each "
            f"(state {state}, {'top layer' if layer == 'top' else 'all layers'})")


# ---------------------------------------------------------------------------------------------- plot

plot_app = typer.Typer(
    name="plot",
    help="Draw PNG figures: training curves from a 'train --log' file, a 2-D PCA of sentence vectors.",
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(plot_app, name="plot")

TITLE_HELP = "A title for the figure."


def png_output(path: str, inputs: list[str | None]) -> None:
    """Refuse an output name that would write a PNG to a terminal or to stdout, or over an input."""
    if path == "-":
        raise S2SError("-o -: the PNG needs a file name")
    check_writable(path, inputs)


@command("curves", parent=plot_app, label="plot curves")
def plot_curves_cmd(
    log: str = typer.Argument("-", metavar="LOG", show_default=False,
                              help="The metrics log of 's2s train --log' ('-' or none: stdin)."),
    output: str = typer.Option(..., "--output", "-o", help="The PNG file to write."),
    title: Optional[str] = typer.Option(None, "--title", help=TITLE_HELP),
) -> None:
    """Plot training and validation perplexity and the learning rate, by step and by time.

    LOG is the JSON-lines file of 's2s train --log'. The left panel shows perplexities (log scale)
    against the step, with the learning rate on a right-hand axis; the right panel shows perplexities
    against the elapsed training time.
    """
    from .plots import plot_curves, read_log

    png_output(output, [log])
    with ExitStack() as stack:
        records = read_log(text_lines(log, "strict", stack), display_name(log),
                           warn=lambda m: say(f"s2s plot curves: {m}"))
    with atomic_binary(output) as out:
        plot_curves(records, out, title)
    valid = sum(r.valid_ppl is not None for r in records)
    say(f"s2s plot curves: {len(records)} records ({valid} validated), steps {records[0].step}-"
        f"{records[-1].step}; figure written to {output}")


@command("pca", parent=plot_app, label="plot pca")
def plot_pca_cmd(
    vectors: str = typer.Argument("-", metavar="VECTORS", show_default=False,
                                  help="Sentence vectors, one a line, as 's2s encode' prints them ('-' or none: "
                                  "stdin)."),
    output: str = typer.Option(..., "--output", "-o", help="The PNG file to write."),
    labels: Optional[str] = typer.Option(None, "--labels",
                                         help="Text whose line i labels vector i, e.g. the sentences encoded "
                                         "[default: the line numbers]."),
    title: Optional[str] = typer.Option(None, "--title", help=TITLE_HELP),
    errors: str = typer.Option("strict", "--errors", help=ERRORS_HELP),
) -> None:
    """Project sentence vectors on their first two principal components and plot them, labelled.

    Writes the scatter plot to -o and prints 'x<TAB>y<TAB>label' for each vector on stdout, in order.
    As the paper's Figure 2 [3.8]: 's2s encode -m MODEL phrases.en > v.txt; s2s plot pca v.txt
    --labels phrases.en -o pca.png'.
    """
    from .plots import format_point, plot_points
    from .vectors import pca_2d, read_vectors

    if vectors == "-" and labels == "-":
        raise S2SError("VECTORS and --labels cannot both be stdin")
    png_output(output, [vectors, labels])
    with ExitStack() as stack:
        rows = read_vectors(text_lines(vectors, errors, stack), display_name(vectors))
        names = list(text_lines(labels, errors, stack)) if labels is not None else None
    if not rows:
        raise S2SError(f"{display_name(vectors)}: no vectors")
    if names is None:
        names = [str(i) for i in range(1, len(rows) + 1)]
    elif len(names) != len(rows):
        raise S2SError(f"{display_name(vectors)} has {len(rows)} vectors but {display_name(labels)} has "
                       f"{len(names)} lines; line i of the labels names vector i")
    projection = pca_2d(rows)
    with atomic_binary(output) as out:
        plot_points(projection.coords, names, projection.explained, out, title)
    for (x, y), name in zip(projection.coords, names):
        sys.stdout.write(format_point(x, y, name) + "\n")
    sys.stdout.flush()
    say(f"s2s plot pca: {len(rows)} vectors of {len(rows[0])} numbers; the two components explain "
        f"{100 * projection.explained[0]:.1f}% and {100 * projection.explained[1]:.1f}% of the variance; "
        f"figure written to {output}")


class ClosedStdout(io.TextIOBase):
    """Stands in for a closed standard output (``s2s ... >&-``): writing to it is an error, not a crash."""

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed")

    @property
    def buffer(self) -> Any:
        raise OSError(errno.EBADF, "standard output is closed")


def main() -> None:
    """Entry point of the ``s2s`` command."""
    if sys.stdout is None:
        sys.stdout = ClosedStdout()
    try:
        app(prog_name="s2s")
    except BrokenPipeError:
        silence_stdout()
        sys.exit(141)
