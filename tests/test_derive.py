"""The derivation engine: results against published closed forms, steps, conditions, errors."""

from __future__ import annotations

import mpmath
import pytest
import sympy as sp

import symkl
from symkl import mpeval
from symkl.derivation import CheckMethod
from symkl.family import DIM, INDEX

ALL_PAIRS = symkl.pairs()
FAMILY_NAMES = [f.name for f in symkl.families()]


def sym(d: symkl.Derivation, *names: str) -> list[sp.Basic]:
    return [d.symbols[n] for n in names]


# -- catalogue ---------------------------------------------------------------------------------


def test_catalogue_lists_required_families_and_pairs() -> None:
    assert set(FAMILY_NAMES) == {
        "normal", "mvn", "mvn_diag", "categorical", "bernoulli", "poisson", "exponential",
        "gamma", "beta", "dirichlet", "laplace", "uniform",
    }
    required = {
        ("exponential", "gamma"), ("gamma", "exponential"), ("exponential", "normal"),
        ("gamma", "normal"), ("beta", "normal"), ("laplace", "normal"), ("normal", "laplace"),
        ("uniform", "normal"), ("beta", "uniform"), ("uniform", "uniform"),
        ("normal", "exponential"), ("normal", "uniform"),
    } | {(f, f) for f in FAMILY_NAMES}
    assert required <= set(ALL_PAIRS)


@pytest.mark.parametrize("p,q", ALL_PAIRS)
def test_every_pair_derives_with_every_step_checked(p: str, q: str) -> None:
    d = symkl.kl(p, q)
    assert d.checked, [s for s in d.steps if not s.check.passed]
    assert d.steps[0].rule.startswith(("definition", "support mismatch"))
    if not d.conditions.never_finite:
        methods = {s.check.method for s in d.steps}
        assert methods & {CheckMethod.SYMBOLIC, CheckMethod.NUMERIC}
        moment_steps = [s for s in d.steps if not s.chain]
        assert all(s.check.method is CheckMethod.NUMERIC for s in moment_steps)
    statements = [i.statement for i in d.identities]
    assert any("H(P, Q)" in s for s in statements)
    if p == q:
        assert "KL(P || P) = 0" in statements
    assert all(i.check.passed for i in d.identities)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_every_entropy_derives_checked(name: str) -> None:
    d = symkl.entropy(name)
    assert d.checked
    assert d.conditions.always_finite
    allowed = {str(s) for s in d.symbols.values()} | {"k"}
    names = {str(getattr(s, "base", s)) for s in d.formula.free_symbols}
    assert names <= allowed, names - allowed


# -- results equal published closed forms (symbolically) ----------------------------------------


def assert_same(expr: sp.Expr, expected: sp.Expr) -> None:
    diff = sp.simplify(sp.expand_log(sp.expand(expr - expected), force=True))
    assert diff == 0, diff


def test_normal_kl_is_the_textbook_formula() -> None:
    d = symkl.kl("normal", "normal")
    m1, s1, m2, s2 = sym(d, "loc_p", "scale_p", "loc_q", "scale_q")
    assert_same(d.formula, sp.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - sp.Rational(1, 2))


def test_gamma_kl_matches_penny_2001() -> None:
    d = symkl.kl("gamma", "gamma")
    a1, b1, a2, b2 = sym(d, "concentration_p", "rate_p", "concentration_q", "rate_q")
    # Penny (2001), rate parametrisation.
    expected = ((a1 - a2) * sp.digamma(a1) - sp.loggamma(a1) + sp.loggamma(a2)
                + a2 * (sp.log(b1) - sp.log(b2)) + a1 * (b2 - b1) / b1)
    assert_same(d.formula, expected)


def test_beta_kl_matches_the_standard_form() -> None:
    d = symkl.kl("beta", "beta")
    a1, b1, a2, b2 = sym(d, "concentration1_p", "concentration0_p", "concentration1_q", "concentration0_q")
    log_b = lambda a, b: sp.loggamma(a) + sp.loggamma(b) - sp.loggamma(a + b)  # noqa: E731
    expected = (log_b(a2, b2) - log_b(a1, b1) + (a1 - a2) * sp.digamma(a1)
                + (b1 - b2) * sp.digamma(b1) + (a2 - a1 + b2 - b1) * sp.digamma(a1 + b1))
    assert_same(d.formula, expected)


