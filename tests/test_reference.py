"""Derived closed forms against an independent 40-digit numeric reference.

For every catalogue pair (KL and cross-entropy) and every family (entropy) the derived
``.formula`` is evaluated with :mod:`symkl.mpeval` at ``mp.dps = 40`` and compared with
E_P[log p(x) - log q(x)] (resp. -E_P[log q], -E_P[log p]) computed from densities
written out in plain mpmath -- no closed form, no symkl density, no symkl quadrature
(symkl.verify.reference, reference A of ``symkl verify``):

* continuous scalars: ``mpmath.quad`` split at the location/kinks and at support edges;
  a finite edge where the integrand may be singular (Gamma/Beta shapes < 1, log x) is
  integrated in t with x = edge + w exp(-t), so the singular end becomes a decaying tail;
  Beta and Dirichlet(k = 2) get the distance to *both* edges exactly (x and 1 - x);
* Poisson: ``mpmath.nsum``; Bernoulli / Categorical: exact sums with 0 log 0 = 0;
* mvn_diag: E of a sum of coordinates = sum of 1-D integrals over the Normal marginals;
* mvn: log p - log q is quadratic in x, so the 3-point-per-dimension Gauss-Hermite
  tensor cubature in whitened coordinates is exact.

Every reference is computed at two precisions (dps 40 and 55) that must agree to
``REF_DIGITS``, so a reference that silently misses digits cannot pass; the formula must
then match the more precise reference to ``DIGITS`` significant digits.
"""

from __future__ import annotations

import itertools
import zlib
from typing import Any

import mpmath
import numpy as np
import pytest
import sympy as sp

import symkl
from symkl import mpeval
from symkl.distributions import REGISTRY
from symkl.family import DIM, INDEX
from symkl.verify.points import to_mpmath
from symkl.verify.reference import (integrand, expectation, outside_mass, reference)

mpf = mpmath.mpf
inf = mpmath.inf

DPS, DPS_CHECK = 40, 50
DIGITS = 20  # formula vs reference
REF_DIGITS = 25  # reference at dps 40 vs at dps 50
#: |value| below which agreement is judged in absolute terms.
TINY = mpf("1e-10")

#: Event dimension used for indexed families unless a point says otherwise.
DEFAULT_DIM = {"categorical": 3, "dirichlet": 2, "mvn_diag": 3, "mvn": 2}


def M(value: Any) -> Any:
    """An exact high-precision constant (so dps 40 and dps 50 see the same number)."""
    with mpmath.workdps(80):
        if isinstance(value, (list, tuple)):
            return [mpf(v) for v in value]
        return mpf(value)


# The densities, quadrature rules and the two-precision reference live in
# symkl.verify.reference (reference A of `symkl verify`); these tests exercise them too.


# ================================================================ parameter points
def sampled(family: str, seed: int, dim: int | None = None) -> dict:
    rng = np.random.default_rng(seed)
    raw = REGISTRY[family].sample_parameters(rng, dim=dim or DEFAULT_DIM.get(family, 3))
    return to_mpmath(REGISTRY[family], raw)


def _seed(*parts) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode())


def _rotation_cov(eigs, angles) -> mpmath.matrix:
    """R diag(eigs) R^T with R a product of Givens rotations (exact SPD, any conditioning)."""
    k = len(eigs)
    with mpmath.workdps(80):
        r = mpmath.eye(k)
        for (a, b), th in zip(itertools.combinations(range(k), 2), angles):
            g = mpmath.eye(k)
            c, s = mpmath.cos(M(th)), mpmath.sin(M(th))
            g[a, a], g[a, b], g[b, a], g[b, b] = c, -s, s, c
            r = r * g
        cov = r * mpmath.diag([M(e) for e in eigs]) * r.T
        for i in range(k):  # exactly symmetric
            for j in range(i):
                cov[i, j] = cov[j, i]
    return cov


