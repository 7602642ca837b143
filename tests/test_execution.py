"""How symkl.torch runs generated formulas: float64 evaluation, narrow targets, fusion."""

from __future__ import annotations

import mpmath
import pytest
import torch
import torch.distributions as td

import symkl.torch as st
from symkl.kernels import linalg_torch
from symkl.torch import _execution


@pytest.fixture
def mode():
    previous = _execution._state["mode"]
    yield _execution.set_compile_mode
    _execution._state["mode"] = previous


def test_mode_is_validated(mode) -> None:
    with pytest.raises(ValueError, match="'auto', 'always', 'never'"):
        mode("sometimes")
    mode("never")
    assert st.compile_mode() == "never"


def test_float32_is_float64_rounded_once(mode) -> None:
    # The whole formula runs in float64: even where float32 arithmetic would overflow
    # (|loc_p - loc_q| / scale_p = 1e60 for Laplace), the float32 result is the float64
    # one rounded.
    mode("never")
    args64 = [torch.tensor(v, dtype=torch.float64) for v in (0.0, 1e-30, 1e30, 1e30)]
    args32 = [a.float() for a in args64]
    out32 = st.functional.kl_laplace_laplace(*args32, validate=False)
    assert out32.dtype == torch.float32 and torch.isfinite(out32)
    # KL = |dloc|/scale_q + scale_p/scale_q exp(-|dloc|/scale_p) + log(scale_q/scale_p) - 1
    with mpmath.workdps(40):
        p32 = [mpmath.mpf(float(a)) for a in args32]
        exact = abs(p32[0] - p32[2]) / p32[3] + mpmath.log(p32[3] / p32[1]) - 1
    assert float(out32) == pytest.approx(float(exact), rel=2**-24)


def test_narrow_kernels_serve_float32_and_match_float64(mode) -> None:
    mode("never")
    g = torch.Generator().manual_seed(3)
    a = [torch.rand(50, dtype=torch.float64, generator=g) * 5 + 0.1 for _ in range(4)]
    a[2] = a[0] * (1 + 1e-6)  # near-equal concentrations
    full = st.functional.kl_gamma_gamma(*[x.float().double() for x in a], validate=False)
    narrow = st.functional.kl_gamma_gamma(*[x.float() for x in a], validate=False)
    assert narrow.dtype == torch.float32
    # both from float32 inputs: the narrow result is the float64 one within float32 rounding
    assert torch.allclose(narrow.double(), full, rtol=2**-23, atol=0)


def test_auto_compiles_large_inputs_only_and_lgamma_with_its_options() -> None:
    small = [torch.ones(3)]
    big64 = [torch.ones(1 << 17, dtype=torch.float64)]
    from symkl.generated import torch_functions as gen

    if _execution.compile_mode() != "auto":
        pytest.skip("SYMKL_COMPILE overrides the default")
    assert not _execution._should_fuse("kl_normal_normal", gen.kl_normal_normal, small, narrow=True)
    assert _execution._should_fuse("kl_normal_normal", gen.kl_normal_normal, big64, narrow=False)
    assert _execution._should_fuse("kl_gamma_gamma", gen.kl_gamma_gamma, big64, narrow=False)
    # The Poisson entropy's 112-term loop stays eager (its unrolled graph compiles for minutes).
    assert not _execution._should_fuse("entropy_poisson", gen.entropy_poisson, big64, narrow=False)
    assert not _execution._should_fuse("cross_entropy_poisson_poisson", gen.cross_entropy_poisson_poisson,
                                       big64 * 2, narrow=False)
    # lnGamma's graph compiles with buffers read twice materialised (minutes -> ~1 minute).
    # every compiled function: no fused multiply-adds (the kernels' exact differences need it)
    common = {**_execution.COMMON_INDUCTOR_OPTIONS, "emulate_precision_casts": True}
    assert _execution._inductor_options(gen.kl_gamma_gamma) == {**common, "realize_reads_threshold": 2}
    assert _execution._inductor_options(gen.kl_normal_normal) == common