def test_poisson_exponential_bernoulli_laplace_uniform_closed_forms() -> None:
    d = symkl.kl("poisson", "poisson")
    l1, l2 = sym(d, "rate_p", "rate_q")
    assert_same(d.formula, l1 * sp.log(l1 / l2) - l1 + l2)

    d = symkl.kl("exponential", "exponential")
    l1, l2 = sym(d, "rate_p", "rate_q")
    assert_same(d.formula, sp.log(l1 / l2) + l2 / l1 - 1)

    d = symkl.kl("bernoulli", "bernoulli")
    p1, p2 = sym(d, "probs_p", "probs_q")
    assert_same(d.formula, p1 * sp.log(p1 / p2) + (1 - p1) * sp.log((1 - p1) / (1 - p2)))

    d = symkl.kl("laplace", "laplace")  # Gil, Alajaji & Linder (2013), Table 2
    m1, b1, m2, b2 = sym(d, "loc_p", "scale_p", "loc_q", "scale_q")
    dist = sp.Abs(m1 - m2)
    assert_same(d.formula, sp.log(b2 / b1) + dist / b2 + b1 / b2 * sp.exp(-dist / b1) - 1)

    d = symkl.kl("uniform", "uniform")
    a1, b1, a2, b2 = sym(d, "low_p", "high_p", "low_q", "high_q")
    assert_same(d.formula, sp.log((b2 - a2) / (b1 - a1)))


def test_entropies_match_textbook() -> None:
    cases = {
        "normal": lambda s: sp.log(s["scale_p"] * sp.sqrt(2 * sp.pi * sp.E)),
        "exponential": lambda s: 1 - sp.log(s["rate_p"]),
        "laplace": lambda s: 1 + sp.log(2 * s["scale_p"]),
        "uniform": lambda s: sp.log(s["high_p"] - s["low_p"]),
        "gamma": lambda s: (s["concentration_p"] - sp.log(s["rate_p"]) + sp.loggamma(s["concentration_p"])
                            + (1 - s["concentration_p"]) * sp.digamma(s["concentration_p"])),
    }
    for name, expected in cases.items():
        d = symkl.entropy(name)
        assert_same(d.formula, expected(d.symbols))


def test_mvn_kl_matches_the_closed_form_numerically() -> None:
    d = symkl.kl("mvn", "mvn")
    mp_ = mpmath.mp
    with mpmath.workdps(40):
        mu_p = mpmath.matrix([0.3, -1.2])
        mu_q = mpmath.matrix([1.0, 0.5])
        s_p = mpmath.matrix([[2.0, 0.3], [0.3, 0.5]])
        s_q = mpmath.matrix([[1.0, -0.2], [-0.2, 1.5]])
        env = {d.symbols["loc_p"]: mu_p, d.symbols["loc_q"]: mu_q,
               d.symbols["covariance_matrix_p"]: s_p, d.symbols["covariance_matrix_q"]: s_q,
               DIM: mpmath.mpf(2)}
        inv_q = s_q**-1
        diff = mu_q - mu_p
        expected = (mpmath.log(mpmath.det(s_q) / mpmath.det(s_p)) - 2
                    + sum((inv_q * s_p)[i, i] for i in range(2)) + (diff.T * inv_q * diff)[0, 0]) / 2
        assert abs(mpeval.evaluate(d.formula, env) - expected) < mpmath.mpf(10) ** (-mp_.dps + 5)


def test_dirichlet_kl_has_the_digamma_structure() -> None:
    d = symkl.kl("dirichlet", "dirichlet")
    text = d.text()
    assert "psi(concentration_p[i])" in text and "lnGamma(" in text


# -- conditions and +inf -------------------------------------------------------------------------


def test_support_mismatch_is_infinite() -> None:
    for p, q in [("normal", "exponential"), ("normal", "uniform")]:
        d = symkl.kl(p, q)
        assert d.result == sp.oo and d.conditions.never_finite
        assert "not contained" in d.conditions.infinite_when
        assert symkl.cross_entropy(p, q).result == sp.oo


def test_uniform_pair_is_finite_exactly_under_containment() -> None:
    d = symkl.kl("uniform", "uniform")
    a1, b1, a2, b2 = sym(d, "low_p", "high_p", "low_q", "high_q")
    assert isinstance(d.result, sp.Piecewise)
    inside = {a1: 0, b1: 1, a2: -1, b2: 2}
    outside = {a1: 0, b1: 3, a2: -1, b2: 2}
    assert d.result.subs(inside) == sp.log(3)
    assert d.result.subs(outside) == sp.oo


