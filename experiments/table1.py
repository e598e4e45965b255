"""The paper's Table 1 and Figures 2-3 on any parallel corpus, resumable row by row (issue 15).

    python experiments/table1.py --data examples/docs                  # the full run (~2 h on 2 cores)
    python experiments/table1.py --data examples/docs --dry-run        # the plan, the estimate, what is done
    python experiments/table1.py --data examples/docs --model-epochs 5 --jobs 6 --threads 2 \\
        --train-opts '--layers 4 --hidden 1000 --embedding 1000'     # a larger scale on a GPU
    python experiments/table1.py --data examples/docs --model-time 20s --test-lines 30 --vocab-size 2000 \\
        --out experiments/runs/table1-smoke                            # a smoke run of a few minutes

DIR (``--data``) holds ``train.SRC``, ``train.TGT``, ``valid.*`` and ``test.*``, each plain or ``.gz``
(``--src en --tgt fr`` by default; ``examples/docs`` has this layout). Everything runs through the ``s2s``
command as a user would run it (``common.run``), in ``--out`` (default ``experiments/runs/table1``):

1. word vocabularies of ``--vocab-size`` a side (the source one made to hold every word of the paper's
   Figure 2 phrases: see ``source_vocab``), prepared train and valid data;
2. the paper's model at CPU size (``--preset paper-small``: words, 2x256 LSTMs, no attention): one forward
   (``--no-reverse``) and five reversed models that differ only in ``--seed``, each trained for
   ``--model-time`` with ``--schedule time`` (the paper's halving schedule spread over the budget), or with
   ``--model-epochs E`` for E epochs each (the paper's schedule in its proportions: halving after 2/3 of E,
   every E/15; every model then takes the same steps whatever the machine's speed does), and
   ``--optimizer``/``--lr`` (Adam 0.002 by default: SGD at 0.7 learns too slowly in a CPU's minutes);
   ``--train-opts`` adds options for a larger scale (on a GPU: ``'--layers 4 --hidden 1000 ...'``);
   with ``--attention-model`` also an attention model (``--preset small``), used only as a source of
   12-best lists to rescore;
3. decoding the test set: forward beam 12; reversed (seed 1) beams 1, 2, 12; ensembles of 2 and 5
   reversed models, beams 1, 2, 12; reversed seeds 2-5 at beam 12 (mean and spread over seeds); copying
   the source; the forward model's (and attention model's) 12-best lists re-ranked by the ensemble of 5
   (``s2s score -m ... --nbest``), top-1 per sentence (the forward beam-12 row is the top-1 of the same
   12-best list, which is what ``s2s translate --beam 12`` prints);
4. BLEU and chrF, with 95% confidence intervals and p-values from ``s2s score --paired bs --json``, for
   each comparison the table makes (reversed vs forward, beam 2 and 12 vs 1, ensembles vs one model,
   rescored vs not, every system vs copying);
5. the figures: training curves of forward against reversed in one plot, BLEU by sentence length and by
   word frequency for the best ensemble of 5 (Figure 3), PCA of the paper's phrases (Figure 2, made right
   after training: it needs only the reversed model).

Each model, decode and score writes its file atomically; a rerun skips what is done (a model whose
training was cut short is resumed with ``s2s train --resume``, which keeps its time budget). Decodes go
to ``test-N/`` (N: ``--test-lines``, ``all`` for every line), so a smoke test on 30 lines does not
spoil the full run. Writes ``table1.json`` and ``table1.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from functools import partial
from importlib import metadata
from pathlib import Path

from common import ENV, ROOT, parse_duration, run, side_by_side

SEEDS = (1, 2, 3, 4, 5)
BEAMS = (1, 2, 12)
# The paper's numbers (../shared/PAPER.md): Table 1 (ntst14 BLEU), Table 2 (rescoring an SMT 1000-best
# list with an ensemble of 5 reversed LSTMs: 33.30 -> 36.5) and the test perplexities of [3.3].
PAPER_BLEU = {"forward.b12": 26.17, "reversed.b12": 30.59, "ens5.b1": 33.00, "ens2.b12": 33.27,
              "ens5.b2": 34.50, "ens5.b12": 34.81, "forward.rescored": 36.5}
PAPER_PPL = {"forward": 5.8, "reversed1": 4.7}
# Seconds per test line per model by beam, for the estimate made before any model exists: a guess scaled
# from a smoke run on 2 shared cores (an ensemble of 5 untrained 2x256 models, 2k words, which emit outputs of
# the maximum length: 0.14 s a line and model at beam 12), taken a little high. After training, the ensemble
# of 5 at beam 12 is timed on 20 test lines (``probe_decoding``) and the estimate printed again.
DECODE_S = {1: 0.01, 2: 0.02, 12: 0.08}
# Seconds a training step of a paper-small model (batch 64, bf16) on 2 cores, for --model-epochs' estimate: the
# issue-15 run on an Intel Xeon with AMX took 0.29-0.36.
S_PER_STEP = 0.33


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fail(msg: str) -> None:
    print(f"table1.py: error: {msg}", file=sys.stderr)
    raise SystemExit(1)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def run_to(args: list[str], cwd: Path, dst: Path) -> None:
    """An s2s command whose stdout becomes ``dst`` only once it has succeeded."""
    tmp = dst.with_name(dst.name + ".tmp")
    run(args, cwd, stdout=tmp)
    os.replace(tmp, dst)


# ---------------------------------------------------------------- data and settings


def find_data(data: Path | None, src: str, tgt: str) -> dict[str, Path]:
    """``train.en`` -> its path (plain or .gz) for the six files; one error line if any is missing."""
    if data is None:
        fail("--data DIR is required (e.g. --data examples/docs: train.en.gz, train.fr.gz, valid.*, test.*)")
    if not data.is_dir():
        fail(f"--data {data}: no such directory")
    found, missing = {}, []
    for split in ("train", "valid", "test"):
        for lang in (src, tgt):
            name = f"{split}.{lang}"
            path = next((p for p in (data / name, data / f"{name}.gz") if p.is_file()), None)
            found[name] = path.resolve() if path else None
            if path is None:
                missing.append(name)
    if missing:
        fail(f"--data {data}: no {', '.join(missing)} (plain or .gz)")
    return found


def read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
        return f.read().splitlines()


def check_settings(out: Path, args: argparse.Namespace) -> None:
    """A run directory keeps the settings its models were made with; a rerun must not change them."""
    settings = {"data": str(args.data.resolve()), "src": args.src, "tgt": args.tgt, "vocab_size": args.vocab_size,
                "model_time": parse_duration(args.model_time), "optimizer": args.optimizer, "lr": args.lr,
                "train_opts": args.train_opts, "model_epochs": args.model_epochs}
    path = out / "settings.json"
    if path.exists():
        old = json.loads(path.read_text())
        # a key added after a directory was made reads as its default then (model_epochs: none, a time budget)
        old = {"model_epochs": None, **old}
        changed = [f"{k} {old[k]} -> {v}" for k, v in settings.items() if old.get(k, v) != v]
        if changed:
            fail(f"{out} was made with other settings ({'; '.join(changed)}); use another --out or remove it")
    elif not args.dry_run:
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(settings, indent=1) + "\n")


def test_set(d: Path, files: dict[str, Path], args: argparse.Namespace) -> Path:
    """``test-N/`` with the first N test lines (all for 0), where every decode of that size goes."""
    t = d / f"test-{args.test_lines or 'all'}"
    (t / "hyp").mkdir(parents=True, exist_ok=True)
    for lang in (args.src, args.tgt):
        dst = t / f"test.{lang}"
        if not dst.exists():
            lines = read_lines(files[f"test.{lang}"])
            write_atomic(dst, "\n".join(lines[:args.test_lines] if args.test_lines else lines) + "\n")
    return t


# ---------------------------------------------------------------- vocabularies (Figure 2's words)


def vocab_words(path: Path) -> list[tuple[str, int]]:
    """(token, count) of a vocabulary file, header and specials skipped."""
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    return [(w, int(c)) for w, c in rows if not (w.startswith("<") and w.endswith(">"))]


def source_vocab(d: Path, files: dict[str, Path], args: argparse.Namespace) -> dict:
    """The source vocabulary, made to hold every word of the Figure 2 phrases.

    ``s2s vocab`` keeps the ``--vocab-size`` most frequent words of train; a phrase word that is not among
    them (software manuals have no "John" or "admires") is added by counting, with the training text, a
    file that holds the word on ``c + 1`` lines, c being the count of the last word kept. The added words
    thus rank just above the old cut-off and push out as many of the rarest words; the ranks of all other
    words (which ``--breakdown freq`` uses) are unchanged. A word added so never occurs in training: the
    model knows it only by its (untrained) embedding, and the report says so."""
    src = args.src
    report_path = d / "phrase-words.json"
    if (d / f"vocab.{src}").exists() and report_path.exists():
        return json.loads(report_path.read_text())
    train = str(files[f"train.{src}"])
    run(["vocab", "--size", str(args.vocab_size), "-l", src, "-o", f"vocab.{src}.base", train], d)
    run(["vocab", "--size", "0", "-l", src, "-o", "phrases.vocab", str(args.phrases)], d)
    base = vocab_words(d / f"vocab.{src}.base")
    known = dict(base)
    words = [w for w, _ in vocab_words(d / "phrases.vocab")]
    missing = [w for w in words if w not in known]
    cutoff = base[-1][1] if base else 0
    extra = d / "phrase-words.txt"
    extra.write_text("".join(f"{w}\n" * (cutoff + 1) for w in missing), encoding="utf-8")
    run(["vocab", "--size", str(args.vocab_size), "-l", src, "-o", f"vocab.{src}", train, extra.name], d)
    final = dict(vocab_words(d / f"vocab.{src}"))
    report = {"phrase_words": words, "added": missing, "added_count": cutoff + 1,
              "train_counts": {w: known.get(w, 0) for w in words},
              "still_missing": [w for w in words if w not in final]}
    write_atomic(report_path, json.dumps(report, indent=1) + "\n")
    return report


def say_phrase_words(report: dict) -> None:
    if report["still_missing"]:
        say(f"Figure 2: NOT in the source vocabulary: {' '.join(report['still_missing'])}")
    if report["added"]:
        say(f"Figure 2: {len(report['added'])} phrase words were not among the most frequent training words and "
            f"were added to the source vocabulary (counted {report['added_count']} times, just above the cut-off; "
            f"they never occur in training, so their embeddings stay as initialised): {' '.join(report['added'])}")
    else:
        say(f"Figure 2: all {len(report['phrase_words'])} phrase words are in the source vocabulary")


def prepare(d: Path, files: dict[str, Path], args: argparse.Namespace) -> None:
    src, tgt = args.src, args.tgt
    if not (d / f"vocab.{tgt}").exists():
        run(["vocab", "--size", str(args.vocab_size), "-l", tgt, "-o", f"vocab.{tgt}", str(files[f"train.{tgt}"])], d)
    vocabs = ["--src-vocab", f"vocab.{src}", "--tgt-vocab", f"vocab.{tgt}"]
    for split, max_len in (("train", []), ("valid", ["--max-len", "0"])):  # every valid pair: the whole dev set
        if not (d / f"{split}.s2s").exists():
            run(["prepare", *vocabs, *max_len, "-o", f"{split}.s2s", str(files[f"{split}.{src}"]),
                 str(files[f"{split}.{tgt}"])], d)


def prepare_attention(d: Path, files: dict[str, Path], args: argparse.Namespace) -> None:
    """Subword vocabularies and data for the attention model (``--preset small``: 8k BPE pieces)."""
    for lang in (args.src, args.tgt):
        if not (d / f"att.vocab.{lang}").exists():
            run(["vocab", "--preset", "small", "-l", lang, "-o", f"att.vocab.{lang}", str(files[f"train.{lang}"])], d)
    vocabs = ["--src-vocab", f"att.vocab.{args.src}", "--tgt-vocab", f"att.vocab.{args.tgt}"]
    for split in ("train", "valid"):
        if not (d / f"att.{split}.s2s").exists():
            run(["prepare", *vocabs, "-o", f"att.{split}.s2s", str(files[f"{split}.{args.src}"]),
                 str(files[f"{split}.{args.tgt}"])], d)


# ---------------------------------------------------------------- models


def budget(args: argparse.Namespace) -> list[str]:
    """Each paper model's training budget as ``s2s train`` options: --model-time of the time schedule, or
    --model-epochs with the paper's schedule in its proportions (7.5 epochs, halving after 5, every 0.5)."""
    if args.model_epochs is None:
        return ["--schedule", "time", "--max-time", args.model_time]
    e = args.model_epochs
    return ["--schedule", "epochs", "--epochs", f"{e:g}", "--decay-start", f"{e * 2 / 3:.4g}",
            "--decay-every", f"{e / 15:.4g}", "--max-time", "0"]


