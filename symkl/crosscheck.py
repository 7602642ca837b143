"""Brute-force cross-check: integrate (or sum) the densities with SymPy, under a time limit.

The derivation engine never calls ``integrate``; this module does, as an *independent*
second route to the same result. SymPy's integrator is slow (seconds to minutes) and often
returns unevaluated or Piecewise output, so it runs in a child process with a wall-clock
limit, its outcome is recorded on the derivation, and it never blocks or fails a derivation.

Scalar families only: symbolic integration over a symbolic dimension k is out of reach.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from symkl import distributions, mpeval, numeric
from symkl.derivation import CrossCheck, Derivation
from symkl.family import Interval, Structure


def _integrand(d: Derivation) -> tuple[sp.Expr, sp.Symbol, Interval]:
    fam_p = distributions.get(d.p)
    x = fam_p.variable()
    sym_p = {n: d.symbols[f"{n}_p"] for n in fam_p.param_names}
    log_p = fam_p.log_density(x, sym_p)
    if d.quantity == "entropy":
        f = -log_p
    else:
        fam_q = distributions.get(d.q)  # type: ignore[arg-type]
        log_q = fam_q.log_density(x, {n: d.symbols[f"{n}_q"] for n in fam_q.param_names})
        f = -log_q if d.quantity == "cross_entropy" else log_p - log_q
    assert isinstance(fam_p.support, Interval)
    return sp.exp(log_p) * f, x, fam_p.support


def _brute_force(d: Derivation) -> sp.Expr:
    integrand, x, support = _integrand(d)
    sym_p = {n[:-2]: s for n, s in d.symbols.items() if n.endswith("_p")}
    lo, hi = support.lower(sym_p), support.upper(sym_p)
    if support.discrete:
        return sp.summation(integrand, (x, lo, hi))
    return sp.integrate(integrand, (x, lo, hi), conds="none")


def _child(d: Derivation, queue: Any) -> None:
    try:
        queue.put(("ok", _brute_force(d)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent as the outcome
        queue.put(("failed", f"{type(exc).__name__}: {exc}"))


def _agrees(d: Derivation, value: sp.Expr, points: int = 3) -> tuple[bool, str]:
    """Compare the brute-force value with the derived formula at random points (20 digits)."""
    rng = np.random.default_rng(7)
    worst = mpmath.mpf(0)
    with mpmath.workdps(30):
        for _ in range(points):
            env: dict = {}
            for suffix, name in (("p", d.p), ("q", d.q)):
                if name is None:
                    continue
                fam = distributions.get(name)
                raw = fam.sample_parameters(rng)
                env.update({d.symbols[f"{n}_{suffix}"]: numeric.to_mp(v) for n, v in raw.items()})
            if not d.conditions.always_finite and not mpeval.evaluate(d.conditions.finite_when, env):
                continue
            expected = mpeval.evaluate(d.formula, env)
            subs = {s: sp.Float(v, 30) for s, v in env.items()}
            got = sp.N(value.subs(subs), 25)
            if not got.is_number:
                return False, f"brute-force result did not evaluate to a number: {got}"
            gap = abs(mpmath.mpf(str(sp.re(got))) - expected) / max(1, abs(expected))
            worst = max(worst, gap)
    return worst < mpmath.mpf("1e-15"), f"max relative gap {mpmath.nstr(worst, 2)}"


def crosscheck(d: Derivation, timeout: float = 30.0) -> CrossCheck:
    """Run the brute-force route for ``d`` within ``timeout`` seconds and record the outcome
    on ``d.brute_force``. Never raises for a failed or slow integration."""
    start = time.perf_counter()
    if distributions.get(d.p).structure is not Structure.SCALAR:
        outcome = CrossCheck("not run", 0.0, "multivariate: no brute-force route over symbolic k")
    elif d.conditions.never_finite:
        outcome = CrossCheck("not run", 0.0, "the quantity is +inf by the support condition")
    else:
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
        queue = ctx.Queue()
        child = ctx.Process(target=_child, args=(d, queue), daemon=True)
        child.start()
        child.join(timeout)
        elapsed = time.perf_counter() - start
        if child.is_alive():
            child.terminate()
            child.join()
            outcome = CrossCheck("timeout", elapsed, f"integrate did not finish in {timeout:g} s")
        else:
            status, payload = queue.get() if not queue.empty() else ("failed", "no result")
            if status != "ok":
                outcome = CrossCheck("failed", elapsed, payload)
            else:
                ok, detail = _agrees(d, payload)
                outcome = CrossCheck("agrees" if ok else "disagrees", elapsed, detail)
    d.brute_force = outcome
    return outcome
