"""Canonical, textbook-like form of results.

SymPy's ``simplify`` produces forms nobody would print in a paper. symkl instead applies a
few predictable regroupings:

* logarithms with equal (or opposite) coefficients become one log-ratio:
  ``log s_q - log s_p -> log(s_q / s_p)``, ``-log(2)/2 - log(pi)/2 -> -log(2 pi)/2``;
* special functions (psi, ln Gamma, erf, exp) are collected by atom with factored coefficients;
* the remaining terms are grouped over a common symbolic denominator:
  ``s_p^2/(2 s_q^2) + (m_p - m_q)^2/(2 s_q^2) -> (s_p^2 + (m_p - m_q)^2) / (2 s_q^2)``.

Term order for display is handled by :mod:`symkl.printing`.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import product

import sympy as sp

from symkl.nodes import QuadForm

_SPECIAL = (
    sp.polygamma, sp.loggamma, sp.erf, sp.exp, sp.Trace, QuadForm, sp.Abs, sp.gamma,
    type(sp.EulerGamma),
)


def _distribute(term: sp.Expr) -> list[sp.Expr]:
    if isinstance(term, sp.Add) and not isinstance(term, sp.MatrixExpr):
        return [t for a in term.args for t in _distribute(a)]
    if isinstance(term, sp.Mul):
        choices = [_distribute(f) if isinstance(f, sp.Add) else [f] for f in term.args]
        return [sp.Mul(*combo) for combo in product(*choices)]
    return [term]


def expand_terms(expr: sp.Expr) -> sp.Expr:
    """Split logarithms and distribute products over sums in numerators only.

    Unlike ``sympy.expand`` this leaves powers such as ``(x - c)**2``, denominators and
    function arguments (``erf((m - c)/s)``) untouched.
    """
    return sp.Add(*_distribute(sp.expand_log(expr, force=True)))


def _split_atom(term: sp.Expr, kinds: tuple[type, ...]) -> tuple[sp.Expr, sp.Expr] | None:
    """(coefficient, atom) when ``term`` is ``coefficient * atom`` with exactly one atom of
    the given kinds and the coefficient free of such atoms."""
    factors = sp.Mul.make_args(term)
    atoms = [f for f in factors if isinstance(f, kinds)]
    if len(atoms) != 1:
        return None
    coeff = sp.Mul(*[f for f in factors if f is not atoms[0]])
    if coeff.has(*kinds):
        return None
    return coeff, atoms[0]


def _negative_terms(e: sp.Expr) -> int:
    return sum(1 for t in sp.Add.make_args(e) if t.could_extract_minus_sign())


def _signed(coeff: sp.Expr) -> tuple[int, sp.Expr]:
    """(sign, norm) with coeff = sign * norm and norm the more natural-looking of +-coeff:
    fewer negative terms, then a positive constant (1 - p rather than p - 1)."""
    neg = sp.expand(-coeff)
    a, b = _negative_terms(coeff), _negative_terms(neg)
    if a != b:
        return (1, coeff) if a < b else (-1, neg)
    const = coeff.as_coeff_Add()[0]
    if const != 0:
        return (1, coeff) if const > 0 else (-1, neg)
    return (-1, neg) if coeff.could_extract_minus_sign() else (1, coeff)


def _group_logs(log_coeffs: dict[sp.Expr, sp.Expr]) -> list[sp.Expr]:
    by_norm: dict[sp.Expr, list[tuple[int, sp.Expr]]] = defaultdict(list)
    for arg, coeff in log_coeffs.items():
        coeff = sp.factor_terms(coeff)
        if coeff == 0:
            continue
        sign, norm = _signed(coeff)
        by_norm[norm].append((sign, arg))
    out = []
    for norm, entries in by_norm.items():
        if len(entries) == 1:  # nothing to combine: keep the coefficient as derived
            sign, arg = entries[0]
            out.append(sign * norm * sp.log(arg))
            continue
        num = sp.Mul(*[a for s, a in entries if s > 0])
        den = sp.Mul(*[a for s, a in entries if s < 0])
        if num == 1 and den != 1:  # prefer -c log(den) to c log(1/den)
            out.append(-norm * sp.log(den))
        else:
            out.append(norm * sp.log(num / den))
    return out


def _group_atoms(atom_coeffs: dict[sp.Expr, sp.Expr]) -> list[sp.Expr]:
    """Atoms with equal or opposite coefficients share one factor: c*psi(a) - c*psi(b)
    becomes c*(psi(a) - psi(b))."""
    by_norm: dict[sp.Expr, list[tuple[sp.Expr, sp.Expr, int]]] = defaultdict(list)
    for atom, coeff in atom_coeffs.items():
        coeff = sp.factor_terms(coeff)
        if coeff == 0:
            continue
        sign, norm = _signed(coeff)
        by_norm[norm].append((coeff, atom, sign))
    return [
        (entries[0][0] * entries[0][1] if len(entries) == 1
         else norm * sp.Add(*[sign * atom for _, atom, sign in entries]))
        for norm, entries in by_norm.items()
    ]


def _group_by_denominator(terms: list[sp.Expr]) -> list[sp.Expr]:
    groups: dict[sp.Expr, list[sp.Expr]] = defaultdict(list)
    for t in terms:
        # Structural split (no together): (1/l - m)^2 / (2 s^2) keeps its numerator.
        factors = sp.Mul.make_args(t)
        den = sp.Mul(*[1 / f for f in factors if f.is_Pow and f.exp.is_negative])
        num = sp.Mul(*[f for f in factors if not (f.is_Pow and f.exp.is_negative)])
        coeff, rest = den.as_coeff_Mul()
        groups[rest].append(num / coeff)
    out = []
    for den, nums in groups.items():
        if den == 1:
            out.extend(nums)
        else:
            out.append((sp.together(sp.Add(*nums)) if len(nums) > 1 else nums[0]) / den)
    return out


def canonical(expr: sp.Expr) -> sp.Expr:
    """Regroup ``expr`` into the canonical display form (value unchanged)."""
    if expr.has(sp.oo) or isinstance(expr, sp.Piecewise):
        return expr
    constant = sp.S.Zero
    logs: dict[sp.Expr, sp.Expr] = defaultdict(lambda: sp.S.Zero)
    special: dict[sp.Expr, sp.Expr] = defaultdict(lambda: sp.S.Zero)
    sums: dict[tuple, sp.Expr] = defaultdict(lambda: sp.S.Zero)
    rest: list[sp.Expr] = []
    for term in sp.Add.make_args(expand_terms(expr)):
        if term.is_Number:
            constant += term
        elif (split := _split_atom(term, (sp.Sum,))) is not None and split[1].has(*split[1].variables):
            # Sums over the same index merge into one sum of canonical summands.
            coeff, s = split
            sums[s.limits] += coeff * s.function
        elif (split := _split_atom(term, (sp.log,))) is not None:
            logs[split[1].args[0]] += split[0]
        elif (split := _split_atom(term, _SPECIAL + (sp.Sum,))) is not None:
            special[split[1]] += split[0]
        else:
            rest.append(term)
    parts = _group_logs(logs)
    parts += _group_atoms(special)
    parts += _group_by_denominator(rest)
    parts += [sp.Sum(canonical(body), *limits) for limits, body in sums.items() if body != 0]
    return sp.Add(*parts) + constant
