"""text.py: the tokenizers (Moses, whitespace, characters, sentencepiece pieces), the tokenizer registry
and language guessing from file names. Character and sentencepiece tokenization must give back every
line exactly: tricky Unicode, hypothesis-generated lines and the real development sets."""

from __future__ import annotations

import base64
import gzip
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s2scli.errors import S2SError
from s2scli.subword import train_subword
from s2scli.text import (CharTokenizer, MosesTokenizer, SentencePieceTokenizer, WhitespaceTokenizer, get_tokenizer,
                         guess_lang, split_spelled)
from s2scli.vocab import SPECIALS, UNK, Vocab

ROOT = Path(__file__).resolve().parents[2]
BIBLE = ROOT / "examples" / "bible"
DATA = (ROOT / ".." / "shared" / "data" / "enfr").resolve()


def test_whitespace_tokenizer_splits_on_any_whitespace() -> None:
    tok = get_tokenizer("none", "en")
    assert isinstance(tok, WhitespaceTokenizer)
    assert tok.name == "none" and tok.lang == "en"
    assert tok.tokenize("  a  b\tc\u00a0d \n") == ["a", "b", "c", "d"]
    assert tok.tokenize("") == []
    assert tok.tokenize("   ") == []


def test_whitespace_tokenizer_keeps_punctuation_attached() -> None:
    assert get_tokenizer("none", "en").tokenize("Hello, world!") == ["Hello,", "world!"]


def test_whitespace_detokenize_joins_with_single_spaces() -> None:
    assert get_tokenizer("none", "fr").detokenize(["a", "b", "c"]) == "a b c"
    assert get_tokenizer("none", "fr").detokenize([]) == ""


def test_moses_tokenizes_punctuation_without_escaping() -> None:
    tok = get_tokenizer("moses", "en")
    assert isinstance(tok, MosesTokenizer)
    assert tok.tokenize("Hello, world!") == ["Hello", ",", "world", "!"]
    # No XML escaping: & and < stay as they are.
    tokens = tok.tokenize("R&D <b>")
    assert "&" in tokens and "&amp;" not in tokens
    assert "<" in tokens and "&lt;" not in tokens


def test_moses_detokenize_inverts_tokenize_on_simple_text() -> None:
    tok = get_tokenizer("moses", "en")
    for line in ["Hello, world!", "It costs $5 (roughly).", "A & B"]:
        assert tok.detokenize(tok.tokenize(line)) == line


@pytest.mark.parametrize("space", ["\u00a0", "\u2009", "\u3000", "\t", "\x0b", "\x1c", "\u2028", "\r"])
def test_moses_tokens_never_contain_whitespace(space: str) -> None:
    # The vocabulary file format relies on it (see vocab.read_vocab).
    tokens = get_tokenizer("moses", "en").tokenize(f"one{space}two, three")
    assert tokens[:2] == ["one", "two"]
    assert not any(ch.isspace() for t in tokens for ch in t)


def test_get_tokenizer_is_cached() -> None:
    assert get_tokenizer("moses", "fr") is get_tokenizer("moses", "fr")
    assert get_tokenizer("moses", "fr") is not get_tokenizer("moses", "en")


def test_unknown_tokenizer_refused_with_choices() -> None:
    with pytest.raises(S2SError) as exc:
        get_tokenizer("spacy", "en")
    assert "spacy" in str(exc.value)
    assert "moses" in str(exc.value) and "none" in str(exc.value) and "char" in str(exc.value)


@pytest.mark.parametrize(
    "filename, lang",
    [
        ("train.en", "en"),
        ("data/dev.fr", "fr"),
        ("x.fr.gz", "fr"),
        ("corpus.DE", "de"),
        ("bible.train.deu", None),  # two-letter codes only
        ("corpus.txt", None),
        ("corpus.tok", None),
        ("/abs/dir.en/README", None),
        ("README", None),
        ("train.e1", None),
        ("train.english", None),
        ("file.x", None),
        ("x.gz", None),
    ],
)
def test_guess_lang(filename: str, lang: str | None) -> None:
    assert guess_lang(filename) == lang


# ------------------------------------------------------------------------------------------ char


