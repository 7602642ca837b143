"""Display nodes of the maximum-likelihood derivations.

They only print (LaTeX and text); the mathematics is done on ordinary SymPy expressions.
"""

from __future__ import annotations

import sympy as sp


def _vars(printer, variables: sp.Tuple) -> str:
    items = [printer._print(v) for v in variables]
    return items[0] if len(items) == 1 else "(" + ", ".join(items) + ")"


class ArgMin(sp.Function):
    """``ArgMin(f, (theta, ...))``: the minimiser of ``f`` over the listed parameters."""

    nargs = 2
    is_commutative = True
    _word = "min"

    def _latex(self, printer, exp=None) -> str:
        f, variables = self.args
        return r"\operatorname*{arg\,%s}_{%s} %s" % (self._word, _vars(printer, variables), printer._print(f))

    def _sympystr(self, printer) -> str:
        f, variables = self.args
        return "arg%s_%s %s" % (self._word, _vars(printer, variables), printer._print(f))


class ArgMax(ArgMin):
    """``ArgMax(f, (theta, ...))``: the maximiser of ``f`` over the listed parameters."""

    _word = "max"


class Optimal(sp.Function):
    """``theta*``: the optimal value of a parameter."""

    nargs = 1
    is_commutative = True

    def _latex(self, printer, exp=None) -> str:
        return r"%s^{*}" % printer._print(self.args[0])

    def _sympystr(self, printer) -> str:
        return "%s*" % printer._print(self.args[0])


class Estimate(sp.Function):
    """``hat(theta)``: the maximum-likelihood estimate of a parameter from a sample."""

    nargs = 1
    is_commutative = True

    def _latex(self, printer, exp=None) -> str:
        return r"\hat{%s}" % printer._print(self.args[0])

    def _sympystr(self, printer) -> str:
        return "hat(%s)" % printer._print(self.args[0])


def _at_sample_point(g: sp.Basic, x: sp.Basic) -> sp.Basic:
    """``g(x)`` written at the n-th observation: x -> x_n (x[i] -> x_n[i])."""
    if isinstance(x, sp.IndexedBase):
        return g.replace(lambda e: isinstance(e, sp.Indexed) and e.base == x,
                         lambda e: sp.IndexedBase("x_n")[e.indices])
    return g.xreplace({x: sp.Symbol("x_n", real=True)})


class SampleAverage(sp.Function):
    """``SampleAverage(g, x) = (1/N) sum_n g(x_n)``: the sample counterpart of E_data[g(x)]."""

    nargs = 2
    is_commutative = True

    def _latex(self, printer, exp=None) -> str:
        g, x = self.args
        return r"\frac{1}{N}\sum_{n=1}^{N} %s" % printer._print(_at_sample_point(g, x))

    def _sympystr(self, printer) -> str:
        g, x = self.args
        return "mean_n[%s]" % printer._print(_at_sample_point(g, x))


class StationaryEquation(sp.Function):
    """``d/dtheta E_data[log q_theta(x)]``: the stationarity condition, displayed."""

    nargs = 2
    is_commutative = True

    def _latex(self, printer, exp=None) -> str:
        f, var = self.args
        return r"\frac{\partial}{\partial %s} %s" % (printer._print(var), printer._print(f))

    def _sympystr(self, printer) -> str:
        f, var = self.args
        return "d/d%s %s" % (printer._print(var), printer._print(f))


class NegHessian(sp.Function):
    """``-Hessian of L at theta*``: the second-order condition's matrix, displayed."""

    nargs = 1
    is_commutative = True

    def _latex(self, printer, exp=None) -> str:
        return r"-\nabla^{2}_{%s} L\left(%s^{*}\right)" % (
            _vars(printer, self.args[0]), _vars(printer, self.args[0]))

    def _sympystr(self, printer) -> str:
        return "-Hessian_%s L(theta*)" % _vars(printer, self.args[0])
