"""``s2s vocab``: count a corpus's words (or learn subword pieces) and write a vocabulary file."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from typing import Any, Iterator, Optional

import typer

from ..config import VocabConfig, get_preset, resolve
from ..errors import S2SError
from ..streams import check_readable, check_writable, display_name, output_text
from .core import PRESET_HELP, Errors, command, given_options, option_names, say, text_lines


@command("vocab")
def vocab_cmd(
    ctx: typer.Context,
    files: Optional[list[str]] = typer.Argument(None, metavar="FILE", help="Text files, one sentence a line ('-' or none: stdin)."),
    size: int = typer.Option(VocabConfig.size, "--size", "-s",
                             help="Keep the N most frequent words (0: all); with --subword, the number of pieces "
                             "in all. The paper: 160000 source, 80000 target."),
    min_count: int = typer.Option(VocabConfig.min_count, "--min-count", help="Drop words seen fewer times."),
    tokenizer: str = typer.Option(VocabConfig.tokenizer, "--tokenizer",
                                  help="moses (sacremoses Moses tokenizer), none (text already tokenized) or char "
                                  "(every character a token)."),
    subword: Optional[str] = typer.Option(None, "--subword",
                                          help="bpe or unigram: learn a sentencepiece model of --size pieces from "
                                          "the raw text; the vocabulary file carries it (none: words, to undo a "
                                          "preset's)."),
    column: Optional[int] = typer.Option(None, "--column",
                                         help="Read column 1 (source) or 2 (target) of tab-separated sentence "
                                         "pairs (source<TAB>target<TAB>...), as 'prepare --tsv' does."),
    lang: Optional[str] = typer.Option(None, "--lang", "-l",
                                       help="Language code for the tokenizer [default: from the file name, "
                                       "e.g. train.en -> en, else en]."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    errors: Errors = "strict",
    preset: Optional[str] = typer.Option(None, "--preset", show_default=False, help=PRESET_HELP),
) -> None:
    """Count the words of a corpus and print its vocabulary, most frequent first.

    Reads FILES (or stdin), tokenizes each line, and writes the vocabulary file to stdout: a header that
    records the tokenizer and language, the special tokens, then one 'word<TAB>count' a line. With
    --subword, learns subword pieces from the raw text instead and adds the sentencepiece model to the file.
    """
    from ..tsv import check_column
    from ..vocab import check_lang, write_vocab

    given = given_options(ctx)
    recipe = get_preset(preset)
    cfg = resolve(VocabConfig, recipe.vocab if recipe else {}, {k: ctx.params[k] for k in given})
    cfg = replace(cfg, subword=None if cfg.subword == "none" else cfg.subword)  # "none" undoes a preset's
    if cfg.subword is not None:
        misplaced = given & {"tokenizer", "min_count"}
        if misplaced:
            raise S2SError(f"{option_names(ctx, misplaced)}: not with --subword, which learns its pieces "
                           "from the raw text")
    if column is not None:
        check_column(column)
    paths = files or ["-"]
    lang = lang if lang is not None else lang_of_names(paths)
    for p in paths:
        check_readable(p)
    check_writable(output, paths)
    guessed = lang is None and cfg.tokenizer == "moses" and cfg.subword is None  # said after the work
    lang = "en" if lang is None else lang
    check_lang(lang, "--lang")
    with ExitStack() as stack:
        vocab, freqs, summary = learn_vocab((line for p in paths for line in corpus_lines(p, column, errors, stack)),
                                            cfg, lang)
    with output_text(output) as out:
        write_vocab(vocab, freqs, out)
    say(f"s2s vocab: {summary}; tokenizer {vocab.tokenizer}, lang {lang}")
    if guessed:
        say("s2s vocab: no language code in the file names; tokenized as 'en' (set --lang)")


def lang_of_names(paths: list[str]) -> Optional[str]:
    """The language code the file names agree on (train.en and dev.en -> en), else None."""
    from ..text import guess_lang

    guesses = {guess_lang(p) for p in paths if p != "-"}
    return guesses.pop() if len(guesses) == 1 and None not in guesses else None


def learn_vocab(lines: Iterator[str], cfg: VocabConfig, lang: str) -> tuple[Any, Any, str]:
    """The vocabulary of ``lines`` (words, or sentencepiece pieces with --subword), its counts, and a summary."""
    from ..subword import train_subword
    from ..text import get_tokenizer
    from ..vocab import build_vocab, count_tokens

    if cfg.subword is not None:
        vocab, freqs = train_subword(lines, cfg.subword, cfg.size, lang)
        return vocab, freqs, (f"{len(vocab)} sentencepiece {cfg.subword} pieces (4 specials, 256 bytes, "
                              f"{len(vocab) - 260} learned)")
    tok = get_tokenizer(cfg.tokenizer, lang)
    counts = count_tokens(tok.tokenize(line) for line in lines)
    vocab, freqs = build_vocab(counts, cfg.tokenizer, lang, cfg.size, cfg.min_count)
    return vocab, freqs, f"{len(counts)} distinct tokens, kept {len(vocab) - 4} (+4 specials)"


def corpus_lines(path: str, column: int | None, errors: str, stack: ExitStack) -> Iterator[str]:
    """The lines of a text file, or with ``column`` that column of a tab-separated pairs file."""
    from ..tsv import read_column

    lines = text_lines(path, errors, stack)
    return lines if column is None else read_column(lines, display_name(path), column)
