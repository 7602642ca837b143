"""SymPy nodes for the stable kernels that generated code calls.

Each node is a Bregman divergence ``B_f(x + d, x) = f(x + d) - f(x) - f'(x) d`` of a convex
generator ``f``: non-negative, zero exactly at ``d = 0``, and computed by
:mod:`symkl.kernels` without the cancellation that its elementary form suffers when ``d`` is
small (P close to Q). The elementary form is the node's meaning: ``elementary()`` returns
it, so every rewrite that introduces a node can be checked against the original result, and
mpmath evaluates it (through ``to_elementary``) at high precision for references.
"""

from __future__ import annotations


import sympy as sp

from symkl.nodes import log_factorial_series


class Bregman(sp.Function):
    """``B_f(x + d, x)`` for the generator of the subclass; arguments ``(x, d)``."""

    nargs = 2
    is_commutative = True
    is_real = True
    #: Name of the kernel in :mod:`symkl.kernels.torch` / :mod:`symkl.kernels.numpy`.
    kernel: str = ""
    #: How the generator prints in derivation documents.
    generator_latex: str = ""

    @staticmethod
    def generator(y: sp.Expr) -> sp.Expr:
        raise NotImplementedError

    @classmethod
    def eval(cls, x: sp.Expr, d: sp.Expr) -> sp.Expr | None:
        return sp.S.Zero if d == 0 else None

    def elementary(self) -> sp.Expr:
        x, d = self.args
        y = sp.Symbol("y")
        f, df = self.generator(y), sp.diff(self.generator(y), y)
        return f.subs(y, x + d) - f.subs(y, x) - df.subs(y, x) * d

    def _latex(self, printer) -> str:
        x, d = (printer._print(a) for a in self.args)
        return r"B_{%s}\left(%s\right)" % (self.generator_latex, f"{x}, {d}")

    def _sympystr(self, printer) -> str:
        return f"{self.kernel}({printer._print(self.args[0])}, {printer._print(self.args[1])})"


class NeglogBregman(Bregman):
    """``d/x - log(1 + d/x)``: generator ``-log y`` (the Itakura-Saito divergence)."""

    kernel = "neglog_bregman"
    generator_latex = r"-\log"

    @staticmethod
    def generator(y: sp.Expr) -> sp.Expr:
        return -sp.log(y)




class XlogxBregman(Bregman):
    """``(x + d) log(1 + d/x) - d``: generator ``y log y`` (the generalised KL term)."""

    kernel = "xlogx_bregman"
    generator_latex = r"y \log y"

    @staticmethod
    def generator(y: sp.Expr) -> sp.Expr:
        return y * sp.log(y)




class ExpBregman(Bregman):
    """``exp(x) (expm1(d) - d)``: generator ``exp y``."""

    kernel = "exp_bregman"
    generator_latex = r"\exp"

    @staticmethod
    def generator(y: sp.Expr) -> sp.Expr:
        return sp.exp(y)




class LgammaBregman(Bregman):
    """``lnGamma(x + d) - lnGamma(x) - d psi(x)``: generator ``lnGamma y``."""

    kernel = "lgamma_bregman"
    generator_latex = r"\ln\Gamma"

    @staticmethod
    def generator(y: sp.Expr) -> sp.Expr:
        return sp.loggamma(y)




class LgammaResidualBregman(Bregman):
    """``B_lnGamma - B_{y log y}``: generator ``phi(y) = lnGamma(y) - y log y + y``, convex
    (phi'' = psi' - 1/y > 0). For large arguments B_lnGamma and B_{y log y} agree to ~1/(2x)
    of their size; families whose KL contains both (Gamma) are written with this node and
    one merged ``y log y`` divergence instead, so that nothing cancels."""

    kernel = "lgamma_residual_bregman"
    generator_latex = r"\ln\Gamma - y \log y"

    @staticmethod
    def generator(y: sp.Expr) -> sp.Expr:
        return sp.loggamma(y) - y * sp.log(y) + y


