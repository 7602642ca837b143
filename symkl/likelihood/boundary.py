"""Non-smooth models, where the stationary equations are not the whole story.

* Laplace: E_data|x - mu| is not differentiable where P_data has an atom; its subgradient in
  mu is P(x < mu) - P(x > mu), which contains 0 exactly at a median. The scale then solves
  a smooth equation: b* = E_data|x - mu*|.
* Uniform: KL(P_data || U(low, high)) is +inf unless supp P_data lies in [low, high], and
  on that region L = -log(high - low) increases as the interval shrinks. There is no
  stationary point: the optimum is the smallest interval that holds the data's support
  (the sample minimum and maximum).

The checks are numeric on random samples, straight from the density: the sample
log-likelihood at the estimate beats every nearby value (or is stationary where smooth).
"""

from __future__ import annotations

from typing import Any

import mpmath
import numpy as np
import sympy as sp

from symkl import mpeval
from symkl.checks import DPS
from symkl.derivation import Check, CheckMethod, Derivation, Step
from symkl.likelihood import engine
from symkl.likelihood.engine import P_DATA, Q_THETA, Problem, q_theta
from symkl.likelihood.nodes import ArgMax, ArgMin, Estimate, Optimal, SampleAverage, StationaryEquation
from symkl.nodes import Entropy, Expect, KL
from symkl.numeric import Side

median = sp.Function("median")
ess_inf = sp.Function("ess_inf")
ess_sup = sp.Function("ess_sup")
X_N = sp.Symbol("x_n", real=True)
sample_median, sample_min, sample_max = (sp.Function("median_n")(X_N), sp.Function("min_n")(X_N),
                                         sp.Function("max_n")(X_N))
#: Relative step of the "nearby values" in the local-optimality checks.
NUDGE = mpmath.mpf("1e-6")


def _opening_steps(problem: Problem, log_q: sp.Expr) -> list[Step]:
    x = sp.Symbol("x")
    kl, log_display = KL(P_DATA, Q_THETA), Expect(sp.log(q_theta(x)), P_DATA)
    return [
        Step(kl, -Entropy(P_DATA) - log_display, "definition of KL; linearity of expectation",
             Check(CheckMethod.DEFINITION, "")),
        Step(-Entropy(P_DATA) - log_display, -Entropy(P_DATA) - problem.objective,
             "substitute the model's log-density; linearity of expectation",
             Check(CheckMethod.STRUCTURAL, "term by term")),
        Step(ArgMin(kl, problem.unknowns), ArgMax(log_display, problem.unknowns),
             "H(P_data) does not depend on theta, so minimising the KL maximises the expected "
             "log-likelihood", Check(CheckMethod.STRUCTURAL, "-H(P_data) is free of theta"),
             chain=False),
    ]


def _sample_loglik(problem: Problem, log_q: sp.Expr, env: dict, values: dict) -> Any:
    local = {**env, **values}
    return mpmath.fsum(mpeval.evaluate(log_q, {**local, problem.x: xn}) for xn in env[engine._SAMPLE])


def _local_maximum_check(problem: Problem, log_q: sp.Expr, estimate, seed: int, what: str) -> Check:
    """On 3 random samples: the sample log-likelihood at the estimate is at least its value
    after nudging each parameter either way (a local maximum, smooth or not)."""
    rng = np.random.default_rng(seed)
    worst = mpmath.inf
    with mpmath.workdps(DPS):
        for _ in range(3):
            env = problem.sampler(rng)
            values = estimate(env)
            best = _sample_loglik(problem, log_q, env, values)
            for sym, v in values.items():
                for sign in (-1, 1):
                    moved = {**values, sym: v + sign * NUDGE * max(1, abs(v))}
                    try:
                        other = _sample_loglik(problem, log_q, env, moved)
                    except (ValueError, ZeroDivisionError):
                        other = mpmath.ninf
                    worst = min(worst, best - other)
    return Check(CheckMethod.NUMERIC, f"{what}: on 3 random samples the sample log-likelihood at the "
                 f"estimate exceeds its value at every nudged parameter (smallest margin "
                 f"{mpmath.nstr(worst, 3)})", bool(worst > 0))


def _sample(env: dict) -> list:
    return sorted(env[engine._SAMPLE])


