"""Emit the generated numeric modules from the derivations.

For every derivation of the catalogue (KL and cross-entropy for each pair, entropy for
each family) the stable form (:mod:`symkl.codegen.rewrite`) is checked against the derived
result and printed once per backend. The output is deterministic: same symkl, SymPy and
sources, same bytes (a test regenerates the committed modules and compares).
"""

from __future__ import annotations

import dataclasses
import keyword
from dataclasses import dataclass
from pathlib import Path

import mpmath
import numpy as np
import sympy as sp

import symkl
from symkl import distributions
from symkl._version import __version__
from symkl.checks import check_equal
from symkl.codegen.nodes import to_elementary
from symkl.codegen.printers import BACKENDS, ArrayPrinter, Backend, UnsupportedNode
from symkl.codegen.rewrite import sides_for, stabilise_result
from symkl.codegen.specialise import SPECIALISATIONS, LogSumExp, Specialisation, specialised_result
from symkl.derivation import Check, CheckMethod, Derivation
from symkl.derive import parameter_sampler
from symkl.family import DIM, Family, Structure
from symkl.numeric import Side

GENERATED_DIR = Path(__file__).resolve().parent.parent / "generated"
MODULE_NAMES = {"torch": "torch_functions.py", "numpy": "numpy_functions.py"}


@dataclass(frozen=True)
class Generated:
    """One generated function: its name, parameters and stable expression."""

    name: str
    quantity: str
    p: Family
    q: Family | None
    params: tuple[str, ...]
    expression: sp.Expr  # parameters renamed to the function's argument names
    check: Check
    derivation: Derivation
    #: Specialisations: their own title and parameter constraints (by constraint name).
    title: str = ""
    constraints: tuple[tuple[str, str], ...] = ()
    #: Matrix parameters are passed as their lower Cholesky factors (``scale_tril``).
    cholesky_inputs: bool = False

    @property
    def summary(self) -> str:
        if self.title:
            return self.title
        if self.quantity == "entropy":
            return f"H({self.p.title}({', '.join(self.params)}))"
        n = len(self.p.params)
        lhs = f"{self.p.title}({', '.join(self.params[:n])})"
        rhs = f"{self.q.title}({', '.join(self.params[n:])})"
        return ("KL" if self.quantity == "kl" else "H")+ f"({lhs} || {rhs})"


def _totals(d: Derivation) -> dict[sp.Basic, sp.Expr]:
    out: dict[sp.Basic, sp.Expr] = {}
    for suffix, fam_name in (("p", d.p), ("q", d.q)):
        if fam_name is None:
            continue
        for prm in distributions.get(fam_name).params:
            sym = d.symbols.get(f"{prm.name}_{suffix}")
            if sym is not None and prm.constraint.event_total is not None:
                label = sym.label if isinstance(sym, sp.IndexedBase) else sym
                out[label] = sp.Integer(prm.constraint.event_total)
    return out


def _finite_part(expr: sp.Expr) -> sp.Expr:
    return expr.replace(lambda e: isinstance(e, sp.Piecewise), lambda e: e.args[0][0])


def stable_form(d: Derivation) -> tuple[sp.Expr, Check]:
    """The derivation's result rewritten for stable evaluation, with the check of the rewrite."""
    stable = stabilise_result(d.result, sides_for(d.symbols, d.fixed), _totals(d))
    if stable == d.result:
        return stable, Check(CheckMethod.SYMBOLIC, "no rewrite: the derived form is used as is")
    fam_p = distributions.get(d.p)
    side_p = Side(fam_p, fam_p.symbols("p"), {})
    side_q = None
    if d.q is not None:
        fam_q = distributions.get(d.q)
        side_q = Side(fam_q, fam_q.symbols("q"), {})
    check = check_equal(_finite_part(d.result), to_elementary(_finite_part(stable)),
                        parameter_sampler(side_p, side_q), seed=11, what="stable rewrite; ")
    if not check.passed:
        raise AssertionError(f"stable rewrite of {d.quantity}({d.p}, {d.q}) changed its value: {check}")
    return stable, check


