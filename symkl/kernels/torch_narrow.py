"""torch kernels for results that will be rounded to float32 or narrower.

The same functions as :mod:`symkl.kernels.torch`, with the ``NARROW`` precision target of
:mod:`symkl.kernels._float64` whatever the input dtype: generated formulas evaluated in
float64 for a float32 (or narrower) result call these (see symkl.torch._execution).
"""

from __future__ import annotations

import torch

from symkl.kernels import _float64
from symkl.kernels.torch import __all__, _apply, both, either, sum_last  # noqa: F401 - same names

_TARGET = _float64.NARROW


def neglog_bregman(x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    return _apply(_float64.neglog_bregman, x, d, target=_TARGET)


def xlogx_bregman(x: torch.Tensor, d: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    return _apply(_float64.xlogx_bregman, x, d, y, target=_TARGET)


def exp_bregman(x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    return _apply(_float64.exp_bregman, x, d, target=_TARGET)


def lgamma_bregman(x: torch.Tensor, d: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    return _apply(_float64.lgamma_bregman, x, d, y, target=_TARGET)


def lgamma_residual_bregman(x: torch.Tensor, d: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    return _apply(_float64.lgamma_residual_bregman, x, d, y, target=_TARGET)


def product_difference(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    return _apply(_float64.product_difference, a, b, c, e, target=_TARGET)


def neglog_bregman_split(s: torch.Tensor, log_r: torch.Tensor) -> torch.Tensor:
    return _apply(_float64.neglog_bregman_split, s, log_r, target=_TARGET)


def log_ratio(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return _apply(_float64.log_ratio, a, b, target=_TARGET)


def log1p_ratio(s: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return _apply(_float64.log1p_ratio, s, y, x, target=_TARGET)


def digamma(x: torch.Tensor) -> torch.Tensor:
    return _apply(_float64.digamma, x, target=_TARGET)


def poisson_entropy(rate: torch.Tensor) -> torch.Tensor:
    return _apply(_float64.poisson_entropy, rate, target=_TARGET)
