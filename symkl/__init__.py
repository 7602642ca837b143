"""symkl: symbolic derivation of KL divergence, entropy and cross-entropy, step by step.

>>> import symkl
>>> d = symkl.kl("normal", "normal")
>>> d.result
"""

from symkl._version import __version__
from symkl.api import cross_entropy, entropy, families, kl, pairs
from symkl.derivation import Derivation, Step
from symkl.errors import UnknownFamilyError, UnsupportedPairError

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
    "pairs",
]
