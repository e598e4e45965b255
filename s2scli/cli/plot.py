"""``s2s plot curves`` and ``s2s plot pca``: PNG figures of a training log and of sentence vectors."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import S2SError
from ..streams import atomic_binary, check_writable, display_name
from .core import Errors, app, command, say, text_lines

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
    logs: Optional[List[str]] = typer.Argument(None, metavar="LOG", show_default=False,
                                               help="Metrics logs of 's2s train --log' ('-' or none: stdin); "
                                               "several are drawn in one figure."),
    output: str = typer.Option(..., "--output", "-o", help="The PNG file to write."),
    labels: Optional[List[str]] = typer.Option(None, "--label",
                                               help="With several LOG: the name of each run in the legend, "
                                               "once per LOG in order [default: the file names]."),
    title: Optional[str] = typer.Option(None, "--title", help=TITLE_HELP),
) -> None:
    """Plot training and validation perplexity and the learning rate, by step and by time.

    LOG is the JSON-lines file of 's2s train --log'. The left panel shows perplexities (log scale)
    against the step, with the learning rate on a right-hand axis; the right panel shows perplexities
    against the elapsed training time. Several LOG files (e.g. a forward and a reversed model) are drawn
    in one figure, a colour each, their lines labelled with --label or the file names.
    """
    from ..plots import plot_runs, read_log

    paths = list(logs) if logs else ["-"]
    names = run_labels(paths, list(labels or []))
    png_output(output, list(paths))
    runs = []
    with ExitStack() as stack:
        for path in paths:
            records = read_log(text_lines(path, "strict", stack), display_name(path),
                               warn=lambda m: say(f"s2s plot curves: {m}"))
            runs.append((names[len(runs)] if names else None, records))
    with atomic_binary(output) as out:
        plot_runs(runs, out, title)
    say("s2s plot curves: " + "; ".join(run_summary(label, records) for label, records in runs)
        + f"; figure written to {output}")


def run_labels(paths: list[str], labels: list[str]) -> list[str] | None:
    """The legend names of several logs (None for one log without --label); refuses a second stdin."""
    if paths.count("-") > 1:
        raise S2SError("only one LOG can be stdin ('-')")
    if labels and len(labels) != len(paths):
        raise S2SError(f"{len(labels)} --label for {len(paths)} LOG files; give one per LOG, in order")
    if labels:
        return labels
    if len(paths) == 1:
        return None
    return ["stdin" if p == "-" else Path(p).stem for p in paths]


def run_summary(label: str | None, records: list) -> str:
    valid = sum(r.valid_ppl is not None for r in records)
    head = f"{label}: " if label is not None else ""
    return f"{head}{len(records)} records ({valid} validated), steps {records[0].step}-{records[-1].step}"


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
    errors: Errors = "strict",
) -> None:
    """Project sentence vectors on their first two principal components and plot them, labelled.

    Writes the scatter plot to -o and prints 'x<TAB>y<TAB>label' for each vector on stdout, in order.
    As the paper's Figure 2 [3.8]: 's2s encode -m MODEL phrases.en > v.txt; s2s plot pca v.txt
    --labels phrases.en -o pca.png'.
    """
    from ..plots import format_point, plot_points
    from ..vectors import pca_2d, read_vectors

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
