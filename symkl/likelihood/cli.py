"""``symkl mle``: the maximum-likelihood equivalence for a model family, on the command line.

    symkl mle normal                                   # generic data: sample mean and variance
    symkl mle normal --data normal --data-param loc=2 --data-param scale=1 --fix scale=1
    symkl mle normal --data gamma --format latex        # mu* = a/b, sigma*^2 = a/b^2
    symkl mle gamma --steps                             # no closed form: the digamma equation

The module stays light: ``add_parser`` uses argparse only; the handler imports the engine.
"""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    from symkl.cli import parse_assignment  # argparse-level helper, no heavy imports

    parser = commands.add_parser(
        "mle", help="derive the maximum-likelihood equivalence for a model family",
        description="Derive argmin_theta KL(P_data || Q_theta) = argmax_theta E_data[log q_theta]: "
                    "the stationary equations, the optimum where SymPy can solve them, and the "
                    "sample estimator, every step checked.",
    )
    parser.add_argument("model", metavar="MODEL", help="model family Q_theta (name or alias, e.g. normal)")
    parser.add_argument("--data", metavar="FAMILY", default=None,
                        help="data family P_data (default: any distribution, moments kept as symbols)")
    parser.add_argument("--data-param", metavar="NAME=VALUE", type=parse_assignment, action="append",
                        default=[], help="fix a parameter of the data family (repeatable)")
    parser.add_argument("--fix", metavar="NAME=VALUE", type=parse_assignment, action="append",
                        default=[], help="fix a model parameter to a number (repeatable)")
    parser.add_argument("--format", choices=("text", "latex", "markdown"), default="text",
                        help="output format (default: text)")
    parser.add_argument("--steps", action="store_true", help="show every step and its check")
    parser.add_argument("--no-cache", action="store_true",
                        help="derive afresh instead of reading the on-disk cache")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from symkl.cli import EXIT_OK, UsageError, fixed_values, render
    from symkl.likelihood import mle

    if args.data_param and args.data is None:
        raise UsageError("--data-param needs --data FAMILY (generic data has no parameters)")
    d = mle(args.model, args.data, fix=fixed_values(args.fix, "--fix"),
            data_params=fixed_values(args.data_param, "--data-param"), cache=not args.no_cache)
    print(render(d, args.format, args.steps))
    if args.format == "text":
        print(summary(d))
    return EXIT_OK


def summary(d) -> str:  # noqa: ANN001 - an MLEDerivation
    """The optimum and the estimator, one line each (text format)."""
    from symkl.printing import to_text

    lines = []
    if d.optimum is not None:
        lines.append("optimum: " + ", ".join(f"{n}* = {to_text(v)}" for n, v in d.optimum.items()))
    else:
        lines.append("optimum: no closed form (see the notes)")
    if d.estimator is not None:
        lines.append("estimator: " + ", ".join(f"hat({n}) = {to_text(v)}" for n, v in d.estimator.items()))
    return "\n".join(lines)