def laplace_steps(model: Side, problem: Problem, log_q: sp.Expr, start: float, seed: int) -> Derivation:
    loc, scale = model.symbols["loc"], model.symbols["scale"]
    free = problem.theta
    steps = _opening_steps(problem, log_q)
    log_display = Expect(sp.log(q_theta(sp.Symbol("x"))), P_DATA)
    notes = ["non-smooth in loc: E_data|x - loc| has subgradient P(x < loc) - P(x > loc) in loc, "
             "which contains 0 exactly at a median of P_data (not unique when the median is an "
             "interval, e.g. an even sample: any point between the middle observations)"]
    optimum: dict[str, sp.Expr] = {}
    if "loc_q" in free:
        steps.append(Step(StationaryEquation(log_display, loc),
                          (sp.Function("P_data")(sp.Symbol("x") > loc) - sp.Function("P_data")(sp.Symbol("x") < loc)) / scale,
                          "non-smooth: the derivative of E_data|x - loc| is P(x < loc) - P(x > loc) "
                          "where P_data has no atom at loc (a subgradient otherwise)",
                          Check(CheckMethod.DEFINITION, "d|x - loc|/dloc = -sign(x - loc)"), chain=False))
        optimum["loc_q"] = median(P_DATA)
    loc_star = optimum.get("loc_q", model.fixed.get("loc", loc))
    if "scale_q" in free:
        grad = sp.diff(problem.objective, scale)
        steps.append(Step(StationaryEquation(log_display, scale), sp.simplify(grad),
                          "stationary condition in scale (smooth)",
                          engine.numeric_derivative_check(problem.objective, grad, scale, problem, seed + 5),
                          chain=False))
        optimum["scale_q"] = Expect(sp.Abs(problem.x - loc_star), P_DATA)
    check = _local_maximum_check(problem, log_q, _laplace_estimate(problem, loc_star), seed + 80,
                                 "sample median and mean absolute deviation (P_data empirical)")
    for name, value in optimum.items():
        steps.append(Step(Optimal(free[name]), value, "solve: a median for loc, then the mean "
                          "absolute deviation from it for scale", check, chain=False))
    estimator = {n: v.xreplace({median(P_DATA): sample_median}).replace(
        lambda e: isinstance(e, Expect), lambda e: SampleAverage(e.args[0].xreplace({median(P_DATA): sample_median}), problem.x))
        for n, v in optimum.items()}

    steps.append(Step(log_display, SampleAverage(log_q, problem.x), "sample version: p_data is the "
                      "empirical distribution", Check(CheckMethod.DEFINITION, ""), chain=False))
    for name, value in estimator.items():
        steps.append(Step(Estimate(free[name]), value, "maximum-likelihood estimator (odd N: the "
                          "middle observation)", check, chain=False))
    return engine.finish(model, None, problem, optimum, estimator, {}, steps, notes, start, sp.true, "")


