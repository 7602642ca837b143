"""Monte Carlo KL against sample size, converging on the analytic value.

KL(P || Q) = E_P[log p(x) - log q(x)]: the sample mean over n draws of P estimates it with
standard error std(log p - log q) / sqrt(n). For n log-spaced from 10 to 10^6 (a fresh,
independent sample for every n, so the bands are independent too) the demo records the
estimate, its 95 % band (mean +- 1.96 standard errors) and the exact value from symkl's
generated code, and reports the fraction of n whose band contains it (about 0.95 expected).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from symkl.demo import parametrize, scenario
from symkl.demo.scenario import Value

Z95 = 1.959963984540054  # the standard normal 97.5 % quantile


@dataclass(frozen=True)
class Estimate:
    n: int
    mean: float  # the Monte Carlo estimate of KL
    stderr: float  # std(log p - log q) / sqrt(n)

    @property
    def band(self) -> tuple[float, float]:
        return self.mean - Z95 * self.stderr, self.mean + Z95 * self.stderr

    def covers(self, value: float) -> bool:
        lo, hi = self.band
        return lo <= value <= hi


@dataclass(frozen=True)
class McResult:
    p: str
    q: str
    p_params: dict[str, list[float]]
    q_params: dict[str, list[float]]
    exact: float  # KL(P || Q) from the generated code
    estimates: tuple[Estimate, ...]
    seed: int

    @property
    def coverage(self) -> float:
        """The fraction of sample sizes whose 95 % band contains the exact value."""
        return sum(e.covers(self.exact) for e in self.estimates) / len(self.estimates)

    @property
    def last(self) -> Estimate:
        return self.estimates[-1]


def sample_sizes(max_n: int, points: int) -> list[int]:
    """``points`` sizes log-spaced from 10 to ``max_n`` (rounded, duplicates dropped)."""
    if max_n < 10 or points < 2:
        raise ValueError(f"max_n must be >= 10 and points >= 2 (got max_n={max_n}, points={points})")
    return sorted({int(round(n)) for n in np.logspace(1, math.log10(max_n), points)})


@scenario.on_one_thread
def run(p: str = "normal", q: str | None = None, *, p_params: Mapping[str, Value] | None = None,
        q_params: Mapping[str, Value] | None = None, max_n: int = 1_000_000, points: int = 31,
        seed: int = 0, device: str = "cpu") -> McResult:
    """Estimate KL(P || Q) by Monte Carlo at each sample size (Q's family defaults to P's).
    P's parameters default to the demo's data defaults, Q's to its constraints' neutral
    values (N(0, 1) for a Normal)."""
    sizes = sample_sizes(max_n, points)
    fam_p, fam_q = scenario.resolve_pair(p, q or p)
    torch.manual_seed(seed)
    values_p = scenario.data_values(fam_p, p_params, device, option="--p-param")
    dim = scenario.event_dim_of(fam_p, values_p)
    given_q = scenario.fixed_values(fam_q, q_params, dim, device, option="--q-param")
    values_q = parametrize.neutral_values(fam_q, dim, scenario.DTYPE, device, given=given_q)
    fam_q.validate({k: v.cpu().numpy() for k, v in values_q.items()})
    dist_p, dist_q = fam_p.to_torch(values_p), fam_q.to_torch(values_q)
    exact = scenario.exact_kl(dist_p, dist_q)
    scenario.check_finite_kl(fam_p, fam_q, exact, "these parameters")
    estimates = []
    for n in sizes:
        x = dist_p.sample((n,))
        ratio = dist_p.log_prob(x) - dist_q.log_prob(x)
        estimates.append(Estimate(n, float(ratio.mean()), float(ratio.std() / math.sqrt(n))))
    return McResult(fam_p.name, fam_q.name, scenario.flat(values_p), scenario.flat(values_q), float(exact),
                    tuple(estimates), seed)


CSV_COLUMNS = ("n", "estimate", "stderr", "band_low", "band_high", "exact", "covers")


def csv_rows(result: McResult) -> tuple[list[str], list[list[float | int]]]:
    rows = [[e.n, e.mean, e.stderr, *e.band, result.exact, int(e.covers(result.exact))]
            for e in result.estimates]
    return list(CSV_COLUMNS), rows
