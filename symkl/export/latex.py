"""LaTeX writer: a standalone article per derivation and the combined catalogue.

The documents need only ``amsmath``, ``amssymb``, ``geometry`` and ``hyperref`` (all in
Debian's ``texlive-latex-base``/``-recommended``) and compile with ``pdflatex``. Long
formulas are broken by :mod:`symkl.export.breaking`; ``\\allowdisplaybreaks`` lets a long
derivation run over pages, and ``\\sloppy`` lets prose with long command lines in
``\\texttt`` (which TeX cannot hyphenate) stretch instead of overflowing.
"""

from __future__ import annotations

from typing import Sequence

from symkl.export import content
from symkl.export.breaking import break_lines, visible_width
from symkl.export.catalogue import Document, grouped
from symkl.export.provenance import banner

#: Estimated printed characters (:func:`~symkl.export.breaking.visible_width`) that fit on
#: a display line: A4, 2 cm margins, 10 pt. The widest left-hand side and the continuation
#: indent are subtracted from it.
LINE_WIDTH = 64
_INDENT = 2  # "\quad" on continuation lines

_PREAMBLE = r"""\documentclass[10pt,a4paper]{article}
\usepackage{amsmath,amssymb}
\usepackage[margin=2cm]{geometry}
\usepackage[hidelinks]{hyperref}
\allowdisplaybreaks
\sloppy
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.5em}
"""

_TEXT_ESCAPES = (("\\", r"\textbackslash{}"), ("{", r"\{"), ("}", r"\}"), ("_", r"\_"),
                 ("&", r"\&"), ("%", r"\%"), ("#", r"\#"), ("$", r"\$"), ("^", r"\^{}"),
                 ("~", r"\~{}"), ("<", r"\textless{}"), (">", r"\textgreater{}"),
                 ("|", r"\textbar{}"))


def escape(text: str) -> str:
    """Plain text -> LaTeX text mode (OT1 encoding has no <, >, | glyphs: use commands)."""
    out = []
    for char in text:
        out.append(next((esc for c, esc in _TEXT_ESCAPES if c == char), char))
    return "".join(out)


def _inline(parts: content.Sentence) -> str:
    out = []
    for part in parts:
        if isinstance(part, content.Math):
            out.append(f"${part.latex}$")
        elif isinstance(part, content.Code):
            out.append(r"\texttt{%s}" % escape(part.text))
        else:
            out.append(escape(part.text))
    return "".join(out)


def _equation(eq: content.Equation) -> str:
    lines = break_lines(eq.rhs, eq.derivation, LINE_WIDTH - _INDENT - visible_width(eq.lhs))
    rows = [f"{eq.lhs} &= {lines[0]}"] + [r"&\quad %s" % line for line in lines[1:]]
    return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}"


def _step_note(n: int, step) -> str:  # noqa: ANN001 - symkl.derivation.Step
    status = "" if step.check.passed else r" \textbf{FAILED}"
    return r"\textbf{(%d)} %s. \emph{Check%s:} %s." % (n, escape(step.rule), status, escape(str(step.check)))


def _steps(block: content.Steps) -> str:
    """One ``align*`` chain; each step is introduced by its rule and check (``\\intertext``)."""
    d = block.derivation
    shown = content.shown_steps(d)
    # "&= rhs" continues the line above; after a side step the chain's start is restated.
    lefts = ["" if s.continues and n > 0 and shown[n - 1].step.chain else s.lhs
             for n, s in enumerate(shown)]
    # align* starts every right-hand side after the widest left-hand side.
    width = max(LINE_WIDTH - _INDENT - max(map(visible_width, lefts), default=0), 20)
    rows: list[str] = []
    for n, (step, lhs) in enumerate(zip(d.steps, lefts), 1):
        lines = break_lines(step.rhs, d, width)
        # \intertext may only follow a line break, so the first note precedes the align*.
        note = "" if n == 1 else r"\intertext{%s}" % _step_note(n, step) + "\n"
        rows.append(f"{note}{lhs} &= {lines[0]}")
        rows += [r"&\quad %s" % line for line in lines[1:]]
    first = _step_note(1, d.steps[0]) + "\n" if d.steps else ""
    return first + "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}"


def _block(block: content.Block) -> str:
    if isinstance(block, content.Paragraph):
        return _inline(block.parts)
    if isinstance(block, content.Bullets):
        items = "\n".join(r"\item %s" % _inline(item) for item in block.items)
        return "\\begin{itemize}\n" + items + "\n\\end{itemize}"
    if isinstance(block, content.Equation):
        return _equation(block)
    if isinstance(block, content.Steps):
        return _steps(block)
    raise TypeError(f"no LaTeX form for block {type(block).__name__}")


def body(doc: Document, level: str = "section") -> str:
    """The document's sections at ``level`` (``section`` standalone, ``subsection`` in the
    catalogue)."""
    parts = []
    for section in content.sections(doc):
        parts.append(r"\%s*{%s}" % (level, escape(section.title)))
        parts += [_block(block) for block in section.blocks]
    return "\n\n".join(parts)


def _header() -> str:
    return "".join(f"% {line}\n" for line in banner().splitlines())


def standalone(doc: Document) -> str:
    """A complete article for one derivation."""
    return (_header() + _PREAMBLE + "\\title{%s}\n\\author{}\n\\date{}\n\\begin{document}\n\\maketitle\n\n"
            % escape(doc.title) + body(doc) + "\n\n\\end{document}\n")


def catalogue(docs: Sequence[Document]) -> str:
    """Every derivation in one article, grouped by quantity, with a table of contents."""
    parts = [_header() + _PREAMBLE,
             "\\title{symkl: the catalogue of derivations}\n\\author{}\n\\date{}\n\\begin{document}\n\\maketitle",
             "This document collects every derivation that \\texttt{symkl export} writes, one "
             "section each; the same text is in the per-derivation files next to it.",
             "\\tableofcontents"]
    for heading, group in grouped(docs):
        parts.append("\\clearpage\n\\part*{%s}\n\\addcontentsline{toc}{part}{%s}" % (heading, heading))
        for doc in group:
            parts.append("\\section{%s}\n\\label{%s}" % (escape(doc.title), doc.slug))
            parts.append(body(doc, level="subsection"))
    return "\n\n".join(parts) + "\n\n\\end{document}\n"
