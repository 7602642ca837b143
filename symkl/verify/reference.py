"""Reference A: the ground truth, from the densities, independent of every closed form.

E_P[log p(x) - log q(x)] (KL), -E_P[log q(x)] (cross-entropy) and -E_P[log p(x)]
(entropy) computed here from densities written out in plain mpmath from their textbook
definitions -- no closed form, no symkl density, no symkl quadrature:

* continuous scalars: ``mpmath.quad`` split at the location/kinks and at support edges;
  a finite edge where the integrand may be singular (Gamma/Beta shapes < 1, log x) is
  integrated in t with x = edge + w exp(-t), so the singular end becomes a decaying tail;
  Beta and Dirichlet(k = 2) get the distance to *both* edges exactly (x and 1 - x);
* Poisson: ``mpmath.nsum`` and, as the second method, a direct sum with a bounded tail;
  Bernoulli / Categorical: exact sums with 0 log 0 = 0 (a zero of q where p > 0 gives +inf);
* mvn_diag: E of a sum of coordinates = sum of 1-D integrals over the Normal marginals;
* mvn (the independent high-precision route for the full covariance): log p - log q is
  quadratic in x, so the 3-point-per-dimension Gauss-Hermite tensor cubature in whitened
  coordinates (x = loc + L z, L the mpmath Cholesky factor) is exact; the densities use
  mpmath matrices (``lu_solve``, ``det``) at the working precision;
* Dirichlet: k = 2 by 1-D quadrature, k = 3 by 2-D quadrature (slow: minutes).

Where P puts mass outside the support of Q (continuous scalars: by quadrature of P's
density over the outside region) the value is +inf.

:func:`reference` computes every value at two precisions (and, for Poisson, by two
methods) and raises :class:`ReferenceDisagreement` unless they agree to the requested
number of significant digits; where they disagree because the value is far smaller than
the integrand (P close to Q) it raises the precision until they agree.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable

import mpmath

mpf = mpmath.mpf
inf = mpmath.inf

# =========================================================================== densities
# Written from the textbook definitions, independently of symkl's declarations.
# ``LOGPDF[family](params)`` returns x -> log density, with the normalising constant
# computed once at the current precision. Continuous scalar log-densities take (x, xm)
# with xm = 1 - x supplied exactly where the caller knows it (unit-interval supports);
# the others ignore xm.


def lp_normal(v):
    m, s = v["loc"], v["scale"]
    c = -mpmath.log(s) - mpmath.log(2 * mpmath.pi) / 2
    return lambda x, xm=None: c - (x - m) ** 2 / (2 * s**2)


def lp_laplace(v):
    m, b = v["loc"], v["scale"]
    c = -mpmath.log(2 * b)
    return lambda x, xm=None: c - abs(x - m) / b


def lp_exponential(v):
    r = v["rate"]
    c = mpmath.log(r)
    return lambda x, xm=None: c - r * x if x >= 0 else -inf


def lp_gamma(v):
    a, r = v["concentration"], v["rate"]
    c = a * mpmath.log(r) - mpmath.loggamma(a)
    return lambda x, xm=None: c + (a - 1) * mpmath.log(x) - r * x if x > 0 else -inf


def lp_beta(v):
    a, b = v["concentration1"], v["concentration0"]
    log_b = mpmath.loggamma(a) + mpmath.loggamma(b) - mpmath.loggamma(a + b)

    def lp(x, xm=None):
        xm = 1 - x if xm is None else xm
        return (a - 1) * mpmath.log(x) + (b - 1) * mpmath.log(xm) - log_b

    return lp


def lp_uniform(v):
    lo, hi = v["low"], v["high"]
    c = -mpmath.log(hi - lo)
    return lambda x, xm=None: c if lo <= x <= hi else -inf


def lp_poisson(v):
    r = v["rate"]
    log_r = mpmath.log(r)
    return lambda n: n * log_r - r - mpmath.loggamma(n + 1)


def lp_bernoulli(v):
    p = v["probs"]
    return lambda x: mpmath.log(p) if x == 1 else mpmath.log(1 - p)


def lp_categorical(v):
    probs = v["probs"]
    return lambda i: mpmath.log(probs[i]) if probs[i] > 0 else -inf


def lp_dirichlet(v):
    a = v["concentration"]
    c = mpmath.loggamma(mpmath.fsum(a)) - mpmath.fsum(mpmath.loggamma(ai) for ai in a)
    return lambda xs: c + mpmath.fsum((ai - 1) * mpmath.log(xi) for ai, xi in zip(a, xs))


def lp_mvn_diag(v):
    # The product density of independent Normal coordinates.
    coords = [lp_normal({"loc": m, "scale": s}) for m, s in zip(v["loc"], v["scale"])]
    return lambda xs: mpmath.fsum(f(x) for f, x in zip(coords, xs))


def lp_mvn(v):
    loc, cov = v["loc"], v["covariance_matrix"]
    k = cov.rows
    c = -k * mpmath.log(2 * mpmath.pi) / 2 - mpmath.log(mpmath.det(cov)) / 2

    def lp(x):
        d = x - loc
        return c - (d.T * mpmath.lu_solve(cov, d))[0] / 2

    return lp


LOGPDF: dict[str, Callable[[dict], Callable[..., Any]]] = {
    "normal": lp_normal,
    "laplace": lp_laplace,
    "exponential": lp_exponential,
    "gamma": lp_gamma,
    "beta": lp_beta,
    "uniform": lp_uniform,
    "poisson": lp_poisson,
    "bernoulli": lp_bernoulli,
    "categorical": lp_categorical,
    "dirichlet": lp_dirichlet,
    "mvn_diag": lp_mvn_diag,
    "mvn": lp_mvn,
}

CONTINUOUS_SCALAR = {"normal", "laplace", "exponential", "gamma", "beta", "uniform"}


# ========================================================================= quadrature
def _around(centre, unit, spans=(4,)):
    """centre and centre +- unit * span: the bulk lies between finite breakpoints."""
    return {centre} | {centre + unit * s for s in spans} | {centre - unit * s for s in spans}


def _tail_in_t(g: Callable[[Any], Any]) -> Any:
    """Integral over t in [0, inf) of an integrand that decays like exp(-a t), a >= ~0.1."""
    return mpmath.quad(g, [0, 8, 64, inf])


def _edge_left(f: Callable[[Any], Any], width: Any) -> Any:
    """Integral of f over (0, width]: x = width exp(-t) keeps x exact near the edge 0."""

    def g(t):
        x = width * mpmath.exp(-t)
        return f(x) * x

    return _tail_in_t(g)


def integrate_unit(f: Callable[[Any, Any], Any]) -> Any:
    """Integral of f(x, 1 - x) over (0, 1), with x and 1 - x both exact near their edge."""
    half = mpf(1) / 2
    left = _edge_left(lambda x: f(x, 1 - x), half)
    right = _edge_left(lambda y: f(1 - y, y), half)
    return left + right


def integrate_halfline(f: Callable[[Any], Any], w: Any, points) -> Any:
    """Integral of f over (0, inf): (0, w] by the edge substitution, then plain quad."""
    pts = sorted(p for p in set(points) | {w} if p >= w)
    return _edge_left(f, w) + mpmath.quad(f, pts + [inf])


def expect_scalar(family: str, v, h: Callable[..., Any], kinks=()) -> Any:
    """E_P[h(x, xm)] for a continuous scalar P = family(v), from its density."""
    lp = LOGPDF[family](v)

    def f(x, xm=None):
        return mpmath.exp(lp(x, xm)) * h(x, xm)

    if family in ("normal", "laplace"):
        unit = v["scale"]
        pts = _around(v["loc"], unit, (8,) if family == "laplace" else (4,)) | set(kinks)
        return mpmath.quad(f, [-inf] + sorted(pts) + [inf])
    if family in ("exponential", "gamma"):
        rate = v["rate"]
        a = v.get("concentration", mpf(1))
        w = min(a, mpf(1)) / (2 * rate)
        pts = {a / rate, (a + 8 * mpmath.sqrt(a) + 8) / rate}
        pts |= {k for k in kinks if k > w}
        return integrate_halfline(f, w, pts)
    if family == "beta":
        return integrate_unit(f)
    if family == "uniform":
        lo, hi = v["low"], v["high"]
        pts = sorted({lo, (lo + hi) / 2, hi} | {k for k in kinks if lo < k < hi})
        return mpmath.quad(f, pts)
    raise AssertionError(family)


def poisson_sum(v, h: Callable[[Any], Any], method: str = "nsum") -> Any:
    """E_P[h(n)] for P = Poisson(v): ``nsum`` or a direct sum with a bounded tail."""
    lp = LOGPDF["poisson"](v)

    def term(n):
        return mpmath.exp(lp(n)) * h(n)

    if method == "nsum":
        return mpmath.nsum(term, [0, inf])
    # Past n > 2 rate the pmf ratio is < 1/2; stop once terms are below eps relative.
    total, n, eps = mpf(0), 0, mpf(10) ** (-mpmath.mp.dps - 5)
    while True:
        t = term(mpf(n))
        total += t
        if n > 2 * v["rate"] + 10 and abs(t) < eps * max(abs(total), 1):
            return total
        n += 1


# Probabilists' Gauss-Hermite, 3 points: E[f(z)], z ~ N(0, 1), exact for degree <= 5.
def _gh3():
    return [(mpf(0), mpf(2) / 3), (mpmath.sqrt(3), mpf(1) / 6), (-mpmath.sqrt(3), mpf(1) / 6)]


def expect_mvn(v, h: Callable[[Any], Any]) -> Any:
    loc, cov = v["loc"], v["covariance_matrix"]
    k = cov.rows
    chol = mpmath.cholesky(cov)
    total = mpf(0)
    for combo in itertools.product(_gh3(), repeat=k):
        z = mpmath.matrix([c[0] for c in combo])
        w = mpmath.fprod(c[1] for c in combo)
        total += w * h(loc + chol * z)
    return total


def expect_dirichlet2(v, h: Callable[[list], Any]) -> Any:
    """k = 2: integrate over x0 in (0, 1), x1 = 1 - x0 (density w.r.t. Lebesgue on x0)."""
    assert len(v["concentration"]) == 2
    lp = lp_dirichlet(v)

    def f(x0, x1):
        xs = [x0, x1]
        return mpmath.exp(lp(xs)) * h(xs)

    return integrate_unit(f)


def expect_dirichlet3(v, h: Callable[[list], Any]) -> Any:
    """k = 3 by 2-D quadrature: x0 in (0, 1), x1 = (1 - x0) u, x2 = (1 - x0)(1 - u).

    Both unit intervals are split at 1/2 and each half is written in t with the distance
    to its edge = exp(-t) / 2 (exact), so every coordinate is known to full precision.
    """
    half = mpf(1) / 2
    lp = lp_dirichlet(v)

    def halves():  # (value, 1 - value, jacobian) as functions of t, for both halves
        def lo(t):
            d = half * mpmath.exp(-t)
            return d, 1 - d, d

        def hi(t):
            d = half * mpmath.exp(-t)
            return 1 - d, d, d

        return (lo, hi)

    total = mpf(0)
    for outer in halves():
        for inner in halves():
            def f(t, s, outer=outer, inner=inner):
                x0, y, j0 = outer(t)
                u, um, j1 = inner(s)
                xs = [x0, y * u, y * um]
                return mpmath.exp(lp(xs)) * h(xs) * y * j0 * j1

            total += mpmath.quad(f, [0, 2, 16, 128, inf], [0, 2, 16, 128, inf])
    return total


# ====================================================================== the reference
def integrand(quantity: str, P: str, Q: str | None, vp, vq) -> Callable[..., Any]:
    lp = LOGPDF[P](vp)
    lq = LOGPDF[Q](vq) if Q else None
    if quantity == "kl":
        return lambda *x: lp(*x) - lq(*x)
    if quantity == "cross_entropy":
        return lambda *x: -lq(*x)
    return lambda *x: -lp(*x)


def _kinks(Q: str | None, vq) -> tuple:
    return (vq["loc"],) if Q == "laplace" else ()


def expectation(quantity: str, P: str, Q: str | None, vp, vq=None, *, poisson: str = "nsum") -> Any:
    """E_P[...] at the current precision, from the densities above."""
    if P == "mvn_diag":
        # log p - log q (and -log q, -log p) is a sum over coordinates of Normal terms, and
        # x_i ~ N(loc_p[i], scale_p[i]): E of the sum = sum of 1-D expectations.
        total = mpf(0)
        for i in range(len(vp["loc"])):
            cp = {"loc": vp["loc"][i], "scale": vp["scale"][i]}
            cq = {"loc": vq["loc"][i], "scale": vq["scale"][i]} if vq else None
            total += expect_scalar("normal", cp, integrand(quantity, "normal", Q and "normal", cp, cq))
        return total
    h = integrand(quantity, P, Q, vp, vq)
    if P in CONTINUOUS_SCALAR:
        return expect_scalar(P, vp, h, _kinks(Q, vq))
    if P == "poisson":
        return poisson_sum(vp, h, poisson)
    if P == "bernoulli":
        p = vp["probs"]
        return mpmath.fsum(w * h(x) for x, w in ((1, p), (0, 1 - p)) if w > 0)  # 0 log 0 = 0
    if P == "categorical":
        return mpmath.fsum(w * h(i) for i, w in enumerate(vp["probs"]) if w > 0)  # 0 log 0 = 0
    if P == "dirichlet":
        k = len(vp["concentration"])
        return (expect_dirichlet2 if k == 2 else expect_dirichlet3)(vp, h)
    if P == "mvn":
        return expect_mvn(vp, h)
    raise AssertionError(P)



def outside_mass(P: str, vp, lo, hi) -> Any:
    """P(x < lo) + P(x > hi) for a continuous scalar P, by quadrature of its density."""
    lp = LOGPDF[P](vp)
    f = lambda x: mpmath.exp(lp(x))  # noqa: E731
    mass = mpf(0)
    if P == "normal":
        m, s = vp["loc"], vp["scale"]
        if lo > -inf:
            mass += mpmath.quad(f, sorted({-inf, min(lo, m - s), lo}))
        if hi < inf:
            mass += mpmath.quad(f, sorted({hi, max(hi, m + s), inf}))
    elif P == "beta":
        if lo >= 1 or hi <= 0:  # disjoint from [0, 1]
            return mpf(1)
        if lo > 0:
            mass += _edge_left(lambda x: mpmath.exp(lp(x, 1 - x)), lo)
        if hi < 1:
            mass += _edge_left(lambda y: mpmath.exp(lp(1 - y, y)), 1 - hi)
    elif P == "uniform":
        a, b = vp["low"], vp["high"]
        if lo > a:
            mass += mpmath.quad(f, [a, min(lo, b)])
        if hi < b:
            mass += mpmath.quad(f, [max(hi, a), b])
    else:
        raise AssertionError(P)
    return mass


# ================================================================= supports, +inf
def _support(family: str, v) -> tuple[Any, Any] | None:
    """Support [lo, hi] of a continuous scalar family (None for the others)."""
    if family in ("normal", "laplace"):
        return -inf, inf
    if family in ("exponential", "gamma"):
        return mpf(0), inf
    if family == "beta":
        return mpf(0), mpf(1)
    if family == "uniform":
        return v["low"], v["high"]
    return None


def mass_outside_support(P: str, Q: str, vp, vq) -> Any:
    """P's probability mass where q = 0 (continuous scalars; 0 for the other families,
    whose zero-density points the sums handle term by term)."""
    sp_, sq = _support(P, vp), _support(Q, vq)
    if sp_ is None or sq is None or (sq[0] <= sp_[0] and sp_[1] <= sq[1]):
        return mpf(0)
    return outside_mass(P, vp, sq[0], sq[1])


# ===================================================================== the result
REFERENCE_DIGITS = 30
START_DPS, CHECK_EXTRA_DPS, MAX_DPS = 40, 15, 400


class ReferenceDisagreement(ArithmeticError):
    """The reference could not be confirmed at two precisions."""


@dataclass(frozen=True)
class Reference:
    """A confirmed value: ``digits`` significant digits agree between two evaluations
    (``dps`` and ``dps + CHECK_EXTRA_DPS``; Poisson also by two methods)."""

    value: Any  # mpf, or mpmath.inf
    digits: float
    dps: int
    method: str


def significant_digits(a: Any, b: Any) -> float:
    """Agreement of a with b in significant digits (inf when equal)."""
    if a == b:
        return math.inf
    if b == 0 or not (mpmath.isfinite(a) and mpmath.isfinite(b)):
        return -math.inf
    with mpmath.workdps(max(mpmath.mp.dps, 60)):
        return float(-mpmath.log10(abs(a - b) / abs(b)))


def reference(quantity: str, P: str, Q: str | None, vp, vq=None, *, digits: int = REFERENCE_DIGITS,
              start_dps: int = START_DPS) -> Reference:
    """The quantity at P = P(vp) (and Q = Q(vq)) to ``digits`` confirmed significant digits.

    ``vp`` / ``vq`` map unsuffixed parameter names to mpf (vectors: lists of mpf; the full
    MVN: mpmath matrices). Raises :class:`ReferenceDisagreement` when two evaluations do
    not agree even at ``MAX_DPS``.
    """
    if quantity != "entropy":
        with mpmath.workdps(start_dps):
            mass = mass_outside_support(P, Q, vp, vq)
        if mass > 0:
            return Reference(inf, math.inf, start_dps, f"P has mass {mpmath.nstr(mass, 5)} where q = 0")
    dps = start_dps
    while dps <= MAX_DPS:
        with mpmath.workdps(dps):
            first = expectation(quantity, P, Q, vp, vq, poisson="nsum")
        with mpmath.workdps(dps + CHECK_EXTRA_DPS):
            second = expectation(quantity, P, Q, vp, vq, poisson="direct")
            agree = significant_digits(first, second)
        if mpmath.isinf(second) and first == second:
            return Reference(second, math.inf, dps, "a term is +inf (q = 0 where p > 0)")
        if agree >= digits:
            return Reference(second, agree, dps + CHECK_EXTRA_DPS, _METHOD.get(P, "quadrature"))
        # The value lies far below the integrand's scale (P close to Q): raise the precision
        # by the digits that are missing.
        missing = digits - agree if math.isfinite(agree) else digits
        dps += max(20, int(missing) + 5)
    raise ReferenceDisagreement(
        f"{quantity}({P}{' || ' + Q if Q else ''}): two evaluations disagree even at "
        f"{MAX_DPS} digits ({mpmath.nstr(first, 20)} vs {mpmath.nstr(second, 20)})")


_METHOD = {
    "poisson": "nsum and a bounded direct sum",
    "bernoulli": "exact sum",
    "categorical": "exact sum",
    "mvn": "Gauss-Hermite cubature (exact for the quadratic log-ratio), mpmath matrices",
    "mvn_diag": "sum of 1-D quadratures over the Normal marginals",
    "dirichlet": "quadrature over the simplex",
}
