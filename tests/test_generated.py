"""The generated numpy and torch code against the derivations, evaluated in mpmath.

* every generated function, both backends, float64: equal to the derived result at 50
  digits on the exact binary inputs, at sampled parameters (relative 1e-12);
* near-equal P and Q (relative differences 1e-4 .. 1e-12): the stable KL forms keep their
  accuracy (float64 within 64 ULP of the 50-digit value) where the derived form loses it;
* KL(P || P) == 0 exactly, KL >= 0, +inf for support mismatch;
* the committed modules are exactly what ``symkl codegen`` writes (byte for byte);
* torch: autograd, ``torch.func.vmap`` and ``torch.compile(fullgraph=True)``.
"""

from __future__ import annotations

import inspect

import mpmath
import numpy as np
import pytest
import sympy as sp
import torch

import symkl
import symkl.numpy
import symkl.torch.functional
from symkl import mpeval
from symkl.codegen import emit
from symkl.distributions import REGISTRY
from symkl.family import DIM
from symkl.generated import numpy_functions as NP
from symkl.generated import torch_functions as TH

NAMES = [n for n in TH.__all__ if n not in TH.PARAMETERS]  # catalogue functions
SPECIALISED = sorted(n for n in TH.PARAMETERS if not n.endswith("_tril"))
TRIL = sorted(n for n in TH.PARAMETERS if n.endswith("_tril"))


def _parse(name: str) -> tuple[str, str, str | None]:
    for quantity in ("cross_entropy", "entropy", "kl"):
        if name.startswith(quantity + "_"):
            rest = name[len(quantity) + 1:]
            break
    families = sorted(REGISTRY, key=len, reverse=True)
    for p in families:
        if rest == p:
            return quantity, p, None
        if rest.startswith(p + "_") and rest[len(p) + 1:] in REGISTRY:
            return quantity, p, rest[len(p) + 1:]
    raise AssertionError(name)


def _derivation(quantity: str, p: str, q: str | None) -> symkl.Derivation:
    return symkl.entropy(p) if quantity == "entropy" else getattr(symkl, quantity)(p, q)


def _reference(d: symkl.Derivation, args: dict[str, np.ndarray], quantity: str) -> np.ndarray:
    """The derived result at 50 digits, per batch element, on the exact float64 inputs."""
    batch = next(iter(args.values())).shape[0]
    out = []
    for b in range(batch):
        keys = {name: name if quantity != "entropy" else f"{name}_p" for name in args}
        env = mpeval.environment(d.symbols, {keys[n]: v[b] for n, v in args.items()})
        with mpmath.workdps(80):  # 50 digits of the result even where it is ~1e-30 of its terms
            value = mpeval.evaluate(d.result, env)
            if quantity == "kl" and p_is_simplex(d):
                # Float inputs sum to 1 only to ~1e-16; what the generated code computes, and
                # what equals the KL on the simplex, is the generalised KL
                # sum p log(p/q) - p + q, so the reference includes sum(q - p).
                value += mpmath.fsum(env[d.symbols["probs_q"]]) - mpmath.fsum(env[d.symbols["probs_p"]])
            # 80-digit noise around an exact 0 (p == q) is 0.
            out.append(0.0 if abs(value) < mpmath.mpf(10) ** -70 else float(value))
    return np.array(out)


def p_is_simplex(d: symkl.Derivation) -> bool:
    return d.p == d.q == "categorical"


def _inputs(quantity: str, p: str, q: str | None, rng: np.random.Generator, batch: int = 4,
            near: float | None = None) -> dict[str, np.ndarray]:
    fam_p = REGISTRY[p]
    vp = fam_p.sample_parameters(rng, batch=(batch,), dim=3)
    if quantity == "entropy":
        return vp
    fam_q = REGISTRY[q]
    vq = fam_q.sample_parameters(rng, batch=(batch,), dim=3)
    if near is not None:  # Q = P perturbed by a relative amount `near`
        vq = {k: v * (1 + near * rng.choice([-1, 1], size=v.shape)) for k, v in vp.items()}
        if fam_p.parameter(next(iter(vp))).constraint.event_total is not None:
            vq = {k: v / v.sum(-1, keepdims=True) for k, v in vq.items()}
        if p == "mvn":
            vq["covariance_matrix"] = vp["covariance_matrix"] * (1 + near)
        if p == "uniform":  # keep supp P inside supp Q
            vq = {"low": vp["low"] - near * abs(vp["low"]) - near, "high": vp["high"] + near * abs(vp["high"])}
    if (p, q) == ("uniform", "uniform") and near is None:
        vq = {"low": vp["low"] - rng.uniform(0, 1, batch), "high": vp["high"] + rng.uniform(0, 1, batch)}
    if (p, q) == ("beta", "uniform"):
        vq = {"low": -rng.uniform(0, 1, batch), "high": 1 + rng.uniform(0, 1, batch)}
    out = {f"{k}_p": v for k, v in vp.items()}
    out.update({f"{k}_q": v for k, v in vq.items()})
    return out


