"""The manual pages in man/ keep up with the command line.

Every command of the typer app has a page ``man/s2s-<command>.1`` (a subcommand of a command group,
such as ``s2s plot pca``, has ``man/s2s-plot-pca.1``; ``s2s`` itself has ``man/s2s.1``); every option string of a command (``-o`` and ``--output``, ``--no-reverse``, ``-h``)
is the tag of an entry in its page's OPTIONS section, with the default that ``--help`` shows and the
paper section that the option's help cites; no page documents an option the command lacks; and every
page renders with groff without a warning, within 78 columns.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import typer

import s2scli.cli

MAN = Path(__file__).resolve().parent.parent / "man"

COMMAND_SECTIONS = ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXAMPLES", "EXIT STATUS", "SEE ALSO")
OVERVIEW_SECTIONS = COMMAND_SECTIONS + ("ENVIRONMENT", "FILES")
EXIT_STATUSES = ("0", "1", "2", "70", "130", "141", "143")

# An option string in page text: a dash or two and a letter, not glued to a word before or after.
OPTION_RE = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")
PAPER_SECTION_RE = re.compile(r"\[(\d+(?:\.\d+)?)\]")


# ------------------------------------------------------------------------------------- the CLI


def cli_commands() -> dict[str, tuple[Any, Any]]:
    """Page name -> (click command, its context): ``s2s`` for the group, ``s2s-<name>`` per command,
    and ``s2s-<group>-<name>`` for each subcommand of a command group (``s2s plot pca``:
    ``s2s-plot-pca``); a group itself (whose only option is ``-h``) has no page of its own.

    The contexts carry the app's ``help_option_names``, so ``get_params`` includes ``-h``/``--help``.
    """
    group = typer.main.get_command(s2scli.cli.app)
    group_ctx = group.context_class(group, info_name="s2s", **group.context_settings)
    table = {"s2s": (group, group_ctx)}

    def add(page: str, cmd: Any, parent_ctx: Any) -> None:
        ctx = cmd.context_class(cmd, info_name=cmd.name, parent=parent_ctx, **cmd.context_settings)
        subcommands = getattr(cmd, "commands", None)
        if subcommands is None:
            table[page] = (cmd, ctx)
        for name, sub in subcommands.items() if subcommands else ():
            add(f"{page}-{name}", sub, ctx)

    for name, cmd in group.commands.items():
        add(f"s2s-{name}", cmd, group_ctx)
    return table


COMMANDS = cli_commands()
COMMAND_PAGES = sorted(n for n in COMMANDS if n != "s2s")


def options(page: str) -> Iterator[Any]:
    """The click options (not arguments) of the command documented by ``page``, help included."""
    cmd, ctx = COMMANDS[page]
    # typer may bring its own copy of click, so test the kind of parameter, not its class.
    return (p for p in cmd.get_params(ctx) if getattr(p, "param_type_name", None) == "option")


def option_strings(param: Any) -> list[str]:
    return [*param.opts, *param.secondary_opts]


# ----------------------------------------------------------------------------------- the pages


def read_page(page: str) -> str:
    path = MAN / f"{page}.1"
    assert path.is_file(), f"no manual page {path.relative_to(MAN.parent)} for '{page.replace('-', ' ')}'"
    return path.read_text(encoding="utf-8")


def plain(roff: str) -> str:
    """Roff source as text: comments dropped, \\- as -, font and spacing escapes removed."""
    lines = [line for line in roff.splitlines() if not line.startswith(('.\\"', "'\\\""))]
    text = "\n".join(lines)
    text = re.sub(r"\\f(\[[^\]]*\]|\(..|.)", "", text)  # \fB \fI \fR \fP \f(CW \f[B]
    text = text.replace("\\-", "-").replace("\\~", " ").replace("\\ ", " ")
    text = text.replace("\\&", "").replace("\\c", "").replace("\\e", "\\")
    return text


def sections(roff: str) -> dict[str, list[str]]:
    """Lines of each ``.SH`` section (of the plain text), by section name."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in plain(roff).splitlines():
        if line.startswith(".SH"):
            current = found.setdefault(line[3:].strip().strip('"'), [])
        elif current is not None:
            current.append(line)
    return found


