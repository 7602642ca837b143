"""The on-disk cache: keyed by versions and source fingerprint, round-trips derivations."""

from __future__ import annotations

from pathlib import Path

import pytest

import symkl
from symkl import cache


def test_roundtrip_and_version_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMKL_CACHE_DIR", str(tmp_path))
    d = symkl.kl("poisson", "poisson", cache=False)
    key = ("kl", "poisson", "poisson", (), ())
    cache.store(key, d)
    name = cache.directory().name
    assert name.startswith(f"symkl-{symkl.__version__}-sympy-")
    loaded = cache.load(key)
    assert loaded is not None and loaded.formula == d.formula and loaded.checked
    assert cache.clear() == 1 and cache.load(key) is None


def test_disabled_and_corrupt_entries_are_misses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMKL_CACHE_DIR", str(tmp_path))
    key = ("entropy", "normal", None, (), ())
    cache.store(key, {"x": 1})
    path = next(cache.directory().glob("*.pickle"))
    path.write_bytes(b"not a pickle")
    assert cache.load(key) is None
    monkeypatch.setenv("SYMKL_CACHE", "0")
    cache.store(key, {"x": 1})
    assert cache.load(key) is None
