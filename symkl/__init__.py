"""symkl: symbolic derivation of KL divergence, entropy and cross-entropy, step by step.

>>> import symkl
>>> d = symkl.kl("normal", "normal")
>>> d.result
"""

from symkl._version import __version__
from symkl.api import cross_entropy, entropy, families, kl, pairs
from symkl.derivation import Derivation, Step
from symkl.errors import UnknownFamilyError, UnsupportedPairError
from symkl.likelihood import mle


def __getattr__(name: str):  # noqa: ANN202 - the verification engine loads on first use
    if name == "verify":
        import symkl.verify  # a callable module: symkl.verify(...) runs the verification

        return symkl.verify
    raise AttributeError(f"module 'symkl' has no attribute {name!r}")


__all__ = [
    "Derivation",
    "Step",
    "UnknownFamilyError",
    "UnsupportedPairError",
    "__version__",
    "cross_entropy",
    "entropy",
    "families",
    "kl",
    "mle",
    "pairs",
    "verify",
]
