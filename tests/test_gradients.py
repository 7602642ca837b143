"""Gradients of the generated torch functions (symkl.verify.gradients).

* hand-derived gradients (Normal, Poisson, Categorical, MVN) against both the SymPy
  reference and torch autograd;
* every generated catalogue function at one sampled point: autograd within the tolerance
  of the SymPy derivative, and torch.autograd.gradcheck;
* a wrong backward (and a wrong forward) is caught;
* self-pairs at nearly equal parameters (relative differences 1e-6; 1e-12 under -m slow).
"""

from __future__ import annotations

import zlib

import mpmath
import numpy as np
import pytest
import torch

import symkl
from symkl.distributions import REGISTRY
from symkl.torch import functional
from symkl.verify import gradients
from symkl.verify.gradients import (
    GradientCheck, autograd_gradient, check_gradient, symbolic_gradient,
)

#: Event dimension of the vector families at sampled points (the sweep also takes 2, 3, 4).
DIM = {"categorical": 3, "dirichlet": 3, "mvn_diag": 3, "mvn": 2}
NEVER_FINITE = {("normal", "exponential"), ("normal", "uniform")}


def _seed(*parts) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode())


def _suffixed(values: dict, suffix: str) -> dict:
    return {f"{k}_{suffix}": np.asarray(v, dtype=float) for k, v in values.items()}


def sample_point(quantity: str, P: str, Q: str | None, seed: int, dim: int | None = None) -> dict:
    """A typical point where the quantity is finite (argument names of the generated function)."""
    rng = np.random.default_rng(seed)
    k = dim or DIM.get(P, 3)
    vp = REGISTRY[P].sample_parameters(rng, dim=k)
    if quantity == "entropy":
        return {n: np.asarray(v, dtype=float) for n, v in vp.items()}
    if (P, Q) == ("uniform", "uniform"):  # P strictly inside Q
        vq = REGISTRY[Q].sample_parameters(rng)
        f1, f2 = rng.uniform(0.05, 0.95, 2)
        low = vq["low"] + f1 * (vq["high"] - vq["low"])
        vp = {"low": low, "high": low + f2 * (vq["high"] - low)}
    elif (P, Q) == ("beta", "uniform"):  # [0, 1] strictly inside Q
        lo, hi = rng.uniform(0.05, 2, 2)
        vq = {"low": -lo, "high": 1 + hi}
    else:
        vq = REGISTRY[Q].sample_parameters(rng, dim=k)
    return _suffixed(vp, "p") | _suffixed(vq, "q")


def near_point(P: str, delta: float, seed: int, dim: int | None = None) -> dict:
    """A self-pair point with Q's parameters at relative distance ~delta from P's."""
    rng = np.random.default_rng(seed)
    family = REGISTRY[P]
    vp = family.sample_parameters(rng, dim=dim or DIM.get(P, 3))
    vq = {}
    for name, v in vp.items():
        v = np.asarray(v, dtype=float)
        u = rng.choice([-1.0, 1.0], size=v.shape)
        if u.ndim == 1:
            u[0] = -u[-1]  # never all equal: normalising would cancel the perturbation
        constraint = family.parameter(name).constraint
        if constraint.event_dim == 2:
            u = np.triu(u) + np.triu(u, 1).T  # symmetric: Q stays symmetric (and PD)
        w = v * (1 + delta * u)
        if constraint.event_total is not None:
            w = w / w.sum()
        vq[name] = w
    if P == "uniform":  # Q contains P: widen by delta
        vq = {"low": vp["low"] - delta * max(abs(vp["low"]), 1.0),
              "high": vp["high"] + delta * max(abs(vp["high"]), 1.0)}
    return _suffixed(vp, "p") | _suffixed(vq, "q")


def _cases() -> list[tuple[str, str, str | None]]:
    out = []
    for P, Q in symkl.pairs():
        if (P, Q) in NEVER_FINITE:
            continue
        for quantity in ("kl", "cross_entropy"):
            out.append((quantity, P, Q))
    out += [("entropy", f.name, None) for f in symkl.families()]
    return out


def _generated(quantity: str, P: str, Q: str | None) -> bool:
    name = f"entropy_{P}" if quantity == "entropy" else f"{quantity}_{P}_{Q}"
    return functional.FUNCTIONS.get(name) == (quantity, P, Q)


CASES = [c for c in _cases() if _generated(*c)]
NOT_GENERATED = [c for c in _cases() if not _generated(*c)]