def test_compiled_path_matches_eager_and_keeps_validate_args(mode) -> None:
    torch._dynamo.reset()
    previous = td.Distribution._validate_args
    g = torch.Generator().manual_seed(0)
    args = [torch.randn(1000, dtype=torch.float64, generator=g), torch.rand(1000, dtype=torch.float64, generator=g) + 0.1,
            torch.randn(1000, dtype=torch.float64, generator=g), torch.rand(1000, dtype=torch.float64, generator=g) + 0.1]
    try:
        td.Distribution.set_default_validate_args(True)
        mode("never")
        eager = st.functional.kl_normal_normal(*args)
        mode("always")
        fused = st.functional.kl_normal_normal(*args)
        assert td.Distribution._validate_args is True  # dynamo's first call did not switch it off
        assert ("kl_normal_normal", False, False) in _execution._compiled
        # inductor's vectorised log (SLEEF) and glibc's differ by an ulp or so
        torch.testing.assert_close(fused, eager, rtol=8 * 2**-52, atol=0)
    finally:
        td.Distribution.set_default_validate_args(previous)


def test_compiled_path_with_gradients_one_graph_for_all_sizes(mode) -> None:
    """With gradients the fused path computes each kernel's partials next to its value and
    attaches them (Laplace: two kernels in one graph; as autograd Functions, dynamo could
    not lift their constants under dynamic shapes): gradients equal eager's, a second batch
    size reuses the graph, and a second derivative is refused, not wrong."""
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(5)
    counters = torch._dynamo.utils.counters
    counters.clear()
    for n in (1000, 1500):
        args = [torch.randn(n, dtype=torch.float64, generator=g), torch.rand(n, dtype=torch.float64, generator=g) + 0.1,
                torch.randn(n, dtype=torch.float64, generator=g), torch.rand(n, dtype=torch.float64, generator=g) + 0.1]
        grads = {}
        for m in ("never", "always"):
            mode(m)
            leaves = [a.clone().requires_grad_() for a in args]
            out = st.functional.kl_laplace_laplace(*leaves, validate=False)
            grads[m] = (out, torch.autograd.grad(out.sum(), leaves))
        torch.testing.assert_close(grads["always"][0], grads["never"][0], rtol=16 * 2**-52, atol=0)
        for fused, eager in zip(grads["always"][1], grads["never"][1]):
            # SLEEF vs glibc logarithms, amplified where a gradient is a small sum of terms
            torch.testing.assert_close(fused, eager, rtol=1e-12, atol=1e-15)
    assert ("kl_laplace_laplace", False, True) in _execution._compiled
    assert "kl_laplace_laplace" not in _execution._failed
    assert counters["stats"]["unique_graphs"] == 1, dict(counters["stats"])
    # first derivatives only (torch refuses create_graph on this compiled backward; symkl's
    # attached partials would refuse the second derivative too)
    leaves = [a.clone().requires_grad_() for a in args]
    with pytest.raises(RuntimeError, match="create_graph|set_compile_mode|double backward"):
        (g0, *_) = torch.autograd.grad(st.functional.kl_laplace_laplace(*leaves, validate=False).sum(), leaves,
                                       create_graph=True)
        torch.autograd.grad(g0.sum(), leaves[0])


