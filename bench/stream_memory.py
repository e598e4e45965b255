"""Streaming memory: peak RSS of ``s2s translate`` as the input grows to 1M lines.

    python bench/stream_memory.py                   # 10k, 100k and 1M lines
    python bench/stream_memory.py --lines 10000,100000

A small model (2 x 64 LSTM, 5k vocabularies; --hidden to change) is saved to a temporary model file; then
``s2s translate`` runs as a real subprocess fed by a generator through a pipe, with its output thrown
away, and the child's own peak resident memory is read from ``os.wait4``. Lines are 3..12 words; decoding is greedy with the output
length pinned to the source length, so the run is about memory, not search.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, synthetic_vocab  # noqa: E402

from s2scli.checkpoint import Checkpoint, save  # noqa: E402
from s2scli.config import ModelConfig, TrainConfig  # noqa: E402
from s2scli.model import Seq2Seq  # noqa: E402


def feed(stdin, n: int, words: list[str]) -> None:
    rng = random.Random(5)
    chunk = []
    for i in range(n):
        chunk.append(" ".join(rng.choices(words, k=rng.randint(3, 12))))
        if len(chunk) == 1000 or i == n - 1:
            stdin.write(("\n".join(chunk) + "\n").encode())
            chunk = []
    stdin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", default="10000,100000,1000000")
    parser.add_argument("--hidden", type=int, default=64, help="LSTM size (small: the run is about memory)")
    args = parser.parse_args()
    print(f"# machine: {machine()}")
    print("| input lines | peak RSS MB | seconds | lines/s |")
    print("|---|---|---|---|")
    src, tgt = synthetic_vocab(5_000, "en"), synthetic_vocab(5_000, "fr")
    torch.manual_seed(1)
    model = Seq2Seq(ModelConfig(len(src), len(tgt), 2, args.hidden, args.hidden))
    with torch.no_grad():
        model.output.bias[3] = -1e4  # </s> only at the length limit
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        save(Checkpoint(model.config, TrainConfig(), src, tgt, model.state_dict()), path)
        words = list(src.tokens[4:])
        for n in (int(x) for x in args.lines.split(",")):
            start = time.monotonic()
            proc = subprocess.Popen([sys.executable, "-m", "s2scli", "translate", "-m", str(path), "--beam", "1",
                                     "--max-len-a", "1", "--max-len-b", "0", "-q"],
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
            writer = threading.Thread(target=feed, args=(proc.stdin, n, words))
            writer.start()
            _, _, usage = os.wait4(proc.pid, 0)  # this child's own resource usage
            proc.returncode = 0
            writer.join()
            seconds = time.monotonic() - start
            rss = usage.ru_maxrss / 1024
            print(f"| {n:,} | {rss:.0f} | {seconds:.0f} | {n / seconds:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
