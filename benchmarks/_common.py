"""Helpers shared by the numeric benchmarks: machine description and table output."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Sequence

import torch

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def cpu_name() -> str:
    """The CPU model as the OS reports it (Linux /proc/cpuinfo, else platform)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    name = found.group(1).strip() if found else (platform.processor() or platform.machine())
    cores = len(re.findall(r"^processor\s*:", text, re.MULTILINE)) or None
    return f"{name}" + (f", {cores} logical cores" if cores else "")


def gpu_line() -> str:
    """The CUDA device's name, memory and the CUDA version torch was built with."""
    props = torch.cuda.get_device_properties(0)
    return (f"{props.name}, {props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs, "
            f"CUDA {torch.version.cuda}")


def symkl_revision() -> str:
    """The git commit of the checkout, and whether symkl/ differs from it.

    ``SYMKL_REVISION`` names it where the tree is a copy without git history (a benchmark
    run on another machine).
    """
    if os.environ.get("SYMKL_REVISION"):
        return f"commit {os.environ['SYMKL_REVISION']}"
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--", "symkl")
    except OSError:
        return "unknown (no git)"
    return f"commit {commit}" + (" + uncommitted changes in symkl/" if dirty else "") if commit else "unknown"


def machine_lines() -> list[str]:
    """Markdown bullet lines naming symkl's revision, torch, Python and the CPU."""
    return [
        f"- symkl: {symkl_revision()}",
        f"- torch {torch.__version__}, Python {platform.python_version()}, {platform.system()}",
        f"- CPU: {cpu_name()}",
    ]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    """A GitHub Markdown table; ``right`` says which columns are right-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if r else ":---" for r in right) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def rich_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]):
    from rich.table import Table

    table = Table(title=title)
    for name, r in zip(header, right):
        table.add_column(name, justify="right" if r else "left")
    for row in rows:
        table.add_row(*row)
    return table
