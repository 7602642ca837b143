"""torch backend of the Bregman kernels (same names and results as symkl.kernels.numpy).

Tensors of any floating dtype (a Python number for either argument takes the other's
dtype and device), broadcast together. The kernels compute in float64 and return the
promoted input dtype, so a float32 result carries a single rounding (see
symkl.kernels._float64). The code is branch-free, so ``torch.compile(fullgraph=True)`` and
``torch.func.vmap`` apply unchanged (compiled, the widening and the whole kernel fuse into
one loop).

Autograd: each kernel is a ``torch.autograd.Function`` whose backward evaluates the
kernel's partial derivatives in closed form (symkl.kernels._partials) from the saved
inputs, instead of differentiating the kernel's few hundred operations (which saved every
intermediate: ~13 kB per element for the float64 Gamma KL). The backward is plain torch
code, so higher derivatives differentiate it in turn.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch

from symkl.kernels import _float64, _partials

__all__ = ["both", "digamma", "either", "exp_bregman", "lgamma_bregman", "lgamma_residual_bregman", "log1p_ratio",
           "log_ratio", "neglog_bregman", "neglog_bregman_split", "poisson_entropy", "product_difference", "sum_last",
           "xlogx_bregman"]


def compiling_on_cpu(t: torch.Tensor) -> bool:
    """Whether ``t`` is being traced by torch.compile for the CPU: where the kernels take the
    forms inductor's CPU code runs fast (sum_last, linalg_torch.solve_lower)."""
    return torch.compiler.is_compiling() and t.device.type == "cpu"


