"""numpy backend of the Bregman kernels (same names and results as symkl.kernels.torch).

Arrays of any floating dtype (Python numbers take the other argument's dtype, integer
arrays count as float64), broadcast together. The kernels compute in float64 and return
the common input dtype (see symkl.kernels._float64). Each call evaluates every branch on
every element and selects with ``np.where``, so invalid intermediate values in unselected
lanes are expected: floating-point warnings are silenced inside the calls.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from numpy.typing import ArrayLike

from symkl.kernels import _float64

__all__ = ["digamma", "exp_bregman", "lgamma_bregman", "lgamma_residual_bregman", "log1p_ratio", "log_ratio",
           "neglog_bregman", "neglog_bregman_split", "poisson_entropy", "product_difference", "xlogx_bregman"]


class _Numpy:
    """The array namespace the algorithms of symkl.kernels._float64 are written against."""

    where, log, log1p, expm1, exp, sqrt, abs = np.where, np.log, np.log1p, np.expm1, np.exp, np.sqrt, np.abs
    both, either = np.logical_and, np.logical_or


def _apply(kernel: Callable, *args: ArrayLike | None, target: _float64.Target | None = None) -> np.ndarray:
    """Run a float64 algorithm on the arguments (``None`` passes through: an optional
    argument left out) and return their common dtype; the precision target follows that
    dtype unless given."""
    # Promote before converting: Python numbers are weak and take the array's dtype.
    given = [v if isinstance(v, (int, float, np.ndarray, np.generic)) else np.asarray(v)
             for v in args if v is not None]
    dtype = np.result_type(*given)
    if dtype.kind in "biu":
        dtype = np.dtype(np.float64)
    if dtype.kind != "f":
        raise TypeError(f"symkl.kernels need floating-point arguments, not {dtype}")
    if target is None:
        target = _float64.FLOAT64 if dtype == np.float64 else _float64.NARROW
        if not all(_float64.narrow_target_holds(a) for a in args if isinstance(a, (int, float))):
            target = _float64.FLOAT64
    wide = tuple(None if v is None else np.asarray(v, np.float64) for v in args)
    with np.errstate(all="ignore"):  # also: float64 -> float32 overflowing to inf
        out = kernel(_Numpy, *wide, target=target)
        return np.asarray(out).astype(dtype, copy=False)


def _documented_by(algorithm: Callable) -> Callable[[Callable], Callable]:
    # The contract (formula, domain, conventions, algorithm) is written once, in _float64.
    def decorate(fn: Callable) -> Callable:
        fn.__doc__ = algorithm.__doc__
        return fn

    return decorate


@_documented_by(_float64.neglog_bregman)
def neglog_bregman(x: ArrayLike, d: ArrayLike) -> np.ndarray:
    return _apply(_float64.neglog_bregman, x, d)


@_documented_by(_float64.xlogx_bregman)
def xlogx_bregman(x: ArrayLike, d: ArrayLike, y: ArrayLike | None = None) -> np.ndarray:
    return _apply(_float64.xlogx_bregman, x, d, y)


@_documented_by(_float64.exp_bregman)
def exp_bregman(x: ArrayLike, d: ArrayLike) -> np.ndarray:
    return _apply(_float64.exp_bregman, x, d)


@_documented_by(_float64.lgamma_bregman)
def lgamma_bregman(x: ArrayLike, d: ArrayLike, y: ArrayLike | None = None) -> np.ndarray:
    return _apply(_float64.lgamma_bregman, x, d, y)


@_documented_by(_float64.lgamma_residual_bregman)
def lgamma_residual_bregman(x: ArrayLike, d: ArrayLike, y: ArrayLike | None = None) -> np.ndarray:
    return _apply(_float64.lgamma_residual_bregman, x, d, y)


@_documented_by(_float64.product_difference)
def product_difference(a: ArrayLike, b: ArrayLike, c: ArrayLike, e: ArrayLike) -> np.ndarray:
    return _apply(_float64.product_difference, a, b, c, e)


@_documented_by(_float64.neglog_bregman_split)
def neglog_bregman_split(s: ArrayLike, log_r: ArrayLike) -> np.ndarray:
    return _apply(_float64.neglog_bregman_split, s, log_r)


@_documented_by(_float64.log_ratio)
def log_ratio(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    return _apply(_float64.log_ratio, a, b)


@_documented_by(_float64.log1p_ratio)
def log1p_ratio(s: ArrayLike, y: ArrayLike, x: ArrayLike) -> np.ndarray:
    return _apply(_float64.log1p_ratio, s, y, x)


@_documented_by(_float64.digamma)
def digamma(x: ArrayLike) -> np.ndarray:
    return _apply(_float64.digamma, x)


@_documented_by(_float64.poisson_entropy)
def poisson_entropy(rate: ArrayLike) -> np.ndarray:
    return _apply(_float64.poisson_entropy, rate)
