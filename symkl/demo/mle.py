"""Maximum likelihood is KL minimisation: fit a model Q_theta to samples of P by SGD.

For samples x ~ P, the minibatch negative log-likelihood ``NLL = -mean log q_theta(x)``
estimates the cross-entropy H(P, Q_theta) = KL(P || Q_theta) + H(P). So at every step

    NLL - KL(P || Q_theta) - H(P)  has mean 0 and standard error  std(log q_theta(x)) / sqrt(batch):

minimising the NLL minimises the KL, since H(P) does not depend on theta. The demo records the
NLL (torch's log_prob), the exact KL and H(P) (symkl's generated code) at every step and checks
that identity, and compares the fitted parameters with the minimiser of the exact KL (found
by L-BFGS on the generated KL itself, independently of the samples).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import torch

from symkl.demo import parametrize, scenario
from symkl.demo.scenario import Value

OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class StepRecord:
    step: int
    nll: float  # minibatch mean of -log q_theta(x)
    kl: float  # exact KL(P || Q_theta) at the same theta
    entropy: float  # H(P)
    mc_stderr: float  # std(log q_theta(x)) / sqrt(batch): the NLL's Monte Carlo error
    params: dict[str, list[float]]  # Q's parameters at this step, flattened

    @property
    def residual(self) -> float:
        """NLL - KL - H(P): zero up to Monte Carlo error."""
        return self.nll - self.kl - self.entropy


@dataclass
class MleResult:
    p: str
    q: str
    data: dict[str, list[float]]
    fixed: dict[str, list[float]]
    entropy_method: str
    entropy_generated: bool
    settings: dict[str, object]
    records: list[StepRecord] = field(default_factory=list)
    initial: dict[str, list[float]] = field(default_factory=dict)
    final: dict[str, list[float]] = field(default_factory=dict)
    #: argmin of the exact KL over the model's free parameters (L-BFGS on the generated code)
    optimum: dict[str, list[float]] = field(default_factory=dict)
    kl_final: float = math.nan
    kl_optimum: float = math.nan

    @property
    def residual_mean(self) -> float:
        return sum(r.residual for r in self.records) / len(self.records)

    @property
    def residual_stderr(self) -> float:
        """Standard error of the mean residual. Each step draws a fresh minibatch, so the
        residuals are uncorrelated given the past: Var(mean) = sum of per-step variances / T^2."""
        return math.sqrt(sum(r.mc_stderr**2 for r in self.records)) / len(self.records)

    @property
    def residual_z(self) -> float:
        return self.residual_mean / self.residual_stderr

    @property
    def max_param_error(self) -> float:
        """Largest |final - optimum| over the free parameters' entries."""
        return max((abs(a - b) for name in self.optimum for a, b in zip(self.final[name], self.optimum[name])),
                   default=0.0)


