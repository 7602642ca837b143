"""Reference B (symkl.verify.montecarlo): the Monte Carlo z-test must pass true values,
fail wrong ones, never filter NaN, and say why when it does not run.

Claimed values come from textbook closed forms written out here, from mpmath sums, or from
torch.distributions.kl_divergence at ordinary points: never from symkl.
"""

from __future__ import annotations

import math

import mpmath
import pytest
import torch
from torch import distributions as D

from symkl.verify.montecarlo import MonteCarlo, holm, monte_carlo

#: Family-wise 1e-6 over a run of ~100 Monte Carlo checks (Bonferroni).
ALPHA = 1e-6 / 100


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> object:
    # On a shared 2-core machine torch's intra-op pool slows these small kernels down up to
    # tenfold when the other core is busy; one thread keeps this file's run time steady.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def t(v: object) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float64)


def normal_kl(m1: float, s1: float, m2: float, s2: float) -> float:
    return 0.5 * (math.log(s2**2 / s1**2) + (s1**2 + (m1 - m2) ** 2) / s2**2 - 1)


def laplace_kl(m1: float, b1: float, m2: float, b2: float) -> float:
    # KL(Laplace(m1, b1) || Laplace(m2, b2)) = log(b2/b1) + |m1 - m2|/b2 + b1/b2 exp(-|m1 - m2|/b1) - 1
    d = abs(m1 - m2)
    return math.log(b2 / b1) + d / b2 + b1 / b2 * math.exp(-d / b1) - 1


def poisson_entropy(rate: float) -> float:
    with mpmath.workdps(30):
        r = mpmath.mpf(rate)

        def term(n: object) -> object:
            log_pmf = n * mpmath.log(r) - r - mpmath.loggamma(n + 1)
            return -mpmath.exp(log_pmf) * log_pmf

        return float(mpmath.nsum(term, [0, mpmath.inf]))


def passes(r: MonteCarlo) -> bool:
    return r.skipped is None and r.nan_samples == 0 and r.p_value >= ALPHA


# --------------------------------------------------------------------------- pass / fail


def test_normal_kl_true_value_passes_and_five_percent_off_fails() -> None:
    m1, s1, m2, s2 = 0.3, 1.2, -0.5, 0.7
    p, q = D.Normal(t(m1), t(s1)), D.Normal(t(m2), t(s2))
    true = normal_kl(m1, s1, m2, s2)
    good = monte_carlo("kl", p, q, true, alpha=ALPHA)
    assert abs(good.z) < 5 and passes(good), good
    assert abs(good.estimate - true) < 1e-12
    bad = monte_carlo("kl", p, q, 1.05 * true, alpha=ALPHA)
    assert bad.p_value < ALPHA and abs(bad.z) > 5, bad


def test_laplace_kl_without_exact_controls_passes_and_fails() -> None:
    # |x - m2| is not in the span of the controls: a genuinely statistical test.
    args = (0.3, 1.2, -0.5, 0.7)
    p, q = D.Laplace(t(args[0]), t(args[1])), D.Laplace(t(args[2]), t(args[3]))
    true = laplace_kl(*args)
    good = monte_carlo("kl", p, q, true, alpha=ALPHA)
    assert passes(good) and abs(good.z) < 5 and good.standard_error > 1e-5, good
    assert good.samples > 20_000  # the power analysis asked for more than the pilot
    # The power analysis targets a 1 % relative error: 5 % must fail, by a wide margin.
    bad = monte_carlo("kl", p, q, 1.05 * true, alpha=ALPHA)
    assert bad.p_value < ALPHA and abs(bad.z) > 5, bad
    # ... and reports what it can detect: about the 1 % asked for (sigma from the pilot).
    assert 0.008 * true < good.detectable < 0.011 * true


def test_gamma_kl_against_torch_closed_form() -> None:
    p, q = D.Gamma(t(2.0), t(1.5)), D.Gamma(t(0.7), t(0.4))
    claimed = float(D.kl_divergence(p, q))
    r = monte_carlo("kl", p, q, claimed, alpha=ALPHA)
    assert passes(r) and abs(r.z) < 5, r
    assert "score d/d(concentration) log p" in r.controls
    assert monte_carlo("kl", p, q, 0.99 * claimed, alpha=ALPHA).p_value < ALPHA


