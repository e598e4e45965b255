"""Scoring: sacreBLEU metrics against references, and the model's log-probability of given translations.

``metric_scores`` wraps sacreBLEU (BLEU, chrF, TER) so its numbers and signatures are exactly those of
the ``sacrebleu`` command. ``model_scores`` gives log p(hypothesis | source) under a model or ensemble,
and ``rescore_nbest`` re-ranks a Moses n-best list by the even average of the list's own score and the
model's [3.2, Table 2].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch

from .errors import S2SError
from .model import Seq2Seq
from .text import tokenizer_for
from .translate import TranslateStats, cut_source
from .vocab import BOS, EOS, PAD, Vocab

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


def _pad(rows: list[list[int]], prefix: int | None = None, suffix: int | None = None) -> torch.Tensor:
    rows = [([prefix] if prefix is not None else []) + r + ([suffix] if suffix is not None else []) for r in rows]
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out


@torch.no_grad()
def score_ids(models: list[Seq2Seq], pairs: list[tuple[list[int], list[int]]], device: torch.device) -> list[float]:
    """log p(target | source), averaged over the ensemble's models, for non-empty sources."""
    src = _pad([s for s, _ in pairs]).to(device)
    lengths = torch.tensor([len(s) for s, _ in pairs], device=device)
    tgt_in = _pad([t for _, t in pairs], prefix=BOS).to(device)
    tgt_out = _pad([t for _, t in pairs], suffix=EOS).to(device)
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
    src_tok, tgt_tok, stats = tokenizer_for(src_vocab), tokenizer_for(tgt_vocab), TranslateStats()
    ids = ((cut_source(src_vocab.encode(src_tok.tokenize(src)), lineno, stats, warn, "scored"),
            tgt_vocab.encode(tgt_tok.tokenize(hyp))) for lineno, (src, hyp) in enumerate(pairs, start=1))
    return id_scores(ids, models, torch.device(device), batch_size)


def id_scores(pairs: Iterable[tuple[list[int], list[int]]], models: list[Seq2Seq], device: torch.device,
              batch_size: int) -> Iterator[float]:
    """``score_ids`` over (source ids, target ids) pairs in batches of ``batch_size``, in order; an empty
    source gets ``nan``."""
    buffer: list[tuple[list[int], list[int]]] = []

    def flush() -> Iterator[float]:
        todo = [i for i, (s, _) in enumerate(buffer) if s]
        scores = score_ids(models, [buffer[i] for i in todo], device) if todo else []
        out = [math.nan] * len(buffer)
        for i, value in zip(todo, scores):
            out[i] = value
        buffer.clear()
        yield from out

    for pair in pairs:
        buffer.append(pair)
        if len(buffer) >= batch_size:
            yield from flush()
    yield from flush()


@dataclass
class NbestEntry:
    index: int
    text: str
    score: float


def parse_nbest(lines: Iterable[str], name: str) -> Iterator[NbestEntry]:
    """Read n-best lines: ``i ||| hypothesis ||| score`` (as ``translate --nbest`` writes) or Moses's
    ``i ||| hypothesis ||| features ||| score [||| alignment ...]``."""
    for lineno, line in enumerate(lines, start=1):
        fields = line.split(" ||| ")
        if len(fields) < 3:
            raise S2SError(f"{name}:{lineno}: not an n-best line (expected 'i ||| hypothesis ||| score')")
        try:
            index, score = int(fields[0]), float(fields[2] if len(fields) == 3 else fields[3])
        except ValueError:
            raise S2SError(f"{name}:{lineno}: n-best line needs an integer index and a numeric score") from None
        if index < 0:
            raise S2SError(f"{name}:{lineno}: negative sentence index {index}")
        if not math.isfinite(score):
            raise S2SError(f"{name}:{lineno}: score {score} is not a finite number")
        yield NbestEntry(index, fields[1], score)


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
    src_tok, tgt_tok, stats = tokenizer_for(src_vocab), tokenizer_for(tgt_vocab), TranslateStats()
    source_ids = {i: cut_source(src_vocab.encode(src_tok.tokenize(sources[i])), i + 1, stats, warn, "scored")
                  for i in sorted({e.index for e in items})}
    pairs = ((source_ids[e.index], tgt_vocab.encode(tgt_tok.tokenize(e.text))) for e in items)
    scores = list(id_scores(pairs, models, torch.device(device), batch_size))
    rescored = [NbestEntry(e.index, e.text, e.score if math.isnan(s) else (1 - weight) * e.score + weight * s)
                for e, s in zip(items, scores)]
    groups: dict[int, list[NbestEntry]] = {}
    for e in rescored:
        groups.setdefault(e.index, []).append(e)
    for index in sorted(groups):
        yield from sorted(groups[index], key=lambda e: -e.score)
