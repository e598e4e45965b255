"""The rest of the bad-input matrix (issue 4), through the command line: empty input, a 100,000-token
line, a byte-order mark, a model file with bytes after its end, and a full disk while training saves."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from clitools import TINY, Cli, Tiny, write_lines


def test_empty_input_everywhere(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    # vocab: an empty corpus gives a valid vocabulary of the specials only.
    vocab = tmp_path / "vocab.txt"
    cli("vocab", "--tokenizer", "none", empty, "-o", vocab)
    assert vocab.read_text().splitlines()[1:] == ["<pad>\t0", "<unk>\t0", "<s>\t0", "</s>\t0"]
    # prepare: zero pairs is a valid (empty) prepared file ...
    data = tmp_path / "empty.s2s"
    result = cli("prepare", "--src-vocab", tiny.vocab_en, "--tgt-vocab", tiny.vocab_fr, empty, empty, "-o", data)
    assert "0 pairs read, 0 kept" in result.stderr
    # ... which train refuses with a clear message, writing no model.
    cli.fails("train", data, "-o", tmp_path / "m.pt", *TINY, watch=tmp_path, contains=["no sentence pairs"])
    # An empty --valid would mean no validation at all, silently: refused as well.
    cli.fails("train", tiny.train_s2s, "--valid", data, "-o", tmp_path / "m.pt", *TINY, watch=tmp_path,
              contains=["empty.s2s: no sentence pairs to validate on (--valid)"])
    # translate: no input lines, no output lines.
    assert cli("translate", "-m", tiny.model, empty).stdout == ""
    # score: nothing to score is an error, not a number.
    cli.fails("score", "--ref", empty, empty, contains=["empty.txt: no lines to score"])


def test_hundred_thousand_token_line(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    long_line = " ".join(["cat"] * 100_000)
    src = write_lines(tmp_path / "long.en", ["the cat", long_line, "a dog"])
    tgt = write_lines(tmp_path / "long.fr", ["le chat", "chat", "un chien"])
    # prepare drops the pair (longer than --max-len) and says so.
    result = cli("prepare", "--src-vocab", tiny.vocab_en, "--tgt-vocab", tiny.vocab_fr, src, tgt,
                 "-o", tmp_path / "long.s2s")
    assert "3 pairs read, 2 kept, 1 dropped" in result.stderr and "1 longer than 100 tokens" in result.stderr
    # vocab counts it.
    vocab = cli("vocab", "--tokenizer", "none", src).stdout
    assert "cat\t100001" in vocab.splitlines()
    # translate cuts it, says so on stderr, and still writes one line per input line.
    result = cli("translate", "-m", tiny.model, "--beam", "2", src)
    assert len(result.stdout.splitlines()) == 3
    assert "line 2: 100000 tokens, only the first 1000 are translated" in result.stderr
    # score -m reads it cut as well, and says so once, even for an n-best list with the line twice.
    hyp = write_lines(tmp_path / "long.hyp", ["le chat", "chat", "un chien"])
    result = cli("score", "-m", tiny.model, "--src", src, hyp)
    assert len(result.stdout.splitlines()) == 3
    assert result.stderr.splitlines() == [f"s2s score: {src}: line 2: 100000 tokens, only the first 1000 are scored"]
    nbest = write_lines(tmp_path / "long.nbest", ["0 ||| le chat ||| -1.0", "1 ||| chat ||| -1.0",
                                                  "1 ||| le chat ||| -2.0", "2 ||| un chien ||| -1.0"])
    result = cli("score", "-m", tiny.model, "--src", src, "--nbest", nbest)
    assert len(result.stdout.splitlines()) == 4 and len(result.stderr.splitlines()) == 1


def test_byte_order_mark_is_not_part_of_the_first_word(cli: Cli, tmp_path: Path) -> None:
    plain = write_lines(tmp_path / "plain.en", ["hello world", "hello"])
    bom = tmp_path / "bom.en"
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    a = cli("vocab", "--tokenizer", "none", plain).stdout
    b = cli("vocab", "--tokenizer", "none", bom).stdout
    assert a == b and "hello\t2" in a


def test_model_file_with_bytes_after_its_end_refused(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    padded = tmp_path / "padded.pt"
    shutil.copy(tiny.model, padded)
    with open(padded, "ab") as f:
        f.write(b"\0" * 4096)
    cli.fails("translate", "-m", padded, tiny.dev_en, contains=["padded.pt", "after the end of the archive"])


def test_disk_full_while_training_saves_keeps_previous_checkpoint(cli: Cli, tiny: Tiny, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "m.pt"
    shutil.copy(tiny.model, model)
    before = model.read_bytes()
    real_save = torch.save

    def full_disk(obj: object, f: object, *args: object, **kwargs: object) -> None:
        real_save(obj, f, *args, **kwargs)  # write a little, then fail the way a full disk does
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    files = set(tmp_path.iterdir())
    result = cli.invoke(["train", tiny.train_s2s, "-o", model, "--resume", "--epochs", "3"])
    assert result.exit_code == 1
    last = result.stderr.splitlines()[-1]  # progress lines come first: training ran until the save
    assert last.startswith("s2s train: error: ") and str(model) in last
    assert "No space left on device" in last and "unchanged" in last
    assert model.read_bytes() == before
    assert set(tmp_path.iterdir()) == files  # no temporary file left behind