#: Hand-picked, deliberately untypical parameters, as P and as Q.
ATYP_P = {
    "normal": {"loc": M("7.5"), "scale": M("0.03")},
    "laplace": {"loc": M("-4.25"), "scale": M("0.05")},
    "exponential": {"rate": M("40")},
    "gamma": {"concentration": M("0.15"), "rate": M("0.02")},
    "beta": {"concentration1": M("0.18"), "concentration0": M("0.3")},
    "uniform": {"low": M("-0.001"), "high": M("0.0025")},
    "poisson": {"rate": M("0.003")},
    "bernoulli": {"probs": M("1e-9")},
    "categorical": {"probs": M(["0.6", "0", "0.4", "0"])},
    "dirichlet": {"concentration": M(["0.2", "6.5"])},
    "mvn_diag": {"loc": M(["0", "5", "-3"]), "scale": M(["0.001", "10", "0.5"])},
    "mvn": {"loc": mpmath.matrix(M(["1", "-2"])),
            "covariance_matrix": _rotation_cov(["0.001", "50"], ["0.3"])},
}
ATYP_Q = {
    "normal": {"loc": M("7.51"), "scale": M("2")},
    "laplace": {"loc": M("7.51"), "scale": M("2")},
    "exponential": {"rate": M("0.001")},
    "gamma": {"concentration": M("9.5"), "rate": M("3")},
    "beta": {"concentration1": M("12"), "concentration0": M("0.5")},
    "uniform": {"low": M("-3"), "high": M("1.5")},
    "poisson": {"rate": M("45")},
    "bernoulli": {"probs": M("0.999")},
    "categorical": {"probs": M(["0.1", "0.2", "0.3", "0.4"])},
    "dirichlet": {"concentration": M(["3", "0.25"])},
    "mvn_diag": {"loc": M(["0.1", "-5", "2"]), "scale": M(["2", "0.01", "0.5"])},
    "mvn": {"loc": mpmath.matrix(M(["0", "0"])),
            "covariance_matrix": _rotation_cov(["2", "0.01"], ["-1.1"])},
}


def _pair_points(P: str, Q: str) -> list[tuple[dict, dict]]:
    """Three or more (vp, vq) points where KL(P || Q) is finite."""
    pts = []
    for j in range(2):
        dim = 3 if (P == "mvn" and j == 1) else None
        vp = sampled(P, _seed(P, Q, "p", j), dim)
        vq = sampled(Q, _seed(P, Q, "q", j), dim)
        pts.append((vp, vq))
    if (P, Q) == ("uniform", "uniform"):
        # P inside Q, drawn: low_p in (low_q, high_q), high_p in (low_p, high_q).
        pts = []
        for j in range(2):
            rng = np.random.default_rng(_seed(P, Q, j))
            vq = sampled("uniform", _seed(P, Q, "q", j))
            f1, f2 = (mpf(float(u)) for u in rng.uniform(0.05, 0.95, 2))
            low_p = vq["low"] + f1 * (vq["high"] - vq["low"])
            pts.append(({"low": low_p, "high": low_p + f2 * (vq["high"] - low_p)}, vq))
        # P touching both ends of Q: KL = 0 exactly (absolute comparison).
        pts.append(({"low": M("-0.5"), "high": M("2")}, {"low": M("-0.5"), "high": M("2")}))
        pts.append(({"low": M("-0.5"), "high": M("-0.4999")}, {"low": M("-0.5"), "high": M("1e3")}))
        return pts
    if (P, Q) == ("beta", "uniform"):
        pts = []
        for j in range(2):
            rng = np.random.default_rng(_seed(P, Q, j))
            lo, hi = rng.uniform(0, 2, 2)
            pts.append((sampled("beta", _seed(P, Q, "p", j)),
                        {"low": mpf(float(-lo)), "high": mpf(float(1 + hi))}))
        # supp Q = [0, 1] exactly: containment on the boundary.
        pts.append((ATYP_P["beta"], {"low": M("0"), "high": M("1")}))
        return pts
    if (P, Q) == ("bernoulli", "bernoulli"):
        pts.append(({"probs": M("0")}, {"probs": M("0.25")}))  # 0 log 0 = 0
        pts.append(({"probs": M("1")}, {"probs": M("1e-6")}))
        pts.append(({"probs": M("0.999999")}, {"probs": M("1e-12")}))
    if (P, Q) == ("categorical", "categorical"):
        # zeros in P and in Q only where P is zero too -> still finite
        pts.append(({"probs": M(["0.5", "0.5", "0"])}, {"probs": M(["0.2", "0.3", "0.5"])}))
    if (P, Q) == ("poisson", "poisson"):
        pts.append(({"rate": M("45")}, {"rate": M("0.003")}))
    pts.append((ATYP_P[P], ATYP_Q[Q]))
    return pts


