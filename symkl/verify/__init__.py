"""Verification engine: symkl's results and generated code against independent references.

    >>> import symkl
    >>> report = symkl.verify("gamma", "gamma")      # KL, cross-entropy, entropy of Gamma
    >>> report.passed, report.summary()
    >>> report.to_json(); report.to_markdown()

Reference A (:mod:`~symkl.verify.reference`) is high-precision quadrature or summation of
the densities; reference B (:mod:`~symkl.verify.montecarlo`) Monte Carlo with control
variates and a power analysis; reference C (:mod:`~symkl.verify.torch_reference`)
``torch.distributions``. What is checked against what: :mod:`~symkl.verify.engine`;
tolerances: :mod:`~symkl.verify.tolerances`; points: :mod:`~symkl.verify.points`.
"""

from __future__ import annotations

import sys
import types
from typing import Any, Callable, Iterable, Mapping

from symkl import distributions
from symkl.errors import UnsupportedPairError
from symkl.verify.engine import DTYPES, QUANTITIES, Implementation, Settings, run
from symkl.verify.points import Unit
from symkl.verify.report import CheckResult, Disagreement, Report

__all__ = ["verify", "units", "Report", "CheckResult", "Disagreement", "Unit", "Settings"]


def _choices(value: str | Iterable[str], allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    chosen = allowed if value == "all" else ((value,) if isinstance(value, str) else tuple(value))
    unknown = [c for c in chosen if c not in allowed]
    if unknown:
        raise ValueError(f"unknown {what} {unknown[0]!r}; choose from {', '.join(allowed)} or 'all'")
    return chosen


def _devices(value: str | Iterable[str]) -> tuple[str, ...]:
    import torch

    available = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
    if value == "all":
        return available
    chosen = _choices(value, ("cpu", "cuda"), "device")
    if "cuda" in chosen and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch.cuda.is_available() is False")
    return chosen


def units(p: str | None = None, q: str | None = None, quantity: str | Iterable[str] = "all") -> list[Unit]:
    """The units (quantity, P, Q) selected by family names: none = the whole catalogue;
    P only = everything with P as first argument (and its entropy); P and Q = that pair's
    KL and cross-entropy, and P's entropy."""
    quantities = _choices(quantity, QUANTITIES, "quantity")
    all_pairs = distributions.pairs()
    p_name = distributions.get(p).name if p else None
    q_name = distributions.get(q).name if q else None
    if p_name and q_name and (p_name, q_name) not in all_pairs:
        raise UnsupportedPairError(p_name, q_name, all_pairs)
    out: list[Unit] = []
    for quantity_name in quantities:
        if quantity_name == "entropy":
            out += [Unit("entropy", f, None) for f in sorted(distributions.REGISTRY)
                    if p_name in (None, f)]
        else:
            out += [Unit(quantity_name, a, b) for a, b in all_pairs
                    if p_name in (None, a) and q_name in (None, b)]
    return out


def verify(p: str | None = None, q: str | None = None, *, quantity: str | Iterable[str] = "all",
           devices: str | Iterable[str] = "cpu", dtypes: str | Iterable[str] = "all", points: int = 4,
           mc_samples: int = 2_000_000, seed: int = 0, user_points: Iterable[Mapping[str, Any]] = (),
           implementations: Mapping[str, Implementation] | None = None, generated: bool = True,
           monte_carlo: bool = True, gradients: bool = True, workers: int | None = None,
           progress: Callable[[Unit], None] | None = None) -> Report:
    """Verify the selected units (see :func:`units`) and return a :class:`Report`.

    ``points``: typical points per unit (the near-equal, identical, extreme and mismatch
    regimes are added). ``user_points``: extra points, dicts of the generated function's
    arguments (``{"loc_p": 0.0, "scale_p": 1.0, ...}``). ``implementations``: your own
    functions to check the same way (name -> callable taking the generated function's
    keyword arguments as numpy arrays); with ``generated=False`` only they are checked.
    ``workers``: processes (default: one per core; 1 runs in-process).
    """
    selected = units(p, q, quantity)
    settings = Settings(devices=_devices(devices), dtypes=_choices(dtypes, DTYPES, "dtype"), typical=points,
                        mc_samples=mc_samples, seed=seed, monte_carlo=monte_carlo, gradients=gradients,
                        generated=generated)
    return run(selected, settings, user_points=list(user_points), implementations=implementations,
               workers=workers, progress=progress)


class _CallableModule(types.ModuleType):
    """``symkl.verify(...)`` is :func:`verify`, while ``symkl.verify.engine`` & co. stay
    importable submodules: one name for the function and its package, without a rename."""

    def __call__(self, *args: Any, **kwargs: Any) -> Report:
        return verify(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
