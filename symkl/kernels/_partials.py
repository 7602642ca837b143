"""Partial derivatives of the kernels, in closed form, for their autograd backward.

Differentiating a kernel's code (a few hundred array operations: series, shifts, two-sums)
makes autograd save every intermediate: the float64 Gamma KL kept ~13 kB per element and its
backward ran ~6x torch.distributions'. Each kernel's derivative is itself a short stable
formula, written here against the same array namespace as symkl.kernels._float64, so the
torch backend's backward saves only the kernel's inputs and evaluates these.

A kernel of (x, d) with the exact endpoint y = x + d as an optional third input gets
partials (d/dx at fixed d, d/dd at fixed x) and none for y: y only carries digits, and on
the manifold y = x + d where callers live, any split of the derivative between y and (x, d)
gives the same chain rule. Lanes whose value is +inf (a pole) get 0, as the old
differentiated code gave: the kernels select +inf with ``where``.

Where a partial is a small difference of large terms (psi(x + d) - psi(x) near d = 0, or
the Bregman divergence of psi), it is written with same-signed terms, like the kernels.
"""

from __future__ import annotations

import math
from typing import Any

from symkl.kernels import _float64 as kernel
from symkl.kernels._float64 import (EXP_NEG_LOADER, FLOAT64, LN2, POISSON_SERIES, Array, Target,
                                    _log1p_from_endpoints, _two_sum)

Partials = tuple[Array, ...]


def neglog_bregman(xp: Any, x: Array, d: Array, target: Target = FLOAT64) -> Partials:
    """h(s) = s - log1p(s), s = d/x: dh/dd = s/y, dh/dx = -s * s/y (y = x + d)."""
    y = x + d
    pole = y == 0
    s = xp.where(pole, 0.0, d / x)
    g_d = s / xp.where(pole, 1.0, y)
    return -s * g_d, g_d


def neglog_bregman_split(xp: Any, s: Array, log_r: Array, target: Target = FLOAT64) -> Partials:
    """Partials of the split kernel as evaluated: the near series depends on s only
    (h'(s) = s/(1 + s)), the far lanes are s - log_r."""
    near = target.in_near_range(xp, s)
    sn = xp.where(near, s, 0.0)
    return xp.where(near, sn / (1.0 + sn), 1.0), xp.where(near, 0.0, -1.0)


def xlogx_bregman(xp: Any, x: Array, d: Array, y: Array | None = None, target: Target = FLOAT64) -> Partials:
    """B = y log(y/x) - d: dB/dd = log(y/x), dB/dx = log(y/x) - d/x = -h(d/x). The
    conventions' lanes: y == 0 < x (B = x) gives (1, 0); x == 0 gives (0, 0)."""
    y = x + d if y is None else y
    regular = xp.both(x > 0, y > 0)
    xs, ys = xp.where(regular, x, 1.0), xp.where(regular, y, 1.0)
    u = xp.where(regular, d, 0.0) / xs
    log1p_u = _log1p_from_endpoints(xp, u, ys, xs, target)
    g_x = -kernel.neglog_bregman_split(xp, u, log1p_u, target)
    g_x = xp.where(regular, g_x, xp.where(xp.both(y == 0, x > 0), 1.0, 0.0))
    return g_x, xp.where(regular, log1p_u, 0.0), None


def exp_bregman(xp: Any, x: Array, d: Array, target: Target = FLOAT64) -> Partials:
    """B = exp(x) (expm1(d) - d): dB/dx = B, dB/dd = exp(x) expm1(d) (for d > 700 as
    exp(x + d) (-expm1(-d)), so that exp(x) = 0 never meets expm1(d) = inf)."""
    zero = d == 0
    big = d > 700.0
    zero_or_big = xp.either(zero, big)
    xm, dm = xp.where(zero_or_big, 0.0, x), xp.where(zero_or_big, 1.0, d)
    xb, db = xp.where(big, x, 0.0), xp.where(big, d, 701.0)
    g_d = xp.where(big, -xp.exp(xb + db) * xp.expm1(-db), xp.exp(xm) * xp.expm1(dm))
    return kernel.exp_bregman(xp, x, d, target), xp.where(zero, 0.0, g_d)


