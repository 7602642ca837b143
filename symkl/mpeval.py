"""Evaluate symkl's SymPy expressions in mpmath at a given precision.

A small whitelisting evaluator rather than ``evalf``/``lambdify``: every node type is
mapped explicitly and anything unknown raises, so a numeric check can never silently
evaluate something other than the expression (SymPy's ``evalf`` on infinite sums and
matrix expressions is slow or gives up; ``lambdify`` falls back to ``math``).

Values in the environment: ``mpf`` for scalars, lists of ``mpf`` for IndexedBase
parameters, ``mpmath.matrix`` for MatrixSymbols.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import mpmath
import sympy as sp

from symkl.nodes import Expect, QuadForm

Env = Mapping[sp.Basic, Any]
ExpectHook = Callable[[Expect, Env], Any]


class UnsupportedNode(TypeError):
    pass


_UNARY: dict[type, Callable[[Any], Any]] = {
    sp.exp: mpmath.exp,
    sp.log: mpmath.log,
    sp.loggamma: mpmath.loggamma,
    sp.gamma: mpmath.gamma,
    sp.erf: mpmath.erf,
    sp.erfc: mpmath.erfc,
    sp.Abs: abs,
    sp.factorial: mpmath.factorial,
    sp.sign: mpmath.sign,
}

_CONSTANTS = {
    sp.pi: lambda: +mpmath.pi,
    sp.E: lambda: +mpmath.e,
    sp.EulerGamma: lambda: +mpmath.euler,
}


def _log(x: Any) -> Any:
    # log 0 = -inf so that 0 * log 0 can be handled by the caller's conventions.
    return mpmath.ninf if x == 0 else mpmath.log(x)


def evaluate(expr: sp.Basic, env: Env, expect: ExpectHook | None = None) -> Any:
    """Evaluate ``expr`` with mpmath at the current ``mpmath.mp.dps``."""

    def ev(e: sp.Basic, local: Env) -> Any:
        if e in local:
            return local[e]
        if e.is_Integer:
            return mpmath.mpf(int(e))
        if e.is_Rational:
            return mpmath.mpf(int(e.p)) / int(e.q)
        if e.is_Float:
            return mpmath.mpf(e)
        if e is sp.oo:
            return mpmath.inf
        if e is sp.S.NegativeInfinity:
            return mpmath.ninf
        if e in _CONSTANTS:
            return _CONSTANTS[e]()
        if isinstance(e, sp.MatrixExpr):
            return _matrix(e, local)
        if isinstance(e, sp.Add):
            return mpmath.fsum(ev(a, local) for a in e.args)
        if isinstance(e, sp.Mul):
            # An exact zero factor wins: this is the 0 log 0 = 0 convention of every
            # discrete entropy/KL (the infinite cases are separate Piecewise branches).
            # Factors free of log are evaluated first, so that p * log(p / q) with
            # p = q = 0 returns 0 before the undefined log(0 / 0) is ever formed.
            vals = []
            for a in sorted(e.args, key=lambda a: a.has(sp.log)):
                v = ev(a, local)
                if isinstance(v, mpmath.mpf) and v == 0:
                    return mpmath.mpf(0)
                vals.append(v)
            out = mpmath.mpf(1)
            for v in vals:
                out *= v
            return out
        if isinstance(e, sp.Pow):
            base, ex = ev(e.base, local), ev(e.exp, local)
            if e.exp == sp.S.Half:
                return mpmath.sqrt(base)
            return base**ex
        if isinstance(e, sp.log):
            return _log(ev(e.args[0], local))
        if isinstance(e, sp.polygamma):
            return mpmath.polygamma(int(e.args[0]), ev(e.args[1], local))
        if type(e) in _UNARY:
            return _UNARY[type(e)](ev(e.args[0], local))
        if isinstance(e, sp.Indexed):
            base = local[e.base] if e.base in local else local[e.base.label]
            return base[int(ev(e.indices[0], local))]
        if isinstance(e, sp.Sum):
            return _sum(e, local)
        if isinstance(e, sp.Piecewise):
            for value, cond in e.args:
                if cond is sp.true or bool(ev(cond, local)):
                    return ev(value, local)
            raise ValueError(f"no branch of {e} holds")
        if isinstance(e, sp.Eq):
            return ev(e.lhs, local) == ev(e.rhs, local)
        if isinstance(e, sp.Ne):
            return ev(e.lhs, local) != ev(e.rhs, local)
        if isinstance(e, (sp.StrictLessThan, sp.LessThan, sp.StrictGreaterThan, sp.GreaterThan)):
            a, b = ev(e.lhs, local), ev(e.rhs, local)
            return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[e.rel_op]
        if isinstance(e, sp.And):
            return all(ev(a, local) for a in e.args)
        if isinstance(e, sp.Or):
            return any(ev(a, local) for a in e.args)
        if isinstance(e, sp.Not):
            return not ev(e.args[0], local)
        if e is sp.true:
            return True
        if e is sp.false:
            return False
        if isinstance(e, Expect):
            if expect is None:
                raise UnsupportedNode("Expect node without an expectation hook")
            return expect(e, local)
        if isinstance(e, QuadForm):
            v, a = ev(e.args[0], local), ev(e.args[1], local)
            return (v.T * a * v)[0, 0]
        if isinstance(e, sp.Determinant):
            return mpmath.det(ev(e.args[0], local))
        if isinstance(e, sp.Trace):
            m = ev(e.args[0], local)
            return mpmath.fsum(m[i, i] for i in range(m.rows))
        raise UnsupportedNode(f"mpeval cannot evaluate {type(e).__name__}: {e}")

    def _matrix(e: sp.MatrixExpr, local: Env) -> Any:
        if e in local:
            return local[e]
        if isinstance(e, sp.Inverse):
            return ev(e.args[0], local) ** -1
        if isinstance(e, sp.Transpose):
            return ev(e.args[0], local).T
        if isinstance(e, sp.MatMul):
            out = None
            for a in e.args:
                val = ev(a, local)
                out = val if out is None else out * val
            return out
        if isinstance(e, sp.MatAdd):
            vals = [ev(a, local) for a in e.args]
            out = vals[0]
            for v in vals[1:]:
                out = out + v
            return out
        if isinstance(e, sp.Identity):
            return mpmath.eye(int(ev(e.args[0], local)))
        if isinstance(e, sp.ZeroMatrix):
            return mpmath.zeros(int(ev(e.args[0], local)), int(ev(e.args[1], local)))
        raise UnsupportedNode(f"mpeval cannot evaluate {type(e).__name__}: {e}")

    def _sum(e: sp.Sum, local: Env) -> Any:
        (var, lo, hi), = e.limits
        lo_v, hi_v = int(ev(lo, local)), ev(hi, local)
        label = var.label if isinstance(var, sp.Idx) else var

        def term(n: Any) -> Any:
            return ev(e.function, {**local, var: mpmath.mpf(n), label: mpmath.mpf(n)})

        if hi_v == mpmath.inf:
            return mpmath.nsum(term, [lo_v, mpmath.inf])
        return mpmath.fsum(term(n) for n in range(lo_v, int(hi_v) + 1))

    return ev(expr, dict(env))


def exact_value(symbol: sp.Basic, value: Any) -> Any:
    """The mpmath value of a numeric parameter, exact on its binary value: ``mpf`` for a
    scalar, a list of ``mpf`` for a vector, ``mpmath.matrix`` for a MatrixSymbol (vectors of
    the matrix families as k x 1 matrices)."""
    import numpy as np

    v = np.asarray(value)
    if isinstance(symbol, sp.MatrixSymbol):
        return mpmath.matrix(v.tolist() if v.ndim == 2 else [[float(t)] for t in v])
    if v.ndim:
        return [mpmath.mpf(float(t)) for t in v]
    return mpmath.mpf(float(v))


def environment(symbols: Mapping[str, sp.Basic], values: Mapping[str, Any]) -> dict[sp.Basic, Any]:
    """An evaluation environment from numeric values by parameter name (``loc_p`` ...),
    with the event dimension k set from any vector value."""
    from symkl.family import DIM  # family imports nothing from here; keep the edge one-way

    env: dict[sp.Basic, Any] = {}
    for name, value in values.items():
        sym = symbols[name]
        env[sym] = exact_value(sym, value)
        shape = getattr(value, "shape", ())
        if len(shape):
            env[DIM] = mpmath.mpf(shape[-1])
    return env

