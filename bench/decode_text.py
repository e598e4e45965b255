"""Decoding a trained model on real text: lines/s of ``translate`` by beam and precision, rounds interleaved.

    python bench/decode_text.py -m demo/model.pt                       # docs.dev of ../shared/data/enfr
    python bench/decode_text.py -m model.pt --src dev.en --ref dev.fr --beams 1,5,12 --precisions fp32,int8

Where ``bench/decode_speed.py`` times an untrained model on synthetic sentences (the same work for every
configuration), this times what a user meets: a trained model (e.g. ``scripts/demo.sh``'s) on held-out
text of varied lengths, through ``s2scli.translate.translate`` exactly as ``s2s translate`` (tokenize,
search, detokenize). Every variant (beam x precision) runs once per round over the whole file, in the
same order each round, so a machine whose speed drifts within minutes shifts all of them alike; figures
are medians over rounds, and "x greedy" the median over rounds of each round's time against greedy of
the same precision. "same as fp32": lines identical to the fp32 output at that beam; BLEU with ``--ref``.
Other settings are those ``s2s translate -m MODEL`` uses: the model's preset's (the small preset's length
penalty of 1.0), else the defaults.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ENFR, machine, peak_rss_mb  # noqa: E402  (also asks malloc to keep freed memory, as s2s does)

from s2scli import checkpoint  # noqa: E402
from s2scli.config import DecodeConfig, get_preset, resolve  # noqa: E402
from s2scli.score import metric_scores  # noqa: E402
from s2scli.translate import translate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--model", required=True, type=Path)
    parser.add_argument("--src", type=Path, default=ENFR / "docs.dev.en")
    parser.add_argument("--ref", type=Path, help="references: print BLEU for each variant")
    parser.add_argument("--beams", default="1,5,12")
    parser.add_argument("--precisions", default="fp32,bf16,int8")
    parser.add_argument("--batch-size", type=int, default=DecodeConfig().batch_size)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ckpt = checkpoint.load(args.model)
    models = [ckpt.build_model()]
    lines = args.src.read_text(encoding="utf-8").splitlines()
    refs = args.ref.read_text(encoding="utf-8").splitlines() if args.ref else None
    variants = [(p, int(b)) for p in args.precisions.split(",") for b in args.beams.split(",")]
    recipe = get_preset(ckpt.train_config.preset)
    settings = dict(recipe.decode) if recipe else {}
    print(f"# machine: {machine()}")
    print(f"# {args.model} on {args.src} ({len(lines)} lines), batch {args.batch_size}, {args.rounds} rounds, "
          f"preset {recipe.name if recipe else 'none'} {settings}")
    translate(lines[:64], models, ckpt.src_vocab, ckpt.tgt_vocab, DecodeConfig(beam=1), io.StringIO())  # warm up
    seconds: dict[tuple[str, int], list[float]] = {v: [] for v in variants}
    outputs: dict[tuple[str, int], list[str]] = {}
    for _ in range(args.rounds):
        for precision, beam in variants:
            given = {"beam": beam, "precision": precision, "batch_size": args.batch_size}
            cfg = resolve(DecodeConfig, settings, given)
            out = io.StringIO()
            start = time.perf_counter()
            translate(lines, models, ckpt.src_vocab, ckpt.tgt_vocab, cfg, out)
            seconds[(precision, beam)].append(time.perf_counter() - start)
            outputs[(precision, beam)] = out.getvalue().splitlines()
    print("| precision | beam | lines/s | x greedy time | same as fp32 | BLEU |")
    print("|---|---|---|---|---|---|")
    for precision, beam in variants:
        times = seconds[(precision, beam)]
        greedy = seconds.get((precision, 1))
        ratio = f"{statistics.median(t / g for t, g in zip(times, greedy)):.2f}" if greedy else "-"
        base = outputs.get(("fp32", beam))
        same = f"{sum(a == b for a, b in zip(outputs[(precision, beam)], base))}/{len(lines)}" if base else "-"
        bleu = f"{metric_scores(outputs[(precision, beam)], [refs], ['bleu'])[0].score:.2f}" if refs else "-"
        print(f"| {precision} | {beam} | {len(lines) / statistics.median(times):.1f} | {ratio} | {same} | {bleu} |")
    print(f"# peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
