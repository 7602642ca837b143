"""numpy backend of the Bregman kernels (same names and results as symkl.kernels.torch).

Arrays of float32 or float64 (Python numbers take the other argument's dtype, integer
arrays count as float64), broadcast together; the result has their common dtype and all
arithmetic stays in it. Each call evaluates every branch on every element and selects
with ``np.where``, so invalid intermediate values in unselected lanes are expected:
floating-point warnings are silenced inside the calls.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np
from numpy.typing import ArrayLike

from symkl.kernels import _generic, _series, _widened
from symkl.kernels._coefficients import FLOAT32, FLOAT64

__all__ = ["exp_bregman", "lgamma_bregman", "log_ratio", "neglog_bregman", "neglog_bregman_split", "xlogx_bregman"]

# dtype -> (precision, same-size integer type, exponent-field mask)
_FORMATS = {
    np.dtype(np.float64): (FLOAT64, np.int64, 0x7FF0000000000000),
    np.dtype(np.float32): (FLOAT32, np.int32, 0x7F800000),
}


@lru_cache(maxsize=None)
def _ops(dtype: np.dtype) -> _generic.Ops:
    prec, itype, exp_mask = _FORMATS[dtype]
    mbits = prec.mant_bits - 1
    bias = prec.emax
    min_normal_bits = 1 << mbits  # exponent field of 2**emin
    up = prec.mant_bits + 1  # 2**up lifts every subnormal into the normal range
    lift, drop = dtype.type(2.0**up), dtype.type(2.0**-up)

    def where(cond, a, b):
        return np.asarray(np.where(cond, a, b)).astype(dtype, copy=False)

    def exponent_bits(a):
        return np.maximum(np.asarray(a).view(itype) & exp_mask, min_normal_bits)

    def pow2_floor(a):
        return exponent_bits(a).view(dtype)

    def exponent(a, lifted):
        a = np.asarray(a)
        if lifted:
            small = np.abs(a) < 1
            a = np.where(small, a * lift, a)
        bits = exponent_bits(a)
        p, e = bits.view(dtype), (bits >> mbits).astype(dtype) - dtype.type(bias)
        if lifted:
            p, e = np.where(small, p * drop, p), np.where(small, e - dtype.type(up), e)
        return p, e

    def pow2(k):
        return ((np.asarray(k).astype(itype) + bias) << mbits).view(dtype)

    return _generic.Ops(
        prec=prec,
        where=where,
        pow2_floor=pow2_floor,
        exponent=exponent,
        pow2=pow2,
        rint=np.rint,
        clip=np.clip,
    )


class _Numpy:
    """The array namespace for symkl.kernels._widened."""

    where, log, log1p, expm1, exp, abs = np.where, np.log, np.log1p, np.expm1, np.exp, np.abs


def _apply(kernel: Callable, x: ArrayLike, d: ArrayLike, widened: Callable | None = None,
           series: Callable | None = None) -> np.ndarray:
    """Promote and convert the arguments; float32 with a ``widened`` kernel is computed in
    float64 by it (see symkl.kernels._widened), everything else by the double-word kernel."""
    # Promote before converting: Python numbers are weak and take the array's dtype.
    x, d = (v if isinstance(v, (int, float, np.ndarray, np.generic)) else np.asarray(v) for v in (x, d))
    dtype = np.result_type(x, d)
    if dtype.kind in "biu":
        dtype = np.dtype(np.float64)
    if dtype not in _FORMATS:
        raise TypeError(f"symkl.kernels support float32 and float64, not {dtype}")
    x, d = np.asarray(x, dtype), np.asarray(d, dtype)
    with np.errstate(all="ignore"):
        if widened is not None and dtype == np.float32:
            out = widened(_Numpy, x.astype(np.float64), d.astype(np.float64))
            return np.asarray(out).astype(np.float32)
        if series is not None and dtype == np.float64:
            return np.asarray(series(_Numpy, x, d))
        return np.asarray(kernel(_ops(dtype), x, d))


def _shared_doc(kernel: Callable) -> Callable[[Callable], Callable]:
    # The contract (formula, domain, conventions, algorithm) is written once, in _generic.
    def decorate(fn: Callable) -> Callable:
        fn.__doc__ = kernel.__doc__
        return fn

    return decorate


@_shared_doc(_generic.neglog_bregman)
def neglog_bregman(x: ArrayLike, d: ArrayLike) -> np.ndarray:
    return _apply(_generic.neglog_bregman, x, d, widened=_widened.neglog_bregman)


@_shared_doc(_generic.xlogx_bregman)
def xlogx_bregman(x: ArrayLike, d: ArrayLike) -> np.ndarray:
    return _apply(_generic.xlogx_bregman, x, d, widened=_widened.xlogx_bregman,
                  series=lambda ns, x, d: _series.xlogx_bregman(ns, x, d, log_ratio))


@_shared_doc(_generic.exp_bregman)
def exp_bregman(x: ArrayLike, d: ArrayLike) -> np.ndarray:
    return _apply(_generic.exp_bregman, x, d, widened=_widened.exp_bregman)


@_shared_doc(_generic.lgamma_bregman)
def lgamma_bregman(x: ArrayLike, d: ArrayLike) -> np.ndarray:
    return _apply(_generic.lgamma_bregman, x, d)


@_shared_doc(_generic.neglog_bregman_split)
def neglog_bregman_split(s: ArrayLike, log_r: ArrayLike) -> np.ndarray:
    return _apply(_generic.neglog_bregman_split, s, log_r, widened=_widened.neglog_bregman_split,
                  series=_series.neglog_bregman_split)


def log_ratio(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """log(a / b) for a, b > 0 with one logarithm: 2 log(sqrt(a)/sqrt(b)) cannot under- or
    overflow (the ratio of square roots of finite positive floats is representable), where
    a / b can, and log a - log b would cancel for large or tiny a and b. float32 inputs are
    computed in float64, so the result has a single rounding."""
    a, b = np.asarray(a), np.asarray(b)
    dtype = np.result_type(a, b)
    with np.errstate(divide="ignore"):
        if dtype == np.float32:  # computed in float64: a single rounding, at the end
            return (2 * np.log(np.sqrt(a.astype(np.float64)) / np.sqrt(b.astype(np.float64)))).astype(np.float32)
        return 2 * np.log(np.sqrt(a) / np.sqrt(b))