def _family_points(F: str) -> list[dict]:
    pts = [sampled(F, _seed(F, "entropy", j)) for j in range(2)]
    if F == "mvn":
        pts.append(sampled(F, _seed(F, "entropy", 3), dim=3))
    if F == "bernoulli":
        pts += [{"probs": M("0")}, {"probs": M("1")}]
    if F == "poisson":
        pts.append({"rate": M("45")})
    pts.append(ATYP_P[F])
    return pts


PAIR_POINTS = {pq: _pair_points(*pq) for pq in symkl.pairs()}
FAMILY_POINTS = {f.name: _family_points(f.name) for f in symkl.families()}


# ============================================================ formula evaluation
def derivation(quantity: str, P: str, Q: str | None = None, **fixed) -> symkl.Derivation:
    """Always derive afresh (cache=False): the tests check the current code, not a pickle."""
    if quantity == "entropy":
        return symkl.entropy(P, cache=False, **fixed)
    return getattr(symkl, quantity)(P, Q, cache=False, **fixed)


def dim_of(v) -> int | None:
    for val in v.values():
        if isinstance(val, mpmath.matrix):
            return val.rows
        if isinstance(val, list):
            return len(val)
    return None


def env_for(d: symkl.Derivation, vp, vq=None) -> dict:
    env = {}
    for suffix, vals in (("p", vp), ("q", vq or {})):
        for name, val in vals.items():
            sym = d.symbols.get(f"{name}_{suffix}")
            if sym is not None and f"{name}_{suffix}" not in d.fixed:
                env[sym] = val
    k = dim_of(vp)
    if k is not None:
        env[DIM] = mpf(k)
    return env


def evaluate(expr: sp.Basic, env: dict, dps: int = DPS) -> Any:
    with mpmath.workdps(dps):
        return mpeval.evaluate(expr, env)


def digits(value, ref) -> float:
    """Agreement in significant digits (absolute below TINY)."""
    with mpmath.workdps(DPS_CHECK + 10):
        err = abs(value - ref)
        if err == 0:
            return float("inf")
        return float(-mpmath.log10(err / max(abs(ref), TINY)))


def checked_reference(quantity: str, P: str, Q: str | None, vp, vq=None) -> Any:
    """The reference, confirmed at two precisions to REF_DIGITS (for Poisson also by two
    methods: nsum and a bounded direct sum); see symkl.verify.reference."""
    ref = reference(quantity, P, Q, vp, vq, digits=REF_DIGITS)
    assert mpmath.isfinite(ref.value), (quantity, P, Q, ref)
    return ref.value


def agreement(quantity: str, P: str, Q: str | None, vp, vq=None) -> tuple[float, Any, Any]:
    d = derivation(quantity, P, Q)
    value = evaluate(d.formula, env_for(d, vp, vq))
    ref = checked_reference(quantity, P, Q, vp, vq)
    return digits(value, ref), value, ref


