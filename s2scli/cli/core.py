"""The command line's shared core: the typer app, the error handling every command goes through, and the
helpers that open streams and read options.

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
import traceback
from contextlib import ExitStack
from typing import Annotated, Any, Callable, Iterator, TypeVar

import typer

from .. import __version__
from ..config import PRESETS
from ..errors import S2SError
from ..lines import read_lines
from ..streams import display_name, open_binary

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
DEVICE_HELP = "auto (CUDA when present), cpu, cuda or cuda:N."
# Options several commands declare alike, declared once (the default stays in each signature: `errors: Errors
# = "strict"`).
Errors = Annotated[str, typer.Option("--errors", help=ERRORS_HELP)]
Device = Annotated[str, typer.Option("--device", help=DEVICE_HELP)]
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
    from ..pacing import paced

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



def given_options(ctx: typer.Context) -> set[str]:
    """Names of the parameters the user typed on the command line (not defaults)."""
    # Compared by name: typer may vendor its own copy of click's ParameterSource enum.
    return {name for name in ctx.params
            if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"}


def option_names(ctx: typer.Context, names: set[str]) -> str:
    """'--src, --nbest' for parameter names, in the order the command declares them."""
    return ", ".join(p.opts[-1] if len(p.opts) == 1 else max(p.opts, key=len)
                     for p in ctx.command.params if p.name in names)


def load_vocab(path: str) -> Any:
    from ..vocab import read_vocab

    with ExitStack() as stack:
        return read_vocab(text_lines(path, "strict", stack), display_name(path))


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
