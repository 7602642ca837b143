"""The Bregman kernels of symkl.kernels: accuracy against mpmath, conventions, autograd.

Accuracy is measured in ULPs of the target dtype, |got - ref| / spacing(ref), against
mpmath at 50 significant digits evaluated on the exact binary input values, over
fixed-seed grids of the regimes the kernels are meant for. The two backends run the
same float64 algorithms (symkl.kernels._float64), so every numpy test is a torch test as well.
"""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import Callable

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

from symkl.kernels import _float64 as f64
from symkl.kernels import _partials as pk
from symkl.kernels import numpy as knp
from symkl.kernels import torch as ktorch

NAMES = ("neglog_bregman", "xlogx_bregman", "exp_bregman", "lgamma_bregman", "lgamma_residual_bregman")
DTYPES = (np.float32, np.float64)
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}

# Asserted max-ULP bounds. float32 results are computed in float64 and rounded once (at most
# ~0.5 ulp); float64 ones come from short series and direct formulas (measured maxima in the
# test output, -s).
ULP_BOUND = {"neglog_bregman": 4.0, "xlogx_bregman": 4.0, "exp_bregman": 4.0, "lgamma_bregman": 8.0,
             "lgamma_residual_bregman": 8.0}
ULP_BOUND_FLOAT32 = 0.55

DIGITS = 50


# ----------------------------------------------------------------------------- helpers


