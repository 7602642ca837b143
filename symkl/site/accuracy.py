"""The accuracy of a pair's generated KL, read from ``docs/accuracy.md``.

``benchmarks/accuracy.py`` writes that page; we read it rather than rerun the benchmark
(minutes, and machine-dependent). What is parsed, and nothing more: under each heading
``## float64`` / ``## float32``, the first Markdown table; its header row names the columns,
and the columns are looked up by name (:data:`COLUMNS`), so reordered or added columns do not
break the site. A missing heading or column raises :class:`AccuracyFormatError` naming it.
The benchmark measures self-pairs only (``pair`` is one family name).
"""

from __future__ import annotations

import re
from pathlib import Path

DTYPES = ("float64", "float32")

#: The columns shown on a pair page (accuracy.md header -> page header).
COLUMNS = {
    "regime": "regime",
    "n": "n",
    "symkl max": "symkl max ULP",
    "symkl median": "symkl median ULP",
    "symkl NaN/neg": "symkl NaN/neg",
    "torch max": "torch max ULP",
    "torch NaN/neg": "torch NaN/neg",
    "target": "target",
    "meets target": "meets target",
}
_KEY = "pair"


class AccuracyFormatError(ValueError):
    """docs/accuracy.md does not have the structure this parser reads."""


def _split_row(line: str) -> list[str]:
    # Cells may contain escaped pipes (\|); split on the others only.
    cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [c.strip().replace(r"\|", "|") for c in cells]


def _first_table(lines: list[str], start: int) -> list[list[str]]:
    rows: list[list[str]] = []
    for line in lines[start:]:
        if line.startswith("#") and rows:
            break
        if line.startswith("|"):
            rows.append(_split_row(line))
        elif rows:
            break
    return rows


def load(path: Path) -> dict[str, list[dict[str, str]]]:
    """``{dtype: [row as {column: cell}]}`` for the float64 and float32 tables of ``path``."""
    if not path.exists():
        raise AccuracyFormatError(f"{path} does not exist; run 'python benchmarks/accuracy.py'")
    lines = path.read_text().splitlines()
    tables: dict[str, list[dict[str, str]]] = {}
    for dtype in DTYPES:
        heading = f"## {dtype}"
        try:
            start = lines.index(heading)
        except ValueError:
            raise AccuracyFormatError(f"{path}: no '{heading}' heading (the accuracy tables sit under "
                                      f"'## float64' and '## float32')") from None
        rows = _first_table(lines, start + 1)
        if len(rows) < 2:
            raise AccuracyFormatError(f"{path}: no table under '{heading}'")
        header, body = rows[0], rows[2:]  # rows[1] is the alignment rule
        missing = [c for c in (_KEY, *COLUMNS) if c not in header]
        if missing:
            raise AccuracyFormatError(f"{path}: the '{heading}' table has no column(s) {missing}; "
                                      f"its columns are {header}")
        tables[dtype] = [dict(zip(header, row)) for row in body]
    return tables


def rows_for(tables: dict[str, list[dict[str, str]]], family: str) -> dict[str, list[list[str]]]:
    """The shown columns of ``family``'s rows, per dtype (empty when it was not measured)."""
    return {dtype: [[row[c] for c in COLUMNS] for row in rows if row[_KEY] == family]
            for dtype, rows in tables.items()}