def _rename(d: Derivation, expr: sp.Expr) -> tuple[sp.Expr, tuple[str, ...]]:
    """Entropy functions take unsuffixed names (``loc``); KL/CE keep ``loc_p``, ``loc_q``."""
    names = []
    mapping: dict[sp.Basic, sp.Basic] = {}
    for suffix, fam_name in (("p", d.p), ("q", d.q)):
        if fam_name is None:
            continue
        for prm in distributions.get(fam_name).params:
            key = f"{prm.name}_{suffix}"
            if key in d.fixed or key not in d.symbols:
                continue
            new = prm.name if d.quantity == "entropy" else key
            names.append(new)
            sym = d.symbols[key]
            if new != key:
                if isinstance(sym, sp.IndexedBase):
                    mapping[sym] = sp.IndexedBase(new, **sym.label.assumptions0)
                    mapping[sym.label] = sp.Symbol(new, **sym.label.assumptions0)
                elif isinstance(sym, sp.MatrixSymbol):
                    mapping[sym] = sp.MatrixSymbol(new, *sym.shape)
                else:
                    mapping[sym] = sp.Symbol(new, **sym.assumptions0)
    for n in names:
        assert n.isidentifier() and not keyword.iskeyword(n), n
    return expr.xreplace(mapping), tuple(names)


def generate(quantity: str, p: str, q: str | None = None) -> Generated:
    d = symkl.entropy(p) if quantity == "entropy" else getattr(symkl, quantity)(p, q)
    stable, check = stable_form(d)
    expression, params = _rename(d, stable)
    fam_q = distributions.get(q) if q else None
    name = "_".join([quantity, d.p] + ([d.q] if d.q else []))
    return Generated(name, quantity, distributions.get(p), fam_q, params, expression, check, d)


def generate_specialisation(spec: Specialisation) -> Generated:
    d, expr, params = specialised_result(spec)
    symbols = {name: sym for name, (sym, _) in params.items()}
    sides = sides_for(symbols, {})
    finite = _finite_part(expr)
    stable = stabilise_result(expr, sides, {s.label: sp.Integer(1) for s, c in params.values()
                                            if c == "simplex"})
    check = check_equal(_expand_specials(finite), _expand_specials(to_elementary(_finite_part(stable))),
                        _specialisation_sampler(params), seed=13, what="specialised stable rewrite; ")
    if not check.passed:
        raise AssertionError(f"stable rewrite of {spec.name} changed its value: {check}")
    fam_q = distributions.get(spec.q)
    return Generated(spec.name, spec.quantity, distributions.get(spec.p), fam_q, tuple(params), stable,
                     check, d, title=spec.title,
                     constraints=tuple((name, c) for name, (_, c) in params.items()))


def _expand_specials(expr: sp.Expr) -> sp.Expr:
    return expr.replace(lambda e: isinstance(e, LogSumExp), lambda e: e.elementary())


def _specialisation_sampler(params: dict[str, tuple[sp.Basic, str]]):
    def sample(rng) -> dict:
        env = {DIM: mpmath.mpf(3)}
        for sym, constraint in params.values():
            vector = isinstance(sym, sp.IndexedBase)
            if constraint == "simplex":
                raw = rng.dirichlet(np.ones(3))
                values = [mpmath.mpf(float(v)) for v in raw]
                total = mpmath.fsum(values)
                env[sym] = [v / total for v in values]
            elif vector:
                env[sym] = [mpmath.mpf(float(v)) for v in rng.normal(0, 1.5, 3)]
            else:
                env[sym] = mpmath.mpf(float(rng.normal(0, 1.5)))
        return env

    return sample


def catalogue() -> tuple[list[Generated], dict[str, str]]:
    """Every derivation that can be generated, and why the others cannot (name -> reason)."""
    jobs = [(quantity, p, q) for p, q in symkl.pairs() for quantity in ("kl", "cross_entropy")]
    jobs += [("entropy", f.name, None) for f in symkl.families()]
    jobs += list(SPECIALISATIONS)
    out, skipped = [], {}
    for job in jobs:
        g = generate_specialisation(job) if isinstance(job, Specialisation) else generate(*job)
        try:
            for backend in BACKENDS.values():
                render_function(g, backend)
        except UnsupportedNode as exc:
            skipped[g.name] = str(exc)
            continue
        out.append(g)
        if any(isinstance(sym, sp.MatrixSymbol) for sym in g.derivation.symbols.values()):
            out.append(_with_cholesky_inputs(g))
    return sorted(out, key=lambda g: (g.quantity, g.name)), dict(sorted(skipped.items()))


def _with_cholesky_inputs(g: Generated) -> Generated:
    """The same function taking ``scale_tril`` (L with covariance L L^T) instead of the
    covariance: torch's MultivariateNormal holds L already, so nothing is factored twice."""
    params = tuple(n.replace("covariance_matrix", "scale_tril") for n in g.params)
    constraints = tuple((n, "lower_cholesky" if "scale_tril" in n else "real") for n in params)
    return dataclasses.replace(
        g, name=g.name + "_tril", params=params, cholesky_inputs=True, constraints=constraints,
        title=f"{g.summary}, from the Cholesky factors scale_tril (covariance = L L^T)")


