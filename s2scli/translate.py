"""Raw text in, raw text out: tokenize, map to ids, beam search, detokenize, one line per line.

Input is read ``batch_size`` lines at a time; each batch's output is written and flushed before the
next is read, so output streams through pipes. Empty lines give empty lines without touching the model.
"""

from __future__ import annotations

import copy
import itertools
import warnings
from dataclasses import dataclass
from typing import Callable, Iterable, TextIO

import torch

from .config import DecodeConfig
from .errors import S2SError
from .model import Seq2Seq
from .search import Hypothesis, beam_search
from .text import tokenizer_for
from .vocab import BOS, EOS, PAD, UNK, Vocab

# Sources longer than this many tokens are cut (and a warning is given): a runaway line must not
# exhaust memory, and such a sentence is far outside anything the model was trained on.
MAX_SOURCE_TOKENS = 1000


@dataclass
class TranslateStats:
    lines: int = 0
    empty: int = 0
    truncated: int = 0


PRECISIONS = ("fp32", "bf16", "int8")


def check_config(cfg: DecodeConfig) -> None:
    if cfg.precision not in PRECISIONS:
        raise S2SError(f"--precision must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}")
    if cfg.beam < 1:
        raise S2SError(f"--beam must be at least 1, got {cfg.beam}")
    if cfg.nbest < 0 or cfg.nbest > cfg.beam:
        raise S2SError(f"--nbest must be between 0 and --beam ({cfg.beam}), got {cfg.nbest}")
    if cfg.batch_size < 1:
        raise S2SError(f"--batch-size must be at least 1, got {cfg.batch_size}")
    if cfg.max_len_a < 0 or cfg.max_len_b < 0 or (cfg.max_len_a == 0 and cfg.max_len_b < 1):
        raise S2SError("--max-len-a and --max-len-b must not be negative, and allow at least one token")


def check_ensemble(vocabs: list[tuple[Vocab, Vocab]], names: list[str]) -> None:
    """All models of an ensemble must share both vocabularies (and tokenizers)."""
    src0, tgt0 = vocabs[0]
    for (src, tgt), name in zip(vocabs[1:], names[1:]):
        if tgt != tgt0:
            raise S2SError(f"{name} and {names[0]} have different target vocabularies; "
                           "an ensemble needs the same one")
        if src != src0:
            raise S2SError(f"{name} and {names[0]} have different source vocabularies; "
                           "an ensemble needs the same one")


def for_inference(model: Seq2Seq, precision: str, device: torch.device) -> Seq2Seq:
    """The model as it will decode: fp32 as trained, a bfloat16 copy, or a copy with int8 dynamic
    quantization of the LSTMs and the output layer (CPU only; weights int8, activations fp32)."""
    if precision == "bf16":
        return copy.deepcopy(model).to(torch.bfloat16)
    if precision == "int8":
        if device.type != "cpu":
            raise S2SError("--precision int8 runs on the CPU only; use bf16 on a GPU")
        from torch.ao.quantization import quantize_dynamic

        with warnings.catch_warnings():  # torch warns about its own deprecated quantize_per_tensor use
            warnings.simplefilter("ignore")
            return quantize_dynamic(model, {torch.nn.LSTM, torch.nn.Linear}, dtype=torch.qint8)
    return model


def ids_to_tensor(rows: list[list[int]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad id lists into [B, S] with lengths [B]."""
    width = max(len(r) for r in rows)
    src = torch.full((len(rows), width), PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        src[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return src.to(device), torch.tensor([len(r) for r in rows], dtype=torch.long, device=device)


def decode_batch(
    models: list[Seq2Seq], sources: list[list[int]], cfg: DecodeConfig, device: torch.device
) -> list[list[Hypothesis]]:
    """Search for each non-empty id list; sentences are sorted by length so the encoder groups them."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    src, lengths = ids_to_tensor([sources[i] for i in order], device)
    max_lens = (lengths.double() * cfg.max_len_a + cfg.max_len_b).floor().long().clamp(min=1)
    forbid = () if cfg.allow_unk else (UNK,)
    found = beam_search(models, src, lengths, max_lens, BOS, EOS, cfg.beam, max(cfg.nbest, 1), forbid)
    results: list[list[Hypothesis]] = [[] for _ in sources]
    for pos, i in enumerate(order):
        results[i] = found[pos]
    return results


def translate(
    lines: Iterable[str],
    models: list[Seq2Seq],
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    cfg: DecodeConfig,
    out: TextIO,
    device: torch.device | str = "cpu",
    warn: Callable[[str], None] | None = None,
) -> TranslateStats:
    """Translate each line of ``lines`` and write one output line per input line to ``out``.

    With ``cfg.nbest`` > 0, writes ``nbest`` lines per input in the Moses n-best format
    ``i ||| hypothesis ||| score`` (``i`` counts input lines from 0).
    """
    check_config(cfg)
    device = torch.device(device)
    models = [for_inference(m, cfg.precision, device) for m in models]
    src_tok = tokenizer_for(src_vocab)
    tgt_tok = tokenizer_for(tgt_vocab)
    stats = TranslateStats()
    it = iter(lines)
    while True:
        chunk = list(itertools.islice(it, cfg.batch_size))
        if not chunk:
            break
        sources: list[list[int]] = []
        for offset, line in enumerate(chunk):
            ids = src_vocab.encode(src_tok.tokenize(line))
            if len(ids) > MAX_SOURCE_TOKENS:
                stats.truncated += 1
                if warn:
                    warn(f"line {stats.lines + offset + 1}: {len(ids)} tokens, only the first "
                         f"{MAX_SOURCE_TOKENS} are translated")
                ids = ids[:MAX_SOURCE_TOKENS]
            sources.append(ids)
        todo = [i for i, ids in enumerate(sources) if ids]
        found = decode_batch(models, [sources[i] for i in todo], cfg, device) if todo else []
        hyps: list[list[Hypothesis]] = [[Hypothesis([], 0.0)] for _ in chunk]
        for i, h in zip(todo, found):
            hyps[i] = h
        for offset, h in enumerate(hyps):
            index = stats.lines + offset
            if cfg.nbest:
                for hyp in h:
                    text = tgt_tok.detokenize(tgt_vocab.decode(hyp.ids))
                    out.write(f"{index} ||| {text} ||| {hyp.score:.4f}\n")
            else:
                out.write(tgt_tok.detokenize(tgt_vocab.decode(h[0].ids)) + "\n")
        out.flush()
        stats.lines += len(chunk)
        stats.empty += len(chunk) - len(todo)
    return stats
