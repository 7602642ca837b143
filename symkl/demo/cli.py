"""``symkl demo``: numeric demonstrations with plots (``mle``, ``modes``, ``mc``).

Each writes ``demo-<name>.csv`` and, with the optional ``plot`` extra, ``demo-<name>.png``
into ``--out`` (default: the current directory), and prints a rich summary. Exit status 0
when the demo's check holds, 1 when it does not (2 for usage errors, as for every command).

The module stays light: ``add_parser`` uses argparse only; the handlers import torch,
matplotlib and rich when they run.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, Callable, Sequence

EXIT_CHECK_FAILED = 1
#: A Monte Carlo check fails beyond this many standard errors.
Z_LIMIT = 4.0
CLASSIC = ("normal", "normal")
CLASSIC_FIX = {"scale": 1.0}  # N(theta, 1): the textbook example fits the mean only

Vector = float | list[float] | list[list[float]]


def parse_values(text: str) -> tuple[str, Vector]:
    """``name=VALUE``: a number, a vector ``0.2,0.3,0.5`` or a matrix ``1,0.5;0.5,2``."""
    from symkl.cli import parse_number

    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(
            f"expected NAME=VALUE (e.g. scale=1, probs=0.2,0.3,0.5, covariance_matrix=1,0.5;0.5,2), got {text!r}")
    try:
        rows = [[float(parse_number(x)) for x in row.split(",")] for row in value.split(";")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"value of {name!r}: {exc}") from None
    if ";" in value:
        return name, rows
    return name, rows[0][0] if len(rows[0]) == 1 else rows[0]


def parse_list(text: str) -> list[float]:
    from symkl.cli import parse_number

    try:
        return [float(parse_number(x)) for x in text.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _assignments(option: str) -> dict[str, Any]:
    return {"metavar": "NAME=VALUE", "type": parse_values, "action": "append", "default": [],
            "dest": option}


def add_parser(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo", help="numeric demonstrations with plots (mle, modes, mc)",
        description="Numeric demonstrations of KL divergence, with CSVs and PNG plots "
                    "(plots need the optional extra: pip install 'symkl[plot]').",
    )
    kinds = demo.add_subparsers(dest="demo", metavar="DEMO", required=True)

    def common(parser: argparse.ArgumentParser, seeded: bool = True) -> None:
        parser.add_argument("--out", type=Path, default=Path("."), metavar="DIR",
                            help="directory for the CSV and PNG (default: current directory)")
        if seeded:
            parser.add_argument("--seed", type=int, default=0, metavar="S", help="torch seed (default 0)")
            parser.add_argument("--device", default="cpu", help="torch device (default cpu)")

    mle = kinds.add_parser(
        "mle", help="maximum likelihood by SGD is KL minimisation: NLL - KL = H(P)",
        description="Fit a model Q to samples of a data distribution P by minibatch maximum "
                    "likelihood; record at every step the NLL, the exact KL(P || Q) and H(P), "
                    "check that NLL - KL - H(P) averages 0 within Monte Carlo error, and compare "
                    "the fit with the minimiser of the exact KL. Without families: the classic "
                    "N(theta, 1) fitted to N(2, 1).",
    )
    mle.add_argument("p", metavar="P", nargs="?", help="data family (default: normal, the classic example)")
    mle.add_argument("q", metavar="Q", nargs="?", help="model family (default: the same as P)")
    mle.add_argument("--data-param", **_assignments("data_param"),
                     help="a parameter of P, e.g. loc=2 or probs=0.2,0.3,0.5 (repeatable)")
    mle.add_argument("--fix", **_assignments("fix"), help="hold a model parameter fixed, e.g. scale=1 (repeatable)")
    mle.add_argument("--steps", type=int, default=300, metavar="N", help="optimizer steps (default 300)")
    mle.add_argument("--batch", type=int, default=256, metavar="N", help="minibatch size (default 256)")
    mle.add_argument("--lr", type=float, default=0.1, help="initial learning rate, cosine decay to 0 (default 0.1)")
    mle.add_argument("--optimizer", choices=("sgd", "adam"), default=None,
                     help="default: sgd for the classic example (as in the textbook), adam when "
                          "families are named (SGD left Gamma, Beta and Dirichlet fits far off after "
                          "300 steps; Adam adapts to their badly scaled parameters)")
    common(mle)
    mle.set_defaults(handler=run_mle)

    modes = kinds.add_parser(
        "modes", help="forward KL covers the modes, reverse KL seeks one",
        description="Fit one Normal to a Gaussian mixture by minimising the forward KL(P || Q) "
                    "(mode-covering: matches the mixture's mean and variance) and the reverse "
                    "KL(Q || P) (mode-seeking: sits on one component).",
    )
    modes.add_argument("--weights", type=parse_list, default=[0.5, 0.5], metavar="W,W,...",
                       help="mixture weights (default 0.5,0.5)")
    modes.add_argument("--locs", type=parse_list, default=[-2.0, 2.0], metavar="M,M,...",
                       help="component means (default -2,2)")
    modes.add_argument("--scales", type=parse_list, default=[0.6, 0.6], metavar="S,S,...",
                       help="component standard deviations (default 0.6,0.6)")
    common(modes, seeded=False)
    modes.set_defaults(handler=run_modes)

    mc = kinds.add_parser(
        "mc", help="Monte Carlo KL against sample size, with its 95%% band",
        description="Estimate KL(P || Q) by Monte Carlo for sample sizes from 10 to --max-n and "
                    "compare the 95% bands with the exact value from the generated code. Q's "
                    "parameters default to their constraints' neutral values (N(0, 1) for a Normal).",
    )
    mc.add_argument("p", metavar="P", nargs="?", default="normal", help="family of P (default normal)")
    mc.add_argument("q", metavar="Q", nargs="?", help="family of Q (default: the same as P)")
    mc.add_argument("--p-param", **_assignments("p_param"), help="a parameter of P (repeatable)")
    mc.add_argument("--q-param", **_assignments("q_param"), help="a parameter of Q (repeatable)")
    mc.add_argument("--max-n", type=int, default=1_000_000, metavar="N", help="largest sample size (default 1e6)")
    mc.add_argument("--points", type=int, default=31, metavar="N", help="sample sizes, log-spaced (default 31)")
    common(mc)
    mc.set_defaults(handler=run_mc)


# -- helpers ----------------------------------------------------------------------------------


def _check_device(device: str) -> None:
    import torch

    from symkl.cli import UsageError

    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise UsageError(f"--device: {device!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: CUDA is not available on this machine; use --device cpu")


def _show(value: Vector) -> str:
    if isinstance(value, list):
        return ";".join(_show(v) for v in value) if value and isinstance(value[0], list) \
            else ",".join(f"{v:g}" for v in value)  # type: ignore[union-attr]
    return f"{value:g}"


def _command(*words: object, **options: object) -> str:
    """The canonical command line of a run: every setting that changes the files' content."""
    parts = ["symkl demo", *(str(w) for w in words)]
    for option, value in options.items():
        flag = "--" + option.replace("_", "-")
        if isinstance(value, dict):
            parts += [f"{flag} {k}={_show(v)}" for k, v in value.items()]
        else:
            # "--locs=-2,2": argparse would read a separate "-2,2" as an option
            parts.append(f"{flag}={value}" if str(value).startswith("-") else f"{flag} {value}")
    return " ".join(parts)