def both(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a & b for boolean tensors, written as a select: inductor's vectorised CPU code
    computes ``&`` and ``|`` of comparison masks several times slower than the comparisons
    and selects around them (torch 2.13, float64, 1e6 elements on 2 cores: a select on
    ``(a < c) & (b < c)`` takes 4.2x the time of one on a single comparison, on
    ``where(a < c, b < c, False)`` 0.95x; docs/inductor-patterns.md, benchmarks/masks.py)."""
    return torch.where(a, b, False)


def either(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a | b for boolean tensors, as a select (see :func:`both`)."""
    return torch.where(a, True, b)


def _last_axis_ops() -> tuple[Callable, Callable] | None:
    """``symkl::sum_last`` (x.sum(-1)) and its backward ``symkl::expand_last`` (g repeated
    along a new last axis, materialised): custom operators, opaque to inductor (torch >= 2.5;
    None before).

    Inductor's CPU code handles a short last axis (a Categorical's classes, a diagonal
    Normal's event) one row at a time in a masked 16-lane vector. A sum over it inside a
    compiled function: 2.7 ms for a (1e5, 10) float64 array, eager torch.sum 0.23 ms (2
    cores); a backward that broadcasts the row's gradient over the axis ran its whole fused
    loop that way (float32 Categorical KL, 1e5 x 10: backward 13.1 -> 6.3 ms). As operators the
    sum and the broadcast run as ATen's, and the elementwise work around them stays fused,
    over flat contiguous arrays."""
    if not (hasattr(torch.library, "custom_op") and hasattr(torch.library, "register_vmap")):
        return None  # torch < 2.5: plain torch.sum

    @torch.library.custom_op("symkl::sum_last", mutates_args=())
    def sum_op(x: torch.Tensor) -> torch.Tensor:
        return x.sum(-1)

    @sum_op.register_fake
    def _(x: torch.Tensor) -> torch.Tensor:
        return x.new_empty(x.shape[:-1])

    @torch.library.custom_op("symkl::expand_last", mutates_args=())
    def expand_op(g: torch.Tensor, size: int) -> torch.Tensor:
        return g.unsqueeze(-1).expand(*g.shape, size).contiguous()

    @expand_op.register_fake
    def _(g: torch.Tensor, size: int) -> torch.Tensor:
        return g.new_empty((*g.shape, size))

    def keep_size(ctx, inputs, output) -> None:  # noqa: ANN001 - torch.library's signature
        ctx.size = inputs[0].shape[-1]

    sum_op.register_autograd(lambda ctx, grad: expand_op(grad, ctx.size), setup_context=keep_size)
    expand_op.register_autograd(lambda ctx, grad: (sum_op(grad), None), setup_context=lambda ctx, inputs, output: None)

    # torch.func.vmap inside a compiled function: the vmapped axis moved to the front.
    def front(x: torch.Tensor, dim: int | None) -> torch.Tensor:
        return x if dim is None else x.movedim(dim, 0)

    sum_op.register_vmap(lambda info, in_dims, x: (sum_op(front(x, in_dims[0])), None if in_dims[0] is None else 0))
    expand_op.register_vmap(lambda info, in_dims, g, size: (expand_op(front(g, in_dims[0]), size),
                                                            None if in_dims[0] is None else 0))
    return sum_op, expand_op


_LAST_AXIS_OPS = _last_axis_ops()


def sum_last(x: torch.Tensor, keepdim: bool = False) -> torch.Tensor:
    """``torch.sum(x, dim=-1, keepdim=keepdim)``, the generated code's reduction: inside
    torch.compile on the CPU through the ``symkl::sum_last`` operator (see _last_axis_ops)."""
    if _LAST_AXIS_OPS is not None and compiling_on_cpu(x):
        out = _LAST_AXIS_OPS[0](x)
        return out.unsqueeze(-1) if keepdim else out
    return torch.sum(x, dim=-1, keepdim=keepdim)


class _Torch:
    """The array namespace the algorithms of symkl.kernels._float64 are written against."""

    where, log, log1p, expm1, exp, sqrt, abs = (torch.where, torch.log, torch.log1p, torch.expm1, torch.exp,
                                                torch.sqrt, torch.abs)
    both, either = staticmethod(both), staticmethod(either)


def _promoted_dtype(args: tuple) -> torch.dtype:
    # Python numbers are weak, as in torch arithmetic (torch.result_type would break graphs).
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    if not tensors:
        return torch.get_default_dtype()
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    numbers = len(tensors) < len([a for a in args if a is not None])
    return torch.get_default_dtype() if numbers and not dtype.is_floating_point else dtype


#: Array arguments of the widest kernel (product_difference): every autograd Function takes
#: this many slots.
SLOTS = 4


def _differentiable(algorithm: Callable, partials: Callable, arity: int) -> type[torch.autograd.Function]:
    """``algorithm`` (a _float64 kernel of ``arity`` array arguments) as an autograd Function with ``partials`` (its _partials twin: one partial derivative per
    argument, None for one that gets no gradient) as the backward.

    Called with all four array slots (``None`` for the unused): dynamo's inference path
    only recognises a ctx-free ``forward`` whose parameter count matches the call. The
    precision target travels by name (a constant string for dynamo).

    Under ``torch.compile(dynamic=True)`` dynamo (torch 2.13) makes the kernels' float
    constants symbolic graph inputs and then fails on the second such Function of a graph
    that needs gradients ("lift_tracked_freevar_to_input"); symkl's own compiled path marks
    the shapes dynamic instead (symkl.torch._execution), which keeps floats constant."""

    class Kernel(torch.autograd.Function):
        generate_vmap_rule = True  # forward is pure torch code: vmap batches it as is

        @staticmethod
        def forward(target: str, a: torch.Tensor, b: torch.Tensor | None, c: torch.Tensor | None,
                    e: torch.Tensor | None) -> torch.Tensor:
            return algorithm(_Torch, *(a, b, c, e)[:arity], target=_float64.TARGETS[target])

        @staticmethod
        def setup_context(ctx, inputs, output):  # type: ignore[no-untyped-def]
            ctx.target = inputs[0]
            ctx.save_for_backward(*inputs[1:1 + arity])

        @staticmethod
        def backward(ctx, grad: torch.Tensor):  # type: ignore[no-untyped-def]
            args = ctx.saved_tensors
            wanted = ctx.needs_input_grad[1:1 + arity]
            grads = [None] * (1 + SLOTS)
            if any(wanted):
                out = partials(_Torch, *args, target=_float64.TARGETS[ctx.target])
                for i, (p, need, arg) in enumerate(zip(out, wanted, args)):
                    if p is not None and need:
                        grads[1 + i] = _sum_to(grad * p, arg)
            return tuple(grads)

    Kernel.__name__ = Kernel.__qualname__ = f"{algorithm.__name__}_function"
    return Kernel


def _sum_to(grad: torch.Tensor, arg: torch.Tensor) -> torch.Tensor:
    """The gradient of a broadcast argument: summed over the dimensions it was broadcast along."""
    return grad if grad.shape == arg.shape else grad.sum_to_size(arg.shape)


#: The differentiable kernels: those whose derivative _partials writes in closed form.
_FUNCTIONS: dict[Callable, type[torch.autograd.Function]] = {
    getattr(_float64, name): _differentiable(getattr(_float64, name), getattr(_partials, name), arity)
    for name, arity in (("neglog_bregman", 2), ("neglog_bregman_split", 2), ("xlogx_bregman", 3),
                        ("exp_bregman", 2), ("lgamma_bregman", 3), ("lgamma_residual_bregman", 3), ("digamma", 1),
                        ("poisson_entropy", 1), ("product_difference", 4))
}


def _apply(kernel: Callable, *args: torch.Tensor | float | None,
           target: _float64.Target | None = None) -> torch.Tensor:
    """Run a float64 algorithm on the arguments (``None`` passes through: an optional
    argument left out) and return their promoted dtype; the precision target follows that
    dtype unless given."""
    dtype = _promoted_dtype(args)
    if not dtype.is_floating_point:
        raise TypeError(f"symkl.kernels need floating-point arguments, not {dtype}")
    if target is None:
        target = _float64.FLOAT64 if dtype == torch.float64 else _float64.NARROW
        if not all(_float64.narrow_target_holds(a) for a in args if isinstance(a, (int, float))):
            target = _float64.FLOAT64
    device = next((a.device for a in args if isinstance(a, torch.Tensor)), None)
    args = tuple(a if a is None else a.to(torch.float64) if isinstance(a, torch.Tensor)
                 else torch.tensor(a, dtype=torch.float64, device=device) for a in args)
    function = _FUNCTIONS.get(kernel)
    if function is None:
        out = kernel(_Torch, *args, target=target)
    elif _attaching["on"] and any(a is not None and a.requires_grad for a in args):
        with torch.no_grad():  # value and partials in the same fused pass
            value = kernel(_Torch, *args, target=target)
            partials = getattr(_partials, kernel.__name__)(_Torch, *args, target=target)
        out = attach_partials(value, partials, args)
    else:
        out = function.apply(target.name, *_distinct((*args, *(None,) * (SLOTS - len(args)))))
    return out.to(dtype)


def _distinct(tensors: tuple) -> tuple:
    """The same tensors as distinct objects (aliases, ``view_as``): dynamo cannot trace an
    autograd Function whose inputs repeat a tensor ("duplicate tensor input"), as when P's and
    Q's parameter are the same tensor or a partial is an input (product_difference's
    d/da = b). Under tracing, object identity does not tell repeats apart (``.to`` of a tensor
    already in float64 is the same graph node in a new wrapper), so every tensor is aliased:
    free in eager and compiled code, and gradients flow through an alias unchanged."""
    return tuple(None if t is None else t.view_as(t) for t in tensors)


_attaching = {"on": False}


@contextlib.contextmanager
def partials_in_forward() -> Iterator[None]:
    """Within this context (symkl.torch's compiled path with gradients) a kernel computes its
    partial derivatives next to its value, inside the caller's graph, and attaches them
    (:class:`_AttachPartials`) instead of running as its autograd Function.

    Why: torch.compile with dynamic shapes makes the kernels' float constants symbolic, and
    dynamo (torch 2.13) cannot lift those into a second autograd Function of a graph
    ("lift_tracked_freevar_to_input"); with the constants static instead, inductor's code
    generation took 5 to over 12 minutes (the float64 Gamma KL: 514 s against 106 s).
    Attached partials leave no constant inside a Function, so the compiled graph keeps
    dynamic shapes and fuses value and partials into one loop. The price: first derivatives
    only (the eager path's backward is differentiable again)."""
    previous = _attaching["on"]
    _attaching["on"] = True
    try:
        yield
    finally:
        _attaching["on"] = previous


def attaching_partials() -> bool:
    """Whether kernels attach their partials in the forward (inside :func:`partials_in_forward`)."""
    return _attaching["on"]


def attach_partials(value: torch.Tensor, partials: tuple, args: tuple) -> torch.Tensor:
    """``value`` whose backward is grad x partial for each argument in ``args`` (up to
    SLOTS; a partial may have more dimensions than the value: a matrix argument's per batch
    element). The partials were computed without autograd history: first derivatives only."""
    slots = (*args, *(None,) * (SLOTS - len(args)))
    derivatives = (*partials, *(None,) * (SLOTS - len(partials)))
    return _AttachPartials.apply(*_distinct((value, *derivatives, *slots)))


def grad_times_partial(grad: torch.Tensor, partial: torch.Tensor) -> torch.Tensor:
    """grad x partial, where the partial may carry event dimensions the value does not."""
    return grad.reshape(grad.shape + (1,) * (partial.dim() - grad.dim())) * partial


class _AttachPartials(torch.autograd.Function):
    """value, with the backward grad * partial for each argument (partials computed in
    forward, without autograd history: first derivatives only)."""

    @staticmethod
    def forward(value, p0, p1, p2, p3, a0, a1, a2, a3):  # type: ignore[no-untyped-def]
        return value.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):  # type: ignore[no-untyped-def]
        _, *partials_and_args = inputs
        ctx.save_for_backward(*partials_and_args)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[no-untyped-def]
        if torch.is_grad_enabled():
            raise RuntimeError("symkl: higher derivatives of a compiled symkl function are not available; "
                               "call symkl.torch.set_compile_mode('never') to differentiate twice")
        p0, p1, p2, p3, a0, a1, a2, a3 = ctx.saved_tensors
        wanted = ctx.needs_input_grad[1 + SLOTS:]
        grads = [None if p is None or not need else _sum_to(grad_times_partial(grad, p), a)
                 for p, a, need in zip((p0, p1, p2, p3), (a0, a1, a2, a3), wanted)]
        return (None, *(None,) * SLOTS, *grads)


