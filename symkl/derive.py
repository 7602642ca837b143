"""The derivation engine: KL, entropy and cross-entropy by linearity of expectation.

For a quantity ``E_P[f(x)]`` (``f = log p - log q`` for KL, ``-log q`` for the cross-entropy,
``-log p`` for the entropy) the engine

1. decides the support condition (``supp P`` within ``supp Q``; otherwise +inf),
2. substitutes the declared log-densities,
3. expands the logarithms and collects ``f`` into ``c_0 + sum_j c_j g_j(x)``,
4. applies linearity of expectation,
5. replaces each ``E_P[g_j]`` by the family's known moment (:mod:`symkl.moments`),
6. puts the result into canonical form (:mod:`symkl.canonical`),

and checks every step (:mod:`symkl.checks`). No ``integrate`` is involved; a brute-force
integration is available separately as a cross-check (:mod:`symkl.crosscheck`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

import mpmath
import numpy as np
import sympy as sp

from symkl import distributions, mpeval, numeric
from symkl.canonical import canonical, expand_terms
from symkl.checks import check_equal, numeric_agreement, symbolic_zero
from symkl.derivation import (
    Check,
    CheckMethod,
    Conditions,
    Derivation,
    Identity,
    Step,
)
from symkl.errors import UnsupportedPairError
from symkl.family import DIM, INDEX, Family, Interval, Structure, VectorSupport
from symkl.moments import expectation
from symkl.nodes import CrossEntropy, Entropy, Expect, KL
from symkl.numeric import CHECK_DIM, Side

P_LABEL, Q_LABEL = sp.Symbol("P"), sp.Symbol("Q")
QUANTITIES = ("kl", "entropy", "cross_entropy")
_p_fn, _q_fn = sp.Function("p"), sp.Function("q")


# -- decomposition into basis functions -----------------------------------------------------


@dataclass
class Decomposition:
    """``constant + sum_j coeff_j * basis_j`` (inside a Sum over i for indexed families)."""

    constant: sp.Expr
    terms: dict[sp.Expr, sp.Expr]  # basis -> coefficient, insertion-ordered
    indexed: bool

    def assemble(self, per_basis: Mapping[sp.Expr, sp.Expr] | None = None) -> sp.Expr:
        """Rebuild, replacing each basis by ``per_basis[basis]`` (default: itself)."""
        body = sp.Add(
            *[c * (per_basis[b] if per_basis is not None else b) for b, c in self.terms.items()]
        )
        if self.indexed:
            body = sp.Sum(body, (INDEX, 0, DIM - 1))
        return self.constant + body


def _add_term(terms: dict[sp.Expr, sp.Expr], coeff: sp.Expr, basis: sp.Expr) -> None:
    terms[basis] = terms.get(basis, sp.S.Zero) + coeff


def decompose(f: sp.Expr, x: sp.Basic, structure: Structure) -> Decomposition:
    """Write ``f`` as ``c_0 + sum_j c_j g_j(x)``. Powers such as ``(x - c)**2`` and ``|x - c|``
    stay whole: they are basis functions with known expectations, and keeping them gives
    textbook groupings such as ``sigma_p^2 + (mu_p - mu_q)^2``."""
    constant = sp.S.Zero
    terms: dict[sp.Expr, sp.Expr] = {}
    indexed = structure is Structure.INDEXED
    xi = x[INDEX] if indexed else x
    for term in sp.Add.make_args(expand_terms(f)):
        if not term.has(x):
            constant += term
            continue
        if indexed:
            sums = [a for a in sp.Mul.make_args(term) if isinstance(a, sp.Sum)]
            if len(sums) != 1 or sums[0].limits != ((INDEX, 0, DIM - 1),):
                raise ValueError(f"cannot decompose {term}: expected one Sum over {INDEX}")
            outer = sp.Mul(*[a for a in sp.Mul.make_args(term) if a is not sums[0]])
            for inner in sp.Add.make_args(expand_terms(sums[0].function)):
                coeff, basis = inner.as_independent(xi, as_Add=False)
                _add_term(terms, outer * coeff, basis)
        else:
            coeff, basis = term.as_independent(x, as_Add=False)
            _add_term(terms, coeff, basis)
    terms = {b: sp.factor_terms(c) for b, c in terms.items() if c != 0}
    if not indexed and sp.S.One in terms:
        constant += terms.pop(sp.S.One)
    return Decomposition(constant, terms, indexed)


# -- sides, supports, points ----------------------------------------------------------------


def _support_condition(p: Side, q: Side) -> sp.Basic:
    """Condition for supp P to lie within supp Q (up to null sets)."""
    sp_, sq = p.family.support, q.family.support
    if p.family.name == q.family.name and sp_.contained_in is not None:
        return sp_.contained_in(p.symbols, q.symbols)
    if isinstance(sp_, Interval) and isinstance(sq, Interval):
        lo_p, hi_p = sp_.lower(p.symbols), sp_.upper(p.symbols)
        lo_q, hi_q = sq.lower(q.symbols), sq.upper(q.symbols)
        return sp.And(sp.Le(lo_q, lo_p), sp.Le(hi_p, hi_q))
    if isinstance(sp_, VectorSupport) and isinstance(sq, VectorSupport) and sp_.kind == sq.kind:
        return sp.true
    raise UnsupportedPairError(p.family.name, q.family.name, distributions.pairs())


def parameter_domains(side: Side) -> tuple[str, ...]:
    out = []
    for param in side.family.params:
        if param.name in side.fixed:
            out.append(f"{side.symbols[param.name]} = {side.fixed[param.name]} (fixed)")
        else:
            text = param.constraint.text
            if param.constraint.depends_on:  # "> low" -> "> low_q"
                text = text.replace(param.constraint.depends_on, str(side.symbols[param.constraint.depends_on]))
            out.append(f"{side.symbols[param.name]}: {text}")
    return tuple(out)


def sample_support_point(family: Family, values: Mapping[str, Any], rng: np.random.Generator, dim: int) -> Any:
    """A point of the support (for pointwise checks of integrand identities)."""
    if family.structure is Structure.MATRIX:
        return mpmath.matrix([numeric.to_mp(v) for v in rng.normal(size=dim)])
    if family.structure is Structure.INDEXED:
        kind = family.support.kind  # type: ignore[union-attr]
        if kind == "one-hot":
            return [mpmath.mpf(int(j == rng.integers(dim))) for j in range(dim)]
        if kind == "simplex":
            return numeric.to_mp(rng.dirichlet(np.ones(dim)))
        return numeric.to_mp(rng.normal(size=dim))
    assert isinstance(family.support, Interval)
    lo = numeric._bound(family.support.lower(values))
    hi = numeric._bound(family.support.upper(values))
    if family.support.discrete:
        top = int(hi) if hi != mpmath.inf else int(lo) + 12
        return mpmath.mpf(int(rng.integers(int(lo), top + 1)))
    if lo == mpmath.ninf:
        return numeric.to_mp(rng.normal(0, 3))
    if hi == mpmath.inf:
        return lo + numeric.to_mp(rng.exponential(2.0))
    return lo + (hi - lo) * numeric.to_mp(rng.uniform(0.01, 0.99))


class _Points:
    """Random parameter points (and x) for numeric checks of one derivation."""

    def __init__(self, p: Side, q: Side | None, x: sp.Basic):
        self.p, self.q, self.x = p, q, x
        self.dim = CHECK_DIM[p.family.structure]

    def params(self, rng: np.random.Generator) -> tuple[dict, dict[str, Any], dict[str, Any]]:
        # Steps hold for all parameter values; fixed values are substituted only at the
        # end, so every parameter (fixed or not) gets a random value here.
        env: dict[sp.Basic, Any] = {DIM: mpmath.mpf(self.dim)}
        values = []
        for side in (self.p, self.q):
            if side is None:
                values.append({})
                continue
            free = Side(side.family, side.symbols, {})
            v = numeric.sample_values(free, rng, self.dim)
            env.update(free.env(v))
            values.append(v)
        return env, values[0], values[1]

    def without_x(self, rng: np.random.Generator) -> dict:
        return self.params(rng)[0]

    def with_x(self, rng: np.random.Generator) -> dict:
        env, pv, _ = self.params(rng)
        env[self.x] = sample_support_point(self.p.family, pv, rng, self.dim)
        return env


def parameter_sampler(p: Side, q: Side | None):
    """Random parameter points (no x) for checking expressions of P's and Q's parameters."""
    return _Points(p, q, p.family.variable()).without_x


# -- moment checks ---------------------------------------------------------------------------


def _moment_check(
    basis: sp.Expr, value: sp.Expr, p: Side, x: sp.Basic, points: _Points, seed: int
) -> Check:
    """Check ``E_P[basis] = value`` against quadrature of P's density."""
    family = p.family
    kinks = [a.args[0] for a in basis.atoms(sp.Abs)]

    def quadrature(env: dict) -> Any:
        pv = {n: env[s] for n, s in p.symbols.items()}
        if family.structure is Structure.MATRIX:
            return numeric.gaussian_quadratic_expectation(
                pv["loc"], pv["covariance_matrix"], lambda xv: mpeval.evaluate(basis, {**env, x: xv})
            )
        if family.structure is Structure.INDEXED:
            i = int(env[INDEX])

            def h(xi: Any) -> Any:
                vec = [mpmath.mpf(0)] * points.dim
                vec[i] = xi
                return mpeval.evaluate(basis, {**env, x: vec})

            breaks = [mpeval.evaluate(sp.solve(k, x[INDEX])[0], env) for k in kinks]
            return numeric.coordinate_expectation(family, pv, i, h, breaks)
        breaks = [mpeval.evaluate(sp.solve(k, x)[0], env) for k in kinks]
        return numeric.scalar_expectation(
            family.name, pv, lambda xv: mpeval.evaluate(basis, {**env, x: xv}), breaks
        )

    def sampler(rng: np.random.Generator) -> dict:
        env = points.without_x(rng)
        if family.structure is Structure.INDEXED:
            env[INDEX] = mpmath.mpf(int(rng.integers(points.dim)))
        return env

    return numeric_agreement(
        quadrature, lambda env: mpeval.evaluate(value, env), sampler, seed,
        "quadrature of the density vs closed form; ",
    )


