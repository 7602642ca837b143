"""``symkl export``: LaTeX and Markdown documents of every derivation.

:func:`render` produces the folder's contents in memory (file name -> text) from
:func:`~symkl.export.catalogue.documents`, the single list of exported derivations;
:func:`export` compares them with a folder and writes or checks it.

Output is deterministic: no dates, timings or paths, and everything that comes from a set or
dict is sorted, so the committed ``derivations/`` folder can be compared byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from symkl.export.catalogue import Document, documents
from symkl.export.provenance import is_generated

#: Output formats, by file extension, in the order their links appear.
FORMATS = ("tex", "md")
INDEX = "README.md"
CATALOGUE = "catalogue.tex"

__all__ = ["FORMATS", "Document", "Plan", "documents", "export", "parse_formats", "render"]


def parse_formats(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"tex,md"`` -> ``("tex", "md")`` in canonical order; ValueError names the bad one."""
    from symkl.errors import closest

    names = [t.strip().lower() for t in (text.split(",") if isinstance(text, str) else text)]
    names = [n for n in names if n]
    if not names:
        raise ValueError(f"no export format given; choose from {', '.join(FORMATS)}")
    for name in names:
        if name not in FORMATS:
            hint = closest(name, FORMATS)
            raise ValueError(f"unknown export format {name!r}"
                             + (f"; did you mean {hint!r}?" if hint else ".")
                             + f" Formats: {', '.join(FORMATS)}")
    return tuple(f for f in FORMATS if f in names)


def render(formats: Sequence[str] = FORMATS, docs: Sequence[Document] | None = None,
           progress: Callable[[str], None] | None = None) -> dict[str, str]:
    """The exported files, name -> text, sorted by name."""
    from symkl.export import latex, markdown

    formats = parse_formats(formats)
    docs = documents(progress) if docs is None else list(docs)
    files = {INDEX: markdown.index(docs, formats)}
    for doc in docs:
        if "tex" in formats:
            files[f"{doc.slug}.tex"] = latex.standalone(doc)
        if "md" in formats:
            files[f"{doc.slug}.md"] = markdown.page(doc, formats)
    if "tex" in formats:
        files[CATALOGUE] = latex.catalogue(docs)
    return dict(sorted(files.items()))


@dataclass
class Plan:
    """How a folder differs from a fresh export."""

    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    #: Files symkl generated before that the export no longer produces.
    extra: list[str] = field(default_factory=list)
    #: Files in the folder that symkl did not write (never touched).
    foreign: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def current(self) -> bool:
        return not (self.missing or self.stale or self.extra)


def compare(out: Path, files: dict[str, str]) -> Plan:
    """Compare the folder ``out`` with the rendered ``files``."""
    plan = Plan()
    for name, text in files.items():
        path = out / name
        if not path.is_file():
            plan.missing.append(name)
        elif path.read_bytes() != text.encode():
            plan.stale.append(name)
        else:
            plan.unchanged.append(name)
    if out.is_dir():
        for path in sorted(out.iterdir()):
            if path.name in files or not path.is_file():
                continue
            try:
                generated = is_generated(path.read_text(encoding="utf-8", errors="replace")[:500])
            except OSError:
                generated = False
            (plan.extra if generated else plan.foreign).append(path.name)
    return plan


def export(out: Path | str = "derivations", formats: Sequence[str] = FORMATS, check: bool = False,
           progress: Callable[[str], None] | None = None) -> Plan:
    """Write the export into ``out`` (or, with ``check``, only compare).

    Stale and missing files are (re)written; files symkl generated before that the export no
    longer produces are removed; other files are left alone and listed in ``Plan.foreign``.
    Returns the comparison made before writing.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file; give a folder")
    files = render(formats, progress=progress)
    plan = compare(out, files)
    if check:
        return plan
    out.mkdir(parents=True, exist_ok=True)
    for name in plan.missing + plan.stale:
        # newline="" keeps "\n" on every platform: byte-for-byte comparisons stay valid.
        (out / name).write_text(files[name], encoding="utf-8", newline="")
    for name in plan.extra:
        (out / name).unlink()
    return plan
