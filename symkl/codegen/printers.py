"""Code printers for the numpy and torch backends.

Every SymPy node a result can contain is mapped explicitly; anything else raises
:class:`UnsupportedNode` instead of falling back to scalar ``math`` calls (SymPy's own
numpy printer does that for some nodes, and its torch printer emits calls that do not exist,
see docs/architecture.md). Numbers are folded to Python floats at full double precision
(``torch.log(2)`` is a TypeError; ``0.9189385332046727`` is not).

Index conventions: an indexed parameter ``loc_p[i]`` is the whole tensor ``loc_p`` whose last
axis is the event axis, and a sum over i is a reduction over that axis. A total inside a
summand (``sum_j a_p[j]``) keeps the axis so that it broadcasts against ``a_p``.
Matrix parameters are used only through their Cholesky factors ``chol_<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter
from sympy.simplify.simplify import sum_combine

from symkl.codegen.nodes import (Bregman, IfLessEqual, Log1p, NeglogdetBregman, PoissonEntropy, ProductDifference,
                                 to_elementary)
from symkl.family import DIM
from symkl.nodes import QuadForm


def _combined_sums(expr: sp.Expr) -> sp.Expr:
    """``sum_j a[j] + sum_j (b[j] - a[j])`` as ``sum_j b[j]`` (other expressions unchanged)."""
    terms = sp.Add.make_args(sp.expand(expr))
    if len(terms) < 2 or not all(isinstance(t, sp.Sum) for t in terms):
        return expr
    return sum_combine(list(terms))


class UnsupportedNode(TypeError):
    """A SymPy node the backend has no mapping for."""


@dataclass(frozen=True)
class Backend:
    """How one array library spells the operations the printers need."""

    name: str
    module: str  # how the generated module refers to the library
    functions: dict[type, str]
    where: str
    #: logical and / or of two boolean arrays, format with {a} and {b}
    both: str
    either: str
    reduce_sum: str  # format with {arg} and {keepdim}
    true_keepdim: str
    polygamma: str  # format with {n} and {arg}
    digamma: str
    xlogy: str
    logsumexp: str  # format with {arg} and {keepdim}
    kernels: str  # the module alias for symkl.kernels.<backend>
    linalg: str  # the module alias for the Cholesky-factor kernels


TORCH = Backend(
    name="torch",
    module="torch",
    functions={
        sp.log: "torch.log", sp.exp: "torch.exp", sp.Abs: "torch.abs", sp.erf: "torch.special.erf",
        sp.erfc: "torch.special.erfc", sp.loggamma: "torch.lgamma", Log1p: "torch.log1p",
    },
    where="torch.where",
    both="kernels.both({a}, {b})",  # selects, not & and | (see symkl.kernels.torch.both)
    either="kernels.either({a}, {b})",
    reduce_sum="kernels.sum_last({arg}{keepdim})",  # torch.sum, or an operator when compiled
    true_keepdim=", keepdim=True",
    polygamma="torch.special.polygamma({n}, {arg})",
    digamma="torch.special.digamma",
    xlogy="torch.special.xlogy",
    logsumexp="torch.logsumexp({arg}, dim=-1{keepdim})",
    kernels="kernels",
    linalg="linalg",
)

NUMPY = Backend(
    name="numpy",
    module="np",
    functions={
        sp.log: "np.log", sp.exp: "np.exp", sp.Abs: "np.abs", sp.erf: "special.erf",
        sp.erfc: "special.erfc", sp.loggamma: "special.lgamma", Log1p: "np.log1p",
    },
    where="np.where",
    both="({a} & {b})",
    either="({a} | {b})",
    reduce_sum="np.sum({arg}, axis=-1{keepdim})",
    true_keepdim=", keepdims=True",
    polygamma="special.polygamma({n}, {arg})",
    digamma="special.digamma",
    xlogy="special.xlogy",
    logsumexp="special.logsumexp({arg}{keepdim})",
    kernels="kernels",
    linalg="special",
)

BACKENDS = {"torch": TORCH, "numpy": NUMPY}


class ArrayPrinter(StrPrinter):
    """Python source for one backend; see the module docstring for the conventions."""

    # Not "_sympystr": the nodes' own display methods must not leak into code.
    printmethod = "_symkl_array_code"

    def __init__(self, backend: Backend, dim_source: str | None = None, zero_log_zero: bool = False):
        super().__init__({"order": "none"})
        self.backend = backend
        self.dim_source = dim_source  # expression giving k, e.g. "loc_p.shape[-1]"
        # Discrete families' convention 0 log 0 = 0: print a*log(u) as xlogy(a, u).
        self.zero_log_zero = zero_log_zero
        self._sum_depth = 0

    def _print_Mul(self, expr, *args) -> str:
        paired = self._pair_powers(expr)
        if paired is not None:
            return paired
        logs = [f for f in expr.args if isinstance(f, sp.log)]
        if self.zero_log_zero and len(logs) == 1:
            coeff = expr / logs[0]
            sign, coeff = (-1, -coeff) if coeff.could_extract_minus_sign() else (1, coeff)
            text = f"{self.backend.xlogy}({self._print(coeff)}, {self._print(logs[0].args[0])})"
            return ("-" if sign < 0 else "") + text
        return super()._print_Mul(expr, *args)

    # -- numbers -----------------------------------------------------------------------------

    def _number(self, expr: sp.Expr) -> str:
        if expr.is_Integer:
            return str(int(expr))
        value = float(sp.N(expr, 30))
        if value == float("inf"):
            return "math.inf"
        if value == float("-inf"):
            return "-math.inf"
        return repr(value)

    def _print(self, expr, **kwargs) -> str:
        if isinstance(expr, sp.Expr) and expr.is_number and not expr.has(sp.Sum):
            return self._number(expr)
        return super()._print(expr, **kwargs)

    def _pair_powers(self, expr: sp.Mul) -> str | None:
        """``a**2 / b**2`` as ``(a/b)**2``: the ratio of two scales squared cannot overflow
        or underflow where the squares alone would (scales of 1e-30 or 1e30 in float32)."""
        ups = [f for f in expr.args if f.is_Pow and f.exp.is_Integer and f.exp > 1]
        downs = [f for f in expr.args if f.is_Pow and f.exp.is_Integer and f.exp < -1]
        for up in ups:
            for down in downs:
                if up.exp == -down.exp:
                    rest = sp.Mul(*[f for f in expr.args if f is not up and f is not down])
                    ratio = f"(({self._print(up.base)})/{self.parenthesize(down.base, PRECEDENCE['Mul'], strict=True)})**{int(up.exp)}"
                    if rest == 1:
                        return ratio
                    if rest.is_Rational and abs(rest.p) == 1:
                        return f"{'-' if rest.p < 0 else ''}{ratio}/{rest.q}"
                    return f"{ratio}*{self.parenthesize(rest, PRECEDENCE['Mul'])}"
        return None

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        if expr == DIM:
            if self.dim_source is None:
                raise UnsupportedNode("the event dimension k is used but no vector parameter gives it")
            return self.dim_source
        return expr.name

    # -- arithmetic: nested sums keep their parentheses (stable differences) -----------------

    def _print_Add(self, expr, order=None) -> str:
        out = ""
        for i, term in enumerate(expr.args):
            text = self._print(term)
            if isinstance(term, sp.Add):
                text = f"({text})"
            if i == 0:
                out = text
            elif text.startswith("-"):
                out += " - " + text[1:]
            else:
                out += " + " + text
        return out

    def _print_Pow(self, expr, rational=False) -> str:
        base, exp = expr.args
        b = self.parenthesize(base, PRECEDENCE["Pow"], strict=True)
        if exp == sp.S.Half:
            return f"{self.backend.module}.sqrt({self._print(base)})"
        if exp == -sp.S.Half:
            return f"1/{self.backend.module}.sqrt({self._print(base)})"
        if exp.is_Integer:
            n = int(exp)
            if n == -1:
                return f"1/{b}"
            return f"{b}**{n}" if n > 0 else f"1/{b}**{-n}"
        return f"{b}**{self.parenthesize(exp, PRECEDENCE['Pow'], strict=True)}"

    # -- functions -----------------------------------------------------------------------------

    def _print_Function(self, expr: sp.Function) -> str:
        name = self.backend.functions.get(type(expr))
        if name is None:
            raise UnsupportedNode(f"no {self.backend.name} mapping for {type(expr).__name__}: {expr}")
        return f"{name}({', '.join(self._print(a) for a in expr.args)})"

    _print_exp = _print_Abs = _print_erf = _print_erfc = _print_Function
    _print_loggamma = _print_Function

    def _print_Log1p(self, expr: Log1p) -> str:
        """``log1p(d/x)``; where the endpoint y = x + d simplifies, the kernel that also takes
        y and x: near the pole (y << x) 1 + d/x has lost d/x's digits, log(y/x) has not."""
        s = expr.args[0]
        d, x = sp.fraction(sp.together(s))
        y = sp.factor(sp.expand(d + x))
        if x != 1 and sp.count_ops(y) < sp.count_ops(d) and y.free_symbols:
            (y_base, n), (x_base, m) = y.as_base_exp(), x.as_base_exp()
            if n == m and n.is_Integer and n != 1:  # log(a^n/b^n) = n log(a/b): no a^n to overflow
                t = self._print((y_base - x_base) / x_base)
                return f"{int(n)}*{self.backend.kernels}.log1p_ratio({t}, {self._print(y_base)}, {self._print(x_base)})"
            return (f"{self.backend.kernels}.log1p_ratio({self._print(s)}, {self._print(y)}, "
                    f"{self._print(x)})")
        return self._print_Function(expr)

    def _print_polygamma(self, expr: sp.polygamma) -> str:
        n, arg = expr.args
        if n == 0:  # symkl's kernel: its autograd is an accurate trigamma (torch's is not)
            return f"{self.backend.kernels}.digamma({self._print(arg)})"
        return self.backend.polygamma.format(n=int(n), arg=self._print(arg))

    def _print_PoissonEntropy(self, expr: PoissonEntropy) -> str:
        return f"{self.backend.kernels}.{expr.kernel}({self._print(expr.args[0])})"

    def _print_Bregman(self, expr: Bregman) -> str:
        return f"{self.backend.kernels}.{expr.kernel}({self._print(expr.args[0])}, {self._print(expr.args[1])})"

    _print_ExpBregman = _print_Bregman

    def _print_EndpointBregman(self, expr: Bregman) -> str:
        """Kernels that also take y = x + d: passed where x + d simplifies (``probs_q +
        (probs_p - probs_q)`` is ``probs_p``), so that far from x, where the difference d
        has been rounded, the kernel still sees the exact endpoint."""
        x, d = expr.args
        y = min((form(to_elementary(sp.Add(x, d))) for form in (sp.expand, sp.cancel, _combined_sums)),
                key=sp.count_ops)
        args = [self._print(x), self._print(d)]
        if sp.count_ops(y) < sp.count_ops(x) + sp.count_ops(d) + 1:
            args.append(self._print(y))
        return f"{self.backend.kernels}.{expr.kernel}({', '.join(args)})"

    _print_XlogxBregman = _print_LgammaBregman = _print_LgammaResidualBregman = _print_EndpointBregman

    def _print_IfLessEqual(self, expr: IfLessEqual) -> str:
        lhs, rhs, then, otherwise = (self._print(a) for a in expr.args)
        return f"{self.backend.where}({lhs} <= {rhs}, {then}, {otherwise})"

    def _print_ProductDifference(self, expr: ProductDifference) -> str:
        return f"{self.backend.kernels}.{expr.kernel}({', '.join(self._print(a) for a in expr.args)})"

    def _print_NeglogBregman(self, expr) -> str:
        """``B_{-log}(x + d, x) = h(d/x)`` depends on d/x only: pass ``(1, d/x)`` and divide
        each factor of d by the base of x, so that s_p^2 - s_q^2 over s_q^2 is formed as
        ((s_p - s_q)/s_q)((s_p + s_q)/s_q): no square of a scale can under- or overflow."""
        x, d = expr.args
        base, n = x.as_base_exp()
        factors = sp.Mul.make_args(d)
        sums = [f for f in factors if isinstance(f, sp.Add)]
        others = [f for f in factors if not isinstance(f, sp.Add)]
        if x == 1:
            s = self._print(d)
        elif n.is_Integer and int(n) == len(sums) > 0:
            b = self.parenthesize(base, PRECEDENCE["Mul"], strict=True)
            s = "*".join(f"(({self._print(f)})/{b})" for f in sums)
            if others:
                s = f"{self.parenthesize(sp.Mul(*others), PRECEDENCE['Mul'])}*{s}"
        else:
            s = self._print(d / x)
        # y = x + d = a**n: far from r = y/x = 1, log r = n (log a - log b) is exact where
        # 1 + s is not (s_p/s_q = 1e-60); the split kernel picks the right one per element.
        y_base, y_exp = sp.factor(x + d).as_base_exp()
        if x != 1 and y_exp == n == 2 and y_base.free_symbols and base.free_symbols:
            # s = r**2 - 1 with r = a/b: h(s) = 2 h(t) + t**2, t = r - 1 = (a - b)/b, both
            # terms >= 0 and t one rounding away (s = t (2 + t) would be two).
            b = self.parenthesize(base, PRECEDENCE["Mul"], strict=True)
            t = f"(({self._print(y_base - base)})/{b})"
            split = (f"{self.backend.kernels}.neglog_bregman_split({t}, "
                     f"{self.backend.kernels}.log_ratio({self._print(y_base)}, {self._print(base)}))")
            return f"(2*{split} + {t}**2)"
        if x != 1 and y_exp == n and y_base.free_symbols and base.free_symbols:
            log_r = f"{self.backend.kernels}.log_ratio({self._print(y_base)}, {self._print(base)})"
            log_r = log_r if n == 1 else f"{int(n)}*{log_r}"
            return f"{self.backend.kernels}.neglog_bregman_split({s}, {log_r})"
        return f"{self.backend.kernels}.neglog_bregman(1, {s})"

    # -- matrices: through Cholesky factors ------------------------------------------------

    def _chol(self, m: sp.Basic) -> str:
        if not isinstance(m, sp.MatrixSymbol):
            raise UnsupportedNode(f"matrix argument must be a parameter, got {m}")
        return f"chol_{m.name}"

    def _print_NeglogdetBregman(self, expr: NeglogdetBregman) -> str:
        a, b = expr.args
        return f"{self.backend.linalg}.neglogdet_bregman({self._chol(a)}, {self._chol(b)})"

    def _print_QuadForm(self, expr: QuadForm) -> str:
        v, a = expr.args
        if not isinstance(a, sp.Inverse):
            raise UnsupportedNode(f"quadratic form with a non-inverse matrix: {expr}")
        return f"{self.backend.linalg}.mahalanobis_sq({self._chol(a.args[0])}, {self._vector(v)})"

    def _print_Determinant(self, expr: sp.Determinant) -> str:
        raise UnsupportedNode("a bare determinant: only log det is generated (from the Cholesky factor)")

    def _print_log(self, expr: sp.log) -> str:  # noqa: F811 - log det is special
        arg = expr.args[0]
        if isinstance(arg, sp.Determinant):
            return f"{self.backend.linalg}.logdet({self._chol(arg.args[0])})"
        return self._print_Function(expr)

    def _print_Trace(self, expr: sp.Trace) -> str:
        m = expr.args[0]
        if isinstance(m, sp.MatMul) and len(m.args) == 2 and isinstance(m.args[0], sp.Inverse):
            return f"{self.backend.linalg}.trace_inv_mul({self._chol(m.args[0].args[0])}, {self._chol(m.args[1])})"
        if isinstance(m, sp.MatrixSymbol):
            return f"{self.backend.kernels}.trace({m.name})"
        raise UnsupportedNode(f"trace of {m}")

    def _vector(self, v: sp.Basic) -> str:
        if isinstance(v, sp.MatrixSymbol):
            return v.name
        if isinstance(v, sp.MatAdd):
            parts = []
            for t in v.args:
                if isinstance(t, sp.MatMul) and t.args[0] == -1 and len(t.args) == 2:
                    parts.append(f"- {t.args[1].name}")
                else:
                    parts.append(f"+ {self._vector(t)}")
            text = " ".join(parts)
            return f"({text[2:] if text.startswith('+ ') else '-' + text[2:]})"
        raise UnsupportedNode(f"vector expression {v}")

    # -- indexed families ---------------------------------------------------------------------

    def _print_Indexed(self, expr: sp.Indexed) -> str:
        return expr.base.label.name

    def _print_Sum(self, expr: sp.Sum) -> str:
        (var, lo, hi), = expr.limits
        if lo != 0 or sp.simplify(hi - (DIM - 1)) != 0:
            raise UnsupportedNode(f"sum over a range other than the event axis: {expr}")
        if not expr.function.has(var):  # a constant summand: k times it
            return self._print(sp.Mul(hi - lo + 1, expr.function))
        # Inside a summand a total keeps the event axis, to broadcast against the summand.
        keep = self.backend.true_keepdim if self._sum_depth > 0 else ""
        self._sum_depth += 1
        try:
            body = self._print(expr.function)
        finally:
            self._sum_depth -= 1
        return self.backend.reduce_sum.format(arg=body, keepdim=keep)

    def _print_LogSumExp(self, expr) -> str:
        keep = self.backend.true_keepdim if self._sum_depth > 0 else ""
        return self.backend.logsumexp.format(arg=self._print(expr.args[0].label), keepdim=keep)

    # -- branches -----------------------------------------------------------------------------

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        (value, cond), *rest = expr.args
        if not rest:
            return self._print(value)
        other = sp.Piecewise(*rest) if rest[0][1] is not sp.true else rest[0][0]
        return f"{self.backend.where}({self._print(cond)}, {self._print(value)}, {self._print(other)})"

    def _print_Relational(self, expr) -> str:
        op = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}[expr.rel_op]
        return f"({self._print(expr.lhs)} {op} {self._print(expr.rhs)})"

    def _fold(self, expr, template: str) -> str:
        """An n-ary And/Or as nested binary ones: a, b, c -> f(a, f(b, c))."""
        *init, last = (self._print(a) for a in sorted(expr.args, key=sp.default_sort_key))
        for operand in reversed(init):
            last = template.format(a=operand, b=last)
        return last

    def _print_And(self, expr) -> str:
        return self._fold(expr, self.backend.both)

    def _print_Or(self, expr) -> str:
        return self._fold(expr, self.backend.either)

    def _print_Not(self, expr) -> str:
        return f"(~{self._print(expr.args[0])})"

    def emptyPrinter(self, expr) -> str:  # noqa: N802 - SymPy hook
        raise UnsupportedNode(f"no {self.backend.name} mapping for {type(expr).__name__}: {expr}")

    def _print_BooleanTrue(self, expr) -> str:
        return "True"

    # Anything SymPy's StrPrinter knows but generated code must not contain.
    def _print_Integral(self, expr) -> str:
        raise UnsupportedNode(f"unevaluated integral {expr}")

    def _print_Infinity(self, expr) -> str:
        return "math.inf"

    def _print_NegativeInfinity(self, expr) -> str:
        return "-math.inf"

