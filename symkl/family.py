"""The declarative description of a distribution family.

A family file in :mod:`symkl.distributions` builds one :class:`Family`; everything else in
symkl (derivation, printing, validation, test inputs) reads from it. Nothing outside the
family file states a family's density, constraints or moments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Iterable, Mapping

import numpy as np
import sympy as sp

from symkl.constraints import Constraint
from symkl.errors import closest

#: Event dimension of multivariate families (k) and the summation indices over it.
DIM = sp.Symbol("k", integer=True, positive=True)
INDEX = sp.Idx(sp.Symbol("i", integer=True), DIM)
INDEX2 = sp.Idx(sp.Symbol("j", integer=True), DIM)


class Structure(Enum):
    """How the random variable of a family is represented symbolically."""

    SCALAR = "scalar"  # x is a Symbol
    INDEXED = "indexed"  # x is IndexedBase; log-density is a Sum over i = 0..k-1
    MATRIX = "matrix"  # x is a k x 1 MatrixSymbol


class Shape(Enum):
    SCALAR = "scalar"
    VECTOR = "vector"
    MATRIX = "matrix"



def _as_float_array(value: object) -> np.ndarray:
    array = np.asarray(value)
    return array if np.issubdtype(array.dtype, np.floating) else array.astype(float)

@dataclass(frozen=True)
class Parameter:
    name: str  # exactly the torch.distributions argument name
    constraint: Constraint
    shape: Shape = Shape.SCALAR
    description: str = ""
    #: How the parameter is written in formulas (LaTeX), e.g. r"\mu"; defaults to the name.
    latex: str = ""


@dataclass(frozen=True)
class Interval:
    """Support of a scalar family: ``[lower, upper]``, over the integers if ``discrete``.

    Bounds may be expressions of the family's parameters (Uniform).
    """

    lower: Callable[[Mapping[str, sp.Basic]], sp.Expr]
    upper: Callable[[Mapping[str, sp.Basic]], sp.Expr]
    discrete: bool = False
    text: str = ""
    #: For discrete families whose effective support {x: p(x) > 0} depends on the
    #: parameters: (p_params, q_params) -> condition for supp P within supp Q.
    contained_in: Callable[[Mapping[str, sp.Basic], Mapping[str, sp.Basic]], sp.Basic] | None = None


@dataclass(frozen=True)
class VectorSupport:
    """Support of a multivariate family; containment is decided by ``kind`` alone,
    except for families whose support depends on parameters (``contained_in``)."""

    kind: str  # "R^k", "one-hot", "simplex"
    text: str = ""
    #: Optional rule: (p_params, q_params) -> condition for supp P within supp Q.
    contained_in: Callable[[Mapping[str, sp.Basic], Mapping[str, sp.Basic]], sp.Basic] | None = None


Support = Interval | VectorSupport


@dataclass(frozen=True)
class Fact:
    """A known expectation under a family: ``value(params, *args)`` and where it comes from."""

    value: Callable[..., sp.Expr]
    source: str


@dataclass(frozen=True)
class ExponentialFamily:
    """Moments are derived from the log-partition function, not typed in.

    ``statistics`` maps feature names ("mean" for ``x``, "E_log" for ``log x``,
    "E_log1m" for ``log(1 - x)``) to the sufficient statistic T_j(x).
    ``extra`` holds facts that the exponential-family structure does not give.
    """

    statistics: Mapping[str, Callable[[sp.Expr], sp.Expr]]
    extra: Mapping[str, Fact] = field(default_factory=dict)


@dataclass(frozen=True)
class SpecialCase:
    """Moments taken from a more general family with some parameters fixed
    (Exponential(rate) = Gamma(1, rate))."""

    parent: str
    fixed: Mapping[str, sp.Expr]


@dataclass(frozen=True)
class Tabulated:
    """Moments stated directly; every use is checked numerically in the derivation."""

    facts: Mapping[str, Fact]


@dataclass(frozen=True)
class IndependentOf:
    """An indexed family whose coordinates are independent members of ``base``
    (the diagonal multivariate Normal is IndependentOf("normal"))."""

    base: str


MomentSource = ExponentialFamily | SpecialCase | Tabulated | IndependentOf


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    params: tuple[Parameter, ...]
    support: Support
    #: log p(x) on the support, from the variable and the parameter expressions by name.
    log_density: Callable[[sp.Basic, Mapping[str, sp.Basic]], sp.Expr]
    #: How torch spells it, e.g. "Normal" or "Independent(Normal, 1)".
    torch_class: str
    moments: MomentSource
    structure: Structure = Structure.SCALAR
    #: Families Q for which KL(self || Q) is part of the catalogue (self-pair implied).
    kl_partners: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    description: str = ""
    references: tuple[str, ...] = ()
    #: Notes that belong in every result's conditions (0 log 0 = 0, ...).
    conventions: tuple[str, ...] = ()
    #: Indexed families: the scalar family of coordinate i and its parameters, from numeric
    #: parameter values and i. Used only by numeric checks (1-D quadrature of coordinate facts).
    marginal: Callable[[Mapping[str, object], int], tuple[str, dict[str, object]]] | None = None

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def parameter(self, name: str) -> Parameter:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def check_names(self, names: Iterable[str], option: str) -> None:
        """ValueError for a name that is not a parameter, naming ``option`` (``--fix``), the
        closest parameter (the conventional letters count: sigma -> scale) and all of them."""
        for name in names:
            if name not in self.param_names:
                letters = {p.latex.lstrip("\\"): p.name for p in self.params if p.latex}
                hint = letters.get(name) or closest(name, self.param_names)
                raise ValueError(
                    f"{option}: {self.title} has no parameter {name!r}"
                    + (f"; did you mean {hint!r}?" if hint else ".")
                    + f" Its parameters are: {', '.join(self.param_names)}")

    def to_torch(self, values: Mapping[str, object], **kwargs: object) -> object:
        """The matching ``torch.distributions`` object (``torch_class``) for parameter values.

        ``values`` are tensors (or anything ``torch.as_tensor`` takes); ``kwargs`` go to the
        constructor (``validate_args``). "Independent(Normal, 1)" is built as written.
        """
        import torch  # heavy: only when a torch object is wanted
        import torch.distributions as td

        tensors = {k: torch.as_tensor(v) for k, v in values.items()}
        wrapped = re.fullmatch(r"Independent\((\w+), (\d+)\)", self.torch_class)
        if wrapped:
            base = getattr(td, wrapped.group(1))(**tensors, **kwargs)
            return td.Independent(base, int(wrapped.group(2)), **kwargs)
        return getattr(td, self.torch_class)(**tensors, **kwargs)

    # -- symbols ---------------------------------------------------------------------------

    def symbols(self, suffix: str) -> dict[str, sp.Basic]:
        """Parameter name -> SymPy object named ``<name>_<suffix>`` with the constraint's
        assumptions: Symbol (scalar), IndexedBase (indexed vector), MatrixSymbol (matrix)."""
        out: dict[str, sp.Basic] = {}
        for p in self.params:
            label = f"{p.name}_{suffix}"
            if self.structure is Structure.INDEXED:
                out[p.name] = sp.IndexedBase(label, **p.constraint.assumptions)
            elif self.structure is Structure.MATRIX:
                cols = DIM if p.shape is Shape.MATRIX else 1
                out[p.name] = sp.MatrixSymbol(label, DIM, cols)
            else:
                out[p.name] = sp.Symbol(label, **p.constraint.assumptions)
        return out

    def coordinate(self, symbols: Mapping[str, sp.Basic]) -> dict[str, sp.Expr]:
        """The parameter expressions seen by one coordinate: ``loc_p[i]`` for indexed
        families, the symbols themselves otherwise."""
        if self.structure is Structure.INDEXED:
            return {n: s[INDEX] for n, s in symbols.items()}
        return dict(symbols)

    def variable(self) -> sp.Basic:
        """The random variable, with assumptions implied by the support."""
        if self.structure is Structure.INDEXED:
            return sp.IndexedBase("x", real=True)
        if self.structure is Structure.MATRIX:
            return sp.MatrixSymbol("x", DIM, 1)
        assert isinstance(self.support, Interval)
        assumptions: dict[str, bool] = {"real": True}
        if self.support.discrete:
            assumptions["integer"] = True
        return sp.Symbol("x", **assumptions)

    # -- numeric validation ----------------------------------------------------------------

    def validate(self, values: Mapping[str, object]) -> dict[str, np.ndarray]:
        """Check numeric parameter values against the declared constraints.

        Raises ValueError naming the parameter, its value or shape and the constraint.
        """
        unknown = set(values) - set(self.param_names)
        if unknown:
            raise ValueError(
                f"{self.title} has no parameter(s) {sorted(unknown)}; "
                f"its parameters are {list(self.param_names)}"
            )
        # Floating arrays keep their dtype: tolerances (the simplex sum) follow it, and a
        # float32 softmax sums to 1 within float32's rounding only.
        arrays = {k: _as_float_array(v) for k, v in values.items()}
        for p in self.params:
            if p.name not in arrays:
                continue
            v = arrays[p.name]
            dims = p.constraint.event_dim
            if v.ndim < dims:
                raise ValueError(
                    f"{self.title} parameter '{p.name}' must have at least {dims} dimension(s), "
                    f"got shape {v.shape}"
                )
            if dims == 2 and v.shape[-1] != v.shape[-2]:
                raise ValueError(
                    f"{self.title} parameter '{p.name}' must be square, got shape {v.shape}"
                )
            if p.constraint.depends_on and p.constraint.depends_on not in arrays:
                continue
            ok = p.constraint.check(v, arrays)
            if not np.all(ok):
                bad = np.argwhere(~np.asarray(ok))
                where = tuple(int(i) for i in bad[0]) if bad.size else ()
                shown = v[where] if where else v
                raise ValueError(
                    f"{self.title} parameter '{p.name}' must be {p.constraint.text}; "
                    f"got {np.array2string(np.asarray(shown), precision=6, threshold=8)}"
                    + (f" at index {where}" if where else "")
                    + f" (shape {v.shape})"
                )
        return arrays

    def sample_parameters(
        self, rng: np.random.Generator, batch: tuple[int, ...] = (), dim: int = 3
    ) -> dict[str, np.ndarray]:
        """Valid parameter values drawn from the constraints (test-input generation)."""
        out: dict[str, np.ndarray] = {}
        pending = list(self.params)
        while pending:
            p = pending.pop(0)
            dep = p.constraint.depends_on
            if dep and dep not in out:
                pending.append(p)
                continue
            event = {Shape.SCALAR: (), Shape.VECTOR: (dim,), Shape.MATRIX: (dim, dim)}[p.shape]
            out[p.name] = np.asarray(p.constraint.sample(rng, batch + event, out), dtype=float)
        return out
