"""Beyond the paper, measured: each option trained for the same wall-clock budget from raw text.

    python experiments/beyond_the_paper.py --budget 30m
    python experiments/beyond_the_paper.py --budget 5m --rows paper,attention     # a quick look

For every row the clock starts before ``s2s vocab``: vocabularies, prepared data, a 60-second probe
that measures this machine's training speed for the row's model (so the learning-rate schedule can be
fitted to the time left: constant rate for 60% of the epochs that fit, then halved every tenth, the
paper's [3.4] schedule shrunk), then training with ``--max-time`` for what is left of the budget. The
model is then scored on docs.dev and bible.dev with greedy search and beam 5 (decoding is not counted
in the budget). Everything goes through the ``s2s`` command, as a user would run it.

Writes ``results.json`` and ``results.md`` (a Markdown table, with the copy-the-source baselines) under
``--out`` (default ``experiments/runs/beyond``, not tracked by git); each row's files stay in
``--out/ROW/``. Rows already in ``results.json`` are kept unless run again.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

from common import DATA, ENV, ROOT, parse_duration, run, score, steps_done, train_pairs

MODEL = ["--layers", "2", "--hidden", "256", "--embedding", "256", "--precision", "bf16"]

# name -> (what it is, vocab options, extra train options, extra translate options)
ROWS: dict[str, tuple[str, list[str], list[str], list[str]]] = {
    "paper": ("the paper's model: reversed source, no attention, words", ["--size", "16000"], [], []),
    "dropout": ("+ dropout 0.3", ["--size", "16000"], ["--dropout", "0.3"], []),
    "subwords": ("+ BPE subwords (8k)", ["--subword", "bpe", "--size", "8000"], [], []),
    "attention": ("+ attention (general, input feeding; --replace-unk)", ["--size", "16000"],
                  ["--attention", "general"], ["--replace-unk"]),
    "adam": ("+ Adam (lr 0.001)", ["--size", "16000"], ["--optimizer", "adam"], []),
    "best": ("attention + BPE 8k", ["--subword", "bpe", "--size", "8000"],
             ["--attention", "general"], []),
}


def train_row(name: str, budget: float, out: Path, batch_size: int, recipe: list[str]) -> dict:
    """Vocab, prepare, probe and train the row's model within ``budget`` seconds; ``recipe`` are further
    train options for every row."""
    what, vocab_opts, train_opts, _ = ROWS[name]
    d = out / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    start = time.monotonic()
    for lang in ("en", "fr"):
        run(["vocab", *vocab_opts, "-o", f"vocab.{lang}", str(DATA / f"docs.train.{lang}")], d)
    for split in ("train", "dev"):
        run(["prepare", "--src-vocab", "vocab.en", "--tgt-vocab", "vocab.fr", "-o", f"{split}.s2s",
             str(DATA / f"docs.{split}.en"), str(DATA / f"docs.{split}.fr")], d)
    # Probe the training speed of this row's model for 60 s, then fit the schedule to the time left.
    probe_s = 60.0
    recipe = ["--batch-size", str(batch_size), *recipe]
    run(["train", "train.s2s", "-o", "probe.pt", *MODEL, *recipe, *train_opts, "--max-time", str(probe_s),
         "--valid-every", "1000000000"], d)
    steps_per_s = steps_done(d / "probe.pt") / probe_s
    (d / "probe.pt").unlink()
    pairs = train_pairs(d / "train.s2s")
    per_epoch = math.ceil(pairs / batch_size)
    left = budget - (time.monotonic() - start) - 20  # 20 s for the last validation and save
    epochs = max(0.05, steps_per_s * left / per_epoch)
    run(["train", "train.s2s", "--valid", "dev.s2s", "-o", "model.pt", "--log", "train.jsonl", *MODEL, *recipe, *train_opts,
         "--epochs", f"{epochs:.4f}", "--decay-start", f"{0.6 * epochs:.4f}", "--decay-every", f"{epochs / 10:.4f}",
         "--max-time", f"{max(left, 1):.0f}"], d)
    seconds = time.monotonic() - start
    log = [json.loads(line) for line in (d / "train.jsonl").read_text().splitlines()]
    return {"row": name, "what": what, "budget_s": budget, "seconds": round(seconds, 1), "epochs": log[-1]["epoch"],
            "steps": log[-1]["step"], "valid_ppl": log[-1].get("valid_ppl"), "tok_s": log[-1]["tokens_per_s"],
            "recipe": " ".join(recipe)}


def decode_row(name: str, row: dict, out: Path) -> dict:
    """Greedy and beam-5 translations of docs.dev and bible.dev with the row's model, scored."""
    d = out / name
    what, _, _, translate_opts = ROWS[name]
    row = {**row, "what": what, "translate_options": translate_opts}
    for corpus in ("docs", "bible"):
        for beam in (1, 5):
            hyp = d / f"{corpus}.dev.beam{beam}.fr"
            t = time.monotonic()
            run(["translate", "-m", "model.pt", "--beam", str(beam), *translate_opts, "-q",
                 str(DATA / f"{corpus}.dev.en")], d, stdout=hyp)
            s = score(hyp, DATA / f"{corpus}.dev.fr", d)
            row[f"{corpus}_bleu_b{beam}"], row[f"{corpus}_chrf_b{beam}"] = s["bleu"], s["chrf"]
            row[f"{corpus}_decode_s_b{beam}"] = round(time.monotonic() - t, 1)
    return row


