"""Stable rewrites: turn a derived closed form into a sum of non-negative Bregman terms.

Near P = Q a KL is a small difference of large terms (``log s_q - log s_p + s_p^2/(2 s_q^2)
- 1/2``), and evaluating it as derived loses every digit. But a KL between members of one
exponential family *is* a Bregman divergence of the log-partition function, and the derived
expression contains its pieces: for a convex generator f with ``f(Y) - f(X) - f'(X)(Y - X)``
spread over several terms, this module finds the pieces and replaces them by one node
``c * B_f(X, Y - X)`` (:mod:`symkl.codegen.nodes`), whose kernel computes it without
cancellation. ``Y - X`` itself is formed as differences of like parameters
(``(s_p - s_q)(s_p + s_q)``, never ``s_p^2 - s_q^2``), so it is exact where it matters.

The rules know generators, not families:

* ``lnGamma`` (``loggamma(Y) - loggamma(X) - psi(X)(Y - X)``: Gamma, Beta, Dirichlet),
* ``y log y`` and ``-log y`` on powers ``n = +-1, +-2`` of log arguments (Poisson, Bernoulli,
  Categorical, Exponential, Normal, Laplace ...),
* ``exp`` (``c (exp(Z) - 1 - Z)``: Laplace, log-variance parametrisations),
* a leftover ``c (log Y - log X)`` becomes ``c log1p((Y - X)/X)`` (Uniform).

A candidate is accepted only when it removes its atoms from the expression, the best one
(fewest remaining terms, non-negative coefficient) wins, and the whole rewrite is checked
against the original at random points at 30 digits, like every derivation step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

import sympy as sp

from symkl.canonical import canonical, expand_terms
from symkl.codegen.nodes import (
    Bregman, ExpBregman, IfLessEqual, LgammaBregman, LgammaResidualBregman, Log1p, NeglogBregman,
    NeglogdetBregman, PoissonEntropy, ProductDifference, XlogxBregman, to_elementary,
)
from symkl.family import INDEX2
from symkl.nodes import log_factorial_series

def _expand(expr: sp.Expr) -> sp.Expr:
    """``sympy.expand`` that keeps exp(a - b) whole (it would split it into exp(a) exp(-b))."""
    return sp.expand(expr, power_exp=False)


#: Powers tried for log-generator candidates: log s with s^2 in the rest (Normal) etc.
POWERS = (1, -1, 2, -2)


@dataclass(frozen=True)
class Sides:
    """How to go from a P-side expression to its Q-side partner (and back)."""

    swap: Mapping[sp.Basic, sp.Basic]  # loc_p <-> loc_q, both directions
    fixed: Mapping[sp.Basic, sp.Basic]  # fixed parameter symbol -> value
    p_symbols: frozenset
    q_symbols: frozenset

    def partner(self, expr: sp.Expr) -> sp.Expr:
        return expr.xreplace(dict(self.swap)).xreplace(dict(self.fixed))

    def side(self, expr: sp.Expr) -> str | None:
        """"p" or "q" if ``expr`` involves parameters of one side only."""
        names = {s for s in _parameter_atoms(expr)}
        has_p, has_q = bool(names & self.p_symbols), bool(names & self.q_symbols)
        if has_p == has_q:
            return None
        return "p" if has_p else "q"


def _parameter_atoms(expr: sp.Expr) -> set:
    atoms = set(expr.free_symbols)
    atoms |= {i.base.label for i in expr.atoms(sp.Indexed)}
    return atoms


def _label(obj: sp.Basic) -> sp.Basic:
    return obj.label if isinstance(obj, sp.IndexedBase) else obj


def sides_for(symbols: Mapping[str, sp.Basic], fixed: Mapping[str, sp.Basic]) -> Sides:
    swap: dict[sp.Basic, sp.Basic] = {}
    for name, sym in symbols.items():
        if name.endswith("_p") and (other := symbols.get(name[:-2] + "_q")) is not None:
            swap[sym], swap[other] = other, sym
    fixed_map = {symbols[n]: v for n, v in fixed.items() if n in symbols}
    fixed_map.update({_label(symbols[n]): v for n, v in fixed.items() if n in symbols})
    return Sides(
        swap=swap,
        fixed=fixed_map,
        p_symbols=frozenset(_label(s) for n, s in symbols.items() if n.endswith("_p")),
        q_symbols=frozenset(_label(s) for n, s in symbols.items() if n.endswith("_q")),
    )


# -- differences of like parameters ----------------------------------------------------------------


def difference(y: sp.Expr, x: sp.Expr, sides: Sides) -> sp.Expr:
    """``y - x`` as a sum of differences of partner terms: ``(a_q - a_p) + (b_q - b_p)``.

    Near P = Q each difference is exact in floating point (Sterbenz), where ``y - x`` formed
    from rounded ``y`` and ``x`` would keep only their rounding errors.
    """
    if isinstance(y, sp.Sum) and isinstance(x, sp.Sum) and y.limits == x.limits:
        return sp.Sum(difference(y.function, x.function, sides), *y.limits)
    terms = list(sp.Add.make_args(_expand(y - x)))
    out: list[sp.Expr] = []
    while terms:
        t = terms.pop(0)
        partner = -sides.partner(t)
        if partner != t and partner in terms:
            terms.remove(partner)
            out.append(sp.factor(t + partner))
        else:
            out.append(t)
    if len(out) == 1:
        return sp.factor(out[0])
    # Unevaluated: the grouping (a_q - a_p) + (b_q - b_p) is the point, and the code
    # printer keeps nested sums in parentheses.
    return sp.Add(*out, evaluate=False)


def _location_pairs(expr: sp.Expr, sides: Sides) -> list[tuple[sp.Expr, sp.Expr]]:
    """(a_p, a_q) pairs of real, not positive parameters (locations) occurring in ``expr``,
    as the objects that occur (``loc_p[i]`` for indexed families)."""
    pairs = []
    for atom in sorted(expr.atoms(sp.Symbol, sp.Indexed), key=sp.default_sort_key):
        label = atom.base.label if isinstance(atom, sp.Indexed) else atom
        base = atom.base if isinstance(atom, sp.Indexed) else atom
        if label not in sides.p_symbols or atom.is_positive or not atom.is_real:
            continue
        partner = sides.swap.get(base, sides.swap.get(label))
        if partner is None:
            continue
        q_atom = partner[atom.indices] if isinstance(atom, sp.Indexed) else partner
        if expr.has(q_atom):
            pairs.append((atom, q_atom))
    return pairs


def in_location_differences(expr: sp.Expr, sides: Sides) -> sp.Expr:
    """A polynomial in paired locations rewritten in their differences where the Q
    location then cancels: ``m_p^2 - 2 m_p m_q + m_q^2 -> (m_p - m_q)^2``,
    ``m_p/s - m_q/s -> (m_p - m_q)/s``. Expanded, such a polynomial cancels
    catastrophically when |m| >> |m_p - m_q| (Normal || Laplace at m = 7.5, s = 0.03:
    ~150 ULP); in differences it is exact to a few ULP."""
    for a_p, a_q in _location_pairs(expr, sides):
        d = sp.Dummy("d")
        shifted = _expand(expr.xreplace({a_p: a_q + d}))
        if not shifted.has(a_q):
            expr = sp.factor(shifted).xreplace({d: a_p - a_q})
    return expr


def _differences_inside(expr: sp.Expr, sides: Sides) -> sp.Expr:
    """:func:`in_location_differences` on the arguments of exp, erf and erfc."""
    return expr.replace(lambda e: isinstance(e, (sp.exp, sp.erf, sp.erfc)),
                        lambda e: e.func(in_location_differences(e.args[0], sides)))


def _sorted_atoms(expr: sp.Expr, kind: type) -> list[sp.Expr]:
    # Sorted, not set order: the generated code must not depend on hash seeds.
    return sorted(expr.atoms(kind), key=sp.default_sort_key)


# -- candidates ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    node: Bregman
    anchor: sp.Expr  # the atom whose coefficient fixes c
    removes: tuple[sp.Expr, ...]  # atoms that must be gone from the rest


def _lgamma_candidates(expr: sp.Expr, sides: Sides) -> Iterable[Candidate]:
    for atom in _sorted_atoms(expr, sp.loggamma):
        x = atom.args[0]
        if sides.side(x) != "p":  # the base point is where psi is evaluated: P's side
            continue
        y = sides.partner(x)
        yield Candidate(LgammaBregman(x, difference(y, x, sides)), atom,
                        (atom, sp.loggamma(y), sp.polygamma(0, x)))


def _log_candidates(expr: sp.Expr, sides: Sides) -> Iterable[Candidate]:
    for atom in _sorted_atoms(expr, sp.log):
        u = atom.args[0]
        if sides.side(u) is None or u.has(sp.Determinant):
            continue
        v = sides.partner(u)
        if v == u:
            continue
        for a, b in ((u, v), (v, u)):  # a: the argument y, b: the base point x
            for n in POWERS:
                y, x = a**n, b**n
                yield Candidate(NeglogBregman(x, difference(y, x, sides)), atom, (atom, sp.log(v)))
            yield Candidate(XlogxBregman(b, difference(a, b, sides)), atom, (atom, sp.log(v)))


def _logdet_candidates(expr: sp.Expr, sides: Sides) -> Iterable[Candidate]:
    for atom in _sorted_atoms(expr, sp.log):
        det = atom.args[0]
        if not isinstance(det, sp.Determinant) or sides.side(det) != "p":
            continue
        b = det.args[0]
        a = sides.partner(b)
        yield Candidate(NeglogdetBregman(a, b), atom, (atom, sp.log(sp.Determinant(a))))


def _exp_candidates(expr: sp.Expr, sides: Sides) -> Iterable[Candidate]:
    for atom in _sorted_atoms(expr, sp.exp):
        z = atom.args[0]
        yield Candidate(ExpBregman(sp.S.Zero, z), atom, (atom,))


RULES: tuple[Callable[[sp.Expr, Sides], Iterable[Candidate]], ...] = (
    _lgamma_candidates, _logdet_candidates, _log_candidates, _exp_candidates,
)


def _coefficient(expr: sp.Expr, atom: sp.Expr) -> sp.Expr:
    """The coefficient of ``atom`` where it occurs as a plain factor (not inside a power)."""
    out = []
    for term in sp.Add.make_args(expr):
        free, dependent = term.as_independent(atom, as_Add=False)
        if dependent == atom:
            out.append(free)
    return sp.Add(*out)


_TRANSCENDENTAL = (sp.log, sp.loggamma, sp.polygamma, sp.exp, sp.Trace, sp.Determinant)


def _atoms(expr: sp.Expr) -> set[sp.Expr]:
    return set(expr.atoms(*_TRANSCENDENTAL))


def _apply(expr: sp.Expr, cand: Candidate) -> tuple[sp.Expr, sp.Expr] | None:
    """(c, rest) with ``expr = c * node + rest`` and rest free of the candidate's atoms."""
    if not isinstance(cand.node, Bregman):  # d = 0: the partner is the same expression
        return None
    elementary = _pull_sums(sp.expand_log(cand.node.elementary(), force=True))
    own = _coefficient(elementary, cand.anchor)
    if own == 0:
        return None
    c = sp.cancel(_coefficient(expr, cand.anchor) / own)
    if c == 0 or c.has(*cand.removes) or c.has(sp.log, sp.loggamma, sp.polygamma, sp.exp):
        return None
    rest = _expand(expand_terms(expr - c * elementary))
    if any(rest.has(a) for a in cand.removes) or not _atoms(rest) < _atoms(expr):
        return None  # it must remove its atoms and introduce none
    return c, rest


