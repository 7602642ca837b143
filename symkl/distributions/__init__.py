"""The distribution catalogue: one module per family, each defining ``FAMILY``.

Modules are discovered automatically, so adding a family is adding one file here.
"""

from __future__ import annotations

import importlib
import pkgutil

from symkl.errors import UnknownFamilyError
from symkl.family import Family


def _discover() -> dict[str, Family]:
    found: dict[str, Family] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        family = getattr(module, "FAMILY", None)
        if isinstance(family, Family):
            found[family.name] = family
    return found


REGISTRY: dict[str, Family] = _discover()
_ALIASES: dict[str, str] = {a: f.name for f in REGISTRY.values() for a in f.aliases}


def get(name: str) -> Family:
    """Look a family up by name or alias (case-insensitive, '-' and '_' equivalent)."""
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in REGISTRY:
        raise UnknownFamilyError(name, REGISTRY, _ALIASES)
    return REGISTRY[key]


def pairs() -> list[tuple[str, str]]:
    """Every (P, Q) pair in the catalogue: all self-pairs and each family's declared partners."""
    out = {(f.name, f.name) for f in REGISTRY.values()}
    out |= {(f.name, q) for f in REGISTRY.values() for q in f.kl_partners}
    return sorted(out)
