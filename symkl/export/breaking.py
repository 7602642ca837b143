"""Break long LaTeX formulas into lines for ``align*``.

LaTeX does not break display math by itself (``breqn`` would, but it is fragile with
SymPy's output), so long results are split here: at the top-level ``+``/``-`` of a sum, also
inside an expectation or a sum over coordinates (``E_P[a + b + ...]``), and the lines are
packed greedily to an estimated printed width. Delimiters opened with ``\\left`` on one
line are closed with ``\\right.`` and reopened with ``\\left.`` on the next, so every line
is balanced on its own, as ``align*`` requires.
"""

from __future__ import annotations

import re

import sympy as sp

from symkl.derivation import Derivation
from symkl.printing import ordered_terms, to_latex

#: Markup that prints nothing itself (the delimiter after \left still counts).
_MARKUP = re.compile(r"\\(?:left|right|mathbb|mathrm|operatorname|text|frac|limits)\b|\\[,;:!]")
_MARKUP_CHARS = re.compile(r"[{}_^ ]")
#: Limits of a display-style sum sit above and below it: they add no width of their own.
_SUM_LIMITS = re.compile(r"\\sum_\{[^{}]*\}\^\{[^{}]*\}")
_COMMAND = re.compile(r"\\[A-Za-z]+")
_LEFT = re.compile(r"\\left\b")
_RIGHT = re.compile(r"\\right\b")
_OPERATOR = re.compile(r" (?:[+=-]|\\leq|\\geq|\\wedge|\\vee) ")
_NAMED_OPERATORS = frozenset({"log", "ln", "exp", "det", "tr", "erf", "max", "min"})
_PLACEHOLDER = sp.Symbol("SYMKLPLACEHOLDER")


def visible_width(latex: str) -> int:
    """A rough count of printed characters: commands count 1, markup 0, and a binary
    operator with its spaces 3.

    Fractions count numerator plus denominator and sub/superscripts count fully, so the
    estimate errs towards breaking early.
    """
    operators = len(_OPERATOR.findall(latex))
    glyphs = _COMMAND.sub(_command_glyphs, _MARKUP.sub("", _SUM_LIMITS.sub(r"\\sum ", latex)))
    return len(_MARKUP_CHARS.sub("", glyphs)) + 2 * operators


def _command_glyphs(match: re.Match) -> str:
    """``\\log`` prints three letters, ``\\alpha`` one glyph."""
    name = match.group(0)[1:]
    return name if name in _NAMED_OPERATORS else "x"


def _wrapped_add(expr: sp.Basic) -> bool:
    """A function of a sum (an expectation, a coordinate sum, an arg max): breakable inside
    its brackets. Products, powers and relations are not: their printed form need not keep
    the sum in one bracketed piece."""
    return isinstance(expr, (sp.Function, sp.Sum)) and bool(expr.args) and isinstance(expr.args[0], sp.Add)


def _pieces(expr: sp.Basic, d: Derivation, width: int) -> list[str]:
    """Tokens whose concatenation (with spaces) prints ``expr``; a line may end after any.

    Terms wider than ``width`` are split further where they are breakable.
    """
    if isinstance(expr, sp.Add):
        out: list[str] = []
        for n, term in enumerate(ordered_terms(expr)):
            negative = term.could_extract_minus_sign()
            shown = -term if negative else term
            sign = "- " if negative else ("+ " if n else "")
            text = to_latex(shown, d)
            if visible_width(text) > width and _wrapped_add(shown):
                inner = _pieces(shown, d, width)
                out += [sign + inner[0], *inner[1:]]
            else:
                out.append(sign + text)
        return out
    if _wrapped_add(expr):
        try:
            template = to_latex(expr.func(_PLACEHOLDER, *expr.args[1:]), d)
        except (TypeError, ValueError):  # a node that rejects a plain symbol: keep it whole
            return [to_latex(expr, d)]
        prefix, sep, suffix = template.partition(sp.latex(_PLACEHOLDER))
        if sep:
            if not prefix.rstrip().endswith((r"\left[", r"\left(")):
                prefix, suffix = prefix + r"\left(", r"\right)" + suffix
            body = _pieces(expr.args[0], d, width)
            if len(body) == 1:
                return [prefix + body[0] + suffix]
            return [prefix + body[0], *body[1:-1], body[-1] + suffix]
    return [to_latex(expr, d)]


def break_lines(expr: sp.Basic | str, d: Derivation, width: int) -> list[str]:
    """``expr`` as LaTeX lines of at most about ``width`` printed characters, each balanced.

    Continuation lines start with the operator (``+ ...``); the caller indents them.
    A string is taken as finished LaTeX and never broken.
    """
    if isinstance(expr, str):
        return [expr]
    whole = to_latex(expr, d)
    if visible_width(whole) <= width:
        return [whole]
    lines: list[list[str]] = [[]]
    used = 0
    for piece in _pieces(expr, d, width):
        size = visible_width(piece)
        if lines[-1] and used + size > width:
            lines.append([])
            used = 0
        lines[-1].append(piece)
        used += size
    out, depth = [], 0
    for tokens in lines:
        text = " ".join(tokens)
        opened = depth + len(_LEFT.findall(text)) - len(_RIGHT.findall(text))
        out.append(r"\left. " * depth + text + r" \right." * opened)
        depth = opened
    return out
