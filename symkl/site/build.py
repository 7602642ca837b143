"""Render every generated file of the site, then write it or check it (``symkl docs``).

The generated files: ``docs/pairs/*.md`` (one per catalogue pair and ``index.md``),
``docs/families/*.md`` (one per family, with its entropy, and ``index.md``),
``docs/reference/cli.md``, ``docs/reference/functions.md`` and the generated nav blocks of ``mkdocs.yml``. A file in
``docs/pairs`` or ``docs/families`` that the catalogue no longer produces is stale too
(``write`` deletes it), so a removed pair cannot leave an orphan page behind.
"""

from __future__ import annotations

from pathlib import Path

#: The repository root (``mkdocs.yml``, ``docs/``) of this checkout.
ROOT = Path(__file__).resolve().parents[2]
VERIFICATION_JSON = Path("docs/data/verification.json")
ACCURACY_MD = Path("docs/accuracy.md")
MKDOCS_YML = Path("mkdocs.yml")
#: Directories whose every Markdown file is generated.
GENERATED_DIRS = (Path("docs/pairs"), Path("docs/families"))


def generate(root: Path = ROOT) -> dict[Path, str]:
    """``{path relative to root: content}`` for every generated file."""
    import symkl
    from symkl.cli import build_parser
    from symkl.site import accuracy, cli_reference, code, functions_reference, nav, pages, verification

    data = pages.SiteData(verification=verification.load(root / VERIFICATION_JSON),
                          accuracy=accuracy.load(root / ACCURACY_MD),
                          not_generated=code.not_generated())
    pairs = sorted(symkl.pairs())
    families = sorted(symkl.families(), key=lambda f: f.name)
    files: dict[Path, str] = {}

    kls = []
    for p, q in pairs:
        kl = symkl.kl(p, q)
        kls.append((p, q, kl))
        files[Path("docs/pairs") / f"{pages.pair_slug(p, q)}.md"] = pages.pair_page(
            p, q, kl, symkl.cross_entropy(p, q), data)
    files[Path("docs/pairs/index.md")] = pages.pairs_index(kls, data)

    entropies = {f.name: symkl.entropy(f.name) for f in families}
    for family in families:
        files[Path("docs/families") / f"{family.name}.md"] = pages.family_page(
            family, entropies[family.name], pairs, data)
    files[Path("docs/families/index.md")] = pages.families_index(families, entropies, data)

    files[Path("docs/reference/cli.md")] = cli_reference.page(build_parser())
    files[Path("docs/reference/functions.md")] = functions_reference.page(pages.pair_slug, data.not_generated)

    yml = (root / MKDOCS_YML).read_text()
    yml = nav.replace_block(yml, "pairs", [nav.entry(pages.pair_title(p, q), f"pairs/{pages.pair_slug(p, q)}.md")
                                           for p, q in pairs])
    yml = nav.replace_block(yml, "families", [nav.entry(f.title, f"families/{f.name}.md") for f in families])
    files[MKDOCS_YML] = yml
    return files


def _orphans(root: Path, files: dict[Path, str]) -> list[Path]:
    found = []
    for directory in GENERATED_DIRS:
        if (root / directory).is_dir():
            found += [p.relative_to(root) for p in (root / directory).glob("*.md")]
    return sorted(p for p in found if p not in files)


def write(root: Path = ROOT, check: bool = False) -> tuple[list[Path], list[Path]]:
    """Write the generated files (or, with ``check``, write nothing).

    Returns ``(changed, orphans)``: files whose content differs from what is on disk
    (written unless ``check``), and files in the generated directories that nothing
    generates any more (deleted unless ``check``).
    """
    files = generate(root)
    changed = []
    for rel, text in sorted(files.items()):
        path = root / rel
        if path.exists() and path.read_text() == text:
            continue
        changed.append(rel)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    orphans = _orphans(root, files)
    if not check:
        for rel in orphans:
            (root / rel).unlink()
    return changed, orphans
