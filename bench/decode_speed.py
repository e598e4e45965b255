"""Decoding speed: sentences/s of ``translate`` with greedy search, beam 5 and beam 12.

    python bench/decode_speed.py                  # config a, 500 synthetic sentences
    python bench/decode_speed.py --configs a,b --sentences 1000
    python bench/decode_speed.py --attention general --varied    # the small preset's model, lengths varied

The model is untrained (its weights do not change the amount of work) and the output length is pinned
to the source length (``--max-len-a 1 --max-len-b 0`` with ``</s>`` never chosen earlier, see
``--natural`` and ``--varied``), so every configuration decodes the same number of target words:
source lengths uniform in 5..30 words, batches of 64 sentences. Timings are medians of 3 runs over the
whole set, through ``s2scli.translate.translate`` (tokenize, search, detokenize, write) exactly as ``s2s translate``.

``--varied`` is closer to real text for search: weights drawn from [-0.5, 0.5] make the untrained model's
choices peaky and input-dependent, and ``</s>`` gets a bias of 4, so hypotheses end at varied lengths
(limit 1.5 x source + 5) and sentences leave the beam at different steps.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, median_seconds, peak_rss_mb, synthetic_lines, synthetic_vocab  # noqa: E402

from s2scli.config import DecodeConfig, ModelConfig  # noqa: E402
from s2scli.model import Seq2Seq  # noqa: E402
from s2scli.translate import translate  # noqa: E402

CONFIGS = {
    "a": ("a: 2x256, 5k vocab", 2, 256, 256, 5_000, 5_000),
    "b": ("b: 4x512, 5k vocab", 4, 512, 512, 5_000, 5_000),
    "c": ("c: 4x1000, 160k/80k vocab", 4, 1000, 1000, 160_000, 80_000),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="a")
    parser.add_argument("--sentences", type=int, default=500)
    parser.add_argument("--beams", default="1,5,12")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precisions", default="fp32", help="fp32 and/or bf16")
    parser.add_argument("--natural", action="store_true",
                        help="let </s> end hypotheses where the model says (lengths then vary by config)")
    parser.add_argument("--varied", action="store_true",
                        help="peaky weights and a </s> bias: translations of varied lengths (see above)")
    parser.add_argument("--attention", default="none", help="none (the paper), dot, general or concat")
    parser.add_argument("--no-input-feeding", action="store_true", help="attention without input feeding")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"# machine: {machine()}")
    lengths = "varied lengths" if args.varied else "output length = source length"
    print(f"# {args.sentences} sentences of 5..30 words, batch {args.batch_size}, "
          f"attention {args.attention}, {lengths}")
    print("| config | precision | beam | sentences/s | target words/s | x greedy time | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for key in args.configs.split(","):
        name, layers, hidden, emb, vs, vt = CONFIGS[key]
        src_vocab, tgt_vocab = synthetic_vocab(vs, "en"), synthetic_vocab(vt, "fr")
        lines = synthetic_lines(args.sentences, src_vocab, 5, 30, seed=3)
        torch.manual_seed(1)
        extra_model = {"attention": args.attention, "input_feeding": not args.no_input_feeding}
        if args.varied:
            extra_model["init_scale"] = 0.5
        model = Seq2Seq(ModelConfig(vs, vt, layers, hidden, emb, **extra_model)).to(device).eval()
        if args.varied or not args.natural:
            with torch.no_grad():  # </s> only where the length limit forces it, or often (--varied)
                model.output.bias[3] = 4.0 if args.varied else -1e4
        for precision in args.precisions.split(","):
            greedy_time = None
            for beam in (int(b) for b in args.beams.split(",")):
                extra = {"precision": precision} if precision != "fp32" else {}  # older s2s has no field
                limits = {"max_len_a": 1.5, "max_len_b": 5} if args.varied else {"max_len_a": 1.0, "max_len_b": 0}
                cfg = DecodeConfig(beam=beam, batch_size=args.batch_size, **limits, **extra)

                out = io.StringIO()

                def run() -> None:
                    out.seek(0)
                    out.truncate()
                    translate(lines, [model], src_vocab, tgt_vocab, cfg, out, device)

                seconds = median_seconds(run, repeat=3, warmup=1)
                words = sum(len(line.split()) for line in out.getvalue().splitlines())  # target words
                greedy_time = greedy_time or seconds
                print(f"| {name} | {precision} | {beam} | {args.sentences / seconds:,.0f} | {words / seconds:,.0f} | "
                      f"{seconds / greedy_time:.2f} | {peak_rss_mb():.0f} |", flush=True)


if __name__ == "__main__":
    main()
