"""The structured result of a verification run, and its JSON and Markdown forms."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class CheckResult:
    """One check of one unit (quantity and pair) over its points.

    ``error`` is the worst error in ``measure`` (``"ulp"``: units in the last place of the
    reference in the checked dtype; ``"digits"``: significant digits of agreement, where
    larger is better; ``"|z|"``: Monte Carlo z-score; ``"rel"``: relative error), and
    ``worst`` names the point where it occurred, with its values.
    """

    unit: str
    check: str
    passed: bool
    measure: str
    error: float
    tolerance: float
    points: int
    worst: str = ""
    detail: str = ""
    #: Checks that inform rather than decide (torch.distributions' own errors).
    informational: bool = False

    def message(self) -> str:
        status = "ok" if self.passed else ("disagrees" if self.informational else "FAILED")
        shown = ("inf" if self.error > 0 else "-inf") if math.isinf(self.error) else f"{self.error:.3g}"
        text = f"{self.unit}: {self.check}: {status} (worst {self.measure} {shown}, tolerance {self.tolerance:g})"
        if self.detail:
            text += f": {self.detail}"
        if self.worst and not self.passed:
            text += f"; worst point {self.worst}"
        return text


@dataclass
class Disagreement:
    """``torch.distributions`` against reference A at one point, attributed."""

    unit: str
    dtype: str
    point: str
    torch_ulp: float
    symkl_ulp: float
    wrong: str  # "torch.distributions", "symkl", "both"


@dataclass
class Report:
    checks: list[CheckResult] = field(default_factory=list)
    disagreements: list[Disagreement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """Every deciding check passed (torch.distributions' own errors do not count)."""
        return not self.failures()

    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed and not c.informational]

    def units(self) -> list[str]:
        return list(dict.fromkeys(c.unit for c in self.checks))

    def summary(self) -> str:
        failed = self.failures()
        text = (f"{len(self.units())} units, {len(self.checks)} checks, {len(failed)} failed "
                f"in {self.seconds:.0f} s")
        return text + "".join("\n  " + c.message() for c in failed)

    # -- serialisation -------------------------------------------------------------------------

    def to_json(self) -> str:
        def clean(value: Any) -> Any:  # JSON has no inf/nan: spell them as strings
            if isinstance(value, float) and not math.isfinite(value):
                return str(value)
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list):
                return [clean(v) for v in value]
            return value

        return json.dumps(clean({"passed": self.passed, **asdict(self)}), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Report:
        """The report that :meth:`to_json` wrote (``"inf"``/``"nan"`` strings back to floats)."""
        data = json.loads(text)

        def number(value: Any) -> Any:
            return float(value) if value in ("inf", "-inf", "nan") else value

        checks = [CheckResult(**{k: number(v) for k, v in c.items()}) for c in data["checks"]]
        disagreements = [Disagreement(**{k: number(v) for k, v in d.items()}) for d in data["disagreements"]]
        return cls(checks, disagreements, data["notes"], data["settings"], data["seconds"])

    def to_markdown(self, title: str = "Verification report") -> str:
        from symkl.verify.markdown import render  # formatting only, kept apart from the data

        return render(self, title)
