"""vocab.py: building vocabularies, the vocabulary file (write/read and every refusal), token <-> id, and
subword vocabularies with their embedded sentencepiece model (file section, dict, equality)."""

from __future__ import annotations

import base64
import io
import json
from collections import Counter
from pathlib import Path

import pytest
import torch

from s2scli.errors import S2SError
from s2scli.lines import read_lines
from s2scli.subword import train_subword
from s2scli.vocab import (BOS, EOS, PAD, SPECIALS, UNK, Vocab, build_vocab, count_tokens, read_vocab,
                          write_vocab)


def vocab_of(words: list[str], tokenizer: str = "none", lang: str = "en") -> Vocab:
    return Vocab(list(SPECIALS) + words, tokenizer, lang)


def parse(text: str, name: str = "v.vocab") -> Vocab:
    return read_vocab(read_lines(io.BytesIO(text.encode()), name), name)


GOOD_HEADER = "#s2s-vocab\tversion=1\ttokenizer=none\tlang=en\n"
GOOD_SPECIALS = "<pad>\t0\n<unk>\t0\n<s>\t0\n</s>\t0\n"


def test_special_ids() -> None:
    assert (PAD, UNK, BOS, EOS) == (0, 1, 2, 3)
    assert SPECIALS == ("<pad>", "<unk>", "<s>", "</s>")


def test_count_tokens() -> None:
    counts = count_tokens([["a", "b", "a"], [], ["b", "c", "a"]])
    assert counts == Counter({"a": 3, "b": 2, "c": 1})


def test_build_order_frequency_then_code_point() -> None:
    counts = Counter({"b": 2, "a": 2, "B": 2, "é": 2, "z": 5, "y": 1})
    vocab, freqs = build_vocab(counts, "none", "en")
    assert vocab.tokens == SPECIALS + ("z", "B", "a", "b", "é", "y")
    assert freqs == [0, 0, 0, 0, 5, 2, 2, 2, 2, 1]
    assert vocab.tokenizer == "none" and vocab.lang == "en"


def test_build_does_not_depend_on_input_order() -> None:
    words = ["q", "p", "r", "s", "p", "s", "r"]
    a, _ = build_vocab(count_tokens([words]), "none", "en")
    b, _ = build_vocab(count_tokens([list(reversed(words))]), "none", "en")
    assert a.tokens == b.tokens


def test_build_size_keeps_most_frequent() -> None:
    counts = Counter({"a": 5, "b": 4, "c": 3, "d": 2})
    vocab, freqs = build_vocab(counts, "none", "en", size=2)
    assert vocab.tokens == SPECIALS + ("a", "b")
    assert freqs == [0, 0, 0, 0, 5, 4]
    # size 0 keeps all; a size above the word count keeps all.
    assert len(build_vocab(counts, "none", "en", size=0)[0]) == 8
    assert len(build_vocab(counts, "none", "en", size=100)[0]) == 8


def test_build_min_count_drops_rare_words() -> None:
    counts = Counter({"a": 5, "b": 2, "c": 1})
    vocab, _ = build_vocab(counts, "none", "en", min_count=2)
    assert vocab.tokens == SPECIALS + ("a", "b")
    vocab, _ = build_vocab(counts, "none", "en", size=1, min_count=2)
    assert vocab.tokens == SPECIALS + ("a",)


def test_build_rejects_bad_size_and_min_count() -> None:
    with pytest.raises(S2SError, match="--size"):
        build_vocab(Counter({"a": 1}), "none", "en", size=-1)
    with pytest.raises(S2SError, match="--min-count"):
        build_vocab(Counter({"a": 1}), "none", "en", min_count=0)


def test_specials_first_and_literal_specials_in_text_not_kept_as_words() -> None:
    counts = count_tokens([["<s>", "</s>", "<unk>", "<pad>", "x", "<s>"]])
    vocab, freqs = build_vocab(counts, "none", "en")
    assert vocab.tokens == SPECIALS + ("x",)
    assert freqs[:4] == [0, 0, 0, 0]


