"""Speed of symkl's KL relative to ``torch.distributions.kl_divergence`` (ratios only).

For Normal, Gamma, Beta, Categorical and MultivariateNormal, float32 and float64, forward
and forward + backward: the time of ``symkl.torch.kl_divergence(P, Q)`` and of the raw
generated function (``symkl.torch.functional.kl_<f>_<f>(..., validate=False)``), each
divided by the time of ``torch.distributions.kl_divergence(P, Q)`` in the same repetition
(median over repetitions; < 1: symkl is faster). Writes docs/speed.md and prints the table.

    python benchmarks/speed.py            # ~1-2 minutes on 2 cores
    python benchmarks/speed.py --quick    # batches / 10, 3 repetitions (the doc says so)
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributions as td

import symkl.torch
from symkl.distributions import REGISTRY

from _common import DOCS, machine_lines, markdown_table, rich_table

Params = dict[str, torch.Tensor]
THREADS = 2
SEED = 20240601
DTYPES = {"float32": torch.float32, "float64": torch.float64}  # float32 (the default) first


@dataclass(frozen=True)
class Case:
    title: str
    family: str  # symkl catalogue name
    batch: int
    event: str  # shape note for the doc
    #: smaller batch for forward+backward where symkl's autograd graph would not fit in RAM
    grad_batch: int | None = None

    def batch_for(self, backward: bool) -> int:
        return self.grad_batch if backward and self.grad_batch else self.batch

    def draw(self, g: torch.Generator, dtype: torch.dtype, n: int) -> Params:
        """One side's parameters (batch ``n``), drawn in float64 and cast to ``dtype``."""
        f64 = torch.float64

        def u(*shape: int, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
            return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=f64)

        if self.family == "normal":
            out = {"loc": torch.randn(n, generator=g, dtype=f64), "scale": u(n).exp()}
        elif self.family == "gamma":
            out = {"concentration": u(n, hi=2.0).exp(), "rate": u(n).exp()}
        elif self.family == "beta":
            out = {"concentration1": u(n, hi=2.0).exp(), "concentration0": u(n, hi=2.0).exp()}
        elif self.family == "categorical":
            out = {"probs": torch.randn(n, 10, generator=g, dtype=f64).softmax(-1)}
        elif self.family == "mvn":
            k = 16
            a = torch.randn(n, k, k, generator=g, dtype=f64)
            cov = a @ a.mT / k + 0.5 * torch.eye(k, dtype=f64)
            out = {"loc": torch.randn(n, k, generator=g, dtype=f64), "covariance_matrix": cov}
        else:
            raise KeyError(self.family)
        return {name: v.to(dtype) for name, v in out.items()}