def model_jobs(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """(name, train options) of every model, in training order."""
    recipe = ["--preset", "paper-small", *budget(args), "--optimizer", args.optimizer, "--lr", str(args.lr),
              *shlex.split(args.train_opts), "train.s2s",
              "--valid", "valid.s2s"]
    jobs = [(f"reversed{s}", [*recipe, "--seed", str(s)]) for s in SEEDS[:1]]
    jobs.append(("forward", [*recipe, "--seed", "1", "--no-reverse"]))
    jobs += [(f"reversed{s}", [*recipe, "--seed", str(s)]) for s in SEEDS[1:]]
    if args.attention_model:
        jobs.append(("attention", ["--preset", "small", "--max-time", args.model_time, "att.train.s2s",
                                   "--valid", "att.valid.s2s"]))
    return jobs


def model_state(d: Path, name: str) -> str:
    return "done" if (d / f"{name}.done.json").exists() else "partial" if (d / f"{name}.pt").exists() else "todo"


def train(d: Path, name: str, opts: list[str], log: str = "log.txt") -> dict:
    """Train one model to its budget (resuming a cut-short one); ``NAME.done.json`` marks it finished.
    ``log``: where its stderr goes (models trained side by side each get their own, ``log.NAME.txt``)."""
    done = d / f"{name}.done.json"
    if done.exists():
        return json.loads(done.read_text())
    state = model_state(d, name)
    say(f"training {name} ({'resuming' if state == 'partial' else 'new'}): s2s train {' '.join(opts)}")
    t = time.monotonic()
    resume = ["--resume"] if state == "partial" else ["--force"]
    run(["train", *opts, "-o", f"{name}.pt", "--log", f"{name}.jsonl", *resume], d, log=log)
    last = log_summary(d / f"{name}.jsonl")
    info = {**last, "wall_s_this_run": round(time.monotonic() - t, 1)}
    write_atomic(done, json.dumps(info, indent=1) + "\n")
    say(f"trained {name}: {last['steps']} steps in {last['elapsed_s'] / 60:.1f} min, "
        f"dev perplexity {last['valid_ppl']}")
    return info


def log_summary(log: Path) -> dict:
    """Steps, training time, time per step and the last dev perplexity of a ``train --log`` file."""
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    last = records[-1]
    valid = [r["valid_ppl"] for r in records if "valid_ppl" in r]
    return {"steps": last["step"], "elapsed_s": last["elapsed_s"],
            "s_per_step": round(last["elapsed_s"] / max(1, last["step"]), 4),
            "valid_ppl": round(valid[-1], 3) if valid else None, "epoch": last.get("epoch")}


def train_all(d: Path, jobs: list[tuple[str, list[str]]], n: int) -> dict[str, dict]:
    """Every model trained (``train``), ``n`` at a time (``--jobs``; on a GPU, which one small model leaves
    mostly idle, several side by side finish sooner; on a CPU they would only share its cores)."""
    infos = side_by_side([partial(train, d, name, opts, log="log.txt" if n <= 1 else f"log.{name}.txt")
                          for name, opts in jobs], n)
    return {name: info for (name, _), info in zip(jobs, infos)}


# ---------------------------------------------------------------- systems and decoding


def systems(args: argparse.Namespace) -> list[dict]:
    """Every row: id, label, models, beam, the baseline its p-value is against, how it is made."""
    ens = {"reversed": ["reversed1"], "ens2": ["reversed1", "reversed2"], "ens5": [f"reversed{s}" for s in SEEDS]}
    names = {"reversed": "reversed", "ens2": "ensemble of 2 reversed", "ens5": "ensemble of 5 reversed"}
    rows = [{"id": "copy", "system": "copy the source", "beam": None, "baseline": None, "make": "copy"},
            {"id": "forward.b12", "system": "forward", "models": ["forward"], "beam": 12, "baseline": "copy",
             "make": "top1", "nbest": "forward.nbest12"}]
    for key, models in ens.items():
        for beam in BEAMS:
            base = {("reversed", 1): "copy", ("reversed", 2): "reversed.b1", ("reversed", 12): "forward.b12"}.get(
                (key, beam), f"reversed.b{beam}")
            rows.append({"id": f"{key}.b{beam}", "system": names[key], "models": models, "beam": beam,
                         "baseline": base, "make": "translate"})
    rows += [{"id": f"reversed{s}.b12", "system": f"reversed, seed {s}", "models": [f"reversed{s}"], "beam": 12,
              "baseline": "reversed.b12", "make": "translate"} for s in SEEDS[1:]]
    rows.append({"id": "forward.rescored", "system": "forward 12-best rescored by ensemble of 5", "beam": 12,
                 "baseline": "forward.b12", "make": "rescore", "nbest": "forward.nbest12"})
    if args.attention_model:
        rows += [{"id": "attention.b12", "system": "attention (n-best source only)", "models": ["attention"],
                  "beam": 12, "baseline": "copy", "make": "top1", "nbest": "attention.nbest12"},
                 {"id": "attention.rescored", "system": "attention 12-best rescored by ensemble of 5", "beam": 12,
                  "baseline": "attention.b12", "make": "rescore", "nbest": "attention.nbest12"}]
    return rows


# Comparisons beyond each row's own baseline: beam 2 and 12 against beam 1 for every system decoded at 1.
EXTRA_TESTS = {"reversed.b1": ["reversed.b12"], "ens2.b1": ["ens2.b2", "ens2.b12"], "ens5.b1": ["ens5.b2", "ens5.b12"]}


def hyp_path(t: Path, row: dict, args: argparse.Namespace) -> Path:
    return t / f"test.{args.src}" if row["id"] == "copy" else t / "hyp" / f"{row['id']}.{args.tgt}"


def decode(d: Path, t: Path, row: dict, args: argparse.Namespace) -> None:
    """Make one row's hypothesis file (and the n-best list it comes from), timed in ``hyp/ID.json``."""
    dst = hyp_path(t, row, args)
    if row["make"] == "copy" or dst.exists():
        return
    src = t / f"test.{args.src}"
    start = time.monotonic()
    if row["make"] == "translate":
        models = [x for m in row["models"] for x in ("-m", str(d / f"{m}.pt"))]
        run(["translate", *models, "--beam", str(row["beam"]), "-q", "-o", str(dst), str(src)], t)
    else:
        nbest = t / "hyp" / row["nbest"]
        if not nbest.exists():
            model = "forward" if row["nbest"].startswith("forward") else "attention"
            run(["translate", "-m", str(d / f"{model}.pt"), "--beam", "12", "-n", "12", "-q", "-o", str(nbest),
                 str(src)], t)
        if row["make"] == "rescore":
            ensemble = [x for s in SEEDS for x in ("-m", str(d / f"reversed{s}.pt"))]
            nbest = t / "hyp" / f"{row['id']}.nbest12"
            if not nbest.exists():
                run_to(["score", *ensemble, "--src", str(src), "--nbest", str(t / "hyp" / row["nbest"])], t, nbest)
        write_atomic(dst, "".join(line + "\n" for line in top1(nbest, len(read_lines(src)))))
    wall = time.monotonic() - start
    write_atomic(dst.with_suffix(".json"), json.dumps({"wall_s": round(wall, 1)}) + "\n")
    say(f"decoded {row['id']} in {wall:.0f} s")


def top1(nbest: Path, n: int) -> list[str]:
    """The best-scored hypothesis of each of n sentences in a Moses n-best list ('' where it has none)."""
    best: dict[int, tuple[float, str]] = {}
    for line in read_lines(nbest):
        fields = line.split(" ||| ")
        i, text, score = int(fields[0]), fields[1], float(fields[-1])
        if i not in best or score > best[i][0]:
            best[i] = (score, text)
    return [best[i][1] if i in best else "" for i in range(n)]


def probe_decoding(d: Path, t: Path, args: argparse.Namespace) -> float:
    """Seconds per line of the slowest decode (ensemble of 5, beam 12) on 20 test lines, as the summary of
    ``s2s translate`` reports it (loading the models not counted)."""
    probe = d / "decode-probe.json"
    if probe.exists():
        return json.loads(probe.read_text())["s_per_line"]
    sample = t / "probe.src"
    sample.write_text("".join(x + "\n" for x in read_lines(t / f"test.{args.src}")[:20]), encoding="utf-8")
    models = [x for s in SEEDS for x in ("-m", str(d / f"reversed{s}.pt"))]
    run(["translate", *models, "--beam", "12", "-o", str(t / "probe.out"), str(sample)], t)
    summary = [x for x in (t / "log.txt").read_text().splitlines() if x.startswith("s2s translate: ")][-1]
    match = re.search(r"(\d+) lines \(.*?\) in ([0-9.]+) s", summary)
    per_line = float(match.group(2)) / max(1, int(match.group(1))) if match else DECODE_S[12] * len(SEEDS)
    write_atomic(probe, json.dumps({"s_per_line": per_line, "summary": summary}) + "\n")
    return per_line


def report_decoding(rows: list[dict], lines: int, per_line: float) -> None:
    """The decoding estimate again, from the measured speed, and a --test-lines that keeps it under 45 min."""
    measured = {k: v * per_line / 5 / DECODE_S[12] for k, v in DECODE_S.items()}
    total = decode_estimate(rows, lines, measured)
    say(f"decoding: the ensemble of 5 at beam 12 takes {per_line:.2f} s a line here; all decodes of {lines} lines: "
        f"~{total / 60:.0f} min")
    per = (total - decode_estimate(rows, 0, measured)) / max(1, lines)
    if total > 45 * 60 and per > 0:
        fit = int((45 * 60 - decode_estimate(rows, 0, measured)) / per)
        say(f"decoding: to keep it under 45 min, stop (Ctrl-C) and rerun with --test-lines {max(fit, 100)}; "
            "the models are kept")


def decode_estimate(rows: list[dict], lines: int, per_model_line: dict[int, float]) -> float:
    """Seconds to decode every row: lines x models x the time a line and model take at that beam, plus the
    n-best lists (beam 12) and their rescoring (5 models scoring 12 hypotheses, ~ a beam-2 decode each);
    + 10 s a command for loading the models, and the scoring and figures (~2 min)."""
    total = 120.0 + 10 * len(rows)
    for row in rows:
        if row["make"] == "translate":
            total += lines * len(row["models"]) * per_model_line[row["beam"]]
        elif row["make"] == "top1":
            total += lines * per_model_line[12]
        elif row["make"] == "rescore":
            total += lines * len(SEEDS) * per_model_line[2]
    return total


# ---------------------------------------------------------------- significance


def comparisons(rows: list[dict]) -> dict[str, list[str]]:
    """Baseline id -> the ids tested against it (each row's own baseline, then EXTRA_TESTS)."""
    ids = {r["id"] for r in rows}
    tests: dict[str, list[str]] = {}
    for r in rows:
        if r["baseline"]:
            tests.setdefault(r["baseline"], []).append(r["id"])
    for base, others in EXTRA_TESTS.items():
        tests.setdefault(base, []).extend(o for o in others if o in ids and o not in tests.get(base, []))
    return tests


def paired(t: Path, base: str, others: list[str], by_id: dict[str, dict], args: argparse.Namespace) -> dict:
    """``s2s score --paired bs --json`` of the baseline and its systems, kept in ``scores/vs-BASE.json``."""
    (t / "scores").mkdir(exist_ok=True)
    path = t / "scores" / f"vs-{base}.json"
    ids = [base, *others]
    if path.exists():
        kept = json.loads(path.read_text())
        if kept["ids"] == ids:
            return kept
    hyps = [str(hyp_path(t, by_id[i], args)) for i in ids]
    out = run(["score", "--ref", str(t / f"test.{args.tgt}"), "--metrics", "bleu,chrf", "--paired", "bs",
               "--json", *hyps], t)
    kept = {"ids": ids, "files": hyps, "result": json.loads(out)}
    write_atomic(path, json.dumps(kept, indent=1) + "\n")
    say(f"significance against {base}: {', '.join(others)}")
    return kept


def metric(scores: dict, prefix: str) -> dict:
    return next(v for k, v in scores.items() if k.lower().startswith(prefix))


def fill_scores(rows: list[dict], tests: dict[str, dict]) -> None:
    """Each row's BLEU, chrF, 95% CI and p-value against its own baseline; every test it is in."""
    by_id = {r["id"]: r for r in rows}
    for base, kept in tests.items():
        for rid, sysres in zip(kept["ids"], kept["result"]["systems"]):
            row, bleu, chrf = by_id[rid], metric(sysres["scores"], "bleu"), metric(sysres["scores"], "chrf")
            row.update(bleu=bleu["score"], chrf=chrf["score"], bleu_mean=bleu["mean"],
                       ci_low=bleu["mean"] - bleu["ci"], ci_high=bleu["mean"] + bleu["ci"])
            if rid == base:
                continue
            row.setdefault("tests", []).append({"baseline": base, "bleu_delta": bleu["score"] - by_id[base]["bleu"]
                                                if "bleu" in by_id[base] else None,
                                                "p_bleu": bleu["p_value"], "p_chrf": chrf["p_value"]})
            if base == row["baseline"]:
                row["p_value"], row["chrf_p_value"] = bleu["p_value"], chrf["p_value"]


# ---------------------------------------------------------------- figures


def figure2(d: Path, args: argparse.Namespace) -> str:
    """Figure 2, the reversed model's sentence vectors (PCA), made as soon as that model is trained: it needs
    the model only, so a run whose models do not come back (a lent GPU) has it even if cut during decoding."""
    if not (d / "figure2-pca.png").exists():
        run(["encode", "-m", "reversed1.pt", "-q", "-o", "phrases.vec", str(args.phrases)], d)
        run_to(["plot", "pca", "phrases.vec", "--labels", str(args.phrases), "--title",
                "Figure 2: sentence vectors of the reversed model (seed 1)", "-o", "figure2-pca.png"], d,
               d / "figure2-pca.tsv")
    return str(d / "figure2-pca.png")


def figures(d: Path, t: Path, rows: list[dict], args: argparse.Namespace) -> dict[str, str]:
    """Training curves (forward vs reversed), Figure 3 on the best ensemble of 5, and Figure 2 (``figure2``)."""
    made = {}
    if not (d / "curves.png").exists():
        run(["plot", "curves", "forward.jsonl", "reversed1.jsonl", "--label", "forward", "--label", "reversed",
             "--title", "forward against reversed (seed 1)", "-o", "curves.png"], d)
    made["curves"] = str(d / "curves.png")
    best = max((r for r in rows if r["id"].startswith("ens5.")), key=lambda r: r.get("bleu", -1))
    for by in ("length", "freq"):
        png = t / f"figure3-{by}.png"
        if not png.exists():
            run_to(["score", "--ref", f"test.{args.tgt}", "--src", f"test.{args.src}", "--breakdown", by,
                    "--vocab", str(d / f"vocab.{args.src}"), "--plot", png.name,
                    str(hyp_path(t, best, args))], t, t / f"figure3-{by}.txt")
        made[f"figure3-{by}"] = str(png)
    made["figure2"] = figure2(d, args)
    made["figure3_system"] = f"{best['id']} ({best['system']}, beam {best['beam']})"
    return made


# ---------------------------------------------------------------- results


def machine(models: dict[str, dict]) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown") if Path("/proc/cpuinfo").exists() else "unknown"
    try:
        torch = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch = "unknown"
    gpu = ""
    if shutil.which("nvidia-smi"):
        query = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                               text=True)
        gpu = query.stdout.split("\n")[0].strip() if query.returncode == 0 else ""  # the first GPU
    return {"cpu": cpu, "gpu": gpu, "cores": os.cpu_count(),
            "threads": ENV.get("OMP_NUM_THREADS", "torch's default"),
            "torch": torch, "python": sys.version.split()[0],
            "s_per_step": {name: info["s_per_step"] for name, info in models.items()}}