def test_literal_special_strings_in_text_map_to_unk() -> None:
    vocab = vocab_of(["x", "y"])
    assert vocab.encode(["<s>", "</s>", "<pad>", "<unk>", "x", "y", "never"]) == [UNK, UNK, UNK, UNK, 4, 5, UNK]


def test_encode_adds_no_markers() -> None:
    vocab = vocab_of(["x"])
    assert vocab.encode([]) == []
    assert vocab.encode(["x"]) == [4]


def test_decode_stops_at_eos_and_skips_pad_and_bos() -> None:
    vocab = vocab_of(["x", "y"])
    assert vocab.decode([BOS, 4, PAD, UNK, 5, EOS, 4, 5]) == ["x", "<unk>", "y"]
    assert vocab.decode([]) == []
    assert vocab.decode([EOS]) == []


def test_vocab_requires_specials_first() -> None:
    with pytest.raises(S2SError, match="special tokens"):
        Vocab(["<unk>", "<pad>", "<s>", "</s>", "x"], "none", "en")
    with pytest.raises(S2SError):
        Vocab(["x"], "none", "en")


def test_dict_round_trip_and_equality() -> None:
    vocab = vocab_of(["x", "y"], "moses", "fr")
    again = Vocab.from_dict(vocab.to_dict())
    assert again == vocab
    assert again.tokens == vocab.tokens and again.tokenizer == "moses" and again.lang == "fr"
    assert vocab != vocab_of(["x", "y"], "moses", "en")
    assert vocab != vocab_of(["y", "x"], "moses", "fr")
    assert vocab != "not a vocab"


def test_fingerprint_tracks_tokens_and_tokenizer() -> None:
    base = vocab_of(["x", "y"])
    assert base.fingerprint() == vocab_of(["x", "y"]).fingerprint()
    assert len(base.fingerprint()) == 16
    others = [vocab_of(["y", "x"]), vocab_of(["x", "y"], "moses"), vocab_of(["x", "y"], lang="fr"), vocab_of(["x"])]
    assert len({base.fingerprint()} | {v.fingerprint() for v in others}) == 5


def test_write_format() -> None:
    vocab, freqs = build_vocab(Counter({"the": 3, "cat": 1}), "moses", "en")
    out = io.StringIO()
    write_vocab(vocab, freqs, out)
    assert out.getvalue() == (
        "#s2s-vocab\tversion=1\ttokenizer=moses\tlang=en\n"
        "<pad>\t0\n<unk>\t0\n<s>\t0\n</s>\t0\nthe\t3\ncat\t1\n"
    )


def test_write_read_round_trip_through_a_file(tmp_path: Path) -> None:
    counts = Counter({"chat": 7, "été": 3, "日本": 3, "'s": 2, "&": 1, "#s2s-vocab": 1, "12": 1})
    vocab, freqs = build_vocab(counts, "moses", "fr")
    path = tmp_path / "vocab.fr"
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        write_vocab(vocab, freqs, f)
    with open(path, "rb") as f:
        again = read_vocab(read_lines(f, str(path)), str(path))
    assert again == vocab
    assert again.encode(["été", "chat", "zzz"]) == [vocab.tokens.index("été"), vocab.tokens.index("chat"), UNK]


def test_read_empty_file_refused() -> None:
    with pytest.raises(S2SError, match=r"^e\.vocab: empty file"):
        parse("", "e.vocab")


def test_read_file_without_header_refused_at_line_1() -> None:
    with pytest.raises(S2SError, match=r"^plain\.txt:1: not an s2s vocabulary"):
        parse("the\t5\ncat\t3\n", "plain.txt")


@pytest.mark.parametrize("version", ["3", "99", "0", "x", ""])
def test_read_unsupported_version_refused(version: str) -> None:
    text = f"#s2s-vocab\tversion={version}\ttokenizer=none\tlang=en\n" + GOOD_SPECIALS
    with pytest.raises(S2SError, match=r"^v\.vocab:1: vocabulary format version .* not supported"):
        parse(text)