def _numpy_backend(name: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    return getattr(knp, name)


def _torch_backend(name: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    fn = getattr(ktorch, name)

    def run(x: np.ndarray, d: np.ndarray) -> np.ndarray:
        out = fn(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(d)))
        assert out.dtype == TORCH_DTYPE[x.dtype.type]
        return out.numpy()

    return run


BACKENDS = {"numpy": _numpy_backend, "torch": _torch_backend}


def reference(name: str, x: float, d: float) -> mpmath.mpf:
    """The exact value at the binary inputs, to DIGITS significant digits (mpmath)."""
    with mpmath.workdps(DIGITS):
        x, d = mpmath.mpf(float(x)), mpmath.mpf(float(d))
        if name == "neglog_bregman":
            if x + d == 0:
                return mpmath.inf
            s = d / x
            return s - mpmath.log1p(s)
        if name == "xlogx_bregman":
            y = x + d
            if y == 0:
                return x
            if x == 0:
                return mpmath.inf
            return y * mpmath.log(y / x) - d
        if name == "exp_bregman":
            return mpmath.exp(x) * (mpmath.expm1(d) - d)
        if x + d == 0:
            return mpmath.inf
        value = mpmath.loggamma(x + d) - mpmath.loggamma(x) - d * mpmath.digamma(x)
        if name == "lgamma_residual_bregman":  # B_phi ~ s**2/4 of terms ~ x log x: more digits
            with mpmath.workdps(DIGITS + 60):
                y = x + d
                value = (mpmath.loggamma(y) - mpmath.loggamma(x) - d * mpmath.digamma(x)
                         - (y * mpmath.log(y / x) - d))
        return +value


def ulp_errors(got: np.ndarray, ref: list[mpmath.mpf], dtype: type) -> np.ndarray:
    """|got - ref| in units of the dtype's spacing at ref (inf-correct overflow counts 0)."""
    big = float(np.finfo(dtype).max)
    out = np.empty(len(ref))
    for i, (g, r) in enumerate(zip(got.tolist(), ref)):
        if mpmath.isinf(r) or abs(r) > big:
            out[i] = 0.0 if g == float("inf") else np.inf
        else:
            spacing = float(np.spacing(dtype(abs(float(r)))))
            out[i] = float(abs(mpmath.mpf(g) - r)) / spacing
    return out


def _loguniform(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    return 10.0 ** rng.uniform(np.log10(lo), np.log10(hi), n)


def _ratio_grid(rng: np.random.Generator, dtype: type, n: int) -> tuple[np.ndarray, np.ndarray]:
    """x in [1e-30, 1e30], d = s x with |s| in [1e-14, 1e3], x + d >= 0 down to ~eps x."""
    x = _loguniform(rng, 1e-30, 1e30, n)
    tiny = 1e-15 if dtype is np.float64 else 1e-7
    q = n // 4
    s = np.concatenate(
        [
            _loguniform(rng, 1e-14, 1e3, q),  # d > 0, small to large
            -_loguniform(rng, 1e-14, 0.5, q),  # d < 0, small to moderate
            -(1 - _loguniform(rng, tiny, 0.5, q)),  # x + d close to 0
            rng.uniform(-0.9, 3.0, n - 3 * q),  # the reduction's switching points
        ]
    )
    x = x.astype(dtype)
    d = np.maximum((x.astype(np.float64) * s).astype(dtype), -x)
    return x, d


def _exp_grid(rng: np.random.Generator, dtype: type, n: int) -> tuple[np.ndarray, np.ndarray]:
    """x in [-50, 50]; d in [-50, 50], plus tiny |d| down to 1e-14 and |d| near the ln2 steps."""
    x = rng.uniform(-50, 50, n)
    q = n // 3
    sign = rng.choice([-1.0, 1.0], n)
    d = np.concatenate(
        [rng.uniform(-50, 50, q), _loguniform(rng, 1e-14, 1.0, q), rng.uniform(0.0, 3.0, n - 2 * q)]
    )
    return x.astype(dtype), (sign * d).astype(dtype)


def _lgamma_grid(rng: np.random.Generator, dtype: type, n: int) -> tuple[np.ndarray, np.ndarray]:
    """x in [1e-3, 1e8], |d|/x in [1e-12, 10], d < 0 down to x + d ~ 1e-12 x; shift edges."""
    q = n // 4
    x = _loguniform(rng, 1e-3, 1e8, n - 24)
    tiny = 1e-12 if dtype is np.float64 else 1e-6
    r = np.concatenate(
        [
            _loguniform(rng, 1e-12, 10.0, q),
            -_loguniform(rng, 1e-12, 0.5, q),
            -(1 - _loguniform(rng, tiny, 0.5, q)),
            rng.uniform(-0.99, 2.0, n - 24 - 3 * q),
        ]
    )
    x, d = x.astype(dtype), (x * r).astype(dtype)
    # both sides of the shift thresholds (8 in float64, 4 in float32), in x and in x + d
    edge = np.array([3.999, 4.0, 4.001, 7.999, 8.0, 8.001], dtype)
    ex = np.concatenate([edge, edge, edge + 5, np.full(6, 20.0, dtype)])
    ed = np.concatenate([np.full(6, 0.5, dtype), np.full(6, -1e-6, dtype), -np.full(6, 5, dtype), edge - 20])
    x, d = np.concatenate([x, ex]).astype(dtype), np.concatenate([d, ed]).astype(dtype)
    keep = np.array([float(a) + float(b) > 0 for a, b in zip(x, d)])
    return x[keep], d[keep]


GRIDS = {
    "neglog_bregman": (_ratio_grid, 1200),
    "xlogx_bregman": (_ratio_grid, 1200),
    "exp_bregman": (_exp_grid, 1200),
    "lgamma_bregman": (_lgamma_grid, 700),
    "lgamma_residual_bregman": (_lgamma_grid, 700),
}


@functools.lru_cache(maxsize=None)
def grid(name: str, dtype: type) -> tuple[np.ndarray, np.ndarray, list[mpmath.mpf]]:
    make, n = GRIDS[name]
    rng = np.random.default_rng([NAMES.index(name), np.dtype(dtype).itemsize])
    x, d = make(rng, dtype, n)
    return x, d, [reference(name, a, b) for a, b in zip(x.tolist(), d.tolist())]


# ---------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("name", NAMES)
def test_ulp_accuracy(name: str, backend: str, dtype: type) -> None:
    x, d, ref = grid(name, dtype)
    got = BACKENDS[backend](name)(x, d)
    assert got.dtype == dtype
    assert not np.isnan(got).any()
    assert (got >= 0).all(), "negative values"
    err = ulp_errors(got, ref, dtype)
    i = int(np.argmax(err))
    assert err[i] <= (ULP_BOUND[name] if dtype is np.float64 else ULP_BOUND_FLOAT32), (
        f"{name}/{backend}/{dtype.__name__}: max {err[i]:.3f} ulp at x={x[i]!r}, d={d[i]!r}: "
        f"got {got[i]!r}, ref {mpmath.nstr(ref[i], 20)}"
    )
    print(f"{name}/{backend}/{dtype.__name__}: max {err.max():.3f} ulp, mean {err.mean():.3f}")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("name", NAMES)
def test_backends_agree(name: str, dtype: type) -> None:
    # Same operations in the same order, but each backend calls its own libm: numpy's and
    # torch's exp/expm1/log may differ by an ulp, and which SIMD path numpy takes depends on
    # the CPU (exp_bregman differed by 3 ulp on one CI-class machine, by 2 on another). A
    # wrong formula in one backend differs by far more than the accuracy bound itself.
    x, d, _ = grid(name, dtype)
    a = _numpy_backend(name)(x, d)
    b = _torch_backend(name)(x, d)
    finite = np.isfinite(a)
    assert np.array_equal(np.isfinite(b), finite)
    diff = np.abs(a[finite] - b[finite]) / np.spacing(np.abs(a[finite]))
    assert diff.max(initial=0.0) <= (ULP_BOUND[name] if dtype is np.float64 else 1.0)


# ------------------------------------------------------------------------- conventions


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("name", NAMES)
def test_zero_increment_gives_exact_zero(name: str, backend: str, dtype: type) -> None:
    x = np.array([1e-30, 1e-3, 0.5, 1.0, 7.99, 8.0, 123.0, 1e8, 1e30], dtype)
    if name == "exp_bregman":
        x = np.concatenate([x, -x, [0.0]]).astype(dtype)
    got = BACKENDS[backend](name)(x, np.zeros_like(x))
    assert (got == 0).all(), got


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_edge_conventions(backend: str, dtype: type) -> None:
    def run(name: str, x: list[float], d: list[float]) -> np.ndarray:
        return BACKENDS[backend](name)(np.array(x, dtype), np.array(d, dtype))

    inf = np.inf
    # -log: pole at x + d == 0
    assert (run("neglog_bregman", [1.0, 3e-20, 5e20], [-1.0, -3e-20, -5e20]) == inf).all()
    # x log x: y == 0 gives x (0 log 0 = 0); x == 0 gives 0 (d == 0) or +inf (d > 0)
    got = run("xlogx_bregman", [2.5, 1e-20, 0.0, 0.0, 0.0], [-2.5, -1e-20, 0.0, 1.0, 1e-30])
    np.testing.assert_array_equal(got, np.array([2.5, 1e-20, 0.0, inf, inf], dtype))
    # lnGamma: x + d == 0 is the pole of lgamma(x + d)
    assert (run("lgamma_bregman", [0.5, 3.0], [-0.5, -3.0]) == inf).all()
    # exp: overflows to +inf and underflows to 0 like exp(x + d), never NaN
    big = 800.0 if dtype is np.float64 else 100.0
    got = run("exp_bregman", [big, 0.0, -big, -big, 2 * big, -2 * big], [1.0, big, -1e-3, 1e-3, -big, big])
    assert got[0] == inf and got[1] == inf and got[2] == 0 and got[3] == 0
    assert not np.isnan(got).any() and (got >= 0).all()


def _domain_floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    x=st.lists(st.one_of(_domain_floats(0.0, 1e300), _domain_floats(0.0, 10.0)), min_size=1, max_size=16),
    frac=st.lists(st.one_of(_domain_floats(-1.0, 1.0), _domain_floats(-1.0, 1e30)), min_size=16, max_size=16),
    dtype=st.sampled_from(DTYPES),
)
def test_never_nan_or_negative(x: list[float], frac: list[float], dtype: type) -> None:
    """Whole domain, subnormals and extremes included: finite or +inf, >= 0, backends agree
    to 2 ulp."""
    big = np.finfo(dtype).max
    xa = np.minimum(np.array(x), big).astype(dtype)
    with np.errstate(over="ignore"):
        da = np.clip(xa.astype(np.float64) * np.array(frac[: len(x)]), -big, big).astype(dtype)
    da = np.maximum(da, -xa)
    for name in NAMES:
        lgamma = name in ("lgamma_bregman", "lgamma_residual_bregman")
        xs = np.where(xa > 0, xa, dtype(1.0)) if name == "neglog_bregman" or lgamma else xa
        ds = np.maximum(da, -xs)
        if lgamma:
            with np.errstate(over="ignore"):
                ds = np.where(xs.astype(np.float64) + ds > 0, ds, dtype(0.0))
        if name == "exp_bregman":  # any finite x and d, both signs
            xs, ds = np.where(np.array(frac[: len(x)]) < 0.5, -xa, xa), da
        a = _numpy_backend(name)(xs, ds)
        b = _torch_backend(name)(xs, ds)
        assert not np.isnan(a).any(), (name, xs, ds, a)
        assert (a >= 0).all(), (name, xs, ds, a)
        # numpy's and torch's libm differ in the last bit of log/expm1
        np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b))
        finite = np.isfinite(a)
        assert (np.abs(a[finite] - b[finite]) <= 2 * np.spacing(np.abs(a[finite]))).all(), (name, xs, ds, a, b)


