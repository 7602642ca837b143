"""Shared test set-up: a private derivation cache, so tests never read a stale user cache."""

from __future__ import annotations

import os
import tempfile

# Set before symkl is imported by any test module: the cache directory is read lazily,
# but every test run should start from its own empty cache, not ~/.cache/symkl.
os.environ.setdefault("SYMKL_CACHE_DIR", tempfile.mkdtemp(prefix="symkl-test-cache-"))
