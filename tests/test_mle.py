"""``symkl.mle``: maximum likelihood as KL minimisation.

The references are independent of the derivation: numpy statistics of concrete samples,
direct numeric maximisation of the sample log-likelihood with torch, and numeric
minimisation of ``symkl.kl``'s closed form with mpmath.findroot.
"""

from __future__ import annotations

import io
import time
from contextlib import redirect_stderr, redirect_stdout

import mpmath
import numpy as np
import pytest
import sympy as sp
import torch

import symkl
from symkl.cli import main
from symkl.likelihood import EXAMPLES, examples
from symkl.likelihood.nodes import SampleAverage
from symkl.nodes import Expect

RNG = np.random.default_rng(20261203)


def sample_value(expr: sp.Expr, sample: np.ndarray, column: int | None = None) -> float:
    """Evaluate an estimator on a sample: (1/N) sum_n g(x_n) computed with numpy; for vector
    families, ``column`` is the coordinate l of every observation."""
    coordinate = sp.Symbol("x_l", real=True)

    def average(node: SampleAverage) -> sp.Expr:
        g, x = node.args
        values = sample if column is None else sample[:, column]
        if column is not None:
            g, x = g.replace(lambda e: isinstance(e, sp.Indexed), lambda e: coordinate), coordinate
        mean = np.mean(np.broadcast_to(sp.lambdify(x, g, "numpy")(values), values.shape))
        return sp.Float(float(mean), 30)

    return float(expr.replace(lambda e: isinstance(e, SampleAverage), average))


def with_moments(expr: sp.Expr, sample: np.ndarray) -> sp.Expr:
    """E_data[g] -> the sample average of g (for the equations of a no-closed-form case)."""

    def average(node: Expect) -> sp.Expr:
        g = node.args[0]
        (x,) = g.free_symbols
        return sp.Float(float(np.mean(sp.lambdify(x, g, "numpy")(sample))), 30)

    return expr.replace(lambda e: isinstance(e, Expect), average)


# -- the explicit examples -----------------------------------------------------


@pytest.fixture(scope="module")
def normal_data_normal_model() -> symkl.Derivation:
    return symkl.mle("normal", "normal", fix={"scale": 1}, data_params={"loc": 2, "scale": 1})


@pytest.fixture(scope="module")
def gamma_data_normal_model() -> symkl.Derivation:
    return symkl.mle("normal", "gamma")


def test_theta_star_is_the_data_mean(normal_data_normal_model):
    d = normal_data_normal_model
    assert d.optimum == {"loc_q": 2}
    assert (d.quantity, d.q, d.p) == ("mle", "normal", "normal")
    assert d.fixed == {"scale_q": 1}
    assert d.checked


def test_gamma_data_normal_model_matches_moments(gamma_data_normal_model):
    d = gamma_data_normal_model
    a, b = d.symbols["concentration_p"], d.symbols["rate_p"]
    assert sp.simplify(d.optimum["loc_q"] - a / b) == 0
    assert sp.simplify(d.optimum["scale_q"] ** 2 - a / b**2) == 0
    assert d.checked


def test_catalogue_optimum_minimises_the_kl_numerically(gamma_data_normal_model):
    """mpmath.findroot on the gradient of symkl.kl('gamma', 'normal') at a = 3, b = 2."""
    a, b = 3, 2
    d = gamma_data_normal_model
    values = {d.symbols["concentration_p"]: a, d.symbols["rate_p"]: b}
    kl = symkl.kl("gamma", "normal").formula.subs(values)  # derived once by the fixture
    f = sp.lambdify((d.symbols["loc_q"], d.symbols["scale_q"]), kl, "mpmath")
    with mpmath.workdps(30):  # not mp.dps = 30: that would leak into later tests
        root = mpmath.findroot(
            [lambda m, s: mpmath.diff(lambda t: f(t, s), m), lambda m, s: mpmath.diff(lambda t: f(m, t), s)],
            (mpmath.mpf(1), mpmath.mpf(1)))
    assert float(d.optimum["loc_q"].subs(values)) == pytest.approx(float(root[0]), rel=1e-12)
    assert float(d.optimum["scale_q"].subs(values)) == pytest.approx(float(root[1]), rel=1e-12)
    assert float(root[0]) == pytest.approx(1.5) and float(root[1]) ** 2 == pytest.approx(0.75)


def test_gradient_identity_is_checked_against_the_kl_derivation(gamma_data_normal_model):
    steps = [s for s in gamma_data_normal_model.steps if s.rule.startswith("gradient identity")]
    assert len(steps) == 2
    assert all(s.check.passed and s.check.method.value in ("symbolic", "numeric") for s in steps)


# -- generic data: estimators against numpy ------------------------------------------------


def test_normal_estimator_is_mean_and_biased_variance():
    d = symkl.mle("normal")
    x = RNG.normal(1.5, 2.0, size=101)
    assert sample_value(d.estimator["loc_q"], x) == pytest.approx(np.mean(x), rel=1e-12)
    assert sample_value(d.estimator["scale_q"], x) ** 2 == pytest.approx(np.var(x, ddof=0), rel=1e-10)
    assert d.checked and d.p is None


