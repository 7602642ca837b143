"""Gaussian matrix kernels on Cholesky factors (torch): no inverse is ever formed.

``chol_*`` arguments are lower-triangular Cholesky factors with batch dimensions in front.

Autograd: the kernels of a KL or cross-entropy (:func:`mahalanobis_sq`,
:func:`trace_inv_mul`, :func:`neglogdet_bregman`) write their gradients in closed form, one
extra triangular solve each, the way symkl.kernels.torch's elementwise kernels do: eagerly as
an autograd Function's backward (differentiable again), and in symkl's compiled path with
gradients next to the value, so that the solves unroll there too. Recorded by autograd
instead, every solve of the forward cost two LAPACK solves in the backward, plus the
forward's, recomputed (KL of MVNs built from scale_tril, 1e4 x 16, forward+backward: float32
1.21 -> 0.53 of torch's time, float64 0.92 -> 0.33; docs/speed.md). Gradients reach the
factors' lower triangles only.
"""

from __future__ import annotations

from typing import Callable

import torch

from symkl.kernels import _float64
from symkl.kernels.torch import _Torch, attach_partials, attaching_partials, compiling_on_cpu, grad_times_partial

#: Triangular systems of up to this order are solved by unrolled substitution inside
#: torch.compile on the CPU (where autograd does not record the solve): inductor fuses the
#: k (k + 1) / 2 row updates over the batch, where LAPACK is called once per small matrix.
#: 1e4 systems of order 16 with 16 right-hand sides, float64, 2 cores: 6.5 ms -> 1.6 ms
#: (results within 1.3e-16 of LAPACK's); by back substitution with L^T, 7.7 ms -> 4.2 ms. With
#: 32 right-hand sides inductor's loop slows down tenfold (18 ms), so the kernels solve with
#: at most 16. Larger orders grow the graph (and the compile) quadratically.
UNROLLED_SOLVE_MAX_ORDER = 16


def cholesky(a: torch.Tensor) -> torch.Tensor:
    """The lower Cholesky factor L of A = L L^T (..., k, k), row-major.

    Computed as the transpose of the upper factor: torch.linalg.cholesky(A) hands LAPACK's
    column-major result back after zeroing its upper triangle with a strided tril (1e4 x 16
    x 16, float64, 2 cores: 6.1 ms, upper=True 4.5 ms), and a column-major L makes the
    unrolled solves below gather their rows (2.8 -> 6.9 ms compiled). The upper factor of a
    batch comes back column-major, so its transpose is row-major at no cost.
    """
    return torch.linalg.cholesky(a, upper=True).mT


def scale_tril_from_precision(precision: torch.Tensor) -> torch.Tensor:
    """The lower Cholesky factor L of P^-1 (L L^T = P^-1), as torch's MultivariateNormal
    computes it, without forming the inverse. With J the reversal of rows and columns,
    J P J = F F^T (Cholesky), so P = U U^T with U = J F J upper-triangular, and L = U^-T:
    one triangular solve of U^T (lower) against I."""
    flipped = torch.linalg.cholesky(torch.flip(precision, (-2, -1)))
    l_inv = torch.flip(flipped, (-2, -1)).mT
    eye = torch.eye(precision.shape[-1], dtype=precision.dtype, device=precision.device)
    return torch.linalg.solve_triangular(l_inv, eye, upper=False)


def unrolls_solves(chol: torch.Tensor) -> bool:
    """Whether symkl's compiled code solves with this factor (..., k, k) by unrolled
    substitution, which reads it by rows (on the CPU, k <= UNROLLED_SOLVE_MAX_ORDER; its
    gradients come from the kernels' closed-form partials, never through the solves)."""
    return chol.device.type == "cpu" and chol.shape[-1] <= UNROLLED_SOLVE_MAX_ORDER


def _unrolled(chol: torch.Tensor, rhs: torch.Tensor) -> bool:
    """Whether the triangular solves unroll (compiled for the CPU, no autograd through them)."""
    return (compiling_on_cpu(chol) and unrolls_solves(chol)
            and not (torch.is_grad_enabled() and (chol.requires_grad or rhs.requires_grad)))