@pytest.mark.parametrize("name", NAMES)
def test_generated_matches_derivation(name: str) -> None:
    quantity, p, q = _parse(name)
    d = _derivation(quantity, p, q)
    rng = np.random.default_rng(len(name))
    args = _inputs(quantity, p, q, rng)
    params = list(inspect.signature(getattr(NP, name)).parameters)
    args = {k: args[k] for k in params}
    ref = _reference(d, args, quantity)
    got_np = np.asarray(getattr(NP, name)(**args), dtype=float)
    got_th = getattr(TH, name)(**{k: torch.tensor(v) for k, v in args.items()}).numpy()
    for got in (got_np, got_th):
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-300, err_msg=name)


@pytest.mark.parametrize("name", SPECIALISED)
def test_specialisations_match_their_derivation(name: str) -> None:
    from symkl.codegen.emit import _expand_specials
    from symkl.codegen.specialise import SPECIALISATIONS, specialised_result

    spec = next(s for s in SPECIALISATIONS if s.name == name)
    _, expr, params = specialised_result(spec)
    rng = np.random.default_rng(len(name))
    args = {}
    for pname, (sym, constraint) in params.items():
        vector = isinstance(sym, sp.IndexedBase)
        if constraint == "simplex":
            args[pname] = rng.dirichlet(np.ones(4), size=3)
        else:
            args[pname] = rng.normal(0, 2, size=(3, 4) if vector else 3)
    if "probs_p" in args:
        args["probs_p"][0, 1] = 0.0  # a zero target probability contributes exactly 0
        args["probs_p"][0] /= args["probs_p"][0].sum()
    ref = []
    for b in range(3):
        env = {DIM: mpmath.mpf(4)}
        for pname, (sym, _) in params.items():
            v = args[pname][b]
            env[sym] = [mpmath.mpf(float(t)) for t in v] if np.ndim(v) else mpmath.mpf(float(v))
        with mpmath.workdps(60):
            ref.append(float(mpeval.evaluate(_expand_specials(expr), env)))
    got_np = getattr(NP, name)(**args)
    got_th = getattr(TH, name)(**{k: torch.tensor(v) for k, v in args.items()}).numpy()
    for got in (got_np, got_th):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-15, err_msg=name)


@pytest.mark.parametrize("name", TRIL)
def test_cholesky_variants_equal_the_covariance_functions(name: str) -> None:
    rng = np.random.default_rng(4)
    base = name[: -len("_tril")]
    params = list(inspect.signature(getattr(TH, base)).parameters)
    fam = REGISTRY["mvn"]
    sides = {}
    for suffix in ("p", "q"):
        v = fam.sample_parameters(rng, batch=(3,), dim=4)
        sides[suffix] = v
    args = {p: torch.tensor(sides["q" if p.endswith("_q") else "p"][p.rsplit("_", 1)[0] if p.endswith(("_p", "_q")) else p])
            for p in params}
    tril_args = {k.replace("covariance_matrix", "scale_tril"): (torch.linalg.cholesky(v) if "covariance" in k else v)
                 for k, v in args.items()}
    torch.testing.assert_close(getattr(TH, name)(**tril_args), getattr(TH, base)(**args), rtol=1e-13, atol=1e-13)


def test_vae_term_is_exactly_zero_at_the_prior_and_stable_near_it() -> None:
    mu, logvar = np.zeros((2, 5)), np.zeros((2, 5))
    assert np.all(NP.kl_vae(mu, logvar) == 0)
    tiny = np.full(5, 1e-9)
    # exp(lv) - 1 - lv ~ lv^2/2: 5 * (1e-18 / 2) / 2, plus mu^2 / 2 terms.
    got = NP.kl_vae(tiny, tiny)
    assert got == pytest.approx(5 * (0.25e-18 + 0.5e-18), rel=1e-7)


STABLE_KL = ["normal", "mvn_diag", "exponential", "poisson", "bernoulli", "categorical",
             "laplace", "uniform", "gamma", "beta", "dirichlet", "mvn"]


