"""Gradients of the generated torch functions against the symbolic derivative.

For a catalogue quantity (``kl``, ``cross_entropy``, ``entropy``), a pair of families and a
*point* (argument name of the generated function -> float64 numpy array without a batch
axis: 0-d for scalar parameters, 1-d for vectors, 2-d for ``covariance_matrix``):

* :func:`symbolic_gradient` -- SymPy ``diff`` of the derivation's closed form, evaluated
  with :mod:`symkl.mpeval` at ``dps`` digits and again at ``dps + 20``, the precision raised
  in steps of 20 until two successive evaluations agree to :data:`REFERENCE_DIGITS`
  significant digits (near P == Q a KL gradient of 1e-16 is a difference of O(1) terms),
  rounded to float64. The result is a Piecewise with +oo where the quantity is infinite; at
  a point where it is finite its derivative is that of the finite branch,
  ``Derivation.formula``, so that is what is differentiated (a point where the result is
  infinite raises ValueError).

  - scalar families: ``diff`` with respect to each parameter Symbol;
  - indexed families (Categorical, Dirichlet, diagonal MVN: ``Sum`` over i = 0..k-1 of
    ``IndexedBase`` parameters): k is substituted, the sums are expanded with ``doit()``
    and the expression is differentiated with respect to each ``probs_p[j]``;
  - the full MVN (``MatrixSymbol`` parameters, ``Inverse``/``Determinant``/``Trace`` and
    the quadratic form): for k <= :data:`EXPLICIT_MAX_DIM` the matrices are replaced by
    explicit matrices of k*k independent scalar symbols (inverse = adjugate / determinant,
    Berkowitz, unsimplified) and ``diff`` is taken with respect to every entry (k = 3:
    < 1 s, k = 4: ~4 s per quantity, k = 5: ~40 s). Beyond that the partial derivatives
    are taken by ``mpmath.diff`` of the mpeval'd formula at the same precisions
    (numerical differentiation at high precision, not SymPy) and the check's ``note``
    says so.

* :func:`autograd_gradient` -- ``torch.autograd`` of ``symkl.torch.functional.<name>`` on
  float64 tensors (``validate=False``) on the requested device.

* :func:`check_gradient` -- both, compared on what is comparable, plus
  ``torch.autograd.gradcheck`` in float64.

**Constrained parameters.** A Categorical ``probs`` vector lives on the simplex and a
covariance matrix is symmetric: only derivatives along the constraint set are defined by
the distribution, and the generated code may legitimately differ from the formula *as
written* off that set (``kl_categorical_categorical`` sums the Bregman form
p log(p/q) - p + q, whose partials differ from those of sum p log(p/q) by a constant).
So :func:`check_gradient` compares both gradients projected onto the tangent space of the
constraint: simplex (``Constraint.event_total`` set): the mean of the components is
subtracted; symmetric matrices (event_dim 2): (G + G^T)/2. The projection is applied in
mpmath to both sides, so it adds no rounding to the comparison. :func:`symbolic_gradient`
and :func:`autograd_gradient` return the raw, unprojected partial derivatives;
``GradientCheck.reference``/``autograd`` hold the projected (compared) values.

**Error measure.** Over every component c of every argument (after projection),

    error_c = |autograd_c - reference_c| / max(|reference_c|, FLOOR * max_c' |reference_c'|, TINY)

with :data:`FLOOR` = 1e-3 and :data:`TINY` the smallest normal float64: a relative error,
except for components much smaller than the largest one (exactly 0, say d KL / d loc at
equal locations), which are judged relative to a thousandth of the gradient's size.
``GradientCheck.error`` is the maximum and ``worst`` names its component. Divided by
float64's eps (2**-52) it is an error in ulps of the component (or of the floor).
Proposed pass marks, with the measurements behind them in their comments:
:data:`TOLERANCE` (2**-36: 65536 ulps of the component, at least ~66 ulps of the largest
one) at typical points, :data:`NEAR_EQUAL_TOLERANCE` (2**-34) at nearly equal P and Q, and,
for functions whose backward is torch's trigamma, :data:`TRIGAMMA_TOLERANCE` (2**-20);
``_tolerance(quantity, P, Q, near_equal)`` picks one.

**gradcheck.** ``torch.autograd.gradcheck`` (float64, eps = 1e-6, default tolerances) of
the generated function at the point, covariance arguments passed through (A + A^T)/2 so
that perturbing one entry keeps the matrix symmetric. It is skipped (``None``, reason in
``note``) when the function is not finite at every point within :data:`PROBE` of the point
along every coordinate (a support edge of Uniform, a probability at 0 or 1, a parameter at
its domain boundary): finite differences straddle a non-differentiable edge there.
"""

