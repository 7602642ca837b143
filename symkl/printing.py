"""Rendering derivations: LaTeX (``align*``), Markdown and plain text from one source.

Printers subclass SymPy's so that results read like a textbook: digamma prints as psi,
log-gamma as ln Gamma, and the terms of a sum appear as logarithms first, then special
functions, then algebraic terms, then the constant (SymPy's own order puts ``-1/2`` in the
middle). Parameter symbols print with their family's conventional letter (``loc_p`` as
``\\mu_p``) in LaTeX and with their torch names in text.
"""

from __future__ import annotations

from typing import Iterable

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from symkl import distributions
from symkl.derivation import Derivation, Step
from symkl.nodes import Expect, QuadForm

_SPECIAL = (sp.polygamma, sp.loggamma, sp.gamma, sp.erf, sp.exp, sp.Trace, sp.Sum, QuadForm)


def _category(term: sp.Expr) -> int:
    """Display rank of a term: logs, special functions, algebraic terms, constants."""
    if term.is_Number:
        return 4
    if term.has(Expect):
        return 2
    if term.has(sp.log) and not term.has(*_SPECIAL):
        return 0
    if term.has(*_SPECIAL):
        return 1
    if not term.free_symbols - {sp.Symbol("k", integer=True, positive=True)}:
        return 3  # constants such as log(2 pi)/2 or k/2
    return 2


def ordered_terms(expr: sp.Add) -> list[sp.Expr]:
    # Within a category, positive terms first: (x - mu) rather than (-mu + x).
    terms = sorted(
        expr.args,
        key=lambda t: (_category(t), t.could_extract_minus_sign(), sp.default_sort_key(t)),
    )
    # A positive constant leads when everything else is subtracted: 1 - p, not -p + 1.
    if terms[-1].is_Number and terms[-1] > 0 and all(t.could_extract_minus_sign() for t in terms[:-1]):
        terms = terms[-1:] + terms[:-1]
    return terms


def _factor_rank(factor: sp.Basic) -> int:
    """Display rank of a factor: coefficient, symbols, brackets, then functions.

    ``p_i log(p_i / q_i)`` and ``(a_p - a_q) psi(a_p)`` as a textbook writes them,
    where SymPy's order gives ``log(p_i / q_i) p_i``.
    """
    if factor.is_Number:
        return 0
    if isinstance(factor, sp.Add):
        return 2
    if isinstance(factor, (sp.Function, sp.Sum)) or (
        isinstance(factor, sp.Pow) and isinstance(factor.base, (sp.Function, sp.Sum))
    ):
        return 3
    return 1


class _TextbookOrder:
    """Mixin for SymPy printers: textbook order of terms in sums and factors in products."""

    #: How a negative product starts (``-k/2``; LaTeX: ``- \frac{k}{2}``).
    minus = "-"

    def _print_Add(self, expr, order=None):
        return super()._print_Add(sp.Add(*ordered_terms(expr), evaluate=False), order="none")

    def _print_Mul(self, expr, *args):
        if expr.is_commutative is False:
            return super()._print_Mul(expr, *args)
        # The textbook factor order would split a negative rational from its sign
        # (``-1*1/2*k``): print the sign, then the negated product.
        coeff, rest = expr.as_coeff_Mul()
        if coeff.is_Number and coeff < 0 and rest != 1:
            return self.minus + self._print(sp.Mul(-coeff, rest))
        # stable sort: SymPy's canonical order within a rank
        factors = sorted(expr.as_ordered_factors(), key=_factor_rank)
        saved = self._settings["order"]
        self._settings["order"] = "none"  # print the factors as given
        try:
            return super()._print_Mul(sp.Mul(*factors, evaluate=False), *args)
        finally:
            self._settings["order"] = saved


def _is_negated(term: sp.Basic) -> bool:
    return bool(isinstance(term, sp.MatMul) and term.args[0].is_number and term.args[0] < 0)


