"""How symkl's torch functions run a generated formula: in float64, fused when it pays.

*In float64.* Every generated function is evaluated in float64 and its result rounded to
the promoted input dtype, so float32 (and float16/bfloat16) results carry one rounding and
no intermediate under- or overflows in the narrow format. For such narrow results the
formula calls the kernels' ``NARROW`` variants (symkl.kernels._float64: the precision
float32 needs at a fraction of the cost). Devices without float64, such as Apple's MPS,
are therefore not supported.

*Fused.* Eager torch runs one memory pass per array operation, and the stable formulas
take a few dozen to a few hundred of them. With ``torch.compile`` (inductor) the widening,
the formula and the rounding fuse into one loop, which is faster than
``torch.distributions``' unfused few-op formulas. Compiling costs seconds (Normal) to minutes
(Gamma, Beta, Dirichlet: their lnGamma kernel is a few hundred operations, compiled with
the options in ``INDUCTOR_OPTIONS``) per function, dtype and autograd mode the first time;
inductor then caches it on disk for later processes. The default mode ``"auto"`` compiles
for inputs of at least ``FUSE_MIN_NUMEL`` elements; ``"always"`` and ``"never"`` do what
they say. Choose with
:func:`set_compile_mode` or the environment variable ``SYMKL_COMPILE``. Inside the
user's own ``torch.compile`` or under ``torch.func`` transforms the formula runs as plain
torch code (the outer compiler traces it, with the user's options: on CUDA pass
``options={"emulate_precision_casts": True}`` to keep float64 near-equal results exact, see
``NO_CONTRACTION_OPTIONS``), and a function that fails to compile runs eagerly from then on,
with one warning.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import warnings
from types import ModuleType
from typing import Callable

import torch
import torch.distributions as td

from symkl.kernels import linalg_torch
from symkl.kernels import torch as kernels_torch
from symkl.kernels import torch_narrow

MODES = ("auto", "always", "never")
#: "auto" compiles for inputs with at least this many elements (the largest argument).
FUSE_MIN_NUMEL = 1 << 16

_state = {"mode": os.environ.get("SYMKL_COMPILE", "auto")}
#: compiled functions by (name, narrow, with gradients)
_compiled: dict[tuple[str, bool, bool], Callable] = {}
_eager: dict[tuple[str, bool], Callable] = {}
_failed: set[str] = set()


def set_compile_mode(mode: str) -> None:
    """``"auto"`` (default), ``"always"`` or ``"never"``: when symkl's torch functions run
    through ``torch.compile`` (see the module docstring)."""
    if mode not in MODES:
        raise ValueError(f"compile mode must be one of {MODES}, not {mode!r}")
    _state["mode"] = mode


def compile_mode() -> str:
    """The current mode (``SYMKL_COMPILE`` or :func:`set_compile_mode`)."""
    mode = _state["mode"]
    if mode not in MODES:
        raise ValueError(f"SYMKL_COMPILE must be one of {MODES}, not {mode!r}")
    return mode


def _result_dtype(tensors: list[torch.Tensor]) -> torch.dtype:
    dtype = None
    for t in tensors:
        if t.is_floating_point():
            dtype = t.dtype if dtype is None else torch.promote_types(dtype, t.dtype)
    return dtype if dtype is not None else torch.get_default_dtype()


def _narrow_module(generated: str) -> ModuleType:
    """A second instance of the generated module whose ``kernels`` are the narrow ones (a
    real, importable module, so that dynamo's guards find its globals by name)."""
    name = f"{generated}_for_narrow"
    module = sys.modules.get(name)
    if module is None:
        origin = importlib.util.find_spec(generated)
        assert origin is not None and origin.origin is not None
        spec = importlib.util.spec_from_file_location(name, origin.origin)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.kernels = torch_narrow
        sys.modules[name] = module
    return module


def _in_float64(name: str, formula: Callable, narrow: bool) -> Callable:
    if narrow:  # the same code, with the kernels of the narrow target
        formula = getattr(_narrow_module(formula.__module__), formula.__name__)

    def run(*args: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return formula(*(a.to(torch.float64) for a in args)).to(dtype)

    # One code object per function: dynamo's recompile limit counts per code object.
    label = f"{name}_in_float64" + ("_for_narrow" if narrow else "")
    run.__code__ = run.__code__.replace(co_name=label)
    run.__name__ = run.__qualname__ = label
    return run


#: Inductor options per kernel, for the functions that call it. lnGamma's shift terms are
#: read by many consumers, and by default inductor re-inlines each into every reader: the
#: float64 Gamma KL then took ~3 minutes to compile (2 cores). Materialising any buffer read
#: twice (``realize_reads_threshold=2``) keeps it at ~1.5 minutes without slowing the code
#: (docs/speed.md has the ratios and first-call costs). lgamma_residual_bregman (Gamma, Beta,
#: Dirichlet since their KL is written with it): float64 Gamma KL 148 s with the option, 207 s
#: without; float64 Beta 197 s (fresh inductor cache, 2 cores).
INDUCTOR_OPTIONS = {"lgamma_bregman": {"realize_reads_threshold": 2},
                    "lgamma_residual_bregman": {"realize_reads_threshold": 2}}


#: Kernels whose functions "auto" leaves eager. poisson_entropy sums 112 terms per element in
#: a Python loop (cache-friendly eagerly: ~23 us per element on 2 cores); unrolled, that graph
#: took inductor over 10 minutes to compile, and a vectorised (elements x terms) version
#: compiled in ~80 s but ran 7x slower eagerly (every temporary leaves the cache).
#: ``set_compile_mode("always")`` still compiles them.
EAGER_KERNELS = frozenset({"poisson_entropy"})


#: Options for every compiled function. Inductor decides whether a CPU loop runs on all
#: threads from the size of the first call it compiles for, and its on-disk cache then serves
#: that decision to every later size: a kernel first compiled for 1,000 elements (a test)
#: ran single-threaded at 1e6 (Normal KL 17.7 ms instead of 9.3 ms on 2 cores).
#: ``dynamic_threads`` always emits the parallel region and lets OpenMP size it at run time.
COMMON_INDUCTOR_OPTIONS = {"cpp.dynamic_threads": True}

#: On CUDA, Triton contracts a * b + c into fused multiply-adds unless inductor's
#: ``emulate_precision_casts`` is on (it passes ``enable_fp_fusion=False``; inductor's C++
#: code is compiled with -ffp-contract=off already). The kernels' cancellation-free
#: differences rely on every product being rounded where the source says so: contracted,
#: the float64 Gamma and Beta KL compiled for an H200 were off by 5e11 ULP at relative
#: parameter differences of 1e-12 (528 and 167 ULP at 1e-3), against at most 4 and 5 ULP
#: eagerly and with this option (float32 results were unaffected). Only for the functions
#: symkl compiles itself: inside a user's own torch.compile on CUDA, pass the same option
#: (docs/architecture.md, "No fused multiply-adds").
NO_CONTRACTION_OPTIONS = {"emulate_precision_casts": True}


def _no_contraction_options() -> dict:
    """NO_CONTRACTION_OPTIONS where this torch's inductor knows them (an unknown option would
    make torch.compile fail, and symkl run eagerly)."""
    from torch._inductor import config

    return {k: v for k, v in NO_CONTRACTION_OPTIONS.items() if hasattr(config, k)}


#: Dynamo settings while symkl traces a function (its first call per dtype and autograd mode).
#: By default dynamo lifts every module-level float the kernels read (coefficient tables,
#: Target fields: 12 for the float32 Normal KL, 58 for the float64 Gamma KL, counted with an
#: earlier logarithm's constants) to a 0-d graph input that each call re-creates with
#: torch.as_tensor (~4.5 us each).
#: Specialised, they are constants of the graph. Measured on 2 cores, float64 Gamma KL,
#: results bitwise the same: a 100-element call 472 -> 58 us, 1e6 elements 101 -> 65 ms (the
#: compiled loop no longer loads them as scalars), first compile 90 -> 145 s. Set around the
#: first call only, so that neither the user's own compiles nor later calls see it (a
#: recompile for a new shape class traces with the user's setting: correct, slower).
TRACE_CONFIG = {"specialize_float": True}


#: AOT autograd's partitioner settings while symkl compiles a function with gradients: save
#: only the inputs for the backward and recompute the rest there. By default it saved the
#: support and series masks, and inductor's CPU code stores a boolean tensor at ~5 ms per 1e6
#: elements (a float64 result: 0.13 ms). Forward with gradients, 1e6 elements, float32, 2
#: cores: Categorical (1e5 x 10) 11.5 -> 3.5 ms, Normal 5.1 -> 2.6 ms, Gamma 23.2 -> 10.5 ms,
#: backward unchanged.
PARTITION_CONFIG = {"activation_memory_budget": 0.0}


def _tracing_config() -> contextlib.AbstractContextManager:
    """TRACE_CONFIG (dynamo) and PARTITION_CONFIG (functorch), for the settings this torch knows."""
    from torch._dynamo import config
    from torch._functorch import config as partitioner

    stack = contextlib.ExitStack()
    for module, settings in ((config, TRACE_CONFIG), (partitioner, PARTITION_CONFIG)):
        stack.enter_context(module.patch(**{k: v for k, v in settings.items() if hasattr(module, k)}))
    return stack


def _inductor_options(formula: Callable) -> dict:
    options: dict = {**COMMON_INDUCTOR_OPTIONS, **_no_contraction_options()}
    for kernel, extra in INDUCTOR_OPTIONS.items():
        if kernel in formula.__code__.co_names:
            options.update(extra)
    return options


def _should_fuse(name: str, formula: Callable, tensors: list[torch.Tensor], narrow: bool) -> bool:
    mode = compile_mode()
    if mode == "never" or name in _failed:
        return False
    if torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active():
        return False
    if any(t.device.type not in ("cpu", "cuda") for t in tensors):
        return False
    if mode == "always":
        return True
    if EAGER_KERNELS & set(formula.__code__.co_names):
        return False
    return max(t.numel() for t in tensors) >= FUSE_MIN_NUMEL


def _keeps_layout(a: torch.Tensor) -> bool:
    """Whether an argument goes into the compiled code as it is (else it is made contiguous).

    Strided views (Beta's concentrations are columns of one tensor) keep inductor from
    vectorising: a copy is cheaper (Beta KL 4.1 -> 2.7 x torch's time in float64). Broadcast
    views (stride 0) stay as they are: copying would materialise them. Column-major matrices
    (torch's Cholesky factors) stay where LAPACK solves with them (made contiguous, the
    solves copied them back: float64 MVN KL, 1e4 x 16 x 16, 10 ms of copies in a 24 ms call)
    and become row-major where the solves unroll, which read them by rows (float32 KL of
    MVNs built from torch.linalg.cholesky factors, 1e4 x 16, forward+backward: 0.70 of
    torch's time as they are, 0.53 copied; 0.40 from row-major factors).
    """
    if a.is_contiguous() or 0 in a.stride():
        return True
    if not (a.dim() >= 2 and a.mT.is_contiguous()):
        return False
    return a.shape[-1] != a.shape[-2] or not linalg_torch.unrolls_solves(a)


def run(name: str, formula: Callable, args: list[torch.Tensor]) -> torch.Tensor:
    """``formula(*args)`` evaluated in float64 and returned in the promoted dtype."""
    dtype = _result_dtype(args)
    key = (name, dtype != torch.float64)
    eager = _eager.get(key)
    if eager is None:
        eager = _eager[key] = _in_float64(name, formula, narrow=key[1])
    if not _should_fuse(name, formula, args, key[1]):
        return eager(*args, dtype=dtype)
    # dynamo's first use switches torch.distributions' validate_args default off for the
    # whole process; symkl should not change its user's settings behind their back.
    validate = td.Distribution._validate_args
    try:
        args = [a if _keeps_layout(a) else a.contiguous() for a in args]
        # With gradients the kernels attach partials computed in the same pass (see
        # symkl.kernels.torch.partials_in_forward): one compiled graph per autograd mode.
        grad = torch.is_grad_enabled() and any(a.requires_grad for a in args)
        fused = _compiled.get((*key, grad))
        tracing = contextlib.nullcontext()
        if fused is None:  # this call traces and compiles
            fused = _compiled[(*key, grad)] = torch.compile(eager, fullgraph=True, dynamic=True,
                                                            options=_inductor_options(formula))
            tracing = _tracing_config()
        with tracing, kernels_torch.partials_in_forward() if grad else contextlib.nullcontext():
            return fused(*args, dtype=dtype)
    except Exception as exc:  # noqa: BLE001 - any compiler failure falls back to eager
        out = eager(*args, dtype=dtype)  # a genuine input error raises here, unchanged
        _failed.add(name)
        warnings.warn(f"symkl: torch.compile failed for {name} ({type(exc).__name__}: {exc}); "
                      "running it eagerly from now on", RuntimeWarning, stacklevel=3)
        return out
    finally:
        td.Distribution.set_default_validate_args(validate)