@settings(max_examples=60, deadline=None)
@given(
    x=_domain_floats(1e-200, 1e200),
    s=st.one_of(_domain_floats(-1.0, 1e3), _domain_floats(-1e-6, 1e-6)),
    k=st.integers(-300, 300),
)
def test_power_of_two_scaling_is_exact(x: float, s: float, k: int) -> None:
    """neglog is scale-invariant bit for bit; xlogx is homogeneous of degree 1 to within
    2 ulp (float64: its far branch takes log(y/x) as 2 log(sqrt y / sqrt x), and sqrt of an
    odd power of two is not exact)."""
    d = max(x * s, -x)
    xs, ds = np.ldexp(x, k), np.ldexp(d, k)
    assume(np.ldexp(xs, -k) == x and np.ldexp(ds, -k) == d)  # the inputs scaled exactly
    base_neglog = knp.neglog_bregman(x, d)
    assert knp.neglog_bregman(xs, ds) == base_neglog
    base = knp.xlogx_bregman(x, d)
    scaled = knp.xlogx_bregman(xs, ds)
    normal = base >= np.finfo(np.float64).tiny  # a subnormal base has lost bits already
    if np.isfinite(base) and normal and 1e-290 < base * 2.0**k < 1e290:
        expected = np.ldexp(base, k)
        assert abs(scaled - expected) <= 2 * np.spacing(abs(expected))


# ------------------------------------------------------------------------------- torch


def _typical_points() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.tensor([0.5, 2.0, 10.0, 3.0, 0.7, 40.0], dtype=torch.float64)
    d = torch.tensor([1e-4, -0.3, 5.0, -2.5, 1e-9, -1e-6], dtype=torch.float64)
    return x, d


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck(name: str) -> None:
    x, d = _typical_points()
    assert torch.autograd.gradcheck(getattr(ktorch, name), (x.requires_grad_(), d.requires_grad_()))


def _exact_gradient(name: str, x: float, d: float) -> tuple[float, float]:
    with mpmath.workdps(DIGITS):
        x, d = mpmath.mpf(x), mpmath.mpf(d)
        s = d / x
        if name == "neglog_bregman":
            return float(-s * s / (x * (1 + s))), float(s / (x * (1 + s)))
        if name == "xlogx_bregman":
            return float(mpmath.log1p(s) - s), float(mpmath.log1p(s))
        if name == "exp_bregman":
            return float(mpmath.exp(x) * (mpmath.expm1(d) - d)), float(mpmath.exp(x) * mpmath.expm1(d))
        dpsi = mpmath.digamma(x + d) - mpmath.digamma(x)
        if name == "lgamma_residual_bregman":
            return float(dpsi - d * mpmath.polygamma(1, x) + s - mpmath.log1p(s)), float(dpsi - mpmath.log1p(s))
        return float(dpsi - d * mpmath.polygamma(1, x)), float(dpsi)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_accuracy_at_small_increments(name: str) -> None:
    # Stronger than gradcheck where finite differences are useless: tiny d.
    x = torch.tensor([0.5, 3.0, 40.0, 0.01, 7.5], dtype=torch.float64, requires_grad=True)
    d = torch.tensor([1e-10, -1e-12, 1e-7, -1e-9, 2e-5], dtype=torch.float64, requires_grad=True)
    getattr(ktorch, name)(x, d).sum().backward()
    for i in range(len(x)):
        gx, gd = _exact_gradient(name, x[i].item(), d[i].item())
        assert x.grad[i].item() == pytest.approx(gx, rel=1e-12)
        assert d.grad[i].item() == pytest.approx(gd, rel=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_finite_at_zero_increment_and_edges(name: str) -> None:
    # exp_bregman included at exp(x) = inf: the d == 0 lanes are never scaled by exp(x)
    x = torch.tensor([1e-30, 0.3, 1.0, 8.0, 1e20], dtype=torch.float64, requires_grad=True)
    d = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    getattr(ktorch, name)(x, d).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(d.grad).all()
    assert (d.grad == 0).all()

    if name == "exp_bregman":
        x = torch.tensor([-50.0, 50.0, 0.0], dtype=torch.float64, requires_grad=True)
        d = torch.tensor([50.0, -50.0, 1e-300], dtype=torch.float64, requires_grad=True)
    else:  # at and next to x + d == 0 (and x == 0 for xlogx)
        x = torch.tensor([2.0, 2.0, 1e-3, 0.0, 0.0], dtype=torch.float64, requires_grad=True)
        d = torch.tensor([-2.0, -2.0 + 2**-51, -1e-3 + 1e-12, 0.0, 1.0], dtype=torch.float64)
        d.requires_grad_()
        if name != "xlogx_bregman":  # x > 0 only
            x, d = (t.detach()[:3].requires_grad_() for t in (x, d))
    getattr(ktorch, name)(x, d).sum().backward()
    assert not torch.isnan(x.grad).any() and not torch.isnan(d.grad).any(), (x.grad, d.grad)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_matches_batched_call(name: str) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 9, dtype=torch.float64, generator=g) * 10 + 0.1
    d = (torch.rand(4, 9, dtype=torch.float64, generator=g) - 0.3) * x
    fn = getattr(ktorch, name)
    assert torch.equal(torch.func.vmap(fn)(x, d), fn(x, d))


