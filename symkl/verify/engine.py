"""The checks of one unit (a quantity of a pair), and a catalogue run in parallel.

For each point of a unit (see :mod:`symkl.verify.points`) reference A is computed from the
densities and confirmed at two precisions; then, against it,

* the symbolic result, evaluated in mpmath (>= ``SYMBOLIC_DIGITS`` significant digits);
* the generated numpy and torch functions (and a caller's own implementation), per device
  and dtype, in ULPs (:mod:`symkl.verify.tolerances`), with the hard invariants: never NaN,
  never negative KL, exactly 0 when P == Q, +inf exactly where the reference is infinite,
  no float32 overflow where the true value is representable;
* ``torch.distributions`` (reference C, informational): every disagreement is attributed,
  via reference A, to the side that is wrong;
* Monte Carlo (reference B) at typical points: a z-test whose per-test level comes from a
  family-wise alpha over the whole run (Holm's step-down is applied by :func:`run`);
* gradients: autograd of the generated torch function against SymPy's derivative of the
  result, and ``torch.autograd.gradcheck``.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from typing import Any, Callable, Iterable, Mapping, Sequence

import mpmath
import numpy as np

from symkl import mpeval
from symkl.derivation import Derivation
from symkl.distributions import REGISTRY
from symkl.verify import tolerances
from symkl.verify.points import Point, Unit, points, to_mpmath
from symkl.verify.reference import Reference, ReferenceDisagreement, reference, significant_digits
from symkl.verify.report import CheckResult, Disagreement, Report

QUANTITIES = ("kl", "cross_entropy", "entropy")
DTYPES = ("float64", "float32")
NUMPY_DTYPES = {"float64": np.float64, "float32": np.float32}
FAMILY_ALPHA = 1e-6
#: Typical points per unit that Monte Carlo and the gradient checks use.
MC_POINTS = 2
GRADIENT_POINTS = 2
SENSITIVITY_DRAWS = 2

#: A caller's implementation: keyword arguments named like the generated function's
#: (numpy arrays of the checked dtype) -> its value.
Implementation = Callable[..., Any]


@dataclass(frozen=True)
class Settings:
    devices: tuple[str, ...] = ("cpu",)
    dtypes: tuple[str, ...] = DTYPES
    typical: int = 4
    mc_samples: int = 2_000_000
    seed: int = 0
    monte_carlo: bool = True
    gradients: bool = True
    torch_reference: bool = True
    #: Check the generated numpy / torch functions (off when only ``implementations`` matter).
    generated: bool = True
    #: Per-test level of each Monte Carlo z-test (family-wise alpha / number of tests).
    mc_alpha: float = FAMILY_ALPHA
    regimes: tuple[str, ...] = ("typical", "near", "identical", "extreme", "mismatch")


@dataclass
class UnitOutcome:
    checks: list[CheckResult] = field(default_factory=list)
    disagreements: list[Disagreement] = field(default_factory=list)
    #: (index into ``checks``, p-value) of each Monte Carlo test, for Holm's correction.
    mc_tests: list[tuple[int, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def environment(devices: Sequence[str]) -> dict[str, str]:
    """Versions and devices of this run, stored with the report: a report rendered later,
    or on another machine (``symkl verify --from-json``), names where it was measured."""
    import platform

    import torch

    from symkl._version import __version__

    env = {"symkl": __version__, "torch": torch.__version__, "python": platform.python_version(),
           "system": platform.system()}
    if "cuda" in devices and torch.cuda.is_available():
        env["cuda_device"] = torch.cuda.get_device_name()
    return env


def derivation_of(unit: Unit) -> Derivation:
    import symkl

    if unit.quantity == "entropy":
        return symkl.entropy(unit.p)
    return getattr(symkl, unit.quantity)(unit.p, unit.q)


# -- evaluation helpers ------------------------------------------------------------------------


def _environment(unit: Unit, d: Derivation, point: Point) -> dict:
    values = dict(point.values)
    if unit.quantity == "entropy":  # the derivation names entropy parameters like P's: loc_p
        values = {f"{k}_p": v for k, v in values.items()}
    return mpeval.environment(d.symbols, values)


def symbolic_value(unit: Unit, d: Derivation, point: Point, dps: int) -> Any:
    with mpmath.workdps(dps):
        return mpeval.evaluate(d.result, _environment(unit, d, point))


def ulp_of(value: Any, dtype: str) -> float:
    """One unit in the last place of ``value`` rounded to ``dtype`` (denormal spacing below
    the normal range)."""
    np_dtype = NUMPY_DTYPES[dtype]
    return float(np.spacing(np.abs(np_dtype(float(value)))))


def ulp_error(got: float, ref: Any, dtype: str, *, nonnegative: bool) -> tuple[float, str]:
    """|got - ref| in ULPs of ref in ``dtype``, and which invariant broke (or "")."""
    if math.isnan(got):
        return math.inf, "NaN"
    if nonnegative and got < 0:
        return math.inf, f"negative value {got:.3g}"
    if mpmath.isinf(ref):
        return (0.0, "") if got == math.inf else (math.inf, f"{got:.6g} where the true value is +inf")
    if ref == 0:
        return (0.0, "") if got == 0 else (math.inf, f"{got:.3g} where the true value is exactly 0")
    if abs(ref) > float(np.finfo(NUMPY_DTYPES[dtype]).max):
        return (0.0, "") if math.isinf(got) else (math.inf, "finite where the true value overflows")
    if math.isinf(got):
        return math.inf, f"{got} where the true value {mpmath.nstr(ref, 8)} is finite and representable"
    return float(abs(mpmath.mpf(got) - ref) / ulp_of(ref, dtype)), ""


def nudge(values: Mapping[str, np.ndarray], np_dtype: type, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every input moved by 1 ulp of ``np_dtype`` in a random direction (matrices stay
    symmetric), returned as float64."""
    out = {}
    for name, v in values.items():
        direction = np.where(rng.random(np.shape(v)) < 0.5, -np.inf, np.inf).astype(np_dtype)
        if np.ndim(v) == 2:
            direction = np.tril(direction) + np.tril(direction, -1).T
        out[name] = np.nextafter(np.asarray(v, np_dtype), direction).astype(np.float64)
    return out


