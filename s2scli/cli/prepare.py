"""``s2s prepare``: turn a parallel corpus (two files or one tab-separated file) into a prepared file."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from typing import Iterator, Optional

import typer

from ..config import PrepareConfig
from ..errors import S2SError
from ..lines import read_lines
from ..streams import atomic_binary, check_writable, display_name, open_binary
from .core import Errors, command, load_vocab, say


@command("prepare")
def prepare_cmd(
    src: Optional[str] = typer.Argument(None, metavar="SRC", help="Source-language text, one sentence a line."),
    tgt: Optional[str] = typer.Argument(None, metavar="TGT", help="Its translation, line by line."),
    src_vocab: str = typer.Option(..., "--src-vocab", help="Source vocabulary (from 's2s vocab')."),
    tgt_vocab: str = typer.Option(..., "--tgt-vocab", help="Target vocabulary (from 's2s vocab')."),
    tsv: Optional[str] = typer.Option(None, "--tsv",
                                      help="Read the pairs from this tab-separated file instead of SRC and TGT: "
                                      "source<TAB>target a line, further columns ignored (manythings.org/anki)."),
    max_len: int = typer.Option(PrepareConfig.max_len, "--max-len",
                                help="Drop pairs with more tokens than this on either side (0: no limit)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    errors: Errors = "strict",
) -> None:
    """Turn a parallel corpus into the prepared file that 'train' reads.

    SRC and TGT are tokenized with the tokenizers their vocabularies record; words not in a vocabulary
    become <unk>. The binary result goes to stdout (redirect it) or to -o FILE. Pairs with an empty side
    or longer than --max-len are dropped; the counts and the <unk> rates are reported on stderr. One of
    SRC and TGT may be '-' (stdin). With --tsv FILE, the pairs are the first two columns of FILE.
    """
    from ..prepare import prepare_pairs

    if tsv is not None and (src is not None or tgt is not None):
        raise S2SError("give SRC and TGT, or --tsv FILE, not both", exit_code=2)
    if tsv is None and (src is None or tgt is None):
        raise S2SError(f"missing {'SRC and TGT' if src is None else 'TGT'}: give SRC and TGT, or --tsv FILE",
                       exit_code=2)
    if src == "-" and tgt == "-":
        raise S2SError("SRC and TGT cannot both be stdin")
    sv, tv = load_vocab(src_vocab), load_vocab(tgt_vocab)
    check_writable(output, [src, tgt, tsv, src_vocab, tgt_vocab])
    if output in (None, "-") and sys.stdout.isatty():
        raise S2SError("refusing to write binary data to a terminal; redirect stdout or use -o FILE")
    with ExitStack() as stack:
        pairs = tsv_pairs(tsv, errors, stack) if tsv is not None else \
            parallel_files(str(src), str(tgt), errors, stack)
        cfg = PrepareConfig(max_len=max_len)
        if output in (None, "-"):
            stats = prepare_pairs(pairs, sv, tv, sys.stdout.buffer, cfg)
        else:
            with atomic_binary(output) as out:
                stats = prepare_pairs(pairs, sv, tv, out, cfg)
    say(f"s2s prepare: {stats.pairs} pairs read, {stats.kept} kept, {stats.dropped} dropped "
        f"({stats.empty} with an empty side, "
        + (f"{stats.too_long} longer than {max_len} tokens); " if max_len else "no length limit); ")
        + f"<unk> rate: source {100 * stats.unk_rate('src'):.2f}%, target {100 * stats.unk_rate('tgt'):.2f}%")


def parallel_files(src: str, tgt: str, errors: str, stack: ExitStack) -> Iterator[tuple[str, str]]:
    """The line pairs of two parallel files; when both are plain files their line counts are compared
    first, so that a mismatch writes nothing at all."""
    from ..lines import PARALLEL_HINT, check_same_count, count_lines
    from ..prepare import parallel_pairs

    streams = [stack.enter_context(open_binary(p)) if p != "-" else open_binary(p) for p in (src, tgt)]
    if all(p != "-" and not p.endswith(".gz") for p in (src, tgt)):
        check_same_count(src, count_lines(streams[0]), tgt, count_lines(streams[1]), PARALLEL_HINT)
    names = (display_name(src), display_name(tgt))
    return parallel_pairs(read_lines(streams[0], names[0], errors), read_lines(streams[1], names[1], errors), names)


def tsv_pairs(path: str, errors: str, stack: ExitStack) -> Iterator[tuple[str, str]]:
    """The pairs of a tab-separated file; a plain file is checked whole first, so that a bad line
    writes nothing at all."""
    from ..tsv import count_pairs, read_pairs

    stream = stack.enter_context(open_binary(path)) if path != "-" else open_binary(path)
    name = display_name(path)
    if path != "-" and not path.endswith(".gz"):
        count_pairs(read_lines(stream, name, errors), name)
        stream.seek(0)
    return read_pairs(read_lines(stream, name, errors), name)
