"""The classic worked examples of the KL primer, from the derived formulas.

Each expected value is given with the digits the issue quotes and, independently, from
the textbook closed form computed here in mpmath; the derived result must match both,
and torch.distributions (accurate in these well-separated cases) must agree in float64.
"""

from __future__ import annotations

import mpmath
import pytest
import sympy as sp
import torch

import symkl
from symkl import mpeval
from symkl.family import DIM

mpf = mpmath.mpf


@pytest.fixture(autouse=True)
def _precision():
    """Inputs, formulas and references all at 40 digits (mpf("0.7") depends on mp.dps)."""
    with mpmath.workdps(40):
        yield


def value(d: symkl.Derivation, **params) -> mpmath.mpf:
    """Evaluate a derivation's result at named parameters (``loc_p=...``), 30 digits."""
    env = {}
    for name, val in params.items():
        env[d.symbols[name]] = [mpf(v) for v in val] if isinstance(val, (list, tuple)) else mpf(val)
        if isinstance(val, (list, tuple)):
            env[DIM] = mpf(len(val))
    with mpmath.workdps(30):
        return mpeval.evaluate(d.result, env)


def softmax(logits: list[str]) -> list[mpmath.mpf]:
    with mpmath.workdps(40):
        e = [mpmath.exp(mpf(z)) for z in logits]
        s = mpmath.fsum(e)
        return [x / s for x in e]


def test_categorical_against_softmax_logits() -> None:
    p, q = [mpf("0.7"), mpf("0.2"), mpf("0.1")], softmax(["1.2", "0.3", "-0.8"])
    got = value(symkl.kl("categorical", "categorical"), probs_p=p, probs_q=q)
    with mpmath.workdps(30):
        textbook = mpmath.fsum(pi * mpmath.log(pi / qi) for pi, qi in zip(p, q))
    assert mpmath.almosteq(got, textbook, rel_eps=mpf("1e-25"))
    assert abs(got - mpf("0.0112001")) < mpf("1e-7")  # the quoted digits (rounded or truncated)
    # cross-entropy minus entropy reproduces it (the primer's CE - H check)
    ce = value(symkl.cross_entropy("categorical", "categorical"), probs_p=p, probs_q=q)
    h = value(symkl.entropy("categorical"), probs_p=p)
    assert mpmath.almosteq(ce - h, got, rel_eps=mpf("1e-25"))
    ref = torch.distributions.kl_divergence(
        torch.distributions.Categorical(probs=torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)),
        torch.distributions.Categorical(logits=torch.tensor([1.2, 0.3, -0.8], dtype=torch.float64)),
    )
    assert float(ref) == pytest.approx(float(got), rel=1e-12)


def _normal_textbook(m1, s1, m2, s2):
    with mpmath.workdps(30):
        m1, s1, m2, s2 = map(mpf, (m1, s1, m2, s2))
        return mpmath.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - mpf(1) / 2


@pytest.mark.parametrize("m1,s1,m2,s2,digits", [
    ("0", "1", "1", "0.5", "2.8068528"),
    ("1", "0.5", "0", "1", "0.8181471"),
])
def test_normal_both_directions(m1, s1, m2, s2, digits) -> None:
    got = value(symkl.kl("normal", "normal"), loc_p=m1, scale_p=s1, loc_q=m2, scale_q=s2)
    assert mpmath.almosteq(got, _normal_textbook(m1, s1, m2, s2), rel_eps=mpf("1e-25"))
    assert abs(got - mpf(digits)) < mpf("1e-7")  # the quoted digits (rounded or truncated)
    ref = torch.distributions.kl_divergence(
        torch.distributions.Normal(torch.tensor(float(m1), dtype=torch.float64), float(s1)),
        torch.distributions.Normal(torch.tensor(float(m2), dtype=torch.float64), float(s2)),
    )
    assert float(ref) == pytest.approx(float(got), rel=1e-13)


def test_diagonal_mvn_from_log_variances() -> None:
    mu_p, logvar_p = ["0", "1", "-1"], ["0", "-0.5", "0.2"]
    mu_q, logvar_q = ["0.5", "0.5", "-0.5"], ["-0.2", "0", "0"]
    with mpmath.workdps(40):
        scale_p = [mpmath.exp(mpf(v) / 2) for v in logvar_p]
        scale_q = [mpmath.exp(mpf(v) / 2) for v in logvar_q]
    got = value(symkl.kl("mvn_diag", "mvn_diag"),
                loc_p=mu_p, scale_p=scale_p, loc_q=mu_q, scale_q=scale_q)
    with mpmath.workdps(30):
        textbook = mpmath.fsum(
            (mpf(lq) - mpf(lp) + (mpmath.exp(mpf(lp)) + (mpf(a) - mpf(b)) ** 2) / mpmath.exp(mpf(lq)) - 1) / 2
            for a, b, lp, lq in zip(mu_p, mu_q, logvar_p, logvar_q)
        )
    assert mpmath.almosteq(got, textbook, rel_eps=mpf("1e-25"))
    assert abs(got - mpf("0.4773434")) < mpf("1e-7")  # the quoted digits (rounded or truncated)
    t = lambda xs: torch.tensor([float(x) for x in xs], dtype=torch.float64)  # noqa: E731
    diag = lambda m, lv: torch.distributions.Independent(  # noqa: E731
        torch.distributions.Normal(t(m), torch.exp(t(lv) / 2)), 1)
    ref = torch.distributions.kl_divergence(diag(mu_p, logvar_p), diag(mu_q, logvar_q))
    assert float(ref) == pytest.approx(float(got), rel=1e-13)


def test_vae_term_vanishes_at_the_prior_and_matches_the_textbook() -> None:
    d = symkl.kl("mvn_diag", "mvn_diag", q={"loc": 0, "scale": 1})
    assert value(d, loc_p=["0", "0"], scale_p=["1", "1"]) == 0
    mu, logvar = ["0.3", "-1.2"], ["0.5", "-2"]
    scale = [mpmath.exp(mpf(v) / 2) for v in logvar]
    got = value(d, loc_p=mu, scale_p=scale)
    with mpmath.workdps(30):
        textbook = -mpmath.fsum(1 + mpf(lv) - mpf(m) ** 2 - mpmath.exp(mpf(lv)) for m, lv in zip(mu, logvar)) / 2
    assert mpmath.almosteq(got, textbook, rel_eps=mpf("1e-25"))
    # the symbolic term is the VAE loss, with no trace of the fixed prior's symbols
    assert not any(str(s).endswith("_q") for s in d.result.free_symbols)


def test_normal_closed_form_is_the_textbook_expression() -> None:
    d = symkl.kl("normal", "normal")
    m1, s1, m2, s2 = (d.symbols[n] for n in ("loc_p", "scale_p", "loc_q", "scale_q"))
    textbook = sp.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - sp.Rational(1, 2)
    assert sp.simplify(sp.expand_log(d.result - textbook, force=True)) == 0