def sensitivity(unit: Unit, d: Derivation, point: Point, ref: Reference, dtype: str,
                rng: np.random.Generator) -> float:
    """Largest change of the true value, in ULPs of it, over random 1-ulp input moves."""
    if not mpmath.isfinite(ref.value) or ref.value == 0:
        return 1.0
    ulp = ulp_of(ref.value, dtype)
    change = 0.0
    for _ in range(SENSITIVITY_DRAWS):
        try:
            moved_point = Point(point.regime, point.label, nudge(point.values, NUMPY_DTYPES[dtype], rng), point.float32)
            moved = symbolic_value(unit, d, moved_point, ref.dps)
        except (ValueError, ZeroDivisionError):  # a nudge that leaves the domain
            return math.inf
        change = max(change, float(abs(moved - ref.value) / ulp) if mpmath.isfinite(moved) else math.inf)
    return change


def _scalar(value: Any) -> float:
    if hasattr(value, "detach"):
        value = value.detach().to("cpu").double().numpy()
    return float(np.asarray(value, dtype=np.float64).reshape(-1)[0])


def _numpy_call(unit: Unit) -> Implementation:
    import symkl.numpy as snp

    return getattr(snp, unit.function)


def _torch_call(unit: Unit, device: str) -> Implementation:
    import torch

    import symkl.torch.functional as stf

    fn = getattr(stf, unit.function)
    # as_tensor keeps each array's dtype (float32 stays float32)
    return lambda **kw: fn(**{k: torch.as_tensor(v, device=device) for k, v in kw.items()}, validate=True)


