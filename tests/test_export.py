"""``symkl export``: the committed derivations/ folder, document content, index, LaTeX, CLI."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import sympy

import symkl
import symkl.export as export
from symkl.cli import main
from symkl.export import catalogue, latex
from symkl.export.breaking import break_lines, visible_width
from symkl.export.provenance import is_generated

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "derivations"


@pytest.fixture(scope="module")
def docs() -> list[catalogue.Document]:
    return catalogue.documents()


@pytest.fixture(scope="module")
def files(docs) -> dict[str, str]:
    return export.render(docs=docs)


def _first_difference(names: list[str], files: dict[str, str], most: int = 3) -> str:
    """The first differing lines of a few stale files, so a failure says what changed."""
    import difflib

    out = []
    for name in names[:most]:
        committed = (COMMITTED / name).read_text().splitlines(keepends=True)
        diff = difflib.unified_diff(committed, files[name].splitlines(keepends=True), name, "export", n=0)
        out.append("".join(list(diff)[:12]))
    return "\n".join(out)


def _doc(docs, slug: str) -> catalogue.Document:
    return next(doc for doc in docs if doc.slug == slug)


# -- the committed folder -----------------------------------------------------------------------


def test_committed_folder_is_a_fresh_export(files):
    plan = export.compare(COMMITTED, files)
    assert not plan.missing, f"missing in derivations/ (run 'symkl export'): {plan.missing}"
    assert not plan.stale, (f"out of date in derivations/ (run 'symkl export'): {plan.stale}\n"
                            + _first_difference(plan.stale, files))
    assert not plan.extra, f"no longer exported, still in derivations/: {plan.extra}"
    assert not plan.foreign, f"files symkl did not write in derivations/: {plan.foreign}"


def test_every_derivation_is_exported_once(docs, files):
    pairs = symkl.pairs()
    slugs = {doc.slug for doc in docs}
    assert {f"kl-{p}-{q}" for p, q in pairs} <= slugs
    assert {f"cross-entropy-{p}-{q}" for p, q in pairs} <= slugs
    assert {f"entropy-{f.name}" for f in symkl.families()} <= slugs
    assert "kl-mvn_diag-mvn_diag-vae" in slugs
    mle = [doc for doc in docs if doc.quantity == "mle"]
    assert len(mle) == len(symkl.likelihood.examples())
    assert len(docs) == 2 * len(pairs) + len(symkl.families()) + 1 + len(mle)
    for doc in docs:
        assert f"{doc.slug}.tex" in files and f"{doc.slug}.md" in files
    assert len(files) == 2 * len(docs) + 2  # + README.md, catalogue.tex


def test_mle_slug_names_model_fixed_values_and_data():
    d = SimpleNamespace(q="normal", p="normal", fixed={"scale_q": 1})
    assert catalogue.mle_slug(d) == "mle-normal-fix-scale-1-data-normal"
    d = SimpleNamespace(q="gamma", p=None, fixed={"rate_q": sympy.Rational(1, 2)})
    assert catalogue.mle_slug(d) == "mle-gamma-fix-rate-1_2"


def test_every_file_has_the_generated_header_and_no_run_specific_text(files):
    for name, text in files.items():
        assert is_generated(text), name
        assert symkl.__version__ in text.splitlines()[0], name
        assert str(ROOT) not in text and "/tmp" not in text, name
        assert not re.search(r"\b20\d\d-\d\d-\d\d\b", text), f"{name} contains a date"


# -- content ------------------------------------------------------------------------------------


def test_support_mismatch_states_plus_infinity_and_why(docs, files):
    d = _doc(docs, "kl-normal-exponential").derivation
    assert d.conditions.never_finite
    md, tex = files["kl-normal-exponential.md"], files["kl-normal-exponential.tex"]
    for text in (md, tex):
        assert r"The result is $+\infty$ for every parameter value" in text
        assert "is not contained in supp Q = [0, inf)" in text.replace("\\[", "[").replace("\\]", "]")
        assert r"D_{\mathrm{KL}}\left(P \,\|\, Q\right) &= \infty" in text or \
            r"D_{\mathrm{KL}}\left(P \,\|\, Q\right) = \infty" in text
    for name in ("loc_p", "scale_p", "rate_q"):
        assert f"`{name}`" in md and r"\texttt{%s}" % latex.escape(name) in tex


def test_uniform_pair_states_its_finiteness_condition(files):
    md, tex = files["kl-uniform-uniform.md"], files["kl-uniform-uniform.tex"]
    for text in (md, tex):
        # KL(U[a_p, b_p] || U[a_q, b_q]) is finite iff [a_p, b_p] lies inside [a_q, b_q].
        condition = re.search(r"finite exactly when \$([^$]*)\$", text).group(1)
        assert set(condition.split(r" \wedge ")) == {r"b_{p} \leq b_{q}", r"a_{q} \leq a_{p}"}
        assert r"otherwise it is $+\infty$" in text
        assert r"\log{\left(\frac{b_{q} - a_{q}}{b_{p} - a_{p}} \right)}" in text


def test_conventions_steps_identities_and_verification_are_stated(docs, files):
    for slug, note in (("entropy-bernoulli", "0 log 0 = 0"), ("entropy-poisson", "no closed form")):
        assert note in files[f"{slug}.tex"] and note in files[f"{slug}.md"]
    doc = _doc(docs, "kl-gamma-gamma")
    md, tex = files["kl-gamma-gamma.md"], files["kl-gamma-gamma.tex"]
    assert len(re.findall(r"\\textbf\{\((\d+)\)\}", tex)) == len(doc.derivation.steps)
    assert len(re.findall(r"^\d+\. ", md, flags=re.M)) == len(doc.derivation.steps)
    for text in (md, tex):
        assert "H(P, Q) - H(P) - KL(P" in text and "KL(P" in text and "P) = 0 (proven" in text
        assert "symkl verify gamma gamma --quantity kl" in text
        assert "docs/verification.md" in text
        assert "symkl derive gamma gamma --brute-force 60" in text
    assert "symkl verify beta --quantity entropy" in files["entropy-beta.md"]
    assert "symkl derive mvn_diag mvn_diag --fix-q loc=0 --fix-q scale=1 --brute-force 60" in \
        files["kl-mvn_diag-mvn_diag-vae.md"]


def test_markdown_math_blocks_have_no_blank_lines(files):
    for name, text in files.items():
        if name.endswith(".md"):
            for block in re.findall(r"\$\$\n(.*?)\$\$", text, flags=re.S):
                assert "\n\n" not in block and block.strip(), name


# -- index --------------------------------------------------------------------------------------


def test_index_links_every_file_and_every_link_exists(files):
    index = files[export.INDEX]
    links = set(re.findall(r"\]\(([^)]+)\)", index))
    assert links == set(files) - {export.INDEX}
    for name, text in files.items():
        if name.endswith(".md") and name != export.INDEX:
            assert "[index](README.md)" in text
            assert f"[LaTeX]({name[:-3]}.tex)" in text


def test_index_table_rows(docs, files):
    rows = [line for line in files[export.INDEX].splitlines() if line.startswith("| ") and "](" in line]
    assert len(rows) == len(docs)
    assert all(line.count(" | ") == 4 for line in rows)  # 5 cells: no stray `|` in a cell
    row = next(line for line in rows if "(kl-normal-exponential.tex)" in line)
    assert "+inf (support mismatch)" in row and "| never |" in row
    row = next(line for line in rows if "(kl-normal-normal.tex)" in line)
    assert "| always |" in row and "| passed |" in row


# -- LaTeX layout -------------------------------------------------------------------------------


def test_long_results_break_into_balanced_lines(docs):
    d = _doc(docs, "kl-beta-normal").derivation
    lines = break_lines(d.formula, d, 40)
    assert len(lines) >= 3
    for line in lines:
        assert len(re.findall(r"\\left\b", line)) == len(re.findall(r"\\right\b", line)), line
    # an expectation of a long sum breaks inside its brackets: E_P[ ... \right. / \left. ... ]
    step = next(s for s in d.steps if "substitute the log-densities" in s.rule)
    inner = break_lines(step.rhs, d, 40)
    assert inner[0].startswith(r"\mathbb{E}_{P}\left[") and inner[0].endswith(r"\right.")
    assert inner[-1].startswith(r"\left.") and inner[-1].endswith(r"\right]")


def test_visible_width_counts_printed_glyphs():
    assert visible_width(r"\alpha_{p}") == 2
    assert visible_width(r"\log{\left(x \right)}") == len("log(x)")
    assert visible_width("a + b") == len("a + b")
    assert visible_width(r"\sum_{i=0}^{k}x_{i}") == 3  # limits stack above and below
    assert visible_width(r"\frac{a}{b}") == 2  # errs wide


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_catalogue_compiles_with_pdflatex_without_overfull_lines(files, tmp_path):
    (tmp_path / export.CATALOGUE).write_text(files[export.CATALOGUE])
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", export.CATALOGUE],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    log = (tmp_path / "catalogue.log").read_text(errors="replace")
    assert run.returncode == 0, log[-3000:]
    assert (tmp_path / "catalogue.pdf").stat().st_size > 10_000
    overfull = [float(w) for w in re.findall(r"Overfull \\hbox \((\d+\.?\d*)pt too wide\)", log)]
    assert max(overfull, default=0.0) < 5.0, f"lines overflow the page by (pt): {overfull}"


# -- writing, checking, CLI ---------------------------------------------------------------------


@pytest.fixture
def small_export(docs, monkeypatch):
    """Make the export produce three documents only, so that CLI runs take milliseconds."""
    chosen = [_doc(docs, s) for s in ("kl-uniform-uniform", "entropy-beta", "kl-normal-exponential")]
    real = export.render
    monkeypatch.setattr(export, "render", lambda formats, progress=None: real(formats, docs=chosen))
    return chosen


def test_write_check_and_cleanup(small_export, tmp_path, capsys):
    out = tmp_path / "derivations"
    assert main(["export", "--out", str(out)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(["README.md", "catalogue.tex"]
                             + [f"{d.slug}.{ext}" for d in small_export for ext in ("tex", "md")])
    assert main(["export", "--out", str(out), "--check"]) == 0
    capsys.readouterr()

    (out / "entropy-beta.md").write_text("edited\n")
    (out / "kl-old-pair.tex").write_text("% Generated by `symkl export` (symkl 0.0.1).\n")
    (out / "notes.txt").write_text("my own notes\n")
    assert main(["export", "--out", str(out), "--check"]) == 1
    report = capsys.readouterr().out
    assert "out of date: " in report and "entropy-beta.md" in report
    assert "not produced by this export: " in report and "kl-old-pair.tex" in report
    assert "not written by symkl (left alone): " in report and "notes.txt" in report
    assert (out / "entropy-beta.md").read_text() == "edited\n"  # --check writes nothing

    assert main(["export", "--out", str(out)]) == 0
    assert not (out / "kl-old-pair.tex").exists()
    assert (out / "notes.txt").read_text() == "my own notes\n"
    assert main(["export", "--out", str(out), "--check"]) == 0


def test_format_selection(small_export, tmp_path):
    out = tmp_path / "tex-only"
    assert main(["export", "--out", str(out), "--format", "tex"]) == 0
    names = {p.name for p in out.iterdir()}
    assert not {n for n in names if n.endswith(".md")} - {"README.md"}
    assert "catalogue.tex" in names
    assert "[md](" not in (out / "README.md").read_text()


@pytest.mark.parametrize("value, message", [
    ("pdf", "--format: unknown export format 'pdf'. Formats: tex, md"),
    ("tex,mdd", "unknown export format 'mdd'; did you mean 'md'?"),
    (",", "no export format given; choose from tex, md"),
])
def test_unknown_format_is_a_usage_error(value, message, capsys):
    assert main(["export", "--format", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symkl: error: ") and message in err and err.count("\n") == 1


def test_out_must_be_a_folder(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert main(["export", "--out", str(target)]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err


def test_output_does_not_depend_on_the_hash_seed():
    """Two interpreters with different PYTHONHASHSEED render the same bytes."""
    script = ("import sys, symkl, symkl.export as e\n"
              "from symkl.export.catalogue import Document\n"
              "docs = [Document('a', 'A', symkl.kl('categorical', 'categorical')),\n"
              "        Document('b', 'B', symkl.entropy('poisson')),\n"
              "        Document('c', 'C', symkl.kl('mvn', 'mvn'))]\n"
              "sys.stdout.write(''.join(e.render(docs=docs).values()))\n")
    outputs = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             env=env, timeout=300, cwd=ROOT)
        assert run.returncode == 0, run.stderr[-2000:]
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1]
    assert r"\sum_{i=0}^{k - 1}" in outputs[0] and "no closed form" in outputs[0]


def test_markdown_renders_with_the_sites_extensions(files):
    """The pages render as the MkDocs site renders them (Python-Markdown + arithmatex): every
    step is one list item holding its display math, and every index row has five cells."""
    md = pytest.importorskip("markdown")
    extensions = ["pymdownx.arithmatex", "tables"]
    config = {"pymdownx.arithmatex": {"generic": True}}
    html = md.markdown(files["kl-gamma-gamma.md"], extensions=extensions, extension_configs=config)
    derivation = html[html.index("<h2>Derivation"):html.index("<h2>Identities")]
    steps = len(symkl.kl("gamma", "gamma").steps)
    assert derivation.count("<li>") == steps and derivation.count("<ol>") == 1
    assert derivation.count('<div class="arithmatex">') == steps and "$$" not in html
    index = md.markdown(files[export.INDEX], extensions=extensions, extension_configs=config)
    rows = re.findall(r"<tr>(.*?)</tr>", index, flags=re.S)[1:]
    body_rows = [row for row in rows if "<td>" in row]
    assert body_rows and all(row.count("<td>") == 5 for row in body_rows)
