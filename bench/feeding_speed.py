"""Input feeding's training speed against the same model without attention, variants interleaved.

    python bench/feeding_speed.py                        # config a, fp32 and bf16, 7 rounds
    python bench/feeding_speed.py --configs a,b --rounds 5

On a shared machine the speed drifts by 2x within minutes, so rows measured one after another (as in
``train_speed.py``) compare badly. Here every round times each variant once over the same batches, in turn,
and the table gives each variant's median over the rounds and the median of its per-round ratio to no
attention (``vs none``: tokens/s relative to no attention, measured within the same round). Variants:

  none          the paper's model (no attention)
  IF            general attention with input feeding, as ``s2s train`` runs it (feeding.py's backward)
  IF autograd   the same, with ``Seq2Seq.hand_backward = False``: autograd through the loop over positions
  no IF         general attention without input feeding (the small preset's model)

A step is ``train_speed.train_pass``'s (``s2scli.train.forward_backward`` and an SGD update); synthetic batches
(source/target lengths uniform in 5..30, Zipf-distributed words). Issue 16 asks for IF >= 0.8x none.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402
from train_speed import CONFIGS, synthetic_batches, train_pass  # noqa: E402

from s2scli.config import ModelConfig  # noqa: E402
from s2scli.data import Batch  # noqa: E402
from s2scli.model import Seq2Seq  # noqa: E402

VARIANTS = {  # name: (attention, input feeding, hand-written backward)
    "none": ("none", True, True),
    "IF": ("general", True, True),
    "IF autograd": ("general", True, False),
    "no IF": ("general", False, True),
}


def one_pass(model: Seq2Seq, optimizer: torch.optim.Optimizer, batches: list[Batch], precision: str) -> float:
    """Seconds for one training step on each batch (``train_speed.train_pass``)."""
    start = time.perf_counter()
    train_pass(model, optimizer, batches, precision)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="a", help="configs of train_speed.py (default: a)")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (default: 7), after one untimed")
    parser.add_argument("--batches", type=int, default=6, help="batches a variant runs per round (default: 6)")
    args = parser.parse_args()
    print(f"# machine: {machine()}")
    print("| config | precision | variant | ms/step (median) | target tok/s | vs none (median of rounds) |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.configs.split(","):
            setup = CONFIGS[key]
            data, batches = synthetic_batches(setup, Path(tmp), args.batches)
            tokens = sum(b.n_tokens for b in batches)
            models = {}
            for name, (attention, feeding, _) in VARIANTS.items():
                torch.manual_seed(1)
                models[name] = Seq2Seq(ModelConfig(len(data.src_vocab), len(data.tgt_vocab), setup.layers,
                                                   setup.hidden, setup.embedding, attention=attention,
                                                   input_feeding=feeding)).train()
            optimizers = {name: torch.optim.SGD(m.parameters(), lr=0.01) for name, m in models.items()}
            for precision in args.precisions.split(","):
                times: dict[str, list[float]] = {name: [] for name in VARIANTS}
                for round_ in range(args.rounds + 1):
                    for name, (_, _, hand) in VARIANTS.items():
                        Seq2Seq.hand_backward = hand
                        seconds = one_pass(models[name], optimizers[name], batches, precision)
                        if round_:
                            times[name].append(seconds)
                Seq2Seq.hand_backward = True
                for name in VARIANTS:
                    ratio = statistics.median(n / t for n, t in zip(times["none"], times[name]))
                    seconds = statistics.median(times[name])
                    print(f"| {setup.name} | {precision} | {name} | {seconds / len(batches) * 1000:.0f} | "
                          f"{tokens / seconds:,.0f} | {ratio:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
