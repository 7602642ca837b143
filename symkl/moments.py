"""Expectations of basis functions under a family.

The derivation engine writes ``log p - log q`` as ``sum_j c_j * g_j(x)`` and asks this module
for ``E_P[g_j(x)]``. A basis function is classified into a *feature* ("mean", "variance",
"E_log", "E_abs", ...) and the family's moment source supplies it:

* exponential families: ``E[T] = grad_eta A`` and ``Cov(T) = Hessian_eta A`` computed from
  the log-partition function read off the declared log-density; moments of ``x`` when only
  ``log x`` is a statistic come from the moment-generating function of T,
  ``E[exp(s.T)] = exp(A(eta + s) - A(eta))``;
* special cases reuse their parent's moments; independent products their base family's;
* tabulated facts are stated with a reference and checked numerically wherever used.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

import sympy as sp

from symkl.family import (
    ExponentialFamily,
    Fact,
    Family,
    IndependentOf,
    SpecialCase,
    Tabulated,
)
from symkl.nodes import QuadForm

EXP_FAMILY = "exponential-family identity E[T] = grad A(eta), from the log-partition function"
EXP_FAMILY_COV = "exponential-family identity Cov(T) = Hessian A(eta)"
EXP_FAMILY_MGF = "moment-generating function of T: E[exp(s.T)] = exp(A(eta + s) - A(eta))"


class MissingMoment(LookupError):
    """The family has no known expectation for this basis function."""


@dataclass(frozen=True)
class Moment:
    """``E_P[basis] = value``, with the facts it used."""

    basis: sp.Expr
    value: sp.Expr
    source: str


def _registry() -> Mapping[str, Family]:
    from symkl.distributions import REGISTRY  # late import: families import this module's types

    return REGISTRY


# -- exponential-family derivation ---------------------------------------------------------


def _derive_exponential_family(family: Family, spec: ExponentialFamily) -> dict[str, Fact]:
    theta = family.symbols("e")
    x = family.variable()
    names = list(theta)
    log_p = sp.expand(sp.expand_log(family.log_density(x, theta), force=True))

    stats = {feature: make(x) for feature, make in spec.statistics.items()}
    features = list(stats)
    # Longer statistics first so that x**2 is collected before x.
    order = sorted(features, key=lambda f: -sp.count_ops(stats[f]))
    collected = sp.collect(log_p, [stats[f] for f in order], evaluate=False)
    eta = {f: sp.simplify(collected.get(stats[f], sp.S.Zero)) for f in features}
    rest = collected.get(sp.S.One, sp.S.Zero)
    c_theta, _base_measure = (rest.as_independent(x, as_Add=True) if rest != 0 else (0, 0))
    log_partition = -c_theta
    params = [theta[n] for n in names]

    if len(params) != len(features):
        raise ValueError(
            f"{family.name}: {len(features)} statistics for {len(params)} parameters; "
            "the exponential-family declaration must be minimal"
        )
    jac = sp.Matrix([[sp.diff(eta[f], t) for t in params] for f in features])
    grad = sp.Matrix([sp.diff(log_partition, t) for t in params])
    mean_t = (jac.T).LUsolve(grad).applyfunc(sp.simplify)
    expect = {f: mean_t[j] for j, f in enumerate(features)}

    derived: dict[str, sp.Expr] = {}
    sources: dict[str, str] = {}
    for f in features:
        if f in ("mean", "E_log", "E_log1m"):
            derived[f] = expect[f]
            sources[f] = EXP_FAMILY
    if "mean" in features:
        if "second" in features:
            derived["variance"] = sp.factor(sp.simplify(expect["second"] - expect["mean"] ** 2))
            sources["variance"] = EXP_FAMILY
        else:
            # Var(x) = d E[x] / d eta_x = sum_k dE[x]/dtheta_k * dtheta_k/deta_x
            dtheta_deta = jac.inv()
            j = features.index("mean")
            dmean = sp.Matrix([[sp.diff(expect["mean"], t) for t in params]])
            derived["variance"] = sp.factor(sp.simplify((dmean * dtheta_deta)[0, j]))
            sources["variance"] = EXP_FAMILY_COV
    elif "E_log" in features:
        # E[x^n] = E[exp(n log x)] = exp(A(eta + n e_log) - A(eta)).
        shifted = {n: sp.Symbol(f"{n}_shift", **family.parameter(n).constraint.assumptions)
                   for n in names}

        def raw_moment(power: int) -> sp.Expr:
            equations = [
                sp.Eq(eta[f].subs({theta[n]: shifted[n] for n in names}),
                      eta[f] + (power if f == "E_log" else 0))
                for f in features
            ]
            solution = sp.solve(equations, list(shifted.values()), dict=True)[0]
            a_shift = log_partition.subs({theta[n]: shifted[n] for n in names}).subs(solution)
            ratio = sp.exp(sp.expand(a_shift - log_partition))
            ratio = ratio.replace(sp.loggamma, lambda z: sp.log(sp.gamma(z)))
            return sp.factor(sp.gammasimp(sp.powsimp(sp.expand(ratio))))

        m1, m2 = raw_moment(1), raw_moment(2)
        derived["mean"] = m1
        derived["variance"] = sp.factor(sp.simplify(m2 - m1**2))
        sources["mean"] = sources["variance"] = EXP_FAMILY_MGF

    def fact(expr: sp.Expr, source: str) -> Fact:
        return Fact(lambda p, _e=expr: _e.subs({theta[n]: p[n] for n in names}, simultaneous=True),
                    source)

    facts = {f: fact(derived[f], sources[f]) for f in derived}
    facts.update(spec.extra)
    return facts


@lru_cache(maxsize=None)
def facts_for(name: str) -> dict[str, Fact]:
    """All known expectation facts of a family, resolved through its moment source."""
    family = _registry()[name]
    source = family.moments
    if isinstance(source, ExponentialFamily):
        return _derive_exponential_family(family, source)
    if isinstance(source, Tabulated):
        return dict(source.facts)
    if isinstance(source, IndependentOf):
        base = facts_for(source.base)
        return {k: Fact(f.value, f"{f.source} (per coordinate, {source.base})") for k, f in base.items()}
    if isinstance(source, SpecialCase):
        parent = facts_for(source.parent)
        title = _registry()[source.parent].title
        fixed = dict(source.fixed)
        return {
            k: Fact(lambda p, *a, _f=f: _f.value({**p, **fixed}, *a),
                    f"{f.source}; special case of {title} with "
                    + ", ".join(f"{n} = {v}" for n, v in fixed.items()))
            for k, f in parent.items()
        }
    raise TypeError(f"unknown moment source {source!r}")


# -- classification of basis functions -----------------------------------------------------


def _offset(expr: sp.Expr, x: sp.Basic) -> sp.Expr | None:
    """c if expr == x - c with c free of x, else None."""
    c = sp.expand(x - expr)
    return None if c.has(x) else c


def expectation(
    basis: sp.Expr, x: sp.Basic, family: Family, params: Mapping[str, sp.Expr]
) -> Moment:
    """``E[basis]`` under ``family`` with (coordinate) parameters ``params``."""
    facts = facts_for(family.name)

    def need(feature: str) -> Fact:
        if feature not in facts:
            raise MissingMoment(
                f"{family.title} has no known {feature} (needed for E[{basis}])"
            )
        return facts[feature]

    def single(feature: str, *args: sp.Expr) -> Moment:
        f = need(feature)
        return Moment(basis, f.value(params, *args), f.source)

    if basis == 1:
        return Moment(basis, sp.S.One, "E[1] = 1")
    if basis == x:
        return single("mean")
    if isinstance(basis, sp.Pow) and basis.exp == 2:
        c = _offset(basis.base, x)
        if c is None:
            c = _offset(-basis.base, x)
        if c is not None:
            mean, var = need("mean"), need("variance")
            m = mean.value(params)
            value = var.value(params) + (sp.S.Zero if sp.expand(m - c) == 0 else (m - c) ** 2)
            src = var.source if mean.source == var.source else f"{var.source}; {mean.source}"
            return Moment(basis, value, f"E[(x - c)^2] = Var(x) + (E[x] - c)^2; {src}")
    if isinstance(basis, sp.log):
        arg = basis.args[0]
        if arg == x:
            return single("E_log")
        if sp.expand(arg - (1 - x)) == 0:
            return single("E_log1m")
    if isinstance(basis, sp.Abs):
        c = _offset(basis.args[0], x)
        if c is None:  # |c - x| = |x - c|
            c = _offset(-basis.args[0], x)
        if c is not None:
            return single("E_abs", c)
    if isinstance(basis, sp.loggamma) and sp.expand(basis.args[0] - x - 1) == 0:
        return single("E_lgamma1p")
    if isinstance(basis, QuadForm):
        v, a = basis.args
        c = sp.simplify(x - v) if isinstance(v, sp.MatrixExpr) else None
        if c is not None and not c.has(x):
            return single("E_quadform", c, a)
    raise MissingMoment(f"no rule for E[{basis}] under {family.title}")