def test_read_header_without_version_refused() -> None:
    with pytest.raises(S2SError, match=r"v\.vocab:1:"):
        parse("#s2s-vocab\ttokenizer=none\tlang=en\n" + GOOD_SPECIALS)


def test_read_header_without_tokenizer_or_lang_refused() -> None:
    with pytest.raises(S2SError, match=r"v\.vocab:1: header lacks"):
        parse("#s2s-vocab\tversion=1\tlang=en\n" + GOOD_SPECIALS)
    with pytest.raises(S2SError, match=r"v\.vocab:1: header lacks"):
        parse("#s2s-vocab\tversion=1\ttokenizer=none\n" + GOOD_SPECIALS)


@pytest.mark.parametrize(
    "bad_line",
    ["word", "word\t", "word\tmany", "word\t-1", "word\t1\textra", "\t5", "two words\t5", "word\t 5", "word\t1.5"],
)
def test_read_malformed_line_refused_with_line_number(bad_line: str) -> None:
    text = GOOD_HEADER + GOOD_SPECIALS + "ok\t3\n" + bad_line + "\nlater\t1\n"
    with pytest.raises(S2SError, match=r"^v\.vocab:7: expected 'token<TAB>count'"):
        parse(text)


def test_read_duplicate_token_refused_with_line_number() -> None:
    text = GOOD_HEADER + GOOD_SPECIALS + "a\t3\nb\t2\na\t1\n"
    with pytest.raises(S2SError, match=r"^v\.vocab:8: token 'a' appears twice"):
        parse(text)


def test_read_duplicate_special_refused() -> None:
    text = GOOD_HEADER + GOOD_SPECIALS + "<s>\t0\n"
    with pytest.raises(S2SError, match=r"v\.vocab:6: token '<s>' appears twice"):
        parse(text)


def test_read_missing_specials_refused_with_line_number() -> None:
    with pytest.raises(S2SError, match=r"^v\.vocab:2: expected the special token <pad>"):
        parse(GOOD_HEADER + "the\t5\n")
    with pytest.raises(S2SError, match=r"^v\.vocab:4: expected the special token <s>"):
        parse(GOOD_HEADER + "<pad>\t0\n<unk>\t0\n")
    with pytest.raises(S2SError, match=r"^v\.vocab:2: expected the special token <pad>"):
        parse(GOOD_HEADER)


def test_read_specials_out_of_order_refused() -> None:
    text = GOOD_HEADER + "<pad>\t0\n<s>\t0\n<unk>\t0\n</s>\t0\n"
    with pytest.raises(S2SError, match=r"^v\.vocab:3: expected the special token <unk>"):
        parse(text)


def test_read_minimal_vocab_of_specials_only() -> None:
    vocab = parse(GOOD_HEADER + GOOD_SPECIALS)
    assert vocab.tokens == SPECIALS
    assert vocab.encode(["anything"]) == [UNK]


def test_read_ignores_unknown_header_settings() -> None:
    vocab = parse("#s2s-vocab\tversion=1\ttokenizer=moses\tlang=de\tfuture=1\n" + GOOD_SPECIALS + "x\t1\n")
    assert vocab.tokenizer == "moses" and vocab.lang == "de" and len(vocab) == 5


# ------------------------------------------------------------------------- subword vocabularies


@pytest.fixture(scope="module")
def subword() -> tuple[Vocab, list[int]]:
    """A small unigram vocabulary with its piece counts."""
    lines = [f"le chat numéro {i} voit {i * 7} oiseaux dans la maison rouge" for i in range(300)]
    return train_subword(lines, "unigram", 320, "fr")


def written(vocab: Vocab, counts: list[int]) -> str:
    out = io.StringIO()
    write_vocab(vocab, counts, out)
    return out.getvalue()


def test_dict_of_a_word_vocabulary_has_no_model_entry() -> None:
    # Prepared files and model files of word vocabularies stay exactly as before.
    assert vocab_of(["x"]).to_dict() == {"tokens": list(SPECIALS) + ["x"], "tokenizer": "none", "lang": "en"}
    assert vocab_of(["x"]).tokenizer_model is None