def _expectations_of(decomposition: Decomposition) -> dict[sp.Expr, sp.Expr]:
    """basis -> E_P[basis] (unevaluated), with E[1] = 1 written out."""
    return {b: (sp.S.One if b == 1 else Expect(b, P_LABEL)) for b in decomposition.terms}


def _linearity_check(integrand: sp.Expr, linear: sp.Expr, decomposition: Decomposition) -> Check:
    rebuilt = decomposition.assemble(_expectations_of(decomposition))
    ok = integrand == decomposition.assemble() and sp.expand(rebuilt - linear) == 0
    return Check(CheckMethod.STRUCTURAL, "E[c0 + sum c_j g_j] = c0 + sum c_j E[g_j] term by term", ok)


# -- the engine ------------------------------------------------------------------------------


def _lhs(quantity: str) -> sp.Expr:
    return {
        "kl": KL(P_LABEL, Q_LABEL),
        "entropy": Entropy(P_LABEL),
        "cross_entropy": CrossEntropy(P_LABEL, Q_LABEL),
    }[quantity]


def _integrand(quantity: str, log_p: sp.Expr, log_q: sp.Expr | None) -> tuple[sp.Expr, sp.Expr]:
    """(display form with p(x), q(x); explicit form) of the integrand."""
    x = sp.Symbol("x")
    if quantity == "kl":
        return sp.log(_p_fn(x)) - sp.log(_q_fn(x)), log_p - log_q
    if quantity == "cross_entropy":
        return -sp.log(_q_fn(x)), -log_q
    return -sp.log(_p_fn(x)), -log_p


