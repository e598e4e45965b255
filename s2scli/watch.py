"""Watching a model learn: at a validation, greedy translations of some validation sentences, scored
with BLEU and chrF exactly as ``s2s score`` scores them, and a few of them shown as examples.

The sentences come from the prepared validation file, so they are token ids: sources are decoded as ids
and the references are rebuilt as text by the target vocabulary's detokenizer. With subword or character
vocabularies that text is the original line; with word vocabularies, words outside the vocabulary come
back as ``<unk>`` (and Moses detokenization may differ from the raw text in spacing), so the figures can
differ slightly from ``s2s score`` against the raw reference file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from .config import DecodeConfig
from .data import PreparedData
from .model import Seq2Seq
from .score import metric_scores
from .translate import decode_window
from .vocab import Vocab

# Validation sentences longer than this many source tokens are not picked (they would dominate the cost).
MAX_SAMPLE_TOKENS = 100


@dataclass(frozen=True)
class Sample:
    """The validation sentences translated at every validation: their ids and their text."""

    indices: list[int]  # pair numbers in the validation file, from 0
    sources: list[list[int]]  # source ids
    source_text: list[str]  # detokenized source
    references: list[str]  # detokenized target


@dataclass(frozen=True)
class SampleScore:
    """One validation's translations of the sample and their scores."""

    bleu: float
    chrf: float
    hypotheses: list[str]
    seconds: float  # what decoding and scoring cost


def text_of(ids: np.ndarray | list[int], vocab: Vocab) -> str:
    return vocab.text_tokenizer().detokenize(vocab.decode(int(i) for i in ids))


def pick_sample(data: PreparedData, n: int) -> Sample:
    """Up to ``n`` pairs of ``data``, spread evenly over the file (a validation file is often ordered by
    document), skipping sources longer than MAX_SAMPLE_TOKENS."""
    usable = np.flatnonzero(data.src_lens <= MAX_SAMPLE_TOKENS)
    if n <= 0 or len(usable) == 0:
        return Sample([], [], [], [])
    picked = usable[np.linspace(0, len(usable) - 1, num=min(n, len(usable))).round().astype(int)]
    indices = sorted({int(i) for i in picked})
    pairs = [data.pair(i) for i in indices]
    return Sample(indices, [[int(t) for t in src] for src, _ in pairs],
                  [text_of(src, data.src_vocab) for src, _ in pairs],
                  [text_of(tgt, data.tgt_vocab) for _, tgt in pairs])


def translate_sample(model: Seq2Seq, sample: Sample, tgt_vocab: Vocab, device: torch.device,
                     batch_size: int = 64) -> SampleScore:
    """Greedy translations of the sample by ``model`` (put in eval mode for the while), scored against
    the sample's references with sacreBLEU's BLEU and chrF."""
    start = time.monotonic()
    was_training = model.training
    model.eval()
    cfg = DecodeConfig(beam=1, batch_size=batch_size)
    detok = tgt_vocab.text_tokenizer()
    try:  # sorted by length into batches of similar lengths, results in the sample's order
        found = decode_window([model], sample.sources, cfg, device) if sample.sources else []
        hypotheses = [detok.detokenize(tgt_vocab.decode(h[0].ids)) for h in found]
    finally:
        model.train(was_training)
    scores = {s.name: s.score for s in metric_scores(hypotheses, [sample.references], ["bleu", "chrf"])}
    return SampleScore(scores["BLEU"], scores["chrF2"], hypotheses, time.monotonic() - start)


def examples(sample: Sample, result: SampleScore, k: int) -> list[str]:
    """``k`` examples as lines: source, reference and output of the sample's first ``k`` sentences."""
    lines = []
    for n, (src, ref, hyp) in enumerate(zip(sample.source_text, sample.references, result.hypotheses)):
        if n == k:
            break
        lines += [f"  example {n + 1} source:    {src}", f"  example {n + 1} reference: {ref}",
                  f"  example {n + 1} output:    {hyp}"]
    return lines