def _terms(expr: sp.Expr) -> int:
    """Terms left in the expanded rest: each is a potential cancellation partner."""
    return len(sp.Add.make_args(_expand(expr)))


def _parameter_terms(expr: sp.Expr) -> int:
    """Terms of the expanded expression that involve parameters (constants do not cancel)."""
    return sum(1 for t in sp.Add.make_args(_expand(expr)) if t.free_symbols)


def _size(expr: sp.Expr) -> int:
    """Terms left once the algebraic part is factored (products of differences count once)."""
    return len(sp.Add.make_args(_tidy(expr)))


def _bregman_terms(expr: sp.Expr, sides: Sides) -> tuple[list[sp.Expr], sp.Expr]:
    """Pull Bregman terms out of ``expr`` (an expanded sum) until no rule applies."""
    # exp(a) exp(-b) -> exp(a - b): one atom per exponent, and no overflow of exp(a) alone.
    expr = sp.Add(*[sp.powsimp(t, combine="exp") for t in sp.Add.make_args(expr)])
    found: list[sp.Expr] = []
    while True:
        best = None
        before = _terms(expr)
        for rule in RULES:
            for order, cand in enumerate(rule(expr, sides)):
                applied = _apply(expr, cand)
                if applied is None:
                    continue
                c, rest = applied
                if _terms(rest) > before:  # it spread terms instead of absorbing them
                    continue
                # Prefer: a non-negative coefficient, the fewest terms left, the simplest node.
                key = (not c.is_nonnegative, _terms(rest), sp.count_ops(cand.node), order)
                if best is None or key < best[0]:
                    best = (key, c, cand.node, rest)
            if best is not None:  # generators in order: lnGamma before the logs they contain
                break
        if best is None:
            return found, expr
        _, c, node, expr = best
        found.append(sp.factor(c) * node)