def _fixed_substitution(side: Side) -> dict:
    """SymPy replacements for fixed parameters (elementwise for indexed families)."""
    out: dict = {}
    for name, value in side.fixed.items():
        sym = side.symbols[name]
        out[sym[INDEX] if side.family.structure is Structure.INDEXED else sym] = sp.sympify(value)
    return out


def _apply_fixed(expr: sp.Expr, sides: list[Side]) -> sp.Expr:
    expr = _substitute_fixed(expr, sides)
    # Sums whose summand became constant (sum_j 1 = k) are evaluated.
    return expr.replace(
        lambda e: isinstance(e, sp.Sum) and not (e.function.free_symbols & set(e.variables)),
        lambda e: e.doit(),
    )


def _substitute_fixed(expr: sp.Expr, sides: list[Side]) -> sp.Expr:
    for side in sides:
        subs = _fixed_substitution(side)
        if not subs:
            continue
        if side.family.structure is Structure.INDEXED:
            bases = {side.symbols[n]: sp.sympify(v) for n, v in side.fixed.items()}
            expr = expr.replace(
                lambda e: isinstance(e, sp.Indexed) and e.base in bases,
                lambda e: bases[e.base],
            )
        else:
            expr = expr.subs(subs)
    return expr


def run(quantity: str, p: Side, q: Side | None, seed: int = 0) -> Derivation:
    """Derive ``quantity`` for P (and Q). Prefer the cached API in :mod:`symkl.api`."""
    start = time.perf_counter()
    x = p.family.variable()
    lhs = _lhs(quantity)
    steps: list[Step] = []
    points = _Points(p, q, x)
    notes = list(p.family.conventions)

    if q is not None:
        condition = _support_condition(p, q)
        free_index = INDEX if condition.has(INDEX) else None
    else:
        condition, free_index = sp.true, None

    infinite_text = ""
    if condition is not sp.true:
        infinite_text = (
            f"supp P = {_support_text(p)} is not contained in supp Q = {_support_text(q)}: "
            "P puts mass where q = 0, so the integrand is +inf on a set of positive P-probability"
        )
    if condition is sp.false:
        steps.append(Step(lhs, sp.oo, f"support mismatch: {infinite_text}",
                          Check(CheckMethod.SYMBOLIC, "support containment evaluates to False")))
        return _finish(quantity, p, q, sp.oo, sp.oo, condition, infinite_text, free_index, notes,
                       steps, lhs, x, start)

    log_p = p.family.log_density(x, p.symbols)
    log_q = q.family.log_density(x, q.symbols) if q is not None else None
    display, f = _integrand(quantity, log_p, log_q)

    steps.append(Step(lhs, Expect(display, P_LABEL), "definition",
                      Check(CheckMethod.DEFINITION, "")))
    steps.append(Step(Expect(display, P_LABEL), Expect(f, P_LABEL),
                      "substitute the log-densities on supp P", Check(CheckMethod.DEFINITION, "declared densities")))

    decomposition = decompose(f, x, p.family.structure)
    collected = decomposition.assemble()
    if collected != f:  # SymPy may already have collected the substituted densities
        steps.append(Step(Expect(f, P_LABEL), Expect(collected, P_LABEL),
                          "expand the logarithms and collect the basis functions of x",
                          check_equal(f, collected, points.with_x, seed, "pointwise in x; ")))

    linear = decomposition.assemble(_expectations_of(decomposition))
    steps.append(Step(Expect(collected, P_LABEL), linear, "linearity of expectation",
                      _linearity_check(collected, linear, decomposition)))

    p_coordinate = p.family.coordinate(p.symbols)
    values: dict[sp.Expr, sp.Expr] = {}
    for k, basis in enumerate(decomposition.terms):
        moment = expectation(basis, x[INDEX] if decomposition.indexed else x, p.family, p_coordinate)
        values[basis] = moment.value
        if basis == 1 or basis.has(sp.Sum):
            continue
        steps.append(Step(Expect(basis, P_LABEL), moment.value, moment.source,
                          _moment_check(basis, moment.value, p, x, points, seed + 17 * (k + 1)),
                          chain=False))
        if "series" in moment.source:
            notes.append(f"E_P[{basis}] has no closed form; it is kept as a convergent series")

    substituted = decomposition.assemble(values)
    steps.append(Step(linear, substituted, "substitute the expectations",
                      Check(CheckMethod.STRUCTURAL, "each E_P[g_j] replaced by the fact stated above")))

    formula = canonical(substituted)
    steps.append(Step(substituted, formula, "simplify (combine logarithms, group terms)",
                      check_equal(substituted, formula, points.without_x, seed + 1)))

    if p.fixed or (q is not None and q.fixed):
        fixed_formula = canonical(_apply_fixed(formula, [p] + ([q] if q else [])))
        steps.append(Step(formula, fixed_formula, "substitute the fixed parameters",
                          check_equal(_apply_fixed(formula, [p] + ([q] if q else [])), fixed_formula,
                                      points.without_x, seed + 2)))
        formula = fixed_formula
        condition = _apply_fixed(condition, [p] + ([q] if q else []))

    return _finish(quantity, p, q, formula, None, condition, infinite_text, free_index, notes,
                   steps, lhs, x, start)


