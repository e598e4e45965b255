"""Property tests (hypothesis): invariants that must hold for any input, not only the inputs we thought of.

- translate writes exactly one output line per input line, whatever Unicode the lines hold (CR, U+2028,
  U+0085, combining marks, emoji, lone surrogates escaped by the encoder, empty lines, whitespace only).
- vocab and prepare round-trip the token ids of in-vocabulary text exactly.
"""

from __future__ import annotations

import io

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s2scli.checkpoint import Checkpoint
from s2scli.config import DecodeConfig, ModelConfig, PrepareConfig, TrainConfig
from s2scli.data import PreparedData
from s2scli.lines import read_lines
from s2scli.model import Seq2Seq
from s2scli.prepare import prepare
from s2scli.translate import translate
from s2scli.vocab import SPECIALS, Vocab, build_vocab, count_tokens, read_vocab, write_vocab

WORDS = ["the", "cat", "a", "dog", ",", ".", "é", "l'", "«", "»"]


def moses_model() -> Checkpoint:
    src = Vocab(list(SPECIALS) + WORDS, "moses", "en")
    tgt = Vocab(list(SPECIALS) + ["le", "chat", "un", "chien", ",", "."], "moses", "fr")
    torch.manual_seed(0)
    model = Seq2Seq(ModelConfig(len(src), len(tgt), layers=1, hidden=8, embedding=8, init_scale=0.5)).eval()
    return Checkpoint(model.config, TrainConfig(), src, tgt, model.state_dict())


CKPT = moses_model()
MODEL = CKPT.build_model()

# Any line content: every character but the line separator \n (NUL is refused by design, tested elsewhere).
line_text = st.text(alphabet=st.characters(blacklist_characters="\n\x00", blacklist_categories=("Cs",)),
                    max_size=40)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(line_text, max_size=12), beam=st.sampled_from([1, 3]))
def test_translate_writes_one_line_per_input_line(lines: list[str], beam: int) -> None:
    raw = "".join(line + "\n" for line in lines).encode("utf-8", errors="surrogatepass")
    decoded = list(read_lines(io.BytesIO(raw), "input"))
    assert len(decoded) == len(lines)
    out = io.StringIO()
    cfg = DecodeConfig(beam=beam, max_len_a=1.0, max_len_b=3, batch_size=5)
    stats = translate(decoded, [MODEL], CKPT.src_vocab, CKPT.tgt_vocab, cfg, out)
    text = out.getvalue()
    assert stats.lines == len(lines)
    assert text.count("\n") == len(lines)
    assert text == "" or text.endswith("\n")
    for line, hyp in zip(lines, text.split("\n")):
        if not line.split():
            assert hyp == ""  # nothing to translate gives an empty line


word = st.text(alphabet=st.characters(blacklist_categories=("Z", "C")), min_size=1, max_size=8).filter(
    lambda w: w not in SPECIALS and not any(ch.isspace() for ch in w)
)


@settings(max_examples=60, deadline=None)
@given(sentences=st.lists(st.lists(word, min_size=1, max_size=10), min_size=1, max_size=15))
def test_vocab_and_prepare_round_trip_in_vocabulary_text(sentences: list[list[str]]) -> None:
    lines = [" ".join(words) for words in sentences]
    vocab, counts = build_vocab(count_tokens(line.split() for line in lines), "none", "xx")
    buf = io.StringIO()
    write_vocab(vocab, counts, buf)
    reread = read_vocab(iter(buf.getvalue().split("\n")[:-1]), "vocab")
    assert reread == vocab

    import tempfile

    with tempfile.TemporaryFile() as f:
        stats = prepare(lines, lines, reread, reread, f, PrepareConfig(max_len=0))
        assert stats.kept == len(lines) and stats.src_unk == 0
        data = PreparedData(f, "prepared")
        assert len(data) == len(lines)
        for i, words in enumerate(sentences):
            src, tgt = data.pair(i)
            assert vocab.decode(src.tolist()) == words
            assert vocab.decode(tgt.tolist()) == words