def _all_four(x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    # as generated code calls them, Python numbers included
    return torch.stack([getattr(ktorch, name)(x, d) for name in NAMES] + [ktorch.exp_bregman(0, d)])


def _compile_inputs(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(64, dtype=dtype, generator=g) * 20 + 1e-3
    d = x * (torch.rand(64, dtype=dtype, generator=g) * 3 - 0.99)
    return x, d


def test_compile_fullgraph_captures_all_four() -> None:
    # One graph, no breaks; the "eager" backend keeps this fast (inductor: see the slow test).
    torch._dynamo.reset()
    x, d = _compile_inputs(torch.float64)
    compiled = torch.compile(_all_four, fullgraph=True, backend="eager")
    assert torch.equal(compiled(x, d), _all_four(x, d))


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_compile_inductor_matches_eager(dtype: torch.dtype) -> None:
    # Inductor's vectorised log/log1p (SLEEF) and glibc's differ by about an ulp, which the
    # kernels' far branches can amplify a few times; the series branches agree exactly.
    # Compiled as symkl.torch compiles (dynamic shapes, its inductor options): with
    # inductor's defaults the lnGamma kernel took over 20 minutes.
    from symkl.torch import _execution

    torch._dynamo.reset()
    x, d = _compile_inputs(dtype)
    options = {**_execution.COMMON_INDUCTOR_OPTIONS, **_execution.INDUCTOR_OPTIONS["lgamma_bregman"]}
    compiled = torch.compile(_all_four, fullgraph=True, dynamic=True, options=options)
    torch.testing.assert_close(compiled(x, d), _all_four(x, d), rtol=16 * torch.finfo(dtype).eps, atol=0)


class _DtypeRecorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.float_dtypes: set[torch.dtype] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                self.float_dtypes.add(t.dtype)
        return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_narrow_dtypes_compute_in_float64(name: str, dtype: torch.dtype) -> None:
    # One rounding at the end: the result is the float64 result rounded to the input dtype.
    x, d = _compile_inputs(torch.float64)
    x, d = x.to(dtype), d.to(dtype)
    with _DtypeRecorder() as rec:
        out = getattr(ktorch, name)(x, d)
    assert out.dtype == dtype
    assert torch.float64 in rec.float_dtypes
    assert torch.equal(out, getattr(ktorch, name)(x.double(), d.double()).to(dtype))


def test_dtype_promotion_and_rejection() -> None:
    # Python numbers are weak, as generated code passes them (e.g. exp_bregman(0, d)).
    x32 = torch.ones(3, dtype=torch.float32)
    assert ktorch.neglog_bregman(x32, 0.5).dtype == torch.float32
    assert ktorch.exp_bregman(0, x32).dtype == torch.float32
    # 1e-300 must not pass through float32 on its way to float64
    assert ktorch.neglog_bregman(1e-300, torch.ones(1, dtype=torch.float64)).item() > 0
    assert ktorch.neglog_bregman(x32, torch.ones(3, dtype=torch.float64)).dtype == torch.float64
    assert knp.neglog_bregman(np.ones(3, np.float32), 0.5).dtype == np.float32
    assert knp.exp_bregman(0, np.ones(3, np.float32)).dtype == np.float32
    assert knp.xlogx_bregman(2, 1).dtype == np.float64
    assert knp.neglog_bregman(np.ones(3, np.float16), 0.5).dtype == np.float16
    with pytest.raises(TypeError, match="floating-point"):
        ktorch.neglog_bregman(torch.ones(3, dtype=torch.int64), torch.ones(3, dtype=torch.int64))
    with pytest.raises(TypeError, match="floating-point"):
        knp.neglog_bregman(np.ones(3, np.complex128), 0.5)


# ------------------------------------------------------------- coefficients and identities


@pytest.mark.parametrize("name", NAMES)
def test_narrow_target_before_rounding(name: str) -> None:
    """NARROW's float64 result, before the rounding to float32, is within 1e-9 relative of
    FLOAT64's on the float32 grid: the rounding then adds its half ulp and nothing else."""
    x, d, _ = grid(name, np.float32)
    a, b = x.astype(np.float64), d.astype(np.float64)
    narrow = knp._apply(getattr(f64, name), a, b, target=f64.NARROW)
    full = knp._apply(getattr(f64, name), a, b, target=f64.FLOAT64)
    finite = np.isfinite(full) & (full > 0)
    assert np.array_equal(np.isfinite(narrow), np.isfinite(full))
    assert (np.abs(narrow[finite] - full[finite]) <= 1e-9 * full[finite]).all()


def test_narrow_y_log_y_towards_the_pole() -> None:
    """NARROW's y log y divergence takes log(max(1 + u, 2**-60)) without the endpoints'
    ratio: where 1 + u has lost u's digits or rounded to 0 (y/x below float64's eps) the
    result, ~x, must still hold 1e-9 (float32 operands: y down to 1e-45)."""
    x = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 3e38, 2.0, 1e-30], np.float32).astype(np.float64)
    y = np.array([0.4, 1e-10, 1e-17, 1e-30, 1e-45, 1.0, 1.9999, 1e-45], np.float32).astype(np.float64)
    narrow = knp._apply(f64.xlogx_bregman, x, y - x, y, target=f64.NARROW)
    with mpmath.workdps(50):
        for xi, yi, got in zip(x.tolist(), y.tolist(), narrow.tolist()):
            X, Y = mpmath.mpf(xi), mpmath.mpf(yi)
            ref = Y * mpmath.log(Y / X) - Y + X
            assert abs(got - ref) <= 1e-9 * ref, (xi, yi, got, ref)


def test_stirling_coefficients_are_exact_roundings() -> None:
    for k, c in enumerate(f64.STIRLING, start=1):
        assert f64.bernoulli(2 * k) == Fraction(*(int(v) for v in mpmath.bernfrac(2 * k)))
        assert c == float(f64.bernoulli(2 * k) / (2 * k * (2 * k - 1)))