def _ulps(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.where(ref == got, 0.0, np.abs(got - ref) / np.spacing(np.abs(ref)))


@pytest.mark.parametrize("family", STABLE_KL)
@pytest.mark.parametrize("near", [1e-4, 1e-8, 1e-12])
def test_near_equal_kl_keeps_its_digits(family: str, near: float) -> None:
    name = f"kl_{family}_{family}"
    d = _derivation("kl", family, family)
    rng = np.random.default_rng(int(-np.log10(near)))
    args = _inputs("kl", family, family, rng, batch=6, near=near)
    ref = _reference(d, args, "kl")
    assert np.all(ref >= 0)
    got = np.asarray(getattr(NP, name)(**args), dtype=float)
    got_th = getattr(TH, name)(**{k: torch.tensor(v) for k, v in args.items()}).numpy()
    # Bound: Gamma/Beta/Dirichlet/MVN carry the conditioning of lnGamma / Cholesky.
    # Full MVN: separate Cholesky factors of Sigma_p and Sigma_q carry rounding errors of
    # about 1 ulp * cond, so at relative difference delta the KL (~ delta^2) is only defined
    # by its float inputs to ~ 1/delta ULP: a 1-ulp change of an input moves it that much.
    bound = {"gamma": 16, "beta": 16, "dirichlet": 16, "mvn": 10 / near}.get(family, 64)
    for g in (got, got_th):
        assert np.all(g >= 0), (name, g)
        worst = _ulps(g, ref).max()
        assert worst <= bound, f"{name} at relative difference {near}: {worst:.1f} ULP"


def test_gamma_and_beta_kl_are_sums_of_non_negative_divergences() -> None:
    """The rewrite writes B_lnGamma = B_phi + B_{y log y} and merges the y log y parts into
    divergences at product points whose increments come from exact products: no term of
    the Gamma or Beta KL is subtracted from another of its size."""
    for family in ("gamma", "beta"):
        source = inspect.getsource(getattr(TH, f"kl_{family}_{family}"))
        assert "kernels.lgamma_residual_bregman(" in source and "kernels.product_difference(" in source
        assert "kernels.lgamma_bregman(" not in source


# (family, P's parameters, Q's parameters, float64 ULP bound): large concentrations, where
# B_lnGamma and its y log y part agree to ~1/(2x) and a KL written around B_lnGamma cancelled
# (10**3 ulp for the first Gamma pair, 10**7 for the first Beta pair; torch returns 0 for it
# in float32). That Beta pair keeps one cancellation: B_phi(b) - B_phi(a + b), each ~3e2 x
# the KL, where a/b = 5e-11 (~150 ulp; float32 is exact to its half ulp).
LARGE_CONCENTRATIONS = [
    ("gamma", (1479.0, 2.7), (274.0, 0.5), 8),
    ("gamma", (3.0e6, 1.0e-3), (3.0e6 * (1 + 1e-9), 1.0e-3 * (1 + 1e-9)), 8),
    ("beta", (0.0017, 3.43e7), (0.0017, 3.36e7), 256),
    ("beta", (2.0e5, 3.0e5), (2.0e5 * (1 + 1e-7), 3.0e5 * (1 + 1e-7)), 8),
    # the extreme regime's worst Dirichlet point before the rewrite (3.4e6 ulp): Q's total is
    # 1.5e-7 of P's, so D = Y - X has lost Y's digits and the increment uses the totals
    ("dirichlet", ((1.16862373e7, 6035.22609, 4653.24462, 1.72150448e5),),
     ((0.66722471, 0.12349391, 0.00166157, 0.01171951),), 16),
    ("dirichlet", ((3.0, 0.5, 7.0),), ((3.0 * (1 + 1e-9), 0.5 * (1 - 1e-9), 7.0),), 16),
]


def _kl_reference(family: str, p: tuple[float, ...], q: tuple[float, ...]) -> mpmath.mpf:
    with mpmath.workdps(80):
        def mp(values: tuple) -> list:
            return [[mpmath.mpf(u) for u in v] if isinstance(v, tuple) else mpmath.mpf(v) for v in values]

        p, q = mp(p), mp(q)
        lg, psi = mpmath.loggamma, mpmath.digamma
        if family == "gamma":
            (a, b), (c, e) = p, q
            return (a - c) * psi(a) - lg(a) + lg(c) + c * (mpmath.log(b) - mpmath.log(e)) + a * (e - b) / b
        if family == "dirichlet":
            (a,), (c,) = p, q
            return (lg(sum(a)) - sum(map(lg, a)) - lg(sum(c)) + sum(map(lg, c))
                    + sum((ai - ci) * (psi(ai) - psi(sum(a))) for ai, ci in zip(a, c)))
        (a, b), (c, e) = p, q
        return (lg(c) + lg(e) - lg(c + e) - lg(a) - lg(b) + lg(a + b)
                + (a - c) * psi(a) + (b - e) * psi(b) + (c + e - a - b) * psi(a + b))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda t: t.__name__)
