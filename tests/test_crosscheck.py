"""The brute-force integrate/summation cross-check and its time limit."""

from __future__ import annotations

import pytest

import symkl
from symkl.crosscheck import crosscheck


def test_brute_force_agrees_for_normal_entropy() -> None:
    d = symkl.entropy("normal", brute_force=60)
    assert d.brute_force.status == "agrees", d.brute_force


def test_brute_force_agrees_for_poisson_kl_by_summation() -> None:
    outcome = crosscheck(symkl.kl("poisson", "poisson"), timeout=60)
    assert outcome.status == "agrees", outcome


def test_timeout_is_recorded_not_raised() -> None:
    outcome = crosscheck(symkl.entropy("beta"), timeout=0.5)
    assert outcome.status == "timeout" and "0.5" in outcome.detail


def test_multivariate_and_infinite_are_not_run() -> None:
    assert crosscheck(symkl.kl("mvn", "mvn")).status == "not run"
    assert crosscheck(symkl.kl("normal", "exponential")).status == "not run"


@pytest.mark.slow
@pytest.mark.parametrize("p,q", [("gamma", "gamma"), ("normal", "normal")])
def test_brute_force_slow_pairs(p: str, q: str) -> None:
    outcome = crosscheck(symkl.kl(p, q), timeout=300)
    assert outcome.status in ("agrees", "timeout"), outcome


@pytest.mark.slow
def test_brute_force_failure_is_recorded_not_raised() -> None:
    # SymPy 1.14's integrate raises "Invalid comparison of non-real zoo" on the |x - loc|
    # kinks of Laplace || Laplace: the cross-check records that and never disagrees.
    outcome = crosscheck(symkl.kl("laplace", "laplace"), timeout=300)
    assert outcome.status in ("agrees", "timeout", "failed"), outcome
    if outcome.status == "failed":
        assert "TypeError" in outcome.detail or "Error" in outcome.detail