# -- rendering ----------------------------------------------------------------------------------


def _dim_source(g: Generated) -> str | None:
    for fam, names in ((g.p, g.params[: len(g.p.params)]), (g.q, g.params[len(g.p.params):])):
        if fam is not None and fam.structure is not Structure.SCALAR:
            for name in names:
                return f"{name}.shape[-1]"
    return None


def render_function(g: Generated, backend: Backend) -> str:
    discrete = any(f is not None and f.conventions for f in (g.p, g.q))
    printer = ArrayPrinter(backend, _dim_source(g), zero_log_zero=discrete)
    body = printer.doprint(g.expression)
    if g.expression.is_number:
        # A constant (+inf: support mismatch) still gets the inputs' broadcast shape, dtype
        # and device: 0 * (sum of the inputs) + value.
        body = f"0 * ({' + '.join(g.params)}) + {body}"
    prelude = []
    for name in g.params:
        if g.cholesky_inputs and "scale_tril" in name:
            prelude.append(f"    chol_{name.replace('scale_tril', 'covariance_matrix')} = {name}")
        elif f"chol_{name}" in body:
            chol = "linalg.cholesky" if backend.name == "torch" else "np.linalg.cholesky"
            prelude.append(f"    chol_{name} = {chol}({name})")
    args = ", ".join(g.params)
    source = f"symkl.{g.quantity}({g.p.name!r}{', ' + repr(g.q.name) if g.q else ''})"
    if g.title and not g.cholesky_inputs:
        fixed = {k: float(v) for k, v in g.derivation.fixed.items()}
        source += f", fixed {fixed}" if fixed else ""
        source += ", reparametrised"
    doc = f'    """{g.summary}.\n\n    Generated from {source}.\n    """'
    lines = [f"def {g.name}({args}):", doc, *prelude, f"    return {body}", ""]
    return "\n".join(lines)


def render_module(backend: Backend, generated: list[Generated], skipped: dict[str, str]) -> str:
    header = [
        f'"""Generated {backend.name} functions for every symkl derivation. DO NOT EDIT.',
        "",
        "Written by `symkl codegen` from the derived closed forms (rewritten into stable",
        "Bregman-term form where the rewrite rules apply; each rewrite checked against the",
        f"derivation). symkl {__version__}, SymPy {sp.__version__}.",
        '"""',
        "",
        "# ruff: noqa",
        "import math",
        "",
    ]
    if backend.name == "torch":
        header += ["import torch", "", "from symkl.kernels import linalg_torch as linalg",
                   "from symkl.kernels import torch as kernels", ""]
    else:
        header += ["import numpy as np", "", "from symkl.kernels import numpy as kernels",
                   "from symkl.kernels import numpy_special as special", ""]
    for name, reason in skipped.items():
        header.append(f"# not generated: {name}: {reason}")
    body = ["", *[render_function(g, backend) + "\n" for g in generated]]
    names = ", ".join(repr(g.name) for g in generated)
    table = "".join(f"    {g.name!r}: ({g.quantity!r}, {g.p.name!r}, {g.q.name if g.q else None!r}),\n"
                    for g in generated)
    constraints = "".join(f"    {g.name!r}: {dict(g.constraints)!r},\n" for g in generated if g.constraints)
    footer = [
        "#: name -> (quantity, family of P, family of Q or None), for dispatch and validation.",
        "FUNCTIONS = {\n" + table + "}",
        "",
        "#: Specialisations: parameter -> constraint name (their parameters are not the family's).",
        "PARAMETERS = {\n" + constraints + "}",
        "",
        f"__all__ = [{names}]",
        "",
    ]
    return "\n".join(header) + "\n".join(body) + "\n".join(footer)


def write(out_dir: Path = GENERATED_DIR, check: bool = False) -> tuple[list[Path], dict[str, str], int]:
    """Regenerate the modules; returns (paths that were out of date, skipped, functions).

    With ``check=True`` nothing is written: the caller reports the stale paths.
    """
    generated, skipped = catalogue()
    stale = []
    for key, filename in MODULE_NAMES.items():
        path = out_dir / filename
        text = render_module(BACKENDS[key], generated, skipped)
        if not path.exists() or path.read_text() != text:
            stale.append(path)
            if not check:
                out_dir.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    return stale, skipped, len(generated)
