"""Checking derivation steps: symbolically when SymPy can decide, else numerically.

Numeric checks evaluate both sides with :mod:`symkl.mpeval` at 30 significant digits at
random points drawn from the declared constraints (and from the support for x).
Expectations are checked against quadrature of the density (:mod:`symkl.numeric`).
"""

from __future__ import annotations

from typing import Any, Callable

import mpmath
import numpy as np
import sympy as sp

from symkl import mpeval
from symkl.derivation import Check, CheckMethod

DPS = 30
POINTS = 3
#: Agreement required of a numeric check, relative to max(1, |lhs|, |rhs|).
TOLERANCE_DIGITS = DPS - 5
#: Gaps below this are rounding noise of the DPS-digit evaluation: reported as a bound, since
#: their digits change with incidental details (measured: 4.9e-31 on one installation and
#: 3.9e-31 on another for the same Dirichlet identity), and the committed derivation
#: documents must be the same wherever they are exported.
NOISE_FLOOR = mpmath.mpf(10) ** (-(DPS - 3))

EnvSampler = Callable[[np.random.Generator], dict[sp.Basic, Any]]


def symbolic_zero(diff: sp.Expr) -> bool:
    """Cheap, sound attempts to show ``diff == 0``; False means 'undecided', not 'nonzero'."""
    if diff == 0:
        return True
    try:
        expanded = sp.expand(sp.expand_log(diff, force=True))
        if expanded == 0:
            return True
        return sp.expand(sp.gammasimp(sp.expand_func(expanded))) == 0
    except Exception:  # noqa: BLE001 - any failure only means "undecided"
        return False


def _relative_gap(a: Any, b: Any) -> Any:
    if a == b:  # covers matching infinities
        return mpmath.mpf(0)
    return abs(a - b) / max(mpmath.mpf(1), abs(a), abs(b))


def numeric_agreement(
    evaluate_lhs: Callable[[dict], Any],
    evaluate_rhs: Callable[[dict], Any],
    sampler: EnvSampler,
    seed: int,
    what: str,
) -> Check:
    rng = np.random.default_rng(seed)
    worst = mpmath.mpf(0)
    with mpmath.workdps(DPS):
        for _ in range(POINTS):
            env = sampler(rng)
            a, b = evaluate_lhs(env), evaluate_rhs(env)
            gap = _relative_gap(a, b)
            if not mpmath.isfinite(gap):
                worst = mpmath.inf
                break
            worst = max(worst, gap)
    passed = worst <= mpmath.mpf(10) ** (-TOLERANCE_DIGITS)
    return Check(
        CheckMethod.NUMERIC,
        f"{what}mpmath at {DPS} digits, {POINTS} random points: max relative gap {format_gap(worst)}",
        passed,
    )


def format_gap(gap: Any) -> str:
    """``gap`` to 2 digits, or the bound ``< 1e-27`` where it is rounding noise (0 stays 0.0)."""
    if 0 < gap < NOISE_FLOOR:
        return f"< {mpmath.nstr(NOISE_FLOOR, 1)}"
    return mpmath.nstr(gap, 2)


def check_equal(lhs: sp.Expr, rhs: sp.Expr, sampler: EnvSampler, seed: int, what: str = "") -> Check:
    """``lhs == rhs`` as expressions of the parameters (and x)."""
    if symbolic_zero(lhs - rhs):
        return Check(CheckMethod.SYMBOLIC, "SymPy reduces lhs - rhs to 0")
    return numeric_agreement(
        lambda env: mpeval.evaluate(lhs, env), lambda env: mpeval.evaluate(rhs, env), sampler, seed, what
    )