def _support_text(side: Side | None) -> str:
    assert side is not None
    return side.family.support.text


def _per_index_piecewise(formula: sp.Expr, condition: sp.Boolean, index: sp.Idx) -> sp.Expr:
    """Put the per-index finiteness condition inside the sum over that index.

    A condition on ``probs_q[i]`` holds or fails class by class, so the +inf branch
    belongs to the summand: one class with q_i = 0 < p_i makes its term, and so the
    sum, +inf, while the other classes keep their finite terms.
    """
    if not (isinstance(formula, sp.Sum) and formula.variables == [index]):
        raise NotImplementedError(f"per-index condition {condition} on a non-sum result {formula}")
    summand = sp.Piecewise((formula.function, condition), (sp.oo, True))
    return sp.Sum(summand, *formula.limits)


def _finish(quantity, p, q, formula, result, condition, infinite_text, free_index, notes,
            steps, lhs, x, start) -> Derivation:
    if result is None:
        if condition is sp.true:
            result = formula
        elif free_index is not None:
            result = _per_index_piecewise(formula, condition, free_index)
        else:
            result = sp.Piecewise((formula, condition), (sp.oo, True))
    symbols = {f"{n}_p": s for n, s in p.symbols.items()}
    fixed = {f"{n}_p": sp.sympify(v) for n, v in p.fixed.items()}
    domains = parameter_domains(p)
    if q is not None:
        symbols.update({f"{n}_q": s for n, s in q.symbols.items()})
        fixed.update({f"{n}_q": sp.sympify(v) for n, v in q.fixed.items()})
        domains += parameter_domains(q)
        if p.family.name != q.family.name:
            notes.extend(q.family.conventions)
    conditions = Conditions(
        domains=domains,
        finite_when=condition,
        infinite_when=infinite_text if condition is not sp.true else "",
        for_all_index=free_index,
        notes=tuple(dict.fromkeys(notes)),
    )
    return Derivation(
        quantity=quantity, p=p.family.name, q=q.family.name if q else None, symbols=symbols,
        fixed=fixed, result=result, formula=formula, conditions=conditions, steps=tuple(steps),
        lhs=lhs, variable=x, seconds=time.perf_counter() - start,
    )