@pytest.mark.parametrize("family, draw, reference", [
    ("poisson", lambda: RNG.poisson(3.2, size=200).astype(float), lambda x: np.mean(x)),
    ("exponential", lambda: RNG.exponential(0.7, size=200), lambda x: 1 / np.mean(x)),
    ("bernoulli", lambda: RNG.binomial(1, 0.3, size=200).astype(float), lambda x: np.mean(x)),
])
def test_one_parameter_estimators_against_numpy(family, draw, reference):
    d = symkl.mle(family)
    (name,) = d.optimum
    x = draw()
    assert sample_value(d.estimator[name], x) == pytest.approx(reference(x), rel=1e-12)
    assert d.checked


def test_categorical_estimator_is_class_frequencies():
    d = symkl.mle("categorical")
    labels = RNG.integers(0, 4, size=300)
    onehot = np.eye(4)[labels]
    assert sample_value(d.estimator["probs_q"], onehot, column=2) == pytest.approx(np.mean(labels == 2), rel=1e-12)
    assert any("Lagrange" in n for n in d.conditions.notes)
    assert d.checked


def test_mvn_diag_estimator_is_coordinatewise_mean_and_std():
    d = symkl.mle("mvn_diag")
    x = RNG.normal([0.0, 3.0, -1.0], [1.0, 0.5, 2.0], size=(150, 3))
    assert sample_value(d.estimator["loc_q"], x, column=1) == pytest.approx(x[:, 1].mean(), rel=1e-12)
    assert sample_value(d.estimator["scale_q"], x, column=1) == pytest.approx(x[:, 1].std(), rel=1e-10)
    assert d.checked


def test_laplace_estimator_is_median_and_mean_absolute_deviation():
    d = symkl.mle("laplace")
    x = RNG.laplace(0.3, 1.2, size=101)  # odd N: the median is the middle observation
    median = lambda e: e.replace(lambda n: getattr(n.func, "__name__", "") == "median_n",  # noqa: E731
                                 lambda n: sp.Float(float(np.median(x)), 30))
    assert sample_value(median(d.estimator["loc_q"]), x) == pytest.approx(np.median(x), rel=1e-12)
    assert sample_value(median(d.estimator["scale_q"]), x) == pytest.approx(
        np.mean(np.abs(x - np.median(x))), rel=1e-12)
    assert str(d.optimum["loc_q"]) == "median(P_data)"
    assert any("non-smooth" in n for n in d.conditions.notes)
    assert d.checked


def test_uniform_optimum_is_the_support_and_says_when_kl_is_infinite():
    d = symkl.mle("uniform")
    assert {str(v) for v in d.optimum.values()} == {"ess_inf(P_data)", "ess_sup(P_data)"}
    assert {str(v) for v in d.estimator.values()} == {"min_n(x_n)", "max_n(x_n)"}
    assert "+inf" in d.conditions.infinite_when and not d.conditions.always_finite
    assert d.checked


def test_checks_reject_a_wrong_optimum_and_a_wrong_estimator():
    """The solution and estimator checks can fail: the unbiased variance is not the MLE."""
    from symkl.api import side_for
    from symkl.distributions import get
    from symkl.likelihood import engine

    d = symkl.mle("normal")
    model = side_for(get("normal"), "q", {})
    x = get("normal").variable()
    problem = engine.Problem(model, None, x, engine.free_unknowns(model), sp.S.Zero,
                             engine.generic_sampler(model, x))
    n = engine.SAMPLE_SIZE
    wrong = {**d.optimum, "scale_q": d.optimum["scale_q"] * sp.sqrt(sp.Rational(n, n - 1))}
    assert engine._solution_check(d.stationary, d.optimum, problem, seed=1).passed
    assert not engine._solution_check(d.stationary, wrong, problem, seed=1).passed
    log_q = engine.fixed_log_density(model, x)
    assert engine.estimator_check(problem, d.optimum, log_q, "scale_q", seed=2).passed
    assert not engine.estimator_check(problem, wrong, log_q, "scale_q", seed=2).passed


# -- no closed form: the Gamma shape ----------------------------------------------------------


def test_gamma_has_no_closed_form_and_states_the_digamma_equation():
    d = symkl.mle("gamma")
    assert d.optimum is None and d.estimator is None
    assert any("no closed form" in n for n in d.conditions.notes)
    assert set(d.unsolved) == {"concentration_q"} and d.unsolved["concentration_q"].has(sp.polygamma)
    assert d.checked