def test_series_are_long_enough() -> None:
    """Fit and truncation errors stay below eps/8 (expm1: eps/4) of the result on the
    ranges used."""
    eps = 2.0**-53
    with mpmath.workdps(40):
        # Stirling: first omitted term of the lnGamma Bregman series relative to the
        # divergence, at the smallest argument used (the shift), small u (the hardest case)
        k = f64.STIRLING_TERMS + 1
        assert abs(mpmath.bernoulli(2 * k)) / mpmath.mpf(f64.SHIFT) ** (2 * k) < eps / 8
        k = len(f64.NARROW.stirling) + 1  # NARROW: 1e-9, 1/60 of a float32 ulp
        assert abs(mpmath.bernoulli(2 * k)) / mpmath.mpf(f64.NARROW.shift) ** (2 * k) < 1e-9

        def poly(v, coeffs):
            out = mpmath.mpf(0)
            for c in coeffs:
                out = out * v + mpmath.mpf(c)
            return out

        # s - log1p(s) = s z - 2 z^3 P(z^2): P's error times 2 z^3 against h(s), on the near
        # range and on lgamma_residual_bregman's shift terms (s in (-1/2, 1): |z| <= 1/3)
        for coeffs, z_high, bound in ((f64.P_COEFFICIENTS, mpmath.mpf(3) / 5, eps / 8),
                                      (f64.P_COEFFICIENTS_INNER, mpmath.mpf(1) / 3, eps / 8),
                                      (f64.P_COEFFICIENTS_INNER_SHORT, mpmath.mpf(1) / 3, 1e-12)):
            for z in mpmath.linspace(-z_high, z_high, 41):
                if z == 0:
                    continue
                s = 2 * z / (1 - z)
                exact = s - mpmath.log1p(s)
                approx = s * z - 2 * z**3 * poly(z * z, coeffs)
                assert abs(approx - exact) <= bound * exact
        for d in mpmath.linspace(-1, 1, 41):
            if d == 0:
                continue
            exact = mpmath.expm1(d) - d
            # float64 coefficients (rounded fit) included: below eps/4 here
            assert abs(d * d * poly(d, f64.EXPM1_COEFFICIENTS) - exact) <= eps / 4 * exact


@pytest.mark.parametrize("m", [1, 3, 5, 9, 21])
@pytest.mark.parametrize("u", ["-0.999", "-0.5", "-1e-9", "1e-9", "0.3", "7", "1e6"])
def test_power_bregman_positive_form(m: int, u: str) -> None:
    """(1+u)**-m - 1 + m u == u**2 v sum_{l<m} (m-l) v**l, v = 1/(1+u): the identity the
    lgamma kernel's Stirling tail relies on (all terms positive for u > -1)."""
    with mpmath.workdps(80):
        u = mpmath.mpf(u)
        v = 1 / (1 + u)
        lhs = (1 + u) ** (-m) - 1 + m * u
        rhs = u**2 * v * mpmath.fsum((m - l) * v**l for l in range(m))
        assert abs(lhs - rhs) <= mpmath.mpf(10) ** -60 * abs(rhs)
        # ... and, with t = 1/z and w = 1/(z + d), z**-m times it is u**2 w E_{m-1}(t, w)
        z = mpmath.mpf(9)
        t, w = 1 / z, 1 / (z + u * z)
        e = mpmath.fsum((a + 1) * t**a * w ** (m - 1 - a) for a in range(m))
        assert abs(z ** (-m) * lhs - u**2 * w * e) <= mpmath.mpf(10) ** -60 * abs(z ** (-m) * rhs)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_neglog_split_accuracy(backend: str, dtype: type) -> None:
    """h(s) given log(1 + s) (the generated code passes the log of a scale ratio), as the
    generated formulas call it: in float64, with the target of the result dtype (float64:
    the series of symkl.kernels._float64; float32: NARROW, result rounded once)."""
    rng = np.random.default_rng(11)
    r = np.exp(rng.uniform(-40, 40, 3000)).astype(dtype)  # the ratio y/x
    r = np.concatenate([r, (1 + rng.uniform(-1e-3, 1e-3, 500)).astype(dtype)])
    with mpmath.workdps(60):
        exact = [mpmath.mpf(float(v)) for v in r]
        s = np.array([float(v - 1) for v in exact])  # s and log r rounded to float64,
        log_r = np.array([float(mpmath.log(v)) for v in exact])  # as the formula forms them
        # Truth: (r - 1) - log r on the exact ratio; the inputs' own rounding (1/2 ulp of s and
        # of log r) is part of the measured error.
        ref = np.array([float((v - 1) - mpmath.log(v)) for v in exact])
    target = f64.FLOAT64 if dtype is np.float64 else f64.NARROW
    if backend == "numpy":
        out = knp._apply(f64.neglog_bregman_split, s, log_r, target=target)
    else:
        out = ktorch._apply(f64.neglog_bregman_split, torch.from_numpy(s), torch.from_numpy(log_r), target=target)
    got = np.asarray(out, dtype=np.float64).astype(dtype).astype(np.float64)
    err = np.abs(got - ref) / np.spacing(np.abs(ref).astype(dtype)).astype(np.float64)
    assert np.all(got >= 0) and not np.isnan(got).any()
    assert err.max() <= (4.0 if dtype is np.float64 else 0.55), f"{backend}/{dtype.__name__}: {err.max():.2f} ulp"


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("name", ["xlogx_bregman", "lgamma_bregman", "lgamma_residual_bregman"])
def test_exact_endpoint_keeps_far_results_accurate(name: str, backend: str) -> None:
    """Far from x the difference d = y - x is rounded; with y passed too, log(y/x) stays
    exact: B(x, y) for y/x down to 1e-30 within 4 ulp (float64). Given only the rounded d,
    lgamma_bregman(7.5, 1e-30 - 7.5) sees x + d == 0, the pole, and returns inf."""
    x = np.array([1.0, 3.0, 1e10, 7.5, 2.0, 1e-3, 5.0])
    y = np.array([1e-10, 3e-20, 1.0, 1e-30, 1e5, 1e8, 1e-25])
    d = y - x
    with mpmath.workdps(DIGITS):
        ref = []
        for a, b in zip(x.tolist(), y.tolist()):
            a, b = mpmath.mpf(a), mpmath.mpf(b)
            xlogx = b * mpmath.log(b / a) - b + a
            lgamma = mpmath.loggamma(b) - mpmath.loggamma(a) - (b - a) * mpmath.digamma(a)
            ref.append({"xlogx_bregman": xlogx, "lgamma_bregman": lgamma,
                        "lgamma_residual_bregman": lgamma - xlogx}[name])
    kernel = getattr(knp if backend == "numpy" else ktorch, name)
    if backend == "torch":
        x, d, y = (torch.from_numpy(v) for v in (x, d, y))
    got = np.asarray(kernel(x, d, y), dtype=np.float64)
    err = ulp_errors(got, ref, np.float64)
    assert err.max() <= 4.0, err


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_log1p_ratio_is_accurate_near_1_and_towards_the_pole(backend):
    """log(y/x) given s = (y - x)/x and the endpoints: log1p(s) near 1, where log(y/x)
    would keep an ulp of 1; log(y/x) for y << x, where 1 + s has lost s's digits."""
    import symkl.kernels.numpy as kn
    import symkl.kernels.torch as kt

    x = np.array([2.0, 2.0, 2.0, 3.0, 1e200, 7.0])
    y = np.array([2.0 * (1 + 1e-13), 2.0 * (1 - 1e-9), 0.03, 1e-290, 1e-100, 7.0])
    s = (y - x) / x
    got = kn.log1p_ratio(s, y, x) if backend == "numpy" else \
        kt.log1p_ratio(*(torch.tensor(a) for a in (s, y, x))).numpy()
    for g, yi, xi, si in zip(got, y, x, s):
        with mpmath.workdps(60):
            # the kernel's contract: log(1 + s) for the rounded s near 1, log(y/x) beyond
            ref = mpmath.log1p(mpmath.mpf(si)) if si >= -0.5 else mpmath.log(mpmath.mpf(yi) / mpmath.mpf(xi))
            if ref == 0:
                assert g == 0
                continue
            assert abs((g - ref) / ref) <= 2 * 2.0**-52, (g, ref)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_digamma_and_its_autograd_trigamma(backend):
    """psi to a few ulps away from its root (as torch's), and, on the torch side, autograd
    gives trigamma to ~1 ulp where torch's own polygamma(1, x) is off by ~5e-10."""
    import symkl.kernels.numpy as kn
    import symkl.kernels.torch as kt

    xs = np.array([1e-300, 1e-8, 0.01, 0.3, 1.0, 2.0, 3.0, 7.99, 8.0, 50.0, 1e5, 1e200])
    got = kn.digamma(xs) if backend == "numpy" else kt.digamma(torch.tensor(xs)).numpy()
    for x, g in zip(xs, got):
        ref = mpmath.digamma(mpmath.mpf(x))
        assert abs(g - ref) <= 4 * abs(ref) * 2.0**-52, (x, g, ref)
    # near the root the error is absolute, a few ulps of the terms (~2)
    root = 1.4616321449683622
    assert abs(float(kn.digamma(np.array(root)))) < 8 * 2.0**-52
    if backend == "torch":
        x = torch.tensor([0.05, 0.29, 0.8, 1.5, 2.1185, 7.0, 50.0], dtype=torch.float64, requires_grad=True)
        kt.digamma(x).sum().backward()
        for xi, gi in zip(x.detach().tolist(), x.grad.tolist()):
            ref = mpmath.psi(1, xi)
            assert abs(gi - ref) <= 4 * ref * 2.0**-52, (xi, gi, ref)