def _distributions_call(unit: Unit, device: str) -> Implementation:
    """The drop-in API on ``torch.distributions`` objects (``symkl.torch.kl_divergence``),
    which reads the parameters back from the objects (MultivariateNormal: its Cholesky
    factor, or in float32 the covariance it was built from)."""
    import symkl.torch as st
    from symkl.verify.torch_reference import distribution

    def call(**kw: np.ndarray) -> Any:
        dtype = str(next(iter(kw.values())).dtype)

        def build(family: str, suffix: str | None) -> Any:
            values = kw if suffix is None else {k[:-2]: v for k, v in kw.items() if k.endswith("_" + suffix)}
            return distribution(family, values, dtype, device, validate_args=True)

        if unit.quantity == "entropy":
            return st.entropy(build(unit.p, None))
        p, q = build(unit.p, "p"), build(unit.q, "q")  # type: ignore[arg-type]
        return (st.kl_divergence if unit.quantity == "kl" else st.cross_entropy)(p, q)

    return call


# -- the checks of one unit --------------------------------------------------------------------


class _UnitRun:
    def __init__(self, unit: Unit, settings: Settings, user_points: Sequence[Mapping[str, Any]],
                 implementations: Mapping[str, Implementation]):
        self.unit, self.settings = unit, settings
        self.implementations = implementations
        self.outcome = UnitOutcome()
        self.derivation = derivation_of(unit)
        self.points = points(unit, self.derivation, seed=settings.seed, typical=settings.typical,
                             regimes=settings.regimes, user=user_points)
        self.rng = np.random.default_rng([settings.seed, 7])
        self.references: dict[str, Reference] = {}
        self._sensitivity: dict[tuple[str, str], float] = {}

    def add(self, check: str, passed: bool, measure: str, error: float, tolerance: float, n: int,
            worst: Point | None = None, detail: str = "", informational: bool = False) -> int:
        self.outcome.checks.append(CheckResult(
            str(self.unit), check, passed, measure, error, tolerance, n,
            worst.describe() if worst is not None else "", detail, informational))
        return len(self.outcome.checks) - 1

    # reference A
    def run_references(self) -> None:
        refused, least, worst = [], math.inf, None
        for point in self.points:
            vp = to_mpmath(REGISTRY[self.unit.p], point.side("p" if self.unit.q else None))
            vq = to_mpmath(REGISTRY[self.unit.q], point.side("q")) if self.unit.q else None
            try:
                ref = reference(self.unit.quantity, self.unit.p, self.unit.q, vp, vq)
            except ReferenceDisagreement as exc:
                refused.append(f"{point.label}: {exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - a reference that breaks is refused, not fatal
                refused.append(f"{point.label}: reference raised {type(exc).__name__}: {exc}")
                continue
            self.references[point.label] = ref
            if ref.digits < least:
                least, worst = ref.digits, point
        detail = (f"{len(self.references)} references, each confirmed at two precisions "
                  f"(up to {max((r.dps for r in self.references.values()), default=0)} digits)")
        if refused:
            detail = f"refused (two evaluations disagree): {'; '.join(refused)}"
        self.add("reference A", not refused, "digits", least, tolerances.SYMBOLIC_DIGITS,
                 len(self.points), worst, detail)

    def checked_points(self, dtype: str | None = None) -> list[tuple[Point, Reference]]:
        out = []
        for p in self.points:
            if p.label in self.references and (dtype != "float32" or p.float32):
                out.append((p, self.references[p.label]))
        return out

    def tolerance(self, point: Point, ref: Reference, dtype: str) -> float:
        base = tolerances.ulp_tolerance(self.unit, dtype)
        if not tolerances.conditioned(self.unit):
            return base
        key = (point.label, dtype)
        if key not in self._sensitivity:
            self._sensitivity[key] = sensitivity(self.unit, self.derivation, point, ref, dtype, self.rng)
        return base * max(1.0, self._sensitivity[key])

    # the symbolic result
    def run_symbolic(self) -> None:
        least, worst = math.inf, None
        for point, ref in self.checked_points():
            value = symbolic_value(self.unit, self.derivation, point, ref.dps)
            digits = _digits(value, ref.value)
            if digits < least:
                least, worst = digits, point
        self.add("symbolic result (mpmath)", least >= tolerances.SYMBOLIC_DIGITS, "digits", least,
                 tolerances.SYMBOLIC_DIGITS, len(self.checked_points()), worst)

    # generated code and caller's implementations
    def run_implementation(self, name: str, call: Implementation, dtype: str) -> list[float]:
        """ULP errors per checked point (also recorded as one check); returns them."""
        np_dtype = NUMPY_DTYPES[dtype]
        pts = self.checked_points(dtype)
        worst_ratio, worst, worst_err, worst_tol, broken, errors = -1.0, None, 0.0, 0.0, "", []
        for point, ref in pts:
            args = {k: np.asarray(v, dtype=np_dtype) for k, v in point.values.items()}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    got = _scalar(call(**args))
                err, invariant = ulp_error(got, ref.value, dtype, nonnegative=self.unit.quantity == "kl")
            except Exception as exc:  # noqa: BLE001 - a crash is a failed check, with its message
                err, invariant = math.inf, f"raised {type(exc).__name__}: {exc}"
            errors.append(err)
            tol = self.tolerance(point, ref, dtype) if math.isfinite(err) else 1.0
            ratio = err / tol if tol else err
            if ratio > worst_ratio:
                worst_ratio, worst, worst_err, worst_tol = ratio, point, err, tol
                broken = invariant
        passed = worst_ratio <= 1.0
        detail = broken
        if tolerances.conditioned(self.unit) and worst is not None and not broken:
            detail = f"tolerance {tolerances.ulp_tolerance(self.unit, dtype):g} ULP x max(1, sensitivity)"
        self.add(f"{name} {dtype}", passed, "ulp", worst_err, worst_tol, len(pts), worst, detail)
        return errors

    def has_generated(self) -> bool:
        from symkl.generated.numpy_functions import FUNCTIONS

        return self.unit.function in FUNCTIONS

    def run_generated(self) -> dict[tuple[str, str], list[float]]:
        out = {}
        generated = self.settings.generated and self.has_generated()
        if self.settings.generated and not generated:
            self.outcome.notes.append(f"{self.unit}: no generated code (symkl codegen does not emit it "
                                      "yet); only the symbolic result is verified")
        for dtype in self.settings.dtypes:
            if generated:
                out[("numpy", dtype)] = self.run_implementation("numpy", _numpy_call(self.unit), dtype)
                for device in self.settings.devices:
                    out[(f"torch {device}", dtype)] = self.run_implementation(
                        f"torch {device}", _torch_call(self.unit, device), dtype)
                    self.run_implementation(f"symkl.torch on torch.distributions {device}",
                                            _distributions_call(self.unit, device), dtype)
            for name, call in self.implementations.items():
                out[(name, dtype)] = self.run_implementation(name, call, dtype)
        return out

    # reference C
    def run_torch_distributions(self, symkl_errors: Mapping[tuple[str, str], list[float]]) -> None:
        from symkl.verify import torch_reference

        if self.unit.quantity == "cross_entropy":
            self.outcome.notes.append(f"{self.unit}: torch.distributions has no cross-entropy")
            return
        for dtype in self.settings.dtypes:
            pts = self.checked_points(dtype)
            mine = symkl_errors.get(("torch cpu", dtype)) or symkl_errors.get(("numpy", dtype)) or []
            worst, worst_point, wrong, n = 0.0, None, 0, 0
            for j, (point, ref) in enumerate(pts):
                got = torch_reference.value(self.unit, point, dtype)
                if got is None:
                    self.outcome.notes.append(f"{self.unit}: torch.distributions has no rule")
                    return
                n += 1
                err, _ = ulp_error(got, ref.value, dtype, nonnegative=self.unit.quantity == "kl")
                tol = self.tolerance(point, ref, dtype)
                if err > worst:
                    worst, worst_point = err, point
                if err > tol:
                    wrong += 1
                    ours = mine[j] if j < len(mine) else math.nan
                    side = "both" if ours > tol else "torch.distributions"
                    self.outcome.disagreements.append(Disagreement(
                        str(self.unit), dtype, point.describe(8), err, ours, side))
            self.add(f"torch.distributions {dtype}", wrong == 0, "ulp", worst, tolerances.ulp_tolerance(
                self.unit, dtype), n, worst_point, f"{wrong} of {n} points outside symkl's tolerance"
                if wrong else "", informational=True)

    # reference B
    def run_monte_carlo(self) -> None:
        from symkl.verify.montecarlo import critical_z, monte_carlo
        from symkl.verify.torch_reference import distribution

        typical = [(p, r) for p, r in self.checked_points() if p.regime in ("typical", "user")]
        for j, (point, ref) in enumerate(typical[:MC_POINTS]):
            claimed = _scalar(_numpy_call(self.unit)(**point.values))
            p = distribution(self.unit.p, point.side("p" if self.unit.q else None))
            q = distribution(self.unit.q, point.side("q")) if self.unit.q else None
            mc = monte_carlo(self.unit.quantity, p, q, claimed, alpha=self.settings.mc_alpha,
                             seed=self.settings.seed * 1000 + j, max_samples=self.settings.mc_samples)
            if mc.skipped:
                self.outcome.notes.append(f"{self.unit} {point.label}: Monte Carlo skipped: {mc.skipped}")
                continue
            detail = (f"n = {mc.samples:,}, estimate {mc.estimate:.10g} +- {mc.standard_error:.2g}, "
                      f"claimed {claimed:.10g}, detects |error| >= {mc.detectable:.2g}, "
                      f"variance reduction x{mc.variance_reduction:.3g}")
            if mc.nan_samples:
                detail += f", {mc.nan_samples} NaN/inf terms (not filtered)"
            index = self.add(f"Monte Carlo {point.label}", mc.p_value > self.settings.mc_alpha, "|z|",
                             abs(mc.z), critical_z(self.settings.mc_alpha), 1, point, detail)
            self.outcome.mc_tests.append((index, mc.p_value))

    # gradients
    def run_gradients(self) -> None:
        from symkl.verify import gradients

        typical = [p for p, r in self.checked_points() if p.regime in ("typical", "user")
                   and mpmath.isfinite(r.value)]
        for device in self.settings.devices:
            worst, worst_point, checked, gc_failed, notes = 0.0, None, 0, [], set()
            for point in typical[:GRADIENT_POINTS]:
                result = gradients.check_gradient(self.unit.quantity, self.unit.p, self.unit.q,
                                                  dict(point.values), device=device)
                checked += 1
                if result.error > worst:
                    worst, worst_point = result.error, point
                if result.gradcheck is False:
                    gc_failed.append(point.label)
                if result.note:
                    notes.add(result.note)
            if not checked:
                continue
            tol = tolerances.gradient_tolerance(self.unit)
            detail = "; ".join(sorted(notes))
            if gc_failed:
                detail = f"gradcheck failed at {', '.join(gc_failed)}" + (f"; {detail}" if detail else "")
            self.add(f"gradient (autograd vs SymPy diff) {device}", worst <= tol and not gc_failed,
                     "rel", worst, tol, checked, worst_point, detail)


def _digits(value: Any, ref: Any) -> float:
    """Significant digits of agreement; where the reference is exactly 0 (P == Q), the
    decimal digits to which ``value`` is 0 (mpmath rounds log(p) - log(q) to ~1e-dps)."""
    if ref == 0 and value != 0 and mpmath.isfinite(value):
        return float(-mpmath.log10(abs(value)))
    return significant_digits(value, ref)


def verify_unit(unit: Unit, settings: Settings, user_points: Sequence[Mapping[str, Any]] = (),
                implementations: Mapping[str, Implementation] | None = None) -> UnitOutcome:
    """Every check of one unit (see the module docstring)."""
    run = _UnitRun(unit, settings, user_points, implementations or {})
    run.run_references()
    run.run_symbolic()
    errors = run.run_generated()
    generated = settings.generated and run.has_generated()
    if settings.torch_reference and generated:
        run.run_torch_distributions(errors)
    if settings.monte_carlo and generated:
        run.run_monte_carlo()
    if settings.gradients and generated:
        run.run_gradients()
    return run.outcome


# -- many units --------------------------------------------------------------------------------


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)  # one process per core


