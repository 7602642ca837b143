"""float64 Bregman kernels for -log and y log y by one short series each: ~30 array
operations and a few ULP, where the double-word kernels of ``_generic`` cost ~150 and
eager torch pays one memory pass per operation. Here, for s in [-0.6, 1.5], z = s/(2+s) lies in [-3/7, 3/7] and

    h = s z - 2 z^3 P(z^2),   P(w) = (atanh(sqrt w)/sqrt w - 1)/w,

with P a Chebyshev fit on [0, 9/49] (13 terms, fit error below 1e-17): s z dominates the
second term by at least 1/(0.9 z), so nothing cancels. Outside that range the caller's
``s - log(r)`` (``log r`` exact from the scales) loses at most ~2 bits. y log y uses the same
P on a wider range (see ``xlogx_bregman``).
"""

from __future__ import annotations

from typing import Any

import mpmath

Array = Any
S_LOW, S_HIGH = -0.6, 1.5


def fit_p(w_high: mpmath.mpf, terms: int) -> tuple[float, ...]:
    """Chebyshev fit of P(w) = (atanh(sqrt w)/sqrt w - 1)/w on [0, w_high], highest power
    first (mpmath at 40 digits; computed at import, never inside traced code)."""
    with mpmath.workdps(40):
        def p(w):
            if w == 0:
                return mpmath.mpf(1) / 3
            r = mpmath.sqrt(w)
            return (mpmath.atanh(r) / r - 1) / w

        return tuple(float(c) for c in mpmath.chebyfit(p, [0, w_high], terms))


def _poly(w: Array, coeffs: tuple[float, ...]) -> Array:
    out = coeffs[0] + 0.0 * w
    for c in coeffs[1:]:
        out = out * w + c
    return out


#: h's series on z in [-3/7, 3/7] (13 terms, fit error < 1e-17).
P_COEFFICIENTS = fit_p(mpmath.mpf(9) / 49, 13)


def h_near(xp: Any, s: Array) -> Array:
    """s - log1p(s) for s in [S_LOW, S_HIGH] (other lanes: any finite value)."""
    z = s / (2.0 + s)
    w = z * z
    return s * z - 2.0 * (z * w) * _poly(w, P_COEFFICIENTS)


def neglog_bregman_split(xp: Any, s: Array, log_r: Array) -> Array:
    """h(s) given log(1 + s) = log_r: the series inside [S_LOW, S_HIGH], s - log_r outside."""
    near = (s >= S_LOW) & (s <= S_HIGH)
    return xp.where(near, h_near(xp, xp.where(near, s, 0.0)), s - log_r)



#: xlogx uses a wider z-range, z in [-3/5, 3/5] (u in [-0.75, 3]), so that its direct form
#: y log(y/x) - d outside loses at most ~1.5 bits; the same P fitted on [0, 9/25].
U_LOW, U_HIGH = -0.75, 3.0

P_WIDE_COEFFICIENTS = fit_p(mpmath.mpf(9) / 25, 18)


def xlogx_bregman(xp: Any, x: Array, d: Array, log_ratio: Any) -> Array:
    """y log(y/x) - y + x with y = x + d (0 log 0 = 0: y = 0 gives x; x = 0 < y gives +inf).

    For u = d/x in [-0.75, 3]: x g(u), g(u) = (1+u) log1p(u) - u written in z = u/(2+u) as
    u z (1 + (1+z) z P(z^2)): no cancellation. Outside: y log(y/x) - d with the
    log exact from the ratio.
    """
    y = x + d
    zero = x == 0
    xf = xp.where(zero, 1.0, x)
    u = d / xf
    near = (u >= U_LOW) & (u <= U_HIGH)
    un = xp.where(near, u, 0.0)
    z = un / (2.0 + un)
    poly = _poly(z * z, P_WIDE_COEFFICIENTS)
    # 2 z^2 / (1 - z) = u z (as 1 - z = 2/(2 + u)): fewer roundings than dividing by 1 - z.
    close = (x * un) * z * (1.0 + (1.0 + z) * z * poly)  # x u = d first: no subnormal u z
    yf = xp.where(y == 0, 1.0, y)
    far = yf * log_ratio(yf, xf) - d
    value = xp.where(near, close, far)
    return xp.where(y == 0, x, xp.where(zero, xp.where(y > 0, float("inf"), 0.0), value))
