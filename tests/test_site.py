"""The documentation site: generated pages current, complete and correct; the strict build.

The generated pages are rendered once per module (``generated``: derives the catalogue into
the test run's private cache, ~15 s cold on 2 cores) and checked against the catalogue, the
generated code and the committed tree.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import symkl
from symkl.cli import build_parser, main
from symkl.printing import to_latex
from symkl.site import accuracy, build, nav, verification
from symkl.site.markdown import GENERATED_NOTE

ROOT = build.ROOT


@pytest.fixture(scope="module")
def generated() -> dict[Path, str]:
    return build.generate()


def _page(generated: dict[Path, str], path: str) -> str:
    return generated[Path(path)]


# -- the committed tree is current ---------------------------------------------------------


def test_docs_check_is_clean_on_the_committed_tree(generated, capsys):
    stale = [str(p) for p, text in generated.items() if (ROOT / p).read_text() != text]
    assert stale == [], f"stale generated files (run 'symkl docs'): {stale}"
    assert main(["docs", "--check"]) == 0
    assert "out of date" not in capsys.readouterr().out


def test_check_reports_stale_and_orphan_files_and_writes_nothing(tmp_path):
    # A scratch root with the inputs only: everything is stale, nothing is written by --check.
    (tmp_path / "docs/data").mkdir(parents=True)
    for rel in ("mkdocs.yml", "docs/accuracy.md", "docs/data/verification.json"):
        shutil.copy(ROOT / rel, tmp_path / rel)
    (tmp_path / "docs/pairs").mkdir()
    orphan = tmp_path / "docs/pairs/normal-gamma.md"
    orphan.write_text("# a pair that is not in the catalogue\n")
    yml_before = (tmp_path / "mkdocs.yml").read_text()

    changed, orphans = build.write(tmp_path, check=True)
    assert Path("docs/pairs/normal-normal.md") in changed
    assert orphans == [Path("docs/pairs/normal-gamma.md")]
    assert not (tmp_path / "docs/pairs/normal-normal.md").exists() and orphan.exists()
    assert (tmp_path / "mkdocs.yml").read_text() == yml_before

    changed, orphans = build.write(tmp_path)  # writes, deletes the orphan
    assert (tmp_path / "docs/pairs/normal-normal.md").exists() and not orphan.exists()
    assert build.write(tmp_path, check=True) == ([], [])
    page = tmp_path / "docs/pairs/gamma-gamma.md"
    page.write_text(page.read_text().replace("Gamma", "Gama", 1))
    assert build.write(tmp_path, check=True) == ([Path("docs/pairs/gamma-gamma.md")], [])


# -- coverage --------------------------------------------------------------------------------


def test_every_pair_has_a_page_and_the_index_and_nav_link_them_all(generated):
    pairs = symkl.pairs()
    assert len(pairs) == 23
    index = _page(generated, "docs/pairs/index.md")
    yml = _page(generated, "mkdocs.yml")
    for p, q in pairs:
        assert Path(f"docs/pairs/{p}-{q}.md") in generated, (p, q)
        assert f"]({p}-{q}.md)" in index, (p, q)
        assert f": pairs/{p}-{q}.md\n" in yml, (p, q)
    linked = re.findall(r"\]\(([\w-]+)\.md\)", index)
    assert sorted(linked) == sorted(f"{p}-{q}" for p, q in pairs)
    pages = [p for p in generated if p.parent == Path("docs/pairs") and p.name != "index.md"]
    assert len(pages) == len(pairs)


def test_every_family_page_has_its_entropy(generated):
    families = symkl.families()
    assert len(families) == 12
    index = _page(generated, "docs/families/index.md")
    for family in families:
        page = _page(generated, f"docs/families/{family.name}.md")
        h = symkl.entropy(family.name)
        assert "## Entropy" in page
        assert f"= {to_latex(h.formula, h)}\n$$" in page, family.name
        assert f"]({family.name}.md)" in index
        for param in family.params:
            assert f"`{param.name}`" in page


def test_every_generated_page_opens_with_the_generated_note(generated):
    for path, text in generated.items():
        if path.suffix != ".md":
            continue
        lines = text.splitlines()
        assert lines[0].startswith("# "), path
        assert lines[2] == GENERATED_NOTE, path


# -- content ---------------------------------------------------------------------------------


def test_pair_page_shows_formula_derivation_code_verification_and_accuracy(generated):
    from symkl.generated import torch_functions

    page = _page(generated, "docs/pairs/normal-normal.md")
    d = symkl.kl("normal", "normal")
    # the closed form as the textbook writes it, in the LaTeX the page renders
    assert (r"D_{\mathrm{KL}}\left(P \,\|\, Q\right) = \log{\left(\frac{\sigma_{q}}{\sigma_{p}} \right)}"
            r" + \frac{\sigma_{p}^{2} + \left(\mu_{p} - \mu_{q}\right)^{2}}{2 \sigma_{q}^{2}} - \frac{1}{2}") in page
    # every step of the derivation, with its rule
    for step in d.steps:
        assert step.rule in page
    # the generated code, verbatim, and the kernels it calls
    source = inspect.getsource(torch_functions.kl_normal_normal).rstrip("\n")
    assert "```python\n" + source + "\n```" in page
    assert "`kernels.log_ratio`, `kernels.neglog_bregman_split`" in page
    assert "def kl_normal_normal_logvar(" in page  # the specialisation lives on its pair's page
    # verification from the committed JSON, accuracy from docs/accuracy.md
    assert "| reference A | passed |" in page
    assert "| typical | 64 |" in page and "**float32**" in page


def test_pair_page_numbers_come_from_the_data_files(generated):
    data = json.loads((ROOT / build.VERIFICATION_JSON).read_text())
    check = next(c for c in data["checks"]
                 if c["unit"] == "kl(gamma || gamma)" and c["check"] == "reference A")
    page = _page(generated, "docs/pairs/gamma-gamma.md")
    assert f"| reference A | passed | {check['error']:.3g} digits | {check['tolerance']:g} | {check['points']} |" in page
    rows = accuracy.rows_for(accuracy.load(ROOT / build.ACCURACY_MD), "gamma")
    first = rows["float64"][0]
    assert first[0] == "typical"
    assert "| " + " | ".join(first) + " |" in page


def test_every_page_shows_its_generated_code_or_says_why_there_is_none(generated):
    from symkl.site import code

    missing = code.not_generated()
    units = [("entropy", f.name, None, f"docs/families/{f.name}.md") for f in symkl.families()]
    units += [(quantity, p, q, f"docs/pairs/{p}-{q}.md")
              for p, q in symkl.pairs() for quantity in ("kl", "cross_entropy")]
    for quantity, p, q, path in units:
        name = "_".join(x for x in (quantity, p, q) if x)
        page = _page(generated, path)
        if name in missing:
            assert f"Not generated: {missing[name]}." in page, name
        else:
            assert f"def {name}(" in page, name


def test_cross_family_pair_without_accuracy_rows_says_so(generated):
    page = _page(generated, "docs/pairs/normal-exponential.md")
    assert "always +inf" in page
    assert "measures the self-pairs only" in page


def test_cli_reference_covers_every_command_and_option(generated):
    page = _page(generated, "docs/reference/cli.md")

    def walk(parser, prog):
        for action in parser._actions:
            if hasattr(action, "choices") and isinstance(action.choices, dict) and action.option_strings == []:
                for name, sub in action.choices.items():
                    assert f"# {prog} {name}\n" in page, f"{prog} {name}"
                    walk(sub, f"{prog} {name}")
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}" in page, (prog, option)

    walk(build_parser(), "symkl")
    assert "%%" not in page and "%(" not in page  # argparse's formatting was applied


# -- data loaders fail clearly -------------------------------------------------------------------


def test_verification_timings_do_not_reach_the_pages(tmp_path):
    data = json.loads((ROOT / build.VERIFICATION_JSON).read_text())
    data["seconds"] = 12345.0
    (tmp_path / "v.json").write_text(json.dumps(data))
    assert verification.load(tmp_path / "v.json") == verification.load(ROOT / build.VERIFICATION_JSON)


def test_loaders_name_what_is_missing(tmp_path):
    with pytest.raises(verification.VerificationDataError, match="symkl verify --all --json"):
        verification.load(tmp_path / "absent.json")
    (tmp_path / "v.json").write_text(json.dumps({"checks": [{"unit": "kl(normal || normal)"}]}))
    with pytest.raises(verification.VerificationDataError, match=r"check #0 has no field\(s\) \['check'"):
        verification.load(tmp_path / "v.json")

    text = (ROOT / build.ACCURACY_MD).read_text().replace("| symkl max |", "| symkl maximum |")
    (tmp_path / "accuracy.md").write_text(text)
    with pytest.raises(accuracy.AccuracyFormatError, match=r"no column\(s\) \['symkl max'\]"):
        accuracy.load(tmp_path / "accuracy.md")
    (tmp_path / "accuracy.md").write_text("# Accuracy\n\n## float64\n\nno table\n")
    with pytest.raises(accuracy.AccuracyFormatError, match="no table under '## float64'"):
        accuracy.load(tmp_path / "accuracy.md")


def test_nav_block_replacement_and_missing_markers():
    text = "nav:\n  - Pairs:\n      # BEGIN symkl docs: pairs (generated; do not edit)\n      - old\n" \
           "      # END symkl docs: pairs\n  - Other: other.md\n"
    out = nav.replace_block(text, "pairs", [nav.entry("A || B", "pairs/a-b.md")])
    assert out == ("nav:\n  - Pairs:\n      # BEGIN symkl docs: pairs (generated; do not edit)\n"
                   '      - "A || B": pairs/a-b.md\n      # END symkl docs: pairs\n  - Other: other.md\n')
    with pytest.raises(nav.NavMarkerError, match="BEGIN symkl docs: families"):
        nav.replace_block(text, "families", [])


# -- the site builds ----------------------------------------------------------------------------


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site"),
         "--config-file", str(ROOT / "mkdocs.yml")],
        capture_output=True, text=True, timeout=180, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    page = (tmp_path / "site/pairs/normal-normal/index.html").read_text()
    assert 'class="arithmatex"' in page  # math reaches MathJax
    assert "$$" not in page  # every display formula, the derivation steps' too, was recognised
    assert "kl_normal_normal" in page
    api = (tmp_path / "site/reference/api/index.html").read_text()
    for name in ("symkl.kl", "symkl.entropy", "symkl.cross_entropy", "symkl.mle", "symkl.verify.verify"):
        assert f'id="{name}"' in api, name