def _ids(cases):
    return ["-".join(c for c in case if c) for case in cases]


tolerance = gradients._tolerance


def _close(a, b, rtol) -> bool:
    return np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=rtol, atol=0)


# ======================================================== hand-derived gradients
NORMAL = {"loc_p": np.array(0.3), "scale_p": np.array(0.7), "loc_q": np.array(-1.1), "scale_q": np.array(1.9)}


def _normal_kl_by_hand(loc_p, scale_p, loc_q, scale_q):
    d = loc_p - loc_q
    return {
        "loc_p": d / scale_q**2,
        "scale_p": -1 / scale_p + scale_p / scale_q**2,
        "loc_q": -d / scale_q**2,
        "scale_q": 1 / scale_q - (scale_p**2 + d**2) / scale_q**3,
    }


def test_normal_kl_gradient_by_hand():
    with mpmath.workdps(50):
        hand = _normal_kl_by_hand(*(mpmath.mpf(float(NORMAL[n])) for n in NORMAL))
        hand = {n: float(v) for n, v in hand.items()}
    ref = symbolic_gradient("kl", "normal", "normal", NORMAL)
    auto = autograd_gradient("kl", "normal", "normal", NORMAL)
    for n in NORMAL:
        assert ref[n].shape == () and ref[n].dtype == np.float64
        assert ref[n] == hand[n], (n, ref[n], hand[n])  # both correctly rounded
        assert _close(auto[n], hand[n], 16 * gradients.EPS), (n, auto[n], hand[n])
    check = check_gradient("kl", "normal", "normal", NORMAL)
    assert isinstance(check, GradientCheck)
    assert check.error <= 8 * gradients.EPS and check.gradcheck is True  # d/dscale_q cancels
    assert check.worst in NORMAL and check.note == ""


def test_normal_entropy_gradient_by_hand():
    ref = symbolic_gradient("entropy", "normal", None, {"loc": np.array(2.0), "scale": np.array(0.25)})
    assert ref["loc"] == 0.0 and ref["scale"] == 4.0


def test_poisson_kl_gradient_by_hand():
    pt = {"rate_p": np.array(3.5), "rate_q": np.array(0.8)}
    ref = symbolic_gradient("kl", "poisson", "poisson", pt)
    assert _close(ref["rate_p"], np.log(3.5 / 0.8), 1e-15)
    assert _close(ref["rate_q"], 1 - 3.5 / 0.8, 1e-15)
    assert check_gradient("kl", "poisson", "poisson", pt).error <= 4 * gradients.EPS


def test_categorical_kl_raw_partials_and_projection():
    p, q = np.array([0.2, 0.5, 0.3]), np.array([0.6, 0.1, 0.3])
    pt = {"probs_p": p, "probs_q": q}
    ref = symbolic_gradient("kl", "categorical", "categorical", pt)
    # The formula as written, sum p log(p / q): raw partials log(p/q) + 1 and -p/q ...
    assert _close(ref["probs_p"], np.log(p / q) + 1, 1e-15)
    assert _close(ref["probs_q"], -p / q, 1e-15)
    # ... while the generated Bregman form sum p log(p/q) - p + q has log(p/q) and 1 - p/q:
    auto = autograd_gradient("kl", "categorical", "categorical", pt)
    assert _close(auto["probs_p"], np.log(p / q), 1e-14)
    assert _close(auto["probs_q"], 1 - p / q, 1e-14)
    # On the simplex only the projection (mean removed) is defined, and that agrees.
    check = check_gradient("kl", "categorical", "categorical", pt)
    for n, raw in (("probs_p", np.log(p / q)), ("probs_q", -p / q)):
        assert _close(check.reference[n], raw - raw.mean(), 1e-14)
        assert abs(check.reference[n].sum()) < 1e-15
    assert check.error <= 8 * gradients.EPS and check.gradcheck is True
    assert "simplex" in check.note


