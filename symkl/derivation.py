"""Derivation objects: ordered, checked steps from a definition to a closed form.

A :class:`Derivation` is pure data produced by :mod:`symkl.derive`; rendering to LaTeX,
Markdown and text lives in :mod:`symkl.printing` so that one source feeds every format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Mapping

import sympy as sp


class CheckMethod(str, Enum):
    DEFINITION = "definition"  # nothing to check: the step states a definition
    SYMBOLIC = "symbolic"  # SymPy reduced lhs - rhs to 0
    NUMERIC = "numeric"  # mpmath at random points agreed to the stated digits
    STRUCTURAL = "structural"  # rhs is lhs with a rule applied term by term (linearity)


@dataclass(frozen=True)
class Check:
    method: CheckMethod
    detail: str
    passed: bool = True

    def __str__(self) -> str:
        return f"{self.method.value}: {self.detail}" if self.detail else self.method.value


@dataclass(frozen=True)
class Step:
    """``lhs = rhs`` by ``rule``; ``check`` says how the equality was confirmed.

    ``chain`` steps continue the main chain of equalities (their lhs is the previous
    rhs); side steps state an auxiliary fact (a moment) used by the next chain step.
    """

    lhs: sp.Basic
    rhs: sp.Basic
    rule: str
    check: Check
    chain: bool = True


@dataclass(frozen=True)
class Conditions:
    """Where a result holds and where the quantity is infinite."""

    #: Parameter domains, e.g. ("scale_p > 0", ...), from the declared constraints.
    domains: tuple[str, ...]
    #: Condition (SymPy boolean) under which the quantity is finite; ``True`` if always.
    finite_when: sp.Basic
    #: Plain-language explanation of the infinite case ("" if never infinite).
    infinite_when: str = ""
    #: If set, ``finite_when`` must hold for every value of this index (0..k-1).
    for_all_index: sp.Basic | None = None
    #: Conventions and caveats (0 log 0 = 0, series without closed form, ...).
    notes: tuple[str, ...] = ()

    @property
    def always_finite(self) -> bool:
        return self.finite_when is sp.true

    @property
    def never_finite(self) -> bool:
        return self.finite_when is sp.false


@dataclass(frozen=True)
class Identity:
    """An identity proven about the result, e.g. H(P, Q) - H(P) - KL(P || Q) = 0."""

    statement: str
    check: Check


@dataclass(frozen=True)
class CrossCheck:
    """Outcome of the brute-force ``integrate``/``summation`` cross-check."""

    status: str  # "agrees", "disagrees", "timeout", "failed", "not run"
    seconds: float
    detail: str = ""


@dataclass
class Derivation:
    quantity: str  # "kl", "entropy", "cross_entropy"
    p: str
    q: str | None
    #: Parameter name -> SymPy object, names suffixed _p / _q (``loc_p``).
    symbols: Mapping[str, sp.Basic]
    #: Values fixed by the caller, by suffixed name.
    fixed: Mapping[str, sp.Basic]
    #: The value everywhere: a Piecewise with +oo where the quantity is infinite.
    result: sp.Expr
    #: The closed form where the quantity is finite.
    formula: sp.Expr
    conditions: Conditions
    steps: tuple[Step, ...]
    lhs: sp.Expr
    variable: sp.Basic
    identities: list[Identity] = field(default_factory=list)
    brute_force: CrossCheck = field(default_factory=lambda: CrossCheck("not run", 0.0))
    seconds: float = 0.0

    # -- rendering (delegated) ------------------------------------------------------------

    def latex(self, steps: bool = True) -> str:
        from symkl.printing import derivation_latex

        return derivation_latex(self, steps=steps)

    def markdown(self, steps: bool = True) -> str:
        from symkl.printing import derivation_markdown

        return derivation_markdown(self, steps=steps)

    def text(self, steps: bool = False) -> str:
        from symkl.printing import derivation_text

        return derivation_text(self, steps=steps)

    def _repr_latex_(self) -> str:
        return "$$" + self.latex(steps=True).replace("\\begin{align*}", "\\begin{aligned}").replace(
            "\\end{align*}", "\\end{aligned}"
        ) + "$$"

    def __str__(self) -> str:
        return self.text(steps=False)

    @property
    def checked(self) -> bool:
        """True when every step and identity passed its check."""
        return all(s.check.passed for s in self.steps) and all(i.check.passed for i in self.identities)