def test_poisson_entropy_against_a_direct_sum() -> None:
    rate = 3.5
    p = D.Poisson(t(rate))
    true = poisson_entropy(rate)
    r = monte_carlo("entropy", p, None, true, alpha=ALPHA)
    assert passes(r) and abs(r.z) < 5, r
    assert monte_carlo("entropy", p, None, 1.03 * true, alpha=ALPHA).p_value < ALPHA


def test_normal_entropy_and_cross_entropy() -> None:
    p = D.Normal(t(0.4), t(2.5))
    r = monte_carlo("entropy", p, None, 0.5 * math.log(2 * math.pi * math.e * 2.5**2), alpha=ALPHA)
    assert passes(r), r
    # Cross-entropy of any P on [0, 1] under Uniform(-0.5, 2) is log 2.5.
    r = monte_carlo("cross_entropy", D.Beta(t(0.5), t(2.0)), D.Uniform(t(-0.5), t(2.0)), math.log(2.5), alpha=ALPHA)
    assert passes(r) and r.estimate == pytest.approx(math.log(2.5), abs=1e-14), r
    # H(P, Q) = H(P) + KL(P || Q) for Normals.
    q = D.Normal(t(-1.0), t(1.5))
    ce = 0.5 * math.log(2 * math.pi * math.e * 2.5**2) + normal_kl(0.4, 2.5, -1.0, 1.5)
    assert passes(monte_carlo("cross_entropy", p, q, ce, alpha=ALPHA))
    assert monte_carlo("cross_entropy", p, q, 1.02 * ce, alpha=ALPHA).p_value < ALPHA


def test_multivariate_normal_dimension_four() -> None:
    g = torch.Generator().manual_seed(3)
    a, b = (torch.randn(4, 4, generator=g, dtype=torch.float64) for _ in range(2))
    eye = torch.eye(4, dtype=torch.float64)
    s1, s2 = a @ a.T + 2 * eye, b @ b.T + 2 * eye
    m1, m2 = (torch.randn(4, generator=g, dtype=torch.float64) for _ in range(2))
    p, q = D.MultivariateNormal(m1, s1), D.MultivariateNormal(m2, s2)
    d = m2 - m1
    true = 0.5 * float(
        torch.trace(torch.linalg.solve(s2, s1)) + d @ torch.linalg.solve(s2, d) - 4
        + torch.logdet(s2) - torch.logdet(s1)
    )
    r = monte_carlo("kl", p, q, true, alpha=ALPHA)
    assert passes(r) and "(x_i - mean_i)(x_j - mean_j) - cov_ij" in r.controls, r
    assert monte_carlo("kl", p, q, 1.01 * true, alpha=ALPHA).p_value < ALPHA


def test_categorical_and_dirichlet_against_torch() -> None:
    p, q = D.Categorical(t([0.2, 0.3, 0.5])), D.Categorical(t([0.6, 0.1, 0.3]))
    assert passes(monte_carlo("kl", p, q, float(D.kl_divergence(p, q)), alpha=ALPHA))
    p, q = D.Dirichlet(t([0.5, 1.5, 3.0])), D.Dirichlet(t([1.0, 2.0, 0.7]))
    assert passes(monte_carlo("kl", p, q, float(D.kl_divergence(p, q)), alpha=ALPHA))


def test_categorical_zero_and_tiny_probabilities_are_exact() -> None:
    # torch clamps probabilities to [eps, 1 - eps] before taking logs: a class of
    # probability 1e-20 gets log q = -36 instead of -46. The check takes log probs directly.
    p, q = D.Categorical(t([1 / 3] * 3)), D.Categorical(t([0.5, 0.5 - 1e-20, 1e-20]))
    true = sum(1 / 3 * math.log((1 / 3) / v) for v in (0.5, 0.5, 1e-20))
    assert passes(monte_carlo("kl", p, q, true, alpha=ALPHA))
    # ... and a class with P-mass but probability 0 under Q gives +inf terms, not -36.
    q0 = D.Categorical(t([0.5, 0.5, 0.0]))
    r = monte_carlo("kl", p, q0, 17.0, alpha=ALPHA)
    assert r.nan_samples > 0 and r.estimate == math.inf and r.p_value == 0.0


