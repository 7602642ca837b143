"""Parameter points for verification, drawn from the families' declared constraints.

A :class:`Point` holds the arguments of a generated function (``loc_p``, ``scale_q`` ...;
entropy: ``loc``, ``scale``) as float64 arrays without a batch axis. Regimes:

* ``typical``: each parameter drawn by its constraint's sampler (fixed seed), rejected
  until the quantity is finite (the derivation's ``finite_when``);
* ``near 1e-3`` .. ``near 1e-12`` (self-pairs): Q is P with every parameter moved by the
  given relative amount (probability vectors renormalised, covariances kept symmetric);
* ``identical`` (self-pairs): Q == P, where KL is exactly 0;
* ``extreme``: hand-picked, deliberately untypical parameters (below);
* ``mismatch``: points where the quantity is +inf (supp P not inside supp Q), found by
  moving parameters to their constraint's boundary values and rejecting finite draws;
* ``user``: points passed in by the caller.

Points are rounded so that the same values are exact in float32 wherever the regime allows
(``float32`` is then True): one reference serves every dtype. Near-equal points below
float32's resolution (1e-9, 1e-12) are float64-only.
"""

from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import mpmath
import numpy as np
import sympy as sp

from symkl import mpeval
from symkl.derivation import Derivation
from symkl.distributions import REGISTRY
from symkl.family import INDEX, Family, Shape, Structure
from symkl.numeric import to_mp

NEAR_DELTAS = (1e-3, 1e-6, 1e-9, 1e-12)
#: Event dimension of the vector families at sampled points.
EVENT_DIM = {"categorical": 4, "dirichlet": 2, "mvn_diag": 3, "mvn": 2}
#: Probability vectors are quantised to multiples of this (exact in float32, sum exactly 1).
SIMPLEX_QUANTUM = 2.0**-24
MAX_TRIES = 400


@dataclass(frozen=True)
class Point:
    regime: str
    label: str
    values: Mapping[str, np.ndarray]
    #: The values are exactly representable in float32 (float32 checks use this point).
    float32: bool

    def side(self, suffix: str | None) -> dict[str, np.ndarray]:
        """Unsuffixed parameter values of P (``"p"``), Q (``"q"``), or all (None: entropy)."""
        if suffix is None:
            return dict(self.values)
        return {k[:-2]: v for k, v in self.values.items() if k.endswith("_" + suffix)}

    def describe(self, digits: int = 17) -> str:
        """The values, compactly (for messages naming the worst point)."""
        parts = [f"{k}={np.array2string(np.asarray(v), precision=digits, separator=', ')}"
                 for k, v in self.values.items()]
        return f"{self.label}: " + ", ".join(parts).replace("\n", "")


def to_mpmath(family: Family, values: Mapping[str, Any]) -> dict[str, Any]:
    """Exact mpmath images of one side's values (vectors: lists; in the matrix families,
    vectors are k x 1 matrices)."""
    out = {name: to_mp(value) for name, value in values.items()}
    if family.structure is Structure.MATRIX:
        out = {n: mpmath.matrix(v) if isinstance(v, list) else v for n, v in out.items()}
    return out


# -- rounding to float32 -----------------------------------------------------------------------


def _on_grid(v: np.ndarray, quantum: float) -> np.ndarray:
    """A probability vector as multiples of ``quantum`` whose exact sum is 1 (positive entries
    stay positive, zeros stay zero: they decide finiteness)."""
    counts = np.where(v > 0, np.maximum(np.round(v / quantum), 1.0), 0.0)
    counts[..., np.argmax(counts)] += round(1 / quantum) - counts.sum()
    return counts * quantum


