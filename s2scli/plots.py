"""The pictures of ``s2s plot``: training curves from a ``train --log`` file, and a labelled 2-D scatter
of sentence vectors (the paper's Figure 2). Drawing goes through :mod:`s2scli.figures`, so every PNG
carries a summary of what it shows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterable, Sequence

from .errors import S2SError
from .figures import new_figure, save_figure

# The fields of a log record that the curves need; ``valid_ppl`` is there when the run validated, and
# ``valid_bleu`` and ``valid_chrf`` when it also translated (train --valid-bleu).
REQUIRED = ("step", "elapsed_s", "lr", "train_ppl")
OPTIONAL = ("valid_ppl", "valid_bleu", "valid_chrf")


@dataclass
class LogRecord:
    step: int
    elapsed_s: float
    lr: float
    train_ppl: float
    valid_ppl: float | None = None
    valid_bleu: float | None = None
    valid_chrf: float | None = None


def number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_log(lines: Iterable[str], name: str, warn: Callable[[str], None] | None = None) -> list[LogRecord]:
    """The records of an ``s2s train --log`` file (JSON lines), blank lines skipped.

    A record whose step is not past the one before it starts again from there: the records from that
    step on are dropped (a resumed run redid those steps, or a new run was appended to the same log),
    and ``warn`` is told. Errors name ``name`` and the line.
    """
    records: list[LogRecord] = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{name}:{lineno}"
        try:
            obj = json.loads(line)
        except RecursionError:
            raise S2SError(f"{where}: JSON nested too deeply; expected a line of an 's2s train --log' "
                           "file") from None
        except ValueError as exc:
            raise S2SError(f"{where}: not JSON ({exc.msg} at column {exc.colno}); "
                           "expected a line of an 's2s train --log' file") from None
        if not isinstance(obj, dict):
            raise S2SError(f"{where}: a JSON {type(obj).__name__}, expected an object "
                           "(a line of an 's2s train --log' file)")
        missing = [k for k in REQUIRED if k not in obj]
        if missing:
            raise S2SError(f"{where}: no {', '.join(repr(k) for k in missing)}; "
                           "expected a line of an 's2s train --log' file")
        for key in (*REQUIRED, *OPTIONAL):
            if key in obj and not number(obj[key]):
                raise S2SError(f"{where}: {key!r} is {json.dumps(obj[key])[:40]}, expected a number")
        record = LogRecord(int(obj["step"]), float(obj["elapsed_s"]), float(obj["lr"]), float(obj["train_ppl"]),
                           *(float(obj[k]) if k in obj else None for k in OPTIONAL))
        if records and record.step <= records[-1].step:
            kept = [r for r in records if r.step < record.step]
            if warn:
                warn(f"{where}: step {record.step} is not after step {records[-1].step}; the "
                     f"{len(records) - len(kept)} record(s) before it from step {record.step} on are dropped "
                     "(a resumed or restarted run)")
            records = kept
        records.append(record)
    if not records:
        raise S2SError(f"{name}: no records; expected the JSON lines of 's2s train --log'")
    return records


def time_unit(seconds: float) -> tuple[str, float]:
    """The unit the time axis uses: minutes for runs up to three hours, hours beyond."""
    return ("hours", 3600.0) if seconds > 3 * 3600 else ("minutes", 60.0)


# One colour a run when several logs share a figure (``plot_runs``); a single log keeps its own colours.
RUN_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
               "tab:olive", "tab:cyan", "tab:gray")


@dataclass
class RunStyle:
    """How one log is drawn: its label prefix (empty for a single log) and its colours."""

    prefix: str
    train: str
    valid: str
    lr: str
    lr_style: str = "--"

    @staticmethod
    def of(label: str | None, index: int) -> "RunStyle":
        if label is None:
            return RunStyle("", "tab:blue", "tab:orange", "tab:gray")
        colour = RUN_COLOURS[index % len(RUN_COLOURS)]
        return RunStyle(f"{label} ", colour, colour, colour, ":")


def plot_curves(records: Sequence[LogRecord], out: BinaryIO, title: str | None = None) -> dict[str, Any]:
    """Two panels: perplexities (log scale) and the learning rate (right axis) against the step, and
    perplexities against the elapsed time; a third with validation BLEU and chrF against the step when
    the log has them. Returns the figure's summary."""
    return plot_runs([(None, records)], out, title)