def test_large_location_does_not_fail_on_rounding() -> None:
    # x ~ 1e6 carries absolute rounding ~1e-10; the rounding floor must absorb it.
    m1, s1, m2, s2 = 1e6, 1.0, 1e6 + 0.5, 1.1
    p, q = D.Normal(t(m1), t(s1)), D.Normal(t(m2), t(s2))
    r = monte_carlo("kl", p, q, normal_kl(m1, s1, m2, s2), alpha=ALPHA)
    assert passes(r), r
    assert r.detectable < 1e-4 * r.estimate  # the floor is far below any effect of interest


def test_rounding_floor_lets_a_tiny_correct_kl_pass() -> None:
    # KL ~ 5e-11: the closed form cancels (error ~1e-17), and so do the MC terms
    # (log p - log q, each ~1). The exactly-spanned controls leave a standard error of ~1e-18
    # that would reject the correct value at z ~ 15-40; the floor (~4e-14) must not.
    args = (0.0, 1.0, 1e-5, 1 + 1e-6)
    p, q = D.Normal(t(args[0]), t(args[1])), D.Normal(t(args[2]), t(args[3]))
    r = monte_carlo("kl", p, q, normal_kl(*args), alpha=ALPHA)
    assert passes(r) and 1e-14 < r.standard_error < 1e-13, r
    assert r.detectable < 0.01 * r.estimate
    assert monte_carlo("kl", p, q, 1.05 * normal_kl(*args), alpha=ALPHA).p_value < ALPHA


# --------------------------------------------------------------------------- controls


def test_control_variates_cut_normal_variance_to_rounding() -> None:
    p, q = D.Normal(t(0.3), t(1.2)), D.Normal(t(-0.5), t(0.7))
    r = monte_carlo("kl", p, q, normal_kl(0.3, 1.2, -0.5, 0.7), alpha=ALPHA)
    assert r.variance_reduction > 1e12, r
    assert r.controls == ("x - mean", "(x - mean)^2 - variance")
    assert r.samples == 20_000  # nothing left to average: the pilot size suffices


def test_control_variates_partial_reduction_for_laplace() -> None:
    p, q = D.Laplace(t(0.3), t(1.2)), D.Laplace(t(-0.5), t(0.7))
    r = monte_carlo("kl", p, q, laplace_kl(0.3, 1.2, -0.5, 0.7), alpha=ALPHA, max_samples=50_000)
    assert 2 < r.variance_reduction < 1e3, r


# --------------------------------------------------------------------------- NaN, inf, skips


def test_nan_terms_fail_and_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    p, q = D.Normal(t(0.0), t(1.0)), D.Normal(t(0.5), t(1.0))
    true = normal_kl(0.0, 1.0, 0.5, 1.0)
    original = D.Normal.log_prob

    def log_prob(self: D.Normal, x: torch.Tensor) -> torch.Tensor:
        out = original(self, x)
        return torch.where(x > 3.5, torch.full_like(out, math.nan), out) if self.loc == 0.5 else out

    monkeypatch.setattr(D.Normal, "log_prob", log_prob)
    r = monte_carlo("kl", p, q, true, alpha=ALPHA)
    assert r.nan_samples > 0 and math.isnan(r.z) and r.p_value == 0.0, r
    assert math.isnan(r.estimate)  # propagated, not filtered


