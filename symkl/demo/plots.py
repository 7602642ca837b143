"""The demos' figures (matplotlib, imported by the caller through
:func:`symkl.demo.output.load_matplotlib`; never pyplot, so no global figure state).

Every figure is drawn inside matplotlib's default style plus :data:`STYLE`, so a user's
matplotlibrc cannot change the committed PNGs.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from symkl.demo import output
from symkl.demo.mc import McResult
from symkl.demo.mle import MleResult, param_columns
from symkl.demo.modes import GRID_POINTS, Fit, ModesResult

STYLE = {
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 10,
    "axes.titlesize": 11,
    "legend.fontsize": 9,
    "legend.framealpha": 0.9,
}
NATS = "nats"
BLUE, ORANGE, GREY = "tab:blue", "tab:orange", "0.55"


def save(matplotlib: ModuleType, draw: Callable[[Any], Any], path: Path, command: str) -> Path:
    """Build a figure with ``draw(Figure)`` in the fixed style and save it as PNG."""
    with matplotlib.style.context(["default", STYLE]):
        figure = draw(matplotlib.figure.Figure)
        return output.save_png(figure, path, command)


def _title(family: str) -> str:
    from symkl import distributions

    return distributions.get(family).title


def _upper(label: str) -> bool:
    """``covariance_matrix[0,2]``: an entry above a matrix diagonal."""
    if not label.endswith("]") or "," not in label:
        return False
    row, col = label[label.index("[") + 1:-1].split(",")
    return int(row) < int(col)


def _num(value: float, digits: int = 3) -> str:
    """A rounded number without a "-0.000" for a tiny negative."""
    return f"{round(value, digits) + 0.0:.{digits}f}"


def _fit_text(fit: Fit) -> str:
    return rf"($\mu$ = {_num(fit.loc)}, $\sigma$ = {_num(fit.scale)}, KL = {_num(fit.kl)})"


def _dist(family: str, params: dict[str, list[float]]) -> str:
    """``Normal(loc=2, scale=1)``; vectors in brackets."""
    def show(values: list[float]) -> str:
        text = ", ".join(f"{v:.3g}" for v in values)
        return text if len(values) == 1 else f"[{text}]"

    return f"{_title(family)}(" + ", ".join(f"{k}={show(v)}" for k, v in params.items()) + ")"


def mle_figure(result: MleResult) -> Callable[[Any], Any]:
    def draw(Figure: Any) -> Any:  # noqa: N803 - the matplotlib class
        fig = Figure(figsize=(8.0, 9.0), layout="constrained")
        top, middle, bottom = fig.subplots(3, 1, sharex=True, height_ratios=(3, 2, 3))
        steps = [r.step for r in result.records]
        fig.suptitle(f"Maximum likelihood is KL minimisation: {_title(result.q)} model, "
                     f"{_title(result.p)} data", fontsize=12)

        top.plot(steps, [r.nll for r in result.records], color=GREY, lw=0.7, alpha=0.8,
                 label=f"minibatch NLL (batch {result.settings['batch']})")
        top.plot(steps, [r.kl + r.entropy for r in result.records], color=BLUE, lw=2,
                 label=r"exact $\mathrm{KL}(P\,\|\,Q_\theta) + H(P)$")
        top.plot(steps, [r.kl for r in result.records], color=ORANGE, lw=2,
                 label=r"exact $\mathrm{KL}(P\,\|\,Q_\theta)$ (generated code)")
        entropy = result.records[0].entropy
        top.axhline(entropy, color="black", ls="--", lw=1.2,
                    label=f"$H(P)$ = {entropy:.4f}" + ("" if result.entropy_generated else " (numeric)"))
        top.set_ylabel(NATS)
        top.set_title("the minibatch NLL estimates the cross-entropy $H(P, Q_\\theta) = \\mathrm{KL} + H(P)$")
        top.legend(loc="upper right")

        residual = [r.residual for r in result.records]
        band = [1.96 * r.mc_stderr for r in result.records]
        middle.fill_between(steps, [-b for b in band], band, color=BLUE, alpha=0.15, lw=0,
                            label="per-step 95 % Monte Carlo band")
        middle.plot(steps, residual, ".", ms=2.5, color=GREY, label="NLL − KL − H(P) per step")
        middle.axhline(0, color="black", lw=1)
        middle.set_ylabel(NATS)
        middle.set_title(f"NLL − KL − H(P): mean {result.residual_mean:+.4f} ± {result.residual_stderr:.4f} "
                         f"(z = {result.residual_z:+.2f}), zero within Monte Carlo error")
        middle.legend(loc="upper right")

        # Matrix parameters (covariance, Cholesky factor) are symmetric or zero above the
        # diagonal: their lower triangle says everything (the CSV keeps every entry).
        columns = [c for c in param_columns(result) if c[1] in result.optimum and not _upper(c[0])]
        colors = [f"C{i % 10}" for i in range(len(columns))]
        for (label, name, i), color in zip(columns, colors):
            bottom.plot(steps, [r.params[name][i] for r in result.records], color=color, lw=1.5, label=label)
            bottom.axhline(result.optimum[name][i], color=color, ls="--", lw=1)
        bottom.set_xlabel(f"step ({result.settings['optimizer']}, lr {result.settings['lr']}, cosine decay)")
        bottom.set_ylabel("model parameter")
        fixed = ", ".join(f"{k} = {v[0]:g}" for k, v in result.fixed.items())
        bottom.set_title("parameters (dashed: the minimiser of the exact KL)"
                         + (f"; fixed: {fixed}" if fixed else ""))
        if columns:
            bottom.legend(loc="best", ncol=max(1, math.ceil(len(columns) / 6)))
        return fig

    return draw


def modes_figure(result: ModesResult) -> Callable[[Any], Any]:
    import torch

    x = result.mixture.grid(GRID_POINTS)
    p = torch.exp(result.mixture.log_prob(x)).tolist()
    normal = lambda f: torch.exp(torch.distributions.Normal(f.loc, f.scale).log_prob(x)).tolist()  # noqa: E731
    xs = x.tolist()

    def draw(Figure: Any) -> Any:  # noqa: N803
        fig = Figure(figsize=(8.0, 4.8), layout="constrained")
        ax = fig.subplots()
        ax.fill_between(xs, p, color=GREY, alpha=0.35, lw=0, label="P: Gaussian mixture")
        ax.plot(xs, p, color="0.3", lw=1)
        f, r = result.forward, result.reverse
        ax.plot(xs, normal(f), color=BLUE, lw=2.2,
                label=r"argmin KL(P$\|$Q), forward: mode-covering " + _fit_text(f))
        ax.plot(xs, normal(r), color=ORANGE, lw=2.2,
                label=r"argmin KL(Q$\|$P), reverse: mode-seeking " + _fit_text(r))
        components = " + ".join(f"{w:g} N({m:g}, {s:g}²)" for w, m, s in
                                zip(result.mixture.weights, result.mixture.locs, result.mixture.scales))
        ax.set_title(f"One Normal Q fitted to P = {components}")
        ax.set_xlabel("x")
        ax.set_ylabel("density")
        ax.set_ylim(0, 1.4 * max(max(p), max(normal(r)), max(normal(f))))  # room for the legend
        ax.legend(loc="upper left")
        return fig

    return draw


def mc_figure(result: McResult) -> Callable[[Any], Any]:
    def draw(Figure: Any) -> Any:  # noqa: N803
        fig = Figure(figsize=(8.0, 4.8), layout="constrained")
        ax = fig.subplots()
        n = [e.n for e in result.estimates]
        lo = [e.band[0] for e in result.estimates]
        hi = [e.band[1] for e in result.estimates]
        ax.fill_between(n, lo, hi, color=BLUE, alpha=0.2, lw=0, label="95 % band: estimate ± 1.96 std / √n")
        ax.plot(n, [e.mean for e in result.estimates], "o-", color=BLUE, ms=3.5, lw=1,
                label="Monte Carlo estimate: mean of log p(x) − log q(x), x ~ P")
        ax.axhline(result.exact, color="black", ls="--", lw=1.3,
                   label=f"exact KL (generated code) = {result.exact:.6g}")
        ax.set_xscale("log")
        ax.set_xlabel("sample size n")
        ax.set_ylabel(f"KL(P || Q) ({NATS})")
        ax.set_title(f"Monte Carlo KL(P ‖ Q), P = {_dist(result.p, result.p_params)}, "
                     f"Q = {_dist(result.q, result.q_params)}\n"
                     f"the 95 % band covers the exact value at {result.coverage:.0%} of the sample sizes")
        ax.legend(loc="upper right")
        return fig

    return draw
