"""symkl's generated numpy functions: ``kl_<P>_<Q>``, ``cross_entropy_<P>_<Q>``, ``entropy_<P>``.

Each takes the torch parameter names suffixed ``_p`` / ``_q`` (entropy: unsuffixed), broadcasts
like a numpy ufunc (event axes last: ``probs``, ``loc`` of a multivariate family; covariance
matrices ``(..., k, k)``), keeps float32 as float32, and validates its arguments unless
``validate=False``::

    >>> import symkl.numpy as snp
    >>> float(snp.kl_normal_normal(0.0, 1.0, 1.0, 0.5))
    2.8068528194400546
"""

from __future__ import annotations

from typing import Any

import numpy as np

from symkl import _wrap
from symkl.generated import numpy_functions as _generated


def _as_array(value: Any) -> np.ndarray:
    # Floating arrays keep their dtype (float32 stays float32); anything else -> float64.
    if isinstance(value, (np.ndarray, np.floating)) and np.issubdtype(value.dtype, np.floating):
        return np.asarray(value)
    return np.asarray(value, dtype=np.float64)


__all__ = _wrap.expose(_generated, globals(), _as_array, _as_array, lambda: True, "numpy")
FUNCTIONS = dict(_generated.FUNCTIONS)