def markdown(rows: list[dict], baselines: dict[str, dict[str, float]], budget: float) -> str:
    threads = sorted({r.get("threads") or 0 for r in rows})
    recipes = sorted({r.get("recipe") or "--batch-size 64 --optimizer sgd" for r in rows})
    lines = [f"Budget per row: {budget / 60:.0f} minutes of wall clock on this machine, from raw text "
             "(vocab + prepare + speed probe + training); 2x256 LSTMs, bf16 autocast; "
             f"training options: {'; '.join(recipes)}; "
             f"OMP threads per row: {', '.join(str(t or 'default') for t in threads)}.", "",
             "| row | epochs | valid ppl | docs.dev BLEU (greedy / beam 5) | docs.dev chrF (greedy / beam 5) "
             "| bible.dev BLEU (greedy / beam 5) | bible.dev chrF (greedy / beam 5) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['what']} | {r['epochs']:.2f} | {r['valid_ppl']:.1f} | "
                     f"{r['docs_bleu_b1']:.1f} / {r['docs_bleu_b5']:.1f} | {r['docs_chrf_b1']:.1f} / "
                     f"{r['docs_chrf_b5']:.1f} | {r['bible_bleu_b1']:.1f} / {r['bible_bleu_b5']:.1f} | "
                     f"{r['bible_chrf_b1']:.1f} / {r['bible_chrf_b5']:.1f} |")
    for corpus, s in baselines.items():
        lines.append(f"| copy the English source ({corpus}.dev) | | | "
                     + (f"{s['bleu']:.1f} | {s['chrf']:.1f} | | |" if corpus == "docs" else
                        f" | | {s['bleu']:.1f} | {s['chrf']:.1f} |"))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", default="30m", help="wall clock per row (e.g. 30m, 5m, 1800)")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"which rows (default: {','.join(ROWS)})")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for each s2s command (OMP_NUM_THREADS; default: torch's choice). "
                             "Two drivers with --threads 1 can share a 2-core machine.")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences a batch, every row (default: 64)")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                        help="every row's optimizer (default: sgd, the paper's)")
    parser.add_argument("--lr", type=float, default=None,
                        help="every row's learning rate (default: s2s train's, 0.7 for sgd, 0.001 for adam)")
    parser.add_argument("--decode-only", action="store_true",
                        help="translate and score the rows' existing models again (after changing their "
                             "translate options)")
    parser.add_argument("--out", type=Path, default=ROOT / "experiments" / "runs" / "beyond",
                        help="where the rows' files and the tables go (default: experiments/runs/beyond)")
    args = parser.parse_args()
    budget = parse_duration(args.budget)
    args.out = args.out.resolve()  # the commands run inside each row's directory
    if args.threads:
        ENV["OMP_NUM_THREADS"] = str(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    results_file = args.out / "results.json"
    for name in args.rows.split(","):
        if args.decode_only:  # the row's training as it was recorded; its translations made again
            old = json.loads(results_file.read_text()) if results_file.exists() else []
            row = decode_row(name, next(r for r in old if r["row"] == name), args.out)
        else:
            recipe = ["--optimizer", args.optimizer, *(["--lr", str(args.lr)] if args.lr else [])]
            row = train_row(name, budget, args.out, args.batch_size, recipe)
            row["threads"] = args.threads or None
            row = decode_row(name, row, args.out)
        # Read again just before writing: another driver may share --out and have added its rows.
        rows = json.loads(results_file.read_text()) if results_file.exists() else []
        rows = sorted([r for r in rows if r["row"] != name] + [row], key=lambda r: list(ROWS).index(r["row"]))
        results_file.write_text(json.dumps(rows, indent=1) + "\n")
        print(f"{name}: {json.dumps(row)}", file=sys.stderr, flush=True)
    rows = json.loads(results_file.read_text()) if results_file.exists() else []
    baselines = {c: score(DATA / f"{c}.dev.en", DATA / f"{c}.dev.fr", args.out) for c in ("docs", "bible")}
    (args.out / "results.md").write_text(markdown(rows, baselines, budget))
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