def test_gamma_digamma_root_matches_direct_maximisation():
    """findroot on the stated equation (sample moments) vs torch maximising sum log q(x_n)."""
    d = symkl.mle("gamma")
    x = RNG.gamma(2.5, 1 / 1.7, size=400)
    a = d.symbols["concentration_q"]
    equation = with_moments(d.unsolved["concentration_q"], x)
    with mpmath.workdps(30):
        a_hat = mpmath.findroot(sp.lambdify(a, equation, "mpmath"), mpmath.mpf(1))
        b_hat = float(with_moments(d.partial["rate_q"], x).subs(a, a_hat))

    log_params = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    data = torch.as_tensor(x)
    optimiser = torch.optim.LBFGS([log_params], max_iter=200, tolerance_grad=1e-14,
                                  tolerance_change=1e-16, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        conc, rate = log_params.exp()
        loss = -torch.distributions.Gamma(conc, rate).log_prob(data).mean()
        loss.backward()
        return loss

    for _ in range(5):
        optimiser.step(closure)
    conc, rate = log_params.exp().tolist()
    assert float(a_hat) == pytest.approx(conc, rel=1e-7)
    assert b_hat == pytest.approx(rate, rel=1e-7)


# -- rendering, examples, cache ----------------------------------------------------------------


def test_renders_like_a_kl_derivation(normal_data_normal_model):
    for d in (symkl.mle("normal"), normal_data_normal_model):
        assert d.latex().startswith("\\begin{align*}") and "arg\\,min" in d.latex(steps=False)
        assert d.markdown().startswith("## Maximum likelihood: Normal model")
        assert "argmin" in d.text() and "check [ok]" in d.text(steps=True)
        assert d._repr_latex_().startswith("$$")
    assert "-1*" not in symkl.mle("normal").text(steps=True)


def test_examples_are_checked_and_in_a_fixed_order():
    derivations = examples()
    assert [(d.q, d.p) for d in derivations] == [(m, data) for m, data, _, _ in EXAMPLES]
    assert all(d.checked for d in derivations)
    for d in derivations:  # every format renders, with signs written as a textbook does
        assert "\\left(-1\\right)" not in d.latex() and "-1*" not in d.text(steps=True)
        assert d.markdown(steps=True).count("*check (passed):*") == len(d.steps)
    assert {d.q for d in derivations} >= {"normal", "exponential", "poisson", "bernoulli", "gamma",
                                          "categorical", "mvn_diag", "laplace", "uniform"}


def test_disk_cache_serves_a_derivation_fast():
    symkl.mle("poisson")
    symkl.likelihood._derive.cache_clear()
    start = time.perf_counter()
    d = symkl.mle("poisson")
    assert time.perf_counter() - start < 0.1
    assert d.optimum is not None


def test_errors_name_what_exists():
    with pytest.raises(ValueError, match="did you mean 'scale'"):
        symkl.mle("normal", fix={"sigma": 1})
    with pytest.raises(ValueError, match="loc, scale"):
        symkl.mle("normal", fix={"width": 1})
    with pytest.raises(ValueError, match="mvn_diag"):
        symkl.mle("mvn")
    with pytest.raises(symkl.UnknownFamilyError, match="did you mean 'normal'"):
        symkl.mle("gausian")


# -- command line ---------------------------------------------------------------------------


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["mle", *argv])
    return code, out.getvalue(), err.getvalue()


def test_cli_prints_the_optimum_and_estimator():
    code, out, _ = run_cli("normal")
    assert code == 0
    assert "estimator: hat(loc_q) = mean_n[x_n]" in out


def test_cli_with_data_family(normal_data_normal_model):
    code, out, _ = run_cli("normal", "--data", "normal", "--data-param", "loc=2",
                           "--data-param", "scale=1", "--fix", "scale=1")
    assert code == 0 and "optimum: loc_q* = 2" in out


def test_cli_latex_steps():
    code, out, _ = run_cli("poisson", "--format", "latex", "--steps")
    assert code == 0 and out.startswith("\\begin{align*}")


@pytest.mark.parametrize("argv, message", [
    (("gausian",), "did you mean 'normal'?"),
    (("normal", "--fix", "sigma=1"), "Its parameters are: loc, scale"),
    (("normal", "--data-param", "loc=1"), "--data-param needs --data"),
    (("normal", "--data", "poisson"), "not in the catalogue"),
    (("normal", "--fix", "scale=-1"), "must be > 0"),
    (("normal", "--fix", "scale"), "expected NAME=NUMBER"),
])
def test_cli_errors(argv, message):
    code, out, err = run_cli(*argv)
    assert code == 2 and out == ""
    assert err.startswith("symkl: error:") and message in err and err.count("\n") == 1


# -- slow: more catalogue data ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("model, data, params, expected", [
    ("laplace", "normal", {"loc": 0.5, "scale": 2.0}, {"loc_q": 0.5, "scale_q": 2.0 * (2 / np.pi) ** 0.5}),
    ("exponential", "gamma", {"concentration": 3.0, "rate": 2.0}, {"rate_q": 2.0 / 3.0}),
    ("gamma", "gamma", {"concentration": 3.0, "rate": 2.0}, {"concentration_q": 3.0, "rate_q": 2.0}),
    ("uniform", "beta", {}, {"low_q": 0.0, "high_q": 1.0}),
])
def test_more_catalogue_optima(model, data, params, expected):
    d = symkl.mle(model, data, data_params=params)
    assert d.checked
    got = {n: float(v.subs({d.symbols[f"{k}_p"]: val for k, val in params.items()}))
           for n, v in d.optimum.items()}
    assert got == pytest.approx(expected, rel=1e-12)