def _fold_neglog(found: list[sp.Expr], rest: sp.Expr) -> tuple[list[sp.Expr], sp.Expr]:
    """``c B_{-log}(x, d) - c d/x = -c log1p(d/x)``: no Bregman where the linear part stays."""
    out = []
    for term in found:
        c, node = term.as_independent(NeglogBregman, as_Add=False)
        if isinstance(node, NeglogBregman):
            x, d = node.args
            linear = _expand(c * to_elementary(d) / x)
            folded = _expand(rest + linear)
            # The linear part cancels against the rest (fewer terms, expanded or factored):
            # the Bregman form would only re-introduce that cancellation (Normal || Laplace).
            if folded == 0 or _size(folded) < _size(rest) or _parameter_terms(folded) < _parameter_terms(rest):
                rest = folded
                out.append(-c * Log1p(d / x))
                continue
        out.append(term)
    return out, rest


def _product_difference(expr: sp.Expr) -> sp.Expr:
    """``y - x`` over a common denominator with a numerator ``a b - c e`` kept whole as a
    :class:`ProductDifference` (exact products), where it has that shape."""
    num, den = sp.fraction(sp.together(expr))
    terms = sp.Add.make_args(sp.expand(num))
    if len(terms) == 2:
        (s1, f1), (s2, f2) = (t.as_coeff_Mul() for t in terms)
        pairs = [sp.Mul.make_args(f) for f in (f1, f2)]
        if {s1, s2} == {1, -1} and all(len(p) == 2 for p in pairs):
            (a, b), (c, e) = pairs if s1 == 1 else pairs[::-1]
            return ProductDifference(a, b, c, e) / den
    return expr


