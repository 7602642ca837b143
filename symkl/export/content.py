"""What an exported document says, independent of the output format.

:func:`sections` turns one :class:`~symkl.export.catalogue.Document` into a list of
:class:`Section` objects built from a few block types (paragraphs, bullet lists, equations,
the step-by-step derivation). The LaTeX and Markdown writers only decide how each block
type looks, so both formats state the same facts in the same order from this one source.
Prose may mix :class:`Text`, inline :class:`Math` (LaTeX) and :class:`Code`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import sympy as sp

from symkl import distributions
from symkl.derivation import CheckMethod, Derivation, Step
from symkl.export.catalogue import Document
from symkl.family import Interval, VectorSupport
from symkl.printing import symbol_names, to_latex


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Math:
    latex: str


@dataclass(frozen=True)
class Code:
    text: str


Inline = Text | Math | Code
Sentence = tuple[Inline, ...]


@dataclass(frozen=True)
class Paragraph:
    parts: Sentence


@dataclass(frozen=True)
class Bullets:
    items: tuple[Sentence, ...]


@dataclass(frozen=True)
class Equation:
    """``lhs = rhs`` as display math; a SymPy ``rhs`` may be broken over lines (LaTeX)."""

    lhs: str
    rhs: sp.Basic | str
    derivation: Derivation


@dataclass(frozen=True)
class Steps:
    """The derivation's steps, each with its rule and check."""

    derivation: Derivation


@dataclass(frozen=True)
class ShownStep:
    """A step as displayed: its left-hand side, or whether it continues a chain."""

    step: Step
    #: LaTeX of the left-hand side to state; for a continuation, the start of its chain
    #: (equal to the step's own lhs by the chain's earlier equalities).
    lhs: str
    #: The step's lhs is the previous chain step's rhs, so "= rhs" continues the chain.
    continues: bool


def shown_steps(d: Derivation) -> list[ShownStep]:
    """How each step is displayed: chains of equalities are written ``lhs = a = b = ...``.

    Side steps (``chain=False``) always show their own lhs; a chain step continues the
    chain only if its lhs is, structurally, the previous chain step's rhs.
    """
    out: list[ShownStep] = []
    previous_rhs: sp.Basic | None = None
    start = ""
    for step in d.steps:
        own = to_latex(step.lhs, d)
        if step.chain and previous_rhs is not None and step.lhs == previous_rhs:
            out.append(ShownStep(step, start, continues=True))
        else:
            if step.chain:
                start = own
            out.append(ShownStep(step, own, continues=False))
        if step.chain:
            previous_rhs = step.rhs
    return out


Block = Paragraph | Bullets | Equation | Steps


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...]


# -- the sections ------------------------------------------------------------------------------


def sections(doc: Document) -> list[Section]:
    """The sections of one exported derivation, in order."""
    d = doc.derivation
    return [
        Section("Definition", _definition(d)),
        Section("Setting", _setting(doc)),
        Section("Assumptions and conditions", _conditions(d)),
        Section("Result", _result(d)),
        Section("Derivation", (Paragraph((Text(
            "Each step names its rule and how the equality was checked. Side steps state an "
            "auxiliary fact (a moment of P) that the next step substitutes."),)), Steps(d))),
        Section("Identities proven", _identities(d)),
        Section("How it was verified", _verification(doc)),
    ]


_INTEGRALS = {
    # quantity: (integrand of E_P[...], integrand after p(x) in the integral or sum, sign)
    "kl": (r"\log p(x) - \log q(x)", r"\log\frac{p(x)}{q(x)}", ""),
    "cross_entropy": (r"\log q(x)", r"\log q(x)", "-"),
    "entropy": (r"\log p(x)", r"\log p(x)", "-"),
}


def _is_discrete(family_name: str) -> bool:
    support = distributions.get(family_name).support
    if isinstance(support, Interval):
        return support.discrete
    return isinstance(support, VectorSupport) and support.kind == "one-hot"


