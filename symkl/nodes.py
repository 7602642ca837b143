"""SymPy expression nodes that symkl needs and SymPy lacks.

* :class:`Expect` -- an unevaluated expectation ``E_P[g(x)]`` used in derivation steps.
* :class:`QuadForm` -- the scalar quadratic form ``v^T A v`` of a column vector, so that
  multivariate log-densities stay scalar expressions that mix freely with ``log det``.
* :func:`log_factorial_series` -- ``E[log X!]`` under Poisson(rate), which has no closed form.
"""

from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions import MatrixExpr


class Expect(sp.Function):
    """``Expect(g, P)``: the expectation of ``g`` under the distribution labelled ``P``."""

    nargs = 2
    is_commutative = True

    def _latex(self, printer) -> str:  # noqa: D401 - SymPy printer hook
        g, label = self.args
        return r"\mathbb{E}_{%s}\left[%s\right]" % (printer._print(label), printer._print(g))

    def _sympystr(self, printer) -> str:
        g, label = self.args
        return "E_%s[%s]" % (printer._print(label), printer._print(g))


class QuadForm(sp.Function):
    """``QuadForm(v, A) = v^T A v`` for a k x 1 vector ``v`` and k x k matrix ``A``."""

    nargs = 2
    is_commutative = True
    is_real = True

    @classmethod
    def eval(cls, v: sp.Basic, a: sp.Basic) -> sp.Expr | None:
        if isinstance(v, sp.ZeroMatrix) or v == 0:
            return sp.S.Zero
        if isinstance(v, sp.MatrixBase) and isinstance(a, sp.MatrixBase):
            return (v.T * a * v)[0, 0]
        return None

    def doit(self, **hints) -> sp.Expr:
        v, a = (arg.doit(**hints) if hints.get("deep", True) else arg for arg in self.args)
        if isinstance(v, MatrixExpr) and not isinstance(v, sp.MatrixBase):
            v = v.as_explicit() if v.shape[0].is_Integer else v
        if isinstance(a, MatrixExpr) and not isinstance(a, sp.MatrixBase):
            a = a.as_explicit() if a.shape[0].is_Integer else a
        return QuadForm(v, a)

    def _latex(self, printer) -> str:
        v, a = self.args
        vs = printer._print(v)
        if isinstance(v, (sp.MatAdd,)):
            vs = r"\left(%s\right)" % vs
        return r"%s^{\top} %s %s" % (vs, printer._print(a), vs)

    def _sympystr(self, printer) -> str:
        v, a = self.args
        vs = printer._print(v)
        if isinstance(v, sp.MatAdd):
            vs = "(%s)" % vs
        return "%s^T %s %s" % (vs, printer._print(a), vs)


class _Named(sp.Function):
    """Base for the display-only left-hand sides KL(P||Q), H(P), H(P, Q)."""

    is_commutative = True
    _latex_name = ""
    _str_name = ""

    def _latex(self, printer) -> str:
        return r"%s\left(%s\right)" % (self._latex_name, self._join(printer, r" \,\|\, "))

    def _sympystr(self, printer) -> str:
        return "%s(%s)" % (self._str_name, self._join(printer, " || "))

    def _join(self, printer, sep: str) -> str:
        return sep.join(printer._print(a) for a in self.args)


class KL(_Named):
    nargs = 2
    _latex_name = r"D_{\mathrm{KL}}"
    _str_name = "KL"


class Entropy(_Named):
    nargs = 1
    _latex_name = "H"
    _str_name = "H"


class CrossEntropy(_Named):
    nargs = 2
    _latex_name = "H"
    _str_name = "H"

    def _latex(self, printer) -> str:
        return r"H\left(%s\right)" % self._join(printer, ", ")

    def _sympystr(self, printer) -> str:
        return "H(%s)" % self._join(printer, ", ")


_N = sp.Symbol("n", integer=True, nonnegative=True)


def log_factorial_series(rate: sp.Expr, n: sp.Symbol = _N) -> sp.Sum:
    """``E[log X!]`` for X ~ Poisson(rate): no closed form, so derivations keep the series
    (and the code generator recognises it, see symkl.codegen.nodes.PoissonEntropy)."""
    return sp.Sum(sp.exp(-rate) * rate**n / sp.factorial(n) * sp.log(sp.factorial(n)), (n, 0, sp.oo))
