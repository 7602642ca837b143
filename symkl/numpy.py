"""symkl's generated numpy functions: ``kl_<P>_<Q>``, ``cross_entropy_<P>_<Q>``, ``entropy_<P>``.

Each takes the torch parameter names suffixed ``_p`` / ``_q`` (entropy: unsuffixed), broadcasts
like a numpy ufunc (event axes last: ``probs``, ``loc`` of a multivariate family; covariance
matrices ``(..., k, k)``), computes in float64 and returns the arguments' common floating dtype
(float32 stays float32, with a single rounding), and validates its arguments unless
``validate=False``::

    >>> import symkl.numpy as snp
    >>> float(snp.kl_normal_normal(0.0, 1.0, 1.0, 0.5))
    2.8068528194400546
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from symkl import _wrap
from symkl.generated import numpy_functions as _generated


def _as_array(value: Any) -> np.ndarray:
    # Floating arrays keep their dtype (float32 stays float32); anything else -> float64.
    if isinstance(value, (np.ndarray, np.floating)) and np.issubdtype(value.dtype, np.floating):
        return np.asarray(value)
    return np.asarray(value, dtype=np.float64)


def _in_float64(name: str, formula: Callable[..., Any], args: list[np.ndarray]) -> np.ndarray:
    dtype = np.result_type(*args)
    with np.errstate(over="ignore"):  # a float64 result beyond float32's range is inf there
        return np.asarray(formula(*(a.astype(np.float64, copy=False) for a in args))).astype(dtype, copy=False)


__all__ = _wrap.expose(_generated, globals(), _as_array, _as_array, lambda: True, "numpy", _in_float64)
FUNCTIONS = dict(_generated.FUNCTIONS)