def _definition(d: Derivation) -> tuple[Block, ...]:
    lhs = to_latex(d.lhs, d)
    if d.quantity not in _INTEGRALS:
        # Other quantities (maximum likelihood) define themselves in their first step.
        first = d.steps[0] if d.steps else None
        if first is None:
            return (Paragraph((Text("See the derivation below."),)),)
        return (Equation(to_latex(first.lhs, d), first.rhs, d),)
    expectation, integrand, sign = _INTEGRALS[d.quantity]
    if _is_discrete(d.p):
        total = r"%s\sum_{x} p(x) %s" % (sign, integrand)
        where = "the sum runs over the support of P"
    else:
        total = r"%s\int p(x) %s \, dx" % (sign, integrand)
        where = "the integral runs over the support of P"
    rhs = r"%s\mathbb{E}_{P}\left[%s\right] = %s" % (sign, expectation, total)
    return (Equation(lhs, rhs, d), Paragraph((
        Text(f"where {where}; "), Math("p"), Text(" and "), Math("q"),
        Text(" are the densities (probability mass functions for discrete families) of P and Q."),
    )))


#: In a maximum-likelihood derivation P is the data distribution and Q the model.
_MLE_ROLES = {"p": " (data)", "q": " (model)"}


def _side_sentence(d: Derivation, side: str, family_name: str) -> Sentence:
    """``P = Normal(mu_p, sigma_p) (torch.distributions.Normal), support: ... Parameters: ...``"""
    family = distributions.get(family_name)
    names = symbol_names(d)

    def letter(key: str) -> Math:
        obj = d.symbols[key]
        sym = obj.label if isinstance(obj, sp.IndexedBase) else obj
        return Math(names.get(sym, sp.latex(sym)))

    keys = [f"{param.name}_{side}" for param in family.params]
    role = _MLE_ROLES[side] if d.quantity == "mle" else ""
    out: list[Inline] = [Math(side.upper()), Text(f"{role} = {family.title}(")]
    for n, key in enumerate(keys):
        out += [Text(", " if n else ""), letter(key)]
    out += [Text(") ("), Code(f"torch.distributions.{family.torch_class}"),
            Text(f"), support: {family.support.text}. Parameters: ")]
    for n, (param, key) in enumerate(zip(family.params, keys)):
        out += [Text("; " if n else ""), letter(key), Text(" = "), Code(key)]
        if param.description:
            out.append(Text(f" ({param.description})"))
        if key in d.fixed:
            out += [Text(", fixed to "), Math(sp.latex(d.fixed[key]))]
    out.append(Text("."))
    return tuple(out)


def _setting(doc: Document) -> tuple[Block, ...]:
    d = doc.derivation
    items = [_side_sentence(d, side, name) for side, name in (("p", d.p), ("q", d.q)) if name]
    blocks: list[Block] = [Bullets(tuple(items))]
    if doc.note:
        blocks.append(Paragraph((Text(doc.note),)))
    return tuple(blocks)


_DOMAIN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(: | = )(.*)$", re.S)


def _domain(text: str) -> Sentence:
    """``"scale_p: > 0 (finite)"`` or ``"loc_p = 2 (fixed)"`` -> the name as code, the rest
    as text."""
    match = _DOMAIN.match(text)
    if match is None:
        return (Text(text),)
    name, sep, rest = match.groups()
    return (Code(name), Text(f"{sep}{rest}"))


def finiteness(d: Derivation) -> Sentence:
    """Where the quantity is finite, and why it is +inf elsewhere."""
    c = d.conditions
    why = f": {c.infinite_when}" if c.infinite_when else ""
    if c.always_finite:
        return (Text("The result is finite for every parameter value in these domains."),)
    if c.never_finite:
        return (Text("The result is "), Math(r"+\infty"), Text(f" for every parameter value{why}."))
    every: Sentence = ()
    if c.for_all_index is not None:
        every = (Text(" for every "), Math(sp.latex(c.for_all_index)))
    return (Text("The result is finite exactly when "), Math(to_latex(c.finite_when, d)),
            *every, Text("; otherwise it is "), Math(r"+\infty"), Text(f"{why}."))


def _conditions(d: Derivation) -> tuple[Block, ...]:
    c = d.conditions
    blocks: list[Block] = []
    if c.domains:
        blocks += [Paragraph((Text("Parameter domains (from the family declarations):"),)),
                   Bullets(tuple(_domain(text) for text in c.domains))]
    blocks.append(Paragraph(finiteness(d)))
    if c.notes:
        blocks += [Paragraph((Text("Conventions and notes:"),)),
                   Bullets(tuple((Text(note),) for note in c.notes))]
    return tuple(blocks)