# ------------------------------------------------------ closed-form partials (backward)


@pytest.mark.parametrize("target", ["float64", "narrow"])
def test_digamma_increments_and_trigamma_accuracy(target: str) -> None:
    """The backward of lgamma_bregman: psi(x + d) - psi(x) and psi's Bregman divergence
    (both tiny differences of O(1) terms near d = 0, written with same-signed terms) and
    trigamma, against mpmath. float64: measured <= 0.8 ulp; NARROW (for float32 results)
    within 1e-9 relative."""
    tgt = f64.TARGETS[target]
    rng = np.random.default_rng(11)
    x = np.concatenate([[1e-3, 0.5, 3.0, 7.99, 8.0, 20.0, 1e5, 0.3], _loguniform(rng, 1e-3, 1e4, 40)])
    s = np.concatenate([[1e-9, -0.3, -2.5 / 3, 1e-12, -1e-6, 1.5, -0.1, -0.29999999 / 0.3],
                        rng.choice([-1, 1], 40) * _loguniform(rng, 1e-12, 0.9, 40)])
    d = s * x
    bregman, increment = pk.digamma_increments(knp._Numpy, x, d, target=tgt)
    trigamma = pk.trigamma(knp._Numpy, x, target=tgt)
    bound = 2 * 2.0**-52 if target == "float64" else 1e-9
    with mpmath.workdps(DIGITS):
        for i in range(len(x)):
            xi, di = mpmath.mpf(float(x[i])), mpmath.mpf(float(d[i]))
            inc = mpmath.digamma(xi + di) - mpmath.digamma(xi)
            tri = mpmath.psi(1, xi)
            for got, ref in ((increment[i], inc), (bregman[i], inc - di * tri), (trigamma[i], tri)):
                assert abs(got - ref) <= bound * abs(ref), (x[i], d[i], got, ref)


def _residual_partials_reference(x: float, *, d: float | None = None,
                                 y: float | None = None) -> tuple[mpmath.mpf, mpmath.mpf]:
    """phi''s Bregman divergence and increment from x to y (phi' = psi - log) at 80 digits;
    y = x + d exactly where d is given."""
    with mpmath.workdps(80):
        xm = mpmath.mpf(x)
        ym = xm + mpmath.mpf(d) if y is None else mpmath.mpf(y)
        increment = mpmath.digamma(ym) - mpmath.digamma(xm) - mpmath.log(ym / xm)
        return increment - (ym - xm) * (mpmath.psi(1, xm) - 1 / xm), increment

@pytest.mark.parametrize("target", ["float64", "narrow"])
def test_lgamma_residual_partials_accuracy(target: str) -> None:
    """The backward of lgamma_residual_bregman: phi'(y) - phi'(x) and phi''s Bregman
    divergence (phi' = psi - log), against mpmath, from small to 1e12 arguments. Taken as
    lgamma_bregman's partials minus xlogx_bregman's, they lost up to 1e-4 relative at
    x = 1e12 (the logarithms cancel); float64 measured <= 2.4e-15, NARROW <= 2.2e-9."""
    tgt = f64.TARGETS[target]
    rng = np.random.default_rng(3)
    x = np.concatenate([[1e-3, 0.5, 3.0, 7.99, 8.0, 20.0, 1e5, 0.3, 1e8, 1e12, 4.0, 1.0, 0.01, 2.0, 1e10, 1e-150],
                        _loguniform(rng, 1e-3, 1e8, 60)])
    s = np.concatenate([[1e-9, -0.3, -2.5 / 3, 1e-12, -1e-6, 1.5, -0.1, 2.0, 1e-3, -0.5, 99.0, 1e5, -0.999999,
                         1e3, -1 + 1e-12, 3.0], rng.choice([-1, 1], 60) * _loguniform(rng, 1e-12, 0.9, 60)])
    d = s * x
    bregman, increment, _ = pk.lgamma_residual_bregman(knp._Numpy, x, d, target=tgt)
    bound = 16 * 2.0**-52 if target == "float64" else 1e-8
    for i in range(len(x)):
        ref_bregman, ref_increment = _residual_partials_reference(float(x[i]), d=float(d[i]))
        for got, ref in ((increment[i], ref_increment), (bregman[i], ref_bregman)):
            assert abs(got - ref) <= bound * abs(ref), (x[i], d[i], got, ref)