from __future__ import annotations

import functools
import inspect
import operator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Mapping

import mpmath
import numpy as np
import sympy as sp

from symkl import distributions, mpeval
from symkl.family import DIM
from symkl.nodes import QuadForm

mpf = mpmath.mpf

QUANTITIES = ("kl", "cross_entropy", "entropy")
#: Starting precision of the reference in check_gradient (digits).
DPS = 40
#: float64's machine epsilon (an ulp of 1): ``error / EPS`` is an error in ulps.
EPS = 2.0**-52
#: Components below FLOOR times the largest one are judged relative to that floor.
FLOOR = 1e-3
TINY = 2.2250738585072014e-308
#: Proposed pass mark for ``GradientCheck.error`` at typical points, for every function
#: whose backward does not go through torch.special.digamma: 2**-36 ~ 1.5e-11, i.e.
#: |autograd - reference| <= 65536 ulps of the component, but never less than ~66 ulps of
#: the largest component (the FLOOR). Measured worst (error / EPS): 265 at typical sampled
#: points of every generated pair and quantity (k = 2, 3, 4; 6 points each).
TOLERANCE = 2.0**-36
#: The same at nearly equal P, Q (self-pairs, relative parameter differences 1e-6, 1e-9,
#: 1e-12; 25 points each): measured worst 4.6e4 ulps, in the floor regime (d KL / d rate of
#: Gamma is O(delta**2) ~ 7e-17 next to d KL / d concentration ~ 1e-10, and carries ~6 ulps
#: of delta of absolute error), so 2**-34 ~ 5.8e-11 (262144 ulps, at least ~262 ulps of the
#: largest component). Not met by the full-MVN KL, whose autograd (not its value) loses
#: ~eps/delta near P == Q: 6.5e-10 at delta = 1e-6, 2.5e-7 at 1e-9, 4e-3 at 1e-12.
NEAR_EQUAL_TOLERANCE = 2.0**-34
#: The pass mark for functions whose backward goes through torch.special.digamma (Gamma,
#: Beta, Dirichlet entropies and cross-entropies, KL of Beta/Gamma against other
#: families): its derivative, torch's float64 trigamma (polygamma(1, x)), is accurate to
#: only ~5e-10 relative (measured 4.6e-10 at x = 1.5), amplified up to 1/FLOOR in small
#: components: over ~160 sampled points per function, median 5e-10, 99th percentile 5e-8,
#: worst 4.3e-7 (entropy of Beta); with a correctly rounded trigamma substituted for
#: torch's the same points give <= 2.3e3 ulps. 2**-20 ~ 9.5e-7. (These measurements led to
#: symkl's own digamma kernel, symkl.kernels._float64.digamma: the generated code no longer
#: calls torch.special.digamma, so this pass mark applies only to code that still does.)
TRIGAMMA_TOLERANCE = 2.0**-20
#: mvn: explicit k x k SymPy matrices up to this k; mpmath.diff beyond.
EXPLICIT_MAX_DIM = 4
#: The reference is evaluated at dps and dps + DPS_STEP, raised by DPS_STEP (up to dps +
#: DPS_EXTRA_MAX) until two successive precisions agree to REFERENCE_DIGITS digits.
REFERENCE_DIGITS = 25
DPS_STEP = 20
DPS_EXTRA_MAX = 200
#: gradcheck's finite-difference step and the radius probed for finiteness around the point.
GRADCHECK_EPS = 1e-6
PROBE = 1e-5


@dataclass(frozen=True)
class GradientCheck:
    """Outcome of :func:`check_gradient` (values projected onto constraint tangent spaces,
    see the module docstring)."""

    #: SymPy diff of the derivation's result, evaluated in mpmath (>= 25 digits checked),
    #: rounded to float64, projected where the parameter is constrained.
    reference: dict[str, np.ndarray]
    #: torch autograd of the generated function, float64, projected likewise.
    autograd: dict[str, np.ndarray]
    #: max over all components of |autograd - reference| / max(|reference|, FLOOR * max|reference|, TINY)
    error: float
    #: the worst component, e.g. "scale_q" or "probs_p[2]" or "covariance_matrix_q[0,1]"
    worst: str
    #: torch.autograd.gradcheck in float64; None if not applicable (reason in ``note``)
    gradcheck: bool | None
    note: str = ""

    @property
    def ulps(self) -> float:
        """``error`` in units of float64's eps."""
        return self.error / EPS


