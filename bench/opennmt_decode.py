"""Decoding speed against OpenNMT-py with the same trained weights: both tools translate the same file.

    python bench/opennmt_decode.py -m demo/model.pt --onmt-python /path/to/venv/bin/python
    python bench/opennmt_decode.py -m model.pt --onmt-python ... --beams 1,5,12 --length-penalty 1.0

Timing two tools on models each trained for a few hundred steps says little: such models emit a few
tokens a sentence, so the figure is start-up, not search. Here OpenNMT-py 3.5.1 decodes with s2s's own
trained weights instead. An s2s model without input feeding (attention none, dot or general) is exactly
OpenNMT-py's RNN encoder and ``StdRNNDecoder`` (Luong attention: scores h_t W h_s, tanh(W_c [c; h_t]), no
biases; a generator with a bias), so the script

1. writes the source file as s2s tokenizes it (its sentencepiece or word tokenizer, ids cut as
   ``s2s translate`` cuts them), reversed when the model reads reversed, each token named by its s2s id
   (``t17``), so neither tool tokenizes anything of its own;
2. has OpenNMT-py train one step on that text to get a checkpoint of the right shape and format, with
   vocabularies listing ``t4``, ``t5``, ... in s2s's order (its specials ``<unk> <blank> <s> </s>``
   take ids 0-3, s2s's ``<pad> <unk> <s> </s>``);
3. puts s2s's weights into that checkpoint (rows of the embeddings and the generator permuted for the
   two specials; OpenNMT-py's ``linear_in`` is the transpose of s2s's ``attn_key``);
4. translates the file with each tool in turn, ``--rounds`` times (s2s, OpenNMT-py, s2s, ...), both at
   batch 64 sentences, fp32, beam ``b``, the same length penalty (0: none; a: GNMT's ``wu`` with alpha a),
   ``<unk>`` allowed, output limits as close as the two allow (s2s: 2 x source length + 10 a sentence;
   OpenNMT-py: 2 x the batch's longest source + 5, ``-max_length_ratio 2``).

Speeds: each tool's translation time as the tool itself reports it after loading the model (s2s's
summary line on stderr, lines/s, OpenNMT-py's ``-report_time`` "Total translation time"), and each process's wall
time. OpenNMT-py's output ids are mapped back to s2s tokens and detokenized by s2s, so both outputs are
compared line by line ("same lines") and scored against ``--ref``. Same weights, same greedy search: the
outputs should agree but for floating-point ties, which is the check that the conversion is right.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ENFR, ONMT_TRAIN, machine, run_logged  # noqa: E402

from s2scli import checkpoint  # noqa: E402
from s2scli.batching import MAX_SOURCE_TOKENS  # noqa: E402
from s2scli.score import metric_scores  # noqa: E402
from s2scli.vocab import EOS, Vocab  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
S2S_SPEED = re.compile(r"([\d.]+) lines/s")
ONMT_TIME = re.compile(r"Total translation time \(s\): ([\d.]+)")
SPECIALS = 4  # both tools' first four ids are specials: s2s <pad> <unk> <s> </s>, OpenNMT-py <unk> <blank> <s> </s>

ONMT_CONFIG = """\
src_vocab: {d}/vocab.src
tgt_vocab: {d}/vocab.tgt
src_vocab_size: {src_size}
tgt_vocab_size: {tgt_size}
data:
  corpus_1:
    path_src: {d}/src.tok
    path_tgt: {d}/src.tok
save_model: {d}/onmt/model
save_checkpoint_steps: 1
train_steps: 1
valid_steps: 1000000
batch_type: sents
batch_size: 8
encoder_type: rnn
decoder_type: rnn
rnn_type: LSTM
layers: {layers}
hidden_size: {hidden}
word_vec_size: {embedding}
global_attention: {attention}
input_feed: 0
dropout: [0.0]
optim: sgd
learning_rate: 0.0
seed: 1
num_workers: 0
"""

# Runs in OpenNMT-py's Python: the one-step checkpoint's parameters take the converted weights.
ONMT_FILL = """\
import sys, torch
ckpt = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
new = torch.load(sys.argv[2], weights_only=True)
for part in ("model", "generator"):
    for name, old in ckpt[part].items():
        key = part + "." + name
        if key not in new:
            sys.exit(f"no s2s weight for OpenNMT-py's {key}")
        if tuple(new[key].shape) != tuple(old.shape):
            sys.exit(f"{key}: s2s gives {tuple(new[key].shape)}, OpenNMT-py has {tuple(old.shape)}")
        ckpt[part][name] = new.pop(key).to(old.dtype)
if new:
    sys.exit(f"s2s weights OpenNMT-py has no place for: {sorted(new)}")
