"""The command-line reference page, generated from the ``symkl`` argparse parser.

Rendered from the parser's actions rather than from ``format_help()``: argparse's help
layout depends on the terminal width and changes between Python versions, and the page
must be byte-for-byte reproducible. argparse has no public API to list a parser's
arguments; ``_actions`` (and the subparsers action's ``choices``) is what every
documentation tool for argparse reads.
"""

from __future__ import annotations

import argparse

from symkl.site.markdown import generated_note, table

_SUPPRESSED = (argparse.SUPPRESS, None)


def _signature(action: argparse.Action) -> str:
    if not action.option_strings:
        name = action.metavar or action.dest
        return f"{name} ..." if action.nargs in ("*", "+") else (f"[{name}]" if action.nargs == "?" else name)
    flags = ", ".join(action.option_strings)
    if action.nargs == 0:
        return flags
    metavar = action.metavar or (f"{{{','.join(map(str, action.choices))}}}" if action.choices else action.dest.upper())
    return f"{flags} {metavar}"


def _expand(text: str | None, action: argparse.Action) -> str:
    """A help string with argparse's ``%(default)s`` / ``%%`` formatting applied, as ``--help``
    shows it (argparse's own ``HelpFormatter._expand_help`` does the same)."""
    if not text:
        return ""
    params = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
    try:
        return text % params
    except (KeyError, TypeError, ValueError):
        return text


def _default(action: argparse.Action) -> str:
    if action.nargs == 0 or action.default in _SUPPRESSED or action.default == []:
        return ""
    return f"`{action.default}`"


def _arguments(parser: argparse.ArgumentParser) -> list[tuple[str, str, str]]:
    rows = []
    for action in parser._actions:  # noqa: SLF001 - see the module docstring
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):  # noqa: SLF001
            continue
        if action.help == argparse.SUPPRESS:
            continue
        choices = f" (one of {', '.join(map(str, action.choices))})" if action.choices and action.metavar else ""
        rows.append((f"`{_signature(action)}`", _expand(action.help, action) + choices, _default(action)))
    return rows


def _usage(prog: str, parser: argparse.ArgumentParser) -> str:
    positional = [_signature(a) for a in parser._actions if not a.option_strings]  # noqa: SLF001
    options = any(a.option_strings and not isinstance(a, argparse._HelpAction)  # noqa: SLF001
                  for a in parser._actions)  # noqa: SLF001
    return " ".join([prog, *(["[options]"] if options else []), *positional])


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    return {}


def _help_texts(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each subcommand's one-line ``help`` (shown in ``symkl --help``)."""
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return {choice.dest: _expand(choice.help, choice) for choice in action._choices_actions}  # noqa: SLF001
    return {}


def page(parser: argparse.ArgumentParser) -> str:
    """The Markdown of ``docs/reference/cli.md``."""
    prog = parser.prog
    commands = _subcommands(parser)
    helps = _help_texts(parser)
    out = ["# Command line", "",
           generated_note("This page is written from the argument parser, `symkl.cli.build_parser()`."),
           f"`{prog} COMMAND [options]`. {parser.description or ''} User errors (unknown names, "
           "bad values) print one `symkl: error:` line and exit with status 2; `symkl COMMAND --help` "
           "prints the same information as this page.", "",
           table(("command", "what it does"), [(f"[`{prog} {name}`](#{prog}-{name})", helps.get(name, ""))
                                              for name in commands]),
           "Options of `symkl` itself:", "", table(("argument", "meaning", "default"), _arguments(parser))]
    for name, sub in commands.items():
        out += _command(f"{prog} {name}", sub, helps.get(name, ""), level=2)
    return "\n".join(out).rstrip("\n") + "\n"


def _command(prog: str, parser: argparse.ArgumentParser, help_text: str, level: int) -> list[str]:
    """The section of one command, then one subsection per subcommand (``symkl demo mc``)."""
    out = [f"{'#' * level} {prog}", ""]
    description = parser.description or help_text
    if description:
        out += [description, ""]
    commands = _subcommands(parser)
    if commands:
        helps = _help_texts(parser)
        out += ["```text", f"{prog} COMMAND [options]", "```", "",
                table(("command", "what it does"), [(f"`{prog} {name}`", helps.get(name, ""))
                                                   for name in commands])]
        for name, sub in commands.items():
            out += _command(f"{prog} {name}", sub, helps.get(name, ""), level + 1)
        return out
    out += ["```text", _usage(prog, parser), "```", ""]
    rows = _arguments(parser)
    out += [table(("argument", "meaning", "default"), rows) if rows else "No arguments.\n"]
    return out