def option_entries(roff: str) -> list[tuple[str, str]]:
    """The ``.TP`` entries of the OPTIONS section as (tag line, body text)."""
    lines = sections(roff).get("OPTIONS", [])
    entries: list[tuple[str, str]] = []
    i = 0
    while i < len(lines):
        if lines[i].startswith(".TP") and i + 1 < len(lines):
            tag, body = lines[i + 1], []
            i += 2
            while i < len(lines) and not lines[i].startswith((".TP", ".SS", ".SH")):
                body.append(lines[i])
                i += 1
            entries.append((tag, words(body)))
        else:
            i += 1
    return entries


def words(lines: list[str]) -> str:
    """Running text of roff lines: macro names dropped, quotes of macro arguments removed."""
    out = []
    for line in lines:
        if line.startswith("."):
            parts = line.split(None, 1)
            line = parts[1].replace('"', "") if len(parts) > 1 else ""
        out.append(line)
    return " ".join(" ".join(out).split())


def tag_options(tag: str) -> set[str]:
    return set(OPTION_RE.findall(tag.replace('"', " ")))


def entry_for(roff: str, opt: str) -> tuple[str, str] | None:
    for tag, body in option_entries(roff):
        if opt in tag_options(tag):
            return tag, body
    return None


def all_pages() -> list[str]:
    return sorted(p.stem for p in MAN.glob("*.1"))


# ----------------------------------------------------------------------------------- the tests


def test_the_app_has_commands_and_options() -> None:
    """Guard against a vacuous pass if typer changes how commands or options are found."""
    assert set(COMMAND_PAGES) >= {"s2s-vocab", "s2s-prepare", "s2s-train", "s2s-translate", "s2s-score",
                                  "s2s-plot-curves", "s2s-plot-pca"}
    for page in COMMANDS:
        assert any(o for p in options(page) for o in option_strings(p) if o in ("-h", "--help")), page
    assert "--no-reverse" in {o for p in options("s2s-train") for o in option_strings(p)}
    assert "--labels" in {o for p in options("s2s-plot-pca") for o in option_strings(p)}


@pytest.mark.parametrize("page", sorted(COMMANDS))
def test_every_command_has_a_page(page: str) -> None:
    roff = read_page(page)
    th = re.search(r"^\.TH\s+(\S+)\s+1\b", roff, re.M)
    assert th and plain(th.group(1)) == page.upper(), f"{page}.1: .TH should name {page.upper()} section 1"
    name = sections(roff).get("NAME", [])
    assert name and words(name).startswith(f"{page} - "), f"{page}.1: NAME should read '{page} \\- ...'"


def test_no_page_without_a_command() -> None:
    stale = [p for p in all_pages() if p not in COMMANDS]
    assert not stale, f"pages for commands that do not exist: {stale}"


def test_overview_lists_every_command() -> None:
    text = plain(read_page("s2s"))
    missing = [p for p in COMMAND_PAGES if f"{p} (1)" not in text and f"{p}(1)" not in text]
    assert not missing, f"s2s.1 does not refer to {missing}"
    see_also = words(sections(read_page("s2s"))["SEE ALSO"])
    assert all(p in see_also for p in COMMAND_PAGES), "s2s.1 SEE ALSO should list every command page"


@pytest.mark.parametrize("page", sorted(COMMANDS))
def test_every_option_is_documented(page: str) -> None:
    """Each option string of the command tags an entry of its page's OPTIONS section."""
    roff = read_page(page)
    documented = set().union(*(tag_options(tag) for tag, _ in option_entries(roff)))
    missing = [o for p in options(page) for o in option_strings(p) if o not in documented]
    assert not missing, f"man/{page}.1 OPTIONS has no entry for {missing}"


@pytest.mark.parametrize("page", sorted(COMMANDS))
def test_no_documented_option_is_unknown(page: str) -> None:
    roff = read_page(page)
    known = {o for p in options(page) for o in option_strings(p)}
    documented = set().union(*(tag_options(tag) for tag, _ in option_entries(roff)))
    assert not documented - known, f"man/{page}.1 documents options that '{page}' lacks: {documented - known}"