def seed_spread(rows: list[dict], models: dict[str, dict]) -> dict:
    """Mean and standard deviation over the 5 reversed seeds: dev perplexity and test BLEU/chrF (beam 12)."""
    singles = [r for r in rows if r["id"] in {"reversed.b12", *(f"reversed{s}.b12" for s in SEEDS[1:])}]
    out = {}
    for key, values in (("valid_ppl", [models[f"reversed{s}"]["valid_ppl"] for s in SEEDS if f"reversed{s}" in models]),
                        ("bleu", [r["bleu"] for r in singles if "bleu" in r]),
                        ("chrf", [r["chrf"] for r in singles if "chrf" in r])):
        values = [v for v in values if v is not None]
        if values:
            out[key] = {"mean": statistics.mean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
                        "min": min(values), "max": max(values), "n": len(values)}
    return out


def fmt(x: float | None, digits: int = 2) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def markdown(result: dict) -> str:
    s, m = result["setup"], result["machine"]
    lines = [f"# Table 1 on {s['data']} ({s['test_lines']} test lines)", "",
             f"Models: {s['recipe']}. {s['vocabulary']}", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, " + (f"GPU {m['gpu']}, " if m.get("gpu") else "")
             + f"OMP threads {m['threads']}, torch {m['torch']}; "
             f"wall time: training {s['train_s'] / 60:.1f} min (the models' logs, summed"
             + (f"; {s['jobs']} models side by side" if s.get("jobs", 1) > 1 else "") + "), "
             f"decoding {s['decode_s'] / 60:.1f} min, "
             f"this invocation {s['wall_s'] / 60:.1f} min; seconds a training step: "
             + ", ".join(f"{k} {v:.3f}" for k, v in m["s_per_step"].items()) + ".", "",
             "| system | beam | BLEU | 95% CI | chrF | dev ppl | p (BLEU) vs | paper BLEU | paper ppl |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        p = f"{fmt(r.get('p_value'), 4)} vs {r['baseline']}" if r.get("p_value") is not None else ""
        ci = f"{fmt(r.get('ci_low'))}-{fmt(r.get('ci_high'))}" if "ci_low" in r else ""
        lines.append(f"| {r['system']} | {r['beam'] or ''} | {fmt(r.get('bleu'))} | {ci} | {fmt(r.get('chrf'))} | "
                     f"{fmt(r.get('ppl'))} | {p} | {fmt(r.get('paper_bleu'))} | {fmt(r.get('paper_ppl'), 1)} |")
    lines += ["", "Every test (paired bootstrap resampling, 1000 resamples, `s2s score --paired bs`, the numbers "
              "of the `sacrebleu` command; it gives p = 0.001 even to two systems with the same score, e.g. "
              "both 0 BLEU, "
              "so read p with the difference):", "",
              "| system | against | BLEU difference | p (BLEU) | p (chrF) |", "|---|---|---|---|---|"]
    for r in result["rows"]:
        for test in r.get("tests", []):
            lines.append(f"| {r['id']} | {test['baseline']} | {fmt(test['bleu_delta'])} | {fmt(test['p_bleu'], 4)} | "
                         f"{fmt(test['p_chrf'], 4)} |")
    spread = result["seeds"]
    if spread:
        lines += ["", "The 5 reversed seeds (single models, beam 12): "
                  + "; ".join(f"{k} mean {v['mean']:.2f}, sd {v['sd']:.2f} (min {v['min']:.2f}, max {v['max']:.2f}, "
                              f"n {v['n']})" for k, v in spread.items()) + "."]
    lines += ["", "The paper's numbers are ntst14 BLEU (Table 1; the rescoring row: Table 2, an SMT 1000-best list) "
              "and "
              "test perplexity [3.3], at full scale; sacreBLEU's detokenized BLEU here is not comparable in level.",
              "", "Figures: " + ", ".join(f"{k}: {v}" for k, v in result.get("figures", {}).items())]
    return "\n".join(lines) + "\n"


def collect(d: Path, t: Path, rows: list[dict], models: dict[str, dict], args: argparse.Namespace,
            started: float) -> dict:
    for r in rows:
        r["paper_bleu"] = PAPER_BLEU.get(r["id"])
        single = r.get("models", [None])[0] if len(r.get("models", [])) == 1 else None
        r["ppl"] = models.get(single, {}).get("valid_ppl") if single and single != "attention" else None  # words
        r["paper_ppl"] = PAPER_PPL.get(single) if single and r["id"] in ("forward.b12", "reversed.b12") else None
        timing = hyp_path(t, r, args).with_suffix(".json")
        r["decode_s"] = json.loads(timing.read_text())["wall_s"] if timing.exists() else None
    report = json.loads((d / "phrase-words.json").read_text())
    vocab = (f"Vocabularies: the {args.vocab_size} most frequent words a side; the source one also holds the "
             f"Figure 2 phrase words not among them ({', '.join(report['added']) or 'none'}), each counted "
             f"{report['added_count']} times (just above the cut-off), so every phrase word is in it; those words "
             "never occur in training.")
    setup = {"data": str(args.data), "test_lines": args.test_lines or "all",
             "model_time_s": parse_duration(args.model_time) if args.model_epochs is None else None,
             "model_epochs": args.model_epochs,
             "recipe": f"--preset paper-small (words, 2x256 LSTMs unless --train-opts says otherwise, no attention), "
                       f"{args.vocab_size} words a side, "
                       f"{' '.join(budget(args))}, --optimizer {args.optimizer} --lr {args.lr} "
                       f"{args.train_opts}".rstrip(),
             "vocabulary": vocab, "wall_s": time.monotonic() - started, "phrase_words": report,
             "train_s": sum(m["elapsed_s"] for m in models.values()), "jobs": args.jobs,
             "decode_s": sum(r["decode_s"] or 0 for r in rows),
             "commands": "every s2s command run is in log.txt and test-N/log.txt under --out"}
    return {"setup": setup, "machine": machine(models), "models": models, "rows": rows,
            "seeds": seed_spread(rows, models)}


# ---------------------------------------------------------------- the run


def estimate(args: argparse.Namespace, rows: list[dict], lines: int, train_src: Path) -> float:
    jobs = model_jobs(args)
    # each model: its budget + ~45 s (start-up, the last validation with --valid-bleu, saving); + vocab and prepare
    per_model, what = parse_duration(args.model_time), args.model_time
    if args.model_epochs is not None:
        # pairs / paper-small's batch of 64 (before --max-len's cut and any --batch-size in --train-opts)
        steps = math.ceil(len(read_lines(train_src)) / 64) * args.model_epochs
        per_model, what = steps * S_PER_STEP, f"{args.model_epochs:g} epochs, ~{steps:.0f} steps at ~{S_PER_STEP} s"
    train_s = math.ceil(len(jobs) / args.jobs) * (per_model + 45) + 120 + 120 * args.attention_model
    decode_s = decode_estimate(rows, lines, DECODE_S)
    say(f"estimate: {len(jobs)} models x ({what} + ~45 s start-up and last validation) + vocabularies and "
        f"data = {train_s / 60:.0f} min of training, ~{decode_s / 60:.0f} min decoding {lines} test lines "
        f"(from {DECODE_S} s a line and "
        f"model by beam on 2 cores), {(train_s + decode_s) / 60:.0f} min in all; --test-lines N decodes fewer")
    if train_s + decode_s > 150 * 60:
        say("estimate: over 150 min; a smaller --model-time or --model-epochs, or --test-lines N, fits "
            "(or let it resume in parts)")
    return train_s + decode_s


def plan(d: Path, t: Path, rows: list[dict], args: argparse.Namespace) -> None:
    """--dry-run: what is done and what is left, without running anything."""
    for name, opts in model_jobs(args):
        say(f"model {name}: {model_state(d, name)} (s2s train {' '.join(opts)})")
    left = [r["id"] for r in rows if r["make"] != "copy" and not hyp_path(t, r, args).exists()]
    say(f"decodes in {t}: {len(rows) - 1 - len(left)} done, {len(left)} to do: {' '.join(left)}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, help="directory with train/valid/test.SRC and .TGT, plain or .gz (required)")
    p.add_argument("--src", default="en", help="source language suffix (default en)")
    p.add_argument("--tgt", default="fr", help="target language suffix (default fr)")
    p.add_argument("--model-time", default="15m", help="training budget of each model, e.g. 15m, 20s (default 15m)")
    p.add_argument("--model-epochs", type=float, default=None,
                   help="instead of --model-time: train each paper model for this many epochs, so that every model "
                   "takes the same steps (the paper's schedule in its proportions; no time limit)")
    p.add_argument("--optimizer", default="adam", choices=["sgd", "adam"], help="for every model (default adam)")
    p.add_argument("--lr", type=float, default=0.002, help="learning rate (default 0.002; the paper's SGD: 0.7)")
    p.add_argument("--train-opts", default="",
                   help="more 's2s train' options for the six paper models, e.g. '--layers 4 --hidden 1000 "
                   "--embedding 1000 --batch-size 128' for a larger scale on a GPU (default: none)")
    p.add_argument("--vocab-size", type=int, default=16000, help="words a side (default 16000, as paper-small)")
    p.add_argument("--attention-model", action="store_true",
                   help="also train an attention model (--preset small) as a second n-best source for rescoring")
    p.add_argument("--test-lines", type=int, default=0, help="decode only the first N test lines (0: all)")
    p.add_argument("--phrases", type=Path, default=ROOT / "examples" / "phrases" / "phrases.en",
                   help="Figure 2's phrases, one a line (default examples/phrases/phrases.en)")
    p.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS for every command (0: torch's)")
    p.add_argument("--jobs", type=int, default=1,
                   help="models trained at once (default 1; more on a GPU, each with its own log.NAME.txt)")
    p.add_argument("--dry-run", action="store_true", help="print the estimate and what is done, run nothing")
    p.add_argument("--out", type=Path, default=ROOT / "experiments" / "runs" / "table1",
                   help="where everything goes (default experiments/runs/table1, not tracked by git)")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    started = time.monotonic()
    files = find_data(args.data, args.src, args.tgt)
    if args.model_epochs is not None and not args.model_epochs > 0:
        fail(f"--model-epochs must be positive, got {args.model_epochs:g}")
    if args.jobs < 1:
        fail(f"--jobs must be at least 1, got {args.jobs}")
    if args.threads:
        ENV["OMP_NUM_THREADS"] = str(args.threads)
    d = args.out.resolve()
    check_settings(d, args)
    rows = systems(args)
    lines = args.test_lines or len(read_lines(files[f"test.{args.src}"]))
    say(f"table1: {args.data} -> {d}; {args.optimizer} at lr {args.lr} for every model (Adam by default: SGD at 0.7 "
        "learns too slowly in a CPU's minutes)")
    estimate(args, rows, lines, files[f"train.{args.src}"])
    if args.dry_run:
        plan(d, d / f"test-{args.test_lines or 'all'}", rows, args)
        return
    report = source_vocab(d, files, args)
    say_phrase_words(report)
    prepare(d, files, args)
    if args.attention_model:
        prepare_attention(d, files, args)
    models = train_all(d, model_jobs(args), args.jobs)
    figure2(d, args)
    t = test_set(d, files, args)
    per_line = probe_decoding(d, t, args)
    report_decoding(rows, lines, per_line)
    for row in rows:
        decode(d, t, row, args)
    by_id = {r["id"]: r for r in rows}
    tests = {base: paired(t, base, others, by_id, args) for base, others in comparisons(rows).items()}
    fill_scores(rows, tests)
    result = collect(d, t, rows, models, args, started)
    result["figures"] = figures(d, t, rows, args)
    write_atomic(d / "table1.json", json.dumps(result, indent=1) + "\n")
    write_atomic(d / "table1.md", markdown(result))
    print((d / "table1.md").read_text())


if __name__ == "__main__":
    main()