def _merged_xlogx(expr: sp.Expr) -> list[sp.Expr] | None:
    """``expr`` as a sum of ``B_{y log y}(X_i, Y_i - X_i) = Y_i log(Y_i/X_i) - Y_i + X_i``, if
    it is one: the Y_i are the parameters whose logarithm has the coefficient Y_i, and every
    logarithm's coefficient is a sum of +-Y_i (which fixes the product points X_i)."""
    expr = _expand(sp.expand_log(expr, force=True))
    logs = _sorted_atoms(expr, sp.log)
    if expr.has(sp.Sum) or not logs:
        return None
    coefficients = {atom: _coefficient(expr, atom) for atom in logs}
    ys = [atom.args[0] for atom in logs if coefficients[atom] == atom.args[0] and atom.args[0].is_positive]
    if not ys:
        return None
    signs: dict[sp.Expr, list] = {}
    for atom, c in coefficients.items():
        poly = sp.Poly(c, *ys) if c.free_symbols else None
        if poly is None or poly.total_degree() != 1 or poly.coeff_monomial(1) != 0:
            return None
        signs[atom] = [poly.coeff_monomial(y) for y in ys]
        if any(r not in (-1, 0, 1) for r in signs[atom]):
            return None
    terms = []
    for i, y in enumerate(ys):
        # y log(y/x): log y carries y from y log y (and r - 1 more from x), the others -r
        x = sp.Mul(*[atom.args[0] ** (int(atom == sp.log(y)) - r[i]) for atom, r in signs.items()])
        terms.append((x, y))
    bregman = sum(y * sp.log(y) - y * sp.log(x) - y + x for x, y in terms)
    if sp.cancel(sp.together(_expand(sp.expand_log(expr - bregman, force=True)))) != 0:
        return None
    return [XlogxBregman(x, _product_difference(y - x)) for x, y in terms]


