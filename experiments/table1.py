"""The paper's Table 1 in miniature, on real English-French text, within a wall-clock budget.

    python experiments/table1.py --budget 2h
    python experiments/table1.py --budget 20m --dev-lines 200         # a quick look
    python experiments/table1.py --figures-only                       # redraw the pictures

What it does, all through the ``s2s`` command as a user would run it:

1. one word vocabulary per side and prepared data from docs.train + bible.train together (the software
   manuals and the Bible: two domains), and the two dev sets prepared separately;
2. a 45-second probe of this machine's training speed, so that every model gets the same share of the
   budget with a learning-rate schedule fitted to it (constant for 60% of the epochs that fit, then
   halved every tenth: the paper's [3.4] schedule shrunk);
3. six models that differ only where the paper's do: one forward (``--no-reverse``) and five reversed
   ones that differ only in seed, which sets both the initialisation and the batch order [3.6];
4. decoding docs.dev and bible.dev with the single forward model, the single reversed model and
   ensembles of the first 2 and of all 5 reversed models, each with beam 1, 2 and 12; BLEU and chrF
   with sacreBLEU; dev perplexity of the single models;
5. the figures: training curves of the forward and reversed models (``s2s plot curves``), BLEU by
   sentence length and by average word-frequency rank for the best system (``s2s score --breakdown``:
   the paper's Figure 3) and the PCA of the reversed model's sentence vectors for the paper's phrases
   (``s2s encode`` + ``s2s plot pca``: Figure 2).

The training share of the budget is ``1 - --decode-share``; decoding runs after training and is timed
too. Writes ``table1.json``, ``table1.md`` and the PNGs under ``--out`` (default
``experiments/runs/table1``, not tracked by git).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

from common import DATA, ENV, ROOT, head, parse_duration, run, score, steps_done, train_pairs

CORPORA = ("docs", "bible")
BEAMS = (1, 2, 12)
SEEDS = (1, 2, 3, 4, 5)
# The paper's Table 1 (ntst14 BLEU) for the rows this experiment has.
PAPER = {("forward", 12): 26.17, ("reversed", 12): 30.59, ("ensemble of 5", 1): 33.00,
         ("ensemble of 2", 12): 33.27, ("ensemble of 5", 2): 34.50, ("ensemble of 5", 12): 34.81}
SYSTEMS = {  # name -> model files
    "forward": ["forward.pt"],
    "reversed": ["reversed1.pt"],
    "ensemble of 2": ["reversed1.pt", "reversed2.pt"],
    "ensemble of 5": [f"reversed{s}.pt" for s in SEEDS],
}


def concatenate(parts: list[Path], dst: Path) -> Path:
    with open(dst, "wb") as out:
        for part in parts:
            out.write(part.read_bytes())
    return dst


def prepare_data(d: Path, vocab_size: int, max_len: int) -> None:
    for lang in ("en", "fr"):
        corpus = concatenate([DATA / f"{c}.train.{lang}" for c in CORPORA], d / f"train.{lang}")
        run(["vocab", "--size", str(vocab_size), "-o", f"vocab.{lang}", str(corpus)], d)
    run(["prepare", "--src-vocab", "vocab.en", "--tgt-vocab", "vocab.fr", "--max-len", str(max_len),
         "-o", "train.s2s", "train.en", "train.fr"], d)
    for c in CORPORA:  # every dev pair kept: perplexity over the whole dev set
        run(["prepare", "--src-vocab", "vocab.en", "--tgt-vocab", "vocab.fr", "--max-len", "0",
             "-o", f"{c}.dev.s2s", str(DATA / f"{c}.dev.en"), str(DATA / f"{c}.dev.fr")], d)


def dev_perplexity(model: Path, prepared: Path) -> float:
    """Perplexity of a model on a prepared file (per target token, </s> included)."""
    import torch

    from s2scli import checkpoint
    from s2scli.data import PreparedData
    from s2scli.train import evaluate, perplexity

    net = checkpoint.load(model).build_model("cpu")
    with open(prepared, "rb") as f, torch.inference_mode():
        nll, tokens = evaluate(net, PreparedData(f, prepared.name), 64, torch.device("cpu"))
    return perplexity(nll, tokens)


def train_models(d: Path, arch: list[str], seconds_each: float, steps_per_s: float, per_epoch: int) -> None:
    epochs = max(0.05, steps_per_s * seconds_each / per_epoch)
    schedule = ["--epochs", f"{epochs:.4f}", "--decay-start", f"{0.6 * epochs:.4f}",
                "--decay-every", f"{epochs / 10:.4f}", "--max-time", f"{seconds_each:.0f}"]
    jobs = [("forward", ["--no-reverse", "--seed", "1"])] + [(f"reversed{s}", ["--seed", str(s)]) for s in SEEDS]
    for name, opts in jobs:
        t = time.monotonic()
        run(["train", "train.s2s", "--valid", "docs.dev.s2s", "-o", f"{name}.pt", "--log", f"{name}.jsonl",
             *arch, *opts, *schedule], d)
        print(f"trained {name} in {time.monotonic() - t:.0f} s", file=sys.stderr, flush=True)


def decode_all(d: Path, dev_lines: int, precision: str) -> list[dict]:
    rows = []
    for system, models in SYSTEMS.items():
        for beam in BEAMS:
            row = {"system": system, "beam": beam, "paper_bleu": PAPER.get((system, beam))}
            t = time.monotonic()
            for c in CORPORA:
                src = head(DATA / f"{c}.dev.en", d / f"{c}.dev.en", dev_lines)
                ref = head(DATA / f"{c}.dev.fr", d / f"{c}.dev.fr", dev_lines)
                hyp = d / f"{c}.{system.replace(' ', '')}.beam{beam}.fr"
                models_opts = [x for m in models for x in ("-m", m)]
                run(["translate", *models_opts, "--beam", str(beam), "--precision", precision, "-q", str(src)],
                    d, stdout=hyp)
                s = score(hyp, ref, d)
                row[f"{c}_bleu"], row[f"{c}_chrf"] = s["bleu"], s["chrf"]
            row["decode_s"] = round(time.monotonic() - t, 1)
            rows.append(row)
            print(f"{system} beam {beam}: {json.dumps(row)}", file=sys.stderr, flush=True)
    return rows


def figures(d: Path, best: dict) -> dict[str, str]:
    """The PNGs (training curves, Figure 3, Figure 2), named by what they show."""
    made = {}
    for name in ("forward", "reversed1"):
        run(["plot", "curves", f"{name}.jsonl", "-o", f"curves-{name}.png"], d)
        made[f"curves-{name}"] = f"curves-{name}.png"
    hyp = f"docs.{best['system'].replace(' ', '')}.beam{best['beam']}.fr"
    for by in ("length", "freq"):
        table = run(["score", "--ref", "docs.dev.fr", "--src", "docs.dev.en", "--breakdown", by,
                     "--vocab", "vocab.en", "--plot", f"breakdown-{by}.png", hyp], d)
        (d / f"breakdown-{by}.txt").write_text(table)
        made[f"breakdown-{by}"] = f"breakdown-{by}.png"
    phrases = ROOT / "examples" / "phrases" / "phrases.en"
    run(["encode", "-m", "reversed1.pt", "-o", "phrases.vec", str(phrases)], d)
    coords = run(["plot", "pca", "phrases.vec", "--labels", str(phrases), "-o", "pca.png"], d)
    (d / "pca.tsv").write_text(coords)
    made["pca"] = "pca.png"
    return made


def fmt(x: float | None, digits: int = 2) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def markdown(result: dict) -> str:
    setup = result["setup"]
    lines = [
        f"Budget {setup['budget_s'] / 60:.0f} min of wall clock ({setup['threads'] or 'default'} training threads, "
        f"{setup['decode_threads'] or 'default'} decoding threads): "
        f"{setup['arch']}; six models of {setup['train_s_each'] / 60:.1f} min each "
        f"({setup['epochs_each']:.2f} epochs of {setup['train_pairs']} pairs, docs.train + bible.train); "
        f"decoding on the first {setup['dev_lines'] or 'all'} lines of each dev set took "
        f"{setup['decode_s'] / 60:.1f} min; {setup['total_s'] / 60:.1f} min in all.", "",
        "| system | beam | docs.dev BLEU | docs.dev chrF | bible.dev BLEU | bible.dev chrF | paper BLEU (ntst14) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['system']} | {r['beam']} | {fmt(r['docs_bleu'])} | {fmt(r['docs_chrf'])} | "
                     f"{fmt(r['bible_bleu'])} | {fmt(r['bible_chrf'])} | {fmt(r['paper_bleu'])} |")
    for c, s in result["copy"].items():
        cells = f"{fmt(s['bleu'])} | {fmt(s['chrf'])} | | " if c == "docs" else f" | | {fmt(s['bleu'])} | {fmt(s['chrf'])}"
        lines.append(f"| copy the English source | | {cells} | |")
    lines += ["", "| model | docs.dev perplexity | bible.dev perplexity | paper (test perplexity) |",
              "|---|---|---|---|"]
    for name, p in result["perplexity"].items():
        paper = {"forward": "5.8", "reversed1": "4.7"}.get(name, "")
        lines.append(f"| {name} | {p['docs']:.1f} | {p['bible']:.1f} | {paper} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", default="2h", help="wall clock for everything (e.g. 2h, 40m; default 2h)")
    parser.add_argument("--decode-share", type=float, default=0.2,
                        help="share of the budget kept for decoding (default 0.2)")
    parser.add_argument("--layers", type=int, default=2, help="LSTM layers (default 2; the paper: 4)")
    parser.add_argument("--hidden", type=int, default=256, help="cells per layer (default 256; the paper: 1000)")
    parser.add_argument("--vocab-size", type=int, default=16000,
                        help="words per side (default 16000; the paper: 160k/80k)")
    parser.add_argument("--max-len", type=int, default=50, help="longest training sentence (default 50)")
    parser.add_argument("--batch-size", type=int, default=64, help="sentence pairs a batch (default 64)")
    parser.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"],
                        help="sgd (the paper's, lr 0.7) or adam (lr 0.001), for every model (default sgd)")
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16"],
                        help="training and decoding arithmetic (default bf16; use fp32 on CPUs without bf16)")
    parser.add_argument("--dev-lines", type=int, default=0, help="decode only the first N dev lines (0: all)")
    parser.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS for every command (0: torch's)")
    parser.add_argument("--decode-threads", type=int, default=0,
                        help="OMP_NUM_THREADS for decoding and the figures (0: as --threads)")
    parser.add_argument("--figures-only", action="store_true", help="only redraw the figures of a finished run")
    parser.add_argument("--out", type=Path, default=ROOT / "experiments" / "runs" / "table1",
                        help="where everything goes (default experiments/runs/table1)")
    args = parser.parse_args()
    if args.threads:
        ENV["OMP_NUM_THREADS"] = str(args.threads)
    d = args.out
    if args.figures_only:
        if args.decode_threads:
            ENV["OMP_NUM_THREADS"] = str(args.decode_threads)
        result = json.loads((d / "table1.json").read_text())
        result["figures"] = figures(d, result["best"])
        (d / "table1.json").write_text(json.dumps(result, indent=1) + "\n")
        return
    budget = parse_duration(args.budget)
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    start = time.monotonic()
    arch = ["--layers", str(args.layers), "--hidden", str(args.hidden), "--embedding", str(args.hidden),
            "--batch-size", str(args.batch_size), "--precision", args.precision, "--optimizer", args.optimizer]
    prepare_data(d, args.vocab_size, args.max_len)
    probe_s = 45.0
    run(["train", "train.s2s", "-o", "probe.pt", *arch, "--max-time", str(probe_s),
         "--valid-every", "1000000000"], d)
    steps_per_s = steps_done(d / "probe.pt") / probe_s
    (d / "probe.pt").unlink()
    pairs = train_pairs(d / "train.s2s")
    per_epoch = math.ceil(pairs / args.batch_size)
    train_left = budget * (1 - args.decode_share) - (time.monotonic() - start)
    seconds_each = max(30.0, train_left / (1 + len(SEEDS)) - 15)  # 15 s a model: start, last validation, save
    train_models(d, arch, seconds_each, steps_per_s, per_epoch)
    perplexities = {name: {c: dev_perplexity(d / f"{name}.pt", d / f"{c}.dev.s2s") for c in CORPORA}
                    for name in ("forward", "reversed1")}
    if args.decode_threads:
        ENV["OMP_NUM_THREADS"] = str(args.decode_threads)
    t_decode = time.monotonic()
    rows = decode_all(d, args.dev_lines, args.precision)
    decode_s = time.monotonic() - t_decode
    copy = {c: score(d / f"{c}.dev.en", d / f"{c}.dev.fr", d) for c in CORPORA}
    last = json.loads((d / "reversed1.jsonl").read_text().splitlines()[-1])
    result = {
        "setup": {"budget_s": budget, "threads": args.threads or None,
                  "decode_threads": args.decode_threads or args.threads or None, "train_pairs": pairs,
                  "arch": f"{args.layers}x{args.hidden} LSTMs, {args.vocab_size // 1000}k words a side, "
                          f"batch {args.batch_size}, {args.precision}, {args.optimizer}",
                  "train_s_each": seconds_each, "epochs_each": last["epoch"], "dev_lines": args.dev_lines,
                  "decode_s": round(decode_s, 1), "total_s": round(time.monotonic() - start, 1)},
        "rows": rows, "copy": copy, "perplexity": perplexities,
        "best": max(rows, key=lambda r: r["docs_bleu"] + r["bible_bleu"]),
    }
    (d / "table1.json").write_text(json.dumps(result, indent=1) + "\n")
    (d / "table1.md").write_text(markdown(result))
    print((d / "table1.md").read_text())
    try:
        result["figures"] = figures(d, result["best"])
    except SystemExit as exc:  # the table stands on its own; the figures can be redrawn with --figures-only
        print(f"figures: {exc}", file=sys.stderr)
    (d / "table1.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
