"""Reference B: a Monte Carlo z-test of a claimed KL(P||Q), H(P, Q) or H(P).

torch.distributions' own test-suite checks each KL by Monte Carlo at a 10 % relative
tolerance, stops at the first batch that passes and drops NaN results. That cannot catch a
formula that is off by 1 %, and it hides exactly the failures a verifier exists to find.
This module is the statistically sound version:

* **Only torch.** Samples come from ``p.sample`` and the integrand from ``p.log_prob`` /
  ``q.log_prob``: nothing here reads symkl's closed forms, so agreement is evidence.
  Validation is switched off on private copies of ``p`` and ``q`` and a point outside
  ``q.support`` gets ``log q = -inf`` (its density *is* zero there), so a support mismatch
  shows up as a ``+inf`` term instead of a ``ValueError``.
* **Power analysis.** A pilot sample estimates the standard deviation ``sigma`` of one
  control-variate term; the main sample size is the smallest ``n`` at which a relative
  error of ``effect`` is detected with probability ``power`` at the per-test level
  ``alpha``: ``n = ((z_{1-alpha/2} + z_power) sigma / (effect |claimed|))^2``, clipped
  to ``[pilot, max_samples]`` (and to ``(sigma / floor)^2``, past which the rounding
  floor below dominates and more samples buy nothing). The pilot is then *discarded*: estimate and standard error
  come from a fresh, independent main sample, so the coefficients fitted on the pilot are
  constants for the main run and the test keeps its nominal level.
* **Control variates.** Statistics whose mean under P is known without symkl:

  - moments from torch: ``x - mean`` and ``(x - mean)^2 - variance`` per coordinate
    (``p.mean``, ``p.variance``); for a full-covariance MultivariateNormal all products
    ``(x_i - mean_i)(x_j - mean_j) - cov_ij`` (``p.covariance_matrix``); for a Categorical
    the one-hot indicators minus ``probs`` (the last dropped: they sum to one); for a
    Bernoulli ``x - probs``.
  - the score ``d/d theta log p(x)``, by forward-mode autograd through torch's own
    ``log_prob`` (so ``E[log x]`` comes from torch's digamma, not from a table), for
    Laplace, Gamma, Beta, Dirichlet and Exponential (as Gamma with shape 1). Its mean is
    exactly zero whenever the support does not move with theta (the identity
    ``E_P[score] = d/d theta 1 = 0``; hence no score for Uniform). It supplies the
    ``log x``, ``log(1 - x)``, ``sign(x - loc)`` and ``|x - loc|`` statistics that the
    moments lack.

  The coefficients are fitted by least squares on the pilot. For Normal||Normal,
  Gamma||Gamma, Beta||Beta, Poisson||Poisson, Categorical||Categorical, MVN||MVN, ... the
  integrand is *in the span* of these controls and the residual variance is float64
  rounding: the main run is then ``pilot`` samples and the check costs milliseconds.
* **z-test.** ``z = (estimate - claimed) / standard_error``, two-sided p-value from the
  normal tail. ``alpha`` is the caller's per-test level (family-wise 1e-6 over the run,
  Bonferroni); :func:`holm` is the step-down over the run's p-values (never less powerful).
* **NaN is never filtered.** Every non-finite term is counted in ``nan_samples`` and
  propagates into the estimate; such a check fails with ``p_value = 0``.

Rounding floor. When the controls absorb the integrand, the sample standard error falls to
~1e-17 and the test would compare float64 rounding, not mathematics. Each term is a few
dozen floating-point operations on quantities of size ``|log p|``, ``|log q|`` and the
control statistics, and the caller's closed form carries its own few-ulp error: neither
averages away (their *systematic* part does not shrink with ``n``), so the floor is *not*
divided by ``sqrt(n)``. We add ``_ROUNDING_ULPS * eps * M`` in quadrature to the standard
error, with ``M = mean(|log p| + |log q|) + mean(sum_j |beta_j| (|h_j| + |E h_j|)) +
|claimed|`` (the magnitudes that enter the sum; for the scores, combined in one derivative,
``|sum_j beta_j h_j|``) and ``_ROUNDING_ULPS = 64``. At the
usual critical ``z`` of about 6 this tolerates ~400 ulp of the magnitudes involved: far
below any 1 % effect, and enough that a correct claim never fails on rounding alone.

Finite variance. The z-test needs ``E_P[t^2] < inf`` for the integrand ``t``
(``log p/q``, ``log q`` or ``log p``). For the catalogue's families with finite
parameters and a finite claimed value this always holds, so there is no infinite-variance
skip rule:

* every log-density is a finite combination of ``1``, ``x``, ``x^2``, ``|x - c|``,
  quadratic forms, ``log x``, ``log(1 - x)``, ``log x_i``, ``log x!`` and indicator
  constants (Uniform: ``-log(high - low)`` on its support, ``-inf`` outside);
* under each P those statistics have all moments: Normal, Laplace, Gamma, Exponential,
  Poisson and MVN have finite moments of every order; ``E|log x|^k < inf`` under
  Gamma(a > 0) and Exponential (the density is ``x^{a-1}`` near 0, and
  ``int_0 x^{a-1} |log x|^k dx`` converges); ``log x`` and ``log(1 - x)`` likewise under
  Beta(a, b > 0) and Dirichlet (Beta marginals); ``log x! <= x^2`` under Poisson; and
  anything bounded (Bernoulli, Categorical, Uniform on a bounded interval, a Normal
  log-density on [0, 1]) trivially;
* so ``t`` is in ``L^2(P)`` unless it is ``-inf``/``+inf`` on a set of positive P-mass,
  i.e. a support mismatch, which makes the claimed value ``+inf`` (skipped: an infinite
  expectation cannot be estimated by an average) or, if a finite value was wrongly
  claimed, produces ``+inf`` terms (a failure, counted in ``nan_samples``).

Families outside that list are skipped with the reason (the argument above does not cover
them: a Student-t P with a Normal Q has finite KL but ``E[x^4] = inf`` for ``df <= 4``).

Known limitation (float64 sampling). torch clamps a Gamma sample to the smallest normal
float64 (``tiny``) and a Beta sample to ``1 - eps/2``, and ``1 - x`` near 1 has only
``eps/2`` resolution. The clamp holds mass ``~ tiny^a`` (Gamma: ~1e-67 at a = 0.22, the
catalogue's smallest) or ``~ (eps/2)^b / (b B(a, b))`` (Beta: 3.2e-4 of the samples of
Beta(1, 0.22) sit at the clamp), which biases the *sample* mean of ``log(1 - x)``:
measured +2.4e-3 for Beta(1, 0.22), 0.75 standard errors of that statistic at n = 2e6.
Where the score control absorbs the ``log(1 - x)`` term (every catalogue pair with a Beta
or Dirichlet P: their log-ratios are linear in ``log x_i``) the bias cancels exactly, the
same computed ``log(1 - x)`` entering the integrand and the control whose mean is exact.
An integrand with an unabsorbed ``log(1 - x)`` term under a Beta with b well below 0.2
would test torch's sampler rather than the claim.

Reproducibility: a fixed seed gives the same samples; float64 reductions may round
differently with a different ``torch.get_num_threads()``, so compare bitwise only at a
fixed thread count.
"""