def _print_matadd(printer, expr: sp.MatAdd) -> str:
    """``mu_p - mu_q`` rather than SymPy's ``-mu_q + mu_p``."""
    terms = sorted(expr.args, key=lambda t: (_is_negated(t), sp.default_sort_key(t)))
    out = ""
    for t in terms:
        if _is_negated(t):
            out += " - " + printer._print(-t)
        else:
            out += (" + " if out else "") + printer._print(t)
    return out


class SymklLatexPrinter(_TextbookOrder, LatexPrinter):
    minus = "- "

    def _print_polygamma(self, expr, exp=None):
        n, arg = expr.args
        head = r"\psi" if n == 0 else r"\psi^{(%s)}" % self._print(n)
        out = r"%s\left(%s\right)" % (head, self._print(arg))
        return out if exp is None else r"%s^{%s}" % (out, exp)

    def _print_loggamma(self, expr, exp=None):
        out = r"\ln\Gamma\left(%s\right)" % self._print(expr.args[0])
        return out if exp is None else r"\left(%s\right)^{%s}" % (out, exp)

    def _print_Determinant(self, expr, exp=None):
        return r"\det %s" % self._print(expr.args[0])

    def _print_Trace(self, expr, exp=None):
        return r"\operatorname{tr}\left(%s\right)" % self._print(expr.args[0])

    def _print_Idx(self, expr):
        return self._print(expr.label)

    def _print_MatAdd(self, expr):
        return _print_matadd(self, expr)

    def _print_Pow(self, expr):
        # Powers of an expectation (E[x]^2 in the MLE derivations): Expect prints itself and
        # takes no exponent argument, so the exponent is attached here.
        if isinstance(expr.base, Expect) and expr.exp.is_Integer and expr.exp > 0:
            return r"%s^{%s}" % (self._print(expr.base), self._print(expr.exp))
        return super()._print_Pow(expr)


class SymklStrPrinter(_TextbookOrder, StrPrinter):
    def _print_Sum(self, expr):
        (var, lo, hi), = expr.limits
        return f"sum_{{{self._print(var)}={self._print(lo)}}}^{{{self._print(hi)}}} [{self._print(expr.function)}]"

    def _print_polygamma(self, expr):
        n, arg = expr.args
        return f"psi({self._print(arg)})" if n == 0 else f"psi{n}({self._print(arg)})"

    def _print_loggamma(self, expr):
        return f"lnGamma({self._print(expr.args[0])})"

    def _print_Determinant(self, expr):
        return f"det({self._print(expr.args[0])})"

    def _print_Trace(self, expr):
        return f"tr({self._print(expr.args[0])})"

    def _print_Inverse(self, expr):
        return f"inv({self._print(expr.args[0])})"

    def _print_MatAdd(self, expr):
        return _print_matadd(self, expr)


def symbol_names(d: Derivation) -> dict[sp.Basic, str]:
    """LaTeX names for the derivation's parameters: ``loc_p`` -> ``\\mu_{p}``."""
    names: dict[sp.Basic, str] = {}
    for side, fam_name in (("p", d.p), ("q", d.q)):
        if fam_name is None:
            continue
        fam = distributions.get(fam_name)
        for param in fam.params:
            key = f"{param.name}_{side}"
            if key not in d.symbols:
                continue
            obj = d.symbols[key]
            sym = obj.label if isinstance(obj, sp.IndexedBase) else obj
            letter = param.latex or r"\mathrm{%s}" % param.name.replace("_", r"\_")
            names[sym] = "%s_{%s}" % (letter, side)
    return names


def to_latex(expr: sp.Basic, d: Derivation | None = None) -> str:
    settings = {"symbol_names": symbol_names(d)} if d is not None else {}
    return SymklLatexPrinter(settings).doprint(expr)


def to_text(expr: sp.Basic) -> str:
    return SymklStrPrinter().doprint(expr)


# -- derivation documents ---------------------------------------------------------------------

_TITLES = {"kl": "KL divergence", "entropy": "Entropy", "cross_entropy": "Cross-entropy",
           "mle": "Maximum likelihood"}


