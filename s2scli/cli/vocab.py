"""``s2s vocab``: count a corpus's words (or learn subword pieces) and write a vocabulary file."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Iterator, Optional

import typer

from ..config import VocabConfig, get_preset, resolve
from ..errors import S2SError
from ..streams import check_readable, check_writable, display_name, output_text
from .core import ERRORS_HELP, PRESET_HELP, command, given_options, option_names, say, text_lines


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
    errors: str = typer.Option("strict", "--errors", help=ERRORS_HELP),
    preset: Optional[str] = typer.Option(None, "--preset", show_default=False, help=PRESET_HELP),
) -> None:
    """Count the words of a corpus and print its vocabulary, most frequent first.

    Reads FILES (or stdin), tokenizes each line, and writes the vocabulary file to stdout: a header that
    records the tokenizer and language, the special tokens, then one 'word<TAB>count' a line. With
    --subword, learns subword pieces from the raw text instead and adds the sentencepiece model to the file.
    """
    from ..subword import train_subword
    from ..text import get_tokenizer, guess_lang
    from ..tsv import check_column
    from ..vocab import build_vocab, check_lang, count_tokens, write_vocab

    given = given_options(ctx)
    recipe = get_preset(preset)
    cfg = resolve(VocabConfig, recipe.vocab if recipe else {}, {k: ctx.params[k] for k in given})
    size, subword = cfg.size, None if cfg.subword == "none" else cfg.subword
    if subword is not None:
        misplaced = given & {"tokenizer", "min_count"}
        if misplaced:
            raise S2SError(f"{option_names(ctx, misplaced)}: not with --subword, which learns its pieces "
                           "from the raw text")
    if column is not None:
        check_column(column)
    paths = files or ["-"]
    if lang is None:
        guesses = {guess_lang(p) for p in paths if p != "-"}
        lang = guesses.pop() if len(guesses) == 1 and None not in guesses else None
    for p in paths:
        check_readable(p)
    check_writable(output, paths)
    guessed = lang is None and tokenizer == "moses" and subword is None  # said after the work, not before
    if lang is None:
        lang = "en"
    check_lang(lang, "--lang")
    if subword is not None:
        with ExitStack() as stack:
            lines = (line for p in paths for line in corpus_lines(p, column, errors, stack))
            vocab, freqs = train_subword(lines, subword, size, lang)
        summary = f"{len(vocab)} sentencepiece {subword} pieces (4 specials, 256 bytes, {len(vocab) - 260} learned)"
    else:
        tok = get_tokenizer(tokenizer, lang)
        with ExitStack() as stack:
            lines = (line for p in paths for line in corpus_lines(p, column, errors, stack))
            counts = count_tokens(tok.tokenize(line) for line in lines)
        vocab, freqs = build_vocab(counts, tokenizer, lang, size, min_count)
        summary = f"{len(counts)} distinct tokens, kept {len(vocab) - 4} (+4 specials)"
    with output_text(output) as out:
        write_vocab(vocab, freqs, out)
    say(f"s2s vocab: {summary}; tokenizer {vocab.tokenizer}, lang {lang}")
    if guessed:
        say("s2s vocab: no language code in the file names; tokenized as 'en' (set --lang)")


def corpus_lines(path: str, column: int | None, errors: str, stack: ExitStack) -> Iterator[str]:
    """The lines of a text file, or with ``column`` that column of a tab-separated pairs file."""
    from ..tsv import read_column

    lines = text_lines(path, errors, stack)
    return lines if column is None else read_column(lines, display_name(path), column)