def test_char_tokenizer_makes_every_character_a_token() -> None:
    tok = get_tokenizer("char", "fr")
    assert isinstance(tok, CharTokenizer) and tok.name == "char" and tok.lang == "fr"
    assert tok.tokenize("Va !") == ["V", "a", "\u2581", "!"]
    assert tok.tokenize("é e\u0301") == ["é", "\u2581", "e", "\u0301"]  # code points, not graphemes
    assert tok.tokenize("") == []


def test_char_tokenizer_spells_other_whitespace_and_the_marker() -> None:
    tok = get_tokenizer("char", "en")
    assert tok.tokenize("a\tb\u00a0c\u2581") == ["a", "<U+0009>", "b", "<U+00A0>", "c", "<U+2581>"]
    assert tok.tokenize("\r\x0b\u3000") == ["<U+000D>", "<U+000B>", "<U+3000>"]
    assert not any(ch.isspace() for t in tok.tokenize(TRICKY) for ch in t)


def test_char_detokenize_keeps_other_tokens_as_they_are() -> None:
    tok = get_tokenizer("char", "en")
    assert tok.detokenize(["a", "<unk>", "\u2581", "b"]) == "a<unk> b"
    # Only the escapes that tokenize writes are read back: anything else is literal text.
    assert tok.detokenize(["<U+0041>", "<U+110000>", "<U+0009>"]) == "<U+0041><U+110000>\t"


# A line with every kind of trouble: tabs, runs of spaces at both ends, no-break and ideographic spaces,
# the space marker itself, combining marks, emoji with a joiner, right-to-left text, a byte-order mark,
# control characters, lone CR, characters outside the Basic Multilingual Plane, U+FFFD.
TRICKY = ("  \tl’été  à\u00a0Paris\u202f: « ça\u2009va ? »\t\u2581x\u2581 e\u0301 👩\u200d💻 "
          "עברית العربية 日本語\ufeff \x01\x7f\r \U0001d11e \ufffd  ")


@pytest.mark.parametrize("line", [TRICKY, "", " ", "\t", "\u2581", "a  b", " lead", "trail ", "<U+0009>"])
def test_char_round_trip_is_exact(line: str) -> None:
    tok = get_tokenizer("char", "en")
    assert tok.detokenize(tok.tokenize(line)) == line


@settings(max_examples=200, deadline=None)
@given(line=st.text(alphabet=st.characters(blacklist_characters="\n\x00", blacklist_categories=("Cs",))))
def test_char_round_trip_property(line: str) -> None:
    tok = get_tokenizer("char", "en")
    assert tok.detokenize(tok.tokenize(line)) == line


# ------------------------------------------------------------------------------------ sentencepiece


@pytest.fixture(scope="module")
def bpe_vocab() -> Vocab:
    """A 1000-piece BPE vocabulary learned from 4000 lines of the bundled French Bible."""
    with gzip.open(BIBLE / "train.fr.gz", "rt", encoding="utf-8") as f:
        lines = [line.rstrip("\n") for _, line in zip(range(4000), f)]
    return train_subword(lines, "bpe", 1000, "fr")[0]


def test_sentencepiece_tokens_are_pieces_without_whitespace(bpe_vocab: Vocab) -> None:
    tok = bpe_vocab.text_tokenizer()
    assert isinstance(tok, SentencePieceTokenizer) and tok.name == "sentencepiece" and tok.lang == "fr"
    tokens = tok.tokenize("Au commencement, Dieu créa les cieux et la terre.")
    assert len(tokens) > 1 and all(t in bpe_vocab.tokens for t in tokens)
    assert bpe_vocab.encode(tokens).count(UNK) == 0
    assert "\u2581" in "".join(tokens)  # spaces are the marker
    assert not any(ch.isspace() for t in tok.tokenize(TRICKY) for ch in t)


def test_sentencepiece_spells_whitespace_and_marker_as_bytes(bpe_vocab: Vocab) -> None:
    tok = bpe_vocab.text_tokenizer()
    assert tok.tokenize("\t") == ["<0x09>"]
    assert tok.tokenize("\u00a0") == ["<0xC2>", "<0xA0>"]
    assert tok.tokenize("\u2581") == ["<0xE2>", "<0x96>", "<0x81>"]
    assert tok.tokenize(" ") == ["\u2581"]
    assert tok.tokenize("") == []


