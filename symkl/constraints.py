"""Parameter constraints as data.

A constraint is declared once per parameter and reused for four jobs:

* SymPy assumptions on the parameter's symbol (``assumptions``),
* runtime validation of numeric values (``check``),
* the error message when validation fails (``text``),
* generation of valid test inputs (``sample``).

This mirrors numpyro's ``constraints`` module: constraints are values, not code
scattered through the formulas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

Checker = Callable[[np.ndarray, Mapping[str, np.ndarray]], np.ndarray]
Sampler = Callable[[np.random.Generator, tuple[int, ...], Mapping[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Constraint:
    """A set of admissible values for one parameter."""

    name: str
    #: Human-readable statement, used in error messages and docs ("> 0").
    text: str
    #: SymPy assumptions for the parameter's symbol.
    assumptions: Mapping[str, bool]
    #: Elementwise/eventwise check; receives the value and the other parameters.
    check: Checker
    #: Draws valid values of the given batch+event shape.
    sample: Sampler
    #: 0 for scalars, 1 for vectors (simplex), 2 for matrices.
    event_dim: int = 0
    #: Name of another parameter this one is constrained against (Uniform ``high > low``).
    depends_on: str | None = None
    #: LaTeX form of the domain, e.g. ``\mathbb{R}_{>0}``.
    latex: str = field(default="")
    #: The sum over the event axis, when the constraint fixes it (a simplex sums to 1).
    event_total: int | None = None


def _finite(v: np.ndarray) -> np.ndarray:
    return np.isfinite(v)


real = Constraint(
    name="real",
    text="a finite real number",
    assumptions={"real": True},
    check=lambda v, _: _finite(v),
    sample=lambda rng, shape, _: rng.normal(0.0, 2.0, size=shape),
    latex=r"\mathbb{R}",
)

positive = Constraint(
    name="positive",
    text="> 0 (finite)",
    assumptions={"positive": True},
    check=lambda v, _: _finite(v) & (v > 0),
    sample=lambda rng, shape, _: np.exp(rng.uniform(-1.5, 1.5, size=shape)),
    latex=r"\mathbb{R}_{>0}",
)

unit_interval = Constraint(
    name="unit_interval",
    text="in [0, 1]",
    assumptions={"nonnegative": True},
    check=lambda v, _: (v >= 0) & (v <= 1),
    sample=lambda rng, shape, _: rng.uniform(0.05, 0.95, size=shape),
    latex=r"[0, 1]",
)


def _simplex_check(v: np.ndarray, _: Mapping[str, np.ndarray]) -> np.ndarray:
    ok = np.all(v >= 0, axis=-1) & np.all(np.isfinite(v), axis=-1)
    tol = 64 * np.finfo(np.result_type(v, np.float32)).eps * v.shape[-1]
    return ok & (np.abs(v.sum(axis=-1) - 1) <= tol)


simplex = Constraint(
    name="simplex",
    text="a probability vector (entries >= 0, summing to 1 along the last axis)",
    assumptions={"nonnegative": True},
    check=_simplex_check,
    sample=lambda rng, shape, _: rng.dirichlet(np.ones(shape[-1]), size=shape[:-1]),
    event_dim=1,
    latex=r"\Delta^{k-1}",
    event_total=1,
)


def _positive_definite_check(v: np.ndarray, _: Mapping[str, np.ndarray]) -> np.ndarray:
    symmetric = np.all(np.isclose(v, np.swapaxes(v, -1, -2), rtol=1e-10, atol=0), axis=(-1, -2))
    finite = np.all(np.isfinite(v), axis=(-1, -2))
    safe = np.where((symmetric & finite)[..., None, None], v, np.eye(v.shape[-1]))
    return symmetric & finite & np.all(np.linalg.eigvalsh(safe) > 0, axis=-1)


def _positive_definite_sample(
    rng: np.random.Generator, shape: tuple[int, ...], _: Mapping[str, np.ndarray]
) -> np.ndarray:
    a = rng.normal(size=shape)
    return a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1]) * 0.5


positive_definite = Constraint(
    name="positive_definite",
    text="a symmetric positive-definite matrix",
    assumptions={},
    check=_positive_definite_check,
    sample=_positive_definite_sample,
    event_dim=2,
    latex=r"\mathbb{S}^{k}_{++}",
)


def _lower_cholesky_check(v: np.ndarray, _: Mapping[str, np.ndarray]) -> np.ndarray:
    finite = np.all(np.isfinite(v), axis=(-1, -2))
    lower = np.all(np.triu(v, 1) == 0, axis=(-1, -2))
    positive = np.all(np.diagonal(v, axis1=-2, axis2=-1) > 0, axis=-1)
    return finite & lower & positive


lower_cholesky = Constraint(
    name="lower_cholesky",
    text="a lower-triangular matrix with a positive diagonal (a Cholesky factor)",
    assumptions={},
    check=_lower_cholesky_check,
    sample=lambda rng, shape, params: np.linalg.cholesky(_positive_definite_sample(rng, shape, params)),
    event_dim=2,
    latex=r"\mathcal{L}^{k}_{+}",
)


def greater_than(other: str) -> Constraint:
    """A real parameter that must exceed the parameter named ``other``."""
    return Constraint(
        name=f"greater_than({other})",
        text=f"a finite real number > {other}",
        assumptions={"real": True},
        check=lambda v, params: _finite(v) & (v > params[other]),
        sample=lambda rng, shape, params: params[other] + np.exp(rng.uniform(-1, 1.5, size=shape)),
        depends_on=other,
        latex=rf"(\mathrm{{{other}}}, \infty)",
    )
