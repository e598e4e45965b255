"""BLEU broken down by a property of the source sentence: its length, or the average frequency rank of
its words (the paper's Figure 3 [3.7]).

Each line gets a *key* from its source sentence: ``length`` is its number of tokens, ``freq`` the mean,
over its tokens, of each token's rank in a source vocabulary (rank 1 is the most frequent word, the first
token after the specials; a word outside the vocabulary counts as one past the last word). Lines are
sorted by key and cut into bins of nearly equal line count without ever splitting lines of equal key
between two bins, and every bin is scored as a corpus with sacreBLEU, exactly as ``s2s score`` scores
a whole file (``score.metric_scores``).

Source lines without a token have neither a length worth the name nor an average rank: they are left
out and counted (``Breakdown.skipped``). Empty hypotheses are kept and score as the failures they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterable, Mapping, Sequence

from .errors import S2SError
from .score import metric_scores
from .vocab import SPECIALS, Vocab

KINDS = ("length", "freq")
METRICS = ("bleu", "chrf")
DEFAULT_BINS = 8

# What the key is, in words: the table's column head, the plot's x label, the title.
KEY_COLUMN = {"length": "length", "freq": "avg-rank"}
KEY_LABEL = {"length": "sentence length (tokens)", "freq": "average word-frequency rank"}
TITLE = {"length": "BLEU by source sentence length", "freq": "BLEU by average word-frequency rank"}


@dataclass(frozen=True)
class BinScore:
    """One bin: its number (from 1), the range and mean of its keys, its line count and its scores."""

    index: int
    low: float
    high: float
    mean: float
    lines: int
    scores: dict[str, float]  # metric name as sacreBLEU prints it ("BLEU", "chrF2") -> score


@dataclass(frozen=True)
class Breakdown:
    kind: str
    bins: list[BinScore]
    overall: BinScore  # all scored lines together, index 0
    skipped: int  # lines left out because their source has no token
    signatures: dict[str, str]  # metric name -> sacreBLEU signature


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise S2SError(f"--breakdown: unknown breakdown {kind!r} (choose length or freq)")
    return kind


def check_bins(bins: int) -> int:
    if bins < 1:
        raise S2SError(f"--bins must be at least 1, got {bins}")
    return bins


def word_ranks(vocab: Vocab) -> dict[str, int]:
    """Each word of ``vocab`` and its frequency rank: 1 for the first word after the specials."""
    if vocab.tokenizer_model is not None:
        raise S2SError("a sentencepiece vocabulary lists its pieces in the model's order, not by frequency; "
                       "average ranks need a word (or character) vocabulary")
    start = len(SPECIALS)
    return {tok: i - start + 1 for i, tok in enumerate(vocab.tokens) if i >= start}


def length_keys(sources: Iterable[str], tokenize: Callable[[str], list[str]]) -> list[float | None]:
    """The number of tokens of each source line; None for a line without any."""
    return [float(n) if (n := len(tokenize(line))) else None for line in sources]


def rank_keys(sources: Iterable[str], tokenize: Callable[[str], list[str]],
              ranks: Mapping[str, int]) -> list[float | None]:
    """The mean frequency rank of each source line's tokens; a token not in ``ranks`` counts as
    ``len(ranks) + 1``. None for a line without any token."""
    unknown = len(ranks) + 1
    keys: list[float | None] = []
    for line in sources:
        tokens = tokenize(line)
        keys.append(sum(ranks.get(t, unknown) for t in tokens) / len(tokens) if tokens else None)
    return keys


def cut_bins(keys: Sequence[float], bins: int) -> list[list[int]]:
    """Line indices grouped into at most ``bins`` bins of increasing key and nearly equal size.

    Lines are sorted by key (stably, so equal keys keep their order). Each cut is placed where the key
    changes, as close as possible to an equal share of the lines not yet binned; lines of equal key are
    never split, so there are fewer bins than asked when there are fewer distinct keys (or lines).
    """
    check_bins(bins)
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    n = len(order)
    changes = [p for p in range(1, n) if keys[order[p - 1]] != keys[order[p]]]
    cuts: list[int] = []
    start = 0
    for left in range(bins, 1, -1):  # bins still to fill, this one included
        target = start + (n - start) / left
        candidates = [p for p in changes if p > start]
        if not candidates:
            break
        start = min(candidates, key=lambda p: (abs(p - target), p))
        cuts.append(start)
    edges = [0, *cuts, n]
    return [order[a:b] for a, b in zip(edges, edges[1:]) if b > a]


def score_lines(indices: Sequence[int], keys: Sequence[float], hyps: Sequence[str],
                refs: Sequence[Sequence[str]], number: int) -> tuple[BinScore, dict[str, str]]:
    """Corpus BLEU and chrF of the lines ``indices``, as ``s2s score`` computes them."""
    results = metric_scores([hyps[i] for i in indices], [[r[i] for i in indices] for r in refs], METRICS)
    values = [keys[i] for i in indices]
    score = BinScore(number, min(values), max(values), sum(values) / len(values), len(indices),
                     {r.name: r.score for r in results})
    return score, {r.name: r.signature for r in results}


def breakdown(kind: str, keys: Sequence[float | None], hyps: Sequence[str], refs: Sequence[Sequence[str]],
              bins: int = DEFAULT_BINS) -> Breakdown:
    """Score ``hyps`` against the reference streams ``refs`` bin by bin of ``keys`` (one per line; None
    leaves the line out). All sequences must be equally long."""
    check_kind(kind)
    check_bins(bins)
    if any(len(seq) != len(keys) for seq in (hyps, *refs)):
        raise ValueError("keys, hypotheses and references must have one entry per line")
    kept = [i for i, k in enumerate(keys) if k is not None]
    if not kept:
        raise S2SError("no source line has a token; nothing to break down")
    values = [float(k) for k in keys if k is not None]
    sub_hyps = [hyps[i] for i in kept]
    sub_refs = [[r[i] for i in kept] for r in refs]
    groups = cut_bins(values, bins)
    scored = [score_lines(g, values, sub_hyps, sub_refs, n)[0] for n, g in enumerate(groups, start=1)]
    overall, signatures = score_lines(range(len(kept)), values, sub_hyps, sub_refs, 0)
    return Breakdown(kind, scored, overall, len(keys) - len(kept), signatures)


# ------------------------------------------------------------------------------------------- output


def format_key(kind: str, value: float) -> str:
    return f"{value:.0f}" if kind == "length" else f"{value:.1f}"


def format_range(kind: str, b: BinScore) -> str:
    """``low-high`` of a bin's keys, or the one key they all share."""
    low, high = format_key(kind, b.low), format_key(kind, b.high)
    return low if low == high else f"{low}-{high}"


