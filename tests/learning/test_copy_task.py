"""The learning tier: a small synthetic task the model must actually learn.

Copying random symbol sequences is the classic sanity check for sequence to sequence models: with the
source reversed [3.3] the first target word is the last one the encoder read, so a single small LSTM
layer learns it in a few epochs of the paper's plain SGD. Reaching >= 95% exact match with greedy and
with beam search shows that batching, the loss, the optimiser, the schedule, the encoder-decoder
handover and both decoders are right together.
"""

from __future__ import annotations

import io
import random

import pytest

from s2scli import checkpoint
from s2scli.config import DecodeConfig, ModelConfig, PrepareConfig, TrainConfig
from s2scli.data import PreparedData
from s2scli.prepare import prepare
from s2scli.train import train
from s2scli.translate import translate
from s2scli.vocab import build_vocab, count_tokens

SYMBOLS = [chr(ord("a") + i) for i in range(12)]


def make_pairs(n: int, rng: random.Random) -> list[str]:
    return [" ".join(rng.choice(SYMBOLS) for _ in range(rng.randint(3, 8))) for _ in range(n)]


def prepared(lines: list[str], vocab, path) -> PreparedData:
    with open(path, "wb") as out:
        prepare(lines, lines, vocab, vocab, out, PrepareConfig(max_len=0))
    return PreparedData(open(path, "rb"), str(path))


@pytest.fixture(scope="module")
def copy_model(tmp_path_factory):
    rng = random.Random(0)
    train_lines, test_lines = make_pairs(6000, rng), make_pairs(200, rng)
    vocab, _ = build_vocab(count_tokens(line.split() for line in train_lines), "none", "xx")
    tmp = tmp_path_factory.mktemp("copy")
    data, valid = prepared(train_lines, vocab, tmp / "train.s2s"), prepared(test_lines, vocab, tmp / "test.s2s")
    model_cfg = ModelConfig(len(vocab), len(vocab), layers=1, hidden=128, embedding=32)
    train_cfg = TrainConfig(batch_size=32, epochs=10, decay_start=8)
    result = train(data, valid, model_cfg, train_cfg, tmp / "model.pt")
    return checkpoint.load(tmp / "model.pt"), test_lines, result


def exact_match(ckpt, lines: list[str], beam: int) -> float:
    out = io.StringIO()
    translate(lines, [ckpt.build_model()], ckpt.src_vocab, ckpt.tgt_vocab, DecodeConfig(beam=beam), out)
    hyps = out.getvalue().split("\n")[:-1]
    assert len(hyps) == len(lines)
    return sum(h == ref for h, ref in zip(hyps, lines)) / len(lines)


def test_training_reaches_low_perplexity(copy_model):
    _, _, result = copy_model
    assert result.status == "finished"
    assert result.valid_ppl is not None and result.valid_ppl < 1.2
    first, last = result.history[0]["valid_ppl"], result.history[-1]["valid_ppl"]
    assert last < first / 5


@pytest.mark.parametrize("beam", [1, 5])
def test_copy_task_exact_match(copy_model, beam):
    ckpt, test_lines, _ = copy_model
    assert exact_match(ckpt, test_lines, beam) >= 0.95
