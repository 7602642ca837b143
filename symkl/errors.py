"""Errors with messages that say what exists and what was probably meant."""

from __future__ import annotations

import difflib
from typing import Iterable


def closest(name: str, candidates: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(name.lower(), list(candidates), n=1, cutoff=0.5)
    return matches[0] if matches else None


class UnknownFamilyError(KeyError, ValueError):
    """A family name that is not in the catalogue."""

    def __init__(self, name: str, known: Iterable[str], aliases: dict[str, str] | None = None):
        known = sorted(known)
        aliases = aliases or {}
        hint = closest(name, [*known, *aliases])
        hint = aliases.get(hint, hint) if hint else None
        self.name = name
        self.message = (
            f"unknown family {name!r}"
            + (f"; did you mean {hint!r}?" if hint else "")
            + f" Known families: {', '.join(known)}"
        )
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class UnsupportedPairError(NotImplementedError):
    """A (P, Q) pair that the catalogue does not cover."""

    def __init__(self, p: str, q: str, pairs: Iterable[tuple[str, str]]):
        listed = ", ".join(f"{a}||{b}" for a, b in sorted(pairs))
        self.message = f"KL({p} || {q}) is not in the catalogue. Supported pairs: {listed}"
        super().__init__(self.message)