def test_subword_dict_round_trip_is_plain_data(subword: tuple[Vocab, list[int]]) -> None:
    vocab, _ = subword
    data = vocab.to_dict()
    assert isinstance(data["tokenizer_model"], str) and data["tokenizer"] == "sentencepiece"
    assert base64.b64decode(data["tokenizer_model"], validate=True)
    assert Vocab.from_dict(json.loads(json.dumps(data))) == vocab  # as in a prepared file's header
    buf = io.BytesIO()
    torch.save({"src_vocab": data}, buf)  # as in a model file
    buf.seek(0)
    assert Vocab.from_dict(torch.load(buf, weights_only=True)["src_vocab"]) == vocab


def test_fingerprint_and_equality_track_the_model(subword: tuple[Vocab, list[int]]) -> None:
    vocab, _ = subword
    other = Vocab(vocab.tokens, vocab.tokenizer, vocab.lang, base64.b64encode(b"other").decode())
    without = Vocab(vocab.tokens, vocab.tokenizer, vocab.lang)
    assert vocab != other and vocab != without
    assert len({vocab.fingerprint(), other.fingerprint(), without.fingerprint()}) == 3


def test_model_must_be_text() -> None:
    with pytest.raises(S2SError, match="base64 text"):
        Vocab(list(SPECIALS), "sentencepiece", "en", b"bytes")  # type: ignore[arg-type]


def test_subword_file_format(subword: tuple[Vocab, list[int]]) -> None:
    vocab, counts = subword
    lines = written(vocab, counts).splitlines()
    assert lines[0] == "#s2s-vocab\tversion=2\ttokenizer=sentencepiece\tlang=fr"
    assert lines[1:5] == ["<pad>\t0", "<unk>\t0", "<s>\t0", "</s>\t0"]
    assert lines[5:261] == [f"<0x{b:02X}>\t0" for b in range(256)]
    marker = lines.index("#sentencepiece-model")
    assert marker == 1 + len(vocab)
    assert [line.split("\t")[0] for line in lines[1:marker]] == list(vocab.tokens)
    section = lines[marker + 1:]
    assert all(len(line) == 76 for line in section[:-1]) and 0 < len(section[-1]) <= 76
    assert "".join(section) == vocab.tokenizer_model


def test_subword_file_round_trip(subword: tuple[Vocab, list[int]], tmp_path: Path) -> None:
    vocab, counts = subword
    path = tmp_path / "vocab.fr"
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        write_vocab(vocab, counts, f)
    with open(path, "rb") as f:
        again = read_vocab(read_lines(f, str(path)), str(path))
    assert again == vocab and again.tokenizer_model == vocab.tokenizer_model
    # Lines rewrapped to another width decode to the same model.
    text = written(vocab, counts)
    head, model = text.split("#sentencepiece-model\n")
    rewrapped = "\n".join(vocab.tokenizer_model[i:i + 64] for i in range(0, len(vocab.tokenizer_model), 64))
    assert parse(head + "#sentencepiece-model\n" + rewrapped + "\n") == vocab


def test_subword_file_without_model_refused(subword: tuple[Vocab, list[int]]) -> None:
    head = written(*subword).split("#sentencepiece-model\n")[0]
    with pytest.raises(S2SError, match=r"^v\.vocab: no '#sentencepiece-model' section"):
        parse(head)


def test_model_section_in_a_word_vocabulary_refused() -> None:
    with pytest.raises(S2SError, match=r"^v\.vocab:7: a '#sentencepiece-model' section in a vocabulary of "
                                       r"tokenizer 'none'"):
        parse(GOOD_HEADER + GOOD_SPECIALS + "x\t1\n#sentencepiece-model\nAAAA\n")


