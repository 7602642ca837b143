"""The kernel algorithms, written once against a tiny array interface.

numpy arrays and torch tensors share the arithmetic operators, so the algorithms below
are plain Python over "arrays"; the few operations that differ (``where``, exponent
extraction, rounding) come in through :class:`Ops`. Both backends therefore execute the
same sequence of IEEE operations and return bit-identical results.

Why double words: a result within 2 ulp cannot afford the rounding of s = d/x (it enters
squared, i.e. twice) nor a libm log1p/expm1 whose ~1 ulp error is amplified by the
cancellation in s - log1p(s) or expm1(d) - d. So ratios, shifted arguments and leading
terms are carried as unevaluated sums hi + lo (error-free transforms of Dekker and Knuth,
no FMA needed), no libm log or exp is called at all, and only small tails (a few percent
of the result) are evaluated in working precision.

Why no branches: every formula is evaluated on every element and the right one selected
with ``where``. Special elements (poles, overflow) are replaced by harmless inputs
*before* any arithmetic ("double where"), so unselected lanes can produce neither inf/NaN
values nor NaN gradients; exponent bookkeeping is piecewise constant and gradient-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from symkl.kernels._coefficients import SQRT2, Precision

Array = Any  # numpy.ndarray or torch.Tensor; only operators and Ops are used on it

INF = float("inf")


@dataclass(frozen=True)
class Ops:
    """What the algorithms need beyond + - * / and comparisons.

    Everything but ``where`` is exponent bookkeeping: piecewise constant, no gradient.
    """

    prec: Precision
    #: where(cond, a, b) in the working dtype (a, b may be Python floats)
    where: Callable[[Array, Any, Any], Array]
    #: 2**e <= |a| < 2**(e+1) for normal a; 2**emin for subnormal a and 0, so it is
    #: always a safe, exact divisor
    pow2_floor: Callable[[Array], Array]
    #: (2**e, e as a float) as above; lift=True also gets subnormal a right (costs more)
    exponent: Callable[[Array, bool], tuple[Array, Array]]
    #: 2**k for integer-valued k in [emin, emax]
    pow2: Callable[[Array], Array]
    #: round half to even
    rint: Callable[[Array], Array]
    #: clip(a, lo, hi), applied to exponents only (never to results)
    clip: Callable[[Array, float, float], Array]


# ---------------------------------------------------------------- error-free transforms


def two_sum(a: Array, b: Array) -> tuple[Array, Array]:
    """s + e == a + b exactly, s = fl(a + b) (Knuth; no condition on a, b)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def fast_two_sum(a: Array, b: Array) -> tuple[Array, Array]:
    """s + e == a + b exactly, valid when |a| >= |b| or a == 0 (Dekker)."""
    s = a + b
    return s, b - (s - a)


def _split(o: Ops, a: Array) -> tuple[Array, Array]:
    # Veltkamp: hi keeps the top half of the significand, lo the rest, hi + lo == a.
    c = o.prec.splitter * a
    hi = c - (c - a)
    return hi, a - hi


