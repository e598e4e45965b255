"""Training throughput: target tokens/s and model FLOP utilisation against this machine's matmul peak.

    python bench/train_speed.py                       # configs a, b, c on synthetic data
    python bench/train_speed.py --configs a --data ../shared/data/enfr   # plus real docs batches
    python bench/train_speed.py --configs a --attention general  # plus attention, with and without input feeding
    python bench/train_speed.py --configs b,c --device cuda --batches 20 --attention general  # a GPU (GPU memory)

Configs (batches of source/target lengths uniform in 5..30 words, Zipf-distributed words):
  a: 2 x 256 LSTM, embedding 256, 5k vocabularies, batch 64
  b: 4 x 512 LSTM, embedding 512, 5k vocabularies, batch 128
  c: the paper's 4 x 1000, embedding 1000, 160k source / 80k target vocabularies, batch 128 (few steps)

Each step is the one ``s2s train`` runs (``s2scli.train.forward_backward``, then the SGD update):
forward, backward, clipping, update; only reading the batch from disk is left out. FLOPs counted per step (multiply-add = 2 FLOP; backward = 2 x forward, so x3 in all):
  LSTM layer, per token it reads: 2 * 4H * (I + H)       (I = input size: E for layer 1, H above)
  output layer, per target token: 2 * H * V
  total = 3 * (source tokens * sum_layers + (target tokens + 1) * sum_layers + (target tokens + 1) * 2HV)
Only real tokens count (padding is waste, not work); with --attention, the attention's own work is not
counted (its rows compare by tokens/s). Utilisation = achieved FLOP/s / matmul peak. The fp32 peak is
the best rate of y = x W^T at the configs' own shapes (a step's gates [batch, E + H] x [E + H, 4H], the
input projection of all positions [batch x 20, E] x [E, 4H], the output layer [batch x 20, H] x [H, V]),
over MKL (torch.mm) and oneDNN, whichever is faster here (both are printed, and the 2048^3 torch.mm rate
for reference); the bf16 peak is the median rate of a 2048^3 bf16 matmul.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fp32_peak_at_shapes, machine, matmul_peak, median_seconds, peak_rss_mb, prepared_file, synthetic_lines, synthetic_vocab  # noqa: E402

from s2scli.config import ModelConfig, TrainConfig  # noqa: E402
from s2scli.data import Batch, PreparedData, epoch_seed, make_batches  # noqa: E402
from s2scli.model import Seq2Seq  # noqa: E402
from s2scli.train import forward_backward  # noqa: E402


@dataclass(frozen=True)
class Setup:
    name: str
    layers: int
    hidden: int
    embedding: int
    src_vocab: int
    tgt_vocab: int
    batch: int
    batches: int  # a pass times this many batches; the median of 3 passes is reported


CONFIGS = {
    "a": Setup("a: 2x256, 5k vocab, batch 64", 2, 256, 256, 5_000, 5_000, 64, 10),
    "b": Setup("b: 4x512, 5k vocab, batch 128", 4, 512, 512, 5_000, 5_000, 128, 4),
    "c": Setup("c: 4x1000, 160k/80k vocab, batch 128", 4, 1000, 1000, 160_000, 80_000, 128, 1),
}


def lstm_flops_per_token(layers: int, hidden: int, embedding: int) -> int:
    return sum(2 * 4 * hidden * ((embedding if layer == 0 else hidden) + hidden) for layer in range(layers))


def model_shapes(setup: Setup) -> list[tuple[int, int, int]]:
    """(rows, inputs, outputs) of the config's main matrix products (20 positions stand for a batch's length)."""
    e, h, b = setup.embedding, setup.hidden, setup.batch
    return [(b, e + h, 4 * h), (b, 2 * h, 4 * h), (b * 20, e, 4 * h), (b * 20, h, setup.tgt_vocab)]


def batch_flops(cfg: ModelConfig, batch: Batch) -> float:
    src_tokens = int(batch.src_lengths.sum())
    tgt_positions = batch.n_tokens  # <s> y1..yn in, y1..yn </s> out: n+1 per sentence
    lstm = lstm_flops_per_token(cfg.layers, cfg.hidden, cfg.embedding)
    return 3.0 * (src_tokens * lstm + tgt_positions * lstm + tgt_positions * 2 * cfg.hidden * cfg.tgt_vocab_size)


def train_pass(model: Seq2Seq, optimizer: torch.optim.Optimizer, batches: list[Batch], precision: str) -> None:
    """One training step on each batch, as ``s2s train`` runs it: forward, backward, clipping to the paper's
    norm 5 (``forward_backward``), the update."""
    for batch in batches:
        forward_backward(model, model, batch, 1 / batch.src.size(0), TrainConfig().clip_norm, precision)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if batches[0].src.device.type == "cuda":
        torch.cuda.synchronize()


def measure(model: Seq2Seq, batches: list[Batch], precision: str, repeat: int) -> tuple[float, float, float, float]:
    """Seconds per step, target tokens/s, source + target words/s (the paper's 6,300 counts both sides,
    section 3.5) and FLOP/s: the median time of a pass over all ``batches`` (so work and time are measured over
    the same batches, whatever their sizes)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    seconds = median_seconds(lambda: train_pass(model, optimizer, batches, precision), repeat=repeat, warmup=1)
    tokens = sum(b.n_tokens for b in batches)
    words = sum(int(b.src_lengths.sum()) + b.n_tokens - b.src.size(0) for b in batches)  # no </s>
    flops = sum(batch_flops(model.config, b) for b in batches)
    return seconds / len(batches), tokens / seconds, words / seconds, flops / seconds


