"""Inductor CPU code patterns symkl's kernels avoid, as ratios to an anchor in the same run.

Each case is a function compiled with ``torch.compile(fullgraph=True)`` on float64 arrays of
1e6 elements; the anchor is the same-shaped select on one comparison. The ratios show why
symkl writes ``a & b`` as ``torch.where(a, b, False)`` (symkl.kernels.torch.both), sums a
short last axis through the ``symkl::sum_last`` operator (symkl.kernels.torch.sum_last) and
compiles with gradients so that no boolean mask is saved for the backward
(symkl.torch._execution.PARTITION_CONFIG).
Rerun on a new torch to see whether the workarounds are still needed:

    python benchmarks/masks.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from _common import machine_lines, markdown_table

from symkl.kernels.torch import sum_last

N = 10**6
REPEATS = 41


def anchor(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(a < 0.5, a * b, b)


def bitwise_and(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where((a < 0.5) & (b < 0.5), a * b, b)


def select_and(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.where(a < 0.5, b < 0.5, False), a * b, b)


def bitwise_or(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where((a < 0.5) | (b < 0.5), a * b, b)


def select_or(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.where(a < 0.5, True, b < 0.5), a * b, b)


def rows(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return a.reshape(-1, 10), b.reshape(-1, 10)


def inductor_sum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    x, y = rows(a, b)
    return torch.where(x < 0.5, x * y, y).sum(-1)


def operator_sum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    x, y = rows(a, b)
    return sum_last(torch.where(x < 0.5, x * y, y))


def bool_output(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.where(a < 0.5, a * b, b), a < 0.5


def float_output(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.where(a < 0.5, a * b, b), torch.where(a < 0.5, 1.0, 0.0)


CASES: list[tuple[str, Callable, str]] = [
    ("`where((a < c) & (b < c), ..)`", bitwise_and, "symkl: no"),
    ("`where(where(a < c, b < c, False), ..)`", select_and, "symkl: `both`"),
    ("`where((a < c) | (b < c), ..)`", bitwise_or, "symkl: no"),
    ("`where(where(a < c, True, b < c), ..)`", select_or, "symkl: `either`"),
    ("`where(..).sum(-1)` over rows of 10", inductor_sum, "symkl: no"),
    ("`sum_last(where(..))` over rows of 10", operator_sum, "symkl: `sum_last`"),
    ("`where(..)` and the mask `a < c` as a second output", bool_output, "symkl: no (saved for backward)"),
    ("`where(..)` and the mask as float64", float_output, "(for comparison)"),
]


def main() -> None:
    torch.manual_seed(0)
    a, b = torch.rand(N, dtype=torch.float64), torch.rand(N, dtype=torch.float64)
    compiled = {f: torch.compile(f, fullgraph=True) for f in [anchor] + [case[1] for case in CASES]}
    for f in compiled.values():
        f(a, b)
    ratios: dict[Callable, list[float]] = {case[1]: [] for case in CASES}
    for _ in range(REPEATS):  # anchor and case back to back: load hits both alike
        for _, f, _ in CASES:
            start = time.perf_counter()
            compiled[anchor](a, b)
            middle = time.perf_counter()
            compiled[f](a, b)
            ratios[f].append((time.perf_counter() - middle) / (middle - start))
    table = markdown_table(["compiled function", "time / anchor (median)", "used by"],
                           [[name, f"{statistics.median(ratios[f]):.2f}", use] for name, f, use in CASES],
                           [False, True, False])
    print("\n".join(machine_lines()))
    print(f"- {torch.get_num_threads()} threads, float64, {N:,} elements; anchor: `where(a < c, a * b, b)`\n")
    print(table)


if __name__ == "__main__":
    main()