from __future__ import annotations

import copy
import functools
import math
import warnings
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable, Sequence

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor
from torch import distributions as D

_QUANTITIES = ("kl", "cross_entropy", "entropy")

#: Most rows in one main-run batch; rows x (explicit control columns + event size) is also
#: capped at _BATCH_BYTES (an MVN's products and the scores are combined, never formed).
_BATCH_ROWS = 250_000
_BATCH_BYTES = 64 * 2**20
#: Rounding floor of the standard error, in units of eps times the magnitudes summed.
_ROUNDING_ULPS = 64
_EPS = float(torch.finfo(torch.float64).eps)
_TINY = float(torch.finfo(torch.float64).tiny)

#: Families for which the finite-variance argument of the module docstring holds.
_COVERED: tuple[type, ...] = (
    D.Normal, D.Laplace, D.Exponential, D.Gamma, D.Beta, D.Uniform, D.Poisson,
    D.Bernoulli, D.Categorical, D.Dirichlet, D.MultivariateNormal,
)


@dataclass(frozen=True)
class MonteCarlo:
    """Outcome of one Monte Carlo check (see the module docstring for the method)."""

    #: Control-variate estimate of the quantity (nan if skipped).
    estimate: float
    standard_error: float
    #: (estimate - claimed) / standard_error; nan if skipped or if a term was not finite.
    z: float
    #: Two-sided; 0.0 when a term was NaN/inf (a failure), 1.0 when skipped.
    p_value: float
    #: Main-run sample count chosen by the power analysis (0 if skipped or stopped at the pilot).
    samples: int
    #: Smallest |claimed - true| detected with the requested power at this n and alpha:
    #: (z_{1-alpha/2} + z_power) * standard_error (the main run's, rounding floor included).
    detectable: float
    #: Var(plain estimator) / Var(control-variate estimator), on the pilot.
    variance_reduction: float
    #: Names of the control variates used.
    controls: tuple[str, ...]
    #: Why the check was not run, or None.
    skipped: str | None
    #: NaN/inf terms seen (pilot and main run); never filtered, each one fails the check.
    nan_samples: int