@pytest.mark.parametrize("in_pilot", [True, False], ids=["pilot", "main-run"])
def test_nan_in_the_pilot_or_the_main_run_still_fails(monkeypatch: pytest.MonkeyPatch, in_pilot: bool) -> None:
    p, q = D.Normal(t(0.0), t(1.0)), D.Normal(t(0.5), t(1.0))
    original = D.Normal.log_prob
    calls = {"n": 0}

    def log_prob(self: D.Normal, x: torch.Tensor) -> torch.Tensor:
        out = original(self, x)
        if self.loc == 0.5:
            calls["n"] += 1
            if (calls["n"] == 1) == in_pilot:  # the first call is the pilot's
                out = out.clone()
                out[: 2 if in_pilot else 1] = math.nan
        return out

    monkeypatch.setattr(D.Normal, "log_prob", log_prob)
    r = monte_carlo("kl", p, q, normal_kl(0.0, 1.0, 0.5, 1.0), alpha=ALPHA)
    assert r.p_value == 0.0, r
    if in_pilot:  # nothing to fit: the check fails at once
        assert r.nan_samples == 2 and math.isnan(r.z), r
    else:
        assert r.nan_samples == 1 and r.samples > 0, r


def test_support_mismatch_with_finite_claim_fails() -> None:
    r = monte_carlo("kl", D.Uniform(t(0.0), t(1.0)), D.Uniform(t(0.5), t(2.0)), 0.7, alpha=ALPHA)
    assert r.nan_samples > 0 and r.estimate == math.inf and r.p_value == 0.0, r
    # Outside an Exponential's support the density is 0, not torch's extrapolated formula.
    r = monte_carlo("kl", D.Normal(t(0.0), t(1.0)), D.Exponential(t(2.0)), 3.0, alpha=ALPHA)
    assert r.nan_samples > 0 and r.p_value == 0.0, r


def test_infinite_claim_is_skipped_with_a_reason() -> None:
    r = monte_carlo("kl", D.Normal(t(0.0), t(1.0)), D.Uniform(t(-1.0), t(1.0)), math.inf, alpha=ALPHA)
    assert r.skipped is not None and "+inf" in r.skipped and "support" in r.skipped
    assert r.p_value == 1.0 and r.samples == 0 and math.isnan(r.estimate) and math.isnan(r.z)


def test_family_without_finite_variance_argument_is_skipped() -> None:
    # Student-t(3) has finite KL to a Normal but E[x^4] = inf: the z-test would be invalid.
    r = monte_carlo("kl", D.StudentT(t(3.0)), D.Normal(t(0.0), t(1.0)), 0.1, alpha=ALPHA)
    assert r.skipped is not None and "StudentT" in r.skipped and r.p_value == 1.0


def test_nan_or_minus_inf_claim_fails() -> None:
    r = monte_carlo("entropy", D.Normal(t(0.0), t(1.0)), None, math.nan, alpha=ALPHA)
    assert r.p_value == 0.0 and math.isnan(r.z) and r.skipped is None
    r = monte_carlo("entropy", D.Normal(t(0.0), t(1.0)), None, -math.inf, alpha=ALPHA)
    assert r.p_value == 0.0 and r.z == math.inf


def test_zero_kl_between_equal_distributions() -> None:
    # A claimed 0 gives no relative scale: the power analysis must not ask for max_samples
    # when the terms are rounding noise (different parametrisations of one Gaussian).
    g = torch.Generator().manual_seed(5)
    a = torch.randn(3, 3, generator=g, dtype=torch.float64)
    cov = a @ a.T + torch.eye(3, dtype=torch.float64)
    p = D.MultivariateNormal(t([0.1, 0.2, 0.3]), cov)
    q = D.MultivariateNormal(t([0.1, 0.2, 0.3]), scale_tril=torch.linalg.cholesky(cov))
    r = monte_carlo("kl", p, q, 0.0, alpha=ALPHA)
    assert passes(r) and r.samples == 20_000 and abs(r.estimate) < 1e-14, r
    assert monte_carlo("kl", p, q, 1e-3, alpha=ALPHA).p_value < ALPHA


def test_claimed_zero_for_a_positive_kl_fails() -> None:
    # No relative scale and sigma > 0: the power analysis must not overflow, just use max.
    p, q = D.Laplace(t(0.0), t(1.0)), D.Laplace(t(0.1), t(1.0))
    r = monte_carlo("kl", p, q, 0.0, alpha=ALPHA, max_samples=50_000)
    assert r.samples == 50_000 and r.p_value < ALPHA, r