def _console():  # noqa: ANN202
    from symkl.cli import _console as console

    return console()


def _write(name: str, out: Path, csv: tuple[list[str], list[list[Any]]], figure: Callable[[], Any],
           command: str, console: Any) -> None:
    """Write demo-<name>.csv and (with matplotlib) demo-<name>.png; say what was written."""
    from symkl.demo import output, plots

    header, rows = csv
    written = [output.write_csv(out / f"demo-{name}.csv", header, rows, command)]
    matplotlib = output.load_matplotlib()
    if matplotlib is None:
        console.print(output.MISSING_MATPLOTLIB, highlight=False, markup=False)
    else:
        written.append(plots.save(matplotlib, figure(), out / f"demo-{name}.png", command))
    for path in written:
        console.print(f"wrote {path}", highlight=False, markup=False)


def _verdict(ok: bool) -> str:
    return "[green]ok[/green]" if ok else "[red]CHECK FAILED[/red]"


def _num5(value: float) -> str:
    """Five decimals, without a "-0.00000" for a tiny negative."""
    return f"{round(value, 5) + 0.0:.5f}"


def _fmt(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.4g}" for v in values)


# -- mle --------------------------------------------------------------------------------------


def run_mle(args: argparse.Namespace) -> int:
    from rich.table import Table

    from symkl.cli import UsageError, fixed_values
    from symkl.demo import mle, plots

    if args.p is None and args.q is not None:
        raise UsageError("give the data family P before the model family Q")
    _check_device(args.device)
    data, fix = fixed_values(args.data_param, "--data-param"), fixed_values(args.fix, "--fix")
    classic = args.p is None and not fix
    p = args.p or CLASSIC[0]
    q = args.q or p
    if classic:
        fix = dict(CLASSIC_FIX)
    optimizer = args.optimizer or ("sgd" if classic else "adam")
    result = mle.run(p, q, data=data, fix=fix, steps=args.steps, batch=args.batch, lr=args.lr,
                     optimizer=optimizer, seed=args.seed, device=args.device)
    command = _command("mle", result.p, result.q, data_param=data, fix=fix, steps=args.steps, batch=args.batch,
                       lr=args.lr, optimizer=optimizer, seed=args.seed)
    console = _console()
    if classic:
        console.print(f"the classic example: N(theta, 1) fitted to samples of N({result.data['loc'][0]:g}, "
                      f"{result.data['scale'][0]:g}) (name families to fit another pair)", highlight=False)

    table = Table(title=f"symkl demo mle: {result.q} model fitted to {result.p} data "
                        f"({args.steps} steps, batch {args.batch})")
    for header in ("parameter", "data P", "start", "fitted", "optimum (exact KL)", "|fitted - optimum|"):
        table.add_column(header, justify="left" if header == "parameter" else "right")
    for name in result.final:
        optimum = result.optimum.get(name)
        error = max(abs(a - b) for a, b in zip(result.final[name], optimum)) if optimum else None
        table.add_row(name, _fmt(result.data[name]) if name in result.data else "",
                      _fmt(result.initial[name]), _fmt(result.final[name]),
                      _fmt(optimum) if optimum else "fixed", f"{error:.3g}" if error is not None else "")
    console.print(table)

    ok = abs(result.residual_z) <= Z_LIMIT
    checks = Table(title="checks", show_header=False)
    checks.add_column("quantity")
    checks.add_column("value", justify="right")
    checks.add_column("note")
    checks.add_row("mean of NLL - KL - H(P) over the run",
                   f"{result.residual_mean:+.5f} ± {result.residual_stderr:.5f}",
                   f"z = {result.residual_z:+.2f} (|z| <= {Z_LIMIT:g}: {_verdict(ok)})")
    checks.add_row("H(P)", f"{result.records[0].entropy:.6f}", result.entropy_method)
    checks.add_row("KL(P || Q) at the start", f"{result.records[0].kl:.6f}", "generated code")
    checks.add_row("KL(P || Q) fitted", f"{result.kl_final:.6f}", "generated code")
    checks.add_row("KL(P || Q) at the optimum", f"{result.kl_optimum:.6f}",
                   "L-BFGS on the generated KL (0 when Q can equal P)")
    console.print(checks)
    if not result.entropy_generated:
        console.print(f"note: H({result.p}) is not in the generated code; it was computed "
                      "numerically by the mpmath reference of symkl verify", highlight=False)
    _write("mle", args.out, mle.csv_rows(result), lambda: plots.mle_figure(result), command, console)
    return 0 if ok else EXIT_CHECK_FAILED


