"""``s2s encode``: the encoder's final state of each sentence, one vector a line."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Optional

import typer

from ..streams import check_writable, display_name, output_text, stdin_is_terminal
from .core import Device, Errors, command, paced_lines, pick_device, say


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
    device: Device = "auto",
    output: Optional[str] = typer.Option(None, "--output", "-o",
                                         help="Write here (only once complete) instead of stdout."),
    errors: Errors = "strict",
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary on stderr."),
) -> None:
    """Print each sentence's vector: the encoder's final state, which the decoder starts from.

    Reads FILE (or stdin) and writes one line of space-separated numbers for each input line, in order.
    An empty line gives the zero vector (the state before reading anything). 's2s plot pca' draws them.
    """
    from .. import checkpoint
    from ..vectors import EncodeStats, check_choices, write_vectors

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
