"""The Bregman kernels, written once against a tiny array namespace and run in float64.

Every kernel is evaluated in float64 whatever the caller's dtype (the backends widen
float32 inputs and round the result once), so float32 results are correctly rounded up to
a fraction of an ulp and nothing overflows in float32 on the way. In float64 each kernel
is a few dozen array operations and stays within a few ulp:

* near the base point (the cancelling regime) a short polynomial with positive leading
  term replaces the difference of logarithms or exponentials: for s in [-0.75, 3],
  z = s/(2+s) lies in [-3/5, 3/5] and s - log1p(s) = s z - 2 z^3 P(z^2),
  P(w) = (atanh(sqrt w)/sqrt w - 1)/w, a Chebyshev fit (18 terms, error < 1e-17) in
  which s z dominates; expm1(d) - d = d^2 F(d) on |d| <= 1;
* away from it the direct formula loses at most ~2 bits, with log(y/x) taken as
  2 log(sqrt y / sqrt x) (neither under- nor overflows, no cancellation of two logs).

Two precision targets share these algorithms (:class:`Target`): ``FLOAT64`` for float64
results, as above, and ``NARROW`` for results that will be rounded to float32 or narrower.
The plain formulas evaluated in float64 lose at most ~2/|s|^2 ulps of float64 to an ulp of
error in a logarithm near 1 (< 1e-9 relative for |s| > 1e-3): ``NARROW`` uses 3-term
series only below |s| = 1e-3 and shifts lnGamma to 4 with 9 Stirling terms -- a fraction
of ``FLOAT64``'s work, truncation below 1e-9 relative (1/60 of a float32 ulp).

Branch-free: each formula is evaluated on every element and selected with ``where``;
lanes that are not selected are fed harmless inputs ("double where"), so neither values
nor autograd gradients pick up NaN from them. ``xp`` supplies where, log, log1p, expm1,
exp, sqrt, abs, both (and) and either (or) for numpy or torch; the coefficients are
computed with mpmath at import, never inside traced code.
"""

from __future__ import annotations

from fractions import Fraction
from dataclasses import dataclass, replace
from typing import Any, Callable

import mpmath

Array = Any


INF = float("inf")
LN2 = 0.6931471805599453

#: The near range of the series for s - log1p(s) and (1+s) log1p(s) - s (z in [-3/5, 3/5]);
#: outside it the direct forms s - log(1 + s) and y log(y/x) - d lose < 1.5 bits.
S_LOW, S_HIGH = -0.75, 3.0
#: lgamma_bregman's shift: Stirling's series is used at arguments >= SHIFT.
SHIFT = 8
#: Stirling terms c_k = B_2k / (2k (2k - 1)), k = 1..12: remainder < eps/8 at z >= SHIFT.
STIRLING_TERMS = 12


def bernoulli(n: int) -> Fraction:
    """Bernoulli number B_n (B_1 = +1/2), exactly, by the Akiyama-Tanigawa algorithm."""
    a = [Fraction(0)] * (n + 1)
    for m in range(n + 1):
        a[m] = Fraction(1, m + 1)
        for j in range(m, 0, -1):
            a[j - 1] = j * (a[j - 1] - a[j])
    return a[0]


def fit_atanh_tail(w_high: mpmath.mpf, terms: int) -> tuple[float, ...]:
    """Chebyshev fit of P(w) = (atanh(sqrt w)/sqrt w - 1)/w on [0, w_high], highest power first."""
    with mpmath.workdps(40):
        def p(w):
            if w == 0:
                return mpmath.mpf(1) / 3
            r = mpmath.sqrt(w)
            return (mpmath.atanh(r) / r - 1) / w

        return tuple(float(c) for c in mpmath.chebyfit(p, [0, w_high], terms))


def fit_expm1_tail(terms: int) -> tuple[float, ...]:
    """Chebyshev fit of F(d) = (expm1(d) - d)/d^2 on [-1, 1], highest power first."""
    with mpmath.workdps(40):
        def f(d):
            return mpmath.mpf(1) / 2 if d == 0 else (mpmath.expm1(d) - d) / d**2

        return tuple(float(c) for c in mpmath.chebyfit(f, [-1, 1], terms))


#: P on z in [-3/5, 3/5] (fit error < 1e-17).
P_COEFFICIENTS = fit_atanh_tail(mpmath.mpf(9) / 25, 18)
#: P on z in [-1/3, 1/3] (w <= 1/9), the series for the shift terms j >= 1 of
#: lgamma_residual_bregman, whose arguments lie in (-1/2, 1): 11 terms for FLOAT64 (relative
#: fit error 6e-17, where more terms stop helping: the coefficients' own rounding), 7 for
#: NARROW (2.4e-12). FLOAT64's 18-term P would spend 7 more terms per shift term.
P_COEFFICIENTS_INNER = fit_atanh_tail(mpmath.mpf(1) / 9, 11)
P_COEFFICIENTS_INNER_SHORT = fit_atanh_tail(mpmath.mpf(1) / 9, 7)
#: (expm1(d) - d)/d^2 on [-1, 1] (fit error 2e-19, relative 5e-19).
EXPM1_COEFFICIENTS = fit_expm1_tail(15)
STIRLING = tuple(float(bernoulli(2 * k) / (2 * k * (2 * k - 1))) for k in range(1, STIRLING_TERMS + 1))


