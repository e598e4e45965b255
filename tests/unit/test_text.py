"""text.py: the two tokenizers, the tokenizer registry and language guessing from file names."""

from __future__ import annotations

import pytest

from s2scli.errors import S2SError
from s2scli.text import MosesTokenizer, WhitespaceTokenizer, get_tokenizer, guess_lang


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
    assert "moses" in str(exc.value) and "none" in str(exc.value)


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
