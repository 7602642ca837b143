"""The ``symkl`` command line: list the catalogue and derive KL, entropy, cross-entropy.

Examples::

    symkl list --families-only
    symkl derive normal normal --steps
    symkl derive mvn_diag mvn_diag --fix-q loc=0 --fix-q scale=1      # the VAE term
    symkl derive gamma --entropy --format latex

``main`` returns the exit status instead of exiting, so tests can call it in-process.
User errors (unknown names, unsupported pairs, bad values, bad usage) print one
``symkl: error: ...`` line to stderr and return 2; they never print a traceback.
Heavy imports (rich, json, sympy printers) happen inside the commands that need them, so
``import symkl.cli`` costs no more than ``import symkl``.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, Sequence, TypeVar

import symkl
from symkl._version import __version__
from symkl.errors import UnknownFamilyError, UnsupportedPairError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from symkl.derivation import Derivation
    from symkl.family import Family

PROG = "symkl"
EXIT_OK = 0
EXIT_USAGE = 2  # argparse's own status for usage errors; reused for every user error
EXIT_INTERRUPTED = 130  # the shell convention for Ctrl-C
EXIT_BROKEN_PIPE = 141  # the shell convention for SIGPIPE (128 + 13)

#: Width used when stdout is not a terminal: wide enough that no table cell wraps, so the
#: output stays greppable (rich would otherwise assume 80 columns and fold the cells).
_PIPE_WIDTH = 1000

Number = int | float
Value = TypeVar("Value")


class UsageError(Exception):
    """A command line that argparse rejects, or that parses but does not make sense
    (``--entropy`` with two families)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are exceptions, so that ``main`` reports them
    like every other user error: one ``symkl: error:`` line instead of usage + error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


# -- argument parsing ---------------------------------------------------------------------


def parse_number(text: str) -> Number:
    """``"0"`` -> ``0``, ``"1.5"`` -> ``1.5``; ValueError if ``text`` is not a number."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None


def parse_assignment(text: str) -> tuple[str, Number]:
    """Parse one ``--fix-p`` / ``--fix-q`` argument, ``name=value``.

    Raises ``argparse.ArgumentTypeError`` so that argparse reports it as a usage error
    naming the option.
    """
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=NUMBER (e.g. scale=1), got {text!r}")
    try:
        return name, parse_number(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"value of {name!r}: {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for ``symkl`` and its ``list`` and ``derive`` commands."""
    parser = _Parser(
        prog=PROG,
        description="Derive KL divergence, entropy and cross-entropy symbolically, step by step.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    listing = commands.add_parser(
        "list", help="list the families and the (P, Q) pairs of the catalogue",
        description="List the catalogue's families and, for each (P, Q) pair, whether "
                    "KL(P || Q) can be +inf (derives every pair; cached on disk).",
    )
    listing.add_argument("--families-only", action="store_true",
                         help="skip the pairs table (which derives every pair)")
    listing.add_argument("--json", action="store_true",
                         help="print machine-readable JSON instead of tables")
    listing.set_defaults(handler=run_list)

    derive = commands.add_parser(
        "derive", help="derive KL(P || Q), H(P) or H(P, Q)",
        description="Derive KL(P || Q) (default), the entropy H(P) or the cross-entropy H(P, Q).",
    )
    derive.add_argument("p", metavar="P", help="family of P (name or alias, e.g. normal)")
    derive.add_argument("q", metavar="Q", nargs="?", help="family of Q (not with --entropy)")
    quantity = derive.add_mutually_exclusive_group()
    quantity.add_argument("--entropy", action="store_const", dest="quantity", const="entropy",
                          help="derive the entropy H(P); takes P only")
    quantity.add_argument("--cross-entropy", action="store_const", dest="quantity",
                          const="cross_entropy", help="derive the cross-entropy H(P, Q)")
    derive.set_defaults(quantity="kl")
    derive.add_argument("--format", choices=("text", "latex", "markdown", "sympy"), default="text",
                        help="output format (default: text); sympy prints srepr of the result only")
    derive.add_argument("--steps", action="store_true", help="show every step and its check")
    derive.add_argument("--fix-p", metavar="NAME=VALUE", type=parse_assignment, action="append",
                        default=[], help="fix a parameter of P to a number (repeatable)")
    derive.add_argument("--fix-q", metavar="NAME=VALUE", type=parse_assignment, action="append",
                        default=[], help="fix a parameter of Q to a number (repeatable)")
    derive.add_argument("--no-cache", action="store_true",
                        help="derive afresh instead of reading the on-disk cache")
    derive.add_argument("--brute-force", metavar="SECONDS", type=float, default=None,
                        help="also run the independent sympy integrate/summation cross-check "
                             "with this time limit and report its outcome")
    derive.set_defaults(handler=run_derive)

    codegen = commands.add_parser(
        "codegen", help="regenerate the numpy and torch modules from the derivations",
        description="Rewrite every derived result into its stable form, check each rewrite, and "
                    "write symkl/generated/{numpy,torch}_functions.py (deterministic output).",
    )
    codegen.add_argument("--check", action="store_true",
                         help="write nothing; exit 1 if the committed modules are out of date")
    codegen.set_defaults(handler=run_codegen)

    # Each stage's command lives beside the stage; these imports load argparse code only,
    # the engines load when a command runs.
    from symkl.demo.cli import add_parser as add_demo
    from symkl.export.cli import add_parser as add_export
    from symkl.likelihood.cli import add_parser as add_mle
    from symkl.site.cli import add_parser as add_docs
    from symkl.verify.cli import add_parser as add_verify

    for add in (add_verify, add_mle, add_demo, add_export, add_docs):
        add(commands)
    return parser