def _round_float32(family: Family, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for name, value in values.items():
        v = np.asarray(value, dtype=np.float64)
        if family.parameter(name).constraint.event_total is not None:
            out[name] = _on_grid(v, SIMPLEX_QUANTUM)
        else:
            out[name] = v.astype(np.float32).astype(np.float64)
    return out


def _exact_float64(family: Family, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Probability vectors on the float64 grid 2^-52, so they sum to exactly 1 (a sum off
    by 1e-16 would dominate a KL of 1e-18); other values unchanged."""
    return {name: _on_grid(np.asarray(v, np.float64), 2.0**-52)
            if family.parameter(name).constraint.event_total is not None else np.asarray(v, np.float64)
            for name, v in values.items()}


def exact_in_float32(values: Mapping[str, np.ndarray]) -> bool:
    return all(np.array_equal(np.asarray(v, np.float32).astype(np.float64), v) for v in values.values())


# -- the unit being verified -------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """One quantity of one pair (or family): ``kl``/``cross_entropy`` of (P, Q), ``entropy`` of P."""

    quantity: str
    p: str
    q: str | None

    @property
    def function(self) -> str:
        """The generated function's name."""
        return "_".join([self.quantity, self.p] + ([self.q] if self.q else []))

    def __str__(self) -> str:
        if self.quantity == "entropy":
            return f"entropy({self.p})"
        return f"{self.quantity}({self.p} || {self.q})"

    def arguments(self, p: Mapping[str, np.ndarray], q: Mapping[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        if self.quantity == "entropy":
            return dict(p)
        assert q is not None
        return {**{f"{k}_p": v for k, v in p.items()}, **{f"{k}_q": v for k, v in q.items()}}


def is_finite(derivation: Derivation, values: Mapping[str, np.ndarray]) -> bool:
    """The derivation's ``finite_when`` at a point (for every index of indexed conditions)."""
    cond = derivation.conditions.finite_when
    if cond is sp.true or cond is True:
        return True
    if cond is sp.false or cond is False:
        return False
    symbols = dict(derivation.symbols)
    if derivation.quantity == "entropy":  # entropy symbols are named like the arguments
        symbols = {k[:-2] if k.endswith("_p") else k: v for k, v in symbols.items()}
    env = mpeval.environment(symbols, values)
    with mpmath.workdps(40):
        if cond.has(INDEX):
            k = int(next(np.asarray(v).shape[-1] for v in values.values() if np.ndim(v)))
            return all(bool(mpeval.evaluate(cond, {**env, INDEX: mpmath.mpf(i), INDEX.label: mpmath.mpf(i)}))
                       for i in range(k))
        return bool(mpeval.evaluate(cond, env))


# -- regimes ----------------------------------------------------------------------------------


def _seed(*parts: object) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode())


def _draw(family: Family, rng: np.random.Generator) -> dict[str, np.ndarray]:
    raw = family.sample_parameters(rng, dim=EVENT_DIM.get(family.name, 3))
    return _round_float32(family, raw)


def _boundary(family: Family, values: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Some parameters moved onto their constraint's boundary (0 or 1 probabilities, a
    probability-vector entry set to 0) or towards the other side's support edge."""
    out = dict(values)
    for p in family.params:
        if rng.random() < 0.5:
            continue
        v = np.array(out[p.name], dtype=np.float64)
        if p.constraint.name == "unit_interval":
            out[p.name] = np.asarray(float(rng.integers(0, 2)))
        elif p.constraint.event_total is not None:
            v[rng.integers(0, v.shape[-1])] = 0.0
            out[p.name] = _round_float32(family, {p.name: v / v.sum()})[p.name]
        elif p.constraint.name in ("real",) or p.constraint.depends_on:
            out[p.name] = np.asarray(np.float32(v * 4 + rng.normal(0, 2)), dtype=np.float64)
    if family.name == "uniform" and out["high"] <= out["low"]:
        out["high"] = np.asarray(np.float32(out["low"] + 1.0), dtype=np.float64)
    return out


def _near(family: Family, values: Mapping[str, np.ndarray], delta: float,
          rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for p in family.params:
        v = np.asarray(values[p.name], dtype=np.float64)
        sign = rng.choice([-1.0, 1.0], size=v.shape)
        if p.shape is Shape.MATRIX:  # symmetric, relative to the matrix's scale
            noise = sign * np.abs(v).max() * delta
            moved = v + (np.triu(noise) + np.triu(noise, 1).T) / v.shape[-1]
        elif p.constraint.event_total is not None:
            moved = v * (1 + delta * sign)
            moved = moved / moved.sum()
        else:
            moved = v * (1 + delta * sign) if np.all(v != 0) else v + delta * sign
        out[p.name] = moved
    if family.name == "uniform" and out["high"] <= out["low"]:
        out["high"] = values["high"]
    return _round_float32(family, out) if delta >= 1e-6 else _exact_float64(family, out)


def _atypical(family: Family) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
    pair = ATYPICAL.get(family.name)
    if pair is None:
        return None
    return tuple(_round_float32(family, {k: np.asarray(v, dtype=np.float64) for k, v in side.items()})
                 for side in pair)  # type: ignore[return-value]


def points(unit: Unit, derivation: Derivation, *, seed: int = 0, typical: int = 4,
           regimes: Iterable[str] = ("typical", "near", "identical", "extreme", "mismatch"),
           user: Iterable[Mapping[str, Any]] = ()) -> list[Point]:
    """The verification points of one unit (deterministic for a given seed)."""
    regimes = set(regimes)
    fam_p = REGISTRY[unit.p]
    fam_q = REGISTRY[unit.q] if unit.q else None
    rng = np.random.default_rng(_seed(seed, unit))
    out: list[Point] = []

    def add(regime: str, label: str, p: Mapping[str, np.ndarray], q: Mapping[str, np.ndarray] | None) -> None:
        values = unit.arguments(p, q)
        out.append(Point(regime, label, values, exact_in_float32(values)))

    def draw_pair(finite: bool, boundary: bool) -> tuple[dict, dict | None] | None:
        for _ in range(MAX_TRIES):
            p = _draw(fam_p, rng)
            q = _draw(fam_q, rng) if fam_q else None
            if boundary:
                p = _boundary(fam_p, p, rng)
                q = _boundary(fam_q, q, rng) if fam_q else None
            if is_finite(derivation, unit.arguments(p, q)) == finite:
                return p, q
        return None

    if "typical" in regimes:
        for j in range(typical):
            drawn = draw_pair(finite=True, boundary=False)
            if drawn is not None:
                add("typical", f"typical #{j}", *drawn)
    self_pair = unit.q == unit.p
    if self_pair and unit.quantity != "entropy":
        base = draw_pair(finite=True, boundary=False)
        if base is not None and "near" in regimes:
            for delta in NEAR_DELTAS:
                for _ in range(MAX_TRIES):  # random directions until Q keeps the value finite
                    q = _near(fam_p, base[0], delta, rng)
                    if is_finite(derivation, unit.arguments(base[0], q)):
                        add(f"near {delta:.0e}", f"near {delta:.0e}", base[0], q)
                        break
        if base is not None and "identical" in regimes:
            add("identical", "identical (P == Q)", base[0], base[0])
    if "extreme" in regimes:
        p_side = _atypical(fam_p)
        q_side = _atypical(fam_q) if fam_q else None
        if p_side is not None and (fam_q is None or q_side is not None):
            p, q = p_side[0], (q_side[1] if q_side else None)
            if is_finite(derivation, unit.arguments(p, q)):
                add("extreme", "extreme", p, q)
    if "mismatch" in regimes and unit.quantity != "entropy":
        for j in range(2):
            drawn = draw_pair(finite=False, boundary=True)
            if drawn is not None:
                add("mismatch", f"mismatch #{j}", *drawn)
    for j, given in enumerate(user):
        values = {k: np.asarray(v, dtype=np.float64) for k, v in given.items()}
        expected = set(unit.arguments({n: 0 for n in fam_p.param_names},
                                      {n: 0 for n in fam_q.param_names} if fam_q else None))
        if set(values) != expected:
            raise ValueError(f"{unit}: a user point needs exactly the arguments {sorted(expected)}; "
                             f"got {sorted(values)}")
        out.append(Point("user", f"user #{j}", values, exact_in_float32(values)))
    return out


def _rotation_cov(eigs: list[float], angles: list[float]) -> np.ndarray:
    """R diag(eigs) R^T, R a product of Givens rotations (symmetric positive definite)."""
    k = len(eigs)
    r = np.eye(k)
    for (a, b), th in zip(itertools.combinations(range(k), 2), angles):
        g = np.eye(k)
        g[a, a] = g[b, b] = np.cos(th)
        g[a, b], g[b, a] = -np.sin(th), np.sin(th)
        r = r @ g
    cov = r @ np.diag(eigs) @ r.T
    return (cov + cov.T) / 2


#: Hand-picked, deliberately untypical parameters: (as P, as Q) per family.
ATYPICAL: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "normal": ({"loc": 7.5, "scale": 0.03}, {"loc": 7.51, "scale": 2.0}),
    "laplace": ({"loc": -4.25, "scale": 0.05}, {"loc": 7.51, "scale": 2.0}),
    "exponential": ({"rate": 40.0}, {"rate": 0.001}),
    "gamma": ({"concentration": 0.15, "rate": 0.02}, {"concentration": 9.5, "rate": 3.0}),
    "beta": ({"concentration1": 0.18, "concentration0": 0.3}, {"concentration1": 12.0, "concentration0": 0.5}),
    "uniform": ({"low": -0.001, "high": 0.0025}, {"low": -3.0, "high": 1.5}),
    "poisson": ({"rate": 0.003}, {"rate": 45.0}),
    "bernoulli": ({"probs": 1e-9}, {"probs": 0.999}),
    "categorical": ({"probs": [0.6, 0.0, 0.4, 0.0]}, {"probs": [0.1, 0.2, 0.3, 0.4]}),
    "dirichlet": ({"concentration": [0.2, 6.5]}, {"concentration": [3.0, 0.25]}),
    "mvn_diag": ({"loc": [0.0, 5.0, -3.0], "scale": [0.001, 10.0, 0.5]},
                 {"loc": [0.1, -5.0, 2.0], "scale": [2.0, 0.01, 0.5]}),
    "mvn": ({"loc": [1.0, -2.0], "covariance_matrix": _rotation_cov([0.001, 50.0], [0.3])},
            {"loc": [0.0, 0.0], "covariance_matrix": _rotation_cov([2.0, 0.01], [-1.1])}),
}