# -- modes ------------------------------------------------------------------------------------


def run_modes(args: argparse.Namespace) -> int:
    from rich.table import Table

    from symkl.demo import modes, plots

    result = modes.run(args.weights, args.locs, args.scales)
    command = _command("modes", weights=_show(args.weights), locs=_show(args.locs), scales=_show(args.scales))
    mixture = result.mixture
    sd = math.sqrt(mixture.variance)
    matched = (abs(result.forward.loc - mixture.mean) <= 1e-4 * sd
               and abs(result.forward.scale - sd) <= 1e-4 * sd)
    console = _console()
    table = Table(title="symkl demo modes: one Normal fitted to a Gaussian mixture")
    for header in ("fit", "mu", "sigma", "KL at the fit", "check"):
        table.add_column(header, justify="left" if header in ("fit", "check") else "right")
    f, r = result.forward, result.reverse
    table.add_row("forward KL(P || Q), mode-covering", _num5(f.loc), _num5(f.scale), _num5(f.kl),
                  f"moment matching: mean {_num5(mixture.mean)}, sd {_num5(sd)} {_verdict(matched)}")
    table.add_row("reverse KL(Q || P), mode-seeking", _num5(r.loc), _num5(r.scale), _num5(r.kl),
                  f"nearest mode at {result.nearest_mode:g}")
    console.print(table)
    console.print(f"H(P) of the mixture = {result.entropy:.6f} (trapezoidal quadrature); both fits "
                  f"started at mu = {result.start[0]:.4f}, sigma = {result.start[1]:.4f}", highlight=False)
    _write("modes", args.out, modes.csv_rows(result), lambda: plots.modes_figure(result), command, console)
    return 0 if matched else EXIT_CHECK_FAILED