@pytest.mark.parametrize("same_tensor_for_p_and_q", [False, True])
def test_attached_partials_trace_in_one_graph_for_every_kernel(same_tensor_for_p_and_q: bool) -> None:
    """Every kernel of the Gamma, Beta and Dirichlet KLs (lnGamma residual, y log y, exact
    product differences, whose partial d/da = b is an input) traces into one graph with
    attached partials, also when P's and Q's parameters are the same tensor: dynamo rejects an
    autograd Function whose inputs repeat a tensor. (The "eager" backend: no inductor compile.)"""
    from symkl.generated import torch_functions as gen
    from symkl.kernels import torch as kernels_torch

    g = torch.Generator().manual_seed(9)
    for name, k in (("kl_gamma_gamma", 4), ("kl_beta_beta", 4), ("kl_dirichlet_dirichlet", 2)):
        torch._dynamo.reset()
        shape = (50, 3) if name == "kl_dirichlet_dirichlet" else (50,)
        args = [torch.rand(shape, dtype=torch.float64, generator=g) + 0.5 for _ in range(k)]
        if same_tensor_for_p_and_q:
            args[k // 2:] = args[:k // 2]
        leaves = list({id(a): a.requires_grad_() for a in args}.values())
        formula = getattr(gen, name)

        def run(*xs: torch.Tensor) -> torch.Tensor:
            with kernels_torch.partials_in_forward():
                return formula(*xs)

        compiled = torch.compile(run, fullgraph=True, backend="eager", dynamic=True)
        fused = compiled(*args)
        torch.testing.assert_close(fused, formula(*args), rtol=0, atol=0)
        expected = torch.autograd.grad(formula(*args).sum(), leaves)
        for got, want in zip(torch.autograd.grad(fused.sum(), leaves), expected):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


def test_compile_failure_falls_back_with_one_warning(mode, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    mode("always")
    monkeypatch.setattr(_execution, "_compiled", {("kl_exponential_exponential", False, False): broken})
    monkeypatch.setattr(_execution, "_failed", set())
    rate = torch.tensor([1.0, 2.0], dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="torch.compile failed for kl_exponential_exponential"):
        out = st.functional.kl_exponential_exponential(rate, rate * 2)
    expected = torch.log(torch.tensor(0.5, dtype=torch.float64)) + 1  # log(rp/rq) + rq/rp - 1
    torch.testing.assert_close(out, expected.expand(2), rtol=1e-15, atol=0)
    assert "kl_exponential_exponential" in _execution._failed
    # a genuine input error is not mistaken for a compiler failure
    with pytest.raises(RuntimeError, match="size"):
        st.functional.kl_exponential_exponential(torch.ones(2), torch.ones(3), validate=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_normal_kl_where_log_of_a_ratio_near_one_would_cancel(dtype, mode) -> None:
    """Scale ratios 1 + 1e-5 .. 1 + 1e-3: where h(s) = s - log(1 + s) ~ s^2/2 meets a log of
    a ratio near 1. A log_ratio with an absolute error of an ulp of 1 cost 142 ULP in float32
    here; now <= 0.5 ULP (float32, rounded once) and <= 4 ULP (float64)."""
    mode("never")
    g = torch.Generator().manual_seed(7)
    n = 300
    loc_p = torch.randn(n, dtype=torch.float64, generator=g)
    scale_p = torch.rand(n, dtype=torch.float64, generator=g) * 2 + 0.3
    rel = 10 ** (torch.rand(n, dtype=torch.float64, generator=g) * 2 - 5)
    sign = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).double()
    args = [loc_p, scale_p, loc_p + rel * 1e-2 * sign, scale_p * (1 + rel * sign)]
    args = [a.to(dtype) for a in args]
    got = st.functional.kl_normal_normal(*args, validate=False)
    worst = 0.0
    with mpmath.workdps(50):
        for i in range(n):
            mp, sp_, mq, sq = (mpmath.mpf(float(a[i])) for a in args)
            ref = mpmath.log(sq / sp_) + (sp_**2 + (mp - mq) ** 2) / (2 * sq**2) - mpmath.mpf(1) / 2
            spacing = float(torch.finfo(dtype).eps) * 2.0 ** mpmath.floor(mpmath.log(abs(ref), 2))
            worst = max(worst, float(abs(mpmath.mpf(float(got[i])) - ref)) / spacing)
    assert worst <= (0.51 if dtype == torch.float32 else 4.0), worst


_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("device", [pytest.param("cpu", marks=pytest.mark.slow),  # minutes of compiling
                                    pytest.param("cuda", marks=[pytest.mark.cuda, _CUDA])])
@pytest.mark.parametrize("family", ["gamma", "beta"])
def test_compiled_code_keeps_the_digits_of_near_equal_float64_kl(family: str, device: str, mode) -> None:
    # Contracted into fused multiply-adds (Triton's default), the float64 Gamma and Beta KL
    # lost every digit at relative parameter differences of 1e-12 (5e11 ULP on an H200);
    # on the CPU inductor compiles with -ffp-contract=off, which this guards too.
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(7)
    p = [torch.rand(4096, dtype=torch.float64, generator=g) * 5 + 0.2 for _ in range(2)]
    signs = [torch.randint(0, 2, (4096,), generator=g) * 2.0 - 1 for _ in range(2)]
    args = [*p, *(x * (1 + 1e-12 * s) for x, s in zip(p, signs))]
    fn = getattr(st.functional, f"kl_{family}_{family}")
    mode("never")
    eager = fn(*args, validate=False)  # CPU, eager: <= 16 ULP (docs/accuracy.md)
    mode("always")
    compiled = fn(*(a.to(device) for a in args), validate=False).cpu()
    assert f"kl_{family}_{family}" not in _execution._failed
    torch.testing.assert_close(compiled, eager, rtol=32 * 2**-52, atol=0)


def test_kernel_constants_are_traced_as_constants_not_per_call_inputs() -> None:
    # Lifted, each module-level float (58 in the float64 Gamma KL) was re-created as a tensor
    # on every call: a 100-element call cost 472 us instead of 58 us.
    from symkl.generated import torch_functions as gen

    def inputs_of_trace(config) -> list[str]:  # noqa: ANN001 - a context manager
        seen: list[str] = []

        def backend(gm, example_inputs):  # noqa: ANN001, ANN202 - dynamo's backend signature
            seen.extend(n.name for n in gm.graph.nodes if n.op == "placeholder")
            return gm.forward

        torch._dynamo.reset()
        x = [torch.rand(8, dtype=torch.float64) + 0.5 for _ in range(4)]
        with config:
            torch.compile(_execution._in_float64("kl_gamma_gamma", gen.kl_gamma_gamma, narrow=False),
                          backend=backend, fullgraph=True, dynamic=True)(*x, dtype=torch.float64)
        torch._dynamo.reset()
        return seen

    from contextlib import nullcontext

    assert len(inputs_of_trace(nullcontext())) > 20  # the default: constants lifted to inputs
    traced = inputs_of_trace(_execution._tracing_config())
    assert len(traced) <= 5, traced  # the four tensors (and a size)


def _bitwise_operators(path) -> list[str]:  # noqa: ANN001 - a Path
    import ast

    tree = ast.parse(path.read_text())
    annotations = [n.annotation for n in ast.walk(tree) if isinstance(n, (ast.arg, ast.AnnAssign)) and n.annotation]
    annotations += [n.returns for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.returns]
    in_annotation = {id(n) for a in annotations for n in ast.walk(a)}  # `Target | None`
    return [f"{path.name}:{node.lineno}" for node in ast.walk(tree)
            if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr))
            and id(node) not in in_annotation]