def run_codegen(args: argparse.Namespace) -> int:
    """``symkl codegen [--check]``."""
    from symkl.codegen import emit  # derives the whole catalogue: only when asked

    stale, skipped, count = emit.write(check=args.check)
    print(f"{count} functions per backend; not generated: "
          + (", ".join(f"{n} ({r})" for n, r in skipped.items()) or "none"))
    for path in stale:
        print(f"{'out of date' if args.check else 'wrote'}: {path}")
    if args.check:
        return 1 if stale else EXIT_OK
    if not stale:
        print("generated modules already up to date")
    return EXIT_OK


# -- list ---------------------------------------------------------------------------------


def _console() -> Console:
    """A rich console on the current ``sys.stdout`` (looked up now, so capture works).

    On a terminal rich decides colours and width; elsewhere it already emits no ANSI codes,
    and we widen it so that tables are not folded to 80 columns.
    """
    from rich.console import Console

    console = Console(file=sys.stdout)
    if not console.is_terminal:
        console = Console(file=sys.stdout, width=_PIPE_WIDTH)
    return console


def _parameter_lines(family: Family) -> list[str]:
    """``loc: a finite real number``, with the shape for vector and matrix parameters."""
    from symkl.family import Shape

    lines = []
    for param in family.params:
        shape = "" if param.shape is Shape.SCALAR else f" ({param.shape.value})"
        lines.append(f"{param.name}{shape}: {param.constraint.text}")
    return lines


def family_record(family: Family) -> dict[str, Any]:
    """A family as plain data, for ``list --json``."""
    return {
        "name": family.name,
        "title": family.title,
        "torch_class": family.torch_class,
        "aliases": list(family.aliases),
        "parameters": [
            {"name": p.name, "shape": p.shape.value, "constraint": p.constraint.text,
             "description": p.description}
            for p in family.params
        ],
        "description": family.description,
    }


def finiteness(d: Derivation) -> tuple[str, str]:
    """Whether the quantity can be +inf ("finite" / "conditional" / "always +inf"), and when."""
    from symkl.printing import to_text

    c = d.conditions
    if c.always_finite:
        return "finite", ""
    if c.never_finite:
        return "always +inf", c.infinite_when
    where = f" for every {c.for_all_index}" if c.for_all_index is not None else ""
    return "conditional", f"finite when {to_text(c.finite_when)}{where}"


def pair_records(console: Console | None) -> list[dict[str, str]]:
    """Derive KL for every catalogue pair and summarise when it is finite.

    A cold run derives all pairs (seconds each), so a terminal gets a spinner.
    """
    records = []
    pairs = symkl.pairs()
    status = console.status("") if console is not None and console.is_terminal else None
    if status is not None:
        status.start()
    try:
        for n, (p, q) in enumerate(pairs, 1):
            if status is not None:
                status.update(f"deriving KL({p} || {q}) [{n}/{len(pairs)}]")
            kind, condition = finiteness(symkl.kl(p, q))
            records.append({"p": p, "q": q, "kl": kind, "condition": condition})
    finally:
        if status is not None:
            status.stop()
    return records


