"""Maximum likelihood as KL minimisation, derived step by step (issue 6, part 1).

``mle(model, data=None, fix=..., data_params=...)`` derives, for a model family Q_theta,

    KL(P_data || Q_theta) = -H(P_data) - E_data[log q_theta(x)]

hence argmin_theta KL = argmax_theta E_data[log q_theta], the gradient identity, the
stationary equations and, where SymPy can solve them, the optimum and the sample estimator
(:mod:`symkl.likelihood.engine`). With ``data`` a catalogue family the optimum is explicit.
Derivations are cached on disk like :mod:`symkl.api`'s.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Mapping

from symkl import api, cache, distributions
from symkl.api import fixed_key, side_for
from symkl.errors import UnsupportedPairError
from symkl.family import Structure
from symkl.likelihood import engine
from symkl.likelihood.engine import MLEDerivation

Values = Mapping[str, object] | None


@lru_cache(maxsize=None)
def _derive(model: str, data: str | None, fixed: tuple, data_fixed: tuple,
            use_cache: bool) -> MLEDerivation:
    key = ("mle", model, data, fixed, data_fixed)
    if use_cache:
        hit = cache.load(key)
        if hit is not None:
            return hit
    model_side = side_for(distributions.get(model), "q", dict(fixed))
    if data is None:
        result = engine.derive_generic(model_side)
    else:
        data_side = side_for(distributions.get(data), "p", dict(data_fixed))
        if (data, model) not in distributions.pairs():
            raise UnsupportedPairError(data, model, distributions.pairs())
        kl = api._derive("kl", data, model, data_fixed, fixed, use_cache)
        ce = api._derive("cross_entropy", data, model, data_fixed, fixed, use_cache)
        h = api._derive("entropy", data, None, data_fixed, (), use_cache)
        generic = _derive(model, None, fixed, (), use_cache)
        result = engine.derive_with_data(model_side, data_side, kl, ce, h, generic)
    if use_cache:
        cache.store(key, result)
    return result


def mle(model: str, data: str | None = None, *, fix: Values = None, data_params: Values = None,
        cache: bool = True) -> MLEDerivation:
    """Derive the maximum-likelihood equivalence for the model family ``model``.

    ``fix`` fixes model parameters by their torch names (``fix={"scale": 1}``). ``data`` is
    a catalogue family for the data distribution (default: a generic one, whose moments stay
    symbols E_data[g(x)]); ``data_params`` fixes its parameters (``{"loc": 2, "scale": 1}``).
    ``cache=False`` bypasses the on-disk cache.
    """
    family = distributions.get(model)
    model_name = family.name
    data_name = distributions.get(data).name if data is not None else None
    if family.structure is Structure.MATRIX:
        raise ValueError(
            f"mle({model!r}): {family.title} parameters are symbolic k x k matrices, and SymPy "
            "cannot differentiate log det and quadratic forms of symbolic dimension; use "
            "'mvn_diag' (its MLE is the coordinate-wise sample mean and variance)")
    family.check_names(fix or {}, "fix")
    if data_name is not None:
        distributions.get(data_name).check_names(data_params or {}, "data_params")
    if data_name is None and data_params:
        raise ValueError("data_params needs a data family (data=...); with generic data there "
                         "are no data parameters to fix")
    # A fresh object per call (as symkl.kl): what a caller sets on it never reaches the cache.
    return dataclasses.replace(_derive(model_name, data_name, fixed_key(fix), fixed_key(data_params), cache))


#: The exported and documented MLE derivations: (model, data, fix, data_params), in order.
EXAMPLES: tuple[tuple[str, str | None, dict, dict], ...] = (
    ("normal", None, {}, {}),
    ("normal", None, {"scale": 1}, {}),
    ("exponential", None, {}, {}),
    ("poisson", None, {}, {}),
    ("bernoulli", None, {}, {}),
    ("gamma", None, {}, {}),
    ("beta", None, {}, {}),
    ("categorical", None, {}, {}),
    ("mvn_diag", None, {}, {}),
    ("dirichlet", None, {}, {}),
    ("laplace", None, {}, {}),
    ("uniform", None, {}, {}),
    ("normal", "normal", {"scale": 1}, {"loc": 2, "scale": 1}),
    ("normal", "gamma", {}, {}),
)


def examples() -> list[MLEDerivation]:
    """The MLE derivations that ``symkl export`` writes and the docs show (fixed order)."""
    return [mle(model, data, fix=fix, data_params=params) for model, data, fix, params in EXAMPLES]


__all__ = ["EXAMPLES", "MLEDerivation", "examples", "mle"]
