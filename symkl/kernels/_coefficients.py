"""Constants and series coefficients shared by the numpy and torch kernels.

Everything here is a plain Python float, derived at import time from exact rationals
(``fractions.Fraction``) and correctly rounded once, so both backends see bit-identical
numbers. The only irrational input is ln 2, given below to 60 digits. The series
lengths are the shortest that keep the truncation error below a small fraction of the
target dtype's unit roundoff on the argument ranges the kernels use; the tests check
those bounds against mpmath.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

#: ln 2 to 60 significant digits (far more than the 2 x 53 bits used below).
LN2 = Fraction("0.693147180559945309417232121458176568075500134360255254120680")

#: Reduction threshold for the logarithm: mantissas are brought into [1/sqrt2, sqrt2).
#: Its exact value is immaterial (the branch only changes which identity is used).
SQRT2 = 1.4142135623730951


def bernoulli(n: int) -> Fraction:
    """Bernoulli number B_n (B_1 = +1/2), exactly, by the Akiyama-Tanigawa algorithm."""
    a = [Fraction(0)] * (n + 1)
    for m in range(n + 1):
        a[m] = Fraction(1, m + 1)
        for j in range(m, 0, -1):
            a[j - 1] = j * (a[j - 1] - a[j])
    return a[0]


def _split(value: Fraction, bits: int) -> tuple[float, float]:
    """value = hi + lo with hi on a 2**-bits grid, so k * hi is exact for small integers k."""
    hi = Fraction(round(value * 2**bits), 2**bits)
    return float(hi), float(value - hi)


@dataclass(frozen=True)
class Precision:
    """Per-dtype constants; ``float32`` work must never see a float64-only constant."""

    name: str
    #: significand bits p and the normal exponent range [emin, emax]
    mant_bits: int
    emin: int
    emax: int
    #: Veltkamp splitter 2**ceil(p/2) + 1, and the largest |a| it may multiply safely
    splitter: float
    split_limit: float
    #: ln 2 = ln2_hi + ln2_lo, with k * ln2_hi exact for |k| < 2**(p - ln2_hi_bits)
    ln2_hi: float
    ln2_lo: float
    #: 1 / ln 2, only used to pick the integer k of a reduction (need not be exact)
    inv_ln2: float
    #: |v| up to which exp(v) is reduced with an exact k * ln2_hi
    exp_arg_limit: float
    #: R(y) = sum_j y**j / (2j + 3): (atanh(z) - z) / z**3 with y = z**2, |z| <= 0.1716
    atanh_tail: tuple[float, ...]
    #: sum_j r**j / (j + 3)!: (exp(r) - 1 - r - r**2/2) / r**3 for |r| <= ln2 / 2
    exp_tail: tuple[float, ...]
    #: lgamma_bregman shifts x up by this many unit steps when min(x, x + d) is below it
    lgamma_shift: int
    #: Stirling coefficients c_k = B_2k / (2k (2k - 1)), k = 1..K, used at x >= lgamma_shift
    stirling: tuple[float, ...]


def _precision(
    name: str,
    p: int,
    emin: int,
    emax: int,
    ln2_hi_bits: int,
    n_atanh: int,
    n_exp: int,
    lgamma_shift: int,
    n_stirling: int,
) -> Precision:
    ln2_hi, ln2_lo = _split(LN2, ln2_hi_bits)
    return Precision(
        name=name,
        mant_bits=p,
        emin=emin,
        emax=emax,
        splitter=float(2 ** ((p + 1) // 2) + 1),
        split_limit=float(2 ** (emax - (p + 1) // 2 - 2)),
        ln2_hi=ln2_hi,
        ln2_lo=ln2_lo,
        inv_ln2=float(1 / LN2),
        exp_arg_limit=float(int((2 ** (p - ln2_hi_bits) - 2) * LN2)),
        atanh_tail=tuple(float(Fraction(1, 2 * j + 3)) for j in range(n_atanh)),
        exp_tail=tuple(float(Fraction(1, math.factorial(j + 3))) for j in range(n_exp)),
        lgamma_shift=lgamma_shift,
        stirling=tuple(float(bernoulli(2 * k) / (2 * k * (2 * k - 1))) for k in range(1, n_stirling + 1)),
    )


# Term counts, relative to the leading term: atanh tail 0.1716**(2n+1)/(2n+3), exp tail
# 2 (ln2/2)**(n+1)/(n+3)!, Stirling remainder |B_2K+2| / shift**(2K+2); all below ~eps/8.
# float32 shifts only to 4 (7 Stirling terms): half the shift terms of float64's 8.
FLOAT64 = _precision(
    "float64", 53, -1022, 1023, ln2_hi_bits=42, n_atanh=10, n_exp=13, lgamma_shift=8, n_stirling=12
)
FLOAT32 = _precision(
    "float32", 24, -126, 127, ln2_hi_bits=15, n_atanh=5, n_exp=8, lgamma_shift=4, n_stirling=7
)