# ================================================================= catalogue plumbing
def _canonical(quantity: str, P: str, Q: str | None) -> tuple[str, str, str | None]:
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity must be one of {QUANTITIES}, not {quantity!r}")
    p = distributions.get(P).name
    if quantity == "entropy":
        if Q is not None:
            raise ValueError("entropy takes one family: Q must be None")
        return quantity, p, None
    if Q is None:
        raise ValueError(f"{quantity} needs two families")
    return quantity, p, distributions.get(Q).name


def _function_name(quantity: str, P: str, Q: str | None) -> str:
    return f"entropy_{P}" if quantity == "entropy" else f"{quantity}_{P}_{Q}"


def _generated(quantity: str, P: str, Q: str | None) -> Callable[..., Any]:
    """The raw generated torch function (raises ValueError if there is none)."""
    from symkl.generated import torch_functions

    name = _function_name(quantity, P, Q)
    if torch_functions.FUNCTIONS.get(name) != (quantity, P, Q):
        raise ValueError(f"no generated torch function {name} for {quantity}({P}, {Q}) "
                         "(see the 'not generated' comments in symkl/generated/torch_functions.py)")
    return getattr(torch_functions, name)


def _tolerance(quantity: str, P: str, Q: str | None, near_equal: bool = False) -> float:
    """TRIGAMMA_TOLERANCE where the generated function calls torch.special.digamma (its
    backward is torch's trigamma), else NEAR_EQUAL_TOLERANCE or TOLERANCE."""
    quantity, P, Q = _canonical(quantity, P, Q)
    if _uses_digamma(quantity, P, Q):
        return TRIGAMMA_TOLERANCE
    return NEAR_EQUAL_TOLERANCE if near_equal else TOLERANCE


def _uses_digamma(quantity: str, P: str, Q: str | None) -> bool:
    """Whether the generated function calls torch.special.digamma (whose backward is torch's
    trigamma). symkl's own kernels.digamma is differentiated accurately and does not count."""
    return "special.digamma" in inspect.getsource(_generated(quantity, P, Q))


def _arguments(quantity: str, P: str, Q: str | None) -> list[str]:
    """Argument names of the generated function, in order (``loc_p`` ..., entropy: ``loc``)."""
    from symkl.generated import torch_functions

    name = _function_name(quantity, P, Q)
    if torch_functions.FUNCTIONS.get(name) == (quantity, P, Q):
        return list(inspect.signature(getattr(torch_functions, name)).parameters)
    # not generated (Poisson series): the names the generated code would use
    sides = [("p", P)] + ([("q", Q)] if Q else [])
    return [p if quantity == "entropy" else f"{p}_{s}"
            for s, fam in sides for p in distributions.get(fam).param_names]


def _derivation(quantity: str, P: str, Q: str | None):
    import symkl

    if quantity == "entropy":
        return symkl.entropy(P)
    return getattr(symkl, quantity)(P, Q)


def _symbol_name(quantity: str, arg: str) -> str:
    return f"{arg}_p" if quantity == "entropy" else arg


def _family_parameter(quantity: str, P: str, Q: str | None, arg: str):
    name = _symbol_name(quantity, arg)
    base, side = name[:-2], name[-1]
    return distributions.get(P if side == "p" else Q).parameter(base)


def _label(arg: str, index: tuple[int, ...]) -> str:
    return arg + ("[" + ",".join(map(str, index)) + "]" if index else "")


