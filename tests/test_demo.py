"""``symkl demo``: MLE as KL minimisation, forward/reverse KL fits, Monte Carlo convergence.

Every expected value here comes from an independent source: textbook closed forms (moments of
the Gamma, moment matching of a mixture), torch.distributions' own KL and entropy, plain
quadrature or sums written in this file, never the demo's own numbers.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from symkl import distributions
from symkl.cli import main
from symkl.demo import mc, mle, modes, output, parametrize, scenario

F64 = torch.float64


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["demo", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- parameterisation ---------------------------------------------------------------------------


@pytest.mark.parametrize("family", sorted(distributions.REGISTRY))
def test_transforms_round_trip_every_parameter_of_the_catalogue(family: str) -> None:
    fam = distributions.get(family)
    rng = np.random.default_rng(1)
    values: dict[str, torch.Tensor] = {}
    for name in parametrize.dependency_order(fam):
        constraint = fam.parameter(name).constraint
        shape = parametrize.parameter_shape(fam, name, 3)
        drawn = constraint.sample(rng, shape, {k: v.numpy() for k, v in values.items()})
        values[name] = torch.as_tensor(drawn, dtype=F64)
    model = parametrize.Parametrized(fam, values, {})
    for name, value in model.values().items():
        torch.testing.assert_close(value, values[name], rtol=1e-10, atol=1e-12)
    # A gradient step lands on a valid parameter again: the point of the transforms.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, dtype=F64, generator=torch.Generator().manual_seed(0)))
    fam.validate({k: v.detach().numpy() for k, v in model.values().items()})


def test_neutral_values_come_from_the_constraints() -> None:
    assert {k: v.tolist() for k, v in parametrize.neutral_values(distributions.get("normal"), 3).items()} \
        == {"loc": 0.0, "scale": 1.0}
    uniform = parametrize.neutral_values(distributions.get("uniform"), 3)
    assert (float(uniform["low"]), float(uniform["high"])) == (0.0, 1.0)
    assert parametrize.neutral_values(distributions.get("categorical"), 4)["probs"].tolist() == [0.25] * 4
    assert torch.equal(parametrize.neutral_values(distributions.get("mvn"), 2)["covariance_matrix"],
                       torch.eye(2, dtype=F64))


def test_unknown_constraint_is_a_clear_error() -> None:
    from symkl.constraints import Constraint, positive

    odd = Constraint("positve_odd", "odd", {}, positive.check, positive.sample)
    with pytest.raises(ValueError, match="positve_odd.*closest known: 'positive'.*known constraints"):
        parametrize.transform_for(odd)


# -- mle ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classic() -> mle.MleResult:
    return mle.run("normal", "normal", fix={"scale": 1}, steps=200, batch=256, seed=0)


def test_classic_theta_goes_to_2(classic: mle.MleResult) -> None:
    assert abs(classic.final["loc"][0] - 2.0) < 0.05
    assert classic.final["scale"] == [1.0]  # fixed
    assert abs(classic.optimum["loc"][0] - 2.0) < 1e-6 and "scale" not in classic.optimum
    assert classic.records[0].params == {"loc": [0.0], "scale": [1.0]}  # the neutral start


def test_classic_nll_minus_kl_is_the_entropy(classic: mle.MleResult) -> None:
    assert abs(classic.residual_mean) < 4 * classic.residual_stderr
    # The per-step std error is std(log q) / sqrt(batch); for N(theta, 1) near theta = 2 the
    # std of log q(x) = -(x - theta)^2 / 2 + c is 1/sqrt(2). One step's estimate scatters by
    # ~12 % (chi-square tails), the RMS over the last 100 steps by ~1 %.
    rms = math.sqrt(sum(r.mc_stderr**2 for r in classic.records[-100:]) / 100)
    assert rms == pytest.approx(math.sqrt(0.5) / 16, rel=0.05)
    # H(N(2, 1)) and each step's exact KL, against torch.distributions.
    assert classic.records[0].entropy == pytest.approx(0.5 * math.log(2 * math.pi * math.e), rel=1e-15)
    p = torch.distributions.Normal(torch.tensor(2.0, dtype=F64), torch.tensor(1.0, dtype=F64))
    for r in classic.records[::40]:
        q = torch.distributions.Normal(torch.tensor(r.params["loc"][0], dtype=F64), torch.tensor(1.0, dtype=F64))
        assert r.kl == pytest.approx(float(torch.distributions.kl_divergence(p, q)), rel=1e-12, abs=1e-15)


def test_gamma_data_normal_model_matches_the_gamma_moments() -> None:
    a, b = 3.0, 2.0
    result = mle.run("gamma", "normal", data={"concentration": a, "rate": b}, steps=300, seed=1)
    mean, variance = a / b, a / b**2  # the Gaussian MLE is moment matching
    assert result.optimum["loc"][0] == pytest.approx(mean, abs=1e-6)
    assert result.optimum["scale"][0] ** 2 == pytest.approx(variance, abs=1e-6)
    assert abs(result.final["loc"][0] - mean) < 0.05
    assert abs(result.final["scale"][0] ** 2 - variance) < 0.08
    assert abs(result.residual_z) < 4


def _poisson_entropy(rate: float) -> float:
    """H(Poisson(rate)) by a direct sum, independent of symkl and mpmath."""
    pmf = [math.exp(n * math.log(rate) - rate - math.lgamma(n + 1)) for n in range(80)]
    return -sum(p * math.log(p) for p in pmf)


def test_poisson_pair_recovers_the_rate() -> None:
    result = mle.run("poisson", "poisson", data={"rate": 4.0}, steps=200, seed=0)
    assert result.records[0].entropy == pytest.approx(_poisson_entropy(4.0), rel=1e-12)
    assert abs(result.final["rate"][0] - 4.0) < 0.15
    assert abs(result.residual_z) < 4


def test_entropy_without_generated_code_is_computed_numerically_and_says_so(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import symkl.torch

    # The Poisson entropy (E[log x!]) was long missing from the generated code; whichever
    # family lacks it, the demo falls back to the mpmath reference and says so.
    monkeypatch.setattr(symkl.torch, "supported", lambda quantity="kl": [])
    entropy = scenario.data_entropy(distributions.get("poisson"), {"rate": torch.tensor(2.5, dtype=F64)})
    assert entropy.value == pytest.approx(_poisson_entropy(2.5), rel=1e-14)
    assert not entropy.generated and "not generated" in entropy.method


def test_categorical_pair_recovers_the_probabilities() -> None:
    probs = [0.1, 0.6, 0.3]
    result = mle.run("categorical", "categorical", data={"probs": probs}, steps=200, seed=0)
    assert result.final["probs"] == pytest.approx(probs, abs=0.03)
    assert result.optimum["probs"] == pytest.approx(probs, abs=1e-6)
    h = -sum(p * math.log(p) for p in probs)
    assert result.records[0].entropy == pytest.approx(h, rel=1e-14)
    assert abs(result.residual_z) < 4


def test_fixed_number_broadcasts_over_a_vector_parameter() -> None:
    result = mle.run("mvn_diag", "mvn_diag", fix={"scale": 1.0}, steps=5, seed=0)
    assert result.final["scale"] == [1.0, 1.0, 1.0] and set(result.optimum) == {"loc"}
    assert result.optimum["loc"] == pytest.approx(scenario.DEFAULT_DATA["mvn_diag"]["loc"], abs=1e-6)


def test_infinite_kl_pair_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"KL\(normal \|\| exponential\) is \+inf.*the real line.*\[0, inf\)"):
        mle.run("normal", "exponential", steps=2)


def test_model_with_a_moving_support_is_refused() -> None:
    with pytest.raises(ValueError, match=r"Uniform model.*support \[low, high\] depends on its parameters"):
        mle.run("beta", "uniform", steps=2)


def test_bad_parameters_name_the_parameter_and_the_constraint() -> None:
    with pytest.raises(ValueError, match="no parameter 'scal'; did you mean 'scale'"):
        mle.run("normal", "normal", data={"scal": 1.0}, steps=2)
    with pytest.raises(ValueError, match="scale"):
        mle.run("normal", "normal", data={"scale": -1.0}, steps=2)
    with pytest.raises(ValueError, match=r"probs.*shape \(3,\)"):
        mle.run("categorical", "categorical", fix={"probs": 0.5}, steps=2)
    with pytest.raises(ValueError, match="optimizer"):
        mle.run(optimizer="rmsprop", steps=2)


# -- modes --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fits() -> modes.ModesResult:
    return modes.run()


def _quadrature_kl(log_a, log_b) -> float:  # noqa: ANN001 - x -> log density
    x = torch.linspace(-20, 20, 400_001, dtype=F64)
    la = log_a(x)
    return float(torch.trapezoid(torch.exp(la) * (la - log_b(x)), x))


def test_forward_fit_matches_the_mixture_moments(fits: modes.ModesResult) -> None:
    assert fits.forward.loc == pytest.approx(0.0, abs=1e-6)
    assert fits.forward.scale**2 == pytest.approx(0.6**2 + 2.0**2, abs=1e-6)  # 0.36 + 4
    normal = torch.distributions.Normal(torch.tensor(fits.forward.loc, dtype=F64),
                                        torch.tensor(fits.forward.scale, dtype=F64))
    assert fits.forward.kl == pytest.approx(_quadrature_kl(fits.mixture.log_prob, normal.log_prob), rel=1e-8)


def test_reverse_fit_sits_on_one_mode(fits: modes.ModesResult) -> None:
    assert fits.reverse.loc == pytest.approx(2.0, abs=0.05)
    assert fits.reverse.scale == pytest.approx(0.6, abs=0.05)
    # With the other mode far away, q sees half the mass: KL -> log 2.
    assert fits.reverse.kl == pytest.approx(math.log(2), abs=0.01)
    normal = torch.distributions.Normal(torch.tensor(fits.reverse.loc, dtype=F64),
                                        torch.tensor(fits.reverse.scale, dtype=F64))
    assert fits.reverse.kl == pytest.approx(_quadrature_kl(normal.log_prob, fits.mixture.log_prob), rel=1e-8)


def test_mixture_is_validated() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        modes.run(weights=(0.5, 0.6))
    with pytest.raises(ValueError, match="as many weights, locs and scales"):
        modes.run(weights=(1.0,))


# -- mc -----------------------------------------------------------------------------------------


def test_mc_bands_converge_on_the_exact_kl() -> None:
    result = mc.run("normal", "normal", max_n=200_000, points=21, seed=0)
    assert result.exact == pytest.approx(2.0, rel=1e-15)  # KL(N(2, 1) || N(0, 1)) = 2^2 / 2
    assert result.estimates[0].n == 10 and result.last.n == 200_000
    assert abs(result.last.mean - result.exact) < 4 * result.last.stderr
    assert result.coverage >= 0.8
    stderrs = [e.stderr for e in result.estimates]
    assert stderrs[-1] < stderrs[0] / 50  # shrinks like 1/sqrt(n)


def test_mc_any_pair_against_torch_distributions() -> None:
    result = mc.run("gamma", "gamma", q_params={"concentration": 2.0, "rate": 1.0}, max_n=100_000, points=6)
    p = torch.distributions.Gamma(torch.tensor(3.0, dtype=F64), torch.tensor(2.0, dtype=F64))
    q = torch.distributions.Gamma(torch.tensor(2.0, dtype=F64), torch.tensor(1.0, dtype=F64))
    assert result.exact == pytest.approx(float(torch.distributions.kl_divergence(p, q)), rel=1e-12)
    assert abs(result.last.mean - result.exact) < 4 * result.last.stderr


# -- command line, files ------------------------------------------------------------------------


def test_mle_csv_columns_and_determinism(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # CSV only: faster, and tested below
    args = ("mle", "categorical", "categorical", "--steps", "15", "--batch", "64")
    runs = []
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        code, out, err = cli(capsys, *args, "--seed", seed, "--out", str(tmp_path / name))
        assert (code, err) == (0, "")
        runs.append((tmp_path / name / "demo-mle.csv").read_bytes())
    assert runs[0] == runs[1] and runs[0] != runs[2]
    header, rows = output.read_csv(tmp_path / "a" / "demo-mle.csv")
    assert header == [*mle.CSV_COLUMNS, "probs[0]", "probs[1]", "probs[2]"]
    assert len(rows) == 15 and [int(r[0]) for r in rows] == list(range(15))
    first = runs[0].decode().splitlines()[0]
    assert first.startswith("# generated by `symkl demo mle categorical categorical") and "--seed 3" in first
    for row in rows:  # each row's residual is its own NLL - KL - H
        nll, kl, h, residual = map(float, row[1:5])
        assert residual == pytest.approx(nll - kl - h, abs=1e-12)


def test_without_matplotlib_only_the_csv_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    code, out, err = cli(capsys, "mc", "--max-n", "1000", "--points", "3", "--out", str(tmp_path))
    assert (code, err) == (0, "")
    assert "pip install 'symkl[plot]'" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo-mc.csv"]


def test_png_has_no_timestamp_or_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    code, out, _ = cli(capsys, "mc", "--max-n", "1000", "--points", "4", "--out", str(tmp_path))
    assert code == 0 and "demo-mc.png" in out
    png = (tmp_path / "demo-mc.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert b"Software" not in png and b"generated by `symkl demo mc normal normal" in png
    header, rows = output.read_csv(tmp_path / "demo-mc.csv")
    assert header == list(mc.CSV_COLUMNS)
    assert [int(r[0]) for r in rows] == mc.sample_sizes(1000, 4) == [10, 46, 215, 1000]


def test_cli_modes_prints_both_fits(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = cli(capsys, "modes", "--out", str(tmp_path))
    assert (code, err) == (0, "")
    assert "mode-covering" in out and "mode-seeking" in out and "ok" in out
    header, rows = output.read_csv(tmp_path / "demo-modes.csv")
    assert header == list(modes.CSV_COLUMNS) and len(rows) == modes.GRID_POINTS
    x = np.array([float(r[0]) for r in rows])
    for column in (1, 2, 3):  # every curve is a density
        assert np.trapezoid([float(r[column]) for r in rows], x) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(("argv", "message"), [
    (("mle", "normall", "normal"), "unknown family 'normall'; did you mean 'normal'?"),
    (("mle", "normal", "exponential"), "is +inf"),
    (("mle", "poisson", "normal"), "KL(poisson || normal) is not in the catalogue"),
    (("mle", "beta", "uniform"), "depends on its parameters"),
    (("mle", "--fix", "loc"), "expected NAME=VALUE"),
    (("mle", "normal", "--data-param", "loc=1", "--data-param", "loc=2"), "--data-param sets 'loc' twice"),
    (("mle", "normal", "--data-param", "lco=1"), "did you mean 'loc'?"),
    (("mle", "--device", "cuda:7"), "cuda"),
    (("mc", "normal", "uniform"), "is +inf"),
    (("mc", "--max-n", "5"), "max_n must be >= 10"),
    (("modes", "--weights", "0.5,x"), "'x' is not a number"),
    (("bogus",), "invalid choice: 'bogus'"),
])
def test_cli_user_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...],
                                              message: str) -> None:
    if argv[:3] == ("mle", "--device", "cuda:7") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, out, err = cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("symkl: error: ") and err.count("\n") == 1
    assert message in err


def test_sgd_also_fits_the_classic_example() -> None:
    result = mle.run("normal", "normal", fix={"scale": 1}, optimizer="sgd", lr=0.1, steps=150, seed=2)
    assert abs(result.final["loc"][0] - 2.0) < 0.05 and abs(result.residual_z) < 4


def test_cli_classic_default_and_failed_check_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import symkl.demo.cli as demo_cli

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = cli(capsys, "mle", "--steps", "40", "--out", str(tmp_path))
    assert (code, err) == (0, "")
    assert "N(theta, 1) fitted to samples of N(2, 1)" in out and "fixed" in out
    header = (tmp_path / "demo-mle.csv").read_text().splitlines()[0]
    assert "--fix scale=1 --steps 40" in header and "--optimizer sgd" in header  # the textbook setting
    monkeypatch.setattr(demo_cli, "Z_LIMIT", 0.0)  # no run can pass: the failure path
    code, out, err = cli(capsys, "mle", "--steps", "10", "--out", str(tmp_path))
    assert (code, err) == (1, "") and "CHECK FAILED" in out


def test_vector_and_matrix_values_on_the_command_line() -> None:
    from symkl.demo.cli import parse_values

    assert parse_values("scale=1") == ("scale", 1.0)
    assert parse_values("probs=0.2,0.3,0.5") == ("probs", [0.2, 0.3, 0.5])
    assert parse_values("covariance_matrix=1,0.5;0.5,2") == ("covariance_matrix", [[1.0, 0.5], [0.5, 2.0]])


def test_other_dimensions_draw_defaults_from_the_constraints() -> None:
    result = mc.run("mvn_diag", p_params={"loc": [1.0, -1.0]}, max_n=1000, points=2)
    assert len(result.p_params["scale"]) == 2 and all(s > 0 for s in result.p_params["scale"])
    assert result.q_params == {"loc": [0.0, 0.0], "scale": [1.0, 1.0]}
    again = mc.run("mvn_diag", p_params={"loc": [1.0, -1.0]}, max_n=1000, points=2)
    assert again.p_params == result.p_params  # drawn with a fixed seed
    with pytest.raises(ValueError, match="disagree on the dimension k"):
        mc.run("mvn_diag", p_params={"loc": [1.0, -1.0], "scale": [1.0, 1.0, 1.0]}, max_n=100, points=2)


def test_the_command_in_the_csv_header_reruns_to_the_same_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import shlex

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, _ = cli(capsys, "modes", "--locs=-3,1", "--scales", "0.5,1", "--out", str(tmp_path / "a"))
    first = (tmp_path / "a" / "demo-modes.csv").read_text()
    command = first.splitlines()[0].split("`")[1]
    assert code == 0 and command.startswith("symkl demo modes")
    code, _, _ = cli(capsys, *shlex.split(command)[2:], "--out", str(tmp_path / "b"))
    assert code == 0 and (tmp_path / "b" / "demo-modes.csv").read_text() == first


COMMITTED = Path(__file__).resolve().parent.parent / "docs" / "img"


@pytest.mark.parametrize("name", ["mle", "modes", "mc"])
def test_committed_csvs_are_current(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/img/demo-*.csv rerun from the command in their header. Compared to 1e-9, not byte
    for byte: another CPU may round a float64 operation differently in the last bit (on one
    machine the files are byte-identical run to run). A failure means the demo or the
    generated code changed: rerun ``symkl demo NAME --out docs/img``."""
    import shlex

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    committed = COMMITTED / f"demo-{name}.csv"
    command = committed.read_text().splitlines()[0].split("`")[1]
    code, _, _ = cli(capsys, *shlex.split(command)[2:], "--out", str(tmp_path))
    assert code == 0
    header, rows = output.read_csv(committed)
    new_header, new_rows = output.read_csv(tmp_path / f"demo-{name}.csv")
    assert new_header == header and len(new_rows) == len(rows)
    np.testing.assert_allclose(np.array(new_rows, dtype=float), np.array(rows, dtype=float), rtol=1e-9, atol=1e-12)
