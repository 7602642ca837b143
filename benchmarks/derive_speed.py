"""Derivation speed: the whole catalogue from an empty cache, then from a warm on-disk cache.

Each phase runs in a fresh Python process (so no in-memory cache helps) against the same
temporary cache directory. Brute-force integration cross-checks are excluded.
Targets on a 2-core machine: cold <= 60 s, warm <= 2 s.

    python benchmarks/derive_speed.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap

WORKER = textwrap.dedent(
    """
    import json, time
    t0 = time.perf_counter()
    import symkl
    t_import = time.perf_counter() - t0
    timings = []
    for p, q in symkl.pairs():
        jobs = [("kl", (p, q)), ("cross_entropy", (p, q))]
        if p == q:
            jobs.append(("entropy", (p,)))
        for quantity, args in jobs:
            t = time.perf_counter()
            d = getattr(symkl, quantity)(*args)
            assert d.checked, (quantity, args)
            timings.append([quantity, list(args), time.perf_counter() - t])
    print(json.dumps({"import": t_import, "total": time.perf_counter() - t0, "timings": timings}))
    """
)


def run_phase(cache_dir: str) -> dict:
    env = {**os.environ, "SYMKL_CACHE_DIR": cache_dir, "SYMKL_CACHE": "1"}
    out = subprocess.run([sys.executable, "-c", WORKER], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    with tempfile.TemporaryDirectory() as cache_dir:
        cold = run_phase(cache_dir)
        warm = run_phase(cache_dir)
    console = Console()
    table = Table(title="symkl derive: whole catalogue (KL, cross-entropy, entropy)")
    for col in ("phase", "derivations", "import [s]", "total incl. import [s]", "target [s]"):
        table.add_column(col, justify="right")
    n = len(cold["timings"])
    table.add_row("cold (empty cache)", str(n), f"{cold['import']:.2f}", f"{cold['total']:.2f}", "60")
    table.add_row("warm (on-disk cache)", str(n), f"{warm['import']:.2f}", f"{warm['total']:.2f}", "2")
    console.print(table)
    slow = Table(title="slowest derivations (cold; a KL includes its cross-entropy, entropy and identities)")
    slow.add_column("quantity")
    slow.add_column("families")
    slow.add_column("seconds", justify="right")
    for quantity, args, seconds in sorted(cold["timings"], key=lambda r: -r[2])[:8]:
        slow.add_row(quantity, " || ".join(args), f"{seconds:.2f}")
    console.print(slow)
    ok = cold["total"] <= 60 and warm["total"] <= 2
    console.print(f"targets met: {ok}")


if __name__ == "__main__":
    main()
