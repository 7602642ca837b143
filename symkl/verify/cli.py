"""``symkl verify``: a thin command-line layer over :func:`symkl.verify.verify`.

Exit status 0 when every deciding check passed, 1 when one failed (2 for usage errors, as
for every symkl command).
"""

from __future__ import annotations

import argparse
from pathlib import Path

EXIT_FAILED = 1


def add_parser(commands: argparse._SubParsersAction) -> None:
    verify = commands.add_parser(
        "verify", help="check results and generated code against independent references",
        description="Check derived results and the generated numpy/torch code against mpmath "
                    "quadrature of the densities (reference A), Monte Carlo (B) and "
                    "torch.distributions (C), with gradients; exit 1 if any check fails.",
    )
    verify.add_argument("p", metavar="P", nargs="?", help="family of P (default: with --all, every family)")
    verify.add_argument("q", metavar="Q", nargs="?", help="family of Q")
    verify.add_argument("--all", action="store_true", help="verify the whole catalogue")
    verify.add_argument("--quantity", choices=("kl", "entropy", "cross-entropy", "all"), default="all")
    verify.add_argument("--device", choices=("cpu", "cuda", "all"), default="cpu",
                        help="torch devices (all = cpu and cuda when present)")
    verify.add_argument("--dtype", choices=("float32", "float64", "all"), default="all")
    verify.add_argument("--points", type=int, default=4, metavar="N",
                        help="typical points per unit (other regimes are added; default 4)")
    verify.add_argument("--mc-samples", type=int, default=2_000_000, metavar="N",
                        help="most Monte Carlo samples per test (the power analysis picks fewer "
                             "where they suffice; default 2,000,000)")
    verify.add_argument("--seed", type=int, default=0, metavar="S")
    verify.add_argument("--workers", type=int, default=None, metavar="N",
                        help="processes (default: one per core)")
    verify.add_argument("--no-monte-carlo", action="store_true", help="skip reference B")
    verify.add_argument("--no-gradients", action="store_true", help="skip the gradient checks")
    verify.add_argument("--json", type=Path, metavar="FILE", help="write the full report as JSON")
    verify.add_argument("--markdown", type=Path, metavar="FILE", help="write the report as Markdown")
    verify.add_argument("--from-json", type=Path, metavar="FILE",
                        help="verify nothing: read a report written by --json (e.g. on a GPU "
                             "machine) and write its --markdown")
    verify.set_defaults(handler=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from symkl.cli import UsageError
    from symkl.verify import units, verify

    if args.from_json:
        return _render_saved(args)
    if args.all and args.p:
        raise UsageError("--all verifies the whole catalogue; give either --all or families")
    if not args.all and not args.p:
        raise UsageError("name a family (symkl verify normal normal) or use --all")
    if args.points < 1 or args.mc_samples < 1:
        raise UsageError("--points and --mc-samples must be positive")
    quantity = args.quantity.replace("-", "_")
    selected = units(args.p, args.q, quantity)
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("verifying", total=len(selected))
        report = verify(args.p, args.q, quantity=quantity, devices=args.device, dtypes=args.dtype,
                        points=args.points, mc_samples=args.mc_samples, seed=args.seed,
                        monte_carlo=not args.no_monte_carlo, gradients=not args.no_gradients,
                        workers=args.workers,
                        progress=lambda unit: bar.update(task, advance=1, description=str(unit)))
    _print_summary(report)
    if args.json:
        args.json.write_text(report.to_json() + "\n")
    if args.markdown:
        args.markdown.write_text(report.to_markdown())
    return 0 if report.passed else EXIT_FAILED


def _render_saved(args: argparse.Namespace) -> int:
    from symkl.cli import UsageError
    from symkl.verify.report import Report

    if not args.markdown or args.p or args.all or args.json:
        raise UsageError("--from-json FILE takes only --markdown FILE (it re-renders a saved report)")
    try:
        report = Report.from_json(args.from_json.read_text())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"--from-json: {args.from_json} is not a report written by --json ({exc})") from None
    args.markdown.write_text(report.to_markdown())
    _print_summary(report)
    return 0 if report.passed else EXIT_FAILED


def _print_summary(report) -> None:  # noqa: ANN001 - Report, imported lazily
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if Console().is_terminal else 200)
    table = Table(title="symkl verify")
    for header in ("unit", "checks", "failed", "worst float64 ULP", "worst float32 ULP", "MC max |z|"):
        table.add_column(header, justify="left" if header == "unit" else "right")
    for unit in report.units():
        checks = [c for c in report.checks if c.unit == unit and not c.informational]
        failed = [c for c in checks if not c.passed]

        def worst(suffix: str) -> str:
            errs = [c.error for c in checks if c.measure == "ulp" and c.check.endswith(suffix)]
            return f"{max(errs):.3g}" if errs else "-"

        zs = [c.error for c in checks if c.measure == "|z|"]
        table.add_row(unit, str(len(checks)), str(len(failed)) if failed else "",
                      worst("float64"), worst("float32"), f"{max(zs):.2f}" if zs else "-")
    console.print(table)
    for failure in report.failures():
        console.print(f"[red]FAILED[/red] {failure.message()}", markup=True, highlight=False)
    torch_wrong = sum(d.wrong == "torch.distributions" for d in report.disagreements)
    console.print(f"{report.summary().splitlines()[0]}; torch.distributions wrong at {torch_wrong} points "
                  "(see the report)", highlight=False)
