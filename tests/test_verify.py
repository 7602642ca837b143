"""The verification engine: it passes the generated code, and it catches seeded bugs.

The mutation tests hand ``symkl.verify`` deliberately wrong implementations of KL(Normal ||
Normal) (a flipped sign, a lost factor 1/2, P and Q swapped, a coefficient off by 1e-3, the
float32 cancellation of the textbook formula) and require a failed check whose message
names the pair, the check and the worst point.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import sympy as sp
import torch

import symkl
import symkl.numpy as snp
from symkl.cli import main
from symkl.verify import units, verify
from symkl.verify.points import Unit, is_finite, points
from symkl.verify.tolerances import ulp_tolerance

FAST = dict(workers=1, monte_carlo=False, gradients=False, points=2)


def _normal_kl(sign: float = 1.0, quad: float = 0.5, const: float = -0.5):
    """KL(N_p || N_q) = log(s_q/s_p) + (s_p^2 + (m_p - m_q)^2) quad / s_q^2 + const, in
    float64, with hooks to break it."""
    def kl(loc_p, scale_p, loc_q, scale_q):
        lp, sp_, lq, sq = (np.asarray(a, np.float64) for a in (loc_p, scale_p, loc_q, scale_q))
        return sign * np.log(sq / sp_) + (sp_**2 + (lp - lq) ** 2) * quad / sq**2 + const
    return kl


def _failed(report, check_prefix: str):
    return [c for c in report.failures() if c.check.startswith(check_prefix)]


def test_the_generated_code_passes_for_a_pair():
    report = verify("gamma", "gamma", **FAST)
    assert report.passed, report.summary()
    names = {c.check for c in report.checks}
    assert {"reference A", "symbolic result (mpmath)", "numpy float64", "numpy float32",
            "torch cpu float64", "torch cpu float32"} <= names
    # torch.distributions loses its digits near P == Q: reported, attributed, not a failure.
    assert any(d.wrong == "torch.distributions" and d.torch_ulp > 1e6 for d in report.disagreements)


def test_a_correct_own_implementation_passes():
    report = verify("normal", "normal", quantity="kl", generated=False,
                    implementations={"mine": snp.kl_normal_normal}, **FAST)
    assert report.passed, report.summary()
    assert any(c.check == "mine float64" for c in report.checks)


@pytest.mark.parametrize("mutant,why", [
    (_normal_kl(sign=-1.0), "sign flipped in the log term"),
    (_normal_kl(quad=1.0), "missing factor 1/2"),
    (lambda loc_p, scale_p, loc_q, scale_q: snp.kl_normal_normal(loc_q, scale_q, loc_p, scale_p), "P and Q swapped"),
    (_normal_kl(const=-0.5 * (1 + 1e-3)), "coefficient perturbed by 1e-3"),
])
def test_mutants_are_caught(mutant, why):
    report = verify("normal", "normal", quantity="kl", generated=False,
                    implementations={"mutant": mutant}, **FAST)
    failed = _failed(report, "mutant float64")
    assert failed, f"{why}: not caught\n{report.summary()}"
    message = failed[0].message()
    assert "kl(normal || normal)" in message and "mutant float64" in message
    assert "worst point" in message and "loc_p=" in message


def test_a_float32_cancellation_bug_is_caught():
    """The textbook formula evaluated in float32 (what torch.distributions does): exact
    enough at typical points, but it cancels near P == Q."""
    def naive(loc_p, scale_p, loc_q, scale_q):
        dtype = np.result_type(loc_p, scale_p)
        var_ratio = (scale_p / scale_q) ** 2
        t1 = ((loc_p - loc_q) / scale_q) ** 2
        return (0.5 * (var_ratio + t1 - dtype.type(1) - np.log(var_ratio))).astype(dtype)

    report = verify("normal", "normal", quantity="kl", generated=False,
                    implementations={"naive": naive}, **FAST)
    failed = _failed(report, "naive float32")
    assert failed and "near" in failed[0].worst, report.summary()


def test_the_float64_check_has_teeth_at_the_last_digits():
    """A float64 result off by 2 x the tolerance (in ULPs) at every point fails."""
    unit = Unit("kl", "normal", "normal")
    tol = ulp_tolerance(unit, "float64")

    def nudged(**kw):
        value = snp.kl_normal_normal(**kw)
        return value + 2 * tol * np.spacing(value)

    report = verify("normal", "normal", quantity="kl", generated=False, dtypes="float64",
                    implementations={"nudged": nudged}, **FAST)
    assert _failed(report, "nudged float64"), report.summary()


def test_nan_and_a_negative_kl_are_failures():
    for bad in (lambda **kw: np.nan, lambda **kw: -1e-300):
        report = verify("normal", "normal", quantity="kl", generated=False, dtypes="float64",
                        implementations={"bad": bad}, **FAST)
        failed = _failed(report, "bad float64")
        assert failed and math.isinf(failed[0].error), report.summary()


def test_infinite_values_must_be_exactly_inf():
    """uniform || uniform has support-mismatch points: a finite value there fails."""
    def clipped(**kw):
        return min(float(snp.kl_uniform_uniform(**kw)), 1e300)

    report = verify("uniform", "uniform", quantity="kl", generated=False, dtypes="float64",
                    implementations={"clipped": clipped}, **FAST)
    failed = _failed(report, "clipped float64")
    assert failed and "mismatch" in failed[0].worst, report.summary()


# -- points ------------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", [Unit("kl", "categorical", "categorical"), Unit("kl", "beta", "uniform"),
                                  Unit("cross_entropy", "uniform", "uniform")], ids=str)
def test_points_cover_the_regimes_and_are_finite_where_they_should_be(unit):
    d = symkl.kl(unit.p, unit.q) if unit.quantity == "kl" else symkl.cross_entropy(unit.p, unit.q)
    pts = points(unit, d, seed=3)
    regimes = {p.regime for p in pts}
    assert "typical" in regimes and "mismatch" in regimes
    for p in pts:
        assert is_finite(d, p.values) == (p.regime != "mismatch"), p.describe()
        if p.float32:
            assert all(np.array_equal(np.float32(v).astype(np.float64), v) for v in p.values.values())
        for name, v in p.values.items():  # probability vectors sum to exactly 1
            if name.startswith("probs"):
                assert math.fsum(np.asarray(v)) == 1.0


def test_near_equal_points_differ_by_the_requested_amount():
    unit = Unit("kl", "gamma", "gamma")
    pts = {p.regime: p for p in points(unit, symkl.kl("gamma", "gamma"))}
    for delta in (1e-3, 1e-6, 1e-9, 1e-12):
        p = pts[f"near {delta:.0e}"]
        rel = abs(p.values["rate_q"] / p.values["rate_p"] - 1)
        assert 0.3 * delta < rel < 3 * delta
        assert p.float32 == (delta >= 1e-6)


def test_units_selection_and_errors():
    assert len(units()) == 2 * len(symkl.pairs()) + len(symkl.families())
    assert [str(u) for u in units("normal", "normal")] == [
        "kl(normal || normal)", "cross_entropy(normal || normal)", "entropy(normal)"]
    with pytest.raises(ValueError, match="did you mean 'normal'"):
        units("normall")
    with pytest.raises(NotImplementedError, match="Supported pairs"):
        units("poisson", "normal")
    with pytest.raises(ValueError, match="unknown quantity"):
        units("normal", "normal", quantity="kld")


def test_user_points_are_checked_and_validated():
    report = verify("normal", "normal", quantity="kl", user_points=[
        {"loc_p": 0.0, "scale_p": 1.0, "loc_q": 1.0, "scale_q": 0.5}], **FAST)
    assert report.passed
    with pytest.raises(ValueError, match="needs exactly the arguments"):
        verify("normal", "normal", quantity="kl", user_points=[{"loc_p": 0.0}], **FAST)


# -- Monte Carlo in the run --------------------------------------------------------------------


def test_monte_carlo_runs_with_holm_and_reports_z():
    report = verify("exponential", "exponential", quantity="kl", workers=1, gradients=False, points=2,
                    mc_samples=200_000)
    mc = [c for c in report.checks if c.check.startswith("Monte Carlo")]
    assert len(mc) == 2 and all(c.passed and c.measure == "|z|" for c in mc)
    assert all("Holm" in c.detail and "variance reduction" in c.detail for c in mc)


# -- report and command line -------------------------------------------------------------------


def test_report_json_and_markdown(tmp_path):
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    status = main(["verify", "exponential", "exponential", "--quantity", "kl", "--no-monte-carlo",
                   "--no-gradients", "--points", "2", "--workers", "1",
                   "--json", str(out_json), "--markdown", str(out_md)])
    assert status == 0
    data = json.loads(out_json.read_text())
    assert data["passed"] is True and data["checks"]
    text = out_md.read_text()
    assert "| `kl(exponential \\|\\| exponential)` |" in text and "CUDA: not in this run" in text
    assert f"torch {torch.__version__}" in text and data["settings"]["environment"]["torch"] == torch.__version__
    # a saved report (e.g. from a GPU machine) re-renders to the same Markdown, with its own environment
    data["settings"]["environment"]["torch"] = "9.9.9+elsewhere"
    data["checks"][0]["error"] = "inf"
    out_json.write_text(json.dumps(data))
    again = tmp_path / "again.md"
    assert main(["verify", "--from-json", str(out_json), "--markdown", str(again)]) == 0
    rendered = again.read_text()
    assert "torch 9.9.9+elsewhere" in rendered and f"torch {torch.__version__}" not in rendered
    from symkl.verify.report import Report

    report = Report.from_json(out_json.read_text())
    assert report.checks[0].error == float("inf") and report.passed
    assert main(["verify", "--from-json", str(out_json)]) == 2  # no --markdown to write


def test_cli_usage_errors(capsys):
    assert main(["verify"]) == 2
    assert "name a family" in capsys.readouterr().err
    assert main(["verify", "--all", "normal"]) == 2
    assert main(["verify", "normall"]) == 2
    assert "did you mean 'normal'" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a GPU")
def test_cuda_requested_without_a_gpu_is_a_clear_error(capsys):
    assert main(["verify", "gamma", "normal", "--device", "cuda"]) == 2
    assert "torch.cuda.is_available() is False" in capsys.readouterr().err


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_results_meet_the_same_references():
    report = verify("gamma", "gamma", devices="all", **FAST)
    assert report.passed, report.summary()
    assert any(c.check == "torch cuda float32" for c in report.checks)


def test_cli_exit_status_is_1_when_a_check_fails(monkeypatch):
    import symkl.verify.tolerances as tolerances

    monkeypatch.setattr(tolerances, "SYMBOLIC_DIGITS", 1e9)  # no result can meet this
    assert main(["verify", "exponential", "exponential", "--quantity", "kl", "--no-monte-carlo",
                 "--no-gradients", "--points", "1", "--workers", "1", "--dtype", "float64"]) == 1


def test_symbolic_mutation_is_caught_by_the_symbolic_check(monkeypatch):
    """A wrong derivation result (a term with its sign flipped) fails 'symbolic result'."""
    from symkl.verify import engine

    real = engine.derivation_of

    def broken(unit):
        d = real(unit)
        terms = sp.Add.make_args(d.formula)
        wrong = d.formula - 2 * terms[-1]
        return type(d)(**{**d.__dict__, "result": wrong, "formula": wrong})

    monkeypatch.setattr(engine, "derivation_of", broken)
    report = verify("normal", "normal", quantity="kl", generated=False, **FAST)
    failed = _failed(report, "symbolic result")
    assert failed and "kl(normal || normal)" in failed[0].message()


def test_the_whole_catalogue_verifies():
    """`symkl verify --all` with the default settings: every deciding check passes (about a
    minute on 2 cores; docs/verification.md is this run's report)."""
    report = verify()
    assert report.passed, report.summary()
    assert len(report.units()) == 58 and report.seconds < 600


def test_symkl_verify_is_the_function_and_the_package():
    import symkl.verify.engine

    report = symkl.verify("exponential", "exponential", quantity="kl", **FAST)
    assert report.passed and symkl.verify.engine.FAMILY_ALPHA == 1e-6
