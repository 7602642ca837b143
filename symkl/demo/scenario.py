"""What the demos share: a data distribution P and a model family Q, with their parameters.

* default parameters of the data family (a small table for the catalogue at k = 3; any other
  family or dimension draws them once from the declared constraints with a fixed seed),
* user overrides (``--data-param`` / ``--fix``) checked against the declared constraints,
* the exact quantities from symkl's generated code: KL(P || Q) and H(P) (an entropy that is
  not generated, as the Poisson one long was, comes from the mpmath reference instead),
* the clear errors: a pair outside the catalogue, a KL that is +inf, a model whose support
  moves with its parameters.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Mapping, ParamSpec, Sequence, TypeVar

import numpy as np
import sympy as sp
import torch

from symkl import distributions
from symkl.demo.parametrize import dependency_order, parameter_shape
from symkl.errors import UnsupportedPairError
from symkl.family import Family, Interval

P = ParamSpec("P")
R = TypeVar("R")

Tensor = torch.Tensor
Value = float | Sequence[float] | Sequence[Sequence[float]] | Tensor
DTYPE = torch.float64  # the generated code computes in float64; the demos use it throughout

#: Event dimension of the vector families when no vector parameter says otherwise.
DEFAULT_DIM = 3

#: Data parameters per family, at k = DEFAULT_DIM for the vector families. Chosen so that the
#: neutral model start (``parametrize.neutral_values``) is visibly wrong and the fit has to move.
DEFAULT_DATA: dict[str, dict[str, Value]] = {
    "normal": {"loc": 2.0, "scale": 1.0},  # the classic: fit N(theta, 1) to N(2, 1)
    "laplace": {"loc": 1.0, "scale": 0.5},
    "exponential": {"rate": 1.5},
    "gamma": {"concentration": 3.0, "rate": 2.0},
    "beta": {"concentration1": 2.0, "concentration0": 5.0},
    "uniform": {"low": -1.0, "high": 2.0},
    "poisson": {"rate": 4.0},
    "bernoulli": {"probs": 0.3},
    "categorical": {"probs": [0.2, 0.3, 0.5]},
    "dirichlet": {"concentration": [2.0, 3.0, 4.0]},
    "mvn_diag": {"loc": [1.0, -1.0, 0.5], "scale": [0.5, 1.0, 2.0]},
    "mvn": {"loc": [1.0, -1.0, 0.5],
            "covariance_matrix": [[1.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 0.5]]},
}


def on_one_thread(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` with torch on one intra-op thread, then restore the caller's setting.

    The demos work on tensors of a few hundred numbers, where thread hand-off dominates: on a
    busy 2-core machine ``torch.tril`` of a 3 x 3 matrix took 4.5 ms with 2 threads and 7 us
    with 1 (measured), which made the MVN demo 20 s instead of 2. One thread also keeps the
    results independent of the machine's core count.
    """

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return function(*args, **kwargs)
        finally:
            torch.set_num_threads(before)

    return wrapper


def resolve_pair(p: str, q: str) -> tuple[Family, Family]:
    """Both families by name or alias; the pair must be in the catalogue."""
    fam_p, fam_q = distributions.get(p), distributions.get(q)
    if (fam_p.name, fam_q.name) not in distributions.pairs():
        raise UnsupportedPairError(fam_p.name, fam_q.name, distributions.pairs())
    return fam_p, fam_q


def _tensor(value: Value, device: torch.device | str) -> Tensor:
    if isinstance(value, Tensor):
        return value.detach().to(device=device, dtype=DTYPE)
    return torch.as_tensor(np.asarray(value, dtype=float), dtype=DTYPE, device=device)


def flat(values: Mapping[str, Tensor]) -> dict[str, list[float]]:
    """Parameter tensors as flat lists of floats (row-major), for results, tables and CSVs."""
    return {name: [float(x) for x in v.detach().cpu().flatten()] for name, v in values.items()}


def event_dim_of(family: Family, given: Mapping[str, Value]) -> int:
    """k from the given vector/matrix parameters (they must agree), else DEFAULT_DIM."""
    sizes = {name: np.shape(np.asarray(value.cpu() if isinstance(value, Tensor) else value))
             for name, value in given.items() if name in family.param_names}
    dims = {name: shape[-1] for name, shape in sizes.items() if shape}
    if len(set(dims.values())) > 1:
        shown = ", ".join(f"{n}: {d}" for n, d in sorted(dims.items()))
        raise ValueError(f"{family.title}: the given parameters disagree on the dimension k ({shown})")
    return next(iter(dims.values()), DEFAULT_DIM)


def _broadcast(family: Family, name: str, value: Tensor, dim: int, option: str) -> Tensor:
    """A number given for a vector/matrix parameter with an elementwise constraint applies to
    every coordinate (``--fix scale=1`` for mvn_diag); any other shape must match exactly."""
    shape = parameter_shape(family, name, dim)
    if tuple(value.shape) == shape:
        return value
    if value.ndim == 0 and family.parameter(name).constraint.event_dim == 0:
        return value.expand(shape).clone()
    raise ValueError(
        f"{option}: {family.title} parameter {name!r} needs shape {shape} (k = {dim}), got "
        f"{tuple(value.shape)}; give vectors as comma-separated numbers, e.g. {name}=0.2,0.3,0.5"
    )