def solve_lower(chol: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """L^-1 rhs for lower-triangular L (..., k, k) and rhs (..., k, m), batch shapes equal."""
    k = chol.shape[-1]
    if not _unrolled(chol, rhs):
        return torch.linalg.solve_triangular(chol, rhs, upper=False)
    rows: list[torch.Tensor] = []
    for i in range(k):  # x_i = (b_i - sum_{p<i} L_ip x_p) / L_ii, the sum in LAPACK's order
        row = rhs[..., i, :]
        for p in range(i):
            row = row - chol[..., i, p:p + 1] * rows[p]
        rows.append(row / chol[..., i, i:i + 1])
    return torch.stack(rows, dim=-2)


def solve_lower_transposed(chol: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """L^-T rhs for lower-triangular L (..., k, k) and rhs (..., k, m), batch shapes equal:
    back substitution with the transpose, unrolled where :func:`solve_lower` is."""
    k = chol.shape[-1]
    if not _unrolled(chol, rhs):
        return torch.linalg.solve_triangular(chol.mT, rhs, upper=True)
    rows: list[torch.Tensor] = [rhs[..., 0, :]] * k
    for i in reversed(range(k)):  # x_i = (b_i - sum_{p>i} L_pi x_p) / L_ii
        row = rhs[..., i, :]
        for p in range(i + 1, k):
            row = row - chol[..., p, i:i + 1] * rows[p]
        rows[i] = row / chol[..., i, i:i + 1]
    return torch.stack(rows, dim=-2)


def logdet(chol: torch.Tensor) -> torch.Tensor:
    """log det(L L^T) = 2 sum_i log L_ii."""
    return 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)


def tril(m: torch.Tensor, diagonal: int = 0) -> torch.Tensor:
    """torch.tril by a broadcast k x k mask: eager torch.tril on a batch of small matrices
    took 21 ms for 1e4 x 16 x 16 (a broadcast where: ~1 ms)."""
    k = m.shape[-1]
    return torch.where(torch.ones(k, k, dtype=torch.bool, device=m.device).tril(diagonal), m, 0.0)


def _trace_inv_mul(chol_a: torch.Tensor, chol_b: torch.Tensor,
                   partials: bool) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """|M|_F^2 with M = L_a^-1 L_b, and with ``partials`` its gradients: with V = L_a^-T M,
    d/dL_a = -2 tril(V M^T) and d/dL_b = 2 tril(V)."""
    m = solve_lower(chol_a, chol_b)
    value = m.pow(2).sum((-2, -1))
    if not partials:
        return value, ()
    v = solve_lower_transposed(chol_a, m)
    return value, (-2 * tril(v @ m.mT), 2 * tril(v))


def _neglogdet_bregman(chol_a: torch.Tensor, chol_b: torch.Tensor,
                       partials: bool) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """The value of :func:`neglogdet_bregman`, and with ``partials`` its gradients with
    respect to both factors' lower triangles.

    With D = L_b - L_a, N = L_a^-1 D and M = I + N, f = |M|_F^2 - k - 2 sum_i log M_ii, whose
    gradients 2 tril(L_a^-T M) - 2 diag(1/L_b) and 2 diag(1/L_a) - 2 tril(L_a^-T M M^T) lose
    their digits as L_b -> L_a (O(1) terms cancelling to 0). L_a^-T is upper-triangular, so
    tril(L_a^-T) = diag(1/L_a), and so is L_a^-T N^T, whose diagonal is N_ii / L_a,ii: with
    V = L_a^-T N (one solve),
        df/dL_b = 2 tril(V) + 2 diag(D_ii / (L_a,ii L_b,ii)),
        df/dL_a = -2 tril(V + V N^T) - 2 diag(N_ii / L_a,ii),
    small where D is, and exactly 0 when the factors are equal.
    """
    diff = chol_b - chol_a
    n = solve_lower(chol_a, diff)
    diag_a = torch.diagonal(chol_a, dim1=-2, dim2=-1)
    diag_b = torch.diagonal(chol_b, dim1=-2, dim2=-1)
    diag_d = torch.diagonal(diff, dim1=-2, dim2=-1)
    e = diag_d / diag_a
    s = e * (2 + e)
    # log(1 + s) = 2 log(L_b,ii / L_a,ii), exact even where 1 + s is not.
    h = _float64.neglog_bregman_split(_Torch, s, 2 * _float64.log_ratio(_Torch, diag_b, diag_a))
    value = h.sum(-1) + tril(n, diagonal=-1).pow(2).sum((-2, -1))
    if not partials:
        return value, ()
    v = solve_lower_transposed(chol_a, n)
    d_a = -2 * (tril(v + v @ n.mT) + torch.diag_embed(e / diag_a))  # N_ii = e_i
    d_b = 2 * (tril(v) + torch.diag_embed(diag_d / (diag_a * diag_b)))
    return value, (d_a, d_b)


def _mahalanobis_sq(chol: torch.Tensor, v: torch.Tensor,
                    partials: bool) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """|z|^2 with z = L^-1 v, and with ``partials`` its gradients: with w = L^-T z,
    d/dL = -2 tril(w z^T) and d/dv = 2 w."""
    z = solve_lower(chol, v.unsqueeze(-1))
    value = z.squeeze(-1).pow(2).sum(-1)
    if not partials:
        return value, ()
    w = solve_lower_transposed(chol, z)
    return value, (-2 * tril(w * z.mT), 2 * w.squeeze(-1))


def _differentiable(kernel: Callable[..., tuple[torch.Tensor, tuple[torch.Tensor, ...]]]
                    ) -> type[torch.autograd.Function]:
    """``kernel`` (a function of two tensors returning its value and, on request, its
    partials) as an autograd Function whose backward evaluates the partials from the saved
    inputs, in differentiable torch operations (so higher derivatives work), instead of
    autograd recording the solves: its backward solved twice per solve of the forward, with
    LAPACK, and the compiled graph recomputed the forward's solves as well."""

    class Kernel(torch.autograd.Function):
        generate_vmap_rule = True

        @staticmethod
        def forward(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return kernel(a, b, partials=False)[0]

        @staticmethod
        def setup_context(ctx, inputs, output):  # type: ignore[no-untyped-def]
            ctx.save_for_backward(*inputs)

        @staticmethod
        def backward(ctx, grad: torch.Tensor):  # type: ignore[no-untyped-def]
            _, partials = kernel(*ctx.saved_tensors, partials=True)
            return tuple(grad_times_partial(grad, p) if need else None for p, need in zip(partials, ctx.needs_input_grad))

    Kernel.__name__ = Kernel.__qualname__ = f"{kernel.__name__.lstrip('_')}_function"
    return Kernel


_FUNCTIONS = {kernel: _differentiable(kernel) for kernel in (_trace_inv_mul, _neglogdet_bregman, _mahalanobis_sq)}


def _apply(kernel: Callable[..., tuple[torch.Tensor, tuple[torch.Tensor, ...]]],
           a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if not (torch.is_grad_enabled() and (a.requires_grad or b.requires_grad)):
        return kernel(a, b, partials=False)[0]
    if attaching_partials():
        with torch.no_grad():  # value and partials in one compiled pass, no solve in the backward
            value, partials = kernel(a, b, partials=True)
        return attach_partials(value, partials, (a, b))
    return _FUNCTIONS[kernel].apply(a, b)


def mahalanobis_sq(chol: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """v^T (L L^T)^-1 v = |L^-1 v|^2, by one triangular solve; no gradient reaches L's upper
    entries."""
    batch = torch.broadcast_shapes(chol.shape[:-2], v.shape[:-1])
    return _apply(_mahalanobis_sq, chol.expand(*batch, *chol.shape[-2:]), v.expand(*batch, v.shape[-1]))


def trace_inv_mul(chol_a: torch.Tensor, chol_b: torch.Tensor) -> torch.Tensor:
    """tr(A^-1 B) = |L_a^-1 L_b|_F^2; no gradient reaches the factors' upper entries."""
    return _apply(_trace_inv_mul, *_broadcast_factors(chol_a, chol_b))


def neglogdet_bregman(chol_a: torch.Tensor, chol_b: torch.Tensor) -> torch.Tensor:
    """tr(A^-1 B) - k - log det(A^-1 B) >= 0, without cancellation when B is close to A.

    M = L_a^-1 L_b = I + L_a^-1 (L_b - L_a) is lower-triangular with diagonal
    1 + e_i, e_i = (L_b,ii - L_a,ii) / L_a,ii, so the value is sum_i [s_i - log1p(s_i)] with
    s_i = M_ii^2 - 1 = e_i (2 + e_i), plus the squared strictly-lower entries of M: every term
    is >= 0, and solving for the difference L_b - L_a (not for L_b) makes it exactly 0 when
    the factors are equal and keeps its digits when they are close. Gradients in closed form
    (:func:`_neglogdet_bregman`), on the factors' lower triangles only.
    """
    return _apply(_neglogdet_bregman, *_broadcast_factors(chol_a, chol_b))


def _broadcast_factors(chol_a: torch.Tensor, chol_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    batch = torch.broadcast_shapes(chol_a.shape[:-2], chol_b.shape[:-2])
    return chol_a.expand(*batch, *chol_a.shape[-2:]), chol_b.expand(*batch, *chol_b.shape[-2:])