for side in ("src", "tgt"):
    tokens = ckpt["vocab"][side]
    if tokens[:4] != ["<unk>", "<blank>", "<s>", "</s>"] or tokens[4:8] != ["t4", "t5", "t6", "t7"]:
        sys.exit(f"OpenNMT-py's {side} vocabulary is not in s2s's order: {tokens[:8]}")
torch.save(ckpt, sys.argv[3])
"""


def write_source(lines: list[str], vocab: Vocab, reverse: bool, path: Path) -> None:
    """Each line as s2s's ids named ``t<id>``, cut to ``MAX_SOURCE_TOKENS`` as ``s2s translate`` cuts."""
    with open(path, "w", encoding="utf-8") as out:
        for number, line in enumerate(lines, 1):
            ids = vocab.encode_line(line)[:MAX_SOURCE_TOKENS]
            if not ids:
                sys.exit(f"opennmt_decode: line {number} of the source has no tokens (OpenNMT-py skips such lines)")
            out.write(" ".join(f"t{i}" for i in (reversed(ids) if reverse else ids)) + "\n")


def write_onmt_vocab(size: int, path: Path) -> None:
    """OpenNMT-py's vocabulary file: ``t4`` .. ``t<size-1>`` with falling counts (it keeps the file's order)."""
    path.write_text("".join(f"t{i}\t{size - i}\n" for i in range(SPECIALS, size)), encoding="utf-8")


def onmt_weights(weights: dict[str, torch.Tensor], attention: str, layers: int) -> dict[str, torch.Tensor]:
    """s2s's state dict under OpenNMT-py's names ("model." / "generator." prefixed), its special rows swapped."""
    def rows(t: torch.Tensor) -> torch.Tensor:  # OpenNMT-py row j holds s2s row perm[j]
        perm = torch.arange(t.size(0))
        perm[0], perm[1] = 1, 0  # <unk> <blank> for <pad> <unk>
        return t[perm].contiguous()

    out = {"model.encoder.embeddings.make_embedding.emb_luts.0.weight": rows(weights["src_embed.weight"]),
           "model.decoder.embeddings.make_embedding.emb_luts.0.weight": rows(weights["tgt_embed.weight"]),
           "generator.weight": rows(weights["output.weight"]), "generator.bias": rows(weights["output.bias"])}
    for side in ("encoder", "decoder"):
        for layer in range(layers):
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                out[f"model.{side}.rnn.{kind}_l{layer}"] = weights[f"{side}.{kind}_l{layer}"]
    if attention != "none":
        out["model.decoder.attn.linear_out.weight"] = weights["attn_out.weight"]
    if attention == "general":
        out["model.decoder.attn.linear_in.weight"] = weights["attn_key.weight"].t().contiguous()
    return out


def onmt_to_text(path: Path, tgt_vocab: Vocab) -> list[str]:
    """OpenNMT-py's output (``t<id>`` tokens; ``<unk>`` is id 1 in s2s) detokenized by s2s."""
    detokenize = tgt_vocab.text_tokenizer().detokenize
    texts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        ids = [1 if tok == "<unk>" else int(tok[1:]) for tok in line.split()]
        texts.append(detokenize(tgt_vocab.decode(ids + [EOS])))
    return texts


def s2s_translate(model: Path, beam: int, penalty: float, d: Path, env: dict[str, str]) -> tuple[float, float]:
    """``s2s translate`` of ``d/src.txt`` into ``d/s2s.out``: lines/s from its summary line, and wall seconds."""
    took, text = run_logged([sys.executable, "-m", "s2scli", "translate", "-m", str(model.resolve()), "--beam",
                             str(beam), "--length-penalty", f"{penalty:g}", "--batch-size", "64", "--precision",
                             "fp32"], d / "s2s.log", env, d / "src.txt", d / "s2s.out")
    found = S2S_SPEED.findall(text)
    if not found:
        sys.exit(f"opennmt_decode: no lines/s in s2s's summary: {text[-500:]}")
    return float(found[-1]), took