def _verify_in_worker(unit: Unit, settings: Settings, user_points: Sequence[Mapping[str, Any]]) -> UnitOutcome:
    try:
        return verify_unit(unit, settings, user_points)
    except Exception as exc:  # noqa: BLE001 - one broken unit must not hide the others' results
        import traceback

        outcome = UnitOutcome()
        outcome.checks.append(CheckResult(str(unit), "verification ran", False, "ulp", math.inf, 0.0, 0,
                                          detail=f"{type(exc).__name__}: {exc}"))
        outcome.notes.append(f"{unit}: " + traceback.format_exc(limit=3).replace("\n", " "))
        return outcome


def holm(outcomes: Iterable[UnitOutcome], alpha: float) -> int:
    """Holm's step-down over every Monte Carlo test of the run: a test fails only if its
    p-value is rejected at family-wise ``alpha``. Returns the number of tests."""
    from symkl.verify.montecarlo import holm as holm_rejects

    tests = [(outcome, index, p) for outcome in outcomes for index, p in outcome.mc_tests]
    rejected = holm_rejects([p for _, _, p in tests], alpha)
    for (outcome, index, _), reject in zip(tests, rejected):
        outcome.checks[index].passed = not reject
        outcome.checks[index].detail += " (Holm, family-wise alpha %g over %d tests)" % (alpha, len(tests))
    return len(tests)