def trigamma(xp: Any, x: Array, target: Target = FLOAT64) -> Array:
    """psi'(x) for x > 0: sum_{j<n} 1/(x + j)**2 + psi'(z) with the target's shift n where
    x < n, and psi'(z) = 1/z + 1/(2 z**2) + sum_k B_2k / z**(2k+1) (B_2k = 2k(2k-1) c_k).
    Positive leading terms, smallest first: a few ulp."""
    n = target.shift
    shifted = x < float(n)
    z = xp.where(shifted, x + float(n), x)
    t = 1.0 / z
    w = t * t
    series = 0.0 * w
    for k, c in reversed(list(enumerate(target.stirling, start=1))):
        series = (series + 2 * k * (2 * k - 1) * c) * w
    out = t * (series + 0.5 * t) + t
    for j in reversed(range(n)):
        xj = xp.where(shifted, x + float(j), 1.0)
        out = out + xp.where(shifted, 1.0 / (xj * xj), 0.0)
    return out


def digamma_increments(xp: Any, x: Array, d: Array, y: Array | None = None,
                       target: Target = FLOAT64) -> tuple[Array, Array]:
    """(psi(y) - psi(x) - d psi'(x), psi(y) - psi(x)) for x > 0, y = x + d >= 0: psi's
    Bregman divergence (<= 0, psi is concave) and increment (sign of d), each as a sum of
    same-signed terms (0 in lanes where y == 0 or the values overflow).

    With the shift n of lgamma_bregman (z = x (+ n), t = 1/z, w = 1/(z + d), u = d t, and
    s_j = d/(x + j), y_j = y + j for the shifted lanes):

        psi(y) - psi(x) = sum_j s_j / y_j + log1p(u) + u w (1/2 + sum_k (2k-1) c_k H_{2k-1})
        B_psi(x, d)     = -sum_j s_j**2 / y_j - h(u) - u**2 w / 2
                          + u**2 w sum_k (1-2k) c_k E_{2k-1}

    with H_m = sum_{a+b=m} t**a w**b and E_m = sum_{a+b=m} (a+1) t**a w**b, from Stirling's
    psi(z) = log z - 1/(2z) + sum_k (1-2k) c_k z**-2k and the identities
    w**m - t**m = -u w H_{m-1}, Bregman of z**-m = u**2 w E_{m-1} (tests/test_kernels.py).
    """
    n = target.shift
    infinite, d, y, shifted, z = kernel.lgamma_shift(xp, x, d, y, target)
    zd = xp.where(shifted, y + float(n), y)
    u, increment_series, bregman_series = _digamma_stirling(xp, z, zd, d, target)
    log1p_u = _log1p_from_endpoints(xp, u, zd, z, target)
    h_u = kernel.neglog_bregman_split(xp, u, log1p_u, target)
    increment, bregman = _digamma_shift_terms(xp, x, xp.where(shifted, d, 0.0), y, shifted, n,
                                              log1p_u + increment_series, bregman_series - h_u)
    return xp.where(infinite, 0.0, bregman), xp.where(infinite, 0.0, increment)


def _digamma_stirling(xp: Any, z: Array, zd: Array, d: Array, target: Target) -> tuple[Array, Array, Array]:
    """u = d/z and what psi(zd) - psi(z) and its Bregman divergence hold beyond the
    logarithm's part (zd = z + d, both >= the target's shift; see digamma_increments):
    u w (1/2 + sum_k (2k-1) c_k H_{2k-1}) and u**2 w (sum_k (1-2k) c_k E_{2k-1} - 1/2)."""
    t, w = 1.0 / z, 1.0 / zd
    u = d * t
    c = target.stirling
    # Odd m = 2k - 1 only: h_m = t h_{m-1} + w**m, e_m = t e_{m-1} + h_m.
    diff_series = bregman_series = 0.0 * t
    w_pow = h_m = e_m = 1.0
    for m in range(1, 2 * len(c)):
        w_pow = w_pow * w
        h_m = t * h_m + w_pow
        e_m = t * e_m + h_m
        if m % 2 == 1:
            k = (m + 1) // 2
            diff_series = diff_series + (2 * k - 1) * c[k - 1] * h_m
            bregman_series = bregman_series + (1 - 2 * k) * c[k - 1] * e_m
    uw = u * w
    return u, uw * (0.5 + diff_series), uw * u * (bregman_series - 0.5)


