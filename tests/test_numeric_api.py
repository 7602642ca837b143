"""symkl.numpy, symkl.torch.functional and symkl.torch.kl_divergence: values, dispatch,
broadcasting, dtype, autograd, validation and torch's registry."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
import torch.distributions as td

import symkl.numpy as snp
import symkl.torch as st
from symkl.distributions import REGISTRY

F64 = torch.float64


def _dist(family: str, rng: np.random.Generator, batch=(3,)) -> td.Distribution:
    values = REGISTRY[family].sample_parameters(rng, batch=batch, dim=3)
    return REGISTRY[family].to_torch({k: torch.tensor(v, dtype=F64) for k, v in values.items()})


# torch.distributions is accurate for these pairs at well-separated parameters.
TORCH_HAS = [pair for pair in st.supported("kl")
             if (type(_dist(pair[0], np.random.default_rng(0))), type(_dist(pair[1], np.random.default_rng(0))))
             in td.kl._KL_REGISTRY]


@pytest.mark.parametrize("p,q", TORCH_HAS, ids=["-".join(x) for x in TORCH_HAS])
def test_kl_divergence_agrees_with_torch_where_torch_is_accurate(p: str, q: str) -> None:
    rng = np.random.default_rng(sum(map(ord, p + q)))
    P, Q = _dist(p, rng), _dist(q, rng)
    if (p, q) == ("uniform", "uniform"):
        Q = td.Uniform(P.low - 0.5, P.high + 0.25)
    if (p, q) == ("beta", "uniform"):
        Q = td.Uniform(torch.full((3,), -0.5, dtype=F64), torch.full((3,), 1.5, dtype=F64))
    ours, theirs = st.kl_divergence(P, Q), td.kl_divergence(P, Q)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("family", sorted(f for (f,) in st.supported("entropy")))
def test_entropy_agrees_with_torch(family: str) -> None:
    P = _dist(family, np.random.default_rng(5))
    try:
        theirs = P.entropy()
    except NotImplementedError:
        pytest.skip(f"torch has no entropy for {family}")
    torch.testing.assert_close(st.entropy(P), theirs, rtol=1e-10, atol=1e-12)


def test_cross_entropy_is_kl_plus_entropy() -> None:
    rng = np.random.default_rng(9)
    P, Q = _dist("gamma", rng), _dist("gamma", rng)
    torch.testing.assert_close(st.cross_entropy(P, Q), st.kl_divergence(P, Q) + st.entropy(P))


def test_parametrisations_mvn_and_logits() -> None:
    L = torch.tensor([[1.0, 0.0], [0.5, 2.0]], dtype=F64)
    cov = L @ L.T
    a = td.MultivariateNormal(torch.zeros(2, dtype=F64), scale_tril=L)
    b = td.MultivariateNormal(torch.zeros(2, dtype=F64), precision_matrix=torch.linalg.inv(cov))
    q = td.MultivariateNormal(torch.ones(2, dtype=F64), covariance_matrix=2 * cov)
    torch.testing.assert_close(st.kl_divergence(a, q), st.kl_divergence(b, q))
    torch.testing.assert_close(st.kl_divergence(a, q), td.kl_divergence(a, q))
    logits = torch.tensor([1.2, 0.3, -0.8], dtype=F64)
    ours = st.kl_divergence(td.Categorical(torch.tensor([0.7, 0.2, 0.1], dtype=F64)), td.Categorical(logits=logits))
    assert float(ours) == pytest.approx(0.01120007541698524, rel=1e-13)
    bern = st.kl_divergence(td.Bernoulli(logits=torch.tensor(0.3, dtype=F64)), td.Bernoulli(torch.tensor(0.4, dtype=F64)))
    torch.testing.assert_close(bern, td.kl_divergence(td.Bernoulli(logits=torch.tensor(0.3, dtype=F64)),
                                                      td.Bernoulli(torch.tensor(0.4, dtype=F64))))


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_mvn_from_scale_tril_is_read_without_forming_its_covariance(dtype) -> None:
    # torch computes covariance_matrix = L L^T on first access (a lazy property, with its
    # own autograd graph): symkl reads the factor the KL function takes and nothing else.
    g = torch.Generator().manual_seed(3)
    a = torch.randn(5, 4, 4, dtype=F64, generator=g)
    chol = torch.linalg.cholesky(a @ a.mT + torch.eye(4, dtype=F64)).to(dtype)
    p = td.MultivariateNormal(torch.zeros(5, 4, dtype=dtype), scale_tril=chol)
    q = td.MultivariateNormal(torch.ones(5, 4, dtype=dtype), scale_tril=chol.flip(0))
    got = st.kl_divergence(p, q)
    assert "covariance_matrix" not in vars(p) and "covariance_matrix" not in vars(q)
    torch.testing.assert_close(got, td.kl_divergence(p, q), rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=0)


def test_scale_tril_gradients_live_on_the_lower_triangle() -> None:
    # The upper entries of a Cholesky factor are not parameters: no gradient flows to them
    # (torch's own MVN KL gives P's upper entries one, and Q's none).
    g = torch.Generator().manual_seed(5)

    def factor() -> torch.Tensor:
        a = torch.randn(3, 4, 4, dtype=F64, generator=g)
        return torch.linalg.cholesky(a @ a.mT + torch.eye(4, dtype=F64)).requires_grad_()

    chol_p, chol_q = factor(), factor()
    locs = torch.randn(2, 3, 4, dtype=F64, generator=g)
    ours, theirs = [torch.autograd.grad(kl(td.MultivariateNormal(locs[0], scale_tril=chol_p),
                                           td.MultivariateNormal(locs[1], scale_tril=chol_q)).sum(), (chol_p, chol_q))
                    for kl in (st.kl_divergence, td.kl_divergence)]
    for mine, torchs in zip(ours, theirs):
        assert torch.equal(mine.triu(1), torch.zeros_like(mine))
        torch.testing.assert_close(mine.tril(), torchs.tril(), rtol=1e-12, atol=1e-14)
    grad_h = torch.autograd.grad(st.cross_entropy(td.MultivariateNormal(locs[0], scale_tril=chol_p),
                                                  td.MultivariateNormal(locs[1], scale_tril=chol_q)).sum(), chol_p)[0]
    assert torch.equal(grad_h.triu(1), torch.zeros_like(grad_h))


@pytest.mark.parametrize("built_from", ["precision_matrix", "mixed"])
def test_float32_mvn_is_rounded_once_in_every_parametrisation(built_from: str) -> None:
    # torch's float32 factor of a precision (or covariance) matrix cost up to 6 ULP (1.6 ULP
    # for covariance || scale_tril pairs) here; symkl factors the matrix itself in float64.
    g = torch.Generator().manual_seed(4)

    def spd() -> torch.Tensor:
        a = torch.randn(200, 6, 6, dtype=F64, generator=g)
        m = (a @ a.mT / 6 + torch.eye(6, dtype=F64) / 2).float()
        return (m + m.mT) / 2

    loc_p, loc_q = torch.randn(2, 200, 6, generator=g).unbind(0)
    if built_from == "precision_matrix":
        kw_p, kw_q = {"precision_matrix": spd()}, {"covariance_matrix": spd()}
    else:
        kw_p, kw_q = {"covariance_matrix": spd()}, {"scale_tril": torch.linalg.cholesky(spd().double()).float()}
    p32 = td.MultivariateNormal(loc_p.requires_grad_(), **kw_p)
    q32 = td.MultivariateNormal(loc_q, **kw_q)
    got = st.kl_divergence(p32, q32)
    exact = st.kl_divergence(  # the same float32 values, in float64
        td.MultivariateNormal(loc_p.detach().double(), **{k: v.double() for k, v in kw_p.items()}),
        td.MultivariateNormal(loc_q.double(), **{k: v.double() for k, v in kw_q.items()}))
    assert got.dtype == torch.float32
    ulp = (got.detach().double() - exact).abs() / torch.from_numpy(np.spacing(exact.float().numpy())).double()
    assert float(ulp.max()) <= 0.5 + 1e-6
    (grad,) = torch.autograd.grad(got.sum(), loc_p)
    assert torch.isfinite(grad).all()


def test_broadcasting_dtype_device_and_autograd() -> None:
    loc = torch.zeros(4, 1, requires_grad=True)
    P, Q = td.Normal(loc, torch.ones(4, 1)), td.Normal(torch.ones(5), 2.0)
    out = st.kl_divergence(P, Q)
    assert out.shape == (4, 5) and out.dtype == torch.float32
    out.sum().backward()
    torch.testing.assert_close(loc.grad, torch.full((4, 1), 5 * (0 - 1) / 4.0))


def test_unsupported_pair_names_it_and_lists_the_supported_ones() -> None:
    with pytest.raises(NotImplementedError, match=r"no kl for Gamma \|\| Beta; supported: .*gamma \|\| normal"):
        st.kl_divergence(td.Gamma(1.0, 1.0), td.Beta(1.0, 1.0))
    with pytest.raises(NotImplementedError, match="no family for Cauchy"):
        st.kl_divergence(td.Cauchy(0.0, 1.0), td.Normal(0.0, 1.0))


def test_register_is_idempotent_and_override_replaces_torch() -> None:
    before = dict(td.kl._KL_REGISTRY)
    try:
        assert st.register() == st.register()
        P = td.Gamma(torch.tensor(3.0, dtype=F64), torch.tensor(2.0, dtype=F64))
        Q = td.Gamma(torch.tensor(3.0, dtype=F64), torch.tensor(2.0 * (1 + 1e-8), dtype=F64))
        torch_value = float(td.kl_divergence(P, Q))
        installed = st.register(override=True)
        assert ("gamma", "gamma") in installed and st.register(override=True) == installed
        # Now torch's own entry point gives symkl's accurate value: 3/2 * delta^2 (1 + O(delta)).
        assert float(td.kl_divergence(P, Q)) == pytest.approx(1.5e-16, rel=1e-7)
        assert abs(torch_value - 1.5e-16) > 1e-17  # torch's own formula lost its digits
        # Independent pairs other than diagonal Normals still go to torch's rule.
        ind = td.Independent(td.Gamma(torch.ones(2), torch.ones(2)), 1)
        assert float(td.kl_divergence(ind, ind)) == 0.0
    finally:
        td.kl._KL_REGISTRY.clear()
        td.kl._KL_REGISTRY.update(before)
        td.kl._KL_MEMOIZE.clear()
        st._REGISTERED.clear()


# -- the array APIs --------------------------------------------------------------------------


def test_numpy_and_torch_functional_share_names_and_signatures() -> None:
    assert set(snp.__all__) == set(st.functional.__all__)
    for name in snp.__all__:
        assert inspect.signature(getattr(snp, name)) == inspect.signature(getattr(st.functional, name))
    assert list(inspect.signature(snp.kl_normal_normal).parameters) == [
        "loc_p", "scale_p", "loc_q", "scale_q", "validate"]


def test_numpy_broadcasts_like_a_ufunc_and_keeps_float32() -> None:
    out = snp.kl_normal_normal(np.zeros((2, 1)), 1.0, np.ones(3), 0.5)
    assert out.shape == (2, 3)
    assert float(out[0, 0]) == pytest.approx(2.8068528194400546, rel=1e-15)
    f32 = snp.kl_gamma_gamma(np.float32([1, 2]), np.float32(1), np.float32(1.5), np.float32(1))
    assert f32.dtype == np.float32
    assert snp.kl_categorical_categorical([[0.7, 0.2, 0.1]] * 2, [0.5, 0.3, 0.2]).shape == (2,)


@pytest.mark.parametrize("call,message", [
    (lambda: snp.kl_normal_normal(0.0, -1.0, 1.0, 0.5), r"'scale_p' must be > 0 \(finite\); got -1"),
    (lambda: snp.kl_normal_normal(0.0, 1.0, 1.0, np.nan), r"'scale_q' contains NaN"),
    (lambda: snp.kl_categorical_categorical([0.7, 0.2, 0.2], [0.5, 0.3, 0.2]), r"'probs_p' must be a probability vector"),
    (lambda: snp.kl_normal_normal([0.0, 1.0], 1.0, [1.0, 2.0, 3.0], 0.5), r"batch shapes do not broadcast \(loc_p: \(2,\)"),
    (lambda: snp.kl_mvn_mvn(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2)), r"event dimensions differ"),
    (lambda: snp.kl_uniform_uniform(1.0, 0.5, 0.0, 2.0), r"'high_p' must be a finite real number > low"),
    (lambda: snp.entropy_gamma(-1.0, 1.0), r"entropy_gamma: Gamma parameter 'concentration' must be > 0"),
])
def test_numpy_validation_names_parameter_and_constraint(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_validation_can_be_turned_off_and_torch_follows_validate_args() -> None:
    # Unchecked, an invalid scale gives whatever the formula gives (NaN here), not an error.
    with np.errstate(invalid="ignore"):
        assert np.shape(snp.kl_normal_normal(0.0, -1.0, 1.0, 0.5, validate=False)) == ()
    # (torch.compile switches torch's default off for the whole process: set it explicitly.)
    previous = td.Distribution._validate_args
    args = (torch.tensor(0.0), torch.tensor(-1.0), torch.tensor(1.0), torch.tensor(1.0))
    try:
        td.Distribution.set_default_validate_args(True)
        with pytest.raises(ValueError, match="'scale_p'"):
            st.functional.kl_normal_normal(*args)
        td.Distribution.set_default_validate_args(False)
        assert st.functional.kl_normal_normal(*args).shape == ()  # unchecked: no error
        with pytest.raises(ValueError, match="'scale_p'"):
            st.functional.kl_normal_normal(*args, validate=True)
    finally:
        td.Distribution.set_default_validate_args(previous)


def test_float32_softmax_passes_the_simplex_check() -> None:
    # A float32 softmax sums to 1 within float32 rounding (~6e-8 off here), which the
    # validation must accept: it once cast to float64 first and applied float64's tolerance.
    import torch.nn.functional as F

    from symkl.torch.functional import kl_categorical_categorical

    torch.manual_seed(0)
    p, q = F.softmax(torch.randn(64, 50), -1), F.softmax(torch.randn(64, 50), -1)
    got = kl_categorical_categorical(p, q, validate=True)
    assert got.dtype == torch.float32 and (got >= 0).all()
    ref = torch.distributions.kl_divergence(torch.distributions.Categorical(probs=p.double()),
                                            torch.distributions.Categorical(probs=q.double()))
    assert torch.allclose(got.double(), ref, rtol=1e-6)
    with pytest.raises(ValueError, match="probs_p"):
        kl_categorical_categorical(p * 1.001, q, validate=True)