def test_mvn_gradients_by_hand():
    pt = sample_point("kl", "mvn", "mvn", 11, dim=2)
    ip, iq = np.linalg.inv(pt["covariance_matrix_p"]), np.linalg.inv(pt["covariance_matrix_q"])
    d = pt["loc_p"] - pt["loc_q"]
    check = check_gradient("kl", "mvn", "mvn", pt)
    m = iq @ d
    hand = {
        "loc_p": m,
        "loc_q": -m,
        # d KL / d Sigma_p = (Sigma_q^-1 - Sigma_p^-1) / 2 (symmetric),
        # d KL / d Sigma_q = (Sigma_q^-1 - Sigma_q^-1 (Sigma_p + d d^T) Sigma_q^-1) / 2
        "covariance_matrix_p": (iq - ip) / 2,
        "covariance_matrix_q": (iq - iq @ (pt["covariance_matrix_p"] + np.outer(d, d)) @ iq) / 2,
    }
    for n, v in hand.items():
        assert check.reference[n].shape == v.shape
        assert _close(check.reference[n], v, 1e-12), (n, check.reference[n], v)
    assert check.error <= 64 * gradients.EPS and check.gradcheck is True
    assert "symmetric" in check.note and "explicit 2x2" in check.note


def test_mvn_entropy_gradient_is_half_the_inverse():
    cov = np.array([[2.0, 0.3, -0.2], [0.3, 1.5, 0.1], [-0.2, 0.1, 0.8]])
    pt = {"loc": np.zeros(3), "covariance_matrix": cov}
    ref = symbolic_gradient("entropy", "mvn", None, pt)
    assert _close(ref["covariance_matrix"], np.linalg.inv(cov).T / 2, 1e-14)  # raw: Sigma^-T / 2
    assert np.all(ref["loc"] == 0)


# =================================================== every generated function, one point
@pytest.mark.parametrize("quantity,P,Q", CASES, ids=_ids(CASES))
def test_gradient_matches_symbolic_derivative(quantity, P, Q):
    point = sample_point(quantity, P, Q, _seed(quantity, P, Q))
    check = check_gradient(quantity, P, Q, point)
    tol = tolerance(quantity, P, Q)
    assert check.error <= tol, f"{check.worst}: error {check.error:.3g} > {tol:.3g}\n{check}"
    assert check.gradcheck is True, check
    assert set(check.reference) == set(check.autograd) == set(point)
    for n, v in point.items():
        assert check.reference[n].shape == v.shape == check.autograd[n].shape
        assert check.reference[n].dtype == np.float64


def test_every_catalogue_function_is_covered():
    assert len(CASES) + len(NOT_GENERATED) == 2 * (len(symkl.pairs()) - len(NEVER_FINITE)) + len(symkl.families())
    # Everything is generated now, the Poisson series E[log x!] included (poisson_entropy kernel).
    assert NOT_GENERATED == []


POISSON_SERIES = [("cross_entropy", "poisson", "poisson"), ("entropy", "poisson", None)]


@pytest.mark.parametrize("quantity,P,Q", POISSON_SERIES, ids=_ids(POISSON_SERIES))
def test_poisson_series_gradients(quantity, P, Q):
    point = sample_point(quantity, P, Q, 3)
    check = check_gradient(quantity, P, Q, point)  # autograd through the poisson_entropy kernel
    assert check.gradcheck is True and check.error <= 16 * gradients.EPS, check
    # The reference differentiates the infinite series term by term (mpmath nsum); confirm it
    # against a numeric derivative of the series summed directly.
    ref = symbolic_gradient(quantity, P, Q, point)
    rate = float(point["rate_p" if Q else "rate"])

    def h(r):  # -sum pmf log pmf, or -sum pmf log q, directly
        if Q:
            return mpmath.nsum(lambda n: -mpmath.exp(n * mpmath.log(r) - r - mpmath.loggamma(n + 1))
                               * (n * mpmath.log(float(point["rate_q"])) - float(point["rate_q"])
                                  - mpmath.loggamma(n + 1)), [0, mpmath.inf])
        return mpmath.nsum(lambda n: -mpmath.exp(n * mpmath.log(r) - r - mpmath.loggamma(n + 1))
                           * (n * mpmath.log(r) - r - mpmath.loggamma(n + 1)), [0, mpmath.inf])

    with mpmath.workdps(30):
        numeric = float(mpmath.diff(h, rate))
    assert _close(ref["rate_p" if Q else "rate"], numeric, 1e-13)


