"""Unconstrained parameters for gradient fitting, derived from the declared constraints.

A gradient step can move a number anywhere on the real line, but a scale must stay > 0 and
class probabilities on the simplex. Each constraint of :mod:`symkl.constraints` therefore
maps to one smooth bijection from unconstrained values onto it. This module is the only
place where that mapping lives: the demos never say "softplus for Normal's scale"; they ask
for the transform of the parameter's constraint, so a new family needs nothing here unless
it brings a new kind of constraint.

Each constraint also has a *neutral* value (0 for real numbers, 1 for positive ones, the
uniform probability vector, the identity matrix ...): the model's starting point, and the
default Q of ``symkl demo mc``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch
import torch.nn.functional as F

from symkl.constraints import Constraint
from symkl.errors import closest
from symkl.family import Family, Shape

Tensor = torch.Tensor
#: (value, constrained values of the parameters this one depends on) -> value
Map = Callable[[Tensor, Mapping[str, Tensor]], Tensor]
#: (shape, dtype, device, constrained values of the parameters this one depends on) -> value
Neutral = Callable[[tuple[int, ...], torch.dtype, torch.device, Mapping[str, Tensor]], Tensor]


@dataclass(frozen=True)
class Transform:
    """A bijection from unconstrained tensors onto one constraint's set."""

    #: How it maps, for messages and docs ("softplus").
    name: str
    forward: Map  # unconstrained -> constrained
    inverse: Map  # constrained -> unconstrained
    neutral: Neutral


def _inverse_softplus(y: Tensor) -> Tensor:
    # log(expm1(y)) written so that it neither overflows for large y nor loses y near 0.
    return y + torch.log(-torch.expm1(-y))


def _tril_from_unconstrained(a: Tensor) -> Tensor:
    """A lower-triangular matrix with a positive diagonal (softplus of a's diagonal)."""
    return torch.tril(a, -1) + torch.diag_embed(F.softplus(torch.diagonal(a, dim1=-2, dim2=-1)))


def _unconstrained_from_tril(lower: Tensor) -> Tensor:
    diagonal = torch.diagonal(lower, dim1=-2, dim2=-1)
    return torch.tril(lower, -1) + torch.diag_embed(_inverse_softplus(diagonal))


def _full(value: float) -> Neutral:
    return lambda shape, dtype, device, _: torch.full(shape, value, dtype=dtype, device=device)


def _identity(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device, _: object) -> Tensor:
    return torch.eye(shape[-1], dtype=dtype, device=device).expand(shape).clone()


# Softplus rather than exp for positive values: its gradient stays bounded, so one noisy
# minibatch cannot blow a scale up by a factor of e^(lr * gradient).
TRANSFORMS: dict[str, Transform] = {
    "real": Transform("identity", lambda u, _: u, lambda y, _: y, _full(0.0)),
    "positive": Transform("softplus", lambda u, _: F.softplus(u), lambda y, _: _inverse_softplus(y),
                          _full(1.0)),
    "unit_interval": Transform("sigmoid", lambda u, _: torch.sigmoid(u), lambda y, _: torch.logit(y),
                               _full(0.5)),
    # softmax is invariant under adding a constant; log(probs) is one of its preimages.
    "simplex": Transform("softmax", lambda u, _: torch.softmax(u, -1), lambda y, _: torch.log(y),
                         lambda shape, dtype, device, _: torch.full(shape, 1.0 / shape[-1], dtype=dtype,
                                                                     device=device)),
    "lower_cholesky": Transform("tril + softplus(diagonal)", lambda u, _: _tril_from_unconstrained(u),
                                lambda y, _: _unconstrained_from_tril(y), _identity),
    "positive_definite": Transform(
        "L L^T, L = tril + softplus(diagonal)",
        lambda u, _: (lambda lower: lower @ lower.mT)(_tril_from_unconstrained(u)),
        lambda y, _: _unconstrained_from_tril(torch.linalg.cholesky(y)),
        _identity,
    ),
}


