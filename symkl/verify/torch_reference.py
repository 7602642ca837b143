"""Reference C: ``torch.distributions``' own KL and entropy, where it has them.

torch has no cross-entropy method, and no KL rule for some catalogue pairs (Gamma || Normal
...). If symkl has installed itself into torch's registry (``symkl.torch.register``),
torch's original rule is used, not symkl's.
"""

from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np
import torch
import torch.distributions as td

from symkl.distributions import REGISTRY
from symkl.verify.points import Point, Unit

_TORCH_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def distribution(family: str, values: Mapping[str, np.ndarray], dtype: str = "float64", device: str = "cpu",
                 validate_args: bool = False) -> td.Distribution:
    """The ``torch.distributions`` object of one side of a point (unsuffixed values)."""
    tensors = {k: torch.tensor(v, dtype=_TORCH_DTYPES[dtype], device=device) for k, v in values.items()}
    return REGISTRY[family].to_torch(tensors, validate_args=validate_args)


def _torch_kl(p: td.Distribution, q: td.Distribution) -> torch.Tensor | None:
    from symkl.torch import _REGISTERED  # rules symkl installed, with torch's previous ones

    key = (type(p), type(q))
    if key in _REGISTERED:
        previous = _REGISTERED[key]
        return None if previous is None else previous(p, q)
    try:
        return td.kl_divergence(p, q)
    except NotImplementedError:
        return None


def value(unit: Unit, point: Point, dtype: str) -> float | None:
    """torch.distributions' value at ``point`` in ``dtype`` (NaN if it raises on valid
    input, e.g. a float32 Cholesky failure); None where torch has no rule."""
    if unit.quantity == "cross_entropy":
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            p = distribution(unit.p, point.side("p" if unit.q else None), dtype)
            if unit.quantity == "entropy":
                try:
                    out = p.entropy()
                except NotImplementedError:
                    return None
            else:
                out = _torch_kl(p, distribution(unit.q, point.side("q"), dtype))  # type: ignore[arg-type]
                if out is None:
                    return None
        except (RuntimeError, ValueError):
            return float("nan")
    return float(out.detach().double().reshape(-1)[0])