def test_argument_errors() -> None:
    p = D.Normal(t(0.0), t(1.0))
    with pytest.raises(ValueError):
        monte_carlo("entropy", p, p, 1.0, alpha=ALPHA)
    with pytest.raises(ValueError):
        monte_carlo("kl", p, None, 1.0, alpha=ALPHA)
    with pytest.raises(ValueError):
        monte_carlo("kll", p, p, 1.0, alpha=ALPHA)
    with pytest.raises(ValueError):
        monte_carlo("entropy", D.Normal(t([0.0, 1.0]), t([1.0, 1.0])), None, 1.0, alpha=ALPHA)


# --------------------------------------------------------------------------- statistics


def test_z_is_calibrated_under_the_null() -> None:
    # Many independent seeds at the true value: z should look standard normal.
    p, q = D.Laplace(t(0.3), t(1.2)), D.Laplace(t(-0.5), t(0.7))
    true = laplace_kl(0.3, 1.2, -0.5, 0.7)
    zs = [monte_carlo("kl", p, q, true, alpha=ALPHA, seed=s, pilot=500, max_samples=2000).z for s in range(60)]
    mean = sum(zs) / len(zs)
    var = sum((z - mean) ** 2 for z in zs) / (len(zs) - 1)
    assert abs(mean) < 0.5 and 0.5 < var < 1.7, (mean, var)


def test_power_analysis_sample_size() -> None:
    p = D.Poisson(t(3.5))
    true = poisson_entropy(3.5)
    # After the controls sigma ~ 0.15: 1 % of H ~ 2.01 needs ~4e3 samples (the pilot's
    # 2e4 suffice), 0.2 % needs ~9e4.
    coarse = monte_carlo("entropy", p, None, true, alpha=ALPHA, effect=0.01)
    fine = monte_carlo("entropy", p, None, true, alpha=ALPHA, effect=0.002)
    assert coarse.samples == 20_000 and 50_000 < fine.samples < 200_000
    # n is chosen so that the detectable error is about the requested effect.
    assert fine.detectable == pytest.approx(0.002 * true, rel=0.1)
    assert coarse.detectable < 0.01 * true
    capped = monte_carlo("entropy", p, None, true, alpha=ALPHA, effect=1e-4, max_samples=30_000)
    assert capped.samples == 30_000 and capped.detectable > 1e-4 * true


def test_reproducible_for_a_fixed_seed_and_global_rng_untouched() -> None:
    p, q = D.Laplace(t(0.3), t(1.2)), D.Laplace(t(-0.5), t(0.7))
    before = torch.get_rng_state()
    a = monte_carlo("kl", p, q, 0.48, alpha=ALPHA, max_samples=40_000, seed=11)
    assert torch.equal(torch.get_rng_state(), before)
    b = monte_carlo("kl", p, q, 0.48, alpha=ALPHA, max_samples=40_000, seed=11)
    c = monte_carlo("kl", p, q, 0.48, alpha=ALPHA, max_samples=40_000, seed=12)
    assert a == b
    assert c.estimate != a.estimate


def test_holm_hand_worked() -> None:
    # m = 4, alpha = 0.05: thresholds 0.0125, 0.0167, 0.025, 0.05 in ascending order.
    # 0.005 <= 0.0125 and 0.01 <= 0.0167 are rejected; 0.03 > 0.025 stops, so 0.04 is kept
    # even though 0.04 <= 0.05.
    assert holm([0.01, 0.04, 0.03, 0.005], 0.05) == [True, False, False, True]
    # Holm rejects all four where Bonferroni (<= 0.0125) rejects only two.
    assert holm([0.01, 0.015, 0.03, 0.005], 0.05) == [True, True, True, True]
    assert holm([0.2, 0.3], 0.05) == [False, False]
    assert holm([], 0.05) == []
    # A NaN p-value is not a pass.
    assert holm([math.nan, 0.5], 0.05) == [True, False]


def test_holm_on_monte_carlo_p_values() -> None:
    p, q = D.Normal(t(0.3), t(1.2)), D.Normal(t(-0.5), t(0.7))
    true = normal_kl(0.3, 1.2, -0.5, 0.7)
    results = [monte_carlo("kl", p, q, c, alpha=1e-6 / 3) for c in (true, 1.05 * true, true)]
    assert holm([r.p_value for r in results], 1e-6) == [False, True, False]