def _laplace_estimate(problem: Problem, loc_star: sp.Expr):
    """The estimate on a sample: the middle observation (odd N), then the mean absolute
    deviation from it (or from the fixed loc)."""
    loc, scale = problem.model.symbols["loc"], problem.model.symbols["scale"]
    free = problem.theta

    def estimate(env: dict) -> dict:
        xs = _sample(env)
        m = xs[len(xs) // 2] if "loc_q" in free else mpeval.evaluate(sp.sympify(loc_star), env)
        out = {loc: m} if "loc_q" in free else {}
        if "scale_q" in free:
            out[scale] = mpmath.fsum(abs(v - m) for v in xs) / len(xs)
        return out

    return estimate


def uniform_steps(model: Side, problem: Problem, log_q: sp.Expr, start: float, seed: int) -> Derivation:
    low, high = model.symbols["low"], model.symbols["high"]
    free = problem.theta
    steps = _opening_steps(problem, log_q)
    log_display = Expect(sp.log(q_theta(sp.Symbol("x"))), P_DATA)
    finite_when = sp.And(sp.Le(low, ess_inf(P_DATA)), sp.Le(ess_sup(P_DATA), high))
    infinite = ("supp P_data is not inside [low, high]: P_data puts mass where q = 0, so "
                "KL = +inf and the log-likelihood is -inf")
    notes = ["no stationary point: on the finite region L = -log(high - low) grows as the interval "
             "shrinks, so the optimum is on the boundary: the smallest interval holding supp P_data"]
    for name, var in free.items():
        grad = sp.diff(problem.objective, var)
        steps.append(Step(StationaryEquation(log_display, var), grad,
                          "never 0 (sign fixed by high > low): no interior optimum",
                          engine.numeric_derivative_check(problem.objective, grad, var, problem, seed + 5),
                          chain=False))
    optimum = {}
    if "low_q" in free:
        optimum["low_q"] = ess_inf(P_DATA)
    if "high_q" in free:
        optimum["high_q"] = ess_sup(P_DATA)
    estimator = {n: {"low_q": sample_min, "high_q": sample_max}[n] for n in optimum}

    def estimate(env: dict) -> dict:
        xs = _sample(env)
        out = {}
        if "low_q" in free:
            out[low] = xs[0]
        if "high_q" in free:
            out[high] = xs[-1]
        return out

    check = _uniform_check(problem, log_q, estimate, seed + 90)
    for name, value in optimum.items():
        steps.append(Step(Optimal(free[name]), value, "boundary optimum: the ends of supp P_data",
                          check, chain=False))

    steps.append(Step(log_display, SampleAverage(log_q, problem.x), "sample version: p_data is the "
                      "empirical distribution (the log-likelihood is -inf if an x_n is outside [low, high])",
                      Check(CheckMethod.DEFINITION, ""), chain=False))
    for name, value in estimator.items():
        steps.append(Step(Estimate(free[name]), value, "maximum-likelihood estimator: sample minimum / maximum",
                          check, chain=False))
    return engine.finish(model, None, problem, optimum, estimator, {}, steps, notes, start,
                         finite_when, infinite)


def _uniform_check(problem: Problem, log_q: sp.Expr, estimate, seed: int) -> Check:
    """Widening the interval lowers the sample log-likelihood; narrowing it drops an
    observation outside (log-likelihood -inf)."""
    rng = np.random.default_rng(seed)
    ok, margin = True, mpmath.inf
    with mpmath.workdps(DPS):
        for _ in range(3):
            env = problem.sampler(rng)
            xs = _sample(env)
            values = estimate(env)
            best = _sample_loglik(problem, log_q, env, values)
            wider = {s: v + (-1 if v == xs[0] else 1) * NUDGE for s, v in values.items()}
            margin = min(margin, best - _sample_loglik(problem, log_q, env, wider))
            ok &= bool(xs[0] >= values.get(problem.model.symbols["low"], xs[0])
                       and xs[-1] <= values.get(problem.model.symbols["high"], xs[-1]))
    return Check(CheckMethod.NUMERIC, "on 3 random samples: [min, max] holds every observation and "
                 f"widening it lowers the sample log-likelihood (smallest margin {mpmath.nstr(margin, 3)})",
                 bool(ok and margin > 0))


def uniform_with_data(model: Side, data: Side, problem: Problem, ce: Derivation, steps: list[Step],
                      notes: list[str], start: float, seed: int, generic) -> Derivation:
    """Uniform model, catalogue data: the optimum is the data family's support."""
    estimator = generic.estimator if generic is not None else None
    if ce.conditions.never_finite:
        notes.append(f"no optimum: {ce.conditions.infinite_when}; every Uniform has KL = +inf")
        return engine.finish(model, data, problem, None, estimator, {}, steps, notes, start,
                             ce.conditions.finite_when, ce.conditions.infinite_when)
    support = data.family.support
    ends = {"low_q": support.lower(data.symbols), "high_q": support.upper(data.symbols)}
    fixed = {n: sp.sympify(v) for n, v in data.fixed.items()}
    optimum = {n: sp.sympify(ends[n]).subs({data.symbols[k]: v for k, v in fixed.items()})
               for n in problem.theta}
    notes.append("no stationary point: the optimum is the smallest interval holding supp P_data")
    for name, value in optimum.items():
        steps.append(Step(Optimal(problem.theta[name]), value,
                          f"boundary optimum: the end of supp {data.family.title} = {support.text}",
                          Check(CheckMethod.STRUCTURAL, "L = -log(high - low) on the finite region, "
                                "monotone in each end"), chain=False))
    return engine.finish(model, data, problem, optimum, estimator, {}, steps, notes, start,
                         ce.conditions.finite_when, ce.conditions.infinite_when)