def plot_runs(runs: Sequence[tuple[str | None, Sequence[LogRecord]]], out: BinaryIO,
              title: str | None = None) -> dict[str, Any]:
    """The panels of :func:`plot_curves` with several logs drawn together, each in its own colour and
    its lines labelled with the run's label ('forward train', 'reversed validation'): training lines
    solid, validation dashed, learning rates dotted. A run labelled None is drawn as a single log."""
    styles = [RunStyle.of(label, i) for i, (label, _) in enumerate(runs)]
    scored = [[r for r in records if r.valid_bleu is not None] for _, records in runs]
    fig, axes = new_figure(1, 3 if any(scored) else 2, size=(18.0 if any(scored) else 12.0, 4.5))
    by_step, by_time = axes[0][:2]
    unit, scale = time_unit(max(r.elapsed_s for _, records in runs for r in records))
    lr_ax = by_step.twinx()
    for style, (_, records), run_scored in zip(styles, runs, scored):
        draw_perplexities(by_step, by_time, records, style, scale, several=len(runs) > 1)
        lr_ax.plot([r.step for r in records], [r.lr for r in records], color=style.lr, linestyle=style.lr_style,
                   drawstyle="steps-post", label=f"{style.prefix}learning rate")
        if run_scored:
            plot_scores(axes[0][2], run_scored, marker="o" if len(run_scored) <= 40 else None, style=style)
    positive = all(r.train_ppl > 0 and (r.valid_ppl is None or r.valid_ppl > 0) for _, rs in runs for r in rs)
    for ax in (by_step, by_time):
        if positive:
            ax.set_yscale("log")
        ax.set_ylabel("perplexity")
        ax.grid(True, which="major", alpha=0.3)
    by_step.set_xlabel("step")
    by_step.set_title("perplexity and learning rate by step")
    by_time.set_xlabel(f"elapsed time ({unit})")
    by_time.set_title("perplexity by training time")
    lr_ax.set_ylabel("learning rate")
    top = max((r.lr for _, records in runs for r in records if r.lr > 0), default=1.0)
    lr_ax.set_ylim(0, 1.4 * top)  # room above the schedule for the legend
    handles = by_step.get_legend_handles_labels()[0] + lr_ax.get_legend_handles_labels()[0]
    by_step.legend(handles, [str(h.get_label()) for h in handles], loc="upper right", fontsize="small")
    by_time.legend(loc="upper right", fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, out)


def draw_perplexities(by_step: Any, by_time: Any, records: Sequence[LogRecord], style: RunStyle, scale: float,
                      several: bool) -> None:
    """One run's training and validation perplexity against the step and against the elapsed time."""
    valid = [r for r in records if r.valid_ppl is not None]
    marker = "o" if len(records) <= 40 else None
    for ax, xs, vxs in ((by_step, [r.step for r in records], [r.step for r in valid]),
                        (by_time, [r.elapsed_s / scale for r in records], [r.elapsed_s / scale for r in valid])):
        ax.plot(xs, [r.train_ppl for r in records], color=style.train, marker=marker, markersize=3,
                label=f"{style.prefix}train")
        if valid:
            ax.plot(vxs, [r.valid_ppl for r in valid], color=style.valid, marker=marker, markersize=3,
                    linestyle="--" if several else "-", label=f"{style.prefix}validation")


