"""Training speed against OpenNMT-py on the same model, data and batches: target tokens/s, each tool's own figure.

    python bench/opennmt_compare.py --onmt-python /path/to/venv/bin/python
    python bench/opennmt_compare.py --onmt-python ... --attention general --input-feeding   # Luong's recipe
    python bench/opennmt_compare.py --onmt-python ... --rounds 3 --steps 300

OpenNMT-py is not a dependency of s2s: give the Python of a separate environment that has it, e.g.
``python -m venv onmt && onmt/bin/pip install torch==2.13.0 && onmt/bin/pip install --no-deps
OpenNMT-py==3.5.1 && onmt/bin/pip install configargparse pyyaml pyonmttok sentencepiece six tensorboard
sacrebleu rapidfuzz spacy fasttext-wheel`` (its own pins ask for an older torch; 3.5.1 runs on 2.13).

Config (a) of ``train_speed.py``: 2 x 256 LSTMs, embeddings 256, 5k vocabularies, batches of 64 sentences,
SGD, gradient norm 5, uniform init 0.08, no dropout, fp32, on 25,600 synthetic pairs (Zipf-distributed
words, lengths 5..30, ``common.synthetic_lines``) written as plain text and read by both tools from there.
Each round trains a fresh model with each tool for ``--steps`` batches, in turn (s2s, OpenNMT-py, s2s, ...),
and reads the target tokens/s each one reports (s2s: the average over the run in its last line, start-up
included; OpenNMT-py: the median of the second figure of its ``a/b tok/s`` reports, every ``--steps``/5
steps, leaving out the first report, which holds its start-up) and the whole process's wall time. Both
tools sort the data into batches of similar lengths. The ratio s2s / OpenNMT-py is taken round by round;
medians are printed.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ONMT_TRAIN, machine, run_logged, synthetic_lines, synthetic_vocab  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAIRS = 25_600
BATCH = 64
S2S_TOKS = re.compile(r"([\d,]+) tok/s")
ONMT_TOKS = re.compile(r"(\d+)/\s*(\d+) tok/s")

ONMT_CONFIG = """\
src_vocab: {d}/vocab.src
tgt_vocab: {d}/vocab.tgt
src_vocab_size: 5000
tgt_vocab_size: 5000
data:
  corpus_1:
    path_src: {d}/train.src
    path_tgt: {d}/train.tgt
