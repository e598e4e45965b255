"""``s2s score`` in its four modes: metrics against references, several systems compared, scores by
bins of the source (--breakdown), and a model's log-probabilities (-m, n-best rescoring)."""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Optional

import typer

from ..errors import S2SError
from ..lines import check_same_count
from ..streams import atomic_binary, check_writable, display_name
from .core import Errors, command, given_options, load_vocab, option_names, pick_device, say, text_lines
from .translate import load_models


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
    errors: Errors = "strict",
) -> None:
    """Score translations: sacreBLEU metrics against --ref, or the model's log-probability with -m.

    With --ref: prints BLEU (and --metrics chrf,ter) with the sacreBLEU signature, the same numbers as the
    sacrebleu command. With -m and --src: prints log p(hypothesis | source) for each line, or with --nbest
    re-ranks the n-best list by an average of its scores and the model's (the paper's rescoring). With
    --ref, --src and --breakdown: a table of BLEU and chrF by bins of source length or word rarity. With
    --ref and several HYP files: a table of each file's scores; --paired adds significance tests against
    the first file, as sacrebleu's --paired-bs and --paired-ar.
    """
    given, hyps = given_options(ctx), hyps or []
    mode = score_mode(ctx, given, hyps, bool(models), breakdown)
    hyp = hyps[0] if hyps else None
    if mode == "model":
        check_model_options(ctx, given, refs, src, weight)
        return score_with_model(hyp, str(src), models or [], nbest, weight, batch_size, device, errors)
    refs = check_ref_options(ctx, given, hyps, refs, breakdown, width)
    if mode == "breakdown":
        return score_breakdown(hyp, refs, src, str(breakdown), vocab, bins, plot, json_out, width, errors)
    if mode == "systems":
        test, n, seed = paired_settings(ctx, given, hyps, paired, paired_n, seed)
        return score_systems(hyps, refs, metrics, test, n, seed, json_out, width, errors)
    return score_metrics(hyp, refs, metrics, json_out, width, errors)


def score_mode(ctx: typer.Context, given: set[str], hyps: list[str], models: bool, breakdown: Optional[str]) -> str:
    """Which of score's modes the options ask for: "model" (-m), "breakdown", "systems" (several HYP or
    --paired) or "metrics"; options that belong to another mode are refused."""
    if breakdown is None:
        misplaced = given & {"vocab", "bins", "plot"}
        if misplaced:
            raise S2SError(f"{option_names(ctx, misplaced)} only apply with --breakdown")
    systems = len(hyps) > 1 or bool(given & PAIRED_OPTIONS)
    if systems and (models or breakdown is not None):
        way = "-m" if models else "--breakdown"
        if len(hyps) > 1:
            raise S2SError(f"{way} scores one HYP file, not {len(hyps)} (several compare systems with --ref)")
        raise S2SError(f"{option_names(ctx, given & PAIRED_OPTIONS)} only apply with --ref, not with {way}")
    return "model" if models else "breakdown" if breakdown is not None else "systems" if systems else "metrics"


def check_model_options(ctx: typer.Context, given: set[str], refs: Optional[list[str]], src: Optional[str],
                        weight: float) -> None:
    """``score -m``: --src required, the reference-only options refused."""
    if refs:
        raise S2SError("give either --ref (metrics) or -m with --src (model scores), not both")
    if not src:
        raise S2SError("-m needs --src, the source sentences the hypotheses translate")
    misplaced = given & {"metrics", "json_out", "width", "breakdown"}
    if misplaced:
        raise S2SError(f"{option_names(ctx, misplaced)} only apply with --ref, not with -m")
    if not 0.0 <= weight <= 1.0:
        raise S2SError(f"--weight must be between 0 and 1, got {weight}")


def check_ref_options(ctx: typer.Context, given: set[str], hyps: list[str], refs: Optional[list[str]],
                      breakdown: Optional[str], width: int) -> list[str]:
    """``score --ref``: at most one input on stdin, the model-only options refused; returns the references."""
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
    if breakdown is not None and "metrics" in given:
        raise S2SError("--metrics: --breakdown always reports BLEU and chrF2")
    return refs


def read_systems(hyps: list[Optional[str]], refs: list[str], errors: str, src: Optional[str] = None
                 ) -> tuple[list[tuple[str, list[str]]], list[list[str]], list[str]]:
    """Read the HYP files, the references and (given) the source: ``([(name, lines)] per HYP, [lines] per
    REF, source lines)``. Refuses a HYP with no lines and any file whose line count differs from a HYP's;
    every message names standard input ``<stdin>``."""
    with ExitStack() as stack:
        systems = [(display_name(h), list(text_lines(h, errors, stack))) for h in hyps]
        sources = list(text_lines(src, errors, stack)) if src is not None else []
        ref_lists = [list(text_lines(r, errors, stack)) for r in refs]
    others = [(display_name(r), lines) for r, lines in zip(refs, ref_lists)]
    if src is not None:
        others.insert(0, (display_name(src), sources))
    for name, lines in systems:
        if not lines:
            raise S2SError(f"{name}: no lines to score")
        for other, other_lines in others:
            check_same_count(name, len(lines), other, len(other_lines))
    return systems, ref_lists, sources


def score_metrics(hyp: Optional[str], refs: list[str], metrics: str, json_out: bool, width: int,
                  errors: str) -> None:
    """``score --ref REF [HYP]``: sacreBLEU's metrics of one file, as the sacrebleu command prints them."""
    from ..score import metric_scores, parse_metrics

    names = parse_metrics(metrics)
    [(_, hyps)], ref_lists, _ = read_systems([hyp], refs, errors)
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
    from ..score import DEFAULT_SEED, PAIRED_TESTS

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
    from ..score import (
        compare_systems,
        comparison_json,
        format_comparison,
        parse_metrics,
    )

    names = parse_metrics(metrics)
    systems, ref_lists, _ = read_systems(list(hyps), refs, errors)
    result = compare_systems(systems, ref_lists, names, test, n, seed)
    if json_out:
        import json

        typer.echo(json.dumps(comparison_json(result), indent=1, ensure_ascii=False))
    else:
        typer.echo(format_comparison(result, width), nl=False)


def score_breakdown(hyp: Optional[str], refs: list[str], src: Optional[str], kind: str, vocab_path: Optional[str],
                    bins: int, plot: Optional[str], json_out: bool, width: int, errors: str) -> None:
    """``score --breakdown``: BLEU and chrF by bins of a property of the source sentences."""
    from .. import breakdown as bd

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
    [(_, hyps)], ref_lists, sources = read_systems([hyp], refs, errors, src)
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
    from ..nbest import format_nbest, parse_nbest
    from ..score import model_scores, rescore_nbest

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
            check_same_count(display_name(hyp), len(hyps), display_name(src), len(sources))
            for value in model_scores(zip(sources, hyps), nets, src_vocab, tgt_vocab, dev, batch_size, warn):
                sys.stdout.write(f"{value:.4f}\n")
    sys.stdout.flush()
