"""``symkl export``: write (or check) the LaTeX and Markdown documents of every derivation.

Exit status 0 when the folder was written or is current, 1 with ``--check`` when it is not
(2 for usage errors, as for every symkl command). The module stays light: ``add_parser``
uses argparse only; the handler imports the derivation machinery when it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

EXIT_STALE = 1
DEFAULT_OUT = Path("derivations")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export", help="write LaTeX and Markdown documents of every derivation",
        description="Write a standalone LaTeX document (compiles with pdflatex) and a Markdown "
                    "page for every derivation of the catalogue (KL, cross-entropy, entropy, "
                    "maximum likelihood), an index README.md and the combined catalogue.tex. "
                    "Files that an earlier export wrote and this one does not are removed; "
                    "other files are left alone.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                        help=f"output folder (default: {DEFAULT_OUT}/)")
    parser.add_argument("--format", default="tex,md", metavar="FORMATS",
                        help="comma-separated formats: tex, md (default: tex,md)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 listing missing, stale and extra files")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from symkl.cli import UsageError
    from symkl.export import export, parse_formats
    from symkl.export.catalogue import expected_count

    try:
        formats = parse_formats(args.format)
    except ValueError as exc:
        raise UsageError(f"--format: {exc}") from None
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {str(args.out)!r} is a file; give a folder")
    console = Console(stderr=True)
    # Progress goes to stderr and only on a terminal: redirected output stays one line per file.
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True,
                  disable=not console.is_terminal) as bar:
        task = bar.add_task("deriving", total=expected_count())
        plan = export(args.out, formats, check=args.check,
                      progress=lambda label: bar.update(task, advance=1, description=label))
    verb = {"missing": "missing" if args.check else "wrote",
            "stale": "out of date" if args.check else "updated",
            "extra": "not produced by this export" if args.check else "removed"}
    for kind in ("missing", "stale", "extra"):
        for name in getattr(plan, kind):
            print(f"{verb[kind]}: {args.out / name}")
    for name in plan.foreign:
        print(f"not written by symkl (left alone): {args.out / name}")
    written = len(plan.missing) + len(plan.stale) + len(plan.unchanged)
    if args.check:
        state = "up to date" if plan.current else "OUT OF DATE: run 'symkl export'"
        print(f"{args.out}/: {written} files, {state}")
        return 0 if plan.current else EXIT_STALE
    changed = len(plan.missing) + len(plan.stale) + len(plan.extra)
    print(f"{args.out}/: {written} files, {changed} changed")
    return 0