def _point(quantity: str, P: str, Q: str | None, point: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The point as float64 arrays, checked: the right argument names, valid parameters."""
    args = _arguments(quantity, P, Q)
    if set(point) != set(args):
        raise ValueError(f"{_function_name(quantity, P, Q)} takes {args}; the point has {sorted(point)}")
    arrays = {a: np.asarray(point[a], dtype=np.float64) for a in args}
    by_side: dict[str, dict[str, np.ndarray]] = {"p": {}, "q": {}}
    for a, v in arrays.items():
        name = _symbol_name(quantity, a)
        by_side[name[-1]][name[:-2]] = v
        expected = {"SCALAR": 0, "VECTOR": 1, "MATRIX": 2}[_family_parameter(quantity, P, Q, a).shape.name]
        if v.ndim != expected:
            raise ValueError(f"point['{a}'] must have {expected} dimension(s) (no batch axis), got {v.shape}")
    for side, fam in (("p", P), ("q", Q)):
        if fam is not None:
            distributions.get(fam).validate(by_side[side])
    return arrays


# ================================================================ symbolic derivative
def _explicit(e: sp.Basic, rep: Mapping[sp.Basic, sp.Basic]) -> sp.Basic:
    """``e`` with its matrix expressions written out as explicit SymPy matrices (no
    simplification: inverse = adjugate / determinant by Berkowitz)."""
    if e in rep:
        return rep[e]
    if isinstance(e, (sp.Inverse, sp.MatPow)):
        if isinstance(e, sp.MatPow) and e.args[1] != -1:
            raise NotImplementedError(f"matrix power {e}")
        m = _explicit(e.args[0], rep)
        return m.adjugate(method="berkowitz") / m.det(method="berkowitz")
    if isinstance(e, sp.Determinant):
        return _explicit(e.args[0], rep).det(method="berkowitz")
    if isinstance(e, sp.Trace):
        return _explicit(e.args[0], rep).trace()
    if isinstance(e, sp.Transpose):
        return _explicit(e.args[0], rep).T
    if isinstance(e, (sp.MatMul, sp.MatAdd)):  # explicit matrices multiply / add with * / +
        combine = operator.mul if isinstance(e, sp.MatMul) else operator.add
        return functools.reduce(combine, [_explicit(a, rep) for a in e.args])
    if isinstance(e, QuadForm):
        v, a = _explicit(e.args[0], rep), _explicit(e.args[1], rep)
        return (v.T * a * v)[0, 0]
    if isinstance(e, sp.MatrixSymbol):
        raise NotImplementedError(f"matrix symbol {e} without an explicit value")
    if not e.args or isinstance(e, (sp.Symbol, sp.Indexed)):
        return e
    return e.func(*[_explicit(a, rep) for a in e.args])


@dataclass(frozen=True)
class _Prepared:
    #: argument -> [(index, scalar variable)] in row-major order
    layout: dict[str, list[tuple[tuple[int, ...], sp.Basic]]]
    #: argument -> [derivative expression] aligned with layout (None: mpmath.diff fallback)
    derivatives: dict[str, list[sp.Expr]] | None
    method: str


@lru_cache(maxsize=None)
def _prepare(quantity: str, P: str, Q: str | None, k: int | None) -> _Prepared:
    """The scalar variables and their SymPy derivatives for dimension ``k``."""
    from symkl.family import Structure

    d = _derivation(quantity, P, Q)
    structures = {distributions.get(f).structure for f in (P, Q) if f is not None}
    layout: dict[str, list[tuple[tuple[int, ...], sp.Basic]]] = {}
    args = _arguments(quantity, P, Q)
    if Structure.MATRIX in structures:
        assert k is not None
        rep: dict[sp.Basic, sp.Basic] = {DIM: sp.Integer(k)}
        for a in args:
            sym = d.symbols[_symbol_name(quantity, a)]
            matrix = sym.shape[1] != 1
            cols = k if matrix else 1
            entries = sp.ImmutableMatrix(k, cols, lambda i, j, a=a, matrix=matrix: sp.Symbol(
                _label(a, (i, j) if matrix else (i,)), real=True))
            rep[sym] = entries
            layout[a] = [((i, j) if matrix else (i,), entries[i, j]) for i in range(k) for j in range(cols)]
        if k > EXPLICIT_MAX_DIM:
            return _Prepared(layout, None, f"mpmath.diff (k = {k} > {EXPLICIT_MAX_DIM})")
        expr = _explicit(d.formula, rep)
        method = f"SymPy diff of the formula with explicit {k}x{k} matrices"
    elif Structure.INDEXED in structures:
        assert k is not None
        # xreplace, not subs: subs rewrites the Idx inside the summand but not the Sum's
        # limit variable, and doit() then multiplies the summand by k.
        expr = d.formula.xreplace({DIM: sp.Integer(k)}).doit()
        if expr.has(sp.Sum) or expr.atoms(sp.Idx):
            raise RuntimeError(f"the sums of {quantity}({P} || {Q}) did not expand for k = {k}: {expr}")
        for a in args:
            base = d.symbols[_symbol_name(quantity, a)]
            layout[a] = [((j,), base[j]) for j in range(k)]
        method = f"SymPy diff of the formula with k = {k}, sums expanded"
    else:
        expr = d.formula
        for a in args:
            layout[a] = [((), d.symbols[_symbol_name(quantity, a)])]
        method = "SymPy diff of the formula"
    derivatives = {a: [sp.diff(expr, v) for _, v in layout[a]] for a in args}
    return _Prepared(layout, derivatives, method)


def _dimension(point: Mapping[str, np.ndarray]) -> int | None:
    for v in point.values():
        if v.ndim:
            return int(v.shape[-1])
    return None


def _scalar_env(prep: _Prepared, point: Mapping[str, np.ndarray]) -> dict:
    env: dict[sp.Basic, Any] = {}
    for a, entries in prep.layout.items():
        for index, var in entries:
            value = mpf(float(point[a][index]))
            if isinstance(var, sp.Indexed):
                env.setdefault(var.base, [mpf(0)] * point[a].shape[-1])[index[0]] = value
            else:
                env[var] = value
    k = _dimension(point)
    if k is not None:
        env[DIM] = mpf(k)
    return env


def _evaluate_once(quantity: str, P: str, Q: str | None, point: Mapping[str, np.ndarray],
                   prep: _Prepared, dps: int) -> dict[str, list[Any]]:
    d = _derivation(quantity, P, Q)
    env = _scalar_env(prep, point)
    out: dict[str, list[Any]] = {}
    with mpmath.workdps(dps):
        if prep.derivatives is not None:
            for a, exprs in prep.derivatives.items():
                out[a] = [mpeval.evaluate(g, env) for g in exprs]
            return out
        # Fallback (mvn, large k): numerical differentiation of the mpeval'd formula.
        full = mpeval.environment(d.symbols, {_symbol_name(quantity, a): v for a, v in point.items()})
        for a, entries in prep.layout.items():
            sym = d.symbols[_symbol_name(quantity, a)]
            vals = []
            for index, _ in entries:
                def f(t, sym=sym, index=index):
                    m = full[sym].copy()
                    if len(index) == 2:
                        m[index[0], index[1]] = t
                    else:
                        m[index[0], 0] = t
                    return mpeval.evaluate(d.formula, {**full, sym: m})

                x0 = full[sym][index[0], index[1] if len(index) == 2 else 0]
                vals.append(mpmath.diff(f, x0))
            out[a] = vals
    return out


def _noise(values: Mapping[str, list[Any]], dps: int) -> Any:
    """Absolute rounding noise of an evaluation at ``dps`` digits: 10**-(dps - 5) in units of
    max(1, largest |partial|). At P == Q a KL gradient is exactly 0 but its SymPy derivative
    (-1/s + s/s**2, ...) evaluates to residues of ~10**-dps; values below the noise are 0."""
    largest = max((abs(v) for vals in values.values() for v in vals), default=mpf(0))
    return mpf(10) ** (5 - dps) * max(mpf(1), largest)


def _disagreement(prep: _Prepared, low: Mapping[str, list[Any]], high: Mapping[str, list[Any]],
                  dps_low: int) -> str | None:
    """The first component where two evaluations differ by more than REFERENCE_DIGITS
    digits of max(|value|, FLOOR * largest |value|) -- the scale the error is measured in --
    and by more than the lower precision's noise."""
    with mpmath.workdps(dps_low + DPS_STEP + 10):
        scale = max(max((abs(v) for vals in high.values() for v in vals), default=mpf(0)) * FLOOR, mpf(TINY))
        noise = _noise(high, dps_low)
        for a in high:
            for (idx, _), lo, hi in zip(prep.layout[a], low[a], high[a]):
                diff = abs(lo - hi)
                if diff > mpf(10) ** -REFERENCE_DIGITS * max(abs(hi), scale) and diff > noise:
                    return f"{_label(a, idx)} ({lo} vs {hi})"
    return None


def _symbolic_mp(quantity: str, P: str, Q: str | None, point: Mapping[str, np.ndarray],
                 dps: int) -> tuple[dict[str, list[Any]], str]:
    """The partial derivatives as mpf, checked at two precisions; and the method used."""
    d = _derivation(quantity, P, Q)
    if d.conditions.never_finite:
        raise ValueError(f"{quantity}({P} || {Q}) is +inf for every parameter value: no gradient")
    if d.result != d.formula:  # a Piecewise: the point must be in the finite branch
        env = mpeval.environment(d.symbols, {_symbol_name(quantity, a): v for a, v in point.items()})
        with mpmath.workdps(dps):
            value = mpeval.evaluate(d.result, env)
        if not mpmath.isfinite(value):
            raise ValueError(f"{quantity}({P} || {Q}) is {value} at this point: no gradient "
                             f"({d.conditions.infinite_when})")
    prep = _prepare(quantity, P, Q, _dimension(point))
    current = dps
    low = _evaluate_once(quantity, P, Q, point, prep, current)
    while True:
        high = _evaluate_once(quantity, P, Q, point, prep, current + DPS_STEP)
        flat = [v for vals in high.values() for v in vals]
        if not all(mpmath.isfinite(v) for v in flat):
            bad = [_label(a, idx) for a, entries in prep.layout.items()
                   for (idx, _), v in zip(entries, high[a]) if not mpmath.isfinite(v)]
            raise ValueError(f"the derivative of {quantity}({P} || {Q}) is not finite at this point ({bad})")
        unstable = _disagreement(prep, low, high, current)
        if unstable is None:
            break
        if current + DPS_STEP >= dps + DPS_EXTRA_MAX:
            raise RuntimeError(f"reference unstable for {unstable}: no agreement to {REFERENCE_DIGITS} "
                               f"digits up to dps {current + DPS_STEP}")
        low, current = high, current + DPS_STEP
    with mpmath.workdps(current + DPS_STEP):
        noise = _noise(high, current + DPS_STEP)
        high = {a: [mpf(0) if abs(v) <= noise else v for v in vals] for a, vals in high.items()}
    return high, prep.method


def _to_arrays(values: Mapping[str, list[Any]], point: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {a: np.array([float(v) for v in vals], dtype=np.float64).reshape(point[a].shape)
            for a, vals in values.items()}


def symbolic_gradient(quantity: str, P: str, Q: str | None, point: dict[str, np.ndarray],
                      dps: int = 40) -> dict[str, np.ndarray]:
    """Partial derivatives of the closed form with respect to every argument of the
    generated function (raw: not projected onto the simplex / symmetric matrices), by
    SymPy ``diff`` evaluated in mpmath from ``dps`` digits up until two successive
    precisions agree to REFERENCE_DIGITS, rounded to float64. Raises ValueError where the quantity is
    infinite or its derivative is not finite."""
    quantity, P, Q = _canonical(quantity, P, Q)
    arrays = _point(quantity, P, Q, point)
    values, _ = _symbolic_mp(quantity, P, Q, arrays, dps)
    return _to_arrays(values, arrays)


# ==================================================================== torch autograd
def autograd_gradient(quantity: str, P: str, Q: str | None, point: dict[str, np.ndarray],
                      device: str = "cpu") -> dict[str, np.ndarray]:
    """torch.autograd of ``symkl.torch.functional.<name>`` at the point, float64 tensors on
    ``device`` (raw: not projected). Raises ValueError if the function is not generated."""
    import torch

    from symkl.torch import functional

    quantity, P, Q = _canonical(quantity, P, Q)
    _generated(quantity, P, Q)
    arrays = _point(quantity, P, Q, point)
    fn = getattr(functional, _function_name(quantity, P, Q))
    inputs = {a: torch.tensor(v, dtype=torch.float64, device=device, requires_grad=True)
              for a, v in arrays.items()}
    out = fn(**inputs, validate=False)
    grads = torch.autograd.grad(out, list(inputs.values()), allow_unused=True)
    return {a: (np.zeros_like(arrays[a]) if g is None else g.detach().to("cpu", torch.float64).numpy())
            for a, g in zip(inputs, grads)}


# ============================================================================ check
def _project(quantity: str, P: str, Q: str | None, arg: str, values: list[Any],
             shape: tuple[int, ...]) -> tuple[list[Any], str]:
    """Tangent-space projection (in mpmath, exact enough not to matter) and its note."""
    constraint = _family_parameter(quantity, P, Q, arg).constraint
    if constraint.event_total is not None:
        mean = mpmath.fsum(values) / len(values)
        return [v - mean for v in values], f"{arg}: simplex, mean of the components subtracted"
    if constraint.event_dim == 2:
        k = shape[0]
        out = [(values[i * k + j] + values[j * k + i]) / 2 for i in range(k) for j in range(k)]
        return out, f"{arg}: symmetric, (G + G^T)/2"
    return values, ""


def _gradcheck(quantity: str, P: str, Q: str | None, arrays: Mapping[str, np.ndarray],
               device: str) -> tuple[bool | None, str]:
    import torch

    from symkl.torch import functional

    fn = getattr(functional, _function_name(quantity, P, Q))
    names = list(arrays)
    symmetric = {a for a in names if _family_parameter(quantity, P, Q, a).constraint.event_dim == 2}

    def f(*xs: torch.Tensor) -> torch.Tensor:
        kw = {a: ((x + x.mT) / 2 if a in symmetric else x) for a, x in zip(names, xs)}
        return fn(**kw, validate=False)

    base = [torch.tensor(arrays[a], dtype=torch.float64, device=device) for a in names]
    with torch.no_grad():
        for n, a in enumerate(names):
            for index in np.ndindex(arrays[a].shape):
                for step in (-PROBE, PROBE):
                    xs = [t.clone() for t in base]
                    xs[n][index] += step
                    if not bool(torch.isfinite(f(*xs))):
                        return None, (f"gradcheck not applicable: not finite at {_label(a, index)} "
                                      f"{'+-'[step < 0]} {PROBE:g} (support edge or domain boundary)")
    inputs = tuple(t.clone().requires_grad_(True) for t in base)
    ok = torch.autograd.gradcheck(f, inputs, eps=GRADCHECK_EPS, raise_exception=False)
    return bool(ok), ""


def check_gradient(quantity: str, P: str, Q: str | None, point: dict[str, np.ndarray],
                   device: str = "cpu") -> GradientCheck:
    """Autograd of the generated torch function against the SymPy derivative, and
    gradcheck, at one point (see the module docstring for projection and error)."""
    import torch

    quantity, P, Q = _canonical(quantity, P, Q)
    _generated(quantity, P, Q)
    arrays = _point(quantity, P, Q, point)
    ref_mp, method = _symbolic_mp(quantity, P, Q, arrays, DPS)
    auto = autograd_gradient(quantity, P, Q, arrays, device)
    notes = [] if method == "SymPy diff of the formula" else [f"reference: {method}"]

    reference: dict[str, list[Any]] = {}
    autograd: dict[str, list[Any]] = {}
    labels: list[str] = []
    with mpmath.workdps(60):
        for a in arrays:
            shape = arrays[a].shape
            r, note = _project(quantity, P, Q, a, ref_mp[a], shape)
            g, _ = _project(quantity, P, Q, a, [mpf(float(x)) for x in auto[a].reshape(-1)], shape)
            reference[a], autograd[a] = r, g
            labels += [_label(a, idx) for idx in np.ndindex(shape)]
            if note:
                notes.append(note)
        # Projection residues of the reference's rounding noise are 0 (P == Q: the simplex
        # gradient log(p/q) + 1 is exactly constant, its projection exactly 0).
        noise = _noise(ref_mp, DPS)
        reference = {a: [mpf(0) if abs(v) <= noise else v for v in vals] for a, vals in reference.items()}
        flat_r = [v for a in arrays for v in reference[a]]
        flat_g = [v for a in arrays for v in autograd[a]]
        floor = max(max(abs(v) for v in flat_r) * FLOOR, mpf(TINY))
        errors = []
        for r, g in zip(flat_r, flat_g):
            errors.append(mpf("inf") if not mpmath.isfinite(g) else abs(g - r) / max(abs(r), floor))
        worst = max(range(len(errors)), key=lambda i: errors[i])

    if _uses_digamma(quantity, P, Q):
        notes.append("backward through torch.special.digamma: torch's float64 trigamma is "
                     "accurate to ~5e-10 relative (pass mark TRIGAMMA_TOLERANCE)")
    gradcheck, reason = _gradcheck(quantity, P, Q, arrays, device)
    if reason:
        notes.append(reason)
    if device != "cpu" and torch.device(device).type != "cpu":
        notes.append(f"device {device}")
    return GradientCheck(
        reference=_to_arrays(reference, arrays),
        autograd=_to_arrays(autograd, arrays),
        error=float(errors[worst]),
        worst=labels[worst],
        gradcheck=gradcheck,
        note="; ".join(notes),
    )