def onmt_translate(python: str, beam: int, penalty: float, n_lines: int, d: Path,
                   env: dict[str, str]) -> tuple[float, float]:
    """OpenNMT-py's translate of ``d/src.tok`` into ``d/onmt.out``: lines/s by its "Total translation time",
    and wall seconds."""
    code = "import sys; from onmt.bin.translate import main; sys.argv = ['onmt_translate'] + sys.argv[1:]; main()"
    lp = ["-length_penalty", "wu", "-alpha", f"{penalty:g}"] if penalty else ["-length_penalty", "none"]
    took, text = run_logged([python, "-c", code, "-model", str(d / "onmt" / "s2s.pt"), "-src", str(d / "src.tok"),
                             "-output", str(d / "onmt.out"), "-beam_size", str(beam), "-batch_size", "64",
                             "-batch_type", "sents", "-max_length", "4000", "-max_length_ratio", "2", "-report_time",
                             *lp], d / "onmt.log", env)
    found = ONMT_TIME.findall(text)
    if not found:
        sys.exit(f"opennmt_decode: no time in OpenNMT-py's log: {text[-500:]}")
    return n_lines / float(found[-1]), took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--model", required=True, type=Path, help="an s2s model without input feeding")
    parser.add_argument("--onmt-python", required=True, help="the Python of an environment with OpenNMT-py 3.5.1 "
                        "(see bench/opennmt_compare.py for its install)")
    parser.add_argument("--src", type=Path, default=ENFR / "docs.dev.en")
    parser.add_argument("--ref", type=Path, default=ENFR / "docs.dev.fr")
    parser.add_argument("--beams", default="1,5")
    parser.add_argument("--length-penalty", type=float, default=0.0, help="0: none (default); a > 0: GNMT's, alpha a")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="work here and keep every file (default: a temporary folder)")
    args = parser.parse_args()
    ckpt = checkpoint.load(args.model)
    cfg = ckpt.model_config
    if cfg.input_feeding and cfg.attention != "none" or cfg.attention not in ("none", "dot", "general"):
        sys.exit("opennmt_decode: the model must have attention none, dot or general without input feeding")
    lines = args.src.read_text(encoding="utf-8").splitlines()
    refs = args.ref.read_text(encoding="utf-8").splitlines()
    env = dict(os.environ, PYTHONPATH=str(ROOT), TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")
    print(f"# {machine()}")
    print(f"# {args.model} ({cfg.layers}x{cfg.hidden}, attention {cfg.attention}, vocabularies "
          f"{cfg.src_vocab_size}/{cfg.tgt_vocab_size}) on {args.src} ({len(lines)} lines), batch 64, fp32, "
          f"length penalty {args.length_penalty}, {args.rounds} rounds")
    with tempfile.TemporaryDirectory() as tmp:
        d = (args.dir or Path(tmp)).resolve()
        (d / "onmt").mkdir(parents=True, exist_ok=True)
        write_source(lines, ckpt.src_vocab, cfg.reverse, d / "src.tok")
        (d / "src.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        write_onmt_vocab(cfg.src_vocab_size, d / "vocab.src")
        write_onmt_vocab(cfg.tgt_vocab_size, d / "vocab.tgt")
        (d / "onmt.yaml").write_text(ONMT_CONFIG.format(
            d=d, src_size=cfg.src_vocab_size, tgt_size=cfg.tgt_vocab_size, layers=cfg.layers, hidden=cfg.hidden,
            embedding=cfg.embedding, attention=cfg.attention))
        run_logged([args.onmt_python, "-c", ONMT_TRAIN, str(d / "onmt.yaml")], d / "onmt-train.log", env)
        torch.save(onmt_weights(ckpt.weights, cfg.attention, cfg.layers), d / "s2s-weights.pt")
        run_logged([args.onmt_python, "-c", ONMT_FILL, str(d / "onmt" / "model_step_1.pt"),
                    str(d / "s2s-weights.pt"), str(d / "onmt" / "s2s.pt")], d / "onmt-fill.log", env)
        print("| tool | beam | lines/s (its own timer) | process wall s | same lines as s2s | BLEU |")
        print("|---|---|---|---|---|---|")
        ratios = []
        for beam in (int(b) for b in args.beams.split(",")):
            timed: dict[str, list[tuple[float, float]]] = {"s2s": [], "OpenNMT-py": []}  # (lines/s, wall s)
            for _ in range(args.rounds):
                timed["s2s"].append(s2s_translate(args.model, beam, args.length_penalty, d, env))
                timed["OpenNMT-py"].append(onmt_translate(args.onmt_python, beam, args.length_penalty, len(lines), d,
                                                          env))
            ratios.append((beam, statistics.median(a[0] / b[0] for a, b in zip(timed["s2s"], timed["OpenNMT-py"]))))
            outputs = {"s2s": (d / "s2s.out").read_text(encoding="utf-8").splitlines(),
                       "OpenNMT-py": onmt_to_text(d / "onmt.out", ckpt.tgt_vocab)}
            for tool, out in outputs.items():
                if len(out) != len(lines):
                    sys.exit(f"opennmt_decode: {tool} wrote {len(out)} lines for {len(lines)}")
            same = sum(a == b for a, b in zip(outputs["s2s"], outputs["OpenNMT-py"]))
            for tool, runs in timed.items():
                bleu = metric_scores(outputs[tool], [refs], ["bleu"])[0].score
                print(f"| {tool} | {beam} | {statistics.median(r[0] for r in runs):.1f} | "
                      f"{statistics.median(r[1] for r in runs):.1f} | {same}/{len(lines)} | {bleu:.2f} |", flush=True)
        for beam, ratio in ratios:
            print(f"# beam {beam}: s2s / OpenNMT-py lines/s, median of rounds: {ratio:.2f}x")


if __name__ == "__main__":
    main()
