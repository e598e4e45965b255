"""Raw text in, raw text out: tokenize, map to ids, beam search, detokenize, one line per line.

Input is read ``batch_size`` lines at a time; each batch's output is written and flushed before the
next is read, so output streams through pipes. Empty lines give empty lines without touching the model.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, replace
from typing import Callable, Iterable, TextIO

import torch

from .config import DECODE_PRECISIONS as PRECISIONS, DecodeConfig
from .errors import S2SError
from .model import Seq2Seq
from .pacing import Ready, batches
from .search import Hypothesis, beam_search
from .text import tokenizer_for
from .vocab import BOS, EOS, PAD, UNK, Vocab

# Sources longer than this many tokens are cut (and a warning is given): a runaway line must not
# exhaust memory, and such a sentence is far outside anything the model was trained on.
MAX_SOURCE_TOKENS = 1000
# No translation is longer than this many tokens, whatever --max-len-a and --max-len-b allow.
MAX_OUTPUT_TOKENS = 4 * MAX_SOURCE_TOKENS
# Absurd values are refused rather than met as an overflow or an allocation of terabytes. The beam is
# also capped at the target vocabulary's size (as fairseq does): a wider beam holds the same words.
MAX_BEAM = 10_000
MAX_BATCH = 100_000
MAX_LENGTH_PENALTY = 10.0  # GNMT uses 0.6-1; ((5 + 4001) / 6) ** 10 stays well inside float32


@dataclass
class TranslateStats:
    """What a run over many lines counts: lines read, empty lines, and sources cut to MAX_SOURCE_TOKENS."""

    lines: int = 0
    empty: int = 0
    truncated: int = 0


def check_config(cfg: DecodeConfig) -> None:
    if cfg.precision not in PRECISIONS:
        raise S2SError(f"--precision must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}")
    if not 1 <= cfg.beam <= MAX_BEAM:
        raise S2SError(f"--beam must be between 1 and {MAX_BEAM}, got {cfg.beam}")
    if cfg.nbest < 0 or cfg.nbest > cfg.beam:
        raise S2SError(f"--nbest must be between 0 and --beam ({cfg.beam}), got {cfg.nbest}")
    if not 1 <= cfg.batch_size <= MAX_BATCH:
        raise S2SError(f"--batch-size must be between 1 and {MAX_BATCH}, got {cfg.batch_size}")
    if not math.isfinite(cfg.max_len_a):
        raise S2SError(f"--max-len-a must be a finite number, got {cfg.max_len_a}")
    if cfg.max_len_a < 0 or cfg.max_len_b < 0 or (cfg.max_len_a == 0 and cfg.max_len_b < 1):
        raise S2SError("--max-len-a and --max-len-b must not be negative, and allow at least one token")
    if not (0 <= cfg.length_penalty <= MAX_LENGTH_PENALTY):
        raise S2SError(f"--length-penalty must be 0 (off) or positive, at most {MAX_LENGTH_PENALTY:g}, "
                       f"got {cfg.length_penalty}")


def cap_beam(cfg: DecodeConfig, tgt_vocab: Vocab) -> DecodeConfig:
    """The beam (and n-best) no wider than the target vocabulary: a wider one costs memory for nothing."""
    width = len(tgt_vocab)
    return replace(cfg, beam=min(cfg.beam, width), nbest=min(cfg.nbest, width))


def check_attention(models: list[Seq2Seq], cfg: DecodeConfig, names: list[str] | None = None) -> None:
    """--align and --replace-unk read attention weights: refuse them when no model has attention."""
    wanted = [name for name, on in (("--align", cfg.align), ("--replace-unk", cfg.replace_unk)) if on]
    if wanted and all(m.config.attention == "none" for m in models):
        if names:
            which = f"{names[0]} has none" if len(names) == 1 else f"none of {', '.join(names)} has any"
        else:
            which = "the model has none" if len(models) == 1 else "none of the models has any"
        raise S2SError(f"{' and '.join(wanted)} need{'s' if len(wanted) == 1 else ''} a model trained with "
                       f"--attention; {which}")


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
    # Both terms cut to the cap first: --max-len-b 10^20 would not fit torch's integers.
    limit = (lengths.double() * min(cfg.max_len_a, MAX_OUTPUT_TOKENS) + min(cfg.max_len_b, MAX_OUTPUT_TOKENS)).floor()
    max_lens = limit.clamp(min=1, max=MAX_OUTPUT_TOKENS).long()  # [B]
    forbid = () if cfg.allow_unk else (UNK,)
    found = beam_search(models, src, lengths, max_lens, BOS, EOS, cfg.beam, max(cfg.nbest, 1), forbid,
                        cfg.length_penalty)
    results: list[list[Hypothesis]] = [[] for _ in sources]
    for pos, i in enumerate(order):
        results[i] = found[pos]
    return results


def target_tokens(hyp: Hypothesis, tgt_vocab: Vocab, source: list[str], replace_unk: bool) -> list[str]:
    """The hypothesis's target tokens; with ``replace_unk`` each ``<unk>`` is the source token (of
    ``source``, the tokenized source line) at its aligned position."""
    tokens = tgt_vocab.decode(hyp.ids)
    if not replace_unk or UNK not in hyp.ids or hyp.alignment is None or len(tokens) != len(hyp.ids):
        return tokens
    return [source[hyp.alignment[j]] if i == UNK and hyp.alignment[j] < len(source) else tok
            for j, (i, tok) in enumerate(zip(hyp.ids, tokens))]


def one_line(text: str) -> str:
    """``text`` with line breaks made spaces: a subword model can emit the byte pieces ``<0x0A>`` and
    ``<0x0D>``, and each output must stay one line, in step with the input."""
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def alignment_text(hyp: Hypothesis) -> str:
    """``i-j`` pairs (source token i, target token j, from 0), in target order; empty without words."""
    return " ".join(f"{i}-{j}" for j, i in enumerate(hyp.alignment or []))


def cut_source(ids: list[int], line_number: int, stats: TranslateStats, warn: Callable[[str], None] | None,
               done: str) -> list[int]:
    """``ids`` cut to MAX_SOURCE_TOKENS; a cut is counted in ``stats.truncated`` and reported through ``warn``."""
    if len(ids) <= MAX_SOURCE_TOKENS:
        return ids
    stats.truncated += 1
    if warn:
        warn(f"line {line_number}: {len(ids)} tokens, only the first {MAX_SOURCE_TOKENS} are {done}")
    return ids[:MAX_SOURCE_TOKENS]


def translate(
    lines: Iterable[str],
    models: list[Seq2Seq],
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    cfg: DecodeConfig,
    out: TextIO,
    device: torch.device | str = "cpu",
    warn: Callable[[str], None] | None = None,
    ready: Ready | None = None,
) -> TranslateStats:
    """Translate each line of ``lines`` and write one output line per input line to ``out``.

    With ``cfg.nbest`` > 0, writes ``nbest`` lines per input in the Moses n-best format
    ``i ||| hypothesis ||| score`` (``i`` counts input lines from 0). With ``cfg.align``, each line
    ends in `` ||| `` and the alignment ``i-j ...`` (source token i, target token j, from 0, in token
    space; an n-best line then takes Moses's full form ``i ||| hypothesis ||| s2s= score ||| score |||
    alignment``). With ``cfg.replace_unk`` each ``<unk>`` of a translation becomes the source token it
    attends to most (before detokenization). ``ready`` (from ``pacing.paced``): when the input pauses,
    the lines read so far are translated at once, before ``cfg.batch_size`` have come.
    """
    check_config(cfg)
    cfg = cap_beam(cfg, tgt_vocab)
    check_attention(models, cfg)
    device = torch.device(device)
    models = [for_inference(m, cfg.precision, device) for m in models]
    src_tok = tokenizer_for(src_vocab)
    tgt_tok = tokenizer_for(tgt_vocab)
    stats = TranslateStats()
    for chunk in batches(lines, cfg.batch_size, ready):
        sources: list[list[int]] = []
        source_tokens: list[list[str]] = []
        for offset, line in enumerate(chunk):
            tokens = src_tok.tokenize(line)
            ids = src_vocab.encode(tokens)
            ids = cut_source(ids, stats.lines + offset + 1, stats, warn, "translated")
            sources.append(ids)
            source_tokens.append(list(tokens) if cfg.replace_unk else [])
        todo = [i for i, ids in enumerate(sources) if ids]
        found = decode_batch(models, [sources[i] for i in todo], cfg, device) if todo else []
        hyps: list[list[Hypothesis]] = [[Hypothesis([], 0.0)] for _ in chunk]
        for i, h in zip(todo, found):
            hyps[i] = h
        for offset, h in enumerate(hyps):
            index = stats.lines + offset
            words = [target_tokens(hyp, tgt_vocab, source_tokens[offset], cfg.replace_unk) for hyp in h]
            if cfg.nbest:
                for hyp, toks in zip(h, words):
                    text = one_line(tgt_tok.detokenize(toks))
                    if cfg.align:
                        out.write(f"{index} ||| {text} ||| s2s= {hyp.score:.4f} ||| {hyp.score:.4f} ||| "
                                  f"{alignment_text(hyp)}\n")
                    else:
                        out.write(f"{index} ||| {text} ||| {hyp.score:.4f}\n")
            else:
                text = one_line(tgt_tok.detokenize(words[0]))
                out.write(f"{text} ||| {alignment_text(h[0])}\n" if cfg.align else text + "\n")
        out.flush()
        stats.lines += len(chunk)
        stats.empty += len(chunk) - len(todo)
    return stats
