"""Moments derived from the log-partition function equal the textbook values."""

from __future__ import annotations

import pytest
import sympy as sp

from symkl.distributions import REGISTRY
from symkl.moments import MissingMoment, expectation, facts_for


def values(name: str) -> tuple[dict, dict]:
    fam = REGISTRY[name]
    syms = fam.symbols("p")
    return syms, {k: sp.simplify(f.value(syms)) for k, f in facts_for(name).items()
                  if k not in ("E_abs", "E_lgamma1p")}


EXPECTED = {
    "normal": lambda s: {"mean": s["loc"], "variance": s["scale"] ** 2},
    "gamma": lambda s: {"mean": s["concentration"] / s["rate"],
                        "variance": s["concentration"] / s["rate"] ** 2,
                        "E_log": sp.digamma(s["concentration"]) - sp.log(s["rate"])},
    "exponential": lambda s: {"mean": 1 / s["rate"], "variance": 1 / s["rate"] ** 2,
                              "E_log": -sp.EulerGamma - sp.log(s["rate"])},
    "beta": lambda s: {
        "mean": s["concentration1"] / (s["concentration1"] + s["concentration0"]),
        "variance": s["concentration1"] * s["concentration0"]
        / ((s["concentration1"] + s["concentration0"]) ** 2 * (s["concentration1"] + s["concentration0"] + 1)),
        "E_log": sp.digamma(s["concentration1"]) - sp.digamma(s["concentration1"] + s["concentration0"]),
        "E_log1m": sp.digamma(s["concentration0"]) - sp.digamma(s["concentration1"] + s["concentration0"]),
    },
    "poisson": lambda s: {"mean": s["rate"], "variance": s["rate"]},
    "bernoulli": lambda s: {"mean": s["probs"], "variance": s["probs"] * (1 - s["probs"])},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_exponential_family_moments(name: str) -> None:
    syms, derived = values(name)
    for feature, value in EXPECTED[name](syms).items():
        assert sp.simplify(derived[feature] - value) == 0, (name, feature, derived[feature])


def test_missing_moment_names_family_and_basis() -> None:
    fam = REGISTRY["uniform"]
    x = fam.variable()
    with pytest.raises(MissingMoment, match="Uniform.*log"):
        expectation(sp.log(x), x, fam, fam.symbols("p"))