class ProductDifference(sp.Function):
    """``a b - c e``, kept whole so that its kernel computes it from exact products: near
    P = Q a determinant like ``a_q b_p - a_p b_q`` is a tiny difference of two products."""

    nargs = 4
    is_real = True
    kernel = "product_difference"

    def elementary(self) -> sp.Expr:
        a, b, c, e = self.args
        return a * b - c * e

    def _latex(self, printer) -> str:
        return r"\left(%s\right)" % printer._print(self.elementary())

    def _sympystr(self, printer) -> str:
        return f"{self.kernel}({', '.join(printer._print(a) for a in self.args)})"


class IfLessEqual(sp.Function):
    """``then if lhs <= rhs else otherwise``: a per-element choice that stays where it is
    written (SymPy folds a Piecewise inside a Sum out to the whole summand, which would
    duplicate every kernel call of the summand into both branches)."""

    nargs = 4
    is_real = True

    def elementary(self) -> sp.Expr:
        lhs, rhs, then, otherwise = self.args
        return sp.Piecewise((then, lhs <= rhs), (otherwise, True))

    def _latex(self, printer) -> str:
        return printer._print(self.elementary())


class NeglogdetBregman(Bregman):
    """``tr(A^-1 B) - k - log det(A^-1 B)`` for k x k positive-definite ``A`` (base) and ``B``:
    the Bregman divergence of ``-log det`` (twice the KL between zero-mean Gaussians).
    Its kernel works on Cholesky factors, so it never forms an inverse."""

    kernel = "neglogdet_bregman"
    generator_latex = r"-\log\det"

    @classmethod
    def eval(cls, a: sp.Expr, b: sp.Expr) -> sp.Expr | None:
        return sp.S.Zero if a == b else None

    def elementary(self) -> sp.Expr:
        a, b = self.args
        return (sp.Trace(sp.Inverse(a) * b) - a.shape[0]
                - sp.log(sp.Determinant(b)) + sp.log(sp.Determinant(a)))

    def _latex(self, printer) -> str:
        a, b = (printer._print(arg) for arg in self.args)
        return r"B_{-\log\det}\left(%s, %s\right)" % (b, a)


class Log1p(sp.Function):
    """``log(1 + s)``, kept as a node so that it prints as ``log1p`` (SymPy folds it)."""

    nargs = 1
    is_real = True

    @classmethod
    def eval(cls, s: sp.Expr) -> sp.Expr | None:
        return sp.S.Zero if s == 0 else None

    def elementary(self) -> sp.Expr:
        return sp.log(1 + self.args[0])

    def _latex(self, printer) -> str:
        return r"\log\left(1 + %s\right)" % printer._print(self.args[0])


class PoissonEntropy(sp.Function):
    """``H(Poisson(rate)) = rate - rate log(rate) + E[log X!]``.

    Not a Bregman divergence, but the same problem: as derived, two terms of size
    ``rate log rate`` cancel down to ``log(2 pi e rate)/2``. Its kernel sums the positive
    terms ``-p_k log p_k`` (small rates) or the asymptotic series (large ones), so any
    result containing ``E[log X!]`` is printed through it (see symkl.kernels._float64)."""

    nargs = 1
    is_real = True
    kernel = "poisson_entropy"

    @classmethod
    def eval(cls, rate: sp.Expr) -> sp.Expr | None:
        return sp.S.Zero if rate == 0 else None

    def elementary(self) -> sp.Expr:
        rate = self.args[0]
        return rate - rate * sp.log(rate) + log_factorial_series(rate)

    def _latex(self, printer) -> str:
        return r"H_{\mathrm{Poisson}}\left(%s\right)" % printer._print(self.args[0])

    def _sympystr(self, printer) -> str:
        return f"{self.kernel}({printer._print(self.args[0])})"


STABLE_NODES: tuple[type[sp.Function], ...] = (
    NeglogBregman, NeglogdetBregman, XlogxBregman, ExpBregman, LgammaBregman, LgammaResidualBregman,
    ProductDifference, IfLessEqual, Log1p, PoissonEntropy,
)


def to_elementary(expr: sp.Expr) -> sp.Expr:
    """Replace every stable node by its elementary meaning."""
    return expr.replace(lambda e: isinstance(e, STABLE_NODES), lambda e: e.elementary())
