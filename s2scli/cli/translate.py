"""``s2s translate``: raw text in, translations out, one line for each line."""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import replace
from typing import Any, Optional

import typer

from ..config import DecodeConfig, get_preset, resolve
from ..streams import check_writable, display_name, output_text, stdin_is_terminal
from .core import PRESET_HELP, Device, Errors, command, given_options, paced_lines, pick_device, say


def load_models(paths: list[str], device: Any) -> tuple[list[Any], Any, Any]:
    nets, src_vocab, tgt_vocab, _ = load_ensemble(paths, device)
    return nets, src_vocab, tgt_vocab


def load_ensemble(paths: list[str], device: Any) -> tuple[list[Any], Any, Any, str]:
    """The models, their shared vocabularies and the preset the first was trained with ("" for none)."""
    from .. import checkpoint
    from ..translate import check_ensemble

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
    batch_size: int = typer.Option(DecodeConfig.batch_size, "--batch-size", "-b", help="Sentences decoded together."),
    maxi_batch: int = typer.Option(DecodeConfig.maxi_batch, "--maxi-batch",
                                   help="Read this many batches at once and sort their sentences by length, so each "
                                   "batch holds similar lengths (faster); output is flushed after each such window "
                                   "(1: batch by batch)."),
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
    device: Device = "auto",
    output: Optional[str] = typer.Option(None, "--output", "-o",
                                         help="Write here (only once complete) instead of stdout."),
    errors: Errors = "strict",
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
    from ..translate import cap_beam, check_attention, check_config, translate

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
        cfg = replace(cfg, batch_size=1, maxi_batch=1)  # interactive: answer each line at once
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
