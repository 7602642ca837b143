"""``symkl docs [--check]``: regenerate the generated pages of the documentation site.

The module stays light: ``add_parser`` uses argparse only; the handler imports the
page generators (which derive the catalogue, from the on-disk cache) when it runs.
"""

from __future__ import annotations

import argparse

EXIT_STALE = 1


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "docs", help="regenerate the generated pages of the documentation site",
        description="Write the generated pages of the MkDocs site: one per catalogue pair "
                    "(docs/pairs/), one per family's entropy (docs/families/), their indexes, "
                    "the command-line and generated-function references (docs/reference/) and "
                    "the generated nav "
                    "blocks of mkdocs.yml. Deterministic output. Build the site with "
                    "'mkdocs build --strict'.",
    )
    parser.add_argument("--check", action="store_true",
                        help="write nothing; list the stale files and exit 1 if any")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from symkl.site.build import ROOT, write

    if not (ROOT / "mkdocs.yml").exists():
        from symkl.cli import UsageError

        raise UsageError(f"'symkl docs' works in a source checkout; {ROOT / 'mkdocs.yml'} does not exist")
    changed, orphans = write(check=args.check)
    verb = "out of date" if args.check else "wrote"
    for path in changed:
        print(f"{verb}: {path}")
    for path in orphans:
        print(f"{'not generated any more' if args.check else 'deleted'}: {path}")
    if args.check:
        return EXIT_STALE if changed or orphans else 0
    if not changed and not orphans:
        print("generated pages already up to date")
    return 0