def synthetic_batches(setup: Setup, tmp: Path, n_batches: int) -> tuple[PreparedData, list[Batch]]:
    src_vocab, tgt_vocab = synthetic_vocab(setup.src_vocab, "en"), synthetic_vocab(setup.tgt_vocab, "fr")
    n = setup.batch * n_batches
    data = prepared_file(tmp / f"{setup.name[0]}.s2s", synthetic_lines(n, src_vocab, 5, 30, 1),
                         synthetic_lines(n, tgt_vocab, 5, 30, 2), src_vocab, tgt_vocab)
    order = make_batches(data.src_lens, data.tgt_lens, setup.batch, epoch_seed(1, 0))
    return data, [data.batch(ix) for ix in order[:n_batches]]


def real_batches(setup: Setup, data_dir: Path, tmp: Path, n_batches: int) -> tuple[PreparedData, list[Batch]]:
    from s2scli.text import get_tokenizer
    from s2scli.vocab import build_vocab, count_tokens

    lines = {}
    vocabs = {}
    for lang in ("en", "fr"):
        raw = (data_dir / f"docs.train.{lang}").read_text(encoding="utf-8").split("\n")[:20_000]
        tok = get_tokenizer("moses", lang)
        vocabs[lang], _ = build_vocab(count_tokens(tok.tokenize(x) for x in raw), "moses", lang,
                                      size=setup.tgt_vocab - 4)
        lines[lang] = raw
    path = tmp / "docs.s2s"
    data = prepared_file(path, lines["en"], lines["fr"], vocabs["en"], vocabs["fr"])
    order = make_batches(data.src_lens, data.tgt_lens, setup.batch, epoch_seed(1, 0))
    return data, [data.batch(ix) for ix in order[:n_batches]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="a,b,c", help="which configs to run (default: a,b,c)")
    parser.add_argument("--precisions", default="fp32,bf16", help="fp32 and/or bf16 (autocast)")
    parser.add_argument("--data", type=Path, help="also time real docs.train batches from this directory")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, default=0,
                        help="batches a timed pass runs (default: each config's own; more on a GPU)")
    parser.add_argument("--attention", default="none",
                        help="also time this attention (dot, general, concat) with and without input feeding")
    args = parser.parse_args()
    device = torch.device(args.device)
    peak = matmul_peak(device)
    print(f"# machine: {machine()}")
    print(f"# matmul peak (2048^3, median): fp32 {peak.fp32:.0f} GFLOP/s (torch.mm)"
          + (f", bf16 {peak.bf16:.0f} GFLOP/s" if peak.bf16 else ""))
    shapes = sorted({shape for key in args.configs.split(",") for shape in model_shapes(CONFIGS[key])})
    by_library = fp32_peak_at_shapes(shapes, device)
    for library, rates in by_library.items():
        print(f"# fp32 x W^T at the configs' shapes, {library}: "
              + ", ".join(f"{m}x{k}x{n} {rate:.0f}" for (m, k, n), rate in rates.items()) + " GFLOP/s")
    fp32_peak = max(rate for rates in by_library.values() for rate in rates.values())
    print(f"# fp32 peak used for % of peak: {fp32_peak:.0f} GFLOP/s (best of "
          + " and ".join(by_library) + " at these shapes)")
    cuda = device.type == "cuda"
    memory = "peak GPU MB" if cuda else "peak RSS MB"
    print(f"| config | data | precision | ms/step | target tok/s | src+tgt words/s | GFLOP/s | % of peak | {memory} |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        jobs = []
        for key in args.configs.split(","):
            setup = CONFIGS[key]
            n_batches = args.batches or setup.batches
            jobs.append((setup, "synthetic", lambda s=setup, n=n_batches: synthetic_batches(s, tmp, n)))
            if args.data and key == "a":
                jobs.append((setup, "docs.train", lambda s=setup: real_batches(s, args.data, tmp, 20)))
        for setup, source, make in jobs:
            data, batches = make()
            batches = [b.to(device) for b in batches]
            variants = [("", "none", True)]
            if args.attention != "none":
                variants += [(f" + {args.attention} attention, input feeding", args.attention, True),
                             (f" + {args.attention} attention, no input feeding", args.attention, False)]
            for label, attention, feeding in variants:
                torch.manual_seed(1)
                model = Seq2Seq(ModelConfig(len(data.src_vocab), len(data.tgt_vocab), setup.layers, setup.hidden,
                                            setup.embedding, attention=attention, input_feeding=feeding))
                model = model.to(device).train()
                for precision in args.precisions.split(","):
                    if cuda:
                        torch.cuda.reset_peak_memory_stats(device)
                    seconds, tok_s, words_s, flop_s = measure(model, batches, precision, 3)
                    ref = peak.bf16 if precision == "bf16" and peak.bf16 else fp32_peak
                    mb = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else peak_rss_mb()
                    print(f"| {setup.name}{label} | {source} | {precision} | {seconds * 1000:.0f} | {tok_s:,.0f} | "
                          f"{words_s:,.0f} | {flop_s / 1e9:.0f} | {100 * flop_s / 1e9 / ref:.0f}% | {mb:.0f} |",
                          flush=True)
                del model


if __name__ == "__main__":
    main()
