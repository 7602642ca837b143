"""The generated blocks of ``mkdocs.yml``'s navigation.

MkDocs has no glob in ``nav``, and the pair and family pages follow the catalogue, so
``symkl docs`` rewrites the lines between two marker comments and leaves the rest of the
hand-written file alone::

      # BEGIN symkl docs: pairs (generated; do not edit)
      - "Normal || Normal": pairs/normal-normal.md
      # END symkl docs: pairs
"""

from __future__ import annotations

import json


class NavMarkerError(ValueError):
    """mkdocs.yml lacks (or garbles) the marker comments of a generated block."""


def begin_marker(block: str) -> str:
    return f"# BEGIN symkl docs: {block} (generated; do not edit)"


def end_marker(block: str) -> str:
    return f"# END symkl docs: {block}"


def entry(title: str, path: str) -> str:
    # JSON string quoting is valid YAML and survives titles with ':' or '|'.
    return f"- {json.dumps(title)}: {path}"


def replace_block(text: str, block: str, entries: list[str]) -> str:
    """``text`` (mkdocs.yml) with the lines between ``block``'s markers replaced by
    ``entries``, indented like the BEGIN marker."""
    lines = text.split("\n")
    begin = [n for n, line in enumerate(lines) if line.strip() == begin_marker(block)]
    end = [n for n, line in enumerate(lines) if line.strip() == end_marker(block)]
    if len(begin) != 1 or len(end) != 1 or end[0] < begin[0]:
        raise NavMarkerError(
            f"mkdocs.yml must contain the lines '{begin_marker(block)}' and '{end_marker(block)}', "
            f"once each and in that order, inside nav (found {len(begin)} and {len(end)})")
    line = lines[begin[0]]
    pad = line[: len(line) - len(line.lstrip())]
    return "\n".join(lines[: begin[0] + 1] + [pad + e for e in entries] + lines[end[0]:])
