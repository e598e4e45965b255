"""Scoring: sacreBLEU metrics against references, and the model's log-probability of given translations.

``metric_scores`` wraps sacreBLEU (BLEU, chrF, TER) so its numbers and signatures are exactly those of
the ``sacrebleu`` command. ``model_scores`` gives log p(hypothesis | source) under a model or ensemble,
and ``rescore_nbest`` re-ranks a Moses n-best list by the even average of the list's own score and the
model's [3.2, Table 2].
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch

from .batching import SourceStats, ids_to_tensor, on_nonempty, pad_ids, source_ids
from .errors import S2SError
from .lines import check_same_count
from .model import Seq2Seq
from .nbest import NbestEntry, parse_nbest  # noqa: F401 (parse_nbest: read n-best lists from here too)
from .pacing import batches
from .vocab import BOS, EOS, Vocab

METRICS = ("bleu", "chrf", "ter")


@dataclass(frozen=True)
class MetricScore:
    name: str
    score: float
    signature: str
    text: str  # the sacrebleu command's text line: "BLEU|nrefs:1|...|version:2.x = 34.5 ..."
    json: dict[str, Any]


def parse_metrics(spec: str) -> list[str]:
    names = [m.strip().lower() for m in spec.split(",") if m.strip()]
    bad = [m for m in names if m not in METRICS]
    if bad or not names:
        raise S2SError(f"--metrics: unknown metric {', '.join(bad) or spec!r} (choose from {', '.join(METRICS)})")
    return names


def metric_scores(hyps: Sequence[str], refs: Sequence[Sequence[str]], metrics: Sequence[str],
                  width: int = 1) -> list[MetricScore]:
    """Corpus scores of ``hyps`` against one or more reference streams (each as long as ``hyps``)."""
    import json

    from sacrebleu.metrics import BLEU, CHRF, TER

    makers = {"bleu": BLEU, "chrf": CHRF, "ter": TER}
    results = []
    for name in metrics:
        metric = makers[name]()
        score = metric.corpus_score(list(hyps), [list(r) for r in refs])
        signature = str(metric.get_signature())
        results.append(MetricScore(
            name=score.name, score=score.score, signature=signature,
            text=score.format(width=width, signature=signature),
            json=json.loads(score.format(width=width, signature=signature, is_json=True)),
        ))
    return results


# Paired significance tests, as sacreBLEU runs them: their names and default sample counts, its seed.
PAIRED_TESTS = {"bs": "paired bootstrap resampling", "ar": "paired approximate randomization"}
PAIRED_SAMPLES = {"bs": "resamples", "ar": "trials"}
PAIRED_N = {"bs": 1000, "ar": 10000}
DEFAULT_SEED = 12345
SIGNIFICANCE = 0.05  # a p-value at or below it is marked significant, as the sacrebleu command marks it


@dataclass(frozen=True)
class SystemScore:
    """One metric of one system: its corpus score; with ``bs`` the bootstrap mean and the half-width of its
    95% confidence interval; against the baseline, the p-value of the paired test."""
    score: float
    mean: float | None = None
    ci: float | None = None
    p_value: float | None = None

    @property
    def significant(self) -> bool | None:
        return None if self.p_value is None else self.p_value <= SIGNIFICANCE


@dataclass(frozen=True)
class Comparison:
    systems: list[str]
    metrics: list[str]  # sacreBLEU's names of the metrics: BLEU, chrF2, TER
    signatures: dict[str, str]
    scores: dict[str, list[SystemScore]]  # by metric: one per system, in order, the baseline first
    test: str | None = None  # "bs", "ar", or None for plain scores
    n: int | None = None
    seed: int | None = None


@contextlib.contextmanager
def _sacrebleu_seed(seed: int) -> Iterator[None]:
    """sacreBLEU's paired tests read their seed from ``SACREBLEU_SEED`` (its command's only way to set it)."""
    before = os.environ.get("SACREBLEU_SEED")
    os.environ["SACREBLEU_SEED"] = str(seed)
    try:
        yield
    finally:
        if before is None:
            del os.environ["SACREBLEU_SEED"]
        else:
            os.environ["SACREBLEU_SEED"] = before


def compare_systems(systems: Sequence[tuple[str, Sequence[str]]], refs: Sequence[Sequence[str]],
                    metrics: Sequence[str], test: str | None = None, n: int | None = None,
                    seed: int = DEFAULT_SEED) -> Comparison:
    """Corpus scores of several (name, hypotheses) systems against the same reference streams.

    With ``test`` ``"bs"`` or ``"ar"``, sacreBLEU's ``PairedTest`` compares each system with the first
    (the baseline) through ``n`` bootstrap resamples or randomization trials (default: sacreBLEU's, 1000
    and 10000) from ``seed``, exactly as ``SACREBLEU_SEED=seed sacrebleu REF -i BASE SYS... --paired-bs``
    (``--paired-ar``) computes them; ``bs`` also gives every system's bootstrap mean and 95% confidence
    interval. One exception: a system whose lines are all those of the baseline gets p = 1, where
    sacreBLEU, counting only strictly larger differences, reports the smallest p it can, 1/(n+1), for
    the very absence of a difference.
    """
    from sacrebleu.metrics import BLEU, CHRF, TER

    if not systems:
        raise S2SError("no system to score")
    for name, hyps in systems:
        if not hyps:
            raise S2SError(f"{name}: no lines to score")
        for ref in refs:
            check_same_count(name, len(hyps), "the references", len(ref), other_verb="have")
    makers = {"bleu": BLEU, "chrf": CHRF, "ter": TER}
    # Built with the references, as the sacrebleu command builds them: their statistics are cached once.
    objects = {name: makers[name](references=[list(r) for r in refs]) for name in metrics}
    named = [(name, list(hyps)) for name, hyps in systems]
    if test is None:
        scores: dict[str, list[SystemScore]] = {}
        signatures: dict[str, str] = {}
        for metric in objects.values():
            results = [metric.corpus_score(hyps, None) for _, hyps in named]
            scores[results[0].name] = [SystemScore(float(r.score)) for r in results]
            signatures[results[0].name] = str(metric.get_signature())
        return Comparison([s for s, _ in named], list(scores), signatures, scores)
    if test not in PAIRED_TESTS:
        raise S2SError(f"--paired: unknown test {test!r} (choose bs, paired bootstrap resampling, or ar, "
                       "paired approximate randomization)")
    if len(named) < 2:
        raise S2SError("a paired test needs two or more systems: the baseline, then the systems to compare")
    n = PAIRED_N[test] if n is None else n
    if n < 1:
        raise S2SError(f"--paired-n must be at least 1, got {n}")
    if seed < 1:  # numpy refuses negative seeds, and sacreBLEU leaves the systems' tests unseeded at 0
        raise S2SError(f"--seed must be a positive integer, got {seed}")
    from sacrebleu.significance import PairedTest

    with _sacrebleu_seed(seed):
        sigs, table = PairedTest(named, objects, references=None, test_type=test, n_samples=n)()
    same = [hyps == named[0][1] for _, hyps in named]
    scores = {metric: [SystemScore(float(r.score), _float(r.mean), _float(r.ci),
                                   1.0 if same[i] and i > 0 else _float(r.p_value))
                       for i, r in enumerate(results)]
              for metric, results in table.items() if metric != "System"}
    return Comparison([s for s, _ in named], list(scores), {k: v.format() for k, v in sigs.items()}, scores,
                      test, n, seed)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def format_comparison(c: Comparison, width: int = 1) -> str:
    """A table of the comparison for people: comment lines (``#``) that say what was done and give each
    metric's signature, a head line, and one line per system in columns aligned with spaces; with ``bs``
    each score is followed by ``(μ ± CI)``, and with a test each metric by a p-value column whose
    significant values carry a ``*``."""
    lines = []
    if c.test is not None:
        lines.append(f"# {PAIRED_TESTS[c.test]}, {c.n} {PAIRED_SAMPLES[c.test]}, seed {c.seed}: each system "
                     f"against the baseline, {c.systems[0]}")
        if c.test == "bs":
            lines.append("# score (μ ± 95% CI): the corpus score, the bootstrap mean and the half-width of its "
                         "95% confidence interval")
        lines.append(f"# p: the p-value of the difference from the baseline, * where p <= {SIGNIFICANCE} "
                     "(significant)")
    lines += [f"# {metric}: {c.signatures[metric]}" for metric in c.metrics]
    head = ["system"]
    for metric in c.metrics:
        head += [f"{metric} (μ ± 95% CI)" if c.test == "bs" else metric] + (["p"] if c.test else [])
    rows = [head]
    for i, system in enumerate(c.systems):
        row = [system]
        for metric in c.metrics:
            s = c.scores[metric][i]
            row.append(f"{s.score:.{width}f}" + (f" ({s.mean:.{width}f} ± {s.ci:.{width}f})"
                                                  if s.mean is not None and s.ci is not None else ""))
            if c.test:
                row.append("- " if s.p_value is None else f"{s.p_value:.4f}" + ("*" if s.significant else " "))
        rows.append(row)
    widths = [max(len(r[k]) for r in rows) for k in range(len(head))]
    for r in rows:
        lines.append("  ".join(cell.ljust(w) if k == 0 else cell.rjust(w)
                               for k, (cell, w) in enumerate(zip(r, widths))).rstrip())
    return "\n".join(lines) + "\n"


def comparison_json(c: Comparison) -> dict[str, Any]:
    """The comparison for programs: unrounded numbers, ``null`` where a value does not apply."""
    return {
        "test": c.test, "n": c.n, "seed": c.seed, "baseline": c.systems[0] if c.test else None,
        "signatures": c.signatures,
        "systems": [{"system": system, "scores": {
            metric: {"score": c.scores[metric][i].score, "mean": c.scores[metric][i].mean,
                     "ci": c.scores[metric][i].ci, "p_value": c.scores[metric][i].p_value,
                     "significant": c.scores[metric][i].significant}
            for metric in c.metrics}} for i, system in enumerate(c.systems)],
    }


@torch.no_grad()
def score_ids(models: list[Seq2Seq], pairs: list[tuple[list[int], list[int]]], device: torch.device) -> list[float]:
    """log p(target | source), averaged over the ensemble's models, for non-empty sources."""
    src, lengths = ids_to_tensor([s for s, _ in pairs], device)  # [B, S], [B]
    tgt_in = pad_ids([t for _, t in pairs], prefix=BOS).to(device)  # [B, T + 1]: <s> t
    tgt_out = pad_ids([t for _, t in pairs], suffix=EOS).to(device)  # [B, T + 1]: t </s>
    total = torch.stack([m.score(src, lengths, tgt_in, tgt_out) for m in models]).mean(dim=0)
    return total.tolist()


def model_scores(
    pairs: Iterable[tuple[str, str]],
    models: list[Seq2Seq],
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    warn: Callable[[str], None] | None = None,
) -> Iterator[float]:
    """log p(hypothesis | source) for each (source line, hypothesis line), in order.

    An empty source gets ``nan`` (the model cannot read an empty sentence). A source over
    MAX_SOURCE_TOKENS is read cut, and said through ``warn`` with its line number.
    """
    for vocab in (src_vocab, tgt_vocab):
        vocab.text_tokenizer()  # a vocabulary that cannot tokenize fails before any line is read
    stats = SourceStats()
    ids = ((source_ids(src, src_vocab, lineno, stats, warn, "scored"), tgt_vocab.encode_line(hyp))
           for lineno, (src, hyp) in enumerate(pairs, start=1))
    return id_scores(ids, models, torch.device(device), batch_size)


def id_scores(pairs: Iterable[tuple[list[int], list[int]]], models: list[Seq2Seq], device: torch.device,
              batch_size: int) -> Iterator[float]:
    """``score_ids`` over (source ids, target ids) pairs in batches of ``batch_size``, in order; an empty
    source gets ``nan``."""
    for chunk in batches(pairs, batch_size):
        yield from on_nonempty(chunk, lambda todo: score_ids(models, todo, device), math.nan,
                               source=lambda pair: pair[0])


def rescore_nbest(
    entries: Iterable[NbestEntry],
    sources: Sequence[str],
    models: list[Seq2Seq],
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    weight: float = 0.5,
    device: torch.device | str = "cpu",
    name: str = "n-best",
    batch_size: int = 64,
    warn: Callable[[str], None] | None = None,
) -> Iterator[NbestEntry]:
    """Each entry with score ``(1 - weight) * list score + weight * model log-prob``, re-ranked within its
    sentence (best first). ``weight=0.5`` is the paper's even average. Each source line is read once
    (cut to MAX_SOURCE_TOKENS, said through ``warn``), however many entries it has."""
    items = list(entries)
    for e in items:
        if e.index >= len(sources):
            raise S2SError(f"{name}: sentence index {e.index} but the source has only {len(sources)} lines")
    for vocab in (src_vocab, tgt_vocab):
        vocab.text_tokenizer()  # a vocabulary that cannot tokenize fails before any line is read
    stats = SourceStats()
    src_ids = {i: source_ids(sources[i], src_vocab, i + 1, stats, warn, "scored")
               for i in sorted({e.index for e in items})}
    pairs = ((src_ids[e.index], tgt_vocab.encode_line(e.text)) for e in items)
    scores = list(id_scores(pairs, models, torch.device(device), batch_size))
    rescored = [NbestEntry(e.index, e.text, e.score if math.isnan(s) else (1 - weight) * e.score + weight * s)
                for e, s in zip(items, scores)]
    groups: dict[int, list[NbestEntry]] = {}
    for e in rescored:
        groups.setdefault(e.index, []).append(e)
    for index in sorted(groups):
        yield from sorted(groups[index], key=lambda e: -e.score)