def _two_sum(a: Array, b: Array) -> tuple[Array, Array]:
    """s + e == a + b exactly, s = fl(a + b) (Knuth; no condition on a, b)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _poly(w: Array, coeffs: tuple[float, ...]) -> Array:
    out = coeffs[0] + 0.0 * w
    for c in coeffs[1:]:
        out = out * w + c
    return out


def _atanh_terms(u: Array, coefficients: tuple[float, ...] = P_COEFFICIENTS) -> tuple[Array, Array, Array]:
    """z = u/(2+u), w = z^2 and P(w): what both near series are built from."""
    z = u / (2.0 + u)
    w = z * z
    return z, w, _poly(w, coefficients)


def _h_from(s: Array, z: Array, w: Array, p: Array) -> Array:
    return s * z - 2.0 * (z * w) * p


def _g_over_u_from(z: Array, p: Array) -> Array:
    return z * (1.0 + (1.0 + z) * z * p)


def _h_series(xp: Any, s: Array) -> Array:
    """s - log1p(s) for s in [S_LOW, S_HIGH] (other lanes: some finite value)."""
    return _h_from(s, *_atanh_terms(s))


def _g_series(xp: Any, u: Array) -> Array:
    """g(u) / u = ((1+u) log1p(u) - u) / u for u in [S_LOW, S_HIGH]: z (1 + (1+z) z P(z^2))
    with z = u/(2+u) (2 z^2/(1 - z) = u z); the caller multiplies by x u = d."""
    z, _, p = _atanh_terms(u)
    return _g_over_u_from(z, p)


def _gh_series(xp: Any, u: Array) -> tuple[Array, Array]:
    """(g(u)/u, h(u)) for u in [S_LOW, S_HIGH], sharing z and P (lnGamma's Stirling head)."""
    z, w, p = _atanh_terms(u)
    return _g_over_u_from(z, p), _h_from(u, z, w, p)


def _expm1_series(xp: Any, d: Array) -> Array:
    """expm1(d) - d for |d| <= 1."""
    return d * d * _poly(d, EXPM1_COEFFICIENTS)


# NARROW's near range is |s| <= 1e-3: below it, a log of a ratio near 1 (absolute error ~ an
# ulp of 1) would lose more than 1e-9 of s - log(1 + s) ~ s^2/2. Truncation < 5e-10 relative.
def _h_short(xp: Any, s: Array) -> Array:
    return s * s * (0.5 + s * (-1.0 / 3.0 + s * 0.25))


def _g_short(xp: Any, u: Array) -> Array:
    return u * (0.5 + u * (-1.0 / 6.0 + u * (1.0 / 12.0)))  # constants folded: no division per lane


def _gh_short(xp: Any, u: Array) -> tuple[Array, Array]:
    return _g_short(xp, u), _h_short(xp, u)


def _h_inner(xp: Any, s: Array) -> Array:
    """s - log1p(s) for s in (-1/2, 1) (FLOAT64's shift terms)."""
    return _h_from(s, *_atanh_terms(s, P_COEFFICIENTS_INNER))


def _h_inner_short(xp: Any, s: Array) -> Array:
    """s - log1p(s) for s in (-1/2, 1) to ~1e-12 relative (NARROW's shift terms)."""
    return _h_from(s, *_atanh_terms(s, P_COEFFICIENTS_INNER_SHORT))


def _expm1_short(xp: Any, d: Array) -> Array:
    return d * d * (0.5 + d * (1.0 / 6.0 + d * (1.0 / 24.0)))


@dataclass(frozen=True)
class Target:
    """The precision a kernel's result is meant for, and the series that buys it."""

    name: str
    #: s (= d/x) range of the near-series for s - log1p(s) and (1+s) log1p(s) - s
    near_low: float
    near_high: float
    h_near: Callable[[Any, Array], Array]
    g_near: Callable[[Any, Array], Array]
    #: both at once, sharing their work: (g_near, h_near)
    gh_near: Callable[[Any, Array], tuple[Array, Array]]
    #: |d| up to which expm1(d) - d comes from ``expm1_near``
    expm1_radius: float
    expm1_near: Callable[[Any, Array], Array]
    #: lgamma_bregman's shift and Stirling coefficients
    shift: int
    stirling: tuple[float, ...]
    #: log1p by Kahan's one-logarithm trick (a few ulp; cheaper)
    one_log: bool
    #: operands come from float32 or narrower (|log x| < 104): a ratio or product of two
    #: cannot over- or underflow in float64, so no scaling guards are needed
    narrow_operands: bool = False
    #: poisson_entropy: direct sum of terms k < poisson_terms for rates <= poisson_direct_max,
    #: the asymptotic series in 1/rate (poisson_series_terms terms) above
    poisson_direct_max: float = 40.0
    poisson_terms: int = 112
    poisson_series_terms: int = 16
    #: lgamma_residual_bregman's shift and its series for the shift terms j >= 1
    residual_shift: int = SHIFT
    h_inner: Callable[[Any, Array], Array] = _h_inner

    def in_near_range(self, xp: Any, s: Array) -> Array:
        """Where s lies in the near series' range (False for NaN)."""
        return xp.both(s >= self.near_low, s <= self.near_high)


FLOAT64 = Target("float64", S_LOW, S_HIGH, _h_series, _g_series, _gh_series, 1.0, _expm1_series, SHIFT, STIRLING, False)
NARROW = Target("narrow", -1e-3, 1e-3, _h_short, _g_short, _gh_short, 1e-3, _expm1_short, 4, STIRLING[:9], True, True,
                poisson_direct_max=20.0, poisson_terms=60, poisson_series_terms=12,
                residual_shift=5, h_inner=_h_inner_short)


#: The targets with lgamma_residual_bregman's shift (see there).
_RESIDUAL_TARGETS = {t.name: replace(t, shift=t.residual_shift) for t in (FLOAT64, NARROW)}


def narrow_target_holds(number: float) -> bool:
    """Whether a Python number passed with narrow arrays keeps NARROW's promise of narrow
    operands (0, nan, +-inf or a float32-normal magnitude); otherwise callers use FLOAT64."""
    magnitude = abs(number)
    return not (magnitude > 3.4e38 or 0.0 < magnitude < 1.2e-38)


#: The targets by name (what autograd Functions carry: a string, not the dataclass).
TARGETS = {t.name: t for t in (FLOAT64, NARROW)}


def log_ratio(xp: Any, a: Array, b: Array, target: Target | None = None) -> Array:
    """log(a / b) for a, b > 0 with one logarithm: 2 log(sqrt(a)/sqrt(b)) cannot under- or
    overflow (the ratio of square roots of finite positive floats is representable), where
    a / b can, and log a - log b would cancel for large or tiny a and b. Its error is about
    3 ulps *of 1*, not of the result: callers use it only where |log(a/b)| is not small (the
    split kernel's far lanes, |s| > 1e-3), never for s - log r near r = 1. With a target of
    narrow operands a / b cannot overflow: log(a / b), an ulp of 1 without the square roots."""
    if target is not None and target.narrow_operands:
        return xp.log(a / b)
    return 2.0 * xp.log(xp.sqrt(a) / xp.sqrt(b))


def neglog_bregman_split(xp: Any, s: Array, log_r: Array, target: Target = FLOAT64) -> Array:
    """h(s) = s - log(1 + s) given log_r = log(1 + s) computed by the caller (exact from the
    quantities whose ratio 1 + s is): the series near 0, s - log_r outside."""
    near = target.in_near_range(xp, s)
    return xp.where(near, target.h_near(xp, xp.where(near, s, 0.0)), s - log_r)


def kahan_log1p(xp: Any, s: Array, v: Array, log_v: Array) -> Array:
    """log1p(s) from v = fl(1 + s) and log(v), Kahan's trick: log(v) s / (v - 1) (a few ulp,
    one logarithm); s itself where v == 1."""
    one = v == 1.0
    return xp.where(one, s, log_v * (s / xp.where(one, 2.0, v - 1.0)))


def _log1p_from_endpoints(xp: Any, s: Array, y: Array, x: Array, target: Target,
                          may_underflow: bool = True, far_only: bool = False) -> Array:
    """log(1 + s) where 1 + s = y/x: log1p(s) (s rounded once: accurate) except towards the
    pole (s < -1/2, where 1 + s loses s's digits), there log(y/x) from the endpoints, with
    y/x scaled by 2**600 where it would be subnormal (only checked if ``may_underflow``, and
    never for narrow operands, whose ratios cannot be subnormal).

    ``far_only``: the caller uses the result only where s is outside its near series' range
    (FLOAT64: |log(1 + s)| >= log 4; NARROW: |s| > 1e-3, where the absolute error of an ulp
    of 1 is < 3e-10 of s - log1p(s) ~ s**2/2), so an error of an ulp of 1 is as good as
    log1p's: one logarithm, of y/x or 1 + s, in every lane (a libm call is most of a lane's
    cost).

    ``NARROW`` otherwise takes both branches with one logarithm: log1p(s) = log(v) s / (v - 1)
    with v = fl(1 + s) (Kahan's trick, a few ulp), since a libm call costs more than the rest."""
    low = s < -0.5
    q = xp.where(low, y, x) / x
    may_underflow = may_underflow and not target.narrow_operands
    if may_underflow:
        tiny = q < 2.2250738585072014e-308
        q = xp.where(tiny, xp.where(low, y, x) * 2.0**600 / x, q)
    if far_only:  # 1 + s rounded once (not y/x: y may have overflowed where s has not)
        log_v = xp.log(xp.where(low, q, 1.0 + s))
    elif target.one_log:
        v = xp.where(low, q, 1.0 + s)
        log_v = xp.log(v)
        log1p_s = kahan_log1p(xp, s, v, log_v)
    else:
        log_v = xp.log(q)
        log1p_s = xp.log1p(xp.where(low, 0.0, s))
    if may_underflow:
        log_v = xp.where(tiny, log_v - 600 * LN2, log_v)
    return log_v if far_only else xp.where(low, log_v, log1p_s)


def log1p_ratio(xp: Any, s: Array, y: Array, x: Array, target: Target = FLOAT64) -> Array:
    """log(1 + s) for s = (y - x)/x with the endpoints y, x > 0 known: log1p(s) near 0
    and log(y/x) from the endpoints towards the pole, where 1 + s would have lost s's
    digits (-log(s_p/s_q) at s_p/s_q = 0.015 was off by 134 ulp as log1p)."""
    return _log1p_from_endpoints(xp, s, y, x, target)


def neglog_bregman(xp: Any, x: Array, d: Array, target: Target = FLOAT64) -> Array:
    """B_{-log}(x + d, x) = d/x - log1p(d/x) for x > 0, x + d >= 0 (x + d == 0 gives +inf)."""
    s = d / x
    y = x + d
    infinite = xp.either(y == 0, ~(s < INF))
    s = xp.where(infinite, 0.0, s)
    value = neglog_bregman_split(xp, s, _log1p_from_endpoints(xp, s, xp.where(infinite, x, y), x, target, far_only=True),
                                 target)
    return xp.where(infinite, INF, value)


def xlogx_bregman(xp: Any, x: Array, d: Array, y: Array | None = None, target: Target = FLOAT64) -> Array:
    """B_{y log y}(x + d, x) = y log(y/x) - y + x with y = x + d; 0 log 0 = 0 (y = 0 gives
    x) and x = 0 < y gives +inf. ``y``, if given, is x + d known exactly (the caller's own
    parameter): far from x, where d = y - x has been rounded, it keeps log(y/x) exact.

    Near (u = d/x in the target's near range): d g(u)/u, g(u) = (1+u) log1p(u) - u, from
    the target's series -- no cancellation. Outside: y log(1 + u) - d."""
    y = x + d if y is None else y
    zero = x == 0
    xf = xp.where(zero, 1.0, x)
    u = d / xf
    near = target.in_near_range(xp, u)
    close = d * target.g_near(xp, xp.where(near, u, 0.0))  # d = x u exactly: no rounding
    far_lane = xp.both(~near, xp.both(y > 0, ~zero))
    yf = xp.where(far_lane, y, 1.0)
    uf = xp.where(far_lane, u, 0.0)
    if target.narrow_operands:
        # The logarithm's error reaches the result multiplied by y: towards the pole fl(1 + u)
        # (relative error eps x / y) costs < 7 eps x, and where it rounds to <= 0 (y < eps x)
        # y log(y/x) is below 40 eps x either way, in a result ~x: no division needed.
        v = 1.0 + uf
        log_v = xp.log(xp.where(v > 2.0**-60, v, 2.0**-60))
    else:
        log_v = _log1p_from_endpoints(xp, uf, yf, xp.where(far_lane, x, 1.0), target, far_only=True)
    far = yf * log_v - d
    value = xp.where(near, close, far)
    return xp.where(y == 0, x, xp.where(zero, xp.where(y > 0, INF, 0.0), value))


def exp_bregman(xp: Any, x: Array, d: Array, target: Target = FLOAT64) -> Array:
    """B_exp(x + d, x) = exp(x) (expm1(d) - d): the target's series for small |d|, the
    direct difference (positive, < 2 bits lost) beyond, and exp(x + d) (1 - (1 + d) exp(-d))
    for d > 700 so that exp(x) = 0 never meets expm1(d) = inf. Exactly 0 for d == 0."""
    zero = d == 0
    small = xp.abs(d) <= target.expm1_radius
    big = d > 700.0
    near = target.expm1_near(xp, xp.where(small, d, 0.0))
    # Lanes that are not selected get x = 0 and a moderate d: exp(x) = inf there would turn
    # the zero gradient of an unselected lane into 0 * inf = NaN.
    xm = xp.where(xp.either(zero, big), 0.0, x)
    dm = xp.where(xp.either(small, big), 2.0, d)
    xb = xp.where(big, x, 0.0)
    db = xp.where(big, d, 701.0)
    moderate = xp.exp(xm) * xp.where(small, near, xp.expm1(dm) - dm)
    large = xp.exp(xb + db) * (1.0 - (1.0 + db) * xp.exp(-db))
    return xp.where(zero, xp.abs(0.0 * x), xp.where(big, large, moderate))


def digamma(xp: Any, x: Array, target: Target = FLOAT64) -> Array:
    """psi(x) for x > 0 (x = 0: -inf): psi(x) = psi(x + n) - sum_{j<n} 1/(x + j) with the
    target's shift n where x < n, then Stirling's series differentiated,
    psi(z) = log z - 1/(2z) - sum_k B_2k / (2k z**2k) = log z - 1/(2z) + sum_k (1 - 2k) c_k z**-2k.

    A kernel rather than torch.special.digamma because autograd then differentiates this
    series, an accurate trigamma (positive terms 1/(x + j)**2, 1/z, ...); torch's own
    derivative of digamma, polygamma(1, x), is accurate to only ~5e-10 relative on CPU
    (measured by symkl verify). Near psi's root x0 = 1.4616... the error is a few ulps of
    the terms (~2), not of the result, as for every implementation by recurrence."""
    n = target.shift
    shifted = x < float(n)
    z = xp.where(shifted, x + float(n), x)
    w = 1.0 / (z * z)
    series = 0.0 * w
    for k, c in reversed(list(enumerate(target.stirling, start=1))):
        series = (series + (1 - 2 * k) * c) * w
    # Between x ~ 1 and 3 the terms (~2) cancel to psi(x) ~ 0.4: sum with their rounding
    # errors kept (two-sum): psi(1) 4.3 -> 1.7 ulp, psi(2) 3.5 -> 2.3. Within ~0.1 of the
    # root the rounding of log z itself dominates (psi(1.5): 24 ulp; torch's: 40).
    acc, err = _two_sum(xp.log(z), series - 0.5 / z)
    for j in reversed(range(n)):  # smallest terms first
        acc, e = _two_sum(acc, -xp.where(shifted, 1.0 / (x + float(j)), 0.0))
        err = err + e
    return acc + err


def lgamma_shift(xp: Any, x: Array, d: Array, y: Array | None, target: Target) -> tuple[Array, ...]:
    """The set-up lgamma_bregman and its partials share: (infinite, d, y, shifted, z) with
    the pole and overflowing lanes masked (d = 0, y = x there), ``shifted`` where
    min(x, y) < the target's shift n, and the base point z = x (+ n) of Stirling's series."""
    y = x + d if y is None else y
    infinite = xp.either(y == 0, xp.either(~(y < INF), ~(xp.abs(d / x) < INF)))
    d = xp.where(infinite, 0.0, d)
    y = xp.where(infinite, x, y)
    shifted = xp.where(d < 0, y, x) < float(target.shift)
    z = xp.where(shifted, x + float(target.shift), x)
    return infinite, d, y, shifted, z


def _stirling_head(xp: Any, z: Array, d: Array, target: Target) -> tuple[Array, Array]:
    """z g(u) and h(u)/2 with u = d/z, z and z + d >= the target's shift (no pole, no
    underflow): xlogx_bregman(z, d) and neglog_bregman(z, d)/2 sharing their one logarithm
    and, near u = 0, the series' common polynomial."""
    u = d / z
    near = target.in_near_range(xp, u)
    g_over_u, h = target.gh_near(xp, xp.where(near, u, 0.0))
    far = ~near
    y = xp.where(far, z + d, 2.0)
    zf = xp.where(far, z, 1.0)
    log_r = _log1p_from_endpoints(xp, xp.where(far, u, 1.0), y, zf, target, may_underflow=False, far_only=True)
    zg = xp.where(near, d * g_over_u, y * log_r - xp.where(far, d, 1.0))
    half_h = 0.5 * xp.where(near, h, u - log_r)
    return zg, half_h


#: lgamma_bregman's shift terms j >= 1 take the logarithm of one product of their ratios
#: (y + j)/(x + j) where max(x, y) <= this bound (7 ratios within 2**+-840: no over- or
#: underflow). Above it, the logarithms are < 7 * 745 in a result > 2**116 and are dropped.
_PRODUCT_BOUND = 2.0**120


def lgamma_bregman(xp: Any, x: Array, d: Array, y: Array | None = None, target: Target = FLOAT64) -> Array:
    """B_lnGamma(x + d, x) = lgamma(x + d) - lgamma(x) - d digamma(x), x > 0, x + d >= 0;
    ``y`` = x + d exactly, if the caller has it (see xlogx_bregman).

    x + d == 0 (the pole) or overflowing gives +inf; exactly 0 for d == 0; >= 0. No lgamma
    or digamma is called. With h(s) = s - log1p(s), the recurrence
    lnGamma(x) = lnGamma(x + n) - sum_{j<n} log(x + j) gives

        B(x, d) = B(x + n, d) + sum_{j<n} h(d / (x + j)),

    applied with n = the target's shift (8; NARROW: 4) where min(x, x + d) < n, so that
    Stirling's series holds at both points z = x (+ n) and z + d. There, with
    lnGamma(z) = (z - 1/2) ln z - z + ln(2 pi)/2 + sum_k c_k z**(1-2k),

        B(z, d) = z g(d/z) + h(d/z)/2 + u**2 w sum_k c_k E_{2k-2}(t, w),

    u = d/z, t = 1/z, w = 1/(z + d), z g = xlogx_bregman(z, d), h = neglog_bregman(z, d)
    and E_m(t, w) = sum_{a+b=m} (a+1) t**a w**b: the Bregman divergence of z**(1-2k) written
    with positive terms only. Every term of the sum is >= 0, so nothing cancels.

    Cost: a logarithm is most of a lane's work, so the shift terms outside their near series
    share one: sum_far h(s_j) = sum_far s_j - log(prod_far (1 + s_j)), the s_j of one sign and
    each h(s_j) >= s_j / 2 there (nothing cancels). Three logarithms in all (NARROW: two, its
    narrow operands keep even the j = 0 ratio in range) instead of n + 2.
    """
    n = target.shift
    infinite, d, y, shifted, z = lgamma_shift(xp, x, d, y, target)
    # The positive terms are summed with their rounding errors kept (Knuth's two-sum):
    # six flops a term buys ~2 ulp in float64, and the callers' differences amplify them.
    acc, err = _two_sum(*_stirling_head(xp, z, d, target))
    ds = xp.where(shifted, d, 0.0)
    far_s = 0.0 * ds  # sum of the far s_j
    ratio = 1.0 + far_s  # product of the far 1 + s_j
    # FLOAT64: j = 0 (y/x may under- or overflow) takes its own logarithm, and the product
    # of j >= 1 applies where max(x, y) <= _PRODUCT_BOUND.
    separate_first = not target.narrow_operands
    in_range = (xp.where(d < 0, x, y) <= _PRODUCT_BOUND) if separate_first else None
    for j in range(n):
        xj, yj = (x, y) if j == 0 else (x + float(j), y + float(j))
        sj = ds / xj
        near = target.in_near_range(xp, sj)
        acc, e = _two_sum(acc, xp.where(near, target.h_near(xp, xp.where(near, sj, 0.0)), 0.0))
        err = err + e
        far = ~near
        if j == 0 and separate_first:
            log1p_s0 = _log1p_from_endpoints(xp, xp.where(far, sj, 1.0), xp.where(far, y, 2.0), xp.where(far, x, 1.0),
                                             target, far_only=True)
            acc, e = _two_sum(acc, xp.where(far, sj - log1p_s0, 0.0))
            err = err + e
            continue
        # 1 + s_j rounded once, or the endpoints' ratio towards the pole (s_j < -1/2)
        r = xp.where(sj < -0.5, xp.where(far, yj, 1.0) / xj, 1.0 + sj)
        use = far if in_range is None else xp.both(far, in_range)
        ratio = ratio * xp.where(use, r, 1.0)
        far_s = far_s + xp.where(far, sj, 0.0)
    acc, e = _two_sum(acc, far_s - xp.log(ratio))
    err = err + e

    zy = xp.where(shifted, y + float(n), y)
    value = acc + (err + _stirling_tail(xp, z, zy, d, target))
    return xp.where(xp.either(infinite, ~(value < INF)), INF, value)


def _stirling_tail(xp: Any, z: Array, zy: Array, d: Array, target: Target) -> Array:
    """The Bregman divergence of Stirling's sum_k c_k z**(1-2k) from z to zy = z + d (both >=
    the target's shift): u**2 w sum_k c_k E_{2k-2}(t, w) with u = d/z, t = 1/z, w = 1/zy and
    E_m(t, w) = sum_{a+b=m} (a+1) t**a w**b -- positive terms only. zy is passed from the
    caller's exact endpoint: z + d would carry d's rounding (~eps z) into zy << z."""
    t = 1.0 / z
    w = 1.0 / zy
    u = d * t
    c = target.stirling
    series = c[0]  # c_1 E_0, E_0 = 1
    w_pow = h_m = e_m = 1.0
    for m in range(1, 2 * len(c) - 1):
        w_pow = w_pow * w
        h_m = t * h_m + w_pow  # h_m = sum_{a+b=m} t**a w**b
        e_m = t * e_m + h_m  # E_m = t E_{m-1} + h_m
        if m % 2 == 0:
            series = series + c[m // 2] * e_m
    return u * (u * w) * series  # u w <= 1/z: no spurious overflow


def lgamma_residual_bregman(xp: Any, x: Array, d: Array, y: Array | None = None,
                            target: Target = FLOAT64) -> Array:
    """B_phi(x + d, x) for phi(y) = lnGamma(y) - y log y + y, x > 0, x + d >= 0: what is left
    of lgamma_bregman once the y log y Bregman divergence is taken out,
    B_lnGamma = B_phi + B_{y log y}. (+inf at the pole x + d == 0, exactly 0 for d == 0, >= 0:
    phi'' = psi' - 1/x > 0.)

    Why a kernel of its own: for large arguments B_lnGamma ~ B_{y log y} ~ x s**2/2 while
    B_phi ~ s**2/4 (s = d/x), so B_lnGamma - B_{y log y} would cancel ~2x -- and a Gamma KL
    written around B_lnGamma subtracts a cross term of that size (~10**3 ulp at
    concentrations 1479 vs 274). Written around B_phi, the Gamma KL is a sum of two
    non-negative Bregman divergences.

    With lnGamma(x) = lnGamma(x + n) - sum_{j<n} log(x + j) and y = x + d, the shift terms
    of phi telescope into positive terms (tests/test_kernels.py checks the identity):

        B_phi(x, d) = B_phi(x + n, d) + sum_{j<n} (y + j + 1) h(v_j),
        v_j = d / ((x + j)(y + j + 1)),  1 + v_j = (x + j + 1)(y + j) / ((x + j)(y + j + 1)),

    h(v) = v - log1p(v), applied with n = the target's shift where min(x, y) < n. For j >= 1,
    v_j lies in (-1/2, 1) (|d| < max(x, y) and (x + j)(y + j + 1) > that), inside the near
    series' range: no logarithm. Only v_0 in (-1, 1/x) can be far (one logarithm). At
    z = x (+ n), z + d >= n, Stirling's series gives

        B_phi(z, d) = h(d/z)/2 + (the Bregman divergence of sum_k c_k z**(1-2k)),

    the second term as in lgamma_bregman. Every term is >= 0: nothing cancels. Two
    logarithms in all (lgamma_bregman: three).

    The target's ``residual_shift``: 8 for FLOAT64; 5 for NARROW, not its lnGamma shift of 4,
    since B_phi ~ (psi' - 1/x) d**2/2 is ~8x smaller than B_lnGamma at x = 4, where Stirling's
    truncation would cost 2e-9 of it (at 5: 5e-11). NARROW's shift terms take a 7-term
    series (``h_inner``, 1e-12 relative on (-1/2, 1)) instead of FLOAT64's 11."""
    target = _RESIDUAL_TARGETS[target.name]
    n = target.shift
    infinite, d, y, shifted, z = lgamma_shift(xp, x, d, y, target)
    u = d / z
    near = target.in_near_range(xp, u)
    far = ~near
    # The far lanes' log(Y/z) from the exact endpoint y (z + d would carry d's rounding,
    # ~eps x, into a result ~1 where y << x), shifted by n (one rounding) where z is.
    zy = xp.where(shifted, y + float(n), y)
    log_r = _log1p_from_endpoints(xp, xp.where(far, u, 1.0), xp.where(far, zy, 2.0), xp.where(far, z, 1.0),
                                  target, may_underflow=False, far_only=True)
    half_h = 0.5 * xp.where(near, target.h_near(xp, xp.where(near, u, 0.0)), u - log_r)
    acc, err = _two_sum(half_h, _stirling_tail(xp, z, zy, d, target))
    ds = xp.where(shifted, d, 0.0)
    ys = xp.where(shifted, y, 1.0)
    # j = 1 .. n-1: v_j in (-1/2, 1), the full series for all, one array expression per j.
    # (Along a trailing axis of n - 1, one set of operations, inductor ran a scalar loop
    # into an (n - 1) x batch buffer: float64 Gamma KL, 1e6 elements, 2 cores, 67 ms; along
    # a leading axis, vectorised but still buffered, 43 ms; unrolled and fused, 19 ms, for a
    # first compile of 112 s instead of 86.)
    terms = 0.0
    for j in range(1, n):
        w = ys + (j + 1.0)
        v = _quotient(ds, x + float(j), w, target)
        terms = terms + w * target.h_inner(xp, v)
    acc, e = _two_sum(acc, terms)
    err = err + e
    w = ys + 1.0
    v = _quotient(ds, x, w, target)
    near = target.in_near_range(xp, v)
    far = ~near
    # 1 + v_0 rounded once, or towards the pole (v_0 < -1/2, where 1 + v_0 loses v_0's digits)
    # from the endpoints: y/(y + 1) (x + 1)/x, neither factor over- or underflowing.
    xf, yf, vf = xp.where(far, x, 1.0), xp.where(far, ys, 1.0), xp.where(far, v, 1.0)
    r = xp.where(vf < -0.5, (yf / (yf + 1.0)) * ((xf + 1.0) / xf), 1.0 + vf)
    acc, e = _two_sum(acc, w * xp.where(near, target.h_near(xp, xp.where(near, v, 0.0)), vf - xp.log(r)))
    value = acc + (err + e)
    return xp.where(xp.either(infinite, ~(value < INF)), INF, value)


def _quotient(a: Array, b: Array, c: Array, target: Target) -> Array:
    """a / (b c) for b, c > 0, |a| <= the larger. Narrow operands: one division (b c cannot
    overflow; a division costs as much as a dozen multiplications); otherwise a / b / c,
    which cannot overflow either (b c can, at c ~ 1e308)."""
    return a / (b * c) if target.narrow_operands else a / b / c


#: Dekker's splitter 2**27 + 1: a = hi + lo with 26-bit halves, so hi * hi' etc. are exact.
_SPLITTER = 134217729.0
#: Operands above this would overflow in the split; product_difference scales them first.
_SPLIT_MAX = 2.0**500


def _two_product(a: Array, b: Array) -> tuple[Array, Array]:
    """p + e == a b exactly, p = fl(a b) (Dekker; torch has no fma to do it in two flops)."""
    p = a * b
    ca, cb = _SPLITTER * a, _SPLITTER * b
    a_hi, b_hi = ca - (ca - a), cb - (cb - b)
    a_lo, b_lo = a - a_hi, b - b_hi
    return p, ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


def product_difference(xp: Any, a: Array, b: Array, c: Array, e: Array, target: Target = FLOAT64) -> Array:
    """a b - c e to a few ulp of the result, however much the two products cancel (the
    determinant a_q b_p - a_p b_q of the Gamma KL vanishes where P's and Q's means agree).

    Both products are exact as p + err (Dekker); p1 - p2 is exact where they cancel
    (Sterbenz) and dominates where they do not. Above 2**500, the first factors (a, c) and
    the second (b, e) are scaled by a power of two, exactly, so that the splits cannot
    overflow; the result over- or underflows only where a b - c e itself does. Narrow
    operands (24-bit significands) multiply exactly in float64: one rounding, no splits."""
    if target.narrow_operands:
        return a * b - c * e
    big_1 = xp.either(xp.abs(a) > _SPLIT_MAX, xp.abs(c) > _SPLIT_MAX)
    big_2 = xp.either(xp.abs(b) > _SPLIT_MAX, xp.abs(e) > _SPLIT_MAX)
    p1, e1 = _two_product(xp.where(big_1, a * 2.0**-500, a), xp.where(big_2, b * 2.0**-500, b))
    p2, e2 = _two_product(xp.where(big_1, c * 2.0**-500, c), xp.where(big_2, e * 2.0**-500, e))
    out = (p1 - p2) + (e1 - e2)
    out = xp.where(big_1, out * 2.0**500, out)
    return xp.where(big_2, out * 2.0**500, out)


# -- Poisson entropy ---------------------------------------------------------------------


def poisson_entropy_series(terms: int) -> tuple[Fraction, ...]:
    """c_1..c_terms of H(Poisson(r)) ~ log(2 pi e r)/2 + sum_k c_k r**-k (r -> oo), exactly.

    H = r - r log r + E[lnGamma(X + 1)], and E[g(X)] = sum_n g^(n)(r) mu_n(r)/n! with the
    Poisson central moments mu_n (mu_{n+1} = r (n mu_{n-1} + mu_n')) and the asymptotic
    series of g = lnGamma(x + 1) and of its derivatives (polygamma): a power series in
    t = 1/r whose t**0 term is log(2 pi e r)/2. c_1..c_3 = -1/12, -1/24, -19/360 (Evans and
    Boersma 1988); tests/test_kernels.py re-derives the series with SymPy."""
    from math import factorial

    def add(acc: dict[int, Fraction], power: int, value: Fraction) -> None:
        acc[power] = acc.get(power, Fraction(0)) + value

    top = 2 * terms + 4  # moments mu_n ~ r**(n/2) times g^(n) ~ r**(1-n): enough to t**terms
    mu: list[dict[int, Fraction]] = [{0: Fraction(1)}, {}]
    for n in range(1, top):
        nxt: dict[int, Fraction] = {}
        for i, c in mu[n - 1].items():
            add(nxt, i + 1, n * c)
        for i, c in mu[n].items():
            if i:
                add(nxt, i, i * c)
        mu.append(nxt)
    series: dict[int, Fraction] = {}
    for k in range(1, terms // 2 + 2):  # Stirling's series of lnGamma(r + 1) - (r + 1/2) log r ...
        add(series, 2 * k - 1, bernoulli(2 * k) / (2 * k * (2 * k - 1)))
    for n in range(2, top + 1):
        # g^(n)(r) = psi^(n-1)(r) + (-1)^(n-1) (n-1)! t**n, psi^(m) = (-1)^(m+1) [(m-1)! t**m
        # + m! t**(m+1)/2 + sum_k B_2k (2k+m-1)!/(2k)! t**(2k+m)], to t**(terms + n/2 + 1)
        m, sign = n - 1, (-1) ** n
        gn: dict[int, Fraction] = {}
        add(gn, m, Fraction(sign * factorial(m - 1)))
        add(gn, m + 1, Fraction(sign * factorial(m), 2))
        add(gn, n, Fraction((-1) ** (n - 1) * factorial(n - 1)))
        k = 1
        while 2 * k + m <= terms + n // 2 + 1:
            add(gn, 2 * k + m, sign * bernoulli(2 * k) * Fraction(factorial(2 * k + m - 1), factorial(2 * k)))
            k += 1
        for j, a in gn.items():
            for i, c in mu[n].items():
                if 0 < j - i <= terms:
                    add(series, j - i, a * c / factorial(n))
    return tuple(series.get(k, Fraction(0)) for k in range(1, terms + 1))


POISSON_SERIES = tuple(float(c) for c in poisson_entropy_series(FLOAT64.poisson_series_terms))
with mpmath.workdps(40):
    HALF_LOG_2PIE = float(mpmath.log(2 * mpmath.pi * mpmath.e) / 2)


def _loader_constants(count: int) -> tuple[tuple[float, ...], ...]:
    """log k!, Loader's log k! - k log k + k (0 at k = 0) and its exp(-.) for k < count,
    each rounded once (log k! and k log k cancel: 40 digits, not mpmath's default 15)."""
    with mpmath.workdps(40):
        log_factorial = [mpmath.loggamma(k + 1) for k in range(count)]
        loader = [mpmath.mpf(0)] + [log_factorial[k] - k * mpmath.log(k) + k for k in range(1, count)]
        return (tuple(float(v) for v in log_factorial), tuple(float(v) for v in loader),
                tuple(float(mpmath.exp(-v)) for v in loader))


#: -log p_k = LOADER[k] + B_{y log y}(k, rate) for the Poisson pmf p_k (Loader 2000).
LOG_FACTORIAL, LOADER, EXP_NEG_LOADER = _loader_constants(FLOAT64.poisson_terms)


def poisson_entropy(xp: Any, rate: Array, target: Target = FLOAT64) -> Array:
    """H(Poisson(rate)) = -sum_k p_k log p_k, rate >= 0 (exactly 0 at rate = 0).

    r - r log r + E[log X!] as derived cancels catastrophically for large r (two terms of
    size r log r leave log(2 pi e r)/2), so the kernel computes the entropy itself:

    * rate <= the target's ``poisson_direct_max`` (40): the positive terms -p_k log p_k,
      k < ``poisson_terms`` (tail < 1e-18 relative), summed with two-sum. For rate >= 1,
      -log p_k = (log k! - k log k + k) + B_{y log y}(k, rate) (Loader's saddle-point split:
      a tabulated constant plus a Bregman divergence without cancellation) and
      p_k = exp(-constant) exp(-B); below 1, p_k = p_(k-1) rate / k and
      -log p_k = rate - k log rate + log k!, positive terms as they stand;
    * above: log(2 pi e r)/2 + sum_k c_k r**-k (:func:`poisson_entropy_series`; truncation
      < 2e-17 relative at r = 40 with 16 terms, 1e-11 at 20 with NARROW's 12).
    """
    direct = rate <= target.poisson_direct_max
    r = xp.where(direct, rate, 1.0)
    # p_k = exp(-(-log p_k)) carries the absolute error of -log p_k as a relative one: fine
    # where -log p_k = O(log r) (r >= 1), but -log p_1 = 691 at r = 1e-300 would cost ~200 ulp
    # (and the Bregman term's gradient overflows there). Below r = 1 the dominant terms have
    # small k, where p_k = p_(k-1) r / k is accurate.
    by_product = r < 1.0
    rs = xp.where(by_product, r, 1.0)  # the r < 1 lanes (a harmless 1 elsewhere)
    rb = xp.where(by_product, 1.0, r)  # the saddle-point lanes
    log_r = xp.log(rs)
    p_k = xp.exp(-rs)
    acc, err = _two_sum(xp.where(by_product, rs * p_k, rb * xp.exp(-rb)), 0.0 * r)  # k = 0: r e^-r
    for k in range(1, target.poisson_terms):
        p_k = p_k * rs / float(k)
        bregman = xlogx_bregman(xp, rb, float(k) - rb, float(k) + 0.0 * rb, target)
        # exp(-LOADER[k]) is a constant: only the small Bregman term's error is amplified
        p_saddle = EXP_NEG_LOADER[k] * xp.exp(-bregman)
        term = xp.where(by_product, p_k * (rs - float(k) * log_r + LOG_FACTORIAL[k]),
                        p_saddle * (LOADER[k] + bregman))
        acc, e = _two_sum(acc, term)
        err = err + e
    small = acc + err
    t = 1.0 / xp.where(direct, 2.0 * target.poisson_direct_max, rate)
    tail = _poly(t, tuple(reversed(POISSON_SERIES[: target.poisson_series_terms]))) * t
    large = 0.5 * xp.log(xp.where(direct, 1.0, rate)) + (HALF_LOG_2PIE + tail)
    return xp.where(rate == 0, 0.0 * rate, xp.where(direct, small, large))