def _ids(cases):
    return ["-".join(str(c) for c in case if c is not None) for case in cases]


PAIR_CASES = [(P, Q, j) for (P, Q), pts in PAIR_POINTS.items() for j in range(len(pts))]
FAMILY_CASES = [(F, j) for F, pts in FAMILY_POINTS.items() for j in range(len(pts))]


# ====================================================================== the tests
NEVER_FINITE = {("normal", "exponential"), ("normal", "uniform")}
FINITE_PAIR_CASES = [c for c in PAIR_CASES if c[:2] not in NEVER_FINITE]


def test_every_pair_and_family_has_points():
    assert set(PAIR_POINTS) == set(symkl.pairs()) and len(PAIR_POINTS) == 23
    assert all(len(pts) >= 3 for pts in PAIR_POINTS.values())
    assert all(len(pts) >= 3 for pts in FAMILY_POINTS.values())


@pytest.mark.parametrize("quantity", ["kl", "cross_entropy"])
@pytest.mark.parametrize("P,Q,j", FINITE_PAIR_CASES, ids=_ids(FINITE_PAIR_CASES))
def test_pair_formula_matches_reference(quantity, P, Q, j):
    vp, vq = PAIR_POINTS[(P, Q)][j]
    d = derivation(quantity, P, Q)
    env = env_for(d, vp, vq)
    # The point is in the finite region: the condition holds (for every index i) ...
    cond = d.conditions.finite_when
    idx = range(dim_of(vp)) if cond.has(INDEX) else [0]
    assert all(evaluate(cond, {**env, INDEX: mpf(i), INDEX.label: mpf(i)}) for i in idx)
    # ... and there the closed form matches the density-based expectation to 20 digits.
    got, value, ref = agreement(quantity, P, Q, vp, vq)
    assert got >= DIGITS, f"{quantity}({P} || {Q}) point {j}: formula {value} vs reference {ref}"


@pytest.mark.parametrize("F,j", FAMILY_CASES, ids=_ids(FAMILY_CASES))
def test_entropy_formula_matches_reference(F, j):
    vp = FAMILY_POINTS[F][j]
    got, value, ref = agreement("entropy", F, None, vp)
    assert got >= DIGITS, f"H({F}) point {j}: formula {value} vs reference {ref}"


def test_kl_is_cross_entropy_minus_entropy_at_reference_points():
    # Not a substitute for the reference tests: a consistency check of the three formulas.
    for (P, Q), pts in PAIR_POINTS.items():
        if (P, Q) in NEVER_FINITE:
            continue
        dk, dc, dh = derivation("kl", P, Q), derivation("cross_entropy", P, Q), derivation("entropy", P)
        for vp, vq in pts:
            kl = evaluate(dk.formula, env_for(dk, vp, vq))
            ce = evaluate(dc.formula, env_for(dc, vp, vq))
            h = evaluate(dh.formula, env_for(dh, vp))
            with mpmath.workdps(DPS):
                assert digits(kl, ce - h) >= DIGITS, (P, Q, kl, ce, h)


# ----------------------------------------------------------------- result agrees there
@pytest.mark.parametrize("P,Q", [pq for pq in symkl.pairs() if pq not in NEVER_FINITE])
def test_result_equals_formula_on_finite_points(P, Q):
    d = derivation("kl", P, Q)
    for vp, vq in PAIR_POINTS[(P, Q)]:
        env = env_for(d, vp, vq)
        assert evaluate(d.result, env) == evaluate(d.formula, env)