def test_beta_uniform_needs_the_unit_interval_inside() -> None:
    d = symkl.kl("beta", "uniform")
    low, high = sym(d, "low_q", "high_q")
    assert d.conditions.finite_when.subs({low: 0, high: 1}) is sp.true
    assert d.conditions.finite_when.subs({low: 0.1, high: 1}) is sp.false


def test_categorical_conditions_are_per_class() -> None:
    d = symkl.kl("categorical", "categorical")
    assert d.conditions.for_all_index == INDEX
    assert any("0 log 0" in n for n in d.conditions.notes)
    p_i, q_i = d.symbols["probs_p"][INDEX], d.symbols["probs_q"][INDEX]
    cond = d.conditions.finite_when
    assert cond.subs({p_i: 0, q_i: 0}) is sp.true  # 0 log 0 = 0
    assert cond.subs({p_i: sp.Rational(1, 2), q_i: 0}) is sp.false  # mass where q = 0


def test_bernoulli_degenerate_q_is_infinite() -> None:
    d = symkl.kl("bernoulli", "bernoulli")
    p, q = sym(d, "probs_p", "probs_q")
    assert d.result.subs({p: sp.Rational(1, 2), q: 1}) == sp.oo
    assert d.result.subs({p: 1, q: 1}) != sp.oo


def test_poisson_entropy_is_a_series_and_says_so() -> None:
    d = symkl.entropy("poisson")
    assert d.formula.has(sp.Sum)
    assert any("no closed form" in n for n in d.conditions.notes)


# -- fixed parameters ---------------------------------------------------------------------------


def test_vae_term_is_derived_from_fixed_prior() -> None:
    d = symkl.kl("mvn_diag", "mvn_diag", q={"loc": 0, "scale": 1})
    mu, sigma = d.symbols["loc_p"][INDEX], d.symbols["scale_p"][INDEX]
    assert isinstance(d.formula, sp.Sum)
    vae = (mu**2 + sigma**2 - 1 - sp.log(sigma**2)) / 2
    assert_same(d.formula.function, vae)
    assert d.steps[-1].rule == "substitute the fixed parameters"
    assert "loc_q" not in str(d.formula)


def test_fixing_bad_parameters_raises_clear_errors() -> None:
    with pytest.raises(ValueError, match="no parameter.*'mean'.*loc"):
        symkl.kl("normal", "normal", q={"mean": 0})
    with pytest.raises(ValueError, match="scale.*> 0"):
        symkl.kl("normal", "normal", q={"scale": -1})


# -- errors --------------------------------------------------------------------------------------


def test_unknown_family_suggests_the_closest_name() -> None:
    with pytest.raises(symkl.UnknownFamilyError, match="did you mean 'normal'") as err:
        symkl.kl("normel", "normal")
    assert "dirichlet" in str(err.value)
    assert symkl.kl("Gaussian", "gaussian").p == "normal"  # aliases are accepted


def test_unsupported_pair_lists_the_supported_ones() -> None:
    with pytest.raises(symkl.UnsupportedPairError, match="poisson || normal.*Supported pairs.*gamma||exponential"):
        symkl.kl("poisson", "normal")


# -- rendering -----------------------------------------------------------------------------------


def test_latex_uses_textbook_notation() -> None:
    tex = symkl.kl("gamma", "gamma").latex()
    assert tex.startswith("\\begin{align*}") and tex.rstrip().endswith("\\end{align*}")
    assert "\\psi\\left(\\alpha_{p}\\right)" in tex and "\\ln\\Gamma" in tex
    assert "polygamma" not in tex and "loggamma" not in tex
    assert "linearity of expectation" in tex


def test_terms_are_ordered_like_a_textbook() -> None:
    text = symkl.kl("normal", "normal").text().splitlines()[0]
    assert text == "KL(P || Q) = log(scale_q/scale_p) + (scale_p**2 + (loc_p - loc_q)**2)/(2*scale_q**2) - 1/2"


def test_markdown_and_jupyter_reprs() -> None:
    d = symkl.kl("poisson", "poisson")
    md = d.markdown()
    assert md.startswith("## KL divergence: Poisson || Poisson")
    assert "**Derivation**" in md and "**Identities**" in md and "linearity of expectation" in md
    assert d._repr_latex_().startswith("$$\\begin{aligned}")
