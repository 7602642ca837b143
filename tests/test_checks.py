"""Step checks must be able to fail: wrong moments and wrong simplifications are caught."""

from __future__ import annotations


import mpmath
import numpy as np
import pytest
import sympy as sp

from symkl import checks, moments
from symkl.derivation import CheckMethod
from symkl.distributions import REGISTRY
from symkl.family import Fact
from symkl.numeric import Side
from symkl import derive


def _run_with_fact(monkeypatch: pytest.MonkeyPatch, family: str, feature: str, fact: Fact,
                   q: str | None = None):
    real = moments.facts_for(family)
    monkeypatch.setattr(moments, "facts_for",
                        lambda name: {**real, feature: fact} if name == family else moments.facts_for.__wrapped__(name))
    fam_p = REGISTRY[family]
    side_p = Side(fam_p, fam_p.symbols("p"), {})
    side_q = Side(REGISTRY[q or family], REGISTRY[q or family].symbols("q"), {})
    return derive.run("kl", side_p, side_q)


@pytest.mark.parametrize("perturbation", [sp.Rational(1001, 1000), -1, sp.Rational(1, 2)])
def test_wrong_variance_is_caught(monkeypatch: pytest.MonkeyPatch, perturbation: sp.Expr) -> None:
    wrong = Fact(lambda p: perturbation * p["scale"] ** 2, "deliberately wrong")
    d = _run_with_fact(monkeypatch, "normal", "variance", wrong)
    failed = [s for s in d.steps if not s.check.passed]
    assert failed and all(s.check.method is CheckMethod.NUMERIC for s in failed)
    assert not d.checked
    assert "max relative gap" in failed[0].check.detail


def test_wrong_mean_log_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # Sign flipped in one term of E[log x] for the Gamma.
    wrong = Fact(lambda p: sp.digamma(p["concentration"]) + sp.log(p["rate"]), "sign flipped")
    d = _run_with_fact(monkeypatch, "gamma", "E_log", wrong)
    assert not d.checked


def test_correct_facts_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    right = Fact(lambda p: p["scale"] ** 2, "right")
    assert _run_with_fact(monkeypatch, "normal", "variance", right).checked


def test_check_equal_is_symbolic_when_sympy_decides() -> None:
    a, b = sp.symbols("a b", positive=True)
    check = checks.check_equal(sp.log(a * b), sp.log(a) + sp.log(b), lambda rng: {}, 0)
    assert check.method is CheckMethod.SYMBOLIC and check.passed


def test_numeric_check_detects_last_digits() -> None:
    a = sp.Symbol("a", positive=True)
    import mpmath

    def sampler(rng: np.random.Generator) -> dict:
        return {a: mpmath.mpf(float(rng.uniform(1, 2)))}

    # polygamma(0, a + 1) = polygamma(0, a) + 1/a holds; SymPy's cheap rules do not see it.
    ok = checks.check_equal(sp.polygamma(0, a + 1), sp.polygamma(0, a) + 1 / a, sampler, 0)
    assert ok.passed
    bad = checks.check_equal(sp.polygamma(0, a + 1), sp.polygamma(0, a) + 1 / a + sp.Rational(1, 10**22),
                             sampler, 0)
    assert not bad.passed and bad.method is CheckMethod.NUMERIC


def test_gaps_below_the_noise_floor_are_reported_as_a_bound() -> None:
    # Digits of a gap at the 30-digit rounding level differ between installations; the
    # committed derivation documents must not.
    from symkl.checks import NOISE_FLOOR, format_gap

    assert NOISE_FLOOR == mpmath.mpf(10) ** -27
    assert format_gap(mpmath.mpf("4.9e-31")) == format_gap(mpmath.mpf("3.9e-31")) == "< 1.0e-27"
    assert format_gap(mpmath.mpf(0)) == "0.0"
    assert format_gap(mpmath.mpf("3.14e-20")) == "3.1e-20"  # a real gap keeps its digits


def test_check_points_do_not_depend_on_the_last_bits_of_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """numpy's exp (and BLAS) differ in the last bit between CPUs; the committed derivations/
    print the checks' gaps, so the points they are taken at must not move with that bit."""
    from symkl import constraints, numeric

    family = REGISTRY["gamma"]  # both parameters drawn through np.exp
    side = Side(family, family.symbols("p"), {})
    before = numeric.sample_values(side, np.random.default_rng(11), 1)
    exp = np.exp
    monkeypatch.setattr(constraints.np, "exp", lambda x: np.nextafter(exp(x), np.inf))
    after = numeric.sample_values(side, np.random.default_rng(11), 1)
    assert before == after
    assert all(v.man.bit_length() <= numeric.PORTABLE_BITS for v in before.values())
    with mpmath.workdps(30):  # but the drawn values themselves are kept (to 32 bits)
        raw = family.sample_parameters(np.random.default_rng(11), dim=1)
        assert all(abs(before[n] / mpmath.mpf(float(raw[n])) - 1) < 2.0**-32 for n in raw)
