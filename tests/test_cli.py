"""The ``symkl`` command line, called in-process through ``symkl.cli.main``.

Every derivation goes to a per-module cache directory, so the tests never write into the
user's ``~/.cache``. The full ``symkl list`` derives every pair (~15 s cold); it runs once
per module (``full_list``) and the later ``derive`` tests reuse those derivations.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Iterator

import pytest
import sympy as sp

import symkl
from symkl.cli import main

FAMILY_NAMES = [f.name for f in symkl.families()]
ANSI_ESCAPE = "\x1b["


@pytest.fixture(scope="module", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point the derivation cache at a temporary directory, and keep rich plain: a CI
    setting FORCE_COLOR would otherwise make it emit ANSI codes into captured output."""
    cache_dir = tmp_path_factory.mktemp("symkl-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYMKL_CACHE_DIR", str(cache_dir))
        for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
            mp.delenv(name, raising=False)
        yield cache_dir


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI; return (exit status, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run the CLI, expecting success and nothing on stderr; return stdout."""
    code, out, err = run(capsys, *argv)
    assert (code, err) == (0, ""), err
    assert ANSI_ESCAPE not in out  # captured stdout is not a terminal
    return out


def table_rows(out: str) -> list[list[str]]:
    """The body rows of rich tables in ``out``, as lists of stripped cells."""
    return [[c.strip() for c in line.strip("│").split("│")]
            for line in out.splitlines() if line.startswith("│")]


@pytest.fixture(scope="module")
def full_list(isolated_cache: Path) -> str:
    """``symkl list`` once per module: it derives every pair. (capsys is per test, so
    capture with contextlib here.)"""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["list"])
    assert (code, err.getvalue()) == (0, "")
    return out.getvalue()


# -- top level ----------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert ok(capsys, "--version").strip() == f"symkl {symkl.__version__}"


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "derive", "--help")
    assert "--cross-entropy" in out and "--fix-q" in out


def test_module_entry_point_runs_in_a_subprocess(isolated_cache: Path) -> None:
    """``python -m symkl`` works (the console script calls the same ``main``)."""
    root = Path(symkl.__file__).resolve().parents[1]
    env = {**os.environ, "SYMKL_CACHE_DIR": str(isolated_cache),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "symkl", "derive", "normal", "normal"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("KL(P || Q) = ")
    assert "log(scale_q/scale_p)" in proc.stdout.splitlines()[0]
    assert ANSI_ESCAPE not in proc.stdout


# -- list ---------------------------------------------------------------------------------


def test_list_families_only(capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "list", "--families-only")
    rows = table_rows(out)
    assert [r[0] for r in rows if r[0]] == sorted(FAMILY_NAMES)
    assert len(FAMILY_NAMES) == 12
    normal = next(i for i, r in enumerate(rows) if r[0] == "normal")
    assert rows[normal][1:] == ["Normal", "loc: a finite real number", "Normal", "gaussian, norm"]
    assert rows[normal + 1][2] == "scale: > 0 (finite)"  # second parameter, same cell
    assert "Independent(Normal, 1)" in out
    assert "covariance_matrix (matrix): a symmetric positive-definite matrix" in out
    # Constraint texts with brackets survive (rich would read "[0, 1]" as markup).
    assert "probs: in [0, 1]" in out
    assert "pairs" not in out


def test_list_pairs_table(full_list: str) -> None:
    pairs = {(r[0], r[1]): r[2:] for r in table_rows(full_list) if len(r) == 4}
    assert set(pairs) == set(symkl.pairs())
    assert pairs["normal", "exponential"][0] == "always +inf"
    assert pairs["normal", "uniform"][0] == "always +inf"
    assert "supp Q = [low, high]" in pairs["normal", "uniform"][1]
    assert pairs["normal", "normal"] == ["finite", ""]
    assert pairs["uniform", "uniform"] == [
        "conditional", "finite when (high_p <= high_q) & (low_q <= low_p)"]
    assert pairs["categorical", "categorical"][1].endswith("for every i")
    assert ANSI_ESCAPE not in full_list


def test_list_json(capsys: pytest.CaptureFixture[str], full_list: str) -> None:
    data = json.loads(ok(capsys, "list", "--json"))
    assert [f["name"] for f in data["families"]] == sorted(FAMILY_NAMES)
    normal = data["families"][[f["name"] for f in data["families"]].index("normal")]
    assert normal["parameters"][0] == {"name": "loc", "shape": "scalar",
                                       "constraint": "a finite real number", "description": "mean"}
    kinds = {(r["p"], r["q"]): r["kl"] for r in data["pairs"]}
    assert set(kinds) == set(symkl.pairs())
    assert kinds["normal", "exponential"] == "always +inf"
    assert kinds["bernoulli", "bernoulli"] == "conditional"
    assert kinds["gamma", "normal"] == "finite"


def test_list_json_families_only(capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(ok(capsys, "list", "--json", "--families-only"))
    assert set(data) == {"families"}
    assert len(data["families"]) == 12


# -- derive -------------------------------------------------------------------------------


def test_derive_kl_text(capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "derive", "normal", "normal")
    first = out.splitlines()[0]
    assert first.startswith("KL(P || Q) = ")
    assert "log(scale_q/scale_p)" in first
    assert "(scale_p**2 + (loc_p - loc_q)**2)/(2*scale_q**2)" in first and "- 1/2" in first
    assert "parameter domain: scale_q: > 0 (finite)" in out
    assert "linearity of expectation" not in out  # no steps unless asked


def test_derive_accepts_aliases(capsys: pytest.CaptureFixture[str]) -> None:
    assert ok(capsys, "derive", "Gaussian", "norm") == ok(capsys, "derive", "normal", "normal")


def test_derive_steps_text(capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "derive", "normal", "normal", "--steps")
    assert "rule: linearity of expectation" in out
    assert "identity: H(P, Q) - H(P) - KL(P || Q) = 0" in out
    assert out.splitlines()[-1] == "checks: all passed"


def test_derive_latex(capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "derive", "normal", "normal", "--format", "latex")
    assert out.startswith("\\begin{align*}")
    assert out.rstrip().endswith("\\end{align*}")
    assert r"\sigma_{q}" in out
    assert "linearity of expectation" not in out


def test_derive_latex_steps(capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "derive", "normal", "normal", "--format", "latex", "--steps")
    assert out.startswith("\\begin{align*}")
    assert r"\text{linearity of expectation [structural]}" in out


def test_derive_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "derive", "normal", "normal", "--format", "markdown")
    assert out.startswith("## KL divergence: Normal || Normal\n")
    assert "**Conditions**" in out and "**Derivation**" not in out
    steps = ok(capsys, "derive", "normal", "normal", "--format", "markdown", "--steps")
    assert "**Derivation**" in steps and "linearity of expectation" in steps


@pytest.mark.parametrize("argv,fixed", [
    (("normal", "normal"), {}),
    (("mvn_diag", "mvn_diag", "--fix-q", "loc=0", "--fix-q", "scale=1"), {"loc": 0, "scale": 1}),
])
def test_derive_sympy_round_trips(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...],
                                  fixed: dict[str, int]) -> None:
    out = ok(capsys, "derive", *argv, "--format", "sympy")
    assert out.count("\n") == 1  # the srepr and nothing else
    expected = symkl.kl(argv[0], argv[1], q=fixed).result
    parsed = sp.sympify(out)
    assert parsed == expected
    assert sp.simplify(parsed - expected) == 0


def test_derive_entropy(capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "derive", "normal", "--entropy")
    first = out.splitlines()[0]
    # Term order is the printer's business; check the terms.
    assert first.startswith("H(P) = ")
    assert "log(scale_p)" in first and "log(2*pi)/2" in first
    assert "scale_q" not in out


def test_derive_entropy_latex(capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "derive", "normal", "--entropy", "--format", "latex")
    assert r"\log{\left(\sigma_{p} \right)}" in out


def test_derive_cross_entropy(capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "derive", "normal", "normal", "--cross-entropy")
    first = out.splitlines()[0]
    assert first.startswith("H(P, Q) = ")
    assert "log(scale_q)" in first and "(scale_p**2 + (loc_p - loc_q)**2)/(2*scale_q**2)" in first
    md = ok(capsys, "derive", "normal", "normal", "--cross-entropy", "--format", "markdown")
    assert md.startswith("## Cross-entropy: Normal || Normal")


def test_derive_vae_term(capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "derive", "mvn_diag", "mvn_diag", "--fix-q", "loc=0", "--fix-q", "scale=1")
    assert "loc_p[i]**2/2" in out
    assert "loc_q = 0 (fixed)" in out and "scale_q = 1 (fixed)" in out


def test_derive_fix_p_with_entropy(capsys: pytest.CaptureFixture[str]) -> None:
    first = ok(capsys, "derive", "normal", "--entropy", "--fix-p", "scale=1").splitlines()[0]
    assert first.startswith("H(P) = ") and "log(2*pi)/2" in first and "scale" not in first


def test_derive_conditional_pair_states_when_finite(capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "derive", "uniform", "uniform")
    assert "finite when (high_p <= high_q) & (low_q <= low_p); otherwise +inf" in out


def test_derive_no_cache_gives_the_same_result(capsys: pytest.CaptureFixture[str]) -> None:
    cached = ok(capsys, "derive", "exponential", "exponential")
    assert ok(capsys, "derive", "exponential", "exponential", "--no-cache") == cached


def test_derive_fractional_fixed_value(capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "derive", "normal", "normal", "--fix-q", "scale=0.5")
    assert "scale_q = 1/2 (fixed)" in out


# -- user errors: one line on stderr, exit status 2, no traceback ---------------------------


@pytest.mark.parametrize("argv,message", [
    (["derive", "normel", "normal"], "did you mean 'normal'?"),
    (["derive", "poisson", "normal"], "Supported pairs: bernoulli||bernoulli"),
    (["derive", "normal", "normal", "--entropy"], "--entropy takes one family"),
    (["derive", "normal"], "the KL divergence needs two families"),
    (["derive", "normal", "--cross-entropy"], "the cross-entropy needs two families"),
    (["derive", "normal", "--entropy", "--fix-q", "loc=0"], "--fix-q needs a Q"),
    (["derive", "normal", "--entropy", "--cross-entropy"], "not allowed with argument --entropy"),
    (["derive", "normal", "normal", "--fix-q", "scale=-1"], "Normal parameter 'scale' must be > 0"),
    (["derive", "normal", "normal", "--fix-q", "scale=abc"], "'abc' is not a number"),
    (["derive", "normal", "normal", "--fix-q", "scale"], "expected NAME=NUMBER"),
    (["derive", "normal", "normal", "--fix-q", "rate=1"], "has no parameter(s) ['rate']"),
    (["derive", "normal", "normal", "--fix-q", "scale=1", "--fix-q", "scale=2"], "twice"),
    (["derive", "mvn", "mvn", "--fix-q", "loc=0"], "fixing 'loc' to a number is not supported"),
    (["derive", "categorical", "categorical", "--fix-p", "probs=1"], "'probs' is a probability vector"),
    (["derive", "normal", "normal", "--format", "html"], "invalid choice: 'html'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "the following arguments are required: COMMAND"),
])
def test_user_errors(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.startswith("symkl: error: ") and err.count("\n") == 1, err
    assert message in err
    assert "Traceback" not in err


def test_derive_brute_force_reports_the_cross_check(capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "derive", "exponential", "--entropy", "--brute-force", "60")
    assert "brute-force cross-check: agrees" in out
