"""translate.py: one output line per input line, empty lines, n-best output, batching, truncation."""

from __future__ import annotations

import copy
import io
import re
from dataclasses import replace
from typing import Any, Callable

import pytest
import torch

from s2scli import translate as translate_mod
from s2scli.config import DecodeConfig
from s2scli.errors import S2SError
from s2scli.model import Seq2Seq
from s2scli.search import Hypothesis, greedy
from s2scli.translate import (MAX_SOURCE_TOKENS, TranslateStats, check_config, check_ensemble, decode_batch,
                              ids_to_tensor, translate)
from s2scli.vocab import BOS, EOS, PAD, SPECIALS, Vocab

NBEST_LINE = re.compile(r"^(\d+) \|\|\| (.*) \|\|\| (-?\d+\.\d{4})$")


@pytest.fixture
def model(make_tiny_model: Callable[..., Seq2Seq]) -> Seq2Seq:
    return make_tiny_model(2, init_scale=2.0)  # varied translations from an untrained model


def run(lines: list[str], models: list[Seq2Seq], src_vocab: Vocab, tgt_vocab: Vocab,
        warn: Callable[[str], None] | None = None, **cfg: Any) -> tuple[list[str], TranslateStats]:
    out = io.StringIO()
    stats = translate(lines, models, src_vocab, tgt_vocab, DecodeConfig(**cfg), out, warn=warn)
    text = out.getvalue()
    assert text == "" or text.endswith("\n")
    return text.split("\n")[:-1], stats


LINES = ["a b c", "", "d e", "   ", "h g f e d c b a", "zzz unknown", "a", ""]


