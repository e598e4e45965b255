"""Raw text in, raw text out: tokenize, map to ids, beam search, detokenize, one line per line.

Input is read ``batch_size * maxi_batch`` lines at a time, a window (``batching.read_sources``:
tokenized, encoded, cut); the window's sentences are sorted by length and decoded ``batch_size`` at a
time, so each batch holds sentences of similar length (a batch's steps follow its longest sentence). The
window's output is written in input order and flushed before the next window is read, so output
streams through pipes. Empty lines give empty lines without touching the model.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import replace
from typing import Callable, Iterable, TextIO

import torch

from .batching import MAX_SOURCE_TOKENS, SourceStats, ids_to_tensor, on_nonempty, read_sources
from .config import DECODE_PRECISIONS as PRECISIONS, DecodeConfig
from .errors import S2SError
from .model import Seq2Seq
from .nbest import format_nbest
from .pacing import Ready
from .search import Hypothesis, beam_search
from .vocab import BOS, EOS, UNK, Vocab, different_sides

# No translation is longer than this many tokens, whatever --max-len-a and --max-len-b allow.
MAX_OUTPUT_TOKENS = 4 * MAX_SOURCE_TOKENS
# Absurd values are refused rather than met as an overflow or an allocation of terabytes. The beam is
# also capped at the target vocabulary's size (as fairseq does): a wider beam holds the same words.
MAX_BEAM = 10_000
MAX_BATCH = 100_000
MAX_MAXI_BATCH = 1000
MAX_LENGTH_PENALTY = 10.0  # GNMT uses 0.6-1; ((5 + 4001) / 6) ** 10 stays well inside float32


TranslateStats = SourceStats  # what translate counts: lines read, empty lines, sources cut

def check_config(cfg: DecodeConfig) -> None:
    if cfg.precision not in PRECISIONS:
        raise S2SError(f"--precision must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}")
    if not 1 <= cfg.beam <= MAX_BEAM:
        raise S2SError(f"--beam must be between 1 and {MAX_BEAM}, got {cfg.beam}")
    if cfg.nbest < 0 or cfg.nbest > cfg.beam:
        raise S2SError(f"--nbest must be between 0 and --beam ({cfg.beam}), got {cfg.nbest}")
    if not 1 <= cfg.batch_size <= MAX_BATCH:
        raise S2SError(f"--batch-size must be between 1 and {MAX_BATCH}, got {cfg.batch_size}")
    if not 1 <= cfg.maxi_batch <= MAX_MAXI_BATCH:
        raise S2SError(f"--maxi-batch must be between 1 and {MAX_MAXI_BATCH}, got {cfg.maxi_batch}")
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
    for pair, name in zip(vocabs[1:], names[1:]):
        sides = different_sides(pair, vocabs[0])
        if sides:
            raise S2SError(f"{name} and {names[0]} have different {sides[-1]} vocabularies; "
                           "an ensemble needs the same one")


def for_inference(model: Seq2Seq, precision: str, device: torch.device) -> Seq2Seq:
    """The model as it will decode: fp32 as trained, a bfloat16 copy, or a copy with int8 dynamic
    quantization of the LSTMs and the output layer (CPU only; weights int8, activations quantized
    to int8 with their batch's range, so a line's translation can depend on the lines batched with it)."""
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


def decode_window(
    models: list[Seq2Seq], sources: list[list[int]], cfg: DecodeConfig, device: torch.device
) -> list[list[Hypothesis]]:
    """``decode_batch`` for any number of id lists: sorted by length, cut into batches of
    ``cfg.batch_size`` similar lengths, the results put back in the order of ``sources``."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    results: list[list[Hypothesis]] = [[] for _ in sources]
    for start in range(0, len(order), cfg.batch_size):
        batch = order[start: start + cfg.batch_size]
        for i, hyps in zip(batch, decode_batch(models, [sources[i] for i in batch], cfg, device)):
            results[i] = hyps
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


def write_hypotheses(out: TextIO, index: int, hyps: list[Hypothesis], source: list[str], tgt_vocab: Vocab,
                     cfg: DecodeConfig) -> None:
    """The output lines of input line ``index`` (from 0): its best translation, or its n-best list.
    ``source`` is the line's tokens (what ``--replace-unk`` copies)."""
    detokenize = tgt_vocab.text_tokenizer().detokenize
    texts = [one_line(detokenize(target_tokens(hyp, tgt_vocab, source, cfg.replace_unk))) for hyp in hyps]
    if cfg.nbest:
        for hyp, text in zip(hyps, texts):
            out.write(format_nbest(index, text, hyp.score, alignment_text(hyp) if cfg.align else None))
    else:
        out.write(f"{texts[0]} ||| {alignment_text(hyps[0])}\n" if cfg.align else texts[0] + "\n")


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
    ``i ||| hypothesis ||| score`` (``i`` counts input lines from 0; see ``nbest.py``). With ``cfg.align``,
    each line ends in `` ||| `` and the alignment ``i-j ...`` (source token i, target token j, from 0, in
    token space; an n-best line then takes Moses's full form ``i ||| hypothesis ||| s2s= score ||| score
    ||| alignment``). With ``cfg.replace_unk`` each ``<unk>`` of a translation becomes the source token it
    attends to most (before detokenization). Output is flushed after each window of ``cfg.batch_size *
    cfg.maxi_batch`` lines. ``ready`` (from ``pacing.paced``): when the input pauses, the lines read so
    far are translated at once, before a whole window has come.
    """
    check_config(cfg)
    cfg = cap_beam(cfg, tgt_vocab)
    check_attention(models, cfg)
    device = torch.device(device)
    models = [for_inference(m, cfg.precision, device) for m in models]
    for vocab in (src_vocab, tgt_vocab):
        vocab.text_tokenizer()  # a vocabulary that cannot tokenize fails before any input is read
    stats = TranslateStats()
    window = cfg.batch_size * cfg.maxi_batch
    for chunk in read_sources(lines, src_vocab, window, stats, warn, "translated", ready):
        found = on_nonempty(chunk.ids, lambda ids: decode_window(models, ids, cfg, device), [Hypothesis([], 0.0)])
        for offset, hyps in enumerate(found):
            write_hypotheses(out, chunk.first + offset, hyps, chunk.tokens[offset], tgt_vocab, cfg)
        out.flush()
    return stats
