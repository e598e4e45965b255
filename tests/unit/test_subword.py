"""subword.py: sentencepiece training (ids, byte pieces, sizes, counts, determinism, refusals) and the
resulting vocabularies through prepare and translate: pieces in, raw text out."""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Iterator

import pytest
import torch

from s2scli.config import DecodeConfig, ModelConfig, PrepareConfig
from s2scli.data import PreparedData
from s2scli.errors import S2SError
from s2scli import translate as translate_mod
from s2scli.model import Seq2Seq
from s2scli.prepare import prepare
from s2scli.search import Hypothesis
from s2scli.subword import train_subword
from s2scli.text import SentencePieceTokenizer
from s2scli.translate import translate
from s2scli.vocab import EOS, SPECIALS, UNK, Vocab

BIBLE = Path(__file__).resolve().parents[2] / "examples" / "bible"


def bible(lang: str, n: int) -> list[str]:
    with gzip.open(BIBLE / f"train.{lang}.gz", "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for _, line in zip(range(n), f)]


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_trained_vocabulary_shape(kind: str) -> None:
    vocab, counts = train_subword(bible("fr", 2000), kind, 800, "fr")
    assert len(vocab) == len(counts) == 800  # --size is sentencepiece's vocab_size: everything included
    assert vocab.tokens[:4] == SPECIALS  # our ids are the model's ids
    assert vocab.tokens[4:260] == tuple(f"<0x{b:02X}>" for b in range(256))
    assert (vocab.tokenizer, vocab.lang) == ("sentencepiece", "fr")
    assert isinstance(vocab.tokenizer_model, str)
    assert not any(ch.isspace() for tok in vocab.tokens for ch in tok)
    assert counts[:4] == [0, 0, 0, 0]
    tok = vocab.text_tokenizer()
    assert isinstance(tok, SentencePieceTokenizer) and tok.pieces == vocab.tokens
    assert sum(counts) == sum(len(tok.tokenize(line)) for line in bible("fr", 2000))


def test_training_is_deterministic() -> None:
    lines = bible("en", 1500)
    for kind in ("bpe", "unigram"):
        assert train_subword(lines, kind, 600, "en") == train_subword(iter(lines), kind, 600, "en")


def test_whitespace_in_training_text_never_becomes_a_piece() -> None:
    lines = [f"mot\t{i}\u00a0: un\u2581deux\u3000trois\r" for i in range(200)]
    vocab, counts = train_subword(lines, "bpe", 290, "fr")
    assert not any(ch.isspace() or ch == "\r" for tok in vocab.tokens[4:] for ch in tok)
    assert counts[vocab.tokens.index("<0x09>")] == 200  # tabs are counted as the byte pieces they are
    tok = vocab.text_tokenizer()
    assert all(tok.detokenize(tok.tokenize(line)) == line for line in lines)


def test_training_reads_its_lines_once_as_a_stream() -> None:
    consumed = []

    def lines() -> Iterator[str]:
        for line in bible("fr", 500):
            consumed.append(line)
            yield line

    train_subword(lines(), "bpe", 400, "fr")
    assert len(consumed) == 500


def test_refusals() -> None:
    lines = bible("fr", 300)
    with pytest.raises(S2SError, match="--subword must be one of bpe, unigram, got 'wordpiece'"):
        train_subword(lines, "wordpiece", 400, "fr")
    with pytest.raises(S2SError, match="--subword needs --size N"):
        train_subword(lines, "bpe", 0, "fr")
    with pytest.raises(S2SError, match=r"^--size 100: too small for this text, whose characters alone need "
                                       r"\d+ pieces; give a larger --size$"):
        train_subword(lines, "bpe", 100, "fr")
    with pytest.raises(S2SError, match=r"^--size 90000: sentencepiece cannot train: Vocabulary size too high "
                                       r"\(90000\)\. Please set it to a value <= \d+"):
        train_subword(lines, "unigram", 90000, "fr")
    for empty in ([], ["", "  "]):
        with pytest.raises(S2SError, match="no text to learn subword pieces from"):
            train_subword(empty, "bpe", 400, "fr")


# ------------------------------------------------------------------------- prepare and translate


@pytest.fixture(scope="module")
def vocabs() -> tuple[Vocab, Vocab]:
    return train_subword(bible("en", 3000), "bpe", 700, "en")[0], train_subword(bible("fr", 3000), "unigram",
                                                                               700, "fr")[0]


def test_prepare_stores_the_pieces_of_the_raw_text(vocabs: tuple[Vocab, Vocab], tmp_path: Path) -> None:
    src_vocab, tgt_vocab = vocabs
    src = ["In the beginning, God created the heavens and the earth.", "日本\ttab  two spaces "]
    tgt = ["Au commencement, Dieu créa les cieux et la terre.", "l’été\u00a0: ça\u2581va"]
    path = tmp_path / "p.s2s"
    with open(path, "wb") as f:
        stats = prepare(src, tgt, src_vocab, tgt_vocab, f, PrepareConfig(max_len=0))
    assert stats.kept == 2 and stats.src_unk == stats.tgt_unk == 0
    with open(path, "rb") as f:
        data = PreparedData(f, str(path))
        assert data.src_vocab == src_vocab and data.tgt_vocab == tgt_vocab
        for i in range(2):
            s, t = (x.tolist() for x in data.pair(i))
            assert data.src_vocab.text_tokenizer().detokenize(data.src_vocab.decode(s)) == src[i]
            assert data.tgt_vocab.text_tokenizer().detokenize(data.tgt_vocab.decode(t)) == tgt[i]


def test_translate_detokenizes_the_pieces(vocabs: tuple[Vocab, Vocab], monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever pieces the search finds, translate writes them as raw text: here the search is made to
    find the pieces of a known French line, which must come back exactly."""
    src_vocab, tgt_vocab = vocabs
    wanted = "  l’été\u00a0: « ça va », 日本\t!"
    ids = tgt_vocab.encode(tgt_vocab.text_tokenizer().tokenize(wanted))
    assert UNK not in ids
    seen: list[list[int]] = []

    def search(models: object, sources: list[list[int]], cfg: object, device: object) -> list[list[Hypothesis]]:
        seen.extend(sources)
        return [[Hypothesis(ids + [EOS], -1.0)] for _ in sources]

    monkeypatch.setattr(translate_mod, "decode_batch", search)
    torch.manual_seed(0)
    model = Seq2Seq(ModelConfig(len(src_vocab), len(tgt_vocab), layers=1, hidden=8, embedding=8)).eval()
    lines = ["And God said, Let there be light.", "", "Jesus\twept."]
    out = io.StringIO()
    translate(lines, [model], src_vocab, tgt_vocab, DecodeConfig(beam=1), out)
    assert out.getvalue() == f"{wanted}\n\n{wanted}\n"
    src_tok = src_vocab.text_tokenizer()
    # the two non-empty lines' pieces reach the search (a window goes to it sorted by length)
    assert sorted(seen) == sorted([src_vocab.encode(src_tok.tokenize(lines[0])),
                                   src_vocab.encode(src_tok.tokenize(lines[2]))])


@pytest.mark.parametrize("pieces", [["<0x0A>"], ["<0x0D>"], ["<0x0D>", "<0x0A>"]])
def test_translate_keeps_one_line_when_the_model_writes_a_line_break(
        vocabs: tuple[Vocab, Vocab], monkeypatch: pytest.MonkeyPatch, pieces: list[str]) -> None:
    """Byte fallback puts the pieces of "\\n" and "\\r" in every subword vocabulary, so a model can emit
    them; the translation must still be one line, in step with the input."""
    src_vocab, tgt_vocab = vocabs
    tok = tgt_vocab.text_tokenizer()
    ids = tgt_vocab.encode(tok.tokenize("avant")) + tgt_vocab.encode(pieces) + \
        tgt_vocab.encode(tok.tokenize("après"))
    assert UNK not in ids

    def search(models: object, sources: list[list[int]], cfg: DecodeConfig, device: object) -> list[list[Hypothesis]]:
        return [[Hypothesis(ids + [EOS], -1.0)] * max(cfg.nbest, 1) for _ in sources]

    monkeypatch.setattr(translate_mod, "decode_batch", search)
    model = Seq2Seq(ModelConfig(len(src_vocab), len(tgt_vocab), layers=1, hidden=8, embedding=8)).eval()
    for cfg, per_line in ((DecodeConfig(beam=1), 1), (DecodeConfig(beam=2, nbest=2), 2)):
        out = io.StringIO()
        translate(["one", "two", "three"], [model], src_vocab, tgt_vocab, cfg, out)
        lines = out.getvalue().split("\n")
        assert lines[-1] == "" and len(lines) - 1 == 3 * per_line
        assert "\r" not in out.getvalue()
        assert all("avant" in line and "après" in line for line in lines[:-1])