def families_table(families: Sequence[Family]) -> Table:
    """The rich table of families."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Families")
    for header in ("name", "title", "parameters", "torch class", "aliases"):
        table.add_column(header)
    for f in families:
        # Text, not str: rich would read "[0, 1]" or "[low, high]" as markup and drop it.
        cells = (f.name, f.title, "\n".join(_parameter_lines(f)), f.torch_class, ", ".join(f.aliases))
        table.add_row(*(Text(c) for c in cells))
    return table


def pairs_table(records: Sequence[dict[str, str]]) -> Table:
    """The rich table of (P, Q) pairs and whether KL(P || Q) can be +inf."""
    from rich.table import Table
    from rich.text import Text

    styles = {"finite": "green", "conditional": "yellow", "always +inf": "red"}
    table = Table(title="KL(P || Q) pairs")
    for header in ("P", "Q", "KL", "when"):
        table.add_column(header)
    for r in records:
        table.add_row(Text(r["p"]), Text(r["q"]), Text(r["kl"], style=styles[r["kl"]]),
                      Text(r["condition"]))
    return table


def run_list(args: argparse.Namespace) -> int:
    """``symkl list``: tables (or JSON) of families and pairs."""
    families = symkl.families()
    if args.json:
        import json

        data: dict[str, Any] = {"families": [family_record(f) for f in families]}
        if not args.families_only:
            data["pairs"] = pair_records(None)
        print(json.dumps(data, indent=2))
        return EXIT_OK
    console = _console()
    console.print(families_table(families))
    if not args.families_only:
        console.print(pairs_table(pair_records(console)))
    return EXIT_OK


# -- derive -------------------------------------------------------------------------------


def fixed_values(assignments: Sequence[tuple[str, Value]], option: str) -> dict[str, Value]:
    """Turn ``--fix-*`` pairs (or any repeated ``NAME=VALUE`` option) into the ``p=`` /
    ``q=`` mapping of the API, which validates names and values itself (one source of truth
    for the constraints); a name given twice is a usage error."""
    out: dict[str, Value] = {}
    for name, value in assignments:
        if name in out:
            raise UsageError(f"{option} sets {name!r} twice")
        out[name] = value
    return out


def check_arity(args: argparse.Namespace) -> None:
    """Each quantity's number of families, and no ``--fix-q`` without a Q."""
    if args.quantity == "entropy":
        if args.q is not None:
            raise UsageError(f"--entropy takes one family (P), got a second one: {args.q!r}")
        if args.fix_q:
            raise UsageError("--fix-q needs a Q; --entropy has only P")
    elif args.q is None:
        what = "cross-entropy" if args.quantity == "cross_entropy" else "KL divergence"
        raise UsageError(f"the {what} needs two families, P and Q (or use --entropy for H(P))")


def derive(args: argparse.Namespace) -> Derivation:
    """Call the API for the requested quantity."""
    check_arity(args)
    use_cache = not args.no_cache
    p = fixed_values(args.fix_p, "--fix-p")
    extra = {"cache": use_cache, "brute_force": args.brute_force}
    if args.quantity == "entropy":
        return symkl.entropy(args.p, p=p, **extra)
    q = fixed_values(args.fix_q, "--fix-q")
    func = symkl.kl if args.quantity == "kl" else symkl.cross_entropy
    return func(args.p, args.q, p=p, q=q, **extra)


def render(d: Derivation, fmt: str, steps: bool) -> str:
    """The derivation in the requested format."""
    if fmt == "sympy":
        import sympy

        return sympy.srepr(d.result)
    if fmt == "latex":
        return d.latex(steps=steps)
    if fmt == "markdown":
        return d.markdown(steps=steps)
    out = d.text(steps=steps)
    if steps:
        verdict = "all passed" if d.checked else "SOME FAILED (marked FAILED above)"
        out += f"\nchecks: {verdict}"
    if d.brute_force.status != "not run" or d.brute_force.detail:
        bf = d.brute_force
        out += f"\nbrute-force cross-check: {bf.status} ({bf.seconds:.1f} s) {bf.detail}".rstrip()
    return out


def run_derive(args: argparse.Namespace) -> int:
    """``symkl derive``: print one derivation."""
    # Plain print: the formats are plain text already, and rich would re-wrap long formulas.
    print(render(derive(args), args.format, args.steps))
    return EXIT_OK


# -- entry point --------------------------------------------------------------------------


def error(message: str) -> int:
    """Report a user error on one line of stderr and return the usage exit status."""
    one_line = " ".join(str(message).split())  # whatever newlines the exception held
    print(f"{PROG}: error: {one_line}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    """Run the ``symkl`` command line with ``argv`` (default ``sys.argv[1:]``); return the
    exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.handler(args)
    except SystemExit as exc:  # argparse after --help/--version; rich on a broken pipe
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except (UnknownFamilyError, UnsupportedPairError, UsageError, ValueError) as exc:
        return error(str(exc))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``symkl list | head``). Point stdout at devnull so that the
        # interpreter's final flush does not raise again (recipe from the Python docs).
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
