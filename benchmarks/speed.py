"""Speed of symkl's KL relative to ``torch.distributions.kl_divergence`` (ratios only).

For Normal, Gamma, Beta, Categorical and MultivariateNormal (built from its covariance, and
from its Cholesky factor), float32 and float64, forward
and forward + backward: the time of ``symkl.torch.kl_divergence(P, Q)`` and of the raw
generated function (``symkl.torch.functional.kl_<f>_<f>(..., validate=False)``), each
divided by the time of ``torch.distributions.kl_divergence(P, Q)`` in the same repetition
(median over repetitions; < 1: symkl is faster). Writes docs/speed.md and prints the table.

    python benchmarks/speed.py                  # CPU: ~20 minutes on 2 cores with a cold compile cache
    python benchmarks/speed.py --quick          # batches / 10, 3 repetitions (the doc says so)
    python benchmarks/speed.py --device cuda    # writes docs/speed-cuda.md, with memory bandwidth

On CUDA every configuration compiles in its own process at the same time (the compiles are
CPU work, minutes for Gamma and Beta), then the processes take turns on the GPU, so that
no timing overlaps another process's work.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
import traceback
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributions as td

import symkl.torch
from symkl.distributions import REGISTRY

from _common import DOCS, gpu_line, machine_lines, markdown_table, rich_table

Params = dict[str, torch.Tensor]
THREADS = 2
SEED = 20240601
DTYPES = {"float32": torch.float32, "float64": torch.float64}  # float32 (the default) first
REPS = {"cpu": 7, "cuda": 30}  # repetitions after the warm-up (CUDA calls take microseconds)
#: CUDA memory-bandwidth runs: elements per side, large enough that launch costs vanish
BANDWIDTH_NUMEL = 1 << 26


@dataclass(frozen=True)
class Case:
    title: str
    family: str  # symkl catalogue name
    batch: int
    event: str  # shape note for the doc
    #: smaller batch for forward+backward where symkl's autograd graph would not fit in RAM
    grad_batch: int | None = None
    #: MVN: objects built from ``scale_tril`` (the factor drawn in float64, then cast), as
    #: VAE-style code builds them, instead of ``covariance_matrix``: torch has its factor
    #: without a factorisation, and symkl takes it as given in every dtype (the *_tril function)
    from_scale_tril: bool = False

    @property
    def raw_function(self) -> str:
        """The name of the generated function the ``raw`` variant calls."""
        return f"kl_{self.family}_{self.family}" + ("_tril" if self.from_scale_tril else "")

    def batch_for(self, backward: bool) -> int:
        return self.grad_batch if backward and self.grad_batch else self.batch

    @property
    def elementwise(self) -> bool:
        """One output per element of each parameter (or per row of a few): memory-bound."""
        return self.family != "mvn"

    def bandwidth_batch(self) -> int:
        return BANDWIDTH_NUMEL // (10 if self.family == "categorical" else 1)

    def draw(self, g: torch.Generator, dtype: torch.dtype, n: int, device: str = "cpu") -> Params:
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
            loc = torch.randn(n, k, generator=g, dtype=f64)
            out = ({"loc": loc, "scale_tril": torch.linalg.cholesky(cov)} if self.from_scale_tril
                   else {"loc": loc, "covariance_matrix": cov})
        else:
            raise KeyError(self.family)
        return {name: v.to(device=device, dtype=dtype) for name, v in out.items()}


def cases(scale: int) -> list[Case]:
    return [
        Case("Normal", "normal", 1_000_000 // scale, "scalar"),
        Case("Gamma", "gamma", 1_000_000 // scale, "scalar"),
        Case("Beta", "beta", 1_000_000 // scale, "scalar"),
        Case("Categorical", "categorical", 100_000 // scale, "10 classes"),
        Case("MVN", "mvn", 10_000 // scale, "dim 16"),
        Case("MVN from scale_tril", "mvn", 10_000 // scale, "dim 16", from_scale_tril=True),
    ]


VARIANTS = ("torch", "symkl", "raw")


def _synchronize(p: Params) -> None:
    """Wait for queued CUDA work, so that a host clock brackets the whole call."""
    if next(iter(p.values())).is_cuda:
        torch.cuda.synchronize()


def timed_call(case: Case, variant: str, p: Params, q: Params, backward: bool) -> float:
    """Seconds for one call (+ backward of the sum); Distribution objects built untimed."""
    fam = REGISTRY[case.family]
    for v in (*p.values(), *q.values()):
        v.grad = None
    if variant == "raw":
        fn = getattr(symkl.torch.functional, case.raw_function)
        args = {f"{k}_p": v for k, v in p.items()} | {f"{k}_q": v for k, v in q.items()}
        run: Callable[[], torch.Tensor] = lambda: fn(**args, validate=False)  # noqa: E731
    else:
        P, Q = fam.to_torch(p, validate_args=False), fam.to_torch(q, validate_args=False)
        kl = td.kl_divergence if variant == "torch" else symkl.torch.kl_divergence
        run = lambda: kl(P, Q)  # noqa: E731
    _synchronize(p)
    start = time.perf_counter()
    out = run()
    if backward:
        out.sum().backward()
    _synchronize(p)
    return time.perf_counter() - start


@dataclass
class Result:
    case: Case
    dtype: str
    samples: dict[tuple[str, bool], list[float]]  # (variant, backward) -> seconds per repetition
    #: CUDA only: variant -> (bytes read and written at least, median seconds) at the bandwidth batch
    bandwidth: dict[str, tuple[int, float]] | None = None
    #: symkl functions that fell back to eager (torch.compile failed); should stay empty
    eager_fallbacks: tuple[str, ...] = ()
    #: CUDA only: max |compiled CUDA - eager CPU| / |eager CPU| of symkl.torch.kl_divergence
    agreement: float | None = None

    def ratio(self, variant: str, backward: bool) -> float:
        """Median over repetitions of (variant time / torch time in the same repetition)."""
        pairs = zip(self.samples[(variant, backward)], self.samples[("torch", backward)])
        return statistics.median(t / anchor for t, anchor in pairs)

    def anchor_ms(self, backward: bool) -> float:
        return 1e3 * statistics.median(self.samples[("torch", backward)])


def measure(case: Case, dtype: torch.dtype, reps: int, device: str = "cpu", warmup: int = 1,
            modes: tuple[bool, ...] = (False, True), barrier=None, lock=None,  # noqa: ANN001
            gate: str | None = None) -> Result:
    """Warm every variant up (the first symkl call compiles), then time ``reps`` rounds.

    ``modes``: forward (False) and/or forward+backward (True). ``barrier`` (parallel CUDA
    runs): wait for every process to finish compiling before timing; ``gate``: then wait until
    this file exists; ``lock``: time while holding the GPU alone.
    """
    inputs, samples, first = {}, {}, {}
    for backward in modes:
        g = torch.Generator().manual_seed(SEED)
        n = case.batch_for(backward)
        p, q = case.draw(g, dtype, n, device), case.draw(g, dtype, n, device)
        for v in (*p.values(), *q.values()):
            v.requires_grad_(backward)
        inputs[backward] = p, q
        for variant in VARIANTS:
            first[(variant, backward)] = [timed_call(case, variant, p, q, backward)]
            for _ in range(warmup - 1):
                timed_call(case, variant, p, q, backward)
    big = None
    if device != "cpu" and case.elementwise and False in modes:
        g = torch.Generator().manual_seed(SEED)
        big = case.draw(g, dtype, case.bandwidth_batch(), device), case.draw(g, dtype, case.bandwidth_batch(), device)
        for variant in ("torch", "raw"):
            timed_call(case, variant, *big, backward=False)
    agreement = _agreement_with_cpu(case, *inputs[False]) if device != "cpu" and False in modes else None
    if barrier is not None:
        barrier.wait()
    while gate and not os.path.exists(gate):  # other CPU work of the same run still going
        time.sleep(0.5)
    with lock if lock is not None else nullcontext():
        for backward, (p, q) in inputs.items():
            for variant in VARIANTS:
                samples[(variant, backward)] = []
            for _ in range(reps):
                for variant in VARIANTS:  # interleaved, so that drift hits all three alike
                    samples[(variant, backward)].append(timed_call(case, variant, p, q, backward))
        # the first call compiles (symkl.torch._execution): seconds, once per process
        for backward in modes:
            samples[("first call", backward)] = first[("symkl", backward)]
        bandwidth = None
        if big is not None:
            p, q = big
            moved = sum(v.numel() * v.element_size() for v in (*p.values(), *q.values()))
            moved += case.bandwidth_batch() * p[next(iter(p))].element_size()  # the KL written once
            bandwidth = {variant: (moved, statistics.median(
                timed_call(case, variant, p, q, backward=False) for _ in range(10)))
                for variant in ("torch", "raw")}
    from symkl.torch import _execution

    return Result(case, next(k for k, v in DTYPES.items() if v == dtype), samples, bandwidth,
                  tuple(sorted(_execution._failed)), agreement)


def _agreement_with_cpu(case: Case, p: Params, q: Params, numel: int = 50_000) -> float:
    """Max relative difference between the raw generated function compiled on the device and
    evaluated eagerly on the CPU, on the same first ``numel`` inputs. (Not through
    Distribution objects: torch renormalises Categorical probs on each device, with another
    summation order, and the KL then moves by up to 2.7e-7 in float32 from the inputs alone.)"""
    fn = getattr(symkl.torch.functional, case.raw_function)
    args = {f"{k}_{side}": v.detach() for side, vals in (("p", p), ("q", q)) for k, v in vals.items()}
    got = fn(**args, validate=False)[:numel].cpu().double()
    want = fn(**{k: v[:numel].cpu() for k, v in args.items()}, validate=False).double()
    return float(((got - want).abs() / want.abs()).max())


def _measure_in_process(case: Case, dtype: str, backward: bool, reps: int, device: str,  # noqa: ANN001
                        gate: str | None, barrier, lock, results) -> None:  # noqa: ANN001
    """One configuration and mode in its own process (CUDA runs): compile, wait, time, report."""
    torch.set_num_threads(1)
    try:
        results.put(measure(case, DTYPES[dtype], reps, device, modes=(backward,), barrier=barrier,
                            lock=lock, gate=gate))
    except BaseException:  # noqa: BLE001 - report it, and release the others from the barrier
        barrier.abort()
        results.put(traceback.format_exc())


def measure_in_parallel(todo: list[tuple[Case, str]], reps: int, progress: Callable[[str], None],
                        device: str = "cuda", gate: str | None = None) -> list[Result]:
    """Every configuration and mode in its own process: the compiles overlap, the timings do not."""
    context = multiprocessing.get_context("spawn")
    jobs = [(case, dtype, backward) for case, dtype in todo for backward in (False, True)]
    barrier, lock, queue = context.Barrier(len(jobs), timeout=1800), context.Lock(), context.Queue()
    workers = [context.Process(target=_measure_in_process, args=(*job, reps, device, gate, barrier, lock, queue))
               for job in jobs]
    for w in workers:
        w.start()
    merged: dict[tuple[str, str], Result] = {}
    for _ in workers:
        got = queue.get()
        if isinstance(got, str):
            raise RuntimeError(f"a benchmark process failed:\n{got}")
        key = (got.case.title, got.dtype)
        if key in merged:  # the other mode of the same configuration
            done = merged[key]
            done.samples.update(got.samples)
            done.bandwidth = done.bandwidth or got.bandwidth
            done.agreement = got.agreement if done.agreement is None else done.agreement
            done.eager_fallbacks = tuple(sorted({*done.eager_fallbacks, *got.eager_fallbacks}))
            progress(f"{got.dtype} {got.case.title}")
        else:
            merged[key] = got
    for w in workers:
        w.join()
    return [merged[(case.title, dtype)] for case, dtype in todo]


def copy_bandwidth() -> float:
    """Bytes per second of a device-to-device copy of 2 GiB (bytes read plus bytes written)."""
    src = torch.rand(1 << 29, device="cuda")
    dst = torch.empty_like(src)
    times = []
    for _ in range(21):
        torch.cuda.synchronize()
        start = time.perf_counter()
        dst.copy_(src)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 2 * src.numel() * src.element_size() / statistics.median(times[1:])


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


def bandwidth_rows(results: list[Result], copy: float) -> list[list[str]]:
    """Achieved bytes/s (inputs read once + KL written once) as a fraction of the copy rate."""
    out = []
    for r in results:
        if not r.bandwidth:
            continue
        cells = []
        for variant in ("raw", "torch"):
            moved, seconds = r.bandwidth[variant]
            cells += [f"{seconds * 1e3:.3g}", f"{moved / seconds / 1e9:,.0f}", f"{moved / seconds / copy:.0%}"]
        batch = r.case.bandwidth_batch()
        shape = f"{batch:,}" + (" x 10" if r.case.family == "categorical" else "")
        agree = "—" if r.agreement is None else f"{r.agreement:.1e}"
        out.append([r.dtype, r.case.title, shape, f"{r.bandwidth['raw'][0] / 1e6:,.0f}", *cells, agree])
    return out


BANDWIDTH_HEADER = ["dtype", "pair", "batch", "MB moved (min)", "symkl raw ms", "symkl GB/s",
                    "symkl / copy", "torch ms", "torch GB/s", "torch / copy", "vs CPU (rel.)"]


def device_lines(device: str, copy: float | None) -> list[str]:
    if device == "cpu":
        return [f"- device: CPU, `torch.set_num_threads({THREADS})`. CUDA: docs/speed-cuda.md "
                "(`python benchmarks/speed.py --device cuda`, on a machine with a GPU)."]
    return [f"- device: {gpu_line()}; device-to-device copy measured in this run: "
            f"{copy / 1e9:,.0f} GB/s (bytes read + written, 2 GiB float32)."]


def write_doc(results: list[Result], reps: int, quick: bool, device: str = "cpu",
              copy: float | None = None) -> str:
    anchors = "; ".join(
        f"{r.dtype} {r.case.title}: {r.anchor_ms(False):.3g} / {r.anchor_ms(True):.3g}"
        for r in results)
    cuda = device == "cuda"

    def agreement_of(title: str) -> str:
        return ", ".join(f"{r.dtype} {r.agreement:.1e}" for r in results
                         if r.case.title == title and r.agreement is not None) or "not measured"

    fallbacks = sorted({name for r in results for name in r.eager_fallbacks})
    command = "python benchmarks/speed.py" + (" --quick" if quick else "") + (" --device cuda" if cuda else "")
    lines = [
        "# Speed of symkl's KL vs `torch.distributions.kl_divergence`" + (" on CUDA" if cuda else ""),
        "",
        f"Generated by `{command}`; do not edit by hand. Ratios only: symkl time / torch time, "
        "measured in the same run (< 1 means symkl is faster).",
        "",
        *machine_lines(),
        *device_lines(device, copy),
        "",
        "## Method",
        "",
        "- Anchor (the denominator): `torch.distributions.kl_divergence(P, Q)` on the same "
        "inputs, dtype and " + ("device" if cuda else "thread count") + ", timed in the same loop: "
        "each repetition times torch, "
        "symkl.torch.kl_divergence and the raw function back to back, and the ratio reported "
        "is the median over repetitions of (symkl time / torch time in that repetition), so "
        "that load from other processes on the machine hits numerator and denominator alike.",
        "- `symkl.torch.kl_divergence(P, Q)`: the drop-in replacement, on the same Distribution "
        "objects. *raw generated function*: `symkl.torch.functional.kl_<f>_<f>(..., "
        "validate=False)` on the parameter tensors (no Distribution object).",
        "- Distribution objects are built outside the timed region for both (`validate_args=False`), "
        "fresh for every repetition. torch's MultivariateNormal built from `covariance_matrix` "
        "computes its Cholesky factor in the constructor (untimed); symkl takes that factor in "
        "float64, and in narrower dtypes factors `covariance_matrix` in float64 inside its timed "
        "call (a float32 factor's rounding moved the KL by up to 443 ULP). *MVN from "
        "scale_tril*: objects built from the factor, as VAE-style code does: neither side "
        "factors anything.",
        "- Execution: `symkl.torch` evaluates every formula in float64 (float32 results rounded "
        "once, with the kernels' NARROW variants) and, in its default mode `auto`, runs inputs "
        "of >= 65,536 elements through `torch.compile` (inductor); functions with the lnGamma "
        "kernel (Gamma, Beta) compile with `realize_reads_threshold=2` (a ~1 minute first compile "
        "instead of ~3). See `symkl/torch/_execution.py`.",
        "- *forward*: the call. *forward+backward*: every parameter `requires_grad`, the call "
        "plus `.sum().backward()` (which includes backward through the constructors' graph, "
        "e.g. torch's Cholesky).",
        f"- {reps} repetitions after 1 warm-up call per variant.",
        *(["- CUDA: each call is bracketed by `torch.cuda.synchronize()` and a host clock, so the "
           "times include Python and launch overhead, as a training step sees them. Every "
           "(pair, dtype, mode) runs in its own process: the processes compile at the same time, "
           "wait for each other, then time one at a time (a lock), with no compile running."]
          if cuda else []),
        "- Batch sizes are in the pair column"
        + (" (--quick: the full run's / 10)" if quick else "")
        + ". Full run: 1e6 (Categorical 1e5 x 10 classes = 1e6 probabilities per side, MVN "
        "1e4 x dim 16), forward+backward included (symkl's kernels save only their inputs "
        "for the backward: symkl/kernels/_partials.py).",
        "- Inputs drawn in float64 (fixed seed) and cast: Normal loc ~ N(0, 1), scale = e^U(-1,1); "
        "Gamma concentration e^U(-1,2), rate e^U(-1,1); Beta concentrations e^U(-1,2); "
        "Categorical probs = softmax(N(0, 1)) over 10 classes; MVN dim 16, covariance A A^T / 16 + I / 2 "
        "(MVN from scale_tril: its Cholesky factor, computed in float64).",
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
        "Functions that fell back to eager execution because `torch.compile` failed: "
        + (", ".join(fallbacks) if fallbacks else "none") + ".",
        "",
    ]
    if cuda and copy:
        lines += [
            "## Memory bandwidth (elementwise pairs)",
            "",
            f"Forward only, {BANDWIDTH_NUMEL:,} elements per parameter (Categorical: "
            f"{BANDWIDTH_NUMEL // 10:,} rows x 10 classes), median of 10 calls after a warm-up. "
            "*MB moved (min)*: every input read once and the KL written once, the least any "
            "implementation must move; GB/s = that / time, and the fraction is of the "
            "device-to-device copy rate measured in this run (the practical ceiling). torch's "
            "formulas make one memory pass per operation, so they move many times these bytes.",
            "",
            markdown_table(BANDWIDTH_HEADER, bandwidth_rows(results, copy), [False, False] + [True] * 9),
            "",
            "*vs CPU (rel.)*: the largest relative difference between the raw generated function "
            "compiled for CUDA and evaluated eagerly on the CPU, on the same inputs, over the first "
            "50,000 points of the forward batch (MVN: " + agreement_of("MVN") + "); one ulp is "
            "1.1e-16 to 2.2e-16 in float64 and 6e-8 to 1.2e-7 in float32.",
            "",
        ]
    lines += [
        "## First call",
        "",
        "The warm-up call of `symkl.torch.kl_divergence` in each configuration, in units of "
        "torch's median call time: where symkl compiles, this is the one-time compilation "
        "(inductor caches it on disk, so a later process pays seconds, not this). With a warm "
        "cache from an earlier run the figures are much smaller."
        + (" On CUDA the compiles ran side by side, so each is slower than alone." if cuda else ""),
        "",
        markdown_table(["dtype", "pair", "forward", "forward+backward"], first_call_rows(results),
                       [False, False, True, True]),
        "",
    ]
    text = "\n".join(lines)
    (DOCS / ("speed-cuda.md" if cuda else "speed.md")).write_text(text)
    return text


def main() -> None:
    from rich.console import Console
    from rich.progress import Progress

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batches / 10, 3 repetitions")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cpu writes docs/speed.md, cuda docs/speed-cuda.md")
    parser.add_argument("--gate", metavar="FILE",
                        help="cuda: compile, then wait for FILE to exist before timing (lets a "
                             "script finish other CPU work first)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch.cuda.is_available() is False")
    reps = 3 if args.quick else REPS[args.device]
    torch.set_num_threads(THREADS)
    console = Console()
    console = console if console.is_terminal else Console(width=160)
    start = time.perf_counter()
    todo = [(c, d) for d in DTYPES for c in cases(10 if args.quick else 1)]
    copy = None
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("speed", total=len(todo))
        if args.device == "cuda":
            results = measure_in_parallel(todo, reps, lambda done: progress.update(
                task, advance=1, description=f"done: {done}"), gate=args.gate)
            copy = copy_bandwidth()
        else:
            results = []
            for case, dtype in todo:
                progress.update(task, description=f"{dtype} {case.title}")
                results.append(measure(case, DTYPES[dtype], reps))
                progress.advance(task)
    write_doc(results, reps, args.quick, args.device, copy)
    console.print(rich_table("symkl time / torch.distributions time (< 1: symkl faster)", HEADER,
                             rows(results), RIGHT))
    if copy:
        console.print(rich_table("memory bandwidth", BANDWIDTH_HEADER, bandwidth_rows(results, copy),
                                 [False, False] + [True] * 9))
    name = "speed-cuda.md" if args.device == "cuda" else "speed.md"
    console.print(f"wrote {DOCS / name} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