def _greater_than(other: str) -> Transform:
    """``value > other``: other + softplus(u) (Uniform's ``high``)."""
    return Transform(
        f"{other} + softplus",
        lambda u, deps: deps[other] + F.softplus(u),
        lambda y, deps: _inverse_softplus(y - deps[other]),
        lambda shape, dtype, device, deps: deps[other] + torch.ones(shape, dtype=dtype, device=device),
    )


def transform_for(constraint: Constraint) -> Transform:
    """The transform of a constraint; a clear error for a constraint it does not know."""
    if constraint.depends_on is not None:  # greater_than(other): the one dependent constraint
        return _greater_than(constraint.depends_on)
    if constraint.name in TRANSFORMS:
        return TRANSFORMS[constraint.name]
    hint = closest(constraint.name, TRANSFORMS)
    raise ValueError(
        f"no unconstrained parameterisation for the constraint {constraint.name!r}"
        + (f" (closest known: {hint!r})" if hint else "")
        + f"; known constraints: {', '.join(sorted(TRANSFORMS))}, greater_than(...)"
    )


def parameter_shape(family: Family, name: str, dim: int) -> tuple[int, ...]:
    """The shape of one parameter for event dimension ``dim`` (ignored by scalar families)."""
    shape = family.parameter(name).shape
    return {Shape.SCALAR: (), Shape.VECTOR: (dim,), Shape.MATRIX: (dim, dim)}[shape]


def dependency_order(family: Family) -> list[str]:
    """Parameter names with every parameter after the one its constraint depends on."""
    ordered: list[str] = []
    pending = list(family.param_names)
    while pending:
        for name in pending:
            other = family.parameter(name).constraint.depends_on
            if other is None or other in ordered:
                ordered.append(name)
                pending.remove(name)
                break
        else:  # a cycle would be a bug in a family declaration
            raise ValueError(f"{family.title}: cyclic parameter constraints among {pending}")
    return ordered


def neutral_values(family: Family, dim: int, dtype: torch.dtype = torch.float64,
                   device: torch.device | str = "cpu", given: Mapping[str, Tensor] | None = None
                   ) -> dict[str, Tensor]:
    """Every parameter at its constraint's neutral value, except those in ``given``."""
    values = dict(given or {})
    for name in dependency_order(family):
        if name not in values:
            transform = transform_for(family.parameter(name).constraint)
            values[name] = transform.neutral(parameter_shape(family, name, dim), dtype,
                                             torch.device(device), values)
    return {name: values[name] for name in family.param_names}


class Parametrized(torch.nn.Module):
    """A family's parameters as unconstrained tensors (the free ones) and constants (the
    fixed ones); :meth:`values` maps them through their constraints' transforms."""

    def __init__(self, family: Family, initial: Mapping[str, Tensor], fixed: Mapping[str, Tensor]):
        super().__init__()
        self.family = family
        self.fixed = {name: value.detach() for name, value in fixed.items()}
        self.order = dependency_order(family)
        self.free = torch.nn.ParameterDict()
        constrained: dict[str, Tensor] = dict(self.fixed)
        for name in self.order:
            if name in self.fixed:
                continue
            transform = transform_for(family.parameter(name).constraint)
            self.free[name] = torch.nn.Parameter(transform.inverse(initial[name].detach(), constrained))
            constrained[name] = initial[name].detach()

    def values(self) -> dict[str, Tensor]:
        """The constrained parameter values (differentiable in the free parameters)."""
        out: dict[str, Tensor] = {}
        for name in self.order:
            if name in self.fixed:
                out[name] = self.fixed[name]
            else:
                transform = transform_for(self.family.parameter(name).constraint)
                out[name] = transform.forward(self.free[name], out)
        return {name: out[name] for name in self.family.param_names}

    def distribution(self) -> torch.distributions.Distribution:
        return self.family.to_torch(self.values())