def _digamma_shift_terms(xp: Any, x: Array, ds: Array, y: Array, shifted: Array, n: int,
                         increment: Array, bregman: Array) -> tuple[Array, Array]:
    """increment + sum_{j<n} s_j / y_j and bregman - sum_{j<n} s_j**2 / y_j in the shifted
    lanes (s_j = ds/(x + j), y_j = y + j; ds = d there, 0 elsewhere): psi's shift terms,
    smallest first."""
    for j in reversed(range(n)):
        xj = x + float(j)
        yj = xp.where(shifted, y + float(j), 1.0)
        sj = ds / xj
        increment = increment + sj / yj
        bregman = bregman - sj * (sj / yj)
    return increment, bregman


def lgamma_bregman(xp: Any, x: Array, d: Array, y: Array | None = None, target: Target = FLOAT64) -> Partials:
    """B = lnGamma(x + d) - lnGamma(x) - d psi(x): dB/dd = psi(y) - psi(x), dB/dx = psi's
    Bregman divergence psi(y) - psi(x) - d psi'(x) (:func:`digamma_increments`)."""
    bregman, increment = digamma_increments(xp, x, d, y, target)
    return bregman, increment, None


def lgamma_residual_bregman(xp: Any, x: Array, d: Array, y: Array | None = None,
                            target: Target = FLOAT64) -> Partials:
    """B_phi(x + d, x) for phi = lnGamma - y log y + y, phi' = psi - log: dB/dd = phi'(y) -
    phi'(x), the increment of phi', and dB/dx = phi'(y) - phi'(x) - d phi''(x), its Bregman
    divergence (<= 0: phi''' < 0). 0 where the value is +inf (the pole) or overflows.

    These are digamma_increments' sums with the logarithms taken out. There psi(y) - psi(x)
    holds log(zd/z) (zd = z + d, z = x (+ n)), and log(zd/z) - log(y/x) = log1p(v) with

        v = -n d / (z y),   1 + v = (x/z) (zd/y)     (shifted lanes; 0 elsewhere),

    so that, with u, w and the series of :func:`_digamma_stirling` and h(v) = v - log1p(v),

        phi'(y) - phi'(x)              = log1p(v) + u w (1/2 + ...) + sum_j s_j / y_j
        phi'(y) - phi'(x) - d phi''(x) = n d**2/(x y z) - h(v) + u**2 w (... - 1/2)
                                         - sum_j s_j**2 / y_j.

    The second line's first two terms are h(d/x) - h(u) = n d/(x z) + log1p(v), the form
    taken where v is outside the near series' range (as y -> 0, n d**2/(x y z) and h(v)
    grow alike). One logarithm, where the difference of lgamma_bregman's and
    xlogx_bregman's partials took four (FLOAT64: log and log1p, twice) and cancelled their
    logarithms: ~log10(x) digits lost for large arguments, whose unshifted lanes now hold
    the Stirling series alone."""
    n = target.shift
    infinite, d, y, shifted, z = kernel.lgamma_shift(xp, x, d, y, target)
    zd = xp.where(shifted, y + float(n), y)
    u, increment_series, bregman_series = _digamma_stirling(xp, z, zd, d, target)
    ds = xp.where(shifted, d, 0.0)
    xs, ys = xp.where(shifted, x, 1.0), xp.where(shifted, y, 1.0)
    n_over_z = float(n) / z
    v = -n_over_z * (ds / ys)
    # log1p(v) with one logarithm: Kahan's log(t) v / (t - 1), t = fl(1 + v) (a few ulp), and
    # from the endpoints, 1 + v = (x/z) (zd/y), towards the pole (v < -1/2, where 1 + v has
    # lost v's digits) and above v = 1 (v overflows where y << x). An x or y below 2**-500
    # is scaled by 2**600 there, so that neither factor leaves the normal range.
    from_endpoints = xp.either(v < -0.5, ~(v <= 1.0))
    tiny_x, tiny_y = xs < 2.0**-500, ys < 2.0**-500
    q = (xp.where(tiny_x, xs * 2.0**600, xs) / z) * (zd / xp.where(tiny_y, ys * 2.0**600, ys))
    t = xp.where(from_endpoints, q, 1.0 + v)
    log_t = xp.log(t)
    scaling = xp.where(tiny_y, 600 * LN2, 0.0) - xp.where(tiny_x, 600 * LN2, 0.0)
    log1p_v = xp.where(from_endpoints, log_t + scaling, kernel.kahan_log1p(xp, v, t, log_t))
    near = target.in_near_range(xp, v)
    d_over_x = ds / xs
    h_difference = xp.where(near, n_over_z * d_over_x * (ds / ys) - target.h_near(xp, xp.where(near, v, 0.0)),
                            n_over_z * d_over_x + log1p_v)
    increment, bregman = _digamma_shift_terms(xp, x, ds, y, shifted, n, log1p_v + increment_series,
                                              bregman_series + h_difference)
    return xp.where(infinite, 0.0, bregman), xp.where(infinite, 0.0, increment), None


