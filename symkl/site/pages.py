"""The generated pages: one per catalogue pair, one per family (its entropy), and the two
index tables. Each function returns the page's Markdown; nothing here touches the disk.

A pair page shows, for KL(P || Q) and H(P, Q): the closed form with its conditions and
identities, the derivation step by step (collapsed), the generated torch code with the
kernels it calls, the verification checks from ``symkl verify``, and for self-pairs the
accuracy table of ``benchmarks/accuracy.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from symkl.site import accuracy, code
from symkl.site.markdown import drop_heading, generated_note, indent, section, table
from symkl.site.verification import CheckResult, outcome, unit_name, worst

if TYPE_CHECKING:
    from symkl.derivation import Derivation
    from symkl.family import Family

_QUANTITY_TITLES = {"kl": "KL divergence", "cross_entropy": "Cross-entropy", "entropy": "Entropy"}
_SYMBOLS = {"kl": "KL(P || Q)", "cross_entropy": "H(P, Q)", "entropy": "H(P)"}
_API = {"kl": "kl", "cross_entropy": "cross_entropy", "entropy": "entropy"}


@dataclass(frozen=True)
class SiteData:
    """What the pages are generated from, loaded once per build."""

    verification: dict[str, list[CheckResult]]
    accuracy: dict[str, list[dict[str, str]]]
    not_generated: dict[str, str]


def pair_slug(p: str, q: str) -> str:
    return f"{p}-{q}"


def pair_title(p: str, q: str) -> str:
    from symkl import distributions

    return f"{distributions.get(p).title} || {distributions.get(q).title}"


def _call(quantity: str, p: str, q: str | None) -> str:
    args = f'"{p}"' if q is None else f'"{p}", "{q}"'
    return f"symkl.{_API[quantity]}({args})"


def _derivation_section(d: Derivation, quantity: str, p: str, q: str | None) -> list[str]:
    """Closed form, conditions and identities; then the steps in a collapsed block."""
    # The closed form, conditions and identities are shown above; the block adds the steps.
    steps = section(d.markdown(steps=True), "**Derivation**", "**Identities**")
    return [f"## {_QUANTITY_TITLES[quantity]}", "",
            f"`{_call(quantity, p, q)}`", "",
            drop_heading(d.markdown(steps=False)), "",
            f'??? abstract "Derivation of {_SYMBOLS[quantity]}, step by step ({len(d.steps)} steps, '
            'each with its check)"', "",
            indent(steps), ""]


def _code_section(quantity: str, p: str, q: str | None, data: SiteData) -> list[str]:
    functions = code.functions(quantity, p, q)
    plain = "_".join(x for x in (quantity, p, q) if x)
    if not functions:
        reason = data.not_generated.get(plain, "no generated function")
        return [f"Not generated: {reason}.", ""]
    out = []
    for fn in functions:
        kernels = ", ".join(f"`{k}`" for k in fn.kernels) or "none (torch operations only)"
        out += [f"`symkl.torch.functional.{fn.name}` (also `symkl.numpy.{fn.name}`); "
                f"kernels called: {kernels}.", "", "```python", fn.source, "```", ""]
    return out


def _verification_section(quantity: str, p: str, q: str | None, data: SiteData) -> list[str]:
    unit = unit_name(quantity, p, q)
    checks = data.verification.get(unit)
    if not checks:
        return [f"`{unit}` is not in docs/data/verification.json.", ""]
    deciding = [c for c in checks if not c.informational]
    failed = [c for c in deciding if not c.passed]
    verdict = (f"**{len(failed)} of {len(deciding)} checks FAILED.**" if failed
               else f"All {len(deciding)} deciding checks passed.")
    rows = [(c.check, outcome(c), worst(c), f"{c.tolerance:g}", c.points) for c in checks]
    return [f"`symkl verify` unit `{unit}`: {verdict} (Informational rows are "
            "`torch.distributions`' own errors; see [the verification report](../verification.md) "
            "for the method.)", "",
            table(("check", "outcome", "worst", "tolerance", "points"), rows, "llrrr")]


def _accuracy_section(p: str, q: str, data: SiteData) -> list[str]:
    if p != q:
        return ["`benchmarks/accuracy.py` measures the self-pairs only; this pair's generated "
                "code is checked by `symkl verify` (above).", ""]
    rows = accuracy.rows_for(data.accuracy, p)
    if not any(rows.values()):
        return [f"`{p}` has no rows in [the accuracy report](../accuracy.md).", ""]
    out = ["`symkl.torch.kl_divergence` against `torch.distributions.kl_divergence`, errors in ULPs "
           "of a 50-digit reference, from [the accuracy report](../accuracy.md) (method there).", ""]
    headers = tuple(accuracy.COLUMNS.values())
    for dtype, dtype_rows in rows.items():
        if dtype_rows:
            out += [f"**{dtype}**", "", table(headers, dtype_rows, ["l"] + ["r"] * (len(headers) - 3) + ["l", "l"])]
    return out


def _family_link(name: str, prefix: str) -> str:
    from symkl import distributions

    family = distributions.get(name)
    return f"[{family.title}]({prefix}families/{name}.md) (`{family.torch_class}`)"


def pair_page(p: str, q: str, kl: Derivation, ce: Derivation, data: SiteData) -> str:
    from symkl.cli import finiteness

    kind, condition = finiteness(kl)
    finite = {"finite": "finite for all parameters",
              "always +inf": f"always +inf ({condition})",
              "conditional": f"{condition}; +inf otherwise"}[kind]
    out = [f"# {pair_title(p, q)}", "",
           generated_note(f"This page is written from `{_call('kl', p, q)}`, "
                          f"`{_call('cross_entropy', p, q)}`, `symkl/generated/torch_functions.py`, "
                          "`docs/data/verification.json` and `docs/accuracy.md`."),
           f"P: {_family_link(p, '../')}; Q: {_family_link(q, '../')}. KL(P || Q) is {finite}.", ""]
    out += _derivation_section(kl, "kl", p, q)
    out += _derivation_section(ce, "cross_entropy", p, q)
    out += ["## Generated code", "", "### KL divergence", ""] + _code_section("kl", p, q, data)
    out += ["### Cross-entropy", ""] + _code_section("cross_entropy", p, q, data)
    out += ["## Verification", "", "### KL divergence", ""] + _verification_section("kl", p, q, data)
    out += ["### Cross-entropy", ""] + _verification_section("cross_entropy", p, q, data)
    out += ["## Accuracy", ""] + _accuracy_section(p, q, data)
    return "\n".join(out).rstrip("\n") + "\n"


def _parameters_table(family: Family) -> str:
    rows = [(f"`{p.name}`", p.shape.value, p.constraint.text, p.description) for p in family.params]
    return table(("parameter", "shape", "constraint", "meaning"), rows)


def family_page(family: Family, h: Derivation, pairs: list[tuple[str, str]], data: SiteData) -> str:
    name = family.name
    support = getattr(family.support, "text", "")
    facts = [f"torch: `torch.distributions.{family.torch_class}`"]
    if support:
        facts.append(f"support: {support}")
    if family.aliases:
        facts.append("aliases: " + ", ".join(f"`{a}`" for a in family.aliases))
    out = [f"# {family.title}", "",
           generated_note(f"This page is written from the family declaration "
                          f"`symkl/distributions/{name}.py`, `{_call('entropy', name, None)}`, "
                          "`symkl/generated/torch_functions.py` and `docs/data/verification.json`."),
           family.description, "", "; ".join(facts) + ".", "", _parameters_table(family)]
    out += _derivation_section(h, "entropy", name, None)
    out += ["## Generated code", ""] + _code_section("entropy", name, None, data)
    out += ["## Verification", ""] + _verification_section("entropy", name, None, data)
    related = [(p, q) for p, q in pairs if name in (p, q)]
    out += ["## Pairs", "", f"KL divergence and cross-entropy with {family.title} as P or Q:", ""]
    out += [f"- [{pair_title(p, q)}](../pairs/{pair_slug(p, q)}.md)" for p, q in related]
    return "\n".join(out).rstrip("\n") + "\n"


def pairs_index(records: list[tuple[str, str, Derivation]], data: SiteData) -> str:
    from symkl.cli import finiteness

    rows = []
    for p, q, kl in records:
        kind, condition = finiteness(kl)
        checks = data.verification.get(unit_name("kl", p, q), [])
        deciding = [c for c in checks if not c.informational]
        passed = f"{sum(c.passed for c in deciding)}/{len(deciding)}" if deciding else "not run"
        rows.append((f"[{pair_title(p, q)}]({pair_slug(p, q)}.md)", f"`{p}`", f"`{q}`", kind,
                     condition, passed))
    return "\n".join([
        "# Pairs", "",
        generated_note("This page is written from `symkl.pairs()`, `symkl.kl(P, Q)` and "
                       "`docs/data/verification.json`."),
        f"The catalogue's {len(records)} (P, Q) pairs. Each page has the closed forms of KL(P || Q) "
        "and H(P, Q), their derivations step by step, the generated torch code, the verification "
        "checks and (self-pairs) the accuracy against `torch.distributions`.", "",
        table(("pair", "P", "Q", "KL", "when", "KL checks passed"), rows, "llllll"),
    ]).rstrip("\n") + "\n"


def families_index(families: list[Family], entropies: dict[str, Derivation], data: SiteData) -> str:
    from symkl.printing import to_latex

    rows = []
    for family in families:
        h = entropies[family.name]
        checks = [c for c in data.verification.get(unit_name("entropy", family.name, None), [])
                  if not c.informational]
        passed = f"{sum(c.passed for c in checks)}/{len(checks)}" if checks else "not run"
        params = ", ".join(f"`{p.name}`" for p in family.params)
        rows.append((f"[{family.title}]({family.name}.md)", params, f"${to_latex(h.formula, h)}$", passed))
    return "\n".join([
        "# Entropies", "",
        generated_note("This page is written from `symkl.families()`, `symkl.entropy(F)` and "
                       "`docs/data/verification.json`."),
        f"The catalogue's {len(families)} families and their entropies H(P) = -E_P[log p(x)] "
        "(differential entropy for the continuous families). Each family's page has the "
        "derivation, the generated code, the verification checks and the pairs it belongs to.", "",
        table(("family", "parameters", "H(P)", "checks passed"), rows),
    ]).rstrip("\n") + "\n"
