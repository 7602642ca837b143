"""The verification status of a pair or family, read from the committed JSON of
``symkl verify --all --json docs/data/verification.json``.

Only what is reproducible is read: each check's unit, name, outcome, measure, worst error,
tolerance and number of points. The run's wall time (``seconds``) is ignored, so pages do
not change when the same verification runs faster or slower.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from symkl.verify.report import CheckResult


class VerificationDataError(ValueError):
    """The verification JSON is missing or lacks a field the site reads."""


def outcome(check: CheckResult) -> str:
    """The check's verdict as the pages show it."""
    if check.informational:
        return "informational" if check.passed else "disagrees (informational)"
    return "passed" if check.passed else "**FAILED**"


def worst(check: CheckResult) -> str:
    """The worst error with its unit: ``0.5 ULP``, ``44.6 digits``, ``|z| = 1.2``."""
    value = ("inf" if check.error > 0 else "-inf") if math.isinf(check.error) else f"{check.error:.3g}"
    return {"ulp": f"{value} ULP", "digits": f"{value} digits", "|z|": f"|z| = {value}",
            "rel": f"{value} relative"}.get(check.measure, f"{value} {check.measure}")


_FIELDS = ("unit", "check", "passed", "measure", "error", "tolerance", "points")


def _number(value: object) -> float:
    return float(value)  # JSON spells inf / nan as strings; float() reads them back


def load(path: Path) -> dict[str, list[CheckResult]]:
    """``{unit: [CheckResult]}``, e.g. ``"kl(normal || normal)"``, in the report's order."""
    if not path.exists():
        raise VerificationDataError(
            f"{path} does not exist; create it with 'symkl verify --all --json {path}'")
    data = json.loads(path.read_text())
    by_unit: dict[str, list[CheckResult]] = {}
    for n, raw in enumerate(data.get("checks", [])):
        missing = [f for f in _FIELDS if f not in raw]
        if missing:
            raise VerificationDataError(f"{path}: check #{n} has no field(s) {missing}")
        # The report's own record; worst point and detail are left out (run-specific text)
        check = CheckResult(raw["unit"], raw["check"], bool(raw["passed"]), raw["measure"],
                      _number(raw["error"]), _number(raw["tolerance"]), int(raw["points"]),
                      informational=bool(raw.get("informational", False)))
        by_unit.setdefault(check.unit, []).append(check)
    if not by_unit:
        raise VerificationDataError(f"{path} holds no checks")
    return by_unit


def unit_name(quantity: str, p: str, q: str | None) -> str:
    """The unit's name as ``symkl verify`` writes it: ``kl(normal || normal)``, ``entropy(beta)``."""
    return f"{quantity}({p})" if q is None else f"{quantity}({p} || {q})"