def holm(p_values: Sequence[float], alpha: float) -> list[bool]:
    """Holm step-down: True where the null hypothesis (claimed value correct) is rejected at family-wise alpha.

    Sorted ascending, the k-th smallest p-value (k = 0, 1, ...) is rejected while
    ``p <= alpha / (m - k)``; the first acceptance stops the procedure. A NaN p-value is
    treated as 0 (rejected): a check that could not produce a p-value has not passed.
    """
    m = len(p_values)
    keyed = [(0.0 if math.isnan(p) else float(p), i) for i, p in enumerate(p_values)]
    keyed.sort()
    rejected = [False] * m
    for k, (p, i) in enumerate(keyed):
        if p > alpha / (m - k):
            break
        rejected[i] = True
    return rejected


# --------------------------------------------------------------------------- integrand


def _quiet(d: D.Distribution) -> D.Distribution:
    """A shallow copy with argument validation off (also on an Independent's base)."""
    out = copy.copy(d)
    out._validate_args = False  # noqa: SLF001 - torch's own switch
    if isinstance(out, D.Independent):
        out.base_dist = _quiet(out.base_dist)
    return out


def _log_density(d: D.Distribution, x: Tensor) -> Tensor:
    """log d(x): torch's log_prob, made exact at the edges of the support.

    * Outside ``d.support`` the density is zero, so ``-inf``; torch's log_prob would
      extrapolate the formula there (an Exponential at x < 0) or raise.
    * torch turns Bernoulli / Categorical probabilities into logits through
      ``clamp(probs, eps, 1 - eps)``, so a value of probability 0 gets ``log eps = -36``
      instead of ``-inf`` (and 1e-20 gets -36 instead of -46). Where the probability of the
      value is below ``2 eps`` its logarithm is taken directly instead.
    """
    lp = d.log_prob(x).to(torch.float64)
    outside = ~d.support.check(x)
    if isinstance(d, (D.Bernoulli, D.Categorical)):
        probs = d.probs.to(torch.float64)
        if isinstance(d, D.Categorical):
            mass = probs[x.long()]
        else:
            mass = torch.where(x > 0, probs, 1 - probs)
        lp = torch.where(mass < 2 * _EPS, torch.log(mass), lp)
    return lp.masked_fill(outside, -math.inf)


def _terms(quantity: str, p: D.Distribution, q: D.Distribution | None, x: Tensor) -> tuple[Tensor, Tensor]:
    """The integrand at x and the magnitude of what was summed to get it."""
    lp = _log_density(p, x) if quantity != "cross_entropy" else None
    if quantity == "entropy":
        assert lp is not None
        return -lp, lp.abs()
    assert q is not None
    lq = _log_density(q, x)
    if quantity == "cross_entropy":
        return -lq, lq.abs()
    assert lp is not None
    return lp - lq, lp.abs() + lq.abs()


# --------------------------------------------------------------------------- controls