def _residual_lgamma(found: list[sp.Expr], rest: sp.Expr) -> tuple[list[sp.Expr], sp.Expr]:
    """``B_lnGamma`` terms and ``y log y`` terms -> ``B_phi`` terms and ``B_{y log y}`` at
    product points.

    For large arguments B_lnGamma is mostly its own ``y log y`` divergence: a Gamma KL
    written around it subtracts a cross term of the same size (concentrations 1479 vs 274:
    ~10**3 ulp), a Beta KL subtracts B_lnGamma of the total from those of the parts. With
    ``B_lnGamma = B_phi + B_{y log y}`` (:class:`LgammaResidualBregman`, ~1/(2x) of the
    size) the ``y log y`` parts merge with the rest into divergences at product points
    (Gamma: ``X = a_p b_q / b_p``, ``Y = a_q``; Beta: ``X = a_p (a_q + b_q)/(a_p + b_p)``,
    ``Y = a_q`` and the same for b), their ``Y - X`` from exact products. Applied only
    where that merge succeeds."""
    lgammas = [t for t in found if t.has(LgammaBregman)]
    if not lgammas:
        return found, rest
    parts = [t.as_independent(LgammaBregman, as_Add=False) for t in lgammas]
    if not all(isinstance(node, LgammaBregman) for _, node in parts):
        return found, rest
    others = [t for t in found if not t.has(LgammaBregman)]
    merging = [t for t in others if t.has(XlogxBregman)]
    xlogx_parts = sp.Add(*[c * XlogxBregman(*node.args) for c, node in parts], *merging)
    merged = _merged_xlogx(to_elementary(xlogx_parts) + rest)
    if merged is None:
        return found, rest
    residual = [c * LgammaResidualBregman(*node.args) for c, node in parts]
    return [*residual, *merged, *(t for t in others if not t.has(XlogxBregman))], sp.S.Zero


def _over_index(total: sp.Expr, limits: tuple) -> sp.Expr | None:
    """The summand of ``total`` (a Sum) written with the index of ``limits``, if their
    ranges agree."""
    if not isinstance(total, sp.Sum) or len(total.limits) != 1 or total.limits[0][1:] != limits[0][1:]:
        return None
    return total.function.xreplace({total.variables[0]: limits[0][0]})


def _residual_lgamma_of_total(found: list[sp.Expr], parts: list[sp.Expr]) -> tuple[list[sp.Expr], list[sp.Expr]]:
    """``sum_i B_lnGamma(x_i, d_i) - B_lnGamma(X, D)`` with ``X = sum_i x_i``, ``D = sum_i d_i``
    (Dirichlet) -> ``sum_i [B_phi(x_i, d_i) + B_{y log y}(x_i Y/X, (d_i X - x_i D)/X)] - B_phi(X, D)``.

    The sum-shaped twin of :func:`_residual_lgamma`: ``sum_i y_i log(y_i/x_i) - Y log(Y/X)``
    (the ``y log y`` parts; their linear terms cancel) is ``sum_i B_{y log y}(x_i Y/X, y_i)``,
    Y times the KL between the normalised parameters. Its increment ``(y_i X - x_i Y)/X`` comes
    from exact products, of the differences ``d_i X - x_i D`` where ``sum_j |d_j| <= Y`` (near
    P = Q the totals' roundings would swamp it) and of the totals ``y_i X - x_i Y`` elsewhere
    (where Q's total is much smaller than P's, D = Y - X has lost Y's digits)."""
    if len(found) != 1 or len(parts) != 1:
        return found, parts
    c, total = found[0].as_independent(LgammaBregman, as_Add=False)
    part = parts[0]
    if c != -1 or not isinstance(total, LgammaBregman) or not isinstance(part.function, LgammaBregman):
        return found, parts
    x, d = part.function.args
    big_x, big_d = total.args
    if _over_index(big_x, part.limits) != x or _over_index(big_d, part.limits) != d:
        return found, parts
    y = _expand(x + d)
    (index, lo, hi), = part.limits
    big_y, moved = (sp.Sum(e.xreplace({index: INDEX2}), (INDEX2, lo, hi)) for e in (y, sp.Abs(d)))
    increment = IfLessEqual(moved, big_y, ProductDifference(d, big_x, x, big_d), ProductDifference(y, big_x, x, big_y))
    body = LgammaResidualBregman(x, d) + XlogxBregman(x * big_y / big_x, increment / big_x)
    return [-LgammaResidualBregman(big_x, big_d)], [sp.Sum(body, *part.limits)]


