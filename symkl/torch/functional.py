"""symkl's generated torch functions on raw tensors.

Same names and parameters as :mod:`symkl.numpy` (``kl_normal_normal(loc_p, scale_p, loc_q,
scale_q)`` ...): broadcasting, dtype and device of the inputs, autograd, ``torch.func.vmap``
and ``torch.compile(fullgraph=True)`` (the generated code branches only with
``torch.where``). ``validate`` defaults to ``torch.distributions.Distribution``'s global
``validate_args`` setting. Formulas are evaluated in float64 and, for large inputs, fused
with ``torch.compile``: see :mod:`symkl.torch._execution` and
:func:`symkl.torch.set_compile_mode`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from symkl import _wrap
from symkl.generated import torch_functions as _generated
from symkl.torch import _execution


def _as_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    return torch.as_tensor(value, dtype=torch.get_default_dtype())


def _to_numpy(value: torch.Tensor) -> np.ndarray:
    # For validation only. Keep float32 as float32: the simplex check's tolerance follows the
    # dtype, and a float32 softmax sums to 1 within float32's rounding, not float64's.
    dtype = value.dtype if value.dtype in (torch.float32, torch.float64) else torch.float64
    return value.detach().to("cpu", dtype).numpy()


def _validate_default() -> bool:
    return bool(torch.distributions.Distribution._validate_args)


__all__ = _wrap.expose(_generated, globals(), _as_tensor, _to_numpy, _validate_default, "torch",
                       _execution.run)
FUNCTIONS = dict(_generated.FUNCTIONS)