# -------------------------------------------------------------------- infinite cases
@pytest.mark.parametrize("quantity", ["kl", "cross_entropy"])
@pytest.mark.parametrize("P,Q,vp,vq", [
    ("uniform", "uniform", {"low": M(0), "high": M(2)}, {"low": M("0.5"), "high": M(3)}),
    ("uniform", "uniform", {"low": M(0), "high": M(2)}, {"low": M(-1), "high": M("1.999")}),
    ("uniform", "uniform", {"low": M(0), "high": M(1)}, {"low": M(2), "high": M(3)}),  # disjoint
    ("beta", "uniform", {"concentration1": M(2), "concentration0": M(3)}, {"low": M("0.2"), "high": M(3)}),
    ("beta", "uniform", {"concentration1": M("0.5"), "concentration0": M("0.5")},
     {"low": M(0), "high": M("0.999")}),
], ids=["uu-low", "uu-high", "uu-disjoint", "bu-low", "bu-high"])
def test_result_is_infinite_when_support_not_contained(quantity, P, Q, vp, vq):
    d = derivation(quantity, P, Q)
    env = env_for(d, vp, vq)
    with mpmath.workdps(DPS):
        assert evaluate(d.conditions.finite_when, env) is False
        assert evaluate(d.result, env) == mpmath.inf
        # The reference really diverges: P puts positive mass where q = 0.
        assert outside_mass(P, vp, vq["low"], vq["high"]) > mpf("1e-6")


@pytest.mark.parametrize("quantity", ["kl", "cross_entropy"])
@pytest.mark.parametrize("p,q", [("0.3", "0"), ("0.3", "1"), ("0", "1"), ("1", "0")])
def test_bernoulli_infinite(quantity, p, q):
    d = derivation(quantity, "bernoulli", "bernoulli")
    vp, vq = {"probs": M(p)}, {"probs": M(q)}
    env = env_for(d, vp, vq)
    assert evaluate(d.conditions.finite_when, env) is False
    assert evaluate(d.result, env) == mpmath.inf
    # some x with P(x) > 0 has q(x) = 0
    assert any(pw > 0 and qw == 0 for pw, qw in ((vp["probs"], vq["probs"]),
                                                 (1 - vp["probs"], 1 - vq["probs"])))


@pytest.mark.parametrize("quantity", ["kl", "cross_entropy"])
def test_categorical_infinite_condition(quantity):
    d = derivation(quantity, "categorical", "categorical")
    assert d.conditions.finite_when.has(INDEX)
    vp, vq = {"probs": M(["0.5", "0.25", "0.25"])}, {"probs": M(["0.5", "0.5", "0"])}
    env = env_for(d, vp, vq)
    holds = [evaluate(d.conditions.finite_when, {**env, INDEX: mpf(i), INDEX.label: mpf(i)})
             for i in range(3)]
    assert holds == [True, True, False]
    # q = 0 where p > 0 only at i = 2: the reference term p_2 (log p_2 - log q_2) is +inf.
    assert integrand(quantity, "categorical", "categorical", vp, vq)(2) == mpmath.inf


@pytest.mark.parametrize("quantity", ["kl", "cross_entropy"])
def test_categorical_result_is_infinite_where_q_has_a_zero(quantity):
    d = derivation(quantity, "categorical", "categorical")
    env = env_for(d, {"probs": M(["0.5", "0.25", "0.25"])}, {"probs": M(["0.5", "0.5", "0"])})
    assert evaluate(d.result, env) == mpmath.inf
    # ... while a zero of q where p is zero too keeps the result finite (and equal to the formula).
    env = env_for(d, {"probs": M(["0.5", "0.5", "0"])}, {"probs": M(["0.25", "0.75", "0"])})
    assert evaluate(d.result, env) == evaluate(d.formula, env) < mpmath.inf


@pytest.mark.parametrize("quantity", ["kl", "cross_entropy"])
@pytest.mark.parametrize("Q", ["exponential", "uniform"])
def test_never_finite_pairs(quantity, Q):
    d = derivation(quantity, "normal", Q)
    assert d.result == sp.oo
    assert d.conditions.never_finite
    for vp, vq in PAIR_POINTS[("normal", Q)]:
        lo, hi = (mpf(0), inf) if Q == "exponential" else (vq["low"], vq["high"])
        with mpmath.workdps(DPS):
            # Every Normal puts positive mass outside supp Q, where log q = -inf.
            assert outside_mass("normal", vp, lo, hi) > 0
            assert integrand("kl", "normal", Q, vp, vq)(lo - 1) == mpmath.inf