def _optimizer(name: str, params: list[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def minimise_exact_kl(p_dist: torch.distributions.Distribution, model: parametrize.Parametrized,
                      max_iter: int = 500) -> None:
    """Move ``model`` to the minimiser of the exact KL(P || Q) (in place): deterministic,
    no samples, the reference the stochastic fit is compared with."""
    free = list(model.parameters())
    if not free:
        return
    lbfgs = torch.optim.LBFGS(free, lr=1.0, max_iter=max_iter, tolerance_grad=1e-12,
                              tolerance_change=1e-15, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        lbfgs.zero_grad()
        loss = scenario.exact_kl(p_dist, model.distribution())
        loss.backward()
        return loss

    lbfgs.step(closure)


@scenario.on_one_thread
def run(p: str = "normal", q: str | None = None, *, data: Mapping[str, Value] | None = None,
        fix: Mapping[str, Value] | None = None, steps: int = 300, batch: int = 256, lr: float = 0.1,
        optimizer: str = "adam", seed: int = 0, device: str = "cpu") -> MleResult:
    """Fit Q (default: P's family) to samples of P by minibatch maximum likelihood,
    recording every step.

    ``data`` overrides P's default parameters; ``fix`` holds some of Q's parameters fixed
    (``fix={"scale": 1}`` with two Normals is the classic N(theta, 1) example). The
    learning rate decays along a cosine from ``lr`` to 0, so the last iterate settles instead
    of jittering at the scale of the gradient noise. Deterministic given ``seed``.
    """
    if steps < 1 or batch < 2:
        raise ValueError(f"steps must be >= 1 and batch >= 2 (got steps={steps}, batch={batch})")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if optimizer not in OPTIMIZERS:
        _optimizer(optimizer, [], lr)  # raises the error that lists the choices
    fam_p, fam_q = scenario.resolve_pair(p, q or p)
    scenario.check_model_support(fam_q)
    torch.manual_seed(seed)
    data_values = scenario.data_values(fam_p, data, device)
    dim = scenario.event_dim_of(fam_p, data_values)
    fixed = scenario.fixed_values(fam_q, fix, dim, device)
    p_dist = fam_p.to_torch(data_values)
    initial = parametrize.neutral_values(fam_q, dim, scenario.DTYPE, device, given=fixed)
    scenario.check_finite_kl(fam_p, fam_q, scenario.exact_kl(p_dist, fam_q.to_torch(initial)),
                             "the model's starting point " + _describe(initial))
    entropy = scenario.data_entropy(fam_p, data_values)

    result = MleResult(
        fam_p.name, fam_q.name, scenario.flat(data_values), scenario.flat(fixed), entropy.method, entropy.generated,
        {"steps": steps, "batch": batch, "lr": lr, "optimizer": optimizer, "seed": seed, "device": device},
        initial=scenario.flat(initial),
    )
    model = parametrize.Parametrized(fam_q, initial, fixed).to(device)
    free = list(model.parameters())
    opt = _optimizer(optimizer, free, lr) if free else None
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps) if opt else None
    for step in range(steps):
        x = p_dist.sample((batch,))
        q_dist = model.distribution()
        log_q = q_dist.log_prob(x)
        nll = -log_q.mean()
        with torch.no_grad():
            kl = scenario.exact_kl(p_dist, q_dist)
        result.records.append(StepRecord(
            step, float(nll.detach()), float(kl), entropy.value,
            float(log_q.detach().std() / math.sqrt(batch)), scenario.flat(model.values()),
        ))
        if opt is not None:
            opt.zero_grad()
            nll.backward()
            opt.step()
            schedule.step()
    final = model.values()
    result.final = scenario.flat(final)
    with torch.no_grad():
        result.kl_final = float(scenario.exact_kl(p_dist, fam_q.to_torch(final)))
    reference = parametrize.Parametrized(fam_q, initial, fixed).to(device)
    minimise_exact_kl(p_dist, reference)
    optimum = reference.values()
    result.optimum = {name: values for name, values in scenario.flat(optimum).items() if name not in fixed}
    with torch.no_grad():
        result.kl_optimum = float(scenario.exact_kl(p_dist, fam_q.to_torch(optimum)))
    return result


def _describe(values: Mapping[str, torch.Tensor]) -> str:
    return "(" + ", ".join(f"{k}={_short(v)}" for k, v in values.items()) + ")"


def _short(v: torch.Tensor) -> str:
    flat = [f"{float(x):.4g}" for x in v.detach().cpu().flatten()]
    return flat[0] if v.ndim == 0 else "[" + ", ".join(flat) + "]"


# -- output ---------------------------------------------------------------------------------


def param_columns(result: MleResult) -> list[tuple[str, str, int]]:
    """(column header, parameter, flat index): ``scale``, ``probs[0]``, ``covariance_matrix[1,0]``."""
    columns = []
    for name, values in result.initial.items():
        if len(values) == 1:
            columns.append((name, name, 0))
            continue
        k = math.isqrt(len(values))
        matrix = k * k == len(values) and name in _matrix_names(result.q)
        for i in range(len(values)):
            label = f"{name}[{i // k},{i % k}]" if matrix else f"{name}[{i}]"
            columns.append((label, name, i))
    return columns


def _matrix_names(family_name: str) -> set[str]:
    from symkl import distributions
    from symkl.family import Shape

    family = distributions.get(family_name)
    return {p.name for p in family.params if p.shape is Shape.MATRIX}


CSV_COLUMNS = ("step", "nll", "kl", "entropy", "nll_minus_kl_minus_entropy", "mc_stderr")


def csv_rows(result: MleResult) -> tuple[list[str], list[list[float | int]]]:
    """The per-step curves: one row per step, one column per quantity and parameter entry."""
    columns = param_columns(result)
    header = [*CSV_COLUMNS, *(label for label, _, _ in columns)]
    rows = [[r.step, r.nll, r.kl, r.entropy, r.residual, r.mc_stderr,
             *(r.params[name][i] for _, name, i in columns)] for r in result.records]
    return header, rows
