"""translate --align and --replace-unk: alignments after ' ||| ' in token space, <unk> replaced by the
attended source token, refused without an attention model, n-best lines in Moses's full form."""

from __future__ import annotations

import copy
import io
import re
from typing import Any, Callable

import pytest
import torch

from s2scli.config import DecodeConfig
from s2scli.errors import S2SError
from s2scli.model import Seq2Seq
from s2scli.score import parse_nbest
from s2scli.translate import check_attention, translate
from s2scli.search import Hypothesis
from s2scli.translate import target_tokens
from s2scli.vocab import EOS, UNK, Vocab

LINES = ["a b c", "", "d e zzz", "h g f e d c b a", "a"]
ALIGNED = re.compile(r"^(.*) \|\|\| ((?:\d+-\d+(?: \d+-\d+)*)?)$")


def run(lines: list[str], models: list[Seq2Seq], src_vocab: Vocab, tgt_vocab: Vocab, **cfg: Any) -> list[str]:
    out = io.StringIO()
    translate(lines, models, src_vocab, tgt_vocab, DecodeConfig(**cfg), out)
    return out.getvalue().split("\n")[:-1]


@pytest.fixture(params=["dot", "general", "concat"])
def model(request, make_tiny_model: Callable[..., Seq2Seq]) -> Seq2Seq:
    m = make_tiny_model(2, init_scale=2.0, attention=request.param)
    with torch.no_grad():
        m.output.bias[EOS] -= 3.0  # an untrained model says something before </s>
    return m


def parse(line: str) -> tuple[str, list[tuple[int, int]]]:
    match = ALIGNED.match(line)
    assert match, line
    return match.group(1), [tuple(map(int, p.split("-"))) for p in match.group(2).split()]


@pytest.mark.parametrize("beam", [1, 4])
def test_align_appends_one_link_per_target_token(model: Seq2Seq, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab,
                                                 beam: int) -> None:
    plain = run(LINES, [model], tiny_src_vocab, tiny_tgt_vocab, beam=beam)
    aligned = run(LINES, [model], tiny_src_vocab, tiny_tgt_vocab, beam=beam, align=True)
    assert len(aligned) == len(LINES)
    for source, text_line, line in zip(LINES, plain, aligned):
        text, links = parse(line)
        assert text == text_line  # the translation itself does not change
        assert [j for _, j in links] == list(range(len(text.split())))
        assert all(0 <= i < len(source.split()) for i, _ in links)
    assert aligned[1] == " ||| "  # an empty line: an empty translation and no links
    assert any(parse(line)[1] for line in aligned)


def test_replace_unk_uses_the_attended_source_token(model: Seq2Seq, tiny_src_vocab: Vocab,
                                                    tiny_tgt_vocab: Vocab) -> None:
    biased = copy.deepcopy(model)
    with torch.no_grad():
        biased.output.bias[UNK] += 4.0  # <unk> becomes a frequent output word
    kept = run(LINES, [biased], tiny_src_vocab, tiny_tgt_vocab, beam=3, align=True)
    replaced = run(LINES, [biased], tiny_src_vocab, tiny_tgt_vocab, beam=3, align=True, replace_unk=True)
    replacements = 0
    for source, before, after in zip(LINES, kept, replaced):
        (text, links), (new_text, new_links) = parse(before), parse(after)
        assert links == new_links
        words, src_words = text.split(), source.split()
        expected = [src_words[i] if w == "<unk>" else w for w, (i, _) in zip(words, links)]
        assert new_text.split() == expected
        replacements += words.count("<unk>")
    assert replacements > 0
    # Without --align the text is the same.
    assert run(LINES, [biased], tiny_src_vocab, tiny_tgt_vocab, beam=3, replace_unk=True) == \
        [parse(line)[0] for line in replaced]


def test_nbest_with_alignments_is_moses_full_form(model: Seq2Seq, tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    plain = run(LINES, [model], tiny_src_vocab, tiny_tgt_vocab, beam=3, nbest=3)
    aligned = run(LINES, [model], tiny_src_vocab, tiny_tgt_vocab, beam=3, nbest=3, align=True)
    assert len(plain) == len(aligned)
    full = re.compile(r"^(\d+) \|\|\| (.*) \|\|\| s2s= (-?\d+\.\d{4}) \|\|\| (-?\d+\.\d{4}) \|\|\| ([\d\- ]*)$")
    for p, a in zip(plain, aligned):
        index, text, feature, score, links = full.match(a).groups()
        assert feature == score and p == f"{index} ||| {text} ||| {score}"
        assert len(links.split()) == len(text.split())
    # s2s score --nbest reads both forms the same.
    assert [(e.index, e.text, e.score) for e in parse_nbest(plain, "p")] == \
        [(e.index, e.text, e.score) for e in parse_nbest(aligned, "a")]


def test_mixed_ensemble_aligns_with_its_attention_model(model: Seq2Seq, make_tiny_model: Callable[..., Seq2Seq],
                                                        tiny_src_vocab: Vocab, tiny_tgt_vocab: Vocab) -> None:
    plain = make_tiny_model(5, init_scale=2.0)
    out = run(LINES, [plain, model], tiny_src_vocab, tiny_tgt_vocab, beam=2, align=True)
    assert all(len(parse(line)[1]) == len(parse(line)[0].split()) for line in out)


@pytest.mark.parametrize("options, message", [
    ({"align": True}, "--align needs a model trained with --attention; the model has none"),
    ({"replace_unk": True}, "--replace-unk needs a model trained with --attention"),
    ({"align": True, "replace_unk": True}, "--align and --replace-unk need a model"),
])
def test_refused_without_attention(make_tiny_model: Callable[..., Seq2Seq], tiny_src_vocab: Vocab,
                                   tiny_tgt_vocab: Vocab, options: dict, message: str) -> None:
    plain = make_tiny_model(5)
    with pytest.raises(S2SError, match=re.escape(message)):
        run(["a b"], [plain], tiny_src_vocab, tiny_tgt_vocab, **options)
    with pytest.raises(S2SError, match="none of a.pt, b.pt has any"):
        check_attention([plain, plain], DecodeConfig(**options), ["a.pt", "b.pt"])
    check_attention([plain, make_tiny_model(5, attention="dot")], DecodeConfig(**options))  # one is enough


def test_target_tokens_replaces_unk_by_the_source_word(tiny_tgt_vocab: Vocab) -> None:
    u = tiny_tgt_vocab.encode(["u"])[0]
    hyp = Hypothesis([UNK, u, UNK], -1.0, [2, 0, 0])
    source = ["d", "e", "zzz"]  # zzz: not in the vocabulary, so the model read <unk> there
    assert target_tokens(hyp, tiny_tgt_vocab, source, replace_unk=True) == ["zzz", "u", "d"]
    assert target_tokens(hyp, tiny_tgt_vocab, source, replace_unk=False) == ["<unk>", "u", "<unk>"]
    plain = Hypothesis([UNK, u], -1.0)  # no alignment (a model without attention): nothing to replace with
    assert target_tokens(plain, tiny_tgt_vocab, source, replace_unk=True) == ["<unk>", "u"]