def _log1p_terms(expr: sp.Expr, sides: Sides) -> tuple[list[sp.Expr], sp.Expr]:
    """``c log(Y) - c log(X)`` with X, Y partners -> ``c log1p((Y - X)/X)``."""
    found: list[sp.Expr] = []
    for atom in sorted(expr.atoms(sp.log), key=sp.default_sort_key):
        x = atom.args[0]
        if sides.side(x) != "p" or not expr.has(atom):
            continue
        y = sides.partner(x)
        c = -_coefficient(expr, atom)
        if c == 0 or c.has(sp.log) or _expand(_coefficient(expr, sp.log(y)) - c) != 0:
            continue
        found.append(c * Log1p(difference(y, x, sides) / x))
        expr = _expand(expr - c * (sp.log(y) - atom))
    return found, expr


def _tidy(rest: sp.Expr, sides: Sides | None = None) -> sp.Expr:
    """Algebraic leftovers as products of differences: (m_p - m_q)^2/(2 s_q^2); with
    ``sides``, polynomials in paired locations (also inside exp and erf) in differences."""
    if rest == 0:
        return rest
    differences = (lambda e: in_location_differences(e, sides)) if sides else (lambda e: e)
    if sides:
        rest = _differences_inside(rest, sides)
    plain: list[sp.Expr] = []
    by_factor: dict[sp.Expr, list[sp.Expr]] = {}
    other: list[sp.Expr] = []
    for t in sp.Add.make_args(rest):
        if not t.has(sp.Function, sp.Sum, sp.MatrixExpr):
            plain.append(t)
            continue
        special = sp.Mul(*[f for f in sp.Mul.make_args(t) if f.has(sp.Function, sp.Sum, sp.MatrixExpr)])
        if isinstance(special, sp.exp):  # c(x) exp(z): factor the polynomial c
            by_factor.setdefault(special, []).append(t / special)
        else:
            other.append(t)
    grouped = [differences(sp.factor(sp.Add(*coeffs))) * f for f, coeffs in by_factor.items()]
    other_sum = canonical(sp.Add(*other)).replace(
        lambda e: isinstance(e, sp.Sum), lambda e: sp.Sum(_tidy(e.function, sides), *e.limits))
    return differences(sp.factor(sp.Add(*plain))) + sp.Add(*grouped) + other_sum


def _split_sums(expr: sp.Expr) -> tuple[dict[tuple, sp.Expr], sp.Expr]:
    """Summands of the sums over i, merged per index range, and the terms outside.

    Sums of a bare parameter (``sum_j a_p[j]``, a total) stay outside, renamed to the index j
    so that ``psi(sum_j a_p[j])`` and ``sum_i a_p[i]`` are recognised as the same total.
    """
    summands: dict[tuple, sp.Expr] = {}
    outside: list[sp.Expr] = []
    for term in sp.Add.make_args(_pull_sums(expr)):
        sums = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.Sum)]
        if len(sums) == 1 and not isinstance(sums[0].function, sp.Indexed):
            s = sums[0]
            summands[s.limits] = summands.get(s.limits, sp.S.Zero) + (term / s) * s.function
        else:
            outside.append(term)
    return summands, sp.Add(*outside)


def _pull_sums(expr: sp.Expr) -> sp.Expr:
    """Distribute sums over their terms and pull index-free factors out of them."""

    def split(s: sp.Sum) -> sp.Expr:
        var = s.variables[0]
        out = sp.S.Zero
        for t in sp.Add.make_args(_expand(expand_terms(s.function))):
            free = sp.Mul(*[f for f in sp.Mul.make_args(t) if not f.has(var)])
            body = t / free
            if isinstance(body, sp.Indexed):  # a total: canonical index j
                out += free * sp.Sum(body.xreplace({var: INDEX2}), (INDEX2, *s.limits[0][1:]))
            else:
                out += free * sp.Sum(body, *s.limits)
        return out

    return _expand(expand_terms(expr).replace(lambda e: isinstance(e, sp.Sum), split))