save_model: {d}/onmt/model
save_checkpoint_steps: 1000000
train_steps: {steps}
valid_steps: 1000000
report_every: {report}
batch_type: sents
batch_size: {batch}
encoder_type: rnn
decoder_type: rnn
rnn_type: LSTM
layers: 2
hidden_size: 256
word_vec_size: 256
global_attention: {attention}
input_feed: {input_feed}
dropout: [0.0]
attention_dropout: [0.0]
optim: sgd
learning_rate: 0.7
max_grad_norm: 5
param_init: 0.08
seed: 1
num_workers: 0
"""


def write_data(d: Path) -> None:
    """Synthetic pairs as text, and each side's vocabulary in both tools' formats."""
    src_vocab, tgt_vocab = synthetic_vocab(5_000, "en"), synthetic_vocab(5_000, "fr")
    for side, vocab, seed in (("src", src_vocab, 1), ("tgt", tgt_vocab, 2)):
        lines = synthetic_lines(PAIRS, vocab, 5, 30, seed)
        (d / f"train.{side}").write_text("\n".join(lines) + "\n", encoding="utf-8")
        counts: dict[str, int] = {}
        for line in lines:
            for word in line.split():
                counts[word] = counts.get(word, 0) + 1
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        (d / f"vocab.{side}").write_text("".join(f"{w}\t{c}\n" for w, c in ranked), encoding="utf-8")


def s2s_round(d: Path, args: argparse.Namespace, env: dict[str, str]) -> tuple[float, float]:
    s2s = [sys.executable, "-m", "s2scli"]
    if not (d / "train.s2s").exists():
        for side in ("src", "tgt"):
            run_logged([*s2s, "vocab", "--tokenizer", "none", "--size", "4996", f"train.{side}", "-o",
                        f"s2s.vocab.{side}"], d / f"vocab-{side}.log", env)
        run_logged([*s2s, "prepare", "--src-vocab", "s2s.vocab.src", "--tgt-vocab", "s2s.vocab.tgt", "train.src",
                    "train.tgt", "-o", "train.s2s"], d / "prepare.log", env)
    epochs = args.steps * BATCH / PAIRS
    attention = ["--attention", args.attention] + ([] if args.input_feeding else ["--no-input-feeding"])
    cmd = [*s2s, "train", "train.s2s", "-o", "s2s.pt", "--force", "--layers", "2", "--hidden", "256",
           "--embedding", "256", "--batch-size", str(BATCH), "--optimizer", "sgd", "--lr", "0.7",
           "--precision", args.precision, "--epochs", f"{epochs:g}", "--dropout", "0", *attention]
    took, text = run_logged(cmd, d / "s2s-train.log", env)
    found = S2S_TOKS.findall(text)
    if not found:
        sys.exit(f"opennmt_compare: no tok/s in s2s's log {d / 's2s-train.log'}")
    return float(found[-1].replace(",", "")), took


def onmt_round(d: Path, args: argparse.Namespace, env: dict[str, str]) -> tuple[float, float]:
    (d / "onmt").mkdir(exist_ok=True)
    config = d / "onmt.yaml"
    config.write_text(ONMT_CONFIG.format(d=d, steps=args.steps, report=max(1, args.steps // 5), batch=BATCH,
                                         attention=args.attention, input_feed=int(args.input_feeding)))
    took, text = run_logged([args.onmt_python, "-c", ONMT_TRAIN, str(config)], d / "onmt-train.log", env)
    found = ONMT_TOKS.findall(text)
    if not found:
        sys.exit(f"opennmt_compare: no tok/s in OpenNMT-py's log {d / 'onmt-train.log'}")
    steady = [float(tgt) for _, tgt in found[1:]] or [float(found[0][1])]  # the first window holds its start-up
    return statistics.median(steady), took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--onmt-python", required=True, help="The Python of an environment with OpenNMT-py 3.5.1.")
    parser.add_argument("--steps", type=int, default=200, help="Batches each tool trains a round (default 200).")
    parser.add_argument("--rounds", type=int, default=2, help="Rounds of one run each (default 2).")
    parser.add_argument("--attention", default="none", choices=["none", "dot", "general"])
    parser.add_argument("--input-feeding", action="store_true", help="With --attention: Luong's input feeding.")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="s2s's (OpenNMT-py: fp32).")
    parser.add_argument("--dir", help="Work here and keep the data and both tools' logs (default: a temporary folder).")
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    print(f"# {machine()}")
    print(f"# config a, attention {args.attention}, input feeding {args.input_feeding}, {args.steps} steps, "
          f"s2s {args.precision}, OpenNMT-py fp32")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(args.dir or tmp).resolve()
        d.mkdir(parents=True, exist_ok=True)
        write_data(d)
        ours, theirs, ratios = [], [], []
        for r in range(args.rounds):
            (a, a_wall), (b, b_wall) = s2s_round(d, args, env), onmt_round(d, args, env)
            ours.append(a), theirs.append(b), ratios.append(a / b)
            print(f"round {r + 1}: s2s {a:,.0f} target tok/s ({a_wall:.1f} s), OpenNMT-py {b:,.0f} ({b_wall:.1f} s), "
                  f"ratio {a / b:.2f}", flush=True)
        print(f"median: s2s {statistics.median(ours):,.0f}, OpenNMT-py {statistics.median(theirs):,.0f} target tok/s; "
              f"s2s / OpenNMT-py {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