def test_lgamma_residual_partials_at_the_ends_of_the_range() -> None:
    """Subnormal and huge arguments: -inf where psi(y) overflows (y = 1e-310), exact where
    the shift terms dominate, 0 where the value itself is +inf (|d/x| overflows), never NaN."""
    x = np.array([1e-310, 5e-324, 1e300, 1e300, 7.0, 1e308, 0.5])
    y = np.array([1.0, 1e10, 1e-300, 1.0, 1e-310, 7.0, 1.7e308])
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        for target in f64.TARGETS.values():
            bregman, increment, _ = pk.lgamma_residual_bregman(knp._Numpy, x, y - x, y, target=target)
            for got in (bregman, increment):
                assert not np.isnan(got).any()
                np.testing.assert_array_equal(got[[0, 1, 6]], 0.0)
                assert got[4] == -np.inf
                assert got[2] == pytest.approx(-1e300, rel=1e-15)  # psi(1e-300) = -1e300 - gamma
            for i in (3, 5):
                ref_bregman, ref_increment = _residual_partials_reference(float(x[i]), y=float(y[i]))
                assert increment[i] == pytest.approx(float(ref_increment), rel=1e-14)
                assert bregman[i] == pytest.approx(float(ref_bregman), rel=1e-14)


def test_poisson_entropy_derivative_accuracy() -> None:
    """dH/drate = E[log((X + 1)/rate)] over the direct range, the series' derivative above:
    within 1e-13 relative (the sum's terms have both signs: ~40 ulp at rate ~ 20-40)."""
    rates = np.array([1e-300, 1e-5, 0.3, 0.999, 1.0, 5.0, 19.9, 20.1, 39.9, 40.0, 40.1, 300.0, 1e6])
    (got,) = pk.poisson_entropy(knp._Numpy, rates)
    with mpmath.workdps(40):
        for r, g in zip(rates, got):
            rate = mpmath.mpf(float(r))
            lo, hi = max(0, int(r - 40 * r**0.5 - 50)), int(r + 40 * r**0.5 + 60)
            ref = mpmath.fsum(mpmath.exp(k * mpmath.log(rate) - rate - mpmath.loggamma(k + 1))
                              * mpmath.log((k + 1) / rate) for k in range(lo, hi))
            assert abs(g - ref) <= 1e-13 * abs(ref), (r, g, ref)


class _SavedTensorCounter:
    def __init__(self) -> None:
        self.count = 0

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        self.count += 1
        return t


def test_backward_saves_inputs_not_intermediates() -> None:
    """Each kernel is an autograd Function that saves its inputs and evaluates closed-form
    partials in backward: the float64 Gamma KL's graph holds a handful of tensors (it held
    hundreds when autograd differentiated the kernels' code: ~13 kB per element)."""
    from symkl.generated import torch_functions as gen

    args = [torch.rand(1000, dtype=torch.float64).add_(0.5).requires_grad_() for _ in range(4)]
    counter = _SavedTensorCounter()
    with torch.autograd.graph.saved_tensors_hooks(counter.pack, lambda t: t):
        out = gen.kl_gamma_gamma(*args)
    assert counter.count <= 16, counter.count
    grads = torch.autograd.grad(out.sum(), args)
    assert all(torch.isfinite(g).all() for g in grads)


def test_second_derivatives_differentiate_the_backward() -> None:
    """The backward is plain torch code: a Hessian-vector product works and matches
    mpmath (d2/dd2 of B_lnGamma(x, d) = trigamma(x + d))."""
    x = torch.tensor([0.7, 3.0, 12.0], dtype=torch.float64, requires_grad=True)
    d = torch.tensor([0.2, -1.0, 1e-6], dtype=torch.float64, requires_grad=True)
    (g_d,) = torch.autograd.grad(ktorch.lgamma_bregman(x, d).sum(), d, create_graph=True)
    (h_dd,) = torch.autograd.grad(g_d.sum(), d)
    for xi, di, hi in zip(x.tolist(), d.tolist(), h_dd.tolist()):
        assert hi == pytest.approx(float(mpmath.psi(1, mpmath.mpf(xi) + mpmath.mpf(di))), rel=1e-13)


# ---------------------------------------------------------------------- Poisson entropy


def _poisson_entropy_reference(rate: float) -> mpmath.mpf:
    """-sum p_k log p_k summed directly at 40 digits over the window where the pmf lives."""
    with mpmath.workdps(40):
        r = mpmath.mpf(rate)
        lo, hi = max(0, int(rate - 40 * rate**0.5 - 50)), int(rate + 40 * rate**0.5 + 60)
        total = mpmath.mpf(0)
        for k in range(lo, hi):
            log_p = k * mpmath.log(r) - r - mpmath.loggamma(k + 1)
            total -= mpmath.exp(log_p) * log_p
        return total


def _poisson_rates() -> np.ndarray:
    rng = np.random.default_rng(7)
    edges = [1e-300, 1e-20, 1e-5, 0.003, 0.999, 1.0, 1.001, 19.99, 20.0, 20.01, 39.999, 40.0,
             40.001, 2000.0]
    return np.concatenate([edges, _loguniform(rng, 1e-3, 300.0, 60)])


@functools.lru_cache(maxsize=None)
def _poisson_grid() -> tuple[np.ndarray, list[mpmath.mpf]]:
    rates = _poisson_rates()
    return rates, [_poisson_entropy_reference(float(r)) for r in rates]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
def test_poisson_entropy_accuracy(backend: str, dtype: type) -> None:
    rates, ref = _poisson_grid()
    x = rates.astype(dtype)
    if dtype is np.float32:  # the reference is on the float64 values; use float32-exact ones
        keep = x.astype(np.float64) == rates
        x, ref = x[keep], [r for r, k in zip(ref, keep) if k]
        assert len(x) >= 3
    got = (knp.poisson_entropy(x) if backend == "numpy"
           else ktorch.poisson_entropy(torch.from_numpy(x)).numpy())
    assert got.dtype == dtype and (got > 0).all()
    err = ulp_errors(got, ref, dtype)
    # measured: float64 1.6 ulp (the positive terms -p_k log p_k with Loader's split of
    # -log p_k, and the asymptotic series above rate 40), float32 <= 0.5
    assert err.max() <= (4.0 if dtype is np.float64 else ULP_BOUND_FLOAT32), (err.max(), x[np.argmax(err)])