# -- identities -------------------------------------------------------------------------------


def prove_identities(kl: Derivation, ce: Derivation, h: Derivation, p: Side, q: Side,
                     seed: int = 0) -> list[Identity]:
    """H(P, Q) - H(P) - KL(P || Q) = 0, and KL(P || P) = 0 for self-pairs."""
    out: list[Identity] = []
    points = _Points(p, q, kl.variable)
    if kl.conditions.never_finite:
        out.append(Identity("H(P, Q) = +inf = KL(P || Q): the same support condition makes both infinite",
                            Check(CheckMethod.SYMBOLIC, "identical support conditions",
                                  ce.conditions.finite_when == kl.conditions.finite_when)))
    else:
        gap = ce.formula - h.formula - kl.formula
        out.append(Identity("H(P, Q) - H(P) - KL(P || Q) = 0",
                            check_equal(gap, sp.S.Zero, points.without_x, seed + 3)))
    if p.family.name == q.family.name and not q.fixed and not p.fixed:
        same = {q.symbols[n]: p.symbols[n] for n in q.symbols}
        at_p = kl.formula.subs(same) if p.family.structure is not Structure.INDEXED else kl.formula.xreplace(same)
        check = (Check(CheckMethod.SYMBOLIC, "substituting Q := P gives 0") if symbolic_zero(at_p)
                 else check_equal(at_p, sp.S.Zero, points.without_x, seed + 4))
        out.append(Identity("KL(P || P) = 0", check))
    return out
