"""float32 Bregman kernels computed in float64: a dozen operations instead of a few hundred.

A float32 input has 24 bits; its differences (d = q - p, s = d/x) are at least 2**-24
relative unless zero. In float64 the plain formulas lose at most |terms| / result ~ 2/|s|
ulps of float64, i.e. below 2**-53 * 2**25 = 2**-28 relative: under 1/16 ulp of float32.
Only where s (or d) is below 1e-5 -- possible for exp_bregman's d = -|dloc|/scale -- a
3-term series takes over (truncation below 1e-15 relative). Rounding back to float32 adds
its half ulp. The double-word kernels of ``_generic`` remain the float64 path.

``xp`` gives where/log/log1p/expm1/exp/abs for the backend; inputs are float64 arrays.
Unused branch lanes get benign inputs, so gradients are never NaN.
"""

from __future__ import annotations

from typing import Any

Array = Any
SERIES = 1e-5


def _h(xp: Any, s: Array, log1p_s: Array | None = None) -> Array:
    tiny = xp.abs(s) < SERIES
    st = xp.where(tiny, s, 0.0 * s)
    series = st * st * (0.5 - st / 3.0 + st * st / 4.0)
    sf = xp.where(tiny, 1.0 + 0.0 * s, s)
    log1p = xp.log1p(sf) if log1p_s is None else xp.where(tiny, xp.log1p(sf), log1p_s)
    return xp.where(tiny, series, sf - log1p)


def neglog_bregman(xp: Any, x: Array, d: Array) -> Array:
    """d/x - log1p(d/x); near the pole x + d -> 0 the log is log(x + d) - log(x), exact here
    because a float32 sum is exact in float64."""
    s = d / x
    pole = s < -0.5
    y = xp.where(pole, x + d, 1.0 + 0.0 * x)
    xf = xp.where(pole, x, 1.0 + 0.0 * x)
    return _h(xp, s, xp.where(pole, xp.log(y) - xp.log(xf), xp.log1p(xp.where(pole, 0.0 * s, s))))


def neglog_bregman_split(xp: Any, s: Array, log_r: Array) -> Array:
    """h(s) with log(1 + s) = log_r known: s - log_r beyond |s| = 1/2."""
    near = xp.abs(s) <= 0.5
    return xp.where(near, _h(xp, xp.where(near, s, 0.0 * s)), s - log_r)


def xlogx_bregman(xp: Any, x: Array, d: Array) -> Array:
    """(x + d) log((x + d)/x) - d, with 0 log 0 = 0 (y = 0 gives x) and +inf for x = 0 < y.
    log1p(d/x) carries the log except near the pole (d/x < -1/2: log y - log x)."""
    y = x + d
    u = d / xp.where(x == 0, 1.0 + 0.0 * x, x)
    tiny = (xp.abs(u) < SERIES) & (x > 0)
    ut = xp.where(tiny, u, 0.0 * u)
    series = x * ut * ut * (0.5 - ut / 6.0 + ut * ut / 12.0)
    edge = tiny | (y == 0)
    yf = xp.where(edge, 1.0 + 0.0 * y, y)
    xf = xp.where(edge, 1.0 + 0.0 * x, x)
    uf = xp.where(edge, 0.0 * u, u)
    pole = (uf < -0.5) | (xf == 0)  # x = 0 < y: log y - log 0 = +inf
    log_ratio = xp.where(pole, xp.log(yf) - xp.log(xf), xp.log1p(xp.where(pole, 0.0 * uf, uf)))
    direct = yf * log_ratio - xp.where(edge, 0.0 * d, d)
    return xp.where(y == 0, x, xp.where(tiny, series, direct))


def exp_bregman(xp: Any, x: Array, d: Array) -> Array:
    """exp(x) (expm1(d) - d); for d > 1 as exp(x + d) (1 - (1 + d) exp(-d)), whose second
    factor lies in [0.26, 1): no inf - inf, no 0 * inf where exp(x) underflows and expm1(d)
    overflows."""
    tiny = xp.abs(d) < SERIES
    big = d > 1.0
    dt = xp.where(tiny, d, 0.0 * d)
    series = dt * dt * (0.5 + dt / 6.0 + dt * dt / 24.0)
    dm = xp.where(tiny | big, 1.0 + 0.0 * d, d)
    db = xp.where(big, d, 2.0 + 0.0 * d)
    small = xp.exp(x) * xp.where(tiny, series, xp.expm1(dm) - dm)
    large = xp.exp(x + db) * (1.0 - (1.0 + db) * xp.exp(-db))
    return xp.where(d == 0, xp.abs(0.0 * x), xp.where(big, large, small))