def test_poisson_entropy_conventions_and_gradients() -> None:
    assert knp.poisson_entropy(0.0) == 0.0
    huge = [1e6, 1e30, 1e300]
    with mpmath.workdps(40):  # three terms of the asymptotic series: the rest is < 1e-19
        ref = [mpmath.log(2 * mpmath.pi * mpmath.e * r) / 2 - 1 / (12 * mpmath.mpf(r)) - 1 / (24 * mpmath.mpf(r) ** 2)
               for r in huge]
    got = ktorch.poisson_entropy(torch.tensor(huge, dtype=torch.float64)).numpy()
    assert ulp_errors(got, ref, np.float64).max() <= 1.0
    # gradcheck's finite differences step by 1e-6: keep every rate above that
    rate = torch.tensor([1e-3, 0.3, 19.9, 20.1, 39.9, 40.1, 1e4], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ktorch.poisson_entropy, (rate,))
    rate = torch.tensor([1e-300, 1e-30, 0.3, 40.0, 1e30], dtype=torch.float64, requires_grad=True)
    # dH/drate = E[log(rate) - log x ...]: finite and positive (entropy grows with the rate)
    (grad,) = torch.autograd.grad(ktorch.poisson_entropy(rate).sum(), rate)
    assert torch.isfinite(grad).all() and (grad > 0).all()


def test_poisson_entropy_series() -> None:
    c = f64.poisson_entropy_series(4)
    assert c[:3] == (Fraction(-1, 12), Fraction(-1, 24), Fraction(-19, 360))  # Evans and Boersma 1988
    # The whole series the kernel uses, against the direct sum where the kernel switches to it.
    for rate in (40.0, 60.0, 150.0):
        with mpmath.workdps(40):
            r = mpmath.mpf(rate)
            series = mpmath.log(2 * mpmath.pi * mpmath.e * r) / 2 + mpmath.fsum(
                mpmath.mpf(ck.numerator) / ck.denominator / r ** (k + 1)
                for k, ck in enumerate(f64.poisson_entropy_series(f64.FLOAT64.poisson_series_terms)))
            exact = _poisson_entropy_reference(rate)
            assert abs(series - exact) / exact < 3e-17, (rate, mpmath.nstr(series - exact, 3))


# ------------------------------------------------------------ lnGamma residual, products


@pytest.mark.parametrize(("x", "y"), [("0.3", "5"), ("2.5", "2.6"), ("1e-3", "7"), ("7", "1e-3"),
                                      ("1479", "274"), ("3", "100")])
def test_lgamma_residual_shift_identity(x: str, y: str) -> None:
    """The telescoped shift of lgamma_residual_bregman's docstring: with phi = lnGamma -
    y log y + y, B_phi(x, y) = B_phi(x + n, y + n) + sum_{j<n} (y + j + 1) h(v_j),
    v_j = d/((x + j)(y + j + 1)), and every v_j with j >= 1 inside the near series' range."""
    with mpmath.workdps(40):
        x, y = mpmath.mpf(x), mpmath.mpf(y)
        d, n = y - x, f64.SHIFT

        def bregman(a: mpmath.mpf, b: mpmath.mpf) -> mpmath.mpf:
            def phi(t: mpmath.mpf) -> mpmath.mpf:
                return mpmath.loggamma(t) - t * mpmath.log(t) + t
            return phi(b) - phi(a) - (b - a) * (mpmath.digamma(a) - mpmath.log(a))

        v = [d / ((x + j) * (y + j + 1)) for j in range(n)]
        shifted = bregman(x + n, y + n) + sum((y + j + 1) * (v[j] - mpmath.log1p(v[j])) for j in range(n))
        assert abs(shifted - bregman(x, y)) <= mpmath.mpf(10) ** -35 * bregman(x, y)
        assert all(-0.5 < vj < 1 for vj in v[1:])


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_product_difference_is_accurate_where_products_cancel(backend: str) -> None:
    """a b - c e within 1 ulp of the result when the products agree to 1e-3 .. 1e-15, for
    factors 1e-30 .. 1e30 and beyond 2**500 (scaled before the splits); float32 operands
    multiply exactly in float64."""
    rng = np.random.default_rng(5)
    a, b = _loguniform(rng, 1e-30, 1e30, 300), _loguniform(rng, 1e-30, 1e30, 300)
    rel = _loguniform(rng, 1e-15, 1e-3, 300) * rng.choice([-1.0, 1.0], 300)
    c, e = a * (1 + rel), b * (1 - rel / 3)
    a = np.concatenate([a, [1e300, 3.0, 1e-200]])
    b = np.concatenate([b, [1e-100, 1e303, 1e250]])
    c = np.concatenate([c, [1e300 * (1 + 1e-12), 3.0 * (1 + 1e-15), 1e-200]])
    e = np.concatenate([e, [1e-100, 1e303 * (1 - 1e-13), 1e250 * (1 + 1e-12)]])
    with mpmath.workdps(DIGITS):
        ref = [mpmath.mpf(p) * mpmath.mpf(q) - mpmath.mpf(r) * mpmath.mpf(t)
               for p, q, r, t in zip(a.tolist(), b.tolist(), c.tolist(), e.tolist())]
    for dtype in DTYPES:
        args = [v.astype(dtype) for v in (a, b, c, e)] if dtype is np.float64 else None
        if dtype is np.float32:  # the float32 case: inputs cast, the reference on the cast values
            keep = (a < 1e9) & (b < 1e9) & (a > 1e-9) & (b > 1e-9)
            args = [v[keep].astype(dtype) for v in (a, b, c, e)]
            with mpmath.workdps(DIGITS):
                ref32 = [mpmath.mpf(float(p)) * mpmath.mpf(float(q)) - mpmath.mpf(float(r)) * mpmath.mpf(float(t))
                         for p, q, r, t in zip(*(v.tolist() for v in args))]
        if backend == "torch":
            got = ktorch.product_difference(*(torch.from_numpy(v) for v in args)).numpy()
        else:
            got = knp.product_difference(*args)
        err = ulp_errors(got, ref if dtype is np.float64 else ref32, dtype)
        assert err.max() <= (1.0 if dtype is np.float64 else 0.5), f"{dtype.__name__}: {err.max():.2f} ulp"