def test_subword_file_with_a_bad_model_line_refused(subword: tuple[Vocab, list[int]]) -> None:
    text = written(*subword)
    lines = text.splitlines()
    marker = lines.index("#sentencepiece-model")
    bad = lines[:]
    bad[marker + 2] = "not base64!"
    with pytest.raises(S2SError, match=rf"^v\.vocab:{marker + 3}: expected a line of base64"):
        parse("\n".join(bad) + "\n")
    cut = lines[:marker + 3] + [lines[marker + 3][:-1]]  # cut short: not a whole number of base64 quanta
    with pytest.raises(S2SError, match=rf"^v\.vocab:{marker + 2}: the sentencepiece model is not valid base64"):
        parse("\n".join(cut) + "\n")
    with pytest.raises(S2SError, match=rf"^v\.vocab:{marker + 1}: the sentencepiece model section is empty"):
        parse("\n".join(lines[:marker + 1]) + "\n")


def test_subword_file_with_a_damaged_model_refused(subword: tuple[Vocab, list[int]]) -> None:
    lines = written(*subword).splitlines()
    marker = lines.index("#sentencepiece-model")
    damaged = lines[:marker + 1] + [base64.b64encode(b"not a model at all").decode()]
    with pytest.raises(S2SError, match=rf"^v\.vocab:{marker + 2}: damaged sentencepiece model"):
        parse("\n".join(damaged) + "\n")


def test_subword_entries_must_be_the_model_pieces(subword: tuple[Vocab, list[int]]) -> None:
    lines = written(*subword).splitlines()
    edited = lines[:]
    edited[300] = "edited\t5"
    with pytest.raises(S2SError, match=r"^v\.vocab:301: token 'edited' is not piece 299 of the embedded"):
        parse("\n".join(edited) + "\n")
    marker = lines.index("#sentencepiece-model")
    shorter = lines[:marker - 1] + lines[marker:]
    with pytest.raises(S2SError, match=rf"^v\.vocab: {marker - 2} tokens listed but the embedded sentencepiece "
                                       rf"model has {marker - 1} pieces"):
        parse("\n".join(shorter) + "\n")


def test_word_vocabularies_are_still_written_as_version_1() -> None:
    for tokenizer in ("moses", "none", "char"):
        vocab, freqs = build_vocab(Counter({"a": 1}), tokenizer, "en")
        assert written(vocab, freqs).startswith(f"#s2s-vocab\tversion=1\ttokenizer={tokenizer}\tlang=en\n")


def test_a_header_with_an_unknown_tokenizer_is_refused_with_the_file() -> None:
    from s2scli.text import TOKENIZERS
    from s2scli.vocab import VOCAB_TOKENIZERS

    assert set(VOCAB_TOKENIZERS) == set(TOKENIZERS) | {"sentencepiece"}
    body = "".join(f"{s}\t0\n" for s in SPECIALS)
    with pytest.raises(S2SError, match=r"^v\.vocab:1: unknown tokenizer 'zzz' \(this s2s knows moses, none, char, "
                                       r"sentencepiece\)$"):
        parse("#s2s-vocab\tversion=1\ttokenizer=zzz\tlang=en\n" + body)
    with pytest.raises(S2SError, match=r"^v\.vocab:1: .*version '9' is not supported \(this s2s reads versions 1 to"):
        parse("#s2s-vocab\tversion=9\ttokenizer=none\tlang=en\n" + body)


def test_different_sides_and_the_vocabularys_own_tokenizer() -> None:
    from s2scli.text import get_tokenizer
    from s2scli.vocab import different_sides

    en, fr = Vocab(list(SPECIALS) + ["a"], "none", "en"), Vocab(list(SPECIALS) + ["b"], "none", "fr")
    assert different_sides((en, fr), (Vocab.from_dict(en.to_dict()), fr)) == ()
    assert different_sides((en, fr), (fr, fr)) == ("source",)
    assert different_sides((en, fr), (fr, en)) == ("source", "target")
    assert en.text_tokenizer() is get_tokenizer("none", "en")
    assert en.encode_line("a  b a") == [4, UNK, 4]