def test_compiled_code_combines_masks_with_selects_not_bitwise_operators() -> None:
    # Inductor's CPU code runs & and | of comparison masks ~10x slower than selects
    # (benchmarks/masks.py): the generated torch code and the kernels it compiles use neither.
    from pathlib import Path

    import symkl
    root = Path(symkl.__file__).parent
    files = [root / "generated" / "torch_functions.py", root / "kernels" / "_float64.py",
             root / "kernels" / "_partials.py", root / "kernels" / "linalg_torch.py"]
    assert [hit for f in files for hit in _bitwise_operators(f)] == []


@pytest.mark.skipif(not hasattr(torch.library, "register_vmap"), reason="custom operators need torch >= 2.5")
@pytest.mark.parametrize("keepdim", [False, True])
def test_sum_last_operator_matches_torch_sum_compiled_with_grad_and_vmap(keepdim: bool) -> None:
    from symkl.kernels.torch import sum_last

    x = torch.rand(7, 5, 10, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(7, 5, *([1] if keepdim else []), dtype=torch.float64)

    def loss(t: torch.Tensor) -> torch.Tensor:
        return (sum_last(t.exp(), keepdim=keepdim) * weights).sum()

    expected = torch.sum(x.detach().exp(), dim=-1, keepdim=keepdim)
    torch._dynamo.reset()
    graphs: list = []

    def backend(gm, example_inputs):  # noqa: ANN001, ANN202 - dynamo's backend signature
        graphs.append(gm)
        from torch._inductor.compile_fx import compile_fx
        return compile_fx(gm, example_inputs)

    compiled = torch.compile(lambda t: sum_last(t.exp(), keepdim=keepdim), backend=backend, fullgraph=True)
    torch.testing.assert_close(compiled(x.detach()), expected, rtol=1e-15, atol=0)
    assert any("symkl.sum_last" in str(n.target) for g in graphs for n in g.graph.nodes)
    (grad,) = torch.autograd.grad(torch.compile(loss, fullgraph=True)(x), x)
    torch.testing.assert_close(grad, x.detach().exp() * weights.reshape(7, 5, 1), rtol=1e-15, atol=0)
    batched = torch.compile(torch.func.vmap(lambda t: sum_last(t, keepdim=keepdim), in_dims=1), fullgraph=True)
    torch.testing.assert_close(batched(x.detach()), torch.sum(x.detach().movedim(1, 0), dim=-1, keepdim=keepdim),
                               rtol=1e-15, atol=0)
    torch._dynamo.reset()


def test_compiled_path_gives_the_solves_the_layout_they_read() -> None:
    # torch's MultivariateNormal holds a column-major factor. LAPACK's solves (orders above
    # UNROLLED_SOLVE_MAX_ORDER) take it as it is (made contiguous, they copied it back: 10 ms
    # of copies in a 24 ms float64 MVN KL at 1e4 x 16 x 16); the unrolled solves read rows, so
    # smaller factors are made row-major.
    def factor(k: int) -> torch.Tensor:
        a = torch.randn(4, k, k, dtype=torch.float64)
        return td.MultivariateNormal(torch.zeros(4, k, dtype=torch.float64),
                                     covariance_matrix=a @ a.mT + torch.eye(k)).scale_tril

    small, large = factor(linalg_torch.UNROLLED_SOLVE_MAX_ORDER), factor(linalg_torch.UNROLLED_SOLVE_MAX_ORDER + 1)
    assert not small.is_contiguous() and not _execution._keeps_layout(small)
    assert not large.is_contiguous() and _execution._keeps_layout(large)
    assert _execution._keeps_layout(torch.zeros(4, 10, 3).mT)  # column-major, not a factor
    assert _execution._keeps_layout(torch.zeros(3).expand(4, 3))  # broadcast: not materialised
    assert not _execution._keeps_layout(torch.zeros(4, 2)[:, 0])  # a strided column: copied


@pytest.mark.parametrize("dim", [3, 17])  # unrolled forward substitution up to order 16, LAPACK above
def test_compiled_mvn_kl_with_unrolled_triangular_solves_matches_eager(dim: int, mode) -> None:
    g = torch.Generator().manual_seed(dim)

    def mvn() -> td.MultivariateNormal:
        a = torch.randn(64, dim, dim, dtype=torch.float64, generator=g)
        cov = a @ a.mT / dim + torch.eye(dim, dtype=torch.float64) / 2
        return td.MultivariateNormal(torch.randn(64, dim, dtype=torch.float64, generator=g), covariance_matrix=cov)

    p, q = mvn(), mvn()
    near = td.MultivariateNormal(p.loc * (1 + 1e-9), covariance_matrix=p.covariance_matrix * (1 + 1e-9))
    for other in (q, near, p):
        mode("never")
        eager = st.kl_divergence(p, other)
        mode("always")
        compiled = st.kl_divergence(p, other)
        torch.testing.assert_close(compiled, eager, rtol=1e-13, atol=0)
    assert "kl_mvn_mvn_tril" not in _execution._failed
    assert torch.equal(compiled, torch.zeros_like(compiled))  # KL(P || P) == 0 exactly


@pytest.mark.parametrize("dim", [3, 17])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_compiled_mvn_kl_gradients_match_eager_and_torch(dim: int, dtype: torch.dtype, mode) -> None:
    # Compiled with gradients, the Gaussian kernels compute their closed-form partials next
    # to their value (unrolled solves, no autograd through them); eagerly the partials come
    # from their autograd Functions' backward. Both must give torch's gradients (a typical
    # point, where torch's KL is accurate) on the factors' lower triangles, and 0 above.
    g = torch.Generator().manual_seed(dim)

    def leaves() -> list[torch.Tensor]:
        a = torch.randn(32, dim, dim, dtype=torch.float64, generator=g)
        chol = torch.linalg.cholesky(a @ a.mT / dim + torch.eye(dim, dtype=torch.float64) / 2)  # column-major
        loc = torch.randn(32, dim, dtype=torch.float64, generator=g)
        return [loc.to(dtype).requires_grad_(), chol.to(dtype).requires_grad_()]

    p, q = leaves(), leaves()

    def gradients(kl) -> list[torch.Tensor]:  # noqa: ANN001 - a KL of two distributions
        dists = [td.MultivariateNormal(loc, scale_tril=tril) for loc, tril in (p, q)]
        return list(torch.autograd.grad(kl(*dists).sum(), [*p, *q]))

    mode("never")
    eager = gradients(st.kl_divergence)
    mode("always")
    gradients(st.kl_divergence)  # compiles
    with torch.profiler.profile() as profile:
        compiled = gradients(st.kl_divergence)
    lapack_solves = [e for e in profile.events() if e.name == "aten::linalg_solve_triangular"]
    # up to order 16 every solve unrolls, forward and backward (LAPACK's: 6 per call, ~10 ms each)
    assert (len(lapack_solves) == 0) == (dim <= linalg_torch.UNROLLED_SOLVE_MAX_ORDER)
    reference = gradients(td.kl_divergence)
    tolerance = {torch.float64: 1e-12, torch.float32: 2e-5}[dtype]
    for got_compiled, got_eager, want in zip(compiled, eager, reference):
        assert got_compiled.dtype == dtype
        torch.testing.assert_close(got_compiled, got_eager, rtol=tolerance, atol=tolerance)
        torch.testing.assert_close(got_eager, want.tril() if want.dim() == 3 else want, rtol=tolerance, atol=tolerance)
    for tril_grad in (compiled[1], compiled[3], eager[1], eager[3]):
        assert torch.equal(tril_grad.triu(1), torch.zeros_like(tril_grad))
    assert "kl_mvn_mvn_tril" not in _execution._failed


def test_unrolled_triangular_solve_matches_lapack() -> None:
    from symkl.kernels.linalg_torch import solve_lower

    g = torch.Generator().manual_seed(0)
    a = torch.randn(50, 16, 16, dtype=torch.float64, generator=g)
    chol = torch.linalg.cholesky(a @ a.mT + 16 * torch.eye(16, dtype=torch.float64))
    rhs = torch.randn(50, 16, 5, dtype=torch.float64, generator=g)
    torch._dynamo.reset()
    got = torch.compile(solve_lower, fullgraph=True)(chol, rhs)
    torch.testing.assert_close(got, torch.linalg.solve_triangular(chol, rhs, upper=False), rtol=1e-14, atol=1e-15)


def test_cholesky_kernel_is_torchs_factor_laid_out_row_major() -> None:
    # The unrolled solves read L row by row: a row-major factor keeps those reads contiguous.
    from symkl.kernels.linalg_torch import cholesky, scale_tril_from_precision

    g = torch.Generator().manual_seed(1)
    a = torch.randn(40, 6, 6, dtype=torch.float64, generator=g)
    cov = a @ a.mT + torch.eye(6, dtype=torch.float64)
    chol = cholesky(cov)
    assert chol.is_contiguous()
    torch.testing.assert_close(chol, torch.linalg.cholesky(cov), rtol=1e-14, atol=1e-15)
    assert torch.equal(chol, chol.tril())
    torch.testing.assert_close(scale_tril_from_precision(torch.linalg.inv(cov)), chol, rtol=1e-12, atol=1e-14)
    torch._dynamo.reset()
    torch.testing.assert_close(torch.compile(cholesky, fullgraph=True)(cov), chol, rtol=1e-15, atol=0)
    cov[7, 2, 2] = -1.0  # not positive definite: torch's error, naming the batch element
    with pytest.raises(torch.linalg.LinAlgError, match=r"Batch element 7"):
        cholesky(cov)