def shown_default(param: Any) -> str | None:
    """The default as a page should state it, or None where there is none to state."""
    if getattr(param, "is_flag", False):
        if param.secondary_opts and param.default is not None:  # --reverse/--no-reverse
            return param.opts[0] if param.default else param.secondary_opts[0]
        return None
    if param.required or param.default is None or param.multiple:
        return None
    return str(param.default)


@pytest.mark.parametrize("page", COMMAND_PAGES)
def test_defaults_are_documented(page: str) -> None:
    """An option with a default says 'Default: <the value --help shows>' in its entry."""
    roff = read_page(page)
    wrong = []
    for param in options(page):
        expected = shown_default(param)
        entry = entry_for(roff, param.opts[0])
        if expected is None or entry is None:
            continue
        if not re.search(r"Default:\s*" + re.escape(expected) + r"(?!\d|\.\d|[\w-])", entry[1]):
            wrong.append(f"{param.opts[0]} (default {expected})")
    assert not wrong, f"man/{page}.1 does not state these defaults: {wrong}"


@pytest.mark.parametrize("page", COMMAND_PAGES)
def test_paper_sections_are_cited(page: str) -> None:
    """When an option's help cites the paper ('[3.4]'), its man entry cites the same section."""
    roff = read_page(page)
    missing = []
    for param in options(page):
        entry = entry_for(roff, param.opts[0])
        for sec in PAPER_SECTION_RE.findall(param.help or ""):
            if entry is None or f"[{sec}]" not in entry[1]:
                missing.append(f"{param.opts[0]} [{sec}]")
    assert not missing, f"man/{page}.1 should cite the paper sections: {missing}"


@pytest.mark.parametrize("page", sorted(COMMANDS))
def test_page_has_its_sections(page: str) -> None:
    found = sections(read_page(page))
    wanted = OVERVIEW_SECTIONS if page == "s2s" else COMMAND_SECTIONS
    missing = [s for s in wanted if s not in found]
    assert not missing, f"man/{page}.1 lacks the sections {missing}"
    if page != "s2s":
        assert any(s.endswith("FORMAT") for s in found), f"man/{page}.1 lacks a FILE FORMAT section"


def test_overview_lists_exit_statuses() -> None:
    status = sections(read_page("s2s"))["EXIT STATUS"]
    tags = set()
    for i, line in enumerate(status):
        if line.startswith(".TP") and i + 1 < len(status):
            tags.update(re.findall(r"\d+", status[i + 1]))
    assert set(EXIT_STATUSES) <= tags, f"s2s.1 EXIT STATUS lacks {set(EXIT_STATUSES) - tags}"
    assert "S2S_DEBUG" in words(sections(read_page("s2s"))["ENVIRONMENT"])


@pytest.mark.parametrize("page", all_pages())
def test_roff_source_style(page: str) -> None:
    """Source lines under 100 characters; option dashes escaped as \\- (so they copy and paste)."""
    bad = []
    for n, line in enumerate((MAN / f"{page}.1").read_text(encoding="utf-8").splitlines(), 1):
        if len(line) >= 100:
            bad.append(f"{n}: {len(line)} characters")
        if not line.startswith('.\\"') and re.search(r"(?<![\\\w-])--?[A-Za-z]", line):
            bad.append(f"{n}: unescaped option dash: {line.strip()}")
        if line.rstrip() != line:
            bad.append(f"{n}: trailing white space")
    assert not bad, f"man/{page}.1:\n" + "\n".join(bad)


GROFF = shutil.which("groff")


@pytest.mark.parametrize("page", all_pages())
def test_page_renders_without_warnings(page: str) -> None:
    if GROFF is None:
        pytest.skip("groff is not installed")
    path = MAN / f"{page}.1"
    check = subprocess.run([GROFF, "-man", "-Tutf8", "-ww", "-z", str(path)], capture_output=True, text=True)
    assert check.returncode == 0 and not check.stderr.strip(), f"groff on {path}:\n{check.stderr}"
    # At the default 78 columns nothing sticks out (long example lines must be folded by hand).
    out = subprocess.run([GROFF, "-man", "-Tutf8", "-P-cbou", "-rLL=78n", str(path)], capture_output=True,
                         check=True).stdout.decode("utf-8")
    wide = [line for line in out.splitlines() if len(line) > 78]
    assert not wide, f"{path} renders lines wider than 78 columns:\n" + "\n".join(wide)
