"""On-disk cache of derivations, keyed by symkl and SymPy versions.

Derivations are pure functions of (quantity, families, fixed values) and of the code that
derives them, so a cache entry is valid exactly as long as the symkl version, the SymPy
version and the package's source (a fingerprint of its .py files, so that editing a family
file during development never serves a stale derivation) all match. The cache lives in
``$SYMKL_CACHE_DIR`` or ``~/.cache/symkl``; ``SYMKL_CACHE=0`` disables it.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from functools import lru_cache
from pathlib import Path
from typing import Any

import sympy

from symkl._version import __version__


@lru_cache(maxsize=1)
def _source_fingerprint() -> str:
    package = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def directory() -> Path:
    root = Path(os.environ.get("SYMKL_CACHE_DIR", Path.home() / ".cache" / "symkl"))
    return root / f"symkl-{__version__}-sympy-{sympy.__version__}-{_source_fingerprint()}"


def enabled() -> bool:
    return os.environ.get("SYMKL_CACHE", "1") not in ("0", "false", "no")


def _path(key: tuple) -> Path:
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:24]
    return directory() / f"{key[0]}-{key[1]}-{key[2]}-{digest}.pickle"


def load(key: tuple) -> Any | None:
    if not enabled():
        return None
    path = _path(key)
    try:
        with path.open("rb") as fh:
            return pickle.load(fh)
    except FileNotFoundError:
        return None
    except Exception:  # noqa: BLE001 - a corrupt or stale entry is a miss, then rewritten
        return None


def store(key: tuple, value: Any) -> None:
    if not enabled():
        return
    path = _path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)  # atomic: concurrent writers never expose a partial file


def clear() -> int:
    """Remove this version's entries; returns how many were removed."""
    removed = 0
    for f in directory().glob("*.pickle"):
        f.unlink()
        removed += 1
    return removed