def test_sentencepiece_unknown_characters_are_bytes_not_unk(bpe_vocab: Vocab) -> None:
    tok = bpe_vocab.text_tokenizer()
    tokens = tok.tokenize("日本")
    assert tokens == [f"<0x{b:02X}>" for b in "日本".encode()]
    assert UNK not in bpe_vocab.encode(tokens)


@pytest.mark.parametrize("line", [TRICKY, "", " ", "  ", "\t", "\u2581", "\u2581\u2581 \u2581", "a  b", " lead",
                                  "trail ", "<0x41> <unk> <s> </s>", "\r", "e\u0301\u0301", "x" * 5000])
def test_sentencepiece_round_trip_is_exact(bpe_vocab: Vocab, line: str) -> None:
    tok = bpe_vocab.text_tokenizer()
    assert tok.detokenize(tok.tokenize(line)) == line


@settings(max_examples=200, deadline=None)
@given(line=st.text(alphabet=st.characters(blacklist_characters="\n\x00", blacklist_categories=("Cs",))))
def test_sentencepiece_round_trip_property(bpe_vocab: Vocab, line: str) -> None:
    tok = bpe_vocab.text_tokenizer()
    assert tok.detokenize(tok.tokenize(line)) == line


@pytest.mark.skipif(not (DATA / "docs.dev.fr").is_file(), reason=f"no English-French data at {DATA}")
@pytest.mark.parametrize("name", ["docs.dev.fr", "docs.dev.en", "bible.dev.fr", "bible.dev.en"])
def test_sentencepiece_round_trips_real_lines_exactly(bpe_vocab: Vocab, name: str) -> None:
    """Every line of the development sets, including the manuals' English (the model saw only French
    Bible text: unseen characters go through bytes)."""
    tok = bpe_vocab.text_tokenizer()
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    assert len(lines) > 400
    assert [line for line in lines if tok.detokenize(tok.tokenize(line)) != line] == []


def test_sentencepiece_detokenize_decodes_byte_runs_and_keeps_unk(bpe_vocab: Vocab) -> None:
    tok = bpe_vocab.text_tokenizer()
    assert tok.detokenize(["a", "<0xE6>", "<0x97>", "<0xA5>", "\u2581b"]) == "a日 b"
    assert tok.detokenize(["a", "<unk>", "\u2581b"]) == "a<unk> b"
    assert tok.detokenize(["<0xE6>", "x"]) == "\ufffdx"  # a broken byte sequence from a model


def test_sentencepiece_needs_its_model() -> None:
    with pytest.raises(S2SError, match="needs its model"):
        get_tokenizer("sentencepiece", "en")
    with pytest.raises(S2SError, match="takes no model"):
        get_tokenizer("moses", "en", "AAAA")


@pytest.mark.parametrize("model", ["not base64!", "AAAA", base64.b64encode(b"garbage").decode()])
def test_damaged_sentencepiece_model_refused(model: str) -> None:
    with pytest.raises(S2SError, match="damaged sentencepiece model"):
        get_tokenizer("sentencepiece", "en", model)


def test_tokenizer_for_uses_what_the_vocabulary_records(bpe_vocab: Vocab) -> None:
    assert Vocab(list(SPECIALS), "moses", "fr").text_tokenizer() is get_tokenizer("moses", "fr")
    assert Vocab(list(SPECIALS), "char", "fr").text_tokenizer() is get_tokenizer("char", "fr")
    assert bpe_vocab.text_tokenizer() is Vocab.from_dict(bpe_vocab.to_dict()).text_tokenizer()
    wrong = list(bpe_vocab.tokens)
    wrong[500], wrong[501] = wrong[501], wrong[500]
    with pytest.raises(S2SError, match="not the pieces of its sentencepiece model"):
        Vocab(wrong, "sentencepiece", "fr", bpe_vocab.tokenizer_model).text_tokenizer()


def test_split_spelled() -> None:
    assert list(split_spelled("a b\tc\u2581")) == [("a b", False), ("\t", True), ("c", False), ("\u2581", True)]
    assert list(split_spelled("")) == []
    assert list(split_spelled(" ")) == [(" ", False)]