def title(d: Derivation) -> str:
    if d.quantity == "mle":  # the model is Q; P is the data family, or any distribution
        data = f"{distributions.get(d.p).title} data" if d.p is not None else "any data distribution"
        return f"{_TITLES['mle']}: {distributions.get(d.q).title} model, {data}"
    p = distributions.get(d.p).title
    if d.q is None:
        return f"{_TITLES[d.quantity]} of {p}"
    return f"{_TITLES[d.quantity]}: {p} || {distributions.get(d.q).title}"


def _escape_text(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("&", r"\&"), ("%", r"\%"),
                 ("#", r"\#"), ("^", r"\^{}"), ("{", r"\{"), ("}", r"\}")):
        s = s.replace(a, b)
    return s


def _result_expr(d: Derivation) -> sp.Basic:
    return d.formula


def derivation_latex(d: Derivation, steps: bool = True) -> str:
    lines: list[str] = []
    if steps:
        first = True
        for step in d.steps:
            rhs = to_latex(step.rhs, d)
            note = r"\text{%s}" % _escape_text(_short_rule(step))
            if step.chain:
                lhs = to_latex(step.lhs, d) if first else ""
                lines.append(r"%s &= %s && %s" % (lhs, rhs, note))
                first = False
            else:
                lines.append(r"&\quad %s = %s && %s" % (to_latex(step.lhs, d), rhs, note))
    else:
        lines.append(r"%s &= %s" % (to_latex(d.lhs, d), to_latex(_result_expr(d), d)))
    body = " \\\\\n".join(lines)
    return "\\begin{align*}\n" + body + "\n\\end{align*}"


def _short_rule(step: Step) -> str:
    rule = step.rule.split(";")[0] if not step.chain else step.rule
    return f"{rule} [{step.check.method.value}]"


def _conditions_lines(d: Derivation) -> Iterable[str]:
    c = d.conditions
    for dom in c.domains:
        yield f"parameter domain: {dom}"
    if c.never_finite:
        yield f"always +inf: {c.infinite_when}"
    elif not c.always_finite:
        where = f" for every {c.for_all_index}" if c.for_all_index is not None else ""
        yield f"finite when {to_text(c.finite_when)}{where}; otherwise +inf"
    for note in c.notes:
        yield note


def derivation_markdown(d: Derivation, steps: bool = True) -> str:
    out = [f"## {title(d)}", "", "$$", f"{to_latex(d.lhs, d)} = {to_latex(_result_expr(d), d)}", "$$", ""]
    out += ["**Conditions**", ""] + [f"- {line}" for line in _conditions_lines(d)] + [""]
    if steps:
        out += ["**Derivation**", ""]
        for n, step in enumerate(d.steps, 1):
            eq = f"{to_latex(step.lhs, d)} = {to_latex(step.rhs, d)}"
            status = "passed" if step.check.passed else "FAILED"
            # 4-space continuation: CommonMark needs >= 3, Python-Markdown (MkDocs) 4, or
            # the $$ block falls out of the list item and is not typeset.
            out += [f"{n}. {step.rule}", "", "    $$", f"    {eq}", "    $$", "",
                    f"    *check ({status}):* {step.check}", ""]
    if d.identities:
        out += ["**Identities**", ""]
        out += [f"- {i.statement}: {i.check}" for i in d.identities] + [""]
    return "\n".join(out)


def derivation_text(d: Derivation, steps: bool = False) -> str:
    out = [f"{to_text(d.lhs)} = {to_text(_result_expr(d))}"]
    out += [f"  {line}" for line in _conditions_lines(d)]
    if steps:
        out.append("")
        for n, step in enumerate(d.steps, 1):
            status = "ok" if step.check.passed else "FAILED"
            out.append(f"{n}. {to_text(step.lhs)} = {to_text(step.rhs)}")
            out.append(f"     rule: {step.rule}")
            out.append(f"     check [{status}]: {step.check}")
        for ident in d.identities:
            out.append(f"identity: {ident.statement} -- {ident.check}")
    return "\n".join(out)
