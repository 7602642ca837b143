"""Special functions and triangular solves for the numpy backend, borrowed from torch.

numpy has no lgamma/digamma/erf ufuncs and SciPy is not a dependency of symkl; torch is.
``torch.from_numpy`` and ``Tensor.numpy`` share memory on CPU, so these wrappers cost no
copy and keep the dtype (float32 stays float32). Scalars and non-contiguous inputs are
converted with ``np.asarray`` first.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from symkl.kernels import linalg_torch


def _wrap(fn: Callable[..., torch.Tensor]) -> Callable[..., np.ndarray]:
    def call(*args: object) -> np.ndarray:
        tensors = [torch.from_numpy(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) or np.ndim(a)
                   else torch.from_numpy(np.asarray(a)) for a in args]
        out = fn(*tensors).numpy()
        return out if out.ndim else out[()]

    call.__name__ = getattr(fn, "__name__", "special")
    call.__doc__ = f"numpy wrapper of torch's {call.__name__} (shared memory, same dtype)."
    return call


lgamma = _wrap(torch.lgamma)
digamma = _wrap(torch.special.digamma)
erf = _wrap(torch.special.erf)
erfc = _wrap(torch.special.erfc)
xlogy = _wrap(torch.special.xlogy)


def logsumexp(x: np.ndarray, keepdims: bool = False) -> np.ndarray:
    return _wrap(lambda t: torch.logsumexp(t, dim=-1, keepdim=keepdims))(x)


def polygamma(n: int, x: np.ndarray) -> np.ndarray:
    return _wrap(lambda t: torch.special.polygamma(n, t))(x)


logdet = _wrap(linalg_torch.logdet)
mahalanobis_sq = _wrap(linalg_torch.mahalanobis_sq)
trace_inv_mul = _wrap(linalg_torch.trace_inv_mul)
neglogdet_bregman = _wrap(linalg_torch.neglogdet_bregman)