# ---------------------------------------------------------------- 0 log 0 conventions
@pytest.mark.parametrize("P,vp,vq", [
    ("bernoulli", {"probs": M(0)}, {"probs": M(0)}),
    ("bernoulli", {"probs": M(1)}, {"probs": M(1)}),
    ("categorical", {"probs": M(["0.5", "0.5", "0"])}, {"probs": M(["0.25", "0.75", "0"])}),
], ids=["bern-0-0", "bern-1-1", "cat-shared-zero"])
def test_kl_shared_zero_probability(P, vp, vq):
    d = derivation("kl", P, P)
    env = env_for(d, vp, vq)
    with mpmath.workdps(DPS):
        expected = expectation("kl", P, P, vp, vq)
        assert digits(evaluate(d.result, env), expected) >= DIGITS


@pytest.mark.parametrize("P,vp,vq", [
    ("bernoulli", {"probs": M(0)}, {"probs": M(0)}),
    ("bernoulli", {"probs": M(1)}, {"probs": M(1)}),
    ("categorical", {"probs": M(["0.5", "0.5", "0"])}, {"probs": M(["0.25", "0.75", "0"])}),
], ids=["bern-0-0", "bern-1-1", "cat-shared-zero"])
def test_cross_entropy_shared_zero_probability(P, vp, vq):
    d = derivation("cross_entropy", P, P)
    env = env_for(d, vp, vq)
    with mpmath.workdps(DPS):
        expected = expectation("cross_entropy", P, P, vp, vq)
        assert digits(evaluate(d.result, env), expected) >= DIGITS


# ------------------------------------------------------------ Poisson infinite series
@pytest.mark.parametrize("rate", ["0.003", "0.7", "6.25", "45"])
def test_poisson_series_against_direct_sum(rate):
    """H(Poisson) and H(P, Q) contain sum_n pmf(n) log n! (evaluated by mpeval with nsum):
    compare with a direct, bounded-tail sum of the pmf at 50 digits."""
    vp, vq = {"rate": M(rate)}, {"rate": M("2.5")}
    for quantity in ("entropy", "cross_entropy"):
        d = derivation(quantity, "poisson", None if quantity == "entropy" else "poisson")
        value = evaluate(d.formula, env_for(d, vp, vq))
        with mpmath.workdps(DPS_CHECK):
            ref = expectation(quantity, "poisson", "poisson", vp, vq, poisson="direct")
        assert digits(value, ref) >= DIGITS, (quantity, rate, value, ref)


# ------------------------------------------------------------------ Dirichlet, k = 3
@pytest.mark.slow
@pytest.mark.parametrize("quantity", ["kl", "cross_entropy", "entropy"])
def test_dirichlet_k3_two_dimensional_quadrature(quantity):
    """k = 3 by genuine 2-D quadrature over the simplex, at a lower target (12 digits)."""
    for j in range(2):
        vp = sampled("dirichlet", _seed("dirichlet3", "p", j), dim=3)
        vq = sampled("dirichlet", _seed("dirichlet3", "q", j), dim=3)
        Q = None if quantity == "entropy" else "dirichlet"
        d = derivation(quantity, "dirichlet", Q)
        value = evaluate(d.formula, env_for(d, vp, vq))
        with mpmath.workdps(16):
            r16 = expectation(quantity, "dirichlet", Q, vp, vq)
        with mpmath.workdps(20):
            r20 = expectation(quantity, "dirichlet", Q, vp, vq)
        assert digits(r16, r20) >= 12, (r16, r20)
        assert digits(value, r20) >= 12, (quantity, j, value, r20)