def two_prod(o: Ops, a: Array, b: Array) -> tuple[Array, Array]:
    """p + e == a * b exactly (Dekker, no FMA needed); |a|, |b| <= prec.split_limit."""
    p = a * b
    ah, al = _split(o, a)
    bh, bl = _split(o, b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def two_square(o: Ops, a: Array) -> tuple[Array, Array]:
    """p + e == a * a exactly."""
    p = a * a
    ah, al = _split(o, a)
    return p, ((ah * ah - p) + 2.0 * ah * al) + al * al


def horner(y: Array, coeffs: Sequence[float]) -> Array:
    acc = coeffs[-1] * y + coeffs[-2]
    for c in reversed(coeffs[:-2]):
        acc = acc * y + c
    return acc


def div_dw(o: Ops, n: Array, den_hi: Array, den_lo: Array | float = 0.0) -> tuple[Array, Array]:
    """q + q_lo == n / (den_hi + den_lo) to ~2**-2p relative, for finite den_hi > 0.

    q is the correctly rounded n / den_hi; q_lo comes from the exact remainder, formed
    after scaling by the power of two below den_hi so that it can neither over- nor
    underflow. The correction is dropped (0) for |q| beyond the splitting limit, where
    it no longer matters.
    """
    p = o.pow2_floor(den_hi)
    a = den_hi / p
    q = n / den_hi
    ok = abs(q) <= o.prec.split_limit
    qm = o.where(ok, q, 0.0)
    ph, pl = two_prod(o, qm, a)
    rem = ((o.where(ok, n / p, 0.0) - ph) - pl) - qm * (den_lo / p)
    return q, rem / a


# ------------------------------------------------------------------------- log kernel


def neglog_dw(o: Ops, s_hi: Array, s_lo: Array, lift: bool = False) -> tuple[Array, Array]:
    """h(s) = s - log1p(s) as a double word, for s = s_hi + s_lo > -1.

    Range reduction 1 + s = 2**k m, m in [1/sqrt2, sqrt2), f = m - 1:

        h(s) = (s - f - k ln2) + h(f)

    For k == 0 this is f = s itself (s is not routed through 1 + s there: that would cap
    the absolute accuracy near u**2, useless once h ~ s**2/2 is smaller). For k != 0,
    |s| > 0.29 and the bracket is assembled exactly from double words. Then, |f| <= 0.415,
    z = f / (2 + f) and log1p(f) = 2 atanh(z):

        h(f) = f**2 / (2 + f) - 2 (atanh(z) - z),   |z| <= 0.1716

    with the leading quotient as a double word and the tail (at most ~6% of h(f)) as a
    short series. No piece is cancelled against another, so nothing amplifies rounding.
    lift=True keeps the reduction exact for subnormal 1 + s (only xlogx can produce it).
    """
    P = o.prec
    w_hi, w_lo = two_sum(1.0, s_hi)
    w_hi, w_lo = fast_two_sum(w_hi, w_lo + s_lo)
    p, e = o.exponent(w_hi, lift)
    r = w_hi / p
    up = r >= SQRT2
    k = o.where(up, e + 1.0, e)
    m_lo = w_lo / p
    m_hi, m_lo = fast_two_sum(o.where(up, 0.5 * r, r) - 1.0, o.where(up, 0.5 * m_lo, m_lo))
    a, ea = two_sum(s_hi, -m_hi)
    t_hi, eb = two_sum(a, -(k * P.ln2_hi))
    t_lo = (ea + eb) + (s_lo - m_lo) - k * P.ln2_lo
    # k == 0 lanes take f = s and drop the bracket through where, not through s - s: its
    # +1/-1 gradient paths would swamp the tiny true derivative (~s) in autograd's sums.
    reduced = k != 0
    t_hi = o.where(reduced, t_hi, 0.0)
    t_lo = o.where(reduced, t_lo, 0.0)
    f_hi = o.where(reduced, m_hi, s_hi)
    f_lo = o.where(reduced, m_lo, s_lo)

    q_hi, q_lo = two_square(o, f_hi)
    q_lo = q_lo + 2.0 * f_hi * f_lo
    n_hi, n_lo = fast_two_sum(2.0, f_hi)
    n_lo = n_lo + f_lo
    l_hi = q_hi / n_hi
    ph, pl = two_prod(o, l_hi, n_hi)
    l_lo = (((q_hi - ph) - pl) + q_lo - l_hi * n_lo) / n_hi
    z = f_hi / n_hi
    y = z * z
    tail = 2.0 * z * y * horner(y, P.atanh_tail)

    hi, e1 = two_sum(t_hi, l_hi)
    return fast_two_sum(hi, (e1 + t_lo) + (l_lo - tail))


def _h_of_ratio(o: Ops, n: Array, den: Array, den_lo: Array | float = 0.0) -> Array:
    """h(n / (den + den_lo)), den > 0, n / den > -1 and finite."""
    return neglog_dw(o, *div_dw(o, n, den, den_lo))[0]


def _xlogx_core(o: Ops, x: Array, x_lo: Array | float, d: Array, lift: bool) -> Array:
    """y h(-d/y), y = (x + x_lo) + d > 0, x > 0: (x+d) log1p(d/x) - d without special cases."""
    y_hi, y_lo = two_sum(x, d)
    y_hi, y_lo = fast_two_sum(y_hi, y_lo + x_lo)
    h_hi, h_lo = neglog_dw(o, *div_dw(o, -d, y_hi, y_lo), lift=lift)
    # y * h with y scaled into [1, 2), so that the product splits safely for any y.
    p = o.pow2_floor(y_hi)
    ys_hi, ys_lo = y_hi / p, y_lo / p
    r_hi, r_lo = two_prod(o, ys_hi, h_hi)
    return (r_hi + (r_lo + (ys_hi * h_lo + ys_lo * h_hi))) * p


def neglog_bregman(o: Ops, x: Array, d: Array) -> Array:
    """B_{-log}(x + d, x) = d/x - log1p(d/x) = h(s),  h(s) = s - log1p(s),  s = d/x.

    Domain x > 0, x + d >= 0. Conventions: +inf at the pole x + d == 0 (and where d/x
    overflows); exactly 0 for d == 0. Always >= 0; error below 1 ulp (max measured 0.7).

    Why the branches (all evaluated, one selected per element): s is formed as a double
    word, since h ~ s**2/2 would double its rounding error. 1 + s = 2**k m is reduced to
    f = m - 1, |f| <= 0.415, with h(s) = (s - f - k ln2) + h(f) assembled exactly; k == 0
    keeps f = s, for full relative accuracy at tiny s. h(f) = f**2/(2+f) - 2(atanh z - z),
    z = f/(2+f), with the leading quotient exact and a short series for the small tail.
    Pole and overflow lanes are computed on d = 0 and then replaced by +inf, so their
    gradients are 0, never NaN.
    """
    infinite = ((x + d) == 0) | ~(d / x < INF)
    h = _h_of_ratio(o, o.where(infinite, 0.0, d), x)
    return o.where(infinite, INF, h)


def neglog_bregman_split(o: Ops, s: Array, log_r: Array) -> Array:
    """h(s) = s - log1p(s) when log(1 + s) = log_r is also given (r = y/x, s = r - 1).

    For ratios of scales: s comes from differences ((a - b)/b ...), exact near r = 1,
    while 1 + s loses r entirely when r is far below 1 (1e-60 + 1 rounds to 1) or overflows.
    So |s| <= 1/2 uses the cancellation-free h(s), and beyond it s - log_r, which has no
    cancellation there (h >= 0.19 |s|) and keeps log_r exact (log a - log b never under-
    or overflows). The unused lane is fed s = 0, so its gradient is 0, never NaN.
    """
    near = abs(s) <= 0.5
    h = neglog_bregman(o, 1.0 + 0.0 * s, o.where(near, s, 0.0))
    return o.where(near, h, s - log_r)


def xlogx_bregman(o: Ops, x: Array, d: Array) -> Array:
    """B_{x log x}(x + d, x) = (x+d) log1p(d/x) - d = y log(y/x) - y + x,  y = x + d.

    The generalised KL term. Domain x >= 0, x + d >= 0. Conventions: y == 0 gives exactly
    x (0 log 0 = 0); x == 0 and d == 0 gives 0; x == 0 and d > 0 gives +inf (as do an
    x/y below the smallest subnormal and an overflowing x + d). Exactly 0 for d == 0.
    Always >= 0; error below 1 ulp (max measured 0.8).

    Why the branches: y log(y/x) - y + x = y h(-d/y) with h(s) = s - log1p(s), so this is
    the neglog_bregman kernel at the ratio s = -d/y (formed as a double word from the
    exact y = x + d), times y as an exact double-word product. The special cases are
    computed on harmless inputs (x = 1, d = 0) and substituted afterwards, so their
    gradients are finite, never NaN.
    """
    y0 = x + d
    zero = y0 == 0
    pole = ~zero & (x / o.where(zero, 1.0, y0) == 0)  # x == 0 < y, or x/y underflows
    special = zero | pole
    val = _xlogx_core(o, o.where(special, 1.0, x), 0.0, o.where(special, 0.0, d), lift=True)
    return o.where(zero, x, o.where(pole, INF, val))


# ------------------------------------------------------------------------- exp kernel


def _reduce_ln2(o: Ops, v: Array) -> tuple[Array, Array, Array]:
    """v = k ln2 + (r_hi + r_lo), |r| <= ~ln2/2, for |v| <= prec.exp_arg_limit (Cody-Waite)."""
    P = o.prec
    k = o.rint(v * P.inv_ln2)
    t = v - k * P.ln2_hi  # exact: k * ln2_hi is exact and t is a Sterbenz difference
    r_hi, r_lo = two_sum(t, -(k * P.ln2_lo))
    return k, r_hi, r_lo


def _expm1_minus_id(o: Ops, r_hi: Array, r_lo: Array) -> tuple[Array, Array]:
    """E(r) = exp(r) - 1 - r as a double word, |r| <= ~ln2/2.

    r**2 / 2 exactly, plus r_hi r_lo, plus the tail r**3 sum r**j/(j+3)! (<= 12% of E).
    """
    sq_hi, sq_lo = two_square(o, r_hi)
    tail = sq_hi * r_hi * horner(r_hi, o.prec.exp_tail)
    return fast_two_sum(0.5 * sq_hi, (0.5 * sq_lo + r_hi * r_lo) + tail)


def _ldexp(o: Ops, v: Array, n: Array) -> Array:
    """v * 2**n for integer-valued n of any size, in two exactly representable factors."""
    P = o.prec
    n1 = o.clip(o.rint(0.5 * n), P.emin, P.emax)
    n2 = o.clip(n - n1, P.emin, P.emax)
    return v * o.pow2(n1) * o.pow2(n2)


def exp_bregman(o: Ops, x: Array, d: Array) -> Array:
    """B_exp(x + d, x) = exp(x) (expm1(d) - d) = exp(x + d) - exp(x) (1 + d).

    Domain: all finite x, d. Exactly 0 for d == 0; always >= 0; overflows to +inf and
    underflows to 0 like exp(x + d). Error about 1 ulp (max measured 1.06) while |x| and
    |d| are below prec.exp_arg_limit (1418 in float64, 353 in float32) and d**2/2 does
    not underflow; beyond that the result is only meaningful when it under- or overflows
    anyway (never NaN). The autograd gradient is NaN-free wherever exp(x) is finite, and
    at d == 0 always.

    Why the branches: exp(x) = 2**kx X and exp(d) = 2**kd exp(r) (Cody-Waite, no libm
    exp), and with E(r) = exp(r) - 1 - r, sig = 2**min(kd, 0), tau = 2**-max(kd, 0):

        expm1(d) - d = 2**max(kd, 0) D,   D = sig E(r) + (sig - tau) + (sig r - tau d)

    where every term but sig E(r) is exact and kd == 0 gives D = E(d) itself, so small
    d never meets a cancellation. E(r) is r**2/2 (exact) plus a short series (<= 12%).
    The result 2**(kx + max(kd, 0)) X D is scaled once, at the end. Arguments beyond the
    reduction range are reduced as 0 (and only their power of two kept), and a very
    large D uses a plain product, so no lane can produce inf - inf or 0 * inf.
    """
    P = o.prec
    lim = P.exp_arg_limit
    x_in = abs(x) <= lim
    d_in = abs(d) <= lim
    # Exponents of out-of-range arguments: clipped far beyond any finite result, so that
    # kx + kd can never be inf - inf.
    k_big = 2.0 * (P.emax - P.emin)
    kx, rx_hi, rx_lo = _reduce_ln2(o, o.where(x_in, x, 0.0))
    kx = o.where(x_in, kx, o.clip(o.rint(x * P.inv_ln2), -k_big, k_big))
    ex_hi, ex_lo = _expm1_minus_id(o, rx_hi, rx_lo)
    s1, e1 = two_sum(1.0, rx_hi)
    s2, e2 = two_sum(s1, ex_hi)
    X_hi, X_lo = fast_two_sum(s2, (e1 + e2) + (rx_lo + ex_lo))

    kd, r_hi, r_lo = _reduce_ln2(o, o.where(d_in, d, 0.0))
    kd = o.where(d_in, kd, o.clip(o.rint(d * P.inv_ln2), -k_big, k_big))
    er_hi, er_lo = _expm1_minus_id(o, r_hi, r_lo)
    k_neg = o.where(kd < 0, kd, 0.0)
    k_pos = o.where(kd > 0, kd, 0.0)
    sig = o.pow2(o.clip(k_neg, P.emin, 0.0))
    tau = o.pow2(o.clip(-k_pos, P.emin, 0.0))
    b_hi, b_lo = two_sum(sig * r_hi, -(tau * d))
    s1, e1 = two_sum(sig - tau, b_hi)
    s2, e2 = two_sum(s1, sig * er_hi)
    D_hi, D_lo = fast_two_sum(s2, (e1 + e2) + ((b_lo + sig * r_lo) + sig * er_lo))
    # kd == 0 selects E(d) itself rather than letting sig r - tau d cancel to 0 (which
    # would also cancel +1/-1 gradient paths against the tiny derivative expm1(d)).
    small = kd == 0
    D_hi = o.where(small, er_hi, D_hi)
    D_lo = o.where(small, er_lo, D_lo)
    # Out-of-range d: exp(d) is 2**kd (the result overflows) or 0 (D = -1 - d).
    D_hi = o.where(d_in, D_hi, o.where(d > 0, 1.0, -1.0 - d))
    D_lo = o.where(d_in, D_lo, 0.0)

    # X * D; D is only unbounded (~ -d) for very negative d, where a plain product suffices.
    ok = abs(D_hi) <= P.split_limit
    p_hi, p_lo = two_prod(o, X_hi, o.where(ok, D_hi, 0.0))
    p_hi = o.where(ok, p_hi, X_hi * D_hi)
    val = p_hi + (p_lo + (X_hi * D_lo + X_lo * D_hi))
    # d == 0 (val == 0) is not scaled at all: 0 * 2**n, or its gradient, must not meet an
    # overflowing exp(x).
    return _ldexp(o, val, o.where(d == 0, 0.0, kx + k_pos))


# ---------------------------------------------------------------------- lgamma kernel


def lgamma_bregman(o: Ops, x: Array, d: Array) -> Array:
    """B_lnGamma(x + d, x) = lgamma(x + d) - lgamma(x) - d digamma(x).

    Domain x > 0, x + d > 0 (x + d == 0, or x + d overflowing, gives +inf). Exactly 0 for
    d == 0; always >= 0; error about 1 ulp (max measured 1.07). No lgamma or digamma is
    called.

    Why the branches: with n = prec.lgamma_shift (8 in float64, 4 in float32) and
    h(s) = s - log1p(s), the recurrence lnGamma(x) = lnGamma(x+n) - sum_{j<n} log(x+j) gives

        B(x, d) = B(x + n, d) + sum_{j<n} h(d / (x + j)),

    applied where min(x, x + d) < n so that both Stirling points are >= n. There, with
    lnGamma(z) = (z - 1/2) ln z - z + ln(2 pi)/2 + sum_k c_k z**(1-2k),

        B(z, d) = z g(u) + h(u)/2 + u**2 w sum_k c_k E_{2k-2}(t, w),

    u = d/z, t = 1/z, w = 1/(z + d), z g(u) = xlogx_bregman(z, d), h(u) = neglog_bregman(z, d)
    and E_m(t, w) = sum_{a+b=m} (a+1) t**a w**b. The last sum is the Bregman divergence of
    z**(1-2k), z**(1-2k) [(1+u)**(1-2k) - 1 + (2k-1) u], rewritten with positive terms
    only (no small-u branch needed, no cancellation for any u > -1). x + j and z are exact
    double words, and the (all positive) terms are accumulated as a double word.
    """
    P = o.prec
    n = P.lgamma_shift
    y = x + d
    infinite = (y == 0) | ~(y < INF) | ~(d / x < INF)
    d = o.where(infinite, 0.0, d)
    shifted = o.where(d < 0, x + d, x) < float(n)
    z, z_lo = two_sum(x, o.where(shifted, float(n), 0.0))
    acc, acc_lo = two_sum(_xlogx_core(o, z, z_lo, d, lift=False), 0.5 * _h_of_ratio(o, d, z, z_lo))
    ds = o.where(shifted, d, 0.0)
    for j in range(n):
        term = _h_of_ratio(o, ds, *two_sum(x, float(j))) if j else _h_of_ratio(o, ds, x)
        acc, err = two_sum(acc, term)
        acc_lo = acc_lo + err

    t = 1.0 / z
    w = 1.0 / (z + d)
    u = d * t
    c = P.stirling
    series = c[0]  # c_1 E_0, E_0 = 1
    w_pow = h_m = e_m = 1.0
    for m in range(1, 2 * len(c) - 1):
        w_pow = w_pow * w
        h_m = t * h_m + w_pow  # h_m = sum_{a+b=m} t**a w**b
        e_m = t * e_m + h_m  # E_m = t E_{m-1} + h_m
        if m % 2 == 0:
            series = series + c[m // 2] * e_m
    val = acc + (acc_lo + u * (u * w) * series)  # u w <= 1/z: no spurious overflow
    # An overflowing term leaves acc = inf and NaN error terms: the result is then inf.
    return o.where(infinite | ~(acc < INF), INF, val)