# ============================================================ errors are detected
def test_wrong_backward_is_detected(monkeypatch):
    """Same forward, a backward off by 1e-9 relative in one argument: the check sees it."""
    true = functional.kl_normal_normal

    class Skewed(torch.autograd.Function):
        @staticmethod
        def forward(ctx, scale_q, factor):
            ctx.factor = factor
            return scale_q.clone()

        @staticmethod
        def backward(ctx, g):
            return g * ctx.factor, None

    def make(factor):
        def wrong(loc_p, scale_p, loc_q, scale_q, validate=None):
            return true(loc_p, scale_p, loc_q, Skewed.apply(scale_q, factor), validate=validate)
        return wrong

    monkeypatch.setattr(functional, "kl_normal_normal", make(1 + 1e-9))
    check = check_gradient("kl", "normal", "normal", NORMAL)
    assert check.worst == "scale_q" and 5e-10 < check.error < 2e-9
    assert check.error > tolerance("kl", "normal", "normal")
    # gradcheck (finite differences, rtol 1e-3) sees a gross backward error, not this one.
    assert check.gradcheck is True
    monkeypatch.setattr(functional, "kl_normal_normal", make(1.01))
    check = check_gradient("kl", "normal", "normal", NORMAL)
    assert check.gradcheck is False and check.worst == "scale_q" and check.error > 1e-3


def test_wrong_formula_is_detected(monkeypatch):
    """A plausible typo, (loc_p - loc_q)^2 / (2 scale_q) for / (2 scale_q^2)."""

    def wrong(loc_p, scale_p, loc_q, scale_q, validate=None):
        return torch.log(scale_q / scale_p) - 0.5 + (scale_p**2 / scale_q**2 + (loc_p - loc_q) ** 2 / scale_q) / 2

    monkeypatch.setattr(functional, "kl_normal_normal", wrong)
    check = check_gradient("kl", "normal", "normal", NORMAL)
    assert check.error > 0.1
    assert check.gradcheck is True  # self-consistent: only the symbolic reference catches it


def test_mutated_reference_is_detected(monkeypatch):
    real = gradients._symbolic_mp

    def mutated(*args, **kwargs):
        values, method = real(*args, **kwargs)
        values = dict(values)
        values["probs_q"] = list(values["probs_q"])
        values["probs_q"][1] *= 1 + 1e-8
        return values, method

    monkeypatch.setattr(gradients, "_symbolic_mp", mutated)
    check = check_gradient("kl", "categorical", "categorical",
                           {"probs_p": np.array([0.2, 0.5, 0.3]), "probs_q": np.array([0.6, 0.1, 0.3])})
    assert check.worst.startswith("probs_q[") and check.error > 1e-9


# ====================================================================== edge cases
def test_gradcheck_not_applicable_at_a_support_edge():
    pt = {"low_p": np.array(-0.5), "high_p": np.array(1.0), "low_q": np.array(-0.5), "high_q": np.array(2.0)}
    check = check_gradient("kl", "uniform", "uniform", pt)
    assert check.gradcheck is None and "not finite at low_p" in check.note
    # The one-sided derivative from inside the finite region still matches.
    assert check.error <= 4 * gradients.EPS
    pt = {"concentration1_p": np.array(2.0), "concentration0_p": np.array(3.0),
          "low_q": np.array(0.0), "high_q": np.array(1.5)}
    check = check_gradient("kl", "beta", "uniform", pt)
    assert check.gradcheck is None and "low_q" in check.note


def test_infinite_points_raise():
    with pytest.raises(ValueError, match="inf"):
        symbolic_gradient("kl", "uniform", "uniform", {"low_p": np.array(0.0), "high_p": np.array(2.0),
                                                       "low_q": np.array(0.5), "high_q": np.array(3.0)})
    with pytest.raises(ValueError, match="every parameter value"):
        symbolic_gradient("kl", "normal", "exponential", {"loc_p": np.array(0.0), "scale_p": np.array(1.0),
                                                          "rate_q": np.array(1.0)})
    with pytest.raises(ValueError, match="inf"):
        symbolic_gradient("cross_entropy", "categorical", "categorical",
                          {"probs_p": np.array([0.5, 0.5, 0.0]), "probs_q": np.array([0.5, 0.0, 0.5])})


def test_invalid_points_raise():
    with pytest.raises(ValueError, match="scale"):
        check_gradient("kl", "normal", "normal", {**NORMAL, "scale_q": np.array(-1.0)})
    with pytest.raises(ValueError, match="takes"):
        check_gradient("kl", "normal", "normal", {"loc_p": np.array(0.0)})
    with pytest.raises(ValueError, match="dimension"):
        check_gradient("kl", "normal", "normal", {**NORMAL, "loc_p": np.zeros(2)})


