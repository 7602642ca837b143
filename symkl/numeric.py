"""High-precision numeric ground truth: parameter points and expectations by quadrature.

Used to check derivation steps that SymPy cannot decide, and by the tests as the
independent reference. Expectations are computed from the *densities* (never from a
closed form): mpmath quadrature split at kinks and support edges for continuous scalars,
exact or convergent sums for discrete ones, 1-D quadrature over a declared coordinate
marginal for indexed families, and exact Gauss-Hermite cubature for Gaussian quadratic forms.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Mapping, Sequence

import mpmath
import numpy as np
import sympy as sp

from symkl import mpeval
from symkl.family import Family, Interval, Structure
from symkl.distributions import REGISTRY

#: Event dimension used when a symbolic k must be made concrete.
CHECK_DIM = {Structure.INDEXED: 3, Structure.MATRIX: 2, Structure.SCALAR: 1}


#: Significant bits kept of parameters drawn for a derivation's numeric checks. The samplers
#: use numpy's exp and BLAS products, whose last bits differ between CPUs (AVX2 and AVX-512
#: code paths): a fresh export on a Zen machine printed "< 1e-27" where the committed
#: derivations/ (exported on another CPU) said "0.0". Rounded to 32 bits, the points are the
#: same everywhere (but for a value within 2^-52 of a 32-bit rounding boundary, ~1e-6 per
#: value), so the documents that print the checks' gaps are reproducible byte for byte.
PORTABLE_BITS = 32


def to_mp(value: Any, bits: int | None = None) -> Any:
    """Exact mpmath image of a float / array (every binary digit kept), or rounded to
    ``bits`` significant bits (to nearest)."""
    if bits is not None:
        with mpmath.workprec(bits):
            return to_mp(value)
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return mpmath.mpf(float(arr))
    if arr.ndim == 1:
        return [mpmath.mpf(float(v)) for v in arr]
    return mpmath.matrix([[mpmath.mpf(float(v)) for v in row] for row in arr])


@dataclass(frozen=True)
class Side:
    """One distribution of a derivation: its family, symbols and fixed values."""

    family: Family
    symbols: Mapping[str, sp.Basic]
    fixed: Mapping[str, sp.Expr]

    def env(self, values: Mapping[str, Any]) -> dict[sp.Basic, Any]:
        return {self.symbols[n]: v for n, v in values.items() if n not in self.fixed}

    def numeric(self, values: Mapping[str, Any], dim: int) -> dict[str, Any]:
        """All parameter values, with fixed ones filled in (broadcast for vectors)."""
        out = dict(values)
        for name, value in self.fixed.items():
            v = mpeval.evaluate(sp.sympify(value), {})
            if self.family.structure is Structure.INDEXED:
                v = [v] * dim
            elif self.family.structure is Structure.MATRIX:
                raise NotImplementedError("fixing matrix parameters is not supported")
            out[name] = v
        return out


def sample_values(side: Side, rng: np.random.Generator, dim: int) -> dict[str, Any]:
    """Parameter values for ``side`` drawn from its constraints, the same on every machine
    (rounded to PORTABLE_BITS), exactly on the simplex where one is declared."""
    raw = side.family.sample_parameters(rng, dim=dim)
    out = {n: to_mp(v, PORTABLE_BITS) for n, v in raw.items() if n not in side.fixed}
    if side.family.structure is Structure.MATRIX:  # vectors are k x 1 matrices there
        out = {n: mpmath.matrix(v) if isinstance(v, list) else v for n, v in out.items()}
    for name in out:
        total = side.family.parameter(name).constraint.event_total
        if total is not None:  # exactly on the simplex at working precision, not to 1e-16
            s = mpmath.fsum(out[name])
            out[name] = [v * total / s for v in out[name]]
    return out


# -- expectations ---------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _log_density_fn(name: str) -> tuple[Callable[..., Any], tuple[str, ...]]:
    family = REGISTRY[name]
    syms = family.symbols("n")
    x = family.variable()
    order = tuple(syms)
    fn = sp.lambdify([x, *[syms[n] for n in order]], family.log_density(x, syms), modules="mpmath")
    return fn, order


def _bound(value: Any) -> Any:
    return mpeval.evaluate(value, {}) if isinstance(value, sp.Basic) else value


def scalar_expectation(
    name: str, values: Mapping[str, Any], h: Callable[[Any], Any], kinks: Sequence[Any] = ()
) -> Any:
    """E[h(x)] for a scalar family, from its density."""
    family = REGISTRY[name]
    assert isinstance(family.support, Interval)
    fn, order = _log_density_fn(name)
    args = [values[n] for n in order]
    lo = _bound(family.support.lower(values))
    hi = _bound(family.support.upper(values))

    def weight(x: Any) -> Any:
        return mpmath.exp(fn(x, *args))

    if family.support.discrete:
        def term(n: Any) -> Any:
            w = weight(n)
            return mpmath.mpf(0) if w == 0 else w * h(n)
        if hi == mpmath.inf:
            return mpmath.nsum(term, [int(lo), mpmath.inf])
        return mpmath.fsum(term(n) for n in range(int(lo), int(hi) + 1))
    integrand = lambda x: weight(x) * h(x)  # noqa: E731
    inner = sorted(set(k for k in kinks if lo < k < hi))
    if lo == mpmath.ninf and hi == mpmath.inf:
        # Put the bulk of the mass between finite breakpoints so tanh-sinh sees it.
        centre = values.get("loc", mpmath.mpf(0))
        inner = sorted(set(inner) | {centre})
    total = mpmath.mpf(0)
    # Densities such as x^(a-1) (a << 1) or log-singular integrands at a finite support edge
    # defeat plain tanh-sinh at 30 digits; x = edge +- w exp(-t) turns the singular end into
    # an exponentially decaying tail.
    if lo != mpmath.ninf:
        nxt = inner[0] if inner else hi
        w = min(mpmath.mpf(1), (nxt - lo) / 2)
        total += _edge_integral(integrand, lo, w, +1)
        lo = lo + w
    if hi != mpmath.inf:
        prv = inner[-1] if inner else lo
        w = min(mpmath.mpf(1), (hi - prv) / 2)
        total += _edge_integral(integrand, hi, w, -1)
        hi = hi - w
    return total + mpmath.quad(integrand, [lo] + [k for k in inner if lo < k < hi] + [hi])


#: The edge substitution integrates t over [0, EDGE_T]; the rest is below w^a exp(-a EDGE_T),
#: negligible at 30 digits for shapes a >= 0.15.
EDGE_T = 512


def _edge_integral(f: Callable[[Any], Any], edge: Any, width: Any, direction: int) -> Any:
    """Integral of f over [edge, edge + width] (direction +1) or [edge - width, edge] (-1)."""
    dps = mpmath.mp.dps

    def g(t: Any) -> Any:
        d = width * mpmath.exp(-t)
        if edge == 0:
            return f(direction * d) * d
        # edge - d must keep d's digits: widen the working precision by t / ln(10).
        with mpmath.workdps(dps + int(t / 2.3) + 5):
            return f(edge + direction * d) * d

    return mpmath.quad(g, [0, 1, 8, 64, EDGE_T])


def gaussian_quadratic_expectation(loc: Any, cov: Any, h: Callable[[Any], Any]) -> Any:
    """E[h(x)] for x ~ N(loc, cov) and h a polynomial of degree <= 3: exact by 2-point
    Gauss-Hermite cubature in the whitened coordinates (x = loc + L z)."""
    k = cov.rows
    chol = mpmath.cholesky(cov)
    total = mpmath.mpf(0)
    for signs in np.ndindex(*(2,) * k):
        z = mpmath.matrix([1 if s else -1 for s in signs])
        total += h(loc + chol * z)
    return total / 2**k


def coordinate_expectation(
    family: Family, values: Mapping[str, Any], index: int, h: Callable[[Any], Any],
    kinks: Sequence[Any] = (),
) -> Any:
    """E[h(x_i)] for an indexed family, by quadrature over the declared marginal of x_i."""
    assert family.marginal is not None, f"{family.name} declares no coordinate marginal"
    name, params = family.marginal(values, index)
    return scalar_expectation(name, params, h, kinks)