@pytest.mark.parametrize(("family", "p", "q", "bound"), LARGE_CONCENTRATIONS)
def test_large_concentrations_keep_their_digits(family: str, p: tuple, q: tuple, bound: float, dtype: type) -> None:
    def cast(values: tuple) -> tuple:  # the binary values the function sees, as floats
        return tuple(tuple(float(dtype(u)) for u in v) if isinstance(v, tuple) else float(dtype(v)) for v in values)

    p, q = cast(p), cast(q)
    ref = _kl_reference(family, p, q)
    names = {"gamma": ("concentration", "rate"), "beta": ("concentration1", "concentration0"),
             "dirichlet": ("concentration",)}[family]
    args = {f"{n}_{side}": np.asarray(v, dtype=dtype) for side, values in (("p", p), ("q", q))
            for n, v in zip(names, values)}
    # the public functions: float32 arguments are widened before the formula's arithmetic
    got = getattr(symkl.numpy, f"kl_{family}_{family}")(**args)
    got_th = getattr(symkl.torch.functional, f"kl_{family}_{family}")(
        **{k: torch.from_numpy(v) for k, v in args.items()}, validate=False)
    for g in (float(got), float(got_th)):
        ulps = float(abs(mpmath.mpf(g) - ref)) / float(np.spacing(dtype(float(ref))))
        assert ulps <= (bound if dtype is np.float64 else 0.5), f"{family} {p} || {q}: {g} vs {ref} ({ulps:.1f} ULP)"


@pytest.mark.parametrize("family", STABLE_KL)
def test_kl_of_a_distribution_with_itself_is_exactly_zero(family: str) -> None:
    rng = np.random.default_rng(3)
    vp = REGISTRY[family].sample_parameters(rng, batch=(5,), dim=4)
    args = {f"{k}_p": v for k, v in vp.items()} | {f"{k}_q": v for k, v in vp.items()}
    got = getattr(NP, f"kl_{family}_{family}")(**args)
    assert np.all(np.asarray(got) == 0), got
    got_th = getattr(TH, f"kl_{family}_{family}")(**{k: torch.tensor(v) for k, v in args.items()})
    assert torch.all(got_th == 0), got_th


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scale_ratios_far_from_one_stay_finite_and_accurate(dtype) -> None:
    """s_p / s_q = 1e-60: 1 + s rounds to 0, but log r is exact (split kernel), and no scale
    is squared on its own (s_q^2 = 1e60 overflows float32)."""
    t = lambda v: torch.tensor(v, dtype=dtype)  # noqa: E731
    with mpmath.workdps(40):
        r = mpmath.mpf(1e-30) / mpmath.mpf(1e30)
        normal = -mpmath.log(r) + (r**2 + (1 / mpmath.mpf(1e30)) ** 2) / 2 - mpmath.mpf(1) / 2
        laplace = -mpmath.log(r) + 1 / mpmath.mpf(1e30) + r * mpmath.exp(-1 / mpmath.mpf(1e-30)) - 1
    got_n = TH.kl_normal_normal(t(0.0), t(1e-30), t(1.0), t(1e30))
    got_l = TH.kl_laplace_laplace(t(0.0), t(1e-30), t(1.0), t(1e30))
    tol = 4 * torch.finfo(dtype).eps
    assert float(got_n) == pytest.approx(float(normal), rel=tol)
    assert float(got_l) == pytest.approx(float(laplace), rel=tol)


def test_support_mismatch_is_inf_with_the_batch_shape() -> None:
    loc, scale, rate = torch.zeros(3), torch.ones(3), torch.ones(1)
    out = TH.kl_normal_exponential(loc, scale, rate)
    assert out.shape == (3,) and torch.all(torch.isinf(out)) and out.dtype == torch.float32
    u = TH.kl_uniform_uniform(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 2.0]),
                              torch.tensor([0.0, 0.0]), torch.tensor([1.5, 1.5]))
    assert u[0] == pytest.approx(float(np.log(1.5))) and u[1] == float("inf")
    cat = TH.kl_categorical_categorical(torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.0, 0.5]]),
                                        torch.tensor([[0.25, 0.75, 0.0], [0.5, 0.5, 0.0]]))
    assert torch.isfinite(cat[0]) and cat[1] == float("inf")