def plot_scores(ax: Any, scored: Sequence[LogRecord], marker: str | None, style: RunStyle | None = None) -> None:
    """Validation BLEU and chrF of greedy translations (train --valid-bleu) against the step; a run of
    several (``style`` with a label) draws both in its colour, chrF dashed."""
    prefix = style.prefix if style else ""
    bleu_colour, chrf_colour = (style.train, style.train) if prefix and style else ("tab:green", "tab:purple")
    steps = [r.step for r in scored]
    ax.plot(steps, [r.valid_bleu for r in scored], color=bleu_colour, marker=marker, markersize=3,
            label=f"{prefix}BLEU")
    chrf = [r for r in scored if r.valid_chrf is not None]
    if chrf:
        ax.plot([r.step for r in chrf], [r.valid_chrf for r in chrf], color=chrf_colour, marker=marker,
                markersize=3, linestyle="--" if prefix else "-", label=f"{prefix}chrF")
    ax.set_xlabel("step")
    ax.set_ylabel("score")
    ax.set_title("validation BLEU and chrF (greedy)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")


def plot_points(coords: Sequence[tuple[float, float]], labels: Sequence[str], explained: tuple[float, float],
                out: BinaryIO, title: str | None = None) -> dict[str, Any]:
    """A scatter of 2-D points, each with its label beside it, placed to keep labels apart."""
    fig, axes = new_figure(1, 1, size=(8.0, 6.5))
    ax = axes[0][0]
    xs, ys = [c[0] for c in coords], [c[1] for c in coords]
    ax.scatter(xs, ys, s=18, color="tab:blue", zorder=3, label="sentences")
    ax.set_xlabel(f"first principal component ({100 * explained[0]:.1f}% of variance)")
    ax.set_ylabel(f"second principal component ({100 * explained[1]:.1f}% of variance)")
    ax.set_title(title or "sentence vectors, 2-D PCA")
    ax.grid(True, alpha=0.3)
    pad_axes(ax, xs, ys)
    place_labels(fig, ax, coords, labels)
    return save_figure(fig, out)


def pad_axes(ax: Any, xs: Sequence[float], ys: Sequence[float]) -> None:
    """Leave room around the points for their labels."""
    for values, setter in ((xs, ax.set_xlim), (ys, ax.set_ylim)):
        lo, hi = min(values), max(values)
        span = hi - lo if hi > lo else max(abs(hi), 1.0)
        margin = 0.18 * span
        setter(lo - margin, hi + margin)


# Where a label may go relative to its point, in points: (dx, dy, horizontal and vertical alignment).
OFFSETS = [(6, 4, "left", "bottom"), (6, -4, "left", "top"), (-6, 4, "right", "bottom"), (-6, -4, "right", "top"),
           (0, 8, "center", "bottom"), (0, -8, "center", "top"), (10, 0, "left", "center"),
           (-10, 0, "right", "center"), (6, 14, "left", "bottom"), (6, -14, "left", "top"),
           (-6, 14, "right", "bottom"), (-6, -14, "right", "top")]


def place_labels(fig: Any, ax: Any, coords: Sequence[tuple[float, float]], labels: Sequence[str]) -> None:
    """Annotate each point with its label at the offset (of :data:`OFFSETS`) that overlaps least with
    the labels already placed, the points and the axes' edge."""
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    dots = [ax.transData.transform(c) for c in coords]
    placed: list[Any] = []
    for (x, y), label, (px, py) in zip(coords, labels, dots):
        best = None
        for dx, dy, ha, va in OFFSETS:
            text = ax.annotate(label, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                               fontsize=8)
            box = text.get_window_extent(renderer)
            cost = sum(overlap(box, other) for other in placed)
            cost += sum(2.0 * 36 for qx, qy in dots if (qx, qy) != (px, py) and box.contains(qx, qy))
            cost += 4.0 * (box.width * box.height - overlap(box, frame))
            text.remove()
            if best is None or cost < best[0]:
                best = (cost, dx, dy, ha, va, box)
        assert best is not None
        _, dx, dy, ha, va, box = best
        ax.annotate(label, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va, fontsize=8)
        placed.append(box)


def overlap(a: Any, b: Any) -> float:
    """The area two display-space boxes share."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def format_point(x: float, y: float, label: str) -> str:
    """``x<TAB>y<TAB>label`` (tabs and line breaks in the label become spaces)."""
    clean = label.replace("\t", " ").replace("\r", " ").replace("\n", " ")
    return f"{x:.6g}\t{y:.6g}\t{clean}"