def _documented_by(algorithm: Callable) -> Callable[[Callable], Callable]:
    # The contract (formula, domain, conventions, algorithm) is written once, in _float64.
    def decorate(fn: Callable) -> Callable:
        fn.__doc__ = algorithm.__doc__
        return fn

    return decorate


@_documented_by(_float64.neglog_bregman)
def neglog_bregman(x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    return _apply(_float64.neglog_bregman, x, d)


@_documented_by(_float64.xlogx_bregman)
def xlogx_bregman(x: torch.Tensor, d: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    return _apply(_float64.xlogx_bregman, x, d, y)


@_documented_by(_float64.exp_bregman)
def exp_bregman(x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    return _apply(_float64.exp_bregman, x, d)


@_documented_by(_float64.lgamma_bregman)
def lgamma_bregman(x: torch.Tensor, d: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    return _apply(_float64.lgamma_bregman, x, d, y)


@_documented_by(_float64.lgamma_residual_bregman)
def lgamma_residual_bregman(x: torch.Tensor, d: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    return _apply(_float64.lgamma_residual_bregman, x, d, y)


@_documented_by(_float64.product_difference)
def product_difference(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    return _apply(_float64.product_difference, a, b, c, e)


@_documented_by(_float64.neglog_bregman_split)
def neglog_bregman_split(s: torch.Tensor, log_r: torch.Tensor) -> torch.Tensor:
    return _apply(_float64.neglog_bregman_split, s, log_r)


@_documented_by(_float64.log_ratio)
def log_ratio(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return _apply(_float64.log_ratio, a, b)


@_documented_by(_float64.log1p_ratio)
def log1p_ratio(s: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return _apply(_float64.log1p_ratio, s, y, x)


@_documented_by(_float64.digamma)
def digamma(x: torch.Tensor) -> torch.Tensor:
    return _apply(_float64.digamma, x)


@_documented_by(_float64.poisson_entropy)
def poisson_entropy(rate: torch.Tensor) -> torch.Tensor:
    return _apply(_float64.poisson_entropy, rate)