def test_one_output_line_per_input_line(model: Seq2Seq, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    out, stats = run(LINES, [model], tiny_src_vocab, tiny_tgt_vocab, beam=3, batch_size=3)
    assert len(out) == len(LINES)
    for line, hyp in zip(LINES, out):
        if not line.strip():
            assert hyp == ""
    assert (stats.lines, stats.empty, stats.truncated) == (8, 3, 0)
    assert any(hyp for hyp in out)  # the model does say something


def test_empty_input_gives_empty_output(model: Seq2Seq, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    out, stats = run([], [model], tiny_src_vocab, tiny_tgt_vocab)
    assert out == [] and (stats.lines, stats.empty) == (0, 0)
    out, stats = run(["", ""], [model], tiny_src_vocab, tiny_tgt_vocab)
    assert out == ["", ""] and (stats.lines, stats.empty) == (2, 2)


def test_output_is_the_greedy_search_result(model: Seq2Seq, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    lines = ["a b c", "d e", "h g f e d c b a", "a"]
    out, _ = run(lines, [model], tiny_src_vocab, tiny_tgt_vocab, beam=1, max_len_a=1.5, max_len_b=2)
    for line, hyp in zip(lines, out):
        ids = tiny_src_vocab.encode(line.split())
        max_len = torch.tensor([int(len(ids) * 1.5 + 2)])
        (found,) = greedy([model], torch.tensor([ids]), torch.tensor([len(ids)]), max_len, BOS, EOS)
        assert hyp == " ".join(tiny_tgt_vocab.decode(found[0].ids))
        assert len(hyp.split()) <= int(max_len)


@pytest.mark.parametrize("beam", [1, 4])
def test_batch_size_does_not_change_output(model: Seq2Seq, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab,
                                           beam: int) -> None:
    one, _ = run(LINES, [model], tiny_src_vocab, tiny_tgt_vocab, beam=beam, batch_size=1)
    three, _ = run(LINES, [model], tiny_src_vocab, tiny_tgt_vocab, beam=beam, batch_size=3)
    many, _ = run(LINES, [model], tiny_src_vocab, tiny_tgt_vocab, beam=beam, batch_size=64)
    assert one == three == many


@pytest.mark.parametrize("beam", [1, 3])
def test_sorting_a_window_by_length_keeps_the_input_order(model: Seq2Seq, tiny_src_vocab: Vocab,
                                                          tiny_tgt_vocab: Vocab, beam: int) -> None:
    lines = [" ".join("abcdefgh"[(i * 3 + j) % 8] for j in range(1 + i * 5 % 9)) for i in range(23)] + LINES
    alone = [run([line], [model], tiny_src_vocab, tiny_tgt_vocab, beam=beam)[0][0] for line in lines]
    for batch_size, maxi_batch in ((1, 1), (2, 1), (2, 4), (3, 16), (64, 16)):
        out, _ = run(lines, [model], tiny_src_vocab, tiny_tgt_vocab, beam=beam, batch_size=batch_size,
                     maxi_batch=maxi_batch)
        assert out == alone, (batch_size, maxi_batch)


def test_decode_window_batches_sentences_of_similar_length(model: Seq2Seq, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[int]] = []
    real = translate_mod.decode_batch

    def spy(models: list[Seq2Seq], sources: list[list[int]], cfg: DecodeConfig, device: torch.device) -> list:
        seen.append([len(s) for s in sources])
        return real(models, sources, cfg, device)

    monkeypatch.setattr(translate_mod, "decode_batch", spy)
    sources = [[4 + n % 5] * n for n in (5, 1, 7, 2, 6, 3, 4)]
    cpu = torch.device("cpu")
    found = translate_mod.decode_window([model], sources, DecodeConfig(beam=2, batch_size=3), cpu)
    assert seen == [[1, 2, 3], [4, 5, 6], [7]]
    for src, hyps in zip(sources, found):
        (alone,) = real([model], [src], DecodeConfig(beam=2), cpu)
        assert [h.ids for h in hyps] == [h.ids for h in alone]


def test_ensemble_of_copies_gives_the_same_output(model: Seq2Seq, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    single, _ = run(LINES, [model], tiny_src_vocab, tiny_tgt_vocab, beam=2)
    double, _ = run(LINES, [model, copy.deepcopy(model)], tiny_src_vocab, tiny_tgt_vocab, beam=2)
    assert single == double


def test_nbest_format(model: Seq2Seq, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    lines = ["a b", "", "c d e", "f"]
    out, stats = run(lines, [model], tiny_src_vocab, tiny_tgt_vocab, beam=3, nbest=3, batch_size=2)
    parsed = [NBEST_LINE.match(line) for line in out]
    assert all(parsed), out
    indices = [int(m.group(1)) for m in parsed]  # type: ignore[union-attr]
    # Input lines counted from 0; three hypotheses for each non-empty line, one (empty) for the empty line.
    assert indices == [0, 0, 0, 1, 2, 2, 2, 3, 3, 3]
    empty = [m for m in parsed if int(m.group(1)) == 1]  # type: ignore[union-attr]
    assert empty[0].group(2) == "" and float(empty[0].group(3)) == 0.0  # type: ignore[union-attr]
    for i in (0, 2, 3):
        scores = [float(m.group(3)) for m in parsed if int(m.group(1)) == i]  # type: ignore[union-attr]
        assert scores == sorted(scores, reverse=True)
        assert all(s < 0 for s in scores)
    assert stats.lines == 4 and stats.empty == 1
    # The first hypothesis of each sentence is the plain-text output for beam 3.
    plain, _ = run(lines, [model], tiny_src_vocab, tiny_tgt_vocab, beam=3)
    firsts = {int(m.group(1)): m.group(2) for m in reversed(parsed)}  # type: ignore[union-attr]
    assert [firsts[i] for i in range(4)] == plain


def test_truncation_warning_for_overlong_source(model: Seq2Seq, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    long_line = " ".join(["a", "b", "c"] * 400)[: 2 * (MAX_SOURCE_TOKENS + 5) - 1]
    assert len(long_line.split()) == MAX_SOURCE_TOKENS + 5
    cut = " ".join(long_line.split()[:MAX_SOURCE_TOKENS])
    warnings: list[str] = []
    lines = ["a b", "", long_line, "c"]
    out, stats = run(lines, [model], tiny_src_vocab, tiny_tgt_vocab, warn=warnings.append, beam=1, batch_size=2,
                     max_len_a=0, max_len_b=3)
    assert stats.truncated == 1 and stats.lines == 4
    assert warnings == [f"line 3: {MAX_SOURCE_TOKENS + 5} tokens, only the first {MAX_SOURCE_TOKENS} are translated"]
    expected, _ = run([cut], [model], tiny_src_vocab, tiny_tgt_vocab, beam=1, max_len_a=0, max_len_b=3)
    assert out[2] == expected[0]
    # Without a warn callback the line is still cut, silently.
    quiet, stats = run(lines, [model], tiny_src_vocab, tiny_tgt_vocab, beam=1, max_len_a=0, max_len_b=3)
    assert quiet == out and stats.truncated == 1


def test_source_of_exactly_the_limit_is_not_truncated(model: Seq2Seq, tiny_src_vocab: Vocab,
                                                      tiny_tgt_vocab: Vocab) -> None:
    warnings: list[str] = []
    _, stats = run([" ".join(["a"] * MAX_SOURCE_TOKENS)], [model], tiny_src_vocab, tiny_tgt_vocab,
                   warn=warnings.append, beam=1, max_len_a=0, max_len_b=1)
    assert stats.truncated == 0 and warnings == []


def test_output_is_detokenized_with_the_target_tokenizer(model: Seq2Seq, tiny_src_vocab: Vocab,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    tgt = Vocab(list(SPECIALS) + ["Hello", ",", "world", "!"], "moses", "en")
    # Whatever the model thinks, the search "finds" Hello , world ! for every sentence.
    fake = [Hypothesis([4, 5, 6, 7], -1.25), Hypothesis([4, 7], -2.5)]
    monkeypatch.setattr(translate_mod, "beam_search", lambda models, src, *a, **k: [fake for _ in range(src.size(0))])
    big = replace_vocab_size(model, len(tgt))
    out, _ = run(["a b", "c"], [big], tiny_src_vocab, tgt, beam=2)
    assert out == ["Hello, world!", "Hello, world!"]
    out, _ = run(["a b"], [big], tiny_src_vocab, tgt, beam=2, nbest=2)
    assert out == ["0 ||| Hello, world! ||| -1.2500", "0 ||| Hello! ||| -2.5000"]


def replace_vocab_size(model: Seq2Seq, tgt_size: int) -> Seq2Seq:
    return Seq2Seq(replace(model.config, tgt_vocab_size=tgt_size)).eval()


@pytest.mark.parametrize("maxi_batch, flushes", [(1, [2, 4, 5]), (2, [4, 5]), (16, [5])])
def test_output_is_flushed_after_each_window(model: Seq2Seq, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab,
                                             maxi_batch: int, flushes: list[int]) -> None:
    class Recorder(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.at_flush: list[int] = []

        def flush(self) -> None:
            self.at_flush.append(self.getvalue().count("\n"))
            super().flush()

    out = Recorder()
    translate(["a", "b", "c", "d", "e"], [model], tiny_src_vocab, tiny_tgt_vocab,
              DecodeConfig(beam=1, batch_size=2, maxi_batch=maxi_batch),
              out)
    assert out.at_flush == flushes


def test_decode_batch_restores_input_order(model: Seq2Seq) -> None:
    sources = [[4, 5, 6, 7, 8], [9], [10, 11], [4, 4, 4], [5]]
    cfg = DecodeConfig(beam=2, nbest=2)
    together = decode_batch([model], sources, cfg, torch.device("cpu"))
    assert len(together) == len(sources)
    for src, hyps in zip(sources, together):
        (alone,) = decode_batch([model], [src], cfg, torch.device("cpu"))
        assert [h.ids for h in hyps] == [h.ids for h in alone]
        assert [h.score for h in hyps] == pytest.approx([h.score for h in alone], abs=1e-4)


def test_ids_to_tensor_pads() -> None:
    src, lengths = ids_to_tensor([[4, 5, 6], [7], [8, 9]], torch.device("cpu"))
    assert src.tolist() == [[4, 5, 6], [7, PAD, PAD], [8, 9, PAD]]
    assert lengths.tolist() == [3, 1, 2]
    assert src.dtype == torch.long and lengths.dtype == torch.long


@pytest.mark.parametrize(
    "changes, option",
    [
        ({"beam": 0}, "--beam"),
        ({"beam": 2, "nbest": 3}, "--nbest"),
        ({"nbest": -1}, "--nbest"),
        ({"batch_size": 0}, "--batch-size"),
        ({"maxi_batch": 0}, "--maxi-batch"),
        ({"maxi_batch": 1001}, "--maxi-batch"),
        ({"max_len_a": -1.0}, "--max-len-a"),
        ({"max_len_b": -1}, "--max-len-b"),
        ({"max_len_a": 0.0, "max_len_b": 0}, "at least one token"),
    ],
)
def test_check_config_refuses_bad_options(changes: dict[str, Any], option: str) -> None:
    with pytest.raises(S2SError, match=option):
        check_config(DecodeConfig(**changes))


def test_check_config_accepts_edges() -> None:
    check_config(DecodeConfig())
    check_config(DecodeConfig(beam=1, nbest=1, max_len_a=0.0, max_len_b=1, batch_size=1))
    check_config(DecodeConfig(beam=5, nbest=5))


def test_translate_checks_config_before_reading(model: Seq2Seq, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    def lines() -> Any:
        raise AssertionError("input read before the options were checked")
        yield ""

    with pytest.raises(S2SError, match="--beam"):
        translate(lines(), [model], tiny_src_vocab, tiny_tgt_vocab, DecodeConfig(beam=0), io.StringIO())


def test_check_ensemble(tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    check_ensemble([(tiny_src_vocab, tiny_tgt_vocab)] * 3, ["a.pt", "b.pt", "c.pt"])
    other_tgt = Vocab(list(SPECIALS) + ["q"], "none", "fr")
    other_src = Vocab(list(tiny_src_vocab.tokens), "moses", "en")  # same words, other tokenizer
    with pytest.raises(S2SError, match=r"c\.pt and a\.pt have different target vocabularies"):
        check_ensemble([(tiny_src_vocab, tiny_tgt_vocab), (tiny_src_vocab, tiny_tgt_vocab),
                        (tiny_src_vocab, other_tgt)], ["a.pt", "b.pt", "c.pt"])
    with pytest.raises(S2SError, match=r"b\.pt and a\.pt have different source vocabularies"):
        check_ensemble([(tiny_src_vocab, tiny_tgt_vocab), (other_src, tiny_tgt_vocab)], ["a.pt", "b.pt"])


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_lower_precision_decoding_keeps_the_model_and_one_line_per_line(
        model: Seq2Seq, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab, precision: str) -> None:
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fp32, _ = run(LINES, [model], tiny_src_vocab, tiny_tgt_vocab, beam=3)
    low, stats = run(LINES, [model], tiny_src_vocab, tiny_tgt_vocab, beam=3, precision=precision)
    assert len(low) == len(LINES) and stats.lines == len(LINES)
    # Mostly the same translations (a near tie may flip), and the caller's model is left untouched.
    assert sum(a == b for a, b in zip(fp32, low)) >= len(LINES) - 2
    for k, v in model.state_dict().items():
        assert v.dtype == torch.float32 and torch.equal(v, before[k])


def test_unknown_precision_refused() -> None:
    with pytest.raises(S2SError, match="--precision"):
        check_config(DecodeConfig(precision="fp8"))