def _event_totals(rest: sp.Expr, totals: Mapping[sp.Basic, sp.Expr]) -> sp.Expr:
    """Sums of a simplex parameter over its event axis are its declared total (1)."""
    def total(s: sp.Expr) -> sp.Expr:
        body = s.function
        if isinstance(body, sp.Indexed) and body.base.label in totals:
            return totals[body.base.label]
        return s

    return _expand(rest.replace(lambda e: isinstance(e, sp.Sum), total))


def stabilise(expr: sp.Expr, sides: Sides, totals: Mapping[sp.Basic, sp.Expr] | None = None) -> sp.Expr:
    """The stable form of a finite closed form (no Piecewise)."""
    totals = dict(totals or {})
    summands, outside = _split_sums(expr)
    parts: list[sp.Expr] = []
    for limits, body in summands.items():
        inner, rest_inner = _bregman_terms(_expand(body), sides)
        inner, rest_inner = _fold_neglog(inner, rest_inner)
        logs, rest_inner = _log1p_terms(rest_inner, sides)
        if inner or logs:
            parts.append(sp.Sum(sp.Add(*inner, *logs), *limits))
        outside += _pull_sums(sp.Sum(rest_inner, *limits)) if rest_inner != 0 else 0
    outside = _event_totals(_expand(outside), totals)
    found, rest = _bregman_terms(outside, sides)
    found, rest = _fold_neglog(found, rest)
    found, rest = _residual_lgamma(found, rest)
    if rest == 0:
        found, parts = _residual_lgamma_of_total(found, parts)
    logs, rest = _log1p_terms(rest, sides)
    terms = [t for t in (*found, *logs, *parts, _tidy(rest, sides)) if t != 0]
    return sp.Add(*terms, evaluate=False) if len(terms) > 1 else (terms[0] if terms else sp.S.Zero)


def _series_rate(expr: sp.Basic) -> sp.Expr | None:
    """``rate`` if ``expr`` is the series E[log X!] under Poisson(rate), else None."""
    if not isinstance(expr, sp.Sum) or len(expr.limits) != 1 or expr.limits[0][1:] != (0, sp.oo):
        return None
    n = expr.limits[0][0]
    return next((r for r in expr.function.free_symbols - {n} if expr == log_factorial_series(r, n)), None)


def with_poisson_entropy(expr: sp.Expr) -> sp.Expr:
    """Write E[log X!] as ``PoissonEntropy(r) - r + r log r``: the entropy's cancelling
    ``r log r`` terms then cancel symbolically, and what remains of a cross-entropy is a
    ``y log y`` Bregman divergence for the rules below."""
    def replacement(series: sp.Sum) -> sp.Expr:
        rate = _series_rate(series)
        return PoissonEntropy(rate) - rate + rate * sp.log(rate)

    return expr.replace(lambda e: _series_rate(e) is not None, replacement)


def stabilise_result(result: sp.Expr, sides: Sides, totals: Mapping[sp.Basic, sp.Expr]) -> sp.Expr:
    """Stable form of a derivation's ``result``, keeping its +inf branches."""
    if result is sp.oo or not result.free_symbols:
        return result
    result = with_poisson_entropy(result)
    if isinstance(result, sp.Piecewise):
        (finite, cond), *others = result.args
        return sp.Piecewise((stabilise(finite, sides, totals), cond), *others)
    if isinstance(result, sp.Sum) and isinstance(result.function, sp.Piecewise):
        (finite, cond), *others = result.function.args
        stable = stabilise(sp.Sum(finite, *result.limits), sides, totals)
        # The per-class +inf branch stays inside the sum: split off the summed part.
        if isinstance(stable, sp.Sum) and stable.limits == result.limits:
            return sp.Sum(sp.Piecewise((stable.function, cond), *others), *result.limits)
        return sp.Sum(sp.Piecewise((finite, cond), *others), *result.limits)
    return stabilise(result, sides, totals)


__all__ = ["Sides", "difference", "sides_for", "stabilise", "stabilise_result"]
