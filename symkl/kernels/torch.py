"""torch backend of the Bregman kernels (same names and results as symkl.kernels.numpy).

Tensors of float32 or float64 (a Python number for either argument is accepted and takes
the other's dtype and device), broadcast together. The result has their promoted dtype
and device, all arithmetic stays in that dtype (Python-float constants never promote),
and autograd flows through the value-carrying operations; the exponent bookkeeping (bit
manipulation, rounding) is piecewise constant and done on detached tensors. Branch-free,
so ``torch.compile(fullgraph=True)`` and ``torch.func.vmap`` apply unchanged; eager mode
pays one kernel launch per elementary operation (a few hundred per call), compiled code
fuses them.
"""

from __future__ import annotations

from typing import Callable

import torch

from symkl.kernels import _generic, _series, _widened
from symkl.kernels._coefficients import FLOAT32, FLOAT64

__all__ = ["exp_bregman", "lgamma_bregman", "log_ratio", "neglog_bregman", "neglog_bregman_split", "xlogx_bregman"]

# dtype -> (precision, same-size integer type, exponent-field mask)
_FORMATS = {
    torch.float64: (FLOAT64, torch.int64, 0x7FF0000000000000),
    torch.float32: (FLOAT32, torch.int32, 0x7F800000),
}


def _make_ops(dtype: torch.dtype) -> _generic.Ops:
    prec, itype, exp_mask = _FORMATS[dtype]
    mbits = prec.mant_bits - 1
    bias = prec.emax
    min_normal_bits = 1 << mbits  # exponent field of 2**emin
    up = prec.mant_bits + 1  # 2**up lifts every subnormal into the normal range

    def where(cond, a, b):
        return torch.where(cond, a, b).to(dtype)

    def exponent_bits(a):
        return (a.detach().view(itype) & exp_mask).clamp_min(min_normal_bits)

    def pow2_floor(a):
        return exponent_bits(a).view(dtype)

    def exponent(a, lifted):
        a = a.detach()
        if lifted:
            small = a.abs() < 1
            a = torch.where(small, a * 2.0**up, a)
        bits = exponent_bits(a)
        p, e = bits.view(dtype), (bits >> mbits).to(dtype) - bias
        if lifted:
            p, e = torch.where(small, p * 2.0**-up, p), torch.where(small, e - up, e)
        return p, e

    def pow2(k):
        return ((k.detach().to(itype) + bias) << mbits).view(dtype)

    return _generic.Ops(
        prec=prec,
        where=where,
        pow2_floor=pow2_floor,
        exponent=exponent,
        pow2=pow2,
        rint=lambda a: torch.round(a.detach()),
        clip=torch.clamp,
    )


_OPS = {dtype: _make_ops(dtype) for dtype in _FORMATS}


def _promoted_dtype(x: torch.Tensor | float, d: torch.Tensor | float) -> torch.dtype:
    # Python numbers are weak, as in torch arithmetic (torch.result_type would break graphs).
    if isinstance(x, torch.Tensor) and isinstance(d, torch.Tensor):
        return torch.promote_types(x.dtype, d.dtype)
    t = x if isinstance(x, torch.Tensor) else d
    return t.dtype if isinstance(t, torch.Tensor) and t.is_floating_point() else torch.get_default_dtype()


class _Torch:
    """The array namespace for symkl.kernels._widened."""

    where, log, log1p, expm1, exp, abs = (torch.where, torch.log, torch.log1p, torch.expm1,
                                          torch.exp, torch.abs)


def _apply(kernel: Callable, x: torch.Tensor | float, d: torch.Tensor | float,
           widened: Callable | None = None, series: Callable | None = None) -> torch.Tensor:
    """Promote and convert the arguments; float32 with a ``widened`` kernel is computed in
    float64 by it (see symkl.kernels._widened), everything else by the double-word kernel."""
    dtype = _promoted_dtype(x, d)
    if dtype not in _OPS:
        raise TypeError(f"symkl.kernels support float32 and float64, not {dtype}")
    device = x.device if isinstance(x, torch.Tensor) else d.device if isinstance(d, torch.Tensor) else None
    x = x.to(dtype) if isinstance(x, torch.Tensor) else torch.tensor(x, dtype=dtype, device=device)
    d = d.to(dtype) if isinstance(d, torch.Tensor) else torch.tensor(d, dtype=dtype, device=device)
    if widened is not None and dtype == torch.float32:
        return widened(_Torch, x.double(), d.double()).float()
    if series is not None and dtype == torch.float64:
        return series(_Torch, x, d)
    return kernel(_OPS[dtype], x, d)


def _shared_doc(kernel: Callable) -> Callable[[Callable], Callable]:
    # The contract (formula, domain, conventions, algorithm) is written once, in _generic.
    def decorate(fn: Callable) -> Callable:
        fn.__doc__ = kernel.__doc__
        return fn

    return decorate


@_shared_doc(_generic.neglog_bregman)
def neglog_bregman(x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    return _apply(_generic.neglog_bregman, x, d, widened=_widened.neglog_bregman)


@_shared_doc(_generic.xlogx_bregman)
def xlogx_bregman(x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    return _apply(_generic.xlogx_bregman, x, d, widened=_widened.xlogx_bregman,
                  series=lambda ns, x, d: _series.xlogx_bregman(ns, x, d, log_ratio))


@_shared_doc(_generic.exp_bregman)
def exp_bregman(x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    return _apply(_generic.exp_bregman, x, d, widened=_widened.exp_bregman)


@_shared_doc(_generic.lgamma_bregman)
def lgamma_bregman(x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    return _apply(_generic.lgamma_bregman, x, d)


@_shared_doc(_generic.neglog_bregman_split)
def neglog_bregman_split(s: torch.Tensor, log_r: torch.Tensor) -> torch.Tensor:
    return _apply(_generic.neglog_bregman_split, s, log_r, widened=_widened.neglog_bregman_split,
                  series=_series.neglog_bregman_split)


def log_ratio(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(a / b) for a, b > 0 with one logarithm: 2 log(sqrt(a)/sqrt(b)) cannot under- or
    overflow (the ratio of square roots of finite positive floats is representable), where
    a / b can, and log a - log b would cancel for large or tiny a and b. float32 inputs are
    computed in float64, so the result has a single rounding."""
    if a.dtype == torch.float32 or b.dtype == torch.float32:  # one rounding, at the end
        return (2 * torch.log(torch.sqrt(a.double()) / torch.sqrt(b.double()))).to(torch.promote_types(a.dtype, b.dtype))
    return 2 * torch.log(torch.sqrt(a) / torch.sqrt(b))
