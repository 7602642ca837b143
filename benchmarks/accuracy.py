"""Accuracy of symkl's KL against ``torch.distributions.kl_divergence``, in ULPs.

For the self-pairs below, in float64 and float32, and in three kinds of regime (typical
sampled parameters; near-equal P and Q at relative differences 1e-3 .. 1e-12; extreme
scales, concentrations, rates and probabilities), both implementations are called on the
same ``torch.distributions`` objects and compared with a reference evaluated in mpmath on
the exact binary values those objects hold. Writes docs/accuracy.md and prints the table.

    python benchmarks/accuracy.py                  # a few minutes on 2 cores
    python benchmarks/accuracy.py --quick          # ~30 s, 6 points per cell (the doc says so)
    python benchmarks/accuracy.py --device cuda    # inputs on the GPU: docs/accuracy-cuda.md
    python benchmarks/accuracy.py --jobs 8         # cells in 8 processes (same table)
    python benchmarks/accuracy.py --compiled       # symkl through torch.compile: docs/accuracy-compiled.md

One point per call runs symkl eagerly (it compiles from 65,536 elements on); ``--compiled``
measures the fused code that large batches get instead (minutes of compiling: Gamma, Beta
and Dirichlet compile for 1-3 minutes each per dtype on 2 cores).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import mpmath
import numpy as np
import sympy as sp
import torch
import torch.distributions as td

import symkl
import symkl.torch
from symkl import mpeval
from symkl.distributions import REGISTRY
from symkl.verify.engine import nudge, ulp_error

from _common import DOCS, gpu_line, machine_lines, markdown_table, rich_table

Params = dict[str, np.ndarray]  # parameter name -> array with the batch axis first

PAIRS = ["normal", "mvn_diag", "exponential", "poisson", "bernoulli", "categorical",
         "laplace", "uniform", "gamma", "beta", "dirichlet", "mvn"]
EVENT_DIM = {"mvn_diag": 4, "categorical": 10, "dirichlet": 4, "mvn": 4}
SIMPLE = {"normal", "mvn_diag", "exponential", "poisson", "bernoulli", "categorical", "laplace", "uniform"}
LGAMMA = {"gamma", "beta", "dirichlet"}
DELTAS = (1e-3, 1e-6, 1e-9, 1e-12)
REGIMES = ["typical", *(f"near {d:.0e}" for d in DELTAS), "extreme"]
DTYPES = {"float64": (np.float64, torch.float64), "float32": (np.float32, torch.float32)}
SEED = 20240601
SENSITIVITY_DRAWS = 2  # random 1-ulp perturbations of all inputs per point


# -- inputs (float64; cast to the dtype afterwards) -------------------------------------------


def _logu(rng: np.random.Generator, lo: float, hi: float, shape: tuple[int, ...] | int) -> np.ndarray:
    return 10.0 ** rng.uniform(lo, hi, shape)


def _pair(rng: np.random.Generator, lo: float, hi: float, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """P's value log-uniform in [10^lo, 10^hi]; Q's independent (even rows) or within 10x (odd)."""
    a_p = _logu(rng, lo, hi, shape)
    independent = _logu(rng, lo, hi, shape)
    close = a_p * _logu(rng, -1, 1, shape)
    odd = (np.arange(shape[0]) % 2 == 1).reshape((-1,) + (1,) * (len(shape) - 1))
    return a_p, np.where(odd, close, independent)


def typical(family: str, rng: np.random.Generator, n: int) -> tuple[Params, Params]:
    fam, k = REGISTRY[family], EVENT_DIM.get(family, 3)
    p, q = fam.sample_parameters(rng, (n,), k), fam.sample_parameters(rng, (n,), k)
    if family == "uniform":  # Q's support contains P's, so the KL is finite
        q = {"low": p["low"] - rng.uniform(0, 1, n), "high": p["high"] + rng.uniform(0, 1, n)}
    return p, q


def near(family: str, rng: np.random.Generator, n: int, delta: float) -> tuple[Params, Params]:
    """Q = P with every parameter moved by a relative ``delta`` in a random direction."""
    p, _ = typical(family, rng, n)
    q = {k: v * (1 + delta * rng.choice([-1.0, 1.0], size=v.shape)) for k, v in p.items()}
    if family == "categorical":
        q["probs"] = q["probs"] / q["probs"].sum(-1, keepdims=True)
    if family == "mvn":
        q["covariance_matrix"] = p["covariance_matrix"] * (1 + delta)
    if family == "uniform":
        width = p["high"] - p["low"]
        q = {"low": p["low"] - delta * (np.abs(p["low"]) + width),
             "high": p["high"] + delta * (np.abs(p["high"]) + width)}
    return p, q


def _probabilities(rng: np.random.Generator, n: int, dtype: str) -> np.ndarray:
    """Bernoulli probs: tiny (down to 1e-300 / 1e-38) on even rows, near 1 (1 - 1e-16 / 1 - 6e-8) on odd."""
    tiny, one = (-300, -16) if dtype == "float64" else (-38, -7.2)
    odd = np.arange(n) % 2 == 1
    return np.where(odd, 1 - _logu(rng, one, -1, n), _logu(rng, tiny, -1, n))


def _simplex(rng: np.random.Generator, n: int, k: int, dtype: str) -> np.ndarray:
    """Probabilities spanning 1e-300 .. 1 (even rows) or one class at 1 - 1e-16 .. 1 - 0.1 (odd)."""
    tiny, one = (-300, -16) if dtype == "float64" else (-38, -7.2)
    spread = _logu(rng, tiny, 0, (n, k))
    spread /= spread.sum(-1, keepdims=True)
    rest = _logu(rng, one, -1, n)[:, None]
    dominant = spread * rest
    top = rng.integers(0, k, n)
    dominant[np.arange(n), top] = 1 - rest[:, 0]
    return np.where((np.arange(n) % 2 == 1)[:, None], dominant, spread)


def _covariances(rng: np.random.Generator, n: int, k: int, condition: float) -> np.ndarray:
    rot, _ = np.linalg.qr(rng.normal(size=(n, k, k)))
    lam = np.logspace(0, -np.log10(condition), k) * _logu(rng, -3, 3, (n, 1))
    cov = rot @ (lam[..., None] * np.swapaxes(rot, -1, -2))
    return (cov + np.swapaxes(cov, -1, -2)) / 2


def extreme(family: str, rng: np.random.Generator, n: int, dtype: str) -> tuple[Params, Params]:
    k = EVENT_DIM.get(family, 1)
    shape = (n, k) if family == "mvn_diag" else (n,)
    if family in ("normal", "laplace", "mvn_diag"):
        s_p, s_q = _pair(rng, -30, 30, shape)
        loc_p = s_p * rng.normal(0, 2, shape)
        loc_q = loc_p + s_q * rng.normal(0, 1, shape) * _logu(rng, -3, 3, shape)
        return {"loc": loc_p, "scale": s_p}, {"loc": loc_q, "scale": s_q}
    if family in ("exponential", "poisson"):
        r_p, r_q = _pair(rng, *((-30, 30) if family == "exponential" else (-3, 8)), shape)
        return {"rate": r_p}, {"rate": r_q}
    if family == "uniform":
        width = _logu(rng, -30, 30, n)
        low = width * rng.normal(0, 2, n)
        high = low + width
        return ({"low": low, "high": high},
                {"low": low - width * _logu(rng, -12, 12, n), "high": high + width * _logu(rng, -12, 12, n)})
    if family == "gamma":
        (a_p, a_q), (b_p, b_q) = _pair(rng, -3, 8, shape), _pair(rng, -2, 2, shape)
        return {"concentration": a_p, "rate": b_p}, {"concentration": a_q, "rate": b_q}
    if family == "beta":
        (a_p, a_q), (b_p, b_q) = _pair(rng, -3, 8, shape), _pair(rng, -3, 8, shape)
        return ({"concentration1": a_p, "concentration0": b_p},
                {"concentration1": a_q, "concentration0": b_q})
    if family == "dirichlet":
        a_p, a_q = _pair(rng, -3, 8, (n, k))
        return {"concentration": a_p}, {"concentration": a_q}
    if family == "bernoulli":
        return {"probs": _probabilities(rng, n, dtype)}, {"probs": _probabilities(rng, n, dtype)}
    if family == "categorical":
        return {"probs": _simplex(rng, n, k, dtype)}, {"probs": _simplex(rng, n, k, dtype)}
    if family == "mvn":
        cov_p = _covariances(rng, n, k, 1e8)
        mix = np.eye(k) + 0.3 * rng.normal(size=(n, k, k)) / np.sqrt(k)
        cov_q = np.where((np.arange(n) % 2 == 1)[:, None, None],
                         mix @ cov_p @ np.swapaxes(mix, -1, -2), _covariances(rng, n, k, 1e8))
        cov_q = (cov_q + np.swapaxes(cov_q, -1, -2)) / 2
        scale = np.sqrt(np.trace(cov_p, axis1=-2, axis2=-1))[:, None]
        loc_p = rng.normal(0, 1, (n, k)) * scale
        return ({"loc": loc_p, "covariance_matrix": cov_p},
                {"loc": loc_p + rng.normal(0, 1, (n, k)) * scale, "covariance_matrix": cov_q})
    raise KeyError(family)


def draw(family: str, regime: str, dtype: str, n: int) -> tuple[Params, Params]:
    # Same seed for both dtypes: float32 sees the float64 draws rounded (bar dtype-specific ranges).
    rng = np.random.default_rng([SEED, PAIRS.index(family), REGIMES.index(regime)])
    if regime == "typical":
        return typical(family, rng, n)
    if regime == "extreme":
        return extreme(family, rng, n, dtype)
    return near(family, rng, n, float(regime.split()[1]))


# -- the mpmath reference ---------------------------------------------------------------------


@dataclass
class Reference:
    derivation: symkl.Derivation
    family: str

    def env(self, p: Params, q: Params) -> dict[sp.Basic, object]:
        values = {f"{name}_{side}": v for side, vals in (("p", p), ("q", q)) for name, v in vals.items()}
        return mpeval.environment(self.derivation.symbols, values)

    def valid(self, p: Params, q: Params) -> bool:
        """False where the cast inputs left the domain (an MVN covariance no longer PD)."""
        if self.family != "mvn":
            return True
        try:
            with mpmath.workdps(60):
                for cov in (p["covariance_matrix"], q["covariance_matrix"]):
                    mpmath.cholesky(mpmath.matrix(cov.tolist()))
        except ValueError:
            return False
        return True

    def __call__(self, p: Params, q: Params) -> mpmath.mpf | None:
        """KL on the exact inputs, to >= 40 correct digits (None: inputs outside the domain).

        The starting precision covers the decimal exponent span of the inputs and 1 (so
        that 1 - 1e-300 is exact); it is doubled until two successive values agree to 40
        digits, so results far below their terms are still right.
        For Categorical the reference is the generalised KL sum p log(p/q) - p + q.
        """
        if all(np.array_equal(p[k], q[k]) for k in p):
            return mpmath.mpf(0)
        if not self.valid(p, q):
            return None
        env, previous, dps = self.env(p, q), None, 60 + _exponent_span(p, q)
        while dps <= 5000:
            with mpmath.workdps(dps):
                value = mpeval.evaluate(self.derivation.result, env)
                if self.family == "categorical":
                    value += mpmath.fsum(env[self.derivation.symbols["probs_q"]])
                    value -= mpmath.fsum(env[self.derivation.symbols["probs_p"]])
                if isinstance(value, mpmath.mpc):
                    return None
                if mpmath.isinf(value):
                    return value
                if previous is not None and abs(value - previous) <= abs(value) * mpmath.mpf(10) ** -40:
                    return +value
            previous, dps = value, 2 * dps
        raise RuntimeError(f"{self.family}: reference did not converge at {dps // 2} digits")


def _exponent_span(p: Params, q: Params) -> int:
    """Decimal digits between the largest and smallest nonzero |input|, 1 included."""
    values = np.abs(np.concatenate([v.ravel() for v in (*p.values(), *q.values())]))
    exps = np.log10(values[values > 0])
    return int(np.ceil(max(0.0, exps.max(initial=0.0)) - min(0.0, exps.min(initial=0.0))))


# -- one (pair, regime, dtype) cell -----------------------------------------------------------


@dataclass
class Cell:
    family: str
    regime: str
    dtype: str
    symkl: list[float] = field(default_factory=list)
    torch: list[float] = field(default_factory=list)
    sensitivity: list[float] = field(default_factory=list)
    nan: dict[str, int] = field(default_factory=lambda: {"symkl": 0, "torch": 0})
    negative: dict[str, int] = field(default_factory=lambda: {"symkl": 0, "torch": 0})
    overflow: int = 0
    invalid: int = 0
    #: symkl functions that fell back to eager because torch.compile failed (``--compiled``)
    fallbacks: list[str] = field(default_factory=list)

    @property
    def target(self) -> str:
        if self.family in SIMPLE:
            return "<= 4 ULP"
        if self.family in LGAMMA:
            return "<= 16 ULP" if self.regime != "extreme" else "none"
        return "<= 4 x (1-ulp sens., min 1)"

    @property
    def meets(self) -> str:
        if not self.symkl:
            return "n/a"
        if self.family in SIMPLE:
            return "yes" if max(self.symkl) <= 4 else "no"
        if self.family in LGAMMA:
            return "—" if self.regime == "extreme" else ("yes" if max(self.symkl) <= 16 else "no")
        ok = all(e == 0 if math.isnan(s) else math.isfinite(e) and e <= 4 * max(s, 1.0)
                 for e, s in zip(self.symkl, self.sensitivity))
        return "yes" if ok else "no"


def _call(fn: Callable[[], torch.Tensor]) -> float:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(fn().reshape(-1)[0])
    except (RuntimeError, ValueError):  # torch.linalg.LinAlgError (Cholesky) is a RuntimeError
        return math.nan


def run_cell(cell: Cell, reference: Reference, n: int, device: str = "cpu") -> None:
    np_dtype = DTYPES[cell.dtype][0]
    fam = REGISTRY[cell.family]
    raw = getattr(symkl.torch.functional, f"kl_{cell.family}_{cell.family}")
    p_all, q_all = draw(cell.family, cell.regime, cell.dtype, n)
    rng = np.random.default_rng([SEED, 1, PAIRS.index(cell.family), REGIMES.index(cell.regime)])
    for i in range(n):
        tensors = {side: {k: torch.from_numpy(v[i:i + 1].astype(np_dtype)).to(device) for k, v in vals.items()}
                   for side, vals in (("p", p_all), ("q", q_all))}
        try:
            P = fam.to_torch(tensors["p"], validate_args=False)
            Q = fam.to_torch(tensors["q"], validate_args=False)
        except (RuntimeError, ValueError):  # float32 Cholesky of an ill-conditioned covariance
            P = Q = None
        if cell.family == "categorical" and P is not None:  # torch renormalises probs: use its values
            tensors = {"p": {"probs": P.probs}, "q": {"probs": Q.probs}}
        # The exact values both implementations see, as float64 (exact for float32 too).
        p = {k: v[0].detach().to("cpu", torch.float64).numpy() for k, v in tensors["p"].items()}
        q = {k: v[0].detach().to("cpu", torch.float64).numpy() for k, v in tensors["q"].items()}
        ref = reference(p, q)
        if ref is None:
            cell.invalid += 1
            continue
        if mpmath.isinf(ref) or abs(ref) > float(np.finfo(np_dtype).max):
            cell.overflow += 1
            continue
        args = {f"{k}_{s}": v for s in "pq" for k, v in tensors[s].items()}
        got = {
            "symkl": _call(lambda: symkl.torch.kl_divergence(P, Q)) if P is not None
            else _call(lambda: raw(**args, validate=False)),
            "torch": _call(lambda: td.kl_divergence(P, Q)) if P is not None else math.nan,
        }
        for impl, value in got.items():
            cell.nan[impl] += math.isnan(value)
            cell.negative[impl] += value < 0
            # NaN, a negative value, or != 0 where ref == 0 count as inf (the verifier's measure)
            getattr(cell, impl).append(ulp_error(value, ref, cell.dtype, nonnegative=True)[0])
        cell.sensitivity.append(sensitivity(reference, p, q, ref, np_dtype, rng))


def sensitivity(reference: Reference, p: Params, q: Params, ref: mpmath.mpf, np_dtype: type,
                rng: np.random.Generator) -> float:
    """Max change of the reference, in ULPs of ref, over random 1-ulp moves of all inputs.

    NaN where ref == 0 (identical P and Q): there the error is 0 or inf by definition.
    """
    if ref == 0:
        return math.nan
    ulp = mpmath.mpf(float(np.spacing(np.abs(np_dtype(float(ref))))))
    change = 0.0
    for _ in range(SENSITIVITY_DRAWS):
        moved = reference(nudge(p, np_dtype, rng), nudge(q, np_dtype, rng))
        change = max(change, math.inf if moved is None else float(abs(moved - ref) / ulp))
    return change


# -- report -----------------------------------------------------------------------------------


def fmt(x: float) -> str:
    if math.isinf(x):
        return "inf"
    if x == 0:
        return "0"
    return f"{x:.3g}" if x < 100 else f"{x:.1e}"


def stats(errors: list[float]) -> tuple[str, str]:
    if not errors:
        return "—", "—"
    return fmt(max(errors)), fmt(float(np.median(errors)))


HEADER = ["pair", "regime", "n", "skipped", "symkl max", "symkl median", "symkl NaN/neg",
          "torch max", "torch median", "torch NaN/neg", "1-ulp sens. max", "symkl max err/sens",
          "torch max err/sens", "target", "meets target"]
RIGHT = [False, False] + [True] * 11 + [False, False]
SHORT = ["pair", "regime", "n", "skip", "S max", "S med", "S nan/neg", "T max", "T med",
         "T nan/neg", "sens", "S/sens", "T/sens", "ok"]  # terminal: S = symkl, T = torch


def excess(errors: list[float], sens: list[float]) -> str:
    """max over points of error / max(sensitivity, 1) (P = Q points: 0 if exact, else inf)."""
    if not errors:
        return "—"
    return fmt(max((0.0 if e == 0 else math.inf) if math.isnan(s) or math.isinf(e) else e / max(s, 1.0)
                   for e, s in zip(errors, sens)))


def row(c: Cell) -> list[str]:
    skipped = c.overflow + c.invalid
    skip_text = "0" if not skipped else (f"{c.overflow} overflow" if not c.invalid
                                          else f"{c.overflow} overflow, {c.invalid} invalid")
    return [c.family, c.regime, str(len(c.symkl)), skip_text, *stats(c.symkl),
            f"{c.nan['symkl']}/{c.negative['symkl']}", *stats(c.torch),
            f"{c.nan['torch']}/{c.negative['torch']}",
            fmt(float(np.nanmax(c.sensitivity))) if not all(map(math.isnan, c.sensitivity)) else "—",
            excess(c.symkl, c.sensitivity), excess(c.torch, c.sensitivity), c.target, c.meets]


def doc_name(device: str, compiled: bool) -> str:
    return "accuracy" + ("-cuda" if device == "cuda" else "") + ("-compiled" if compiled else "") + ".md"


def write_doc(cells: list[Cell], n: int, n_mvn: int, quick: bool, device: str = "cpu",
              compiled: bool = False) -> str:
    cuda = device == "cuda"
    lines = [
        "# Accuracy of symkl's KL vs `torch.distributions.kl_divergence`" + (" on CUDA" if cuda else "")
        + (", compiled" if compiled else ""),
        "",
        "Generated by `python benchmarks/accuracy.py" + (" --quick" if quick else "")
        + (" --device cuda" if cuda else "") + (" --compiled" if compiled else "")
        + "`; do not edit by hand. Rerunning on the same machine and torch gives the same table.",
        "",
        *machine_lines(),
        (f"- device: {gpu_line()}: both implementations run on CUDA tensors (the reference "
         "is computed on the CPU, as always)." if cuda else
         "- device: CPU. CUDA: docs/accuracy-cuda.md (`--device cuda`)."),
        f"- {n} points per (pair, regime, dtype) ({n_mvn} for the full MVN), fixed seeds.",
        "",
        "## Method",
        "",
        "- Both columns call the implementation on the *same* `torch.distributions` objects "
        "(`validate_args=False`): `symkl.torch.kl_divergence(P, Q)` and "
        "`torch.distributions.kl_divergence(P, Q)`, one point at a time. "
        + ("symkl runs through `torch.compile` (`symkl.torch.set_compile_mode(\"always\")`): the "
           "fused code that batches of >= 65,536 elements get." if compiled else
           "At one point per call symkl runs eagerly; docs/accuracy-compiled.md measures the fused "
           "code that batches of >= 65,536 elements get (`--compiled`)."),
        "- Inputs are drawn in float64 and cast to the dtype. The reference is the derived "
        "closed form (`symkl.kl(f, f).result`) evaluated in mpmath on the exact binary values "
        "the Distribution objects hold, starting at 60 digits plus the decimal exponent span "
        "of the inputs and 1 (so 1 - 1e-300 is exact) and doubling until two successive values "
        "agree to 40 digits, so a KL far below its terms is still known exactly. "
        "Identical P and Q give exactly 0.",
        "- Categorical: torch renormalises `probs` (`probs / probs.sum(-1)`) in the dtype, and "
        "those values sum to 1 only to ~1 ulp. The reference is the generalised KL "
        "sum p log(p/q) - p + q on them (= the derived result + sum(q) - sum(p)): what symkl "
        "computes, and equal to the KL on the simplex.",
        "- ULP error = |got - ref| / spacing(ref rounded to the dtype): float32 results are judged "
        "in float32 ULPs. If ref = 0 the error is 0 when got = 0, else inf. A NaN or negative "
        "result counts as inf and is also counted in the NaN/neg column (NaN includes a raised "
        "error, e.g. a failed float32 Cholesky).",
        "- Skipped: points whose true KL overflows the dtype (or is +inf), and for MVN points "
        "whose covariance is no longer positive definite after the cast to the dtype (\"invalid\").",
        "- Regimes: *typical* = `REGISTRY[f].sample_parameters`; *near δ* = Q's parameters = "
        "P's x (1 + δ x random sign) (Categorical renormalised; MVN covariance x (1 + δ); "
        "Uniform: Q's support wider by δ relative); in float32 δ = 1e-9 and 1e-12 round to 0 or "
        "1 ulp, which is fine: the reference is on the cast inputs. *extreme* = scales and "
        "Uniform widths 1e-30..1e30, Exponential rates 1e-30..1e30, Gamma/Beta/Dirichlet "
        "concentrations 1e-3..1e8, Poisson rates 1e-3..1e8, probabilities down to 1e-300 "
        "(float64) / 1e-38 (float32) and up to 1 - 1e-16 (float64) / 1 - 6e-8 (float32), "
        "MVN covariance condition number 1e8 (log-uniform; half the points with Q independent "
        "of P, half with Q within a factor 10 of P).",
        "- Event sizes: mvn_diag, Dirichlet and MVN k = 4; Categorical 10 classes.",
        "- *1-ulp sens.* (all pairs): how much the reference itself moves (in ULPs) when every "
        f"input is moved by 1 ulp of the dtype in a random direction (max over {SENSITIVITY_DRAWS} "
        "draws per point, covariances kept symmetric; points with P = Q excluded): the error a "
        "backward-stable algorithm may have. An error far above it (column *err/sens*: max over "
        "points of error / max(sens, 1)) is lost by the algorithm, not by the conditioning of "
        "the KL. Full MVN's target uses it, per point: "
        "error <= 4 x max(sensitivity, 1) (and 0 where P = Q).",
        "",
        "## Targets",
        "",
        "- <= 4 ULP in float64 and float32 in every regime: normal, mvn_diag, exponential, "
        "poisson, bernoulli, categorical, laplace, uniform.",
        "- <= 16 ULP in typical and near-equal: gamma, beta, dirichlet (no target in extreme).",
        "- full MVN: compared with the 1-ulp sensitivity of the inputs (above).",
        "",
    ]
    if compiled:
        fallbacks = sorted({name for c in cells for name in c.fallbacks})
        lines += ["Functions that fell back to eager execution because `torch.compile` failed: "
                  + (", ".join(fallbacks) if fallbacks else "none") + ".", ""]
    misses = [c for c in cells if c.meets == "no"]
    lines += ["## Where symkl misses its target", ""]
    lines += [f"- {c.family}, {c.regime}, {c.dtype}: max {fmt(max(c.symkl))} ULP"
              + f" (max err/sens {row(c)[11]}; torch max {row(c)[7]}, err/sens {row(c)[12]})"
              + f", target {c.target}" for c in misses] or ["- none"]
    lines.append("")
    for dtype in DTYPES:
        lines += [f"## {dtype}", "", markdown_table(HEADER, [row(c) for c in cells if c.dtype == dtype], RIGHT), ""]
    text = "\n".join(lines)
    (DOCS / doc_name(device, compiled)).write_text(text)
    return text


_REFERENCES: dict[str, Reference] = {}


def measure_cells(cells: list[Cell], ns: list[int], device: str, compiled: bool = False) -> list[Cell]:
    return [measure_cell(c, n, device, compiled) for c, n in zip(cells, ns)]


def measure_cell(cell: Cell, n: int, device: str, compiled: bool = False) -> Cell:
    """Fill one cell (in a worker process with ``--jobs``); references are built once per process."""
    torch.set_num_threads(1)
    symkl.torch.set_compile_mode("always" if compiled else "auto")
    if cell.family not in _REFERENCES:
        _REFERENCES[cell.family] = Reference(symkl.kl(cell.family, cell.family), cell.family)
    run_cell(cell, _REFERENCES[cell.family], n, device)
    from symkl.torch import _execution

    cell.fallbacks = sorted(_execution._failed)
    return cell


def main() -> None:
    from rich.console import Console
    from rich.progress import Progress

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 points per cell (~30 s)")
    parser.add_argument("--points", type=int, default=None, help="points per cell (default 64; quick 6)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where both implementations run (cuda writes docs/accuracy-cuda.md)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--compiled", action="store_true",
                        help="symkl through torch.compile (writes docs/accuracy[-cuda]-compiled.md)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch.cuda.is_available() is False")
    n = args.points or (6 if args.quick else 64)
    n_mvn = max(4, n // 2)
    torch.set_num_threads(1)
    console = Console()
    console = console if console.is_terminal else Console(width=160)
    start = time.perf_counter()
    cells = [Cell(f, r, d) for d in DTYPES for f in PAIRS for r in REGIMES]
    points = [n_mvn if cell.family == "mvn" else n for cell in cells]
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("accuracy", total=len(cells))
        if args.jobs > 1:
            from concurrent.futures import ProcessPoolExecutor, as_completed

            context = multiprocessing.get_context("spawn")  # CUDA cannot be forked
            # one task per (pair, dtype): a process compiles (--compiled) each function once
            groups: dict[tuple[str, str], list[int]] = {}
            for i, cell in enumerate(cells):
                groups.setdefault((cell.family, cell.dtype), []).append(i)
            heavy_first = sorted(groups.values(), key=lambda g: cells[g[0]].family not in LGAMMA)
            with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
                futures = {pool.submit(measure_cells, [cells[i] for i in g], [points[i] for i in g],
                                       args.device, args.compiled): g for g in heavy_first}
                for future in as_completed(futures):
                    for i, cell in zip(futures[future], future.result()):
                        cells[i] = cell
                    progress.advance(task, len(futures[future]))
        else:
            for cell, k in zip(cells, points):
                progress.update(task, description=f"{cell.dtype} {cell.family} {cell.regime}")
                measure_cell(cell, k, args.device, args.compiled)
                progress.advance(task)
    seconds = time.perf_counter() - start
    write_doc(cells, n, n_mvn, args.quick, args.device, args.compiled)
    for dtype in DTYPES:
        rows = [[*r[:3], r[3].replace(" overflow", "o").replace(" invalid", "i"), *r[4:13], r[14]]
                for r in (row(c) for c in cells if c.dtype == dtype)]
        console.print(rich_table(f"KL accuracy, {dtype} (ULPs; S = symkl, T = torch)", SHORT, rows,
                                 RIGHT[:13] + [False]))
    console.print(f"wrote {DOCS / doc_name(args.device, args.compiled)} in {seconds:.0f} s")


if __name__ == "__main__":
    main()