# -- mc ---------------------------------------------------------------------------------------


def run_mc(args: argparse.Namespace) -> int:
    from rich.table import Table

    from symkl.cli import fixed_values
    from symkl.demo import mc, plots

    _check_device(args.device)
    p_params, q_params = fixed_values(args.p_param, "--p-param"), fixed_values(args.q_param, "--q-param")
    result = mc.run(args.p, args.q or args.p, p_params=p_params, q_params=q_params, max_n=args.max_n,
                    points=args.points, seed=args.seed, device=args.device)
    command = _command("mc", result.p, result.q, p_param=p_params, q_param=q_params, max_n=args.max_n,
                       points=args.points, seed=args.seed)
    console = _console()
    table = Table(title=f"symkl demo mc: KL({result.p} || {result.q}), exact {result.exact:.6g} (generated code)")
    for header in ("n", "estimate", "std error", "95 % band", "covers"):
        table.add_column(header, justify="right")
    every = max(1, len(result.estimates) // 8)  # about 8 rows; the plot and CSV have them all
    shown = sorted({*range(0, len(result.estimates), every), len(result.estimates) - 1})
    for e in (result.estimates[i] for i in shown):
        table.add_row(f"{e.n:,}", f"{e.mean:.6f}", f"{e.stderr:.2e}", f"[{e.band[0]:.5f}, {e.band[1]:.5f}]",
                      "yes" if e.covers(result.exact) else "no")
    console.print(table)
    z = (result.last.mean - result.exact) / result.last.stderr
    ok = abs(z) <= Z_LIMIT
    console.print(f"P: {result.p_params}; Q: {result.q_params}", highlight=False, markup=False)
    console.print(f"the 95 % band covers the exact value at {result.coverage:.0%} of {len(result.estimates)} "
                  f"sample sizes (expected about 95 %); at n = {result.last.n:,}: z = {z:+.2f} "
                  f"(|z| <= {Z_LIMIT:g}: {_verdict(ok)})", highlight=False)
    _write("mc", args.out, mc.csv_rows(result), lambda: plots.mc_figure(result), command, console)
    return 0 if ok else EXIT_CHECK_FAILED
