"""Markdown writer: one page per derivation and the index ``README.md``.

Math is written as ``$...$`` and ``$$ ... $$`` blocks without blank lines inside, as
MathJax through ``pymdownx.arithmatex`` (generic mode) on the MkDocs site expects; GitHub
renders the same source.
"""

from __future__ import annotations

from typing import Sequence

from symkl.export import content
from symkl.export.catalogue import Document, grouped
from symkl.export.provenance import banner
from symkl.printing import to_latex, to_text

#: Characters that Markdown would read as markup; both CommonMark (GitHub) and
#: Python-Markdown (MkDocs) honour a backslash before them.
_ESCAPED = "\\`*_[]"


def escape(text: str) -> str:
    """Plain text -> Markdown that prints it literally (``<`` as an entity: Python-Markdown
    has no backslash escape for it, and it could open an HTML tag)."""
    return "".join("\\" + c if c in _ESCAPED else "&lt;" if c == "<" else c for c in text)


def _inline(parts: content.Sentence) -> str:
    out = []
    for part in parts:
        if isinstance(part, content.Math):
            out.append(f"${part.latex}$")
        elif isinstance(part, content.Code):
            out.append(f"`{part.text}`")
        else:
            out.append(escape(part.text))
    return "".join(out)


def _display(latex: str, indent: str = "") -> list[str]:
    return [f"{indent}$$", f"{indent}{latex}", f"{indent}$$"]


def _equation(eq: content.Equation) -> list[str]:
    rhs = eq.rhs if isinstance(eq.rhs, str) else to_latex(eq.rhs, eq.derivation)
    return _display(f"{eq.lhs} = {rhs}")


def _steps(block: content.Steps) -> list[str]:
    d = block.derivation
    out: list[str] = []
    for n, shown in enumerate(content.shown_steps(d), 1):
        step = shown.step
        status = "passed" if step.check.passed else "**FAILED**"
        out += [f"{n}. {escape(step.rule)}", "",
                *_display(f"{shown.lhs} = {to_latex(step.rhs, d)}", indent="    "), "",
                f"    *Check ({status}):* {escape(str(step.check))}", ""]
    return out[:-1]


def _block(block: content.Block) -> list[str]:
    if isinstance(block, content.Paragraph):
        return [_inline(block.parts)]
    if isinstance(block, content.Bullets):
        return [f"- {_inline(item)}" for item in block.items]
    if isinstance(block, content.Equation):
        return _equation(block)
    if isinstance(block, content.Steps):
        return _steps(block)
    raise TypeError(f"no Markdown form for block {type(block).__name__}")


def _header() -> str:
    return "".join(f"<!-- {line} -->\n" for line in banner().splitlines())


def page(doc: Document, formats: Sequence[str]) -> str:
    """The Markdown page of one derivation; links to its siblings in ``formats``."""
    links = ["[index](README.md)"]
    if "tex" in formats:
        links.append(f"[LaTeX]({doc.slug}.tex)")
    out = [_header(), f"# {escape(doc.title)}", "", " · ".join(links), ""]
    for section in content.sections(doc):
        out += [f"## {section.title}", ""]
        for block in section.blocks:
            out += _block(block) + [""]
    return "\n".join(out).rstrip("\n") + "\n"


def _result_cell(doc: Document) -> str:
    d = doc.derivation
    if d.conditions.never_finite:
        return "+inf (support mismatch)"
    # Plain-text form: table cells cannot hold display math, and `|` would end the cell.
    return "`" + to_text(d.formula).replace("|", "\\|") + "`"


def _finite_cell(doc: Document) -> str:
    c = doc.derivation.conditions
    if c.always_finite:
        return "always"
    if c.never_finite:
        return "never"
    every = f" for every {c.for_all_index}" if c.for_all_index is not None else ""
    return "when `" + to_text(c.finite_when).replace("|", "\\|") + f"`{every}"


def _pair_cell(doc: Document) -> str:
    d = doc.derivation
    if d.quantity == "mle":
        cell = f"model {escape(str(d.q))}" + (f", data {escape(d.p)}" if d.p else "")
    else:
        names = [escape(name) for name in (d.p, d.q) if name is not None]
        cell = " \\|\\| ".join(names)  # `\|` keeps the table cell open
    if d.fixed:
        cell += escape(" (" + ", ".join(f"{k} = {v}" for k, v in sorted(d.fixed.items())) + ")")
    return cell


def index(docs: Sequence[Document], formats: Sequence[str]) -> str:
    """``README.md``: what the folder holds, and a table of every document."""
    total = sum(doc.derivation.checked for doc in docs)
    out = [
        _header(),
        "# Derivations",
        "",
        f"Every derivation in the symkl catalogue ({len(docs)} documents), step by step, with its "
        "assumptions, where it is +inf, and how it was checked. Each row links a standalone "
        "LaTeX document (compiles with `pdflatex`) and a Markdown page with the same content.",
        "",
    ]
    if "tex" in formats:
        out += ["All of them in one document: [catalogue.tex](catalogue.tex) (run `pdflatex` "
                "twice: the second run fills in the table of contents).", ""]
    out += [f"Step checks and identities: {total} of {len(docs)} documents passed all of theirs. "
            "`symkl export --check` tells whether this folder is current; `symkl export` "
            "rewrites it.", ""]
    for heading, group in grouped(docs):
        out += [f"## {heading}", "",
                "| distributions | result (where finite) | finite | files | checks |",
                "|---|---|---|---|---|"]
        for doc in group:
            files = " ".join(f"[{fmt}]({doc.slug}.{fmt})" for fmt in formats)
            checks = "passed" if doc.derivation.checked else "**FAILED**"
            out.append(f"| {_pair_cell(doc)} | {_result_cell(doc)} | {_finite_cell(doc)} "
                       f"| {files} | {checks} |")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"