def format_table(result: Breakdown, width: int = 1, describe: str = "") -> str:
    """An aligned plain-text table, one row per bin and a last row ``all``; a first line starting with
    ``#`` says what the key is (``describe``) and how many lines were left out."""
    names = list(result.signatures)
    head = ["bin", KEY_COLUMN[result.kind], "lines", *names]
    rows = [[str(b.index) if b.index else "all",
             format_range(result.kind, b),
             str(b.lines), *(f"{b.scores[m]:.{width}f}" for m in names)]
            for b in (*result.bins, result.overall)]
    widths = [max(len(r[c]) for r in (head, *rows)) for c in range(len(head))]
    comment = f"# {TITLE[result.kind]}"
    comment += f"; key: {describe}" if describe else ""
    comment += f"; {result.skipped} line(s) with a blank source left out" if result.skipped else ""
    lines = [comment, "  ".join(h.rjust(w) if c else h.ljust(w) for c, (h, w) in enumerate(zip(head, widths)))]
    for r in rows:
        lines.append("  ".join(x.rjust(w) if c else x.ljust(w) for c, (x, w) in enumerate(zip(r, widths))))
    return "\n".join(lines) + "\n"


def to_json(result: Breakdown, width: int = 1, describe: str = "") -> dict[str, Any]:
    """A JSON-ready description: the key, the signatures, each bin and the overall scores."""

    def row(b: BinScore) -> dict[str, Any]:
        return {"bin": b.index, "low": b.low, "high": b.high, "mean": round(b.mean, 4), "lines": b.lines,
                **{m: round(s, width) for m, s in b.scores.items()}}

    return {"breakdown": result.kind, "key": KEY_LABEL[result.kind], "tokens": describe,
            "skipped": result.skipped, "signatures": result.signatures,
            "bins": [row(b) for b in result.bins], "all": row(result.overall)}


def plot(result: Breakdown, out: BinaryIO, title: str = "") -> dict[str, Any]:
    """Draw BLEU and chrF per bin (at evenly spaced positions labelled with each bin's key range, as in
    the paper's Figure 3) and the overall BLEU as a dotted line; write the PNG to ``out`` with
    :func:`figures.save_figure` and return its summary."""
    from .figures import new_figure, save_figure

    fig, axes = new_figure()
    ax = axes[0][0]
    xs = list(range(1, len(result.bins) + 1))
    names = list(result.signatures)
    for name, style in zip(names, ("o-", "s--")):
        ax.plot(xs, [b.scores[name] for b in result.bins], style, label=name)
    bleu = result.overall.scores[names[0]]
    ax.axhline(bleu, linestyle=":", color="grey", label=f"{names[0]}, all {result.overall.lines} lines ({bleu:.1f})")
    ax.set_xticks(xs)
    ax.set_xticklabels([format_range(result.kind, b) for b in result.bins],
                       rotation=30 if len(xs) > 6 else 0, ha="right" if len(xs) > 6 else "center")
    ax.set_xlabel(KEY_LABEL[result.kind])
    ax.set_ylabel("BLEU")
    ax.set_title(title or TITLE[result.kind])
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return save_figure(fig, out)
