"""Each declared family against torch.distributions, and the constraints as data.

* the symbolic log-density of every family (evaluated in mpmath) equals torch's
  ``log_prob`` in float64 at sampled parameters and samples;
* ``Family.validate`` rejects bad values with a message naming the parameter, the
  constraint and the offending value or shape (hypothesis searches the bad values);
* ``Family.sample_parameters`` only produces values that validate and that torch accepts.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import symkl
from symkl import mpeval
from symkl.distributions import REGISTRY
from symkl.family import DIM, Structure

FAMILIES = sorted(REGISTRY)


def _env(family, symbols, x_symbol, params: dict[str, np.ndarray], x: np.ndarray) -> dict:
    """mpmath values for the parameter symbols, the variable and the dimension k."""

    def conv(v: np.ndarray):
        if v.ndim == 0:
            return mpmath.mpf(float(v))
        if family.structure is Structure.MATRIX:
            return mpmath.matrix(v.tolist() if v.ndim == 2 else [[float(t)] for t in v])
        return [mpmath.mpf(float(t)) for t in v]

    env = {symbols[name]: conv(np.asarray(val)) for name, val in params.items()}
    env[x_symbol] = conv(np.asarray(x))
    if family.structure is not Structure.SCALAR:
        env[DIM] = mpmath.mpf(np.asarray(x).shape[-1])
    return env


@pytest.mark.parametrize("name", FAMILIES)
def test_log_density_matches_torch_log_prob(name: str) -> None:
    family = REGISTRY[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    symbols = family.symbols("p")
    x_symbol = family.variable()
    log_density = family.log_density(x_symbol, symbols)
    for _ in range(3):
        params = family.sample_parameters(rng, dim=3)
        dist = family.to_torch({k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()},
                               validate_args=True)
        for sample in dist.sample((4,)):
            expected = float(dist.log_prob(sample))
            x = sample.numpy()
            if name == "categorical":  # torch draws class indices; symkl uses one-hot x
                x = np.eye(3)[int(x)]
            with mpmath.workdps(30):
                got = mpeval.evaluate(log_density, _env(family, symbols, x_symbol, params, x))
            assert float(got) == pytest.approx(expected, rel=1e-11, abs=1e-11), (name, params, x)


@pytest.mark.parametrize("name", FAMILIES)
def test_sampled_parameters_validate(name: str) -> None:
    family = REGISTRY[name]
    rng = np.random.default_rng(7)
    for batch in [(), (5,), (2, 3)]:
        params = family.sample_parameters(rng, batch=batch, dim=4)
        family.validate(params)  # does not raise
        for p in family.params:
            assert params[p.name].shape[: len(batch)] == batch


# -- bad input: a clear error naming parameter and constraint --------------------------------

SCALAR_PARAMS = [(f, p.name, p.constraint.name) for f in FAMILIES for p in REGISTRY[f].params
                 if p.constraint.event_dim == 0 and REGISTRY[f].structure is Structure.SCALAR]


def _valid(name: str) -> dict[str, np.ndarray]:
    return REGISTRY[name].sample_parameters(np.random.default_rng(0), dim=3)


def _assert_rejects(name: str, param: str, values: dict) -> None:
    family = REGISTRY[name]
    with pytest.raises(ValueError) as info:
        family.validate(values)
    message = str(info.value)
    assert f"'{param}'" in message and family.title in message
    assert family.parameter(param).constraint.text in message


def _violations(constraint: str) -> st.SearchStrategy[float]:
    """Values that break the constraint, chosen independently of its ``check``."""
    nan_or_inf = st.sampled_from([float("nan"), float("inf"), float("-inf")])
    if constraint == "positive":
        return st.one_of(nan_or_inf, st.floats(max_value=0.0, allow_nan=False))
    if constraint == "unit_interval":
        return st.one_of(st.just(float("nan")),
                         st.floats(max_value=-1e-300, allow_nan=False),
                         st.floats(min_value=1 + 2.3e-16, allow_nan=False))
    return nan_or_inf  # real, greater_than(...)


@pytest.mark.parametrize("name,param,constraint", SCALAR_PARAMS,
                         ids=[f"{f}-{p}" for f, p, _ in SCALAR_PARAMS])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_scalar_constraint_violations_are_named(name, param, constraint, data) -> None:
    bad = data.draw(_violations(constraint.split("(")[0]))
    values = {k: float(v) for k, v in _valid(name).items()}
    values[param] = bad
    _assert_rejects(name, param, values)


def test_uniform_high_must_exceed_low() -> None:
    _assert_rejects("uniform", "high", {"low": 1.0, "high": 1.0})
    _assert_rejects("uniform", "high", {"low": [0.0, 2.0], "high": [1.0, 1.5]})


@settings(max_examples=40, deadline=None)
@given(probs=st.lists(st.floats(0, 1), min_size=2, max_size=6))
def test_simplex_rejects_vectors_not_summing_to_one(probs) -> None:
    v = np.asarray(probs)
    if abs(v.sum() - 1) <= 1e-9:
        v = v * 2 + 0.1  # move off the simplex
    _assert_rejects("categorical", "probs", {"probs": v})


def test_simplex_rejects_negative_entries_and_reports_the_index() -> None:
    with pytest.raises(ValueError, match=r"'probs'.*got .*-0\.1.* at index \(1,\)"):
        REGISTRY["categorical"].validate({"probs": [[0.5, 0.5, 0.0], [1.1, -0.1, 0.0]]})


@pytest.mark.parametrize("matrix", [
    [[1.0, 0.5], [0.4, 1.0]],  # not symmetric
    [[1.0, 2.0], [2.0, 1.0]],  # symmetric, indefinite
    [[0.0, 0.0], [0.0, 0.0]],  # singular
], ids=["asymmetric", "indefinite", "singular"])
def test_covariance_must_be_positive_definite(matrix) -> None:
    _assert_rejects("mvn", "covariance_matrix", {"loc": [0.0, 0.0], "covariance_matrix": matrix})


def test_matrix_parameter_needs_a_square_matrix() -> None:
    with pytest.raises(ValueError, match=r"'covariance_matrix' must be square, got shape \(2, 3\)"):
        REGISTRY["mvn"].validate({"covariance_matrix": np.ones((2, 3))})
    with pytest.raises(ValueError, match=r"'probs' must have at least 1 dimension"):
        REGISTRY["categorical"].validate({"probs": 0.5})


def test_unknown_parameter_lists_the_real_ones() -> None:
    with pytest.raises(ValueError, match=r"Normal has no parameter\(s\) \['sigma'\]; its parameters are \['loc', 'scale'\]"):
        REGISTRY["normal"].validate({"sigma": 1.0})


def test_public_api_reports_bad_fixed_values() -> None:
    with pytest.raises(ValueError, match=r"'scale' must be > 0"):
        symkl.kl("normal", "normal", q={"scale": -1})