def data_values(family: Family, given: Mapping[str, Value] | None = None,
                device: torch.device | str = "cpu", option: str = "--data-param") -> dict[str, Tensor]:
    """The data distribution's parameters: the defaults, overridden by ``given``, validated
    against the declared constraints (the error names parameter, value and constraint)."""
    given = dict(given or {})
    family.check_names(given, option)
    dim = event_dim_of(family, given)
    defaults: Mapping[str, Value] = DEFAULT_DATA.get(family.name, {})
    if dim != DEFAULT_DIM and any(np.ndim(v) for v in defaults.values()):
        defaults = {}  # the table is for k = DEFAULT_DIM: draw the others below
    values: dict[str, Tensor] = {}
    rng = np.random.default_rng(0)  # fixed: defaults must not change from run to run
    for name in dependency_order(family):
        if name in given:
            values[name] = _broadcast(family, name, _tensor(given[name], device), dim, option)
        elif name in defaults:
            values[name] = _tensor(defaults[name], device)
        else:
            constraint = family.parameter(name).constraint
            drawn = constraint.sample(rng, parameter_shape(family, name, dim),
                                      {k: v.cpu().numpy() for k, v in values.items()})
            # Rounded for readable tables, except event constraints (a rounded simplex no
            # longer sums to 1).
            values[name] = _tensor(np.round(drawn, 2) if constraint.event_dim == 0 else drawn, device)
    family.validate({k: v.cpu().numpy() for k, v in values.items()})
    return {name: values[name] for name in family.param_names}


def fixed_values(family: Family, given: Mapping[str, Value] | None, dim: int,
                 device: torch.device | str = "cpu", option: str = "--fix") -> dict[str, Tensor]:
    """Model parameters held fixed (``--fix``), broadcast and validated."""
    given = dict(given or {})
    family.check_names(given, option)
    values = {name: _broadcast(family, name, _tensor(value, device), dim, option)
              for name, value in given.items()}
    family.validate({k: v.cpu().numpy() for k, v in values.items()})
    return values


def check_model_support(family: Family) -> None:
    """A model whose support moves with its parameters (Uniform's [low, high]) cannot be fitted
    by gradients: the likelihood of a sample outside is 0 and its gradient says nothing about
    widening the support. Read from the declared support, not from a list of families."""
    support = family.support
    if not isinstance(support, Interval):
        return
    symbols = family.symbols("q")
    ends = [sp.sympify(support.lower(symbols)), sp.sympify(support.upper(symbols))]
    moving = sorted(str(s) for end in ends for s in end.free_symbols)
    if moving:
        raise ValueError(
            f"cannot fit a {family.title} model by gradient descent: its support {support.text} "
            f"depends on its parameters ({', '.join(m.removesuffix('_q') for m in moving)}), so "
            "the likelihood of a sample outside it is 0 with no gradient to follow; pick a model "
            "family with a fixed support"
        )


def exact_kl(p: torch.distributions.Distribution, q: torch.distributions.Distribution) -> Tensor:
    """KL(P || Q) from symkl's generated code (never a hand-typed formula)."""
    import symkl.torch

    return symkl.torch.kl_divergence(p, q)


def check_finite_kl(fam_p: Family, fam_q: Family, kl: Tensor, what: str) -> None:
    """The clear error for KL = +inf (P puts mass where Q has none)."""
    if not bool(torch.isfinite(kl).all()):
        raise ValueError(
            f"KL({fam_p.name} || {fam_q.name}) is +inf at {what}: P puts probability where Q has "
            f"none (supp P = {fam_p.support.text}, supp Q = {fam_q.support.text}); nothing to "
            "minimise. Pick a pair whose KL is finite (symkl list shows them)"
        )


@dataclass(frozen=True)
class Entropy:
    value: float
    #: How it was computed: the generated code, or why not and what instead.
    method: str
    generated: bool


def data_entropy(family: Family, values: Mapping[str, Tensor]) -> Entropy:
    """H(P) from the generated code; a family without generated entropy (the Poisson's
    E[log x!] is a series) falls back to the mpmath reference of ``symkl verify``, and the
    method says so."""
    import symkl.torch

    if (family.name,) in symkl.torch.supported("entropy"):
        value = float(symkl.torch.entropy(family.to_torch(values)))
        return Entropy(value, "generated code (symkl.torch.entropy)", True)
    import mpmath

    from symkl.verify.reference import reference

    params = {k: (mpmath.mpf(float(v)) if v.ndim == 0 else [mpmath.mpf(float(x)) for x in v.flatten()])
              for k, v in values.items()}
    ref = reference("entropy", family.name, None, params)
    return Entropy(float(ref.value), f"not generated; mpmath reference ({ref.method})", False)