# --------------------------------------------------------------------------- slow sweeps


def _torch_pairs() -> list[tuple[str, D.Distribution, D.Distribution]]:
    return [
        ("normal", D.Normal(t(0.3), t(1.2)), D.Normal(t(-0.5), t(0.7))),
        ("laplace", D.Laplace(t(0.3), t(1.2)), D.Laplace(t(-0.5), t(0.7))),
        ("exponential", D.Exponential(t(1.3)), D.Exponential(t(0.4))),
        ("gamma", D.Gamma(t(0.25), t(1.5)), D.Gamma(t(4.0), t(0.4))),
        ("beta", D.Beta(t(0.25), t(4.0)), D.Beta(t(1.5), t(0.3))),
        ("uniform", D.Uniform(t(0.2), t(0.9)), D.Uniform(t(-1.0), t(2.0))),
        ("poisson", D.Poisson(t(3.0)), D.Poisson(t(1.2))),
        ("bernoulli", D.Bernoulli(t(0.3)), D.Bernoulli(t(0.8))),
        ("categorical", D.Categorical(t([0.2, 0.3, 0.5])), D.Categorical(t([0.6, 0.1, 0.3]))),
        ("dirichlet", D.Dirichlet(t([0.3, 1.5, 3.0, 4.4])), D.Dirichlet(t([1.0, 2.0, 0.7, 0.25]))),
        ("gamma-exponential", D.Gamma(t(2.0), t(1.5)), D.Exponential(t(0.4))),
        ("exponential-gamma", D.Exponential(t(1.3)), D.Gamma(t(2.0), t(1.5))),
        ("gamma-normal", D.Gamma(t(2.0), t(1.5)), D.Normal(t(1.0), t(2.0))),
        ("exponential-normal", D.Exponential(t(1.3)), D.Normal(t(1.0), t(2.0))),
        ("beta-normal", D.Beta(t(0.5), t(2.0)), D.Normal(t(1.0), t(2.0))),
        ("beta-uniform", D.Beta(t(0.5), t(2.0)), D.Uniform(t(-0.5), t(2.0))),
        ("laplace-normal", D.Laplace(t(0.3), t(1.2)), D.Normal(t(-0.5), t(0.7))),
        ("normal-laplace", D.Normal(t(0.3), t(1.2)), D.Laplace(t(-0.5), t(0.7))),
        ("uniform-normal", D.Uniform(t(-0.5), t(2.0)), D.Normal(t(-0.5), t(0.7))),
        ("mvn_diag", D.Independent(D.Normal(t([0.0, 1.0, -1.0]), t([1.0, 2.0, 0.5])), 1),
         D.Independent(D.Normal(t([1.0, 1.0, 0.0]), t([2.0, 2.0, 1.0])), 1)),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("name,p,q", _torch_pairs(), ids=[n for n, _, _ in _torch_pairs()])
def test_catalogue_pairs_against_torch_kl(name: str, p: D.Distribution, q: D.Distribution) -> None:
    true = float(D.kl_divergence(p, q))
    r = monte_carlo("kl", p, q, true, alpha=ALPHA)
    assert passes(r) and abs(r.z) < 6, (name, r)
    if true > 0:
        assert monte_carlo("kl", p, q, 1.02 * true, alpha=ALPHA).p_value < ALPHA, name


@pytest.mark.slow
def test_z_calibration_many_seeds() -> None:
    p, q = D.Normal(t(0.3), t(1.2)), D.Laplace(t(-0.5), t(0.7))
    true = float(D.kl_divergence(p, q))
    zs = [monte_carlo("kl", p, q, true, alpha=ALPHA, seed=s, pilot=1000, max_samples=5000).z for s in range(400)]
    mean = sum(zs) / len(zs)
    var = sum((z - mean) ** 2 for z in zs) / (len(zs) - 1)
    assert abs(mean) < 0.2 and 0.8 < var < 1.25, (mean, var)
    assert sum(abs(z) > 3 for z in zs) <= 4