# ============================================================== nearly equal P, Q
SELF_PAIRS = [P for P, Q in symkl.pairs() if P == Q]


def near_tolerance(quantity: str, P: str, delta: float) -> float:
    """The pass mark at nearly equal P, Q (gradients.NEAR_EQUAL_TOLERANCE), except the
    full-MVN KL, whose autograd (not its value) loses ~eps/delta: measured up to 6.5e-10 at
    delta = 1e-6, 1.1e-6 at 1e-9, 4.1e-3 at 1e-12 -- a known limitation, bounded here by
    2**15 eps / delta."""
    if (quantity, P) == ("kl", "mvn"):
        return 2.0**15 * gradients.EPS / delta
    return tolerance(quantity, P, P, near_equal=True)


@pytest.mark.parametrize("P", SELF_PAIRS)
def test_self_pair_near_equal(P):
    """KL gradients are O(delta) near P == Q; the check is relative to that small size."""
    check = check_gradient("kl", P, P, near_point(P, 1e-6, _seed("near", P)))
    assert check.error <= near_tolerance("kl", P, 1e-6), check
    # Uniform: Q's edges lie within 1e-6 of P's, inside gradcheck's probe radius.
    assert check.gradcheck is (None if P == "uniform" else True), check


def test_kl_gradient_is_exactly_zero_at_p_equal_q():
    """At P == Q every KL gradient vanishes (Uniform: P == Q is on the edge of the finite
    region, where it does not): autograd gives exactly 0, and so does the reference once its
    10**-dps rounding residues are taken as 0 (the error measure needs no special case)."""
    for P in SELF_PAIRS:
        point = near_point(P, 0.0, _seed("equal", P), dim=2)
        check = check_gradient("kl", P, P, point)
        if P == "uniform":  # 1 / (high - low): a plain relative error
            assert check.error <= 4 * gradients.EPS, check
        else:
            assert check.error == 0.0, check
            assert all(np.all(v == 0) for v in check.reference.values()), check
            assert all(np.all(v == 0) for v in check.autograd.values()), check


@pytest.mark.slow
@pytest.mark.parametrize("delta", [1e-6, 1e-9, 1e-12])
@pytest.mark.parametrize("P", SELF_PAIRS)
def test_self_pair_near_equal_sweep(P, delta):
    for j in range(4):
        for quantity in ("kl", "cross_entropy"):
            if not _generated(quantity, P, P):
                continue
            check = check_gradient(quantity, P, P, near_point(P, delta, _seed("near", P, j)))
            assert check.error <= near_tolerance(quantity, P, delta), check
            assert check.gradcheck is not False, check


@pytest.mark.slow
@pytest.mark.parametrize("quantity,P,Q", CASES, ids=_ids(CASES))
def test_gradient_sweep(quantity, P, Q):
    dims = (2, 3, 4) if "mvn" in (P, Q) or P in ("categorical", "dirichlet", "mvn_diag") else (None,)
    for j in range(5):
        for dim in dims:
            check = check_gradient(quantity, P, Q, sample_point(quantity, P, Q, _seed("sweep", quantity, P, Q, j), dim))
            assert check.error <= tolerance(quantity, P, Q), check
            assert check.gradcheck is True, check


@pytest.mark.slow
def test_mvn_large_k_uses_numerical_fallback():
    pt = sample_point("kl", "mvn", "mvn", 7, dim=5)
    check = check_gradient("kl", "mvn", "mvn", pt)
    assert "mpmath.diff" in check.note
    assert check.error <= gradients.TOLERANCE and check.gradcheck is True


# ============================================================================= CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("quantity,P,Q", [("kl", "normal", "normal"), ("kl", "mvn", "mvn"),
                                          ("cross_entropy", "categorical", "categorical"),
                                          ("kl", "dirichlet", "dirichlet"), ("entropy", "gamma", None)])
def test_gradient_on_cuda(quantity, P, Q):
    point = sample_point(quantity, P, Q, _seed("cuda", quantity, P, Q))
    cpu = autograd_gradient(quantity, P, Q, point)
    cuda = autograd_gradient(quantity, P, Q, point, device="cuda")
    check = check_gradient(quantity, P, Q, point, device="cuda")
    assert check.error <= tolerance(quantity, P, Q) and check.gradcheck is True, check
    for n in point:
        assert _close(cuda[n], cpu[n], 1e-12)