def _result(d: Derivation) -> tuple[Block, ...]:
    blocks: list[Block] = [Equation(to_latex(d.lhs, d), d.formula, d)]
    c = d.conditions
    if not c.always_finite and not c.never_finite:
        blocks.append(Paragraph((Text("where the conditions above hold, and "), Math(r"+\infty"),
                                 Text(" otherwise."))))
    return tuple(blocks)


def _identities(d: Derivation) -> tuple[Block, ...]:
    if not d.identities:
        return (Paragraph((Text("None for this quantity (the identities are proven on KL "
                                "derivations, which relate KL, cross-entropy and entropy)."),)),)
    items = []
    for ident in d.identities:
        status = "proven" if ident.check.passed else "FAILED"
        items.append((Text(f"{ident.statement} ({status}; {ident.check})"),))
    return (Bullets(tuple(items)),)


_METHOD_MEANING = {
    CheckMethod.SYMBOLIC: "SymPy reduced the difference of the two sides to 0",
    CheckMethod.NUMERIC: "mpmath at 30 digits at random points drawn from the parameter domains; "
                         "moment steps against quadrature of the density",
    CheckMethod.STRUCTURAL: "a rule applied term by term (linearity, substitution)",
    CheckMethod.DEFINITION: "states a definition or the declared densities",
}


def verify_command(d: Derivation) -> str | None:
    """The ``symkl verify`` command line that checks this result numerically, if any."""
    if d.quantity == "entropy":
        return f"symkl verify {d.p} --quantity entropy"
    if d.quantity in ("kl", "cross_entropy"):
        return f"symkl verify {d.p} {d.q} --quantity {d.quantity.replace('_', '-')}"
    return None


def brute_force_command(d: Derivation) -> str | None:
    """The ``symkl derive`` command line that runs the brute-force cross-check, if any."""
    flags = {"kl": "", "cross_entropy": " --cross-entropy", "entropy": " --entropy"}
    if d.quantity not in flags:
        return None
    fixed = "".join(f" --fix-{name[-1]} {name[:-2]}={value}" for name, value in sorted(d.fixed.items()))
    pair = d.p if d.q is None else f"{d.p} {d.q}"
    return f"symkl derive {pair}{flags[d.quantity]}{fixed} --brute-force 60"


def _verification(doc: Document) -> tuple[Block, ...]:
    d = doc.derivation
    counts = Counter(step.check.method for step in d.steps)
    failed = [n for n, step in enumerate(d.steps, 1) if not step.check.passed]
    verdict = "all passed" if not failed else "FAILED at step(s) " + ", ".join(map(str, failed))
    items = [(Text(f"{counts[m]} {m.value}: {meaning}"),)
             for m, meaning in _METHOD_MEANING.items() if counts[m]]
    blocks: list[Block] = [
        Paragraph((Text(f"Step checks ({len(d.steps)} steps, {verdict}):"),)),
        Bullets(tuple(items)),
    ]
    if d.identities:
        proven = sum(i.check.passed for i in d.identities)
        blocks.append(Paragraph((Text(f"Identities: {proven} of {len(d.identities)} proven "
                                      "(listed above)."),)))
    bf = d.brute_force
    bf_command = brute_force_command(d)
    if bf.status != "not run":
        blocks.append(Paragraph((Text(f"Brute-force cross-check (SymPy integrate/summation of the "
                                      f"definition): {bf.status}. {bf.detail}".rstrip()),)))
    elif bf_command:
        blocks.append(Paragraph((
            Text("Brute-force cross-check (SymPy integrate/summation of the definition, in a "
                 "child process with a time limit): not run by the export, which would take "
                 "minutes; run "), Code(bf_command), Text("."))))
    command = verify_command(d)
    if command:
        parts: list[Inline] = [
            Text("Numerically: "), Code(command),
            Text(" checks the result, and the numpy/torch code generated from it, against "
                 "(A) mpmath quadrature or summation of the densities, (B) Monte Carlo "
                 "estimates and (C) torch.distributions where it implements the quantity; "
                 "see "), Code("docs/verification.md"), Text(".")]
        if d.fixed:
            parts.append(Text(" It covers the general pair; this document's fixed-parameter "
                              "form is its substitution, checked step by step above."))
        blocks.append(Paragraph(tuple(parts)))
    return tuple(blocks)