_Combine = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class _Control:
    """A group of control statistics with mean exactly zero under P.

    ``design(x)`` gives the (rows, width) columns for the pilot's least-squares fit;
    ``combine(x, beta)`` gives ``sum_j beta_j h_j(x)`` and a bound on the magnitudes summed
    (for the rounding floor) without forming the columns, where that is cheaper (an MVN's
    d(d+1)/2 products as one quadratic form; a score as one forward-mode derivative).
    ``known`` holds ``|E h_j|`` before centring, also for the floor.
    """

    name: str
    design: Callable[[Tensor], Tensor]
    known: Tensor
    combine: _Combine | None = None

    @property
    def width(self) -> int:
        return int(self.known.numel())

    def apply(self, x: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
        if self.combine is not None:
            return self.combine(x, beta)
        nonzero = beta != 0  # a column the fit dropped (beta_j = 0) is not evaluated into the sum
        h = self.design(x)[:, nonzero]
        return h @ beta[nonzero], h.abs() @ beta[nonzero].abs()


def _finite_tensor(f: Callable[[], Tensor]) -> Tensor | None:
    try:
        v = f()
    except (NotImplementedError, AttributeError, RuntimeError):
        return None
    v = torch.as_tensor(v, dtype=torch.float64)
    return v if bool(torch.isfinite(v).all()) else None


def _moment_controls(p: D.Distribution) -> list[_Control]:
    if isinstance(p, D.Categorical):
        # Any function of a categorical value is linear in its one-hot code: these span it.
        probs = p.probs.to(torch.float64)
        k = probs.shape[-1]
        if k < 2:
            return []
        head = probs[:-1]

        def one_hot(x: Tensor) -> Tensor:
            return torch.nn.functional.one_hot(x.long(), k)[:, :-1].to(torch.float64) - head

        return [_Control("one-hot_i - probs_i (i < k - 1)", one_hot, head.abs())]
    mean = _finite_tensor(lambda: p.mean)
    if mean is None:
        return []
    flat_mean = mean.reshape(-1)

    def centred(x: Tensor) -> Tensor:
        return x.to(torch.float64).reshape(x.shape[0], -1) - flat_mean

    vector = flat_mean.numel() > 1
    out = [_Control("x_i - mean_i" if vector else "x - mean", centred, flat_mean.abs())]
    if isinstance(p, D.Bernoulli):
        return out  # x^2 = x: the second moment adds nothing
    if isinstance(p, D.MultivariateNormal):
        return out + [_products(p, centred)]
    variance = _finite_tensor(lambda: p.variance)
    if variance is None:
        return out
    flat_var = variance.reshape(-1)
    name = "(x_i - mean_i)^2 - variance_i" if vector else "(x - mean)^2 - variance"
    return out + [_Control(name, lambda x: centred(x) ** 2 - flat_var, flat_var.abs())]


def _products(p: D.MultivariateNormal, centred: Callable[[Tensor], Tensor]) -> _Control:
    """(x_i - mean_i)(x_j - mean_j) - cov_ij for i <= j: an MVN log-ratio is in their span."""
    cov = p.covariance_matrix.to(torch.float64)
    d = cov.shape[0]
    i, j = torch.triu_indices(d, d)
    known = cov[i, j]

    def design(x: Tensor) -> Tensor:
        z = centred(x)
        return z[:, i] * z[:, j] - known

    def combine(x: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
        # sum_{i<=j} beta_ij (z_i z_j - cov_ij) = z^T B z - <beta, cov>: O(d^2) per row
        # without the d(d+1)/2 columns.
        b = torch.zeros(d, d, dtype=torch.float64)
        b[i, j] = beta
        z = centred(x)
        value = ((z @ b) * z).sum(dim=1) - beta @ known
        za = z.abs()
        magnitude = ((za @ b.abs()) * za).sum(dim=1) + beta.abs() @ known.abs()
        return value, magnitude

    return _Control("(x_i - mean_i)(x_j - mean_j) - cov_ij", design, known.abs(), combine)


def _score_spec(p: D.Distribution) -> tuple[type, dict[str, Tensor], tuple[str, ...]] | None:
    """(class, parameters, names to differentiate) for the score controls, or None."""
    kind = type(p)
    # Only scores that add a statistic: Gamma's rate score and Exponential's are affine in
    # x (already "x - mean"); Laplace's are sign(x - loc) and |x - loc|, both new.
    if kind is D.Laplace:
        return D.Laplace, {"loc": p.loc, "scale": p.scale}, ("loc", "scale")
    if kind is D.Gamma:
        return D.Gamma, {"concentration": p.concentration, "rate": p.rate}, ("concentration",)
    if kind is D.Exponential:
        # Exponential(rate) is Gamma(1, rate); the shape score adds log x (the rate score is x).
        return D.Gamma, {"concentration": torch.ones_like(p.rate), "rate": p.rate}, ("concentration",)
    if kind is D.Beta:
        params = {"concentration1": p.concentration1, "concentration0": p.concentration0}
        return D.Beta, params, ("concentration1", "concentration0")
    if kind is D.Dirichlet:
        return D.Dirichlet, {"concentration": p.concentration}, ("concentration",)
    return None


@functools.cache
def _forward_ad_ready() -> None:
    """Let torch load its forward-mode decompositions once, without its deprecation noise.

    The first ``make_dual`` of a process scripts some decompositions with ``torch.jit``,
    which warns (torch-internal, torch 2.13) once per decomposition.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=DeprecationWarning)
        with fwAD.dual_level():
            fwAD.make_dual(torch.zeros(()), torch.zeros(()))


def _score_controls(p: D.Distribution) -> list[_Control]:
    """Score columns d/d theta_k log p(x), by forward-mode autograd through torch's log_prob.

    Forward mode with the *unexpanded* parameters: the parameter-only parts (lgamma,
    digamma of the concentrations) are computed once, not once per sample.
    """
    spec = _score_spec(p)
    if spec is None:
        return []
    cls, raw, wrt = spec
    params = {n: v.detach().to(torch.float64) for n, v in raw.items()}
    slots = [(n, k) for n in wrt for k in range(params[n].numel())]

    def derivative(x: Tensor, tangent: dict[str, Tensor]) -> Tensor:
        _forward_ad_ready()
        with fwAD.dual_level():
            duals = {n: fwAD.make_dual(v, tangent[n]) if n in tangent else v for n, v in params.items()}
            lp = cls(**duals, validate_args=False).log_prob(x)
            out = fwAD.unpack_dual(lp).tangent
        return torch.zeros(x.shape[0], dtype=torch.float64) if out is None else out.to(torch.float64)

    def tangents(beta: Tensor) -> dict[str, Tensor]:
        out, at = {}, 0
        for n in wrt:
            size = params[n].numel()
            out[n] = beta[at : at + size].reshape(params[n].shape).clone()
            at += size
        return out

    def design(x: Tensor) -> Tensor:
        eye = torch.eye(len(slots), dtype=torch.float64)
        return torch.stack([derivative(x, tangents(eye[c])) for c in range(len(slots))], dim=1)

    def combine(x: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
        value = derivative(x, tangents(beta))
        return value, value.abs()

    name = f"score d/d({', '.join(wrt)}) log p"
    return [_Control(name, design, torch.zeros(len(slots), dtype=torch.float64), combine)]


def _controls(p: D.Distribution) -> list[_Control]:
    return _moment_controls(p) + _score_controls(p)


def _design(controls: list[_Control], x: Tensor) -> Tensor:
    if not controls:
        return torch.zeros(x.shape[0], 0, dtype=torch.float64)
    return torch.cat([c.design(x) for c in controls], dim=1)


def _fit(f: Tensor, h: Tensor) -> tuple[Tensor, float, float, int]:
    """Least-squares coefficients on the pilot; (beta, var plain, var residual, rank).

    Columns are standardised and solved by SVD (LAPACK gelsd), whose cut-off on small
    singular values gives the minimum-norm solution when controls are collinear (the
    coordinates of a Dirichlet sample sum to one, and so do their means). A constant or
    non-finite column gets coefficient 0.
    """
    var_plain = float(f.var())
    beta = torch.zeros(h.shape[1], dtype=torch.float64)
    resid, rank = f, 0
    if h.shape[1]:
        sd = h.std(dim=0)
        keep = torch.isfinite(sd) & (sd > 0) & torch.isfinite(h).all(dim=0)
        if bool(keep.any()):
            hk = h[:, keep]
            fit = torch.linalg.lstsq((hk - hk.mean(dim=0)) / sd[keep], (f - f.mean())[:, None], driver="gelsd")
            beta[keep] = fit.solution[:, 0] / sd[keep]
            resid, rank = f - hk @ beta[keep], int(fit.rank)
    # Unbiased residual variance: the fit spent rank + 1 degrees of freedom of the pilot.
    dof = max(f.shape[0] - rank - 1, 1)
    var_resid = float(((resid - resid.mean()) ** 2).sum()) / dof
    return beta, var_plain, var_resid, rank


# --------------------------------------------------------------------------- sampling


class _Accumulator:
    """Mean and M2 over batches (Chan et al.'s parallel update), plus magnitudes."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.bad = 0
        self.magnitude = 0.0  # sum over rows of |log p| + |log q| + the controls' bound

    def add(self, g: Tensor, magnitude: Tensor) -> None:
        nb = g.shape[0]
        self.bad += int((~torch.isfinite(g)).sum())
        mb = float(g.mean())
        m2b = float(((g - mb) ** 2).sum())
        total = self.n + nb
        delta = mb - self.mean
        self.mean += delta * nb / total
        self.m2 += m2b + delta * delta * self.n * nb / total
        self.n = total
        self.magnitude += float(magnitude.sum())


def _batches(total: int, rows: int) -> list[int]:
    return [min(rows, total - start) for start in range(0, total, rows)]


def _z(alpha: float) -> float:
    return -NormalDist().inv_cdf(alpha)


def critical_z(alpha: float) -> float:
    """|z| beyond which a two-sided test at level ``alpha`` rejects."""
    return _z(alpha / 2)


def _skip(reason: str) -> MonteCarlo:
    return MonteCarlo(
        estimate=math.nan, standard_error=math.nan, z=math.nan, p_value=1.0, samples=0,
        detectable=math.nan, variance_reduction=math.nan, controls=(), skipped=reason, nan_samples=0,
    )


def _covered(d: D.Distribution) -> bool:
    if isinstance(d, D.Independent):
        return type(d.base_dist) is D.Normal
    return type(d) in _COVERED


@dataclass(frozen=True)
class _Plan:
    """What the pilot decided: control coefficients and the main-run size."""

    used: tuple[tuple[_Control, Tensor], ...]  # controls with a nonzero coefficient, and theirs
    known_magnitude: float  # sum_j |beta_j| |E h_j|, for the rounding floor
    reduction: float
    samples: int


def _plan(
    f: Tensor, magnitude: float, h: Tensor, controls: list[_Control], claimed: float, *,
    z_total: float, effect: float, pilot: int, max_samples: int,
) -> _Plan:
    """Fit the controls and choose n (``magnitude``: mean |log p| + |log q| on the pilot)."""
    beta, var_plain, var_resid, _ = _fit(f, h)
    parts = torch.split(beta, [c.width for c in controls]) if controls else ()
    used = tuple((c, b) for c, b in zip(controls, parts) if bool((b != 0).any()))
    known = sum((float(b.abs() @ c.known) for c, b in used), 0.0)
    if var_resid > 0:
        reduction = var_plain / var_resid
    else:
        reduction = 1.0 if var_plain == 0 else math.inf
    sigma = math.sqrt(var_resid)
    # A relative effect needs a scale: the claim, or (a NaN claim fails anyway) the pilot mean.
    scale = max(abs(claimed) if math.isfinite(claimed) else abs(float(f.mean())), _TINY)
    claimed_size = abs(claimed) if math.isfinite(claimed) else 0.0
    floor = _ROUNDING_ULPS * _EPS * (magnitude + known + claimed_size)
    if sigma == 0:
        n = pilot
    else:
        ratio = z_total * sigma / (effect * scale)
        wanted = ratio * ratio  # inf rather than OverflowError for a claimed 0
        # Past (sigma / floor)^2 samples the rounding floor dominates the standard error and
        # more samples buy no power.
        if floor > 0:
            wanted = min(wanted, (sigma / floor) * (sigma / floor))
        n = math.ceil(min(wanted, float(max_samples)))
    return _Plan(
        used=used, known_magnitude=known, reduction=reduction, samples=min(max(n, pilot), max_samples),
    )


def _main_run(
    quantity: str, p: D.Distribution, q: D.Distribution | None, plan: _Plan
) -> _Accumulator:
    # Float64 values held per row: the event (and its centred copy), any columns formed
    # explicitly, and a few vectors of terms.
    event = max(int(torch.Size(p.event_shape).numel()), 1)
    width = 2 * event + sum(c.width for c, _ in plan.used if c.combine is None) + 8
    rows = max(1, min(_BATCH_ROWS, _BATCH_BYTES // (8 * width)))
    acc = _Accumulator()
    for size in _batches(plan.samples, rows):
        x = p.sample((size,))
        g, magnitude = _terms(quantity, p, q, x)
        for control, beta in plan.used:
            value, size_bound = control.apply(x, beta)
            g = g - value
            magnitude = magnitude + size_bound
        acc.add(g, magnitude)
    return acc


def monte_carlo(
    quantity: str,
    p: D.Distribution,
    q: D.Distribution | None,
    claimed: float,
    *,
    alpha: float,
    effect: float = 1e-2,
    power: float = 0.99,
    seed: int = 0,
    pilot: int = 20_000,
    max_samples: int = 2_000_000,
) -> MonteCarlo:
    """Test ``claimed`` against a control-variate Monte Carlo estimate (module docstring).

    ``alpha`` is the per-test level (the family-wise level divided by the number of checks);
    ``effect`` the relative error to detect with probability ``power``. The pilot is held
    in memory at once (``pilot`` rows of controls); the main run is batched. Global RNG
    state is left untouched: sampling runs inside ``torch.random.fork_rng`` seeded with
    ``seed``, so a result is a function of its arguments.
    """
    if quantity not in _QUANTITIES:
        raise ValueError(f"quantity must be one of {_QUANTITIES}, got {quantity!r}")
    if (q is None) != (quantity == "entropy"):
        raise ValueError("q must be None exactly for the entropy")
    if not (0 < alpha < 1 and 0 < power < 1 and effect > 0):
        raise ValueError("need 0 < alpha < 1, 0 < power < 1 and effect > 0")
    if pilot < 100 or max_samples < 1:
        raise ValueError("need pilot >= 100 and max_samples >= 1")
    for d in (p, q):
        if d is not None and d.batch_shape != torch.Size():
            raise ValueError(f"p and q must have batch_shape (), got {tuple(d.batch_shape)}")
    claimed = float(claimed)
    if claimed == math.inf:
        return _skip(
            "claimed value is +inf (support mismatch): Monte Carlo cannot estimate an infinite expectation"
        )
    for d in (p, q):
        if d is not None and not _covered(d):
            return _skip(
                f"{type(d).__name__} is outside the families for which E_P[integrand^2] < inf is "
                "established (see symkl.verify.montecarlo); a z-test needs finite variance"
            )

    p, q = _quiet(p), (None if q is None else _quiet(q))
    controls = _controls(p)
    z_crit, z_power = critical_z(alpha), _z(1 - power)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        x = p.sample((pilot,))
        f, magnitude = _terms(quantity, p, q, x)
        bad = int((~torch.isfinite(f)).sum())
        if bad:
            # Nothing to fit and no variance to plan with: the check has already failed.
            return MonteCarlo(
                estimate=float(f.mean()), standard_error=math.nan, z=math.nan, p_value=0.0,
                samples=0, detectable=math.nan, variance_reduction=math.nan, controls=(),
                skipped=None, nan_samples=bad,
            )
        plan = _plan(
            f, float(magnitude.mean()), _design(controls, x), controls, claimed,
            z_total=z_crit + z_power, effect=effect, pilot=pilot, max_samples=max_samples,
        )
        # A fresh sample (the generator runs on): the coefficients are constants for it.
        acc = _main_run(quantity, p, q, plan)

    claimed_size = abs(claimed) if math.isfinite(claimed) else 0.0
    floor = _ROUNDING_ULPS * _EPS * (acc.magnitude / acc.n + plan.known_magnitude + claimed_size)
    if acc.bad or math.isnan(claimed):
        se = math.nan if acc.bad else math.sqrt(acc.m2 / max(acc.n - 1, 1) / acc.n + floor**2)
        z, p_value = math.nan, 0.0
    else:
        se = math.sqrt(acc.m2 / max(acc.n - 1, 1) / acc.n + floor**2)
        diff = acc.mean - claimed
        z = 0.0 if diff == 0 else (diff / se if se > 0 else math.copysign(math.inf, diff))
        p_value = math.erfc(abs(z) / math.sqrt(2))
    return MonteCarlo(
        estimate=acc.mean,
        standard_error=se,
        z=z,
        p_value=p_value,
        samples=plan.samples,
        detectable=(z_crit + z_power) * se,
        variance_reduction=plan.reduction,
        controls=tuple(c.name for c, _ in plan.used),
        skipped=None,
        nan_samples=acc.bad,
    )