def cases(scale: int) -> list[Case]:
    return [
        Case("Normal", "normal", 1_000_000 // scale, "scalar"),
        Case("Gamma", "gamma", 1_000_000 // scale, "scalar"),
        Case("Beta", "beta", 1_000_000 // scale, "scalar"),
        Case("Categorical", "categorical", 100_000 // scale, "10 classes"),
        Case("MVN", "mvn", 10_000 // scale, "dim 16"),
    ]


VARIANTS = ("torch", "symkl", "raw")


def timed_call(case: Case, variant: str, p: Params, q: Params, backward: bool) -> float:
    """Seconds for one call (+ backward of the sum); Distribution objects built untimed."""
    fam = REGISTRY[case.family]
    for v in (*p.values(), *q.values()):
        v.grad = None
    if variant == "raw":
        fn = getattr(symkl.torch.functional, f"kl_{case.family}_{case.family}")
        args = {f"{k}_p": v for k, v in p.items()} | {f"{k}_q": v for k, v in q.items()}
        run: Callable[[], torch.Tensor] = lambda: fn(**args, validate=False)  # noqa: E731
    else:
        P, Q = fam.to_torch(p, validate_args=False), fam.to_torch(q, validate_args=False)
        kl = td.kl_divergence if variant == "torch" else symkl.torch.kl_divergence
        run = lambda: kl(P, Q)  # noqa: E731
    start = time.perf_counter()
    out = run()
    if backward:
        out.sum().backward()
    return time.perf_counter() - start


@dataclass
class Result:
    case: Case
    dtype: str
    samples: dict[tuple[str, bool], list[float]]  # (variant, backward) -> seconds per repetition

    def ratio(self, variant: str, backward: bool) -> float:
        """Median over repetitions of (variant time / torch time in the same repetition)."""
        pairs = zip(self.samples[(variant, backward)], self.samples[("torch", backward)])
        return statistics.median(t / anchor for t, anchor in pairs)

    def anchor_ms(self, backward: bool) -> float:
        return 1e3 * statistics.median(self.samples[("torch", backward)])


def measure(case: Case, dtype: torch.dtype, reps: int, warmup: int = 1) -> dict[tuple[str, bool], list[float]]:
    out = {}
    for backward in (False, True):
        g = torch.Generator().manual_seed(SEED)
        n = case.batch_for(backward)
        p, q = case.draw(g, dtype, n), case.draw(g, dtype, n)
        for v in (*p.values(), *q.values()):
            v.requires_grad_(backward)
        samples: dict[str, list[float]] = {v: [] for v in VARIANTS}
        first: dict[str, float] = {}
        for i in range(warmup + reps):
            for variant in VARIANTS:  # interleaved, so that drift hits all three alike
                t = timed_call(case, variant, p, q, backward)
                if i >= warmup:
                    samples[variant].append(t)
                else:
                    first.setdefault(variant, t)
        out.update({(v, backward): s for v, s in samples.items()})
        # the first call compiles (symkl.torch._execution): seconds, once per process
        out[("first call", backward)] = [first["symkl"]]
    return out


def first_call_rows(results: list[Result]) -> list[list[str]]:
    """The warm-up call of symkl.torch.kl_divergence, in units of torch's median call."""
    out = []
    for r in results:
        cells = []
        for backward in (False, True):
            first = r.samples[("first call", backward)][0]
            cells.append(f"{first / statistics.median(r.samples[('torch', backward)]):,.0f}")
        out.append([r.dtype, r.case.title, *cells])
    return out


def fmt(r: float) -> str:
    return f"{r:.2f}"


def rows(results: list[Result]) -> list[list[str]]:
    out = []
    for r in results:
        for variant, label in (("symkl", "symkl.torch.kl_divergence"), ("raw", "raw generated function")):
            fwd, bwd = r.ratio(variant, False), r.ratio(variant, True)
            if variant == "symkl":
                target, ok = "<= 1.0", max(fwd, bwd) <= 1.0
            elif r.case.family == "normal":
                target, ok = "<= 0.5", max(fwd, bwd) <= 0.5
            else:
                target, ok = "none", None
            batch = f"batch {r.case.batch:,}" + (
                f", fwd+bwd {r.case.grad_batch:,}" if r.case.grad_batch else "")
            out.append([r.dtype, f"{r.case.title} ({r.case.event}, {batch})", label,
                        fmt(fwd), fmt(bwd), target, "—" if ok is None else ("yes" if ok else "no")])
    return out


HEADER = ["dtype", "pair", "symkl variant", "forward", "forward+backward", "target", "meets target"]
RIGHT = [False, False, False, True, True, False, False]


def write_doc(results: list[Result], reps: int, quick: bool) -> str:
    anchors = "; ".join(
        f"{r.dtype} {r.case.title}: {r.anchor_ms(False):.3g} / {r.anchor_ms(True):.3g}"
        for r in results)
    lines = [
        "# Speed of symkl's KL vs `torch.distributions.kl_divergence`",
        "",
        "Generated by `python benchmarks/speed.py`" + (" --quick" if quick else "")
        + "; do not edit by hand. Ratios only: symkl time / torch time, measured in the same "
        "run (< 1 means symkl is faster).",
        "",
        *machine_lines(),
        f"- device: CPU, `torch.set_num_threads({THREADS})`. "
        + ("CUDA: not measured (no GPU on this machine)." if not torch.cuda.is_available()
           else "CUDA: not measured by this script (CPU only)."),
        "",
        "## Method",
        "",
        "- Anchor (the denominator): `torch.distributions.kl_divergence(P, Q)` on the same "
        "inputs, dtype and thread count, timed in the same loop: each repetition times torch, "
        "symkl.torch.kl_divergence and the raw function back to back, and the ratio reported "
        "is the median over repetitions of (symkl time / torch time in that repetition), so "
        "that load from other processes on the machine hits numerator and denominator alike.",
        "- `symkl.torch.kl_divergence(P, Q)`: the drop-in replacement, on the same Distribution "
        "objects. *raw generated function*: `symkl.torch.functional.kl_<f>_<f>(..., "
        "validate=False)` on the parameter tensors (no Distribution object).",
        "- Distribution objects are built outside the timed region for both (`validate_args=False`), "
        "fresh for every repetition. torch's MultivariateNormal computes its Cholesky factor in "
        "the constructor (untimed); symkl reads `covariance_matrix` and factors it inside its "
        "timed call.",
        "- Execution: `symkl.torch` evaluates every formula in float64 (float32 results rounded "
        "once, with the kernels' NARROW variants) and, in its default mode `auto`, runs inputs "
        "of >= 65,536 elements through `torch.compile` (inductor); functions with the lnGamma "
        "kernel (Gamma, Beta) compile with `realize_reads_threshold=2` (a ~1 minute first compile "
        "instead of ~3). See `symkl/torch/_execution.py`.",
        "- *forward*: the call. *forward+backward*: every parameter `requires_grad`, the call "
        "plus `.sum().backward()` (which includes backward through the constructors' graph, "
        "e.g. torch's Cholesky).",
        f"- {reps} repetitions after 1 warm-up call per variant.",
        "- Batch sizes are in the pair column"
        + (" (--quick: the full run's / 10)" if quick else "")
        + ". Full run: 1e6 (Categorical 1e5 x 10 classes = 1e6 probabilities per side, MVN "
        "1e4 x dim 16), forward+backward included (symkl's kernels save only their inputs "
        "for the backward: symkl/kernels/_partials.py).",
        "- Inputs drawn in float64 (fixed seed) and cast: Normal loc ~ N(0, 1), scale = e^U(-1,1); "
        "Gamma concentration e^U(-1,2), rate e^U(-1,1); Beta concentrations e^U(-1,2); "
        "Categorical probs = softmax(N(0, 1)) over 10 classes; MVN dim 16, covariance A A^T / 16 + I / 2.",
        "",
        "## Targets",
        "",
        "- `symkl.torch.kl_divergence`: ratio <= 1.0 (forward and forward+backward).",
        "- raw Normal function: >= 2x faster than torch (ratio <= 0.5).",
        "",
        "## Ratios (symkl time / torch time)",
        "",
        markdown_table(HEADER, rows(results), RIGHT),
        "",
        "Anchor: torch's median times in ms (forward / forward+backward), only to show what the "
        f"ratios are relative to: {anchors}.",
        "",
        "## First call",
        "",
        "The warm-up call of `symkl.torch.kl_divergence` in each configuration, in units of "
        "torch's median call time: where symkl compiles, this is the one-time compilation "
        "(inductor caches it on disk, so a later process pays seconds, not this). With a warm "
        "cache from an earlier run the figures are much smaller.",
        "",
        markdown_table(["dtype", "pair", "forward", "forward+backward"], first_call_rows(results),
                       [False, False, True, True]),
        "",
    ]
    text = "\n".join(lines)
    (DOCS / "speed.md").write_text(text)
    return text


def main() -> None:
    from rich.console import Console
    from rich.progress import Progress

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batches / 10, 3 repetitions")
    args = parser.parse_args()
    reps = 3 if args.quick else 7
    torch.set_num_threads(THREADS)
    console = Console()
    console = console if console.is_terminal else Console(width=160)
    start = time.perf_counter()
    results = []
    todo = [(c, d) for d in DTYPES for c in cases(10 if args.quick else 1)]
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("speed", total=len(todo))
        for case, dtype in todo:
            progress.update(task, description=f"{dtype} {case.title}")
            results.append(Result(case, dtype, measure(case, DTYPES[dtype], reps)))
            progress.advance(task)
    write_doc(results, reps, args.quick)
    console.print(rich_table("symkl time / torch.distributions time (< 1: symkl faster)", HEADER,
                             rows(results), RIGHT))
    console.print(f"wrote {DOCS / 'speed.md'} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