def run(units: Sequence[Unit], settings: Settings, *, user_points: Sequence[Mapping[str, Any]] = (),
        implementations: Mapping[str, Implementation] | None = None, workers: int | None = None,
        progress: Callable[[Unit], None] | None = None) -> Report:
    """Verify ``units`` (in parallel processes when ``workers`` > 1) into one report."""
    start = time.perf_counter()
    mc_tests = len(units) * MC_POINTS if settings.monte_carlo else 1
    settings = replace(settings, mc_alpha=FAMILY_ALPHA / max(mc_tests, 1))
    workers = workers if workers is not None else min(len(units), os.cpu_count() or 1)
    outcomes: dict[Unit, UnitOutcome] = {}
    if workers <= 1 or implementations:  # callables need not be picklable: run in-process
        for unit in units:
            outcomes[unit] = verify_unit(unit, settings, user_points, implementations)
            if progress:
                progress(unit)
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_init) as pool:
            futures = {pool.submit(_verify_in_worker, u, settings, user_points): u for u in units}
            for future in as_completed(futures):
                outcomes[futures[future]] = future.result()
                if progress:
                    progress(futures[future])
    ordered = [outcomes[u] for u in units]
    n_mc = holm(ordered, FAMILY_ALPHA)
    report = Report(settings={**settings.__dict__, "units": len(units), "monte_carlo_tests": n_mc,
                              "family_alpha": FAMILY_ALPHA, "environment": environment(settings.devices)})
    for outcome in ordered:
        report.checks += outcome.checks
        report.disagreements += outcome.disagreements
        report.notes += outcome.notes
    report.notes = list(dict.fromkeys(report.notes))
    report.seconds = time.perf_counter() - start
    return report