def product_difference(xp: Any, a: Array, b: Array, c: Array, e: Array, target: Target = FLOAT64) -> Partials:
    """d(a b - c e) = (b, a, -e, -c)."""
    return b, a, -e, -c


def digamma(xp: Any, x: Array, target: Target = FLOAT64) -> Partials:
    return (trigamma(xp, x, target),)


def poisson_entropy(xp: Any, rate: Array, target: Target = FLOAT64) -> Partials:
    """dH/drate = E[log((X + 1)/rate)] (from p_k' = p_k (k/rate - 1) and E[X f(X)] =
    rate E[f(X + 1)]), summed over the terms the value uses; above ``poisson_direct_max``
    the derivative of the asymptotic series, 1/(2 rate) - sum_k k c_k rate**-(k+1). 0 at
    rate == 0 (where it is +inf), as the differentiated code gave."""
    direct = rate <= target.poisson_direct_max
    r = xp.where(xp.both(direct, rate > 0), rate, 1.0)
    by_product = r < 1.0
    rs = xp.where(by_product, r, 1.0)
    rb = xp.where(by_product, 1.0, r)
    log_r = xp.log(r)
    p_k = xp.exp(-rs)
    p0 = xp.where(by_product, p_k, xp.exp(-rb))
    acc, err = _two_sum(-p0 * log_r, 0.0 * r)  # k = 0: p_0 log(1/r)
    for k in range(1, target.poisson_terms):
        p_k = p_k * rs / float(k)
        bregman = kernel.xlogx_bregman(xp, rb, float(k) - rb, float(k) + 0.0 * rb, target)
        p = xp.where(by_product, p_k, EXP_NEG_LOADER[k] * xp.exp(-bregman))
        acc, e = _two_sum(acc, p * (math.log(k + 1) - log_r))
        err = err + e
    t = 1.0 / xp.where(direct, 2.0 * target.poisson_direct_max, rate)
    series = 0.0 * t
    for k in reversed(range(1, target.poisson_series_terms + 1)):
        series = (series - k * POISSON_SERIES[k - 1]) * t
    large = t * (0.5 + series)
    return (xp.where(rate == 0, 0.0, xp.where(direct, acc + err, large)),)


__all__ = ["digamma", "digamma_increments", "exp_bregman", "lgamma_bregman", "lgamma_residual_bregman", "neglog_bregman",
           "neglog_bregman_split", "poisson_entropy", "product_difference", "trigamma", "xlogx_bregman"]