def test_committed_modules_are_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    from symkl.cli import main

    status = main(["codegen", "--check"])
    out = capsys.readouterr().out
    assert status == 0, f"stale generated modules, run `symkl codegen`:\n{out}"
    assert "67 functions per backend; not generated: none" in out


def test_regeneration_is_byte_identical(tmp_path) -> None:
    stale, _, _ = emit.write(tmp_path)  # into an empty folder: everything is new
    assert len(stale) == 2
    for filename in emit.MODULE_NAMES.values():
        assert (tmp_path / filename).read_bytes() == (emit.GENERATED_DIR / filename).read_bytes()


# -- torch specifics --------------------------------------------------------------------------


def _normal_args(dtype=torch.float64, requires_grad=False):
    g = torch.Generator().manual_seed(0)
    t = lambda *s: torch.rand(*s, generator=g, dtype=dtype)  # noqa: E731
    args = (t(5) - 0.5, t(5) + 0.5, t(5) - 0.5, t(5) + 0.5)
    return tuple(a.requires_grad_(requires_grad) for a in args)


def test_gradcheck_of_stable_kernels_in_generated_code() -> None:
    assert torch.autograd.gradcheck(TH.kl_normal_normal, _normal_args(requires_grad=True))
    g = torch.Generator().manual_seed(1)
    gam = tuple((torch.rand(4, generator=g, dtype=torch.float64) + 0.5).requires_grad_() for _ in range(4))
    assert torch.autograd.gradcheck(TH.kl_gamma_gamma, gam)


def test_vmap_matches_batched_call() -> None:
    args = _normal_args()
    batched = TH.kl_normal_normal(*args)
    mapped = torch.func.vmap(TH.kl_normal_normal)(*args)
    torch.testing.assert_close(mapped, batched, rtol=0, atol=0)


def test_mvn_gradients_under_func_transforms_and_a_users_compile() -> None:
    # The Gaussian kernels are autograd Functions with closed-form partials: torch.func's
    # grad and vmap, and a user's own torch.compile with gradients, must see the same
    # gradients as plain autograd.
    g = torch.Generator().manual_seed(5)

    def factor() -> torch.Tensor:
        a = torch.randn(5, 3, 3, dtype=torch.float64, generator=g)
        return torch.linalg.cholesky(a @ a.mT + torch.eye(3, dtype=torch.float64))

    loc_p, loc_q = (torch.randn(5, 3, dtype=torch.float64, generator=g) for _ in range(2))
    tril_p, tril_q = factor(), factor()
    leaves = [t.clone().requires_grad_() for t in (loc_p, tril_p, loc_q, tril_q)]
    want = torch.autograd.grad(TH.kl_mvn_mvn_tril(*leaves).sum(), leaves)
    mapped = torch.func.vmap(torch.func.grad(TH.kl_mvn_mvn_tril, argnums=(0, 1, 2, 3)))(loc_p, tril_p, loc_q, tril_q)
    torch._dynamo.reset()
    compiled = torch.compile(TH.kl_mvn_mvn_tril, fullgraph=True, backend="eager")
    traced = torch.autograd.grad(compiled(*leaves).sum(), leaves)
    for got_mapped, got_traced, expected in zip(mapped, traced, want):
        torch.testing.assert_close(got_mapped, expected, rtol=1e-14, atol=1e-15)
        torch.testing.assert_close(got_traced, expected, rtol=1e-14, atol=1e-15)
    torch._dynamo.reset()


@pytest.mark.slow
def test_torch_compile_fullgraph() -> None:
    compiled = torch.compile(TH.kl_gamma_gamma, fullgraph=True)
    g = torch.Generator().manual_seed(2)
    args = tuple(torch.rand(16, generator=g, dtype=torch.float64) + 0.5 for _ in range(4))
    torch.testing.assert_close(compiled(*args), TH.kl_gamma_gamma(*args))


@pytest.mark.slow
def test_generation_does_not_depend_on_the_hash_seed() -> None:
    import os
    import subprocess
    import sys

    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "SYMKL_CACHE": "0"}
        run = subprocess.run([sys.executable, "-m", "symkl", "codegen", "--check"], env=env,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stdout + run.stderr
