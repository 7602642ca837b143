"""The generated torch code of a pair or family, read from ``symkl/generated``.

The generated module is the single source: which functions exist comes from the spec table
``symkl.torch.functional.FUNCTIONS`` (``name -> (quantity, p, q)``), their text from the
module's source, and what was *not* generated (with the reason) from the module's
``# not generated:`` comments, which ``symkl codegen`` writes.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from functools import lru_cache

_NOT_GENERATED = re.compile(r"^# not generated: (\w+): (.*)$", re.MULTILINE)
#: Calls into the hand-written kernels: ``kernels.lgamma_bregman(``, ``linalg.logdet_tril(``.
_KERNEL_CALL = re.compile(r"\b((?:kernels|linalg)\.\w+)\(")


@dataclass(frozen=True)
class GeneratedFunction:
    name: str
    source: str

    @property
    def kernels(self) -> list[str]:
        """The kernel functions this formula calls, sorted (``kernels.digamma`` ...)."""
        return sorted(set(_KERNEL_CALL.findall(self.source)))


@lru_cache(maxsize=1)
def _module():  # noqa: ANN202 - the generated module; imports torch, so only when needed
    from symkl.generated import torch_functions

    return torch_functions


def functions(quantity: str, p: str, q: str | None) -> list[GeneratedFunction]:
    """The generated torch functions of one quantity of a pair (or of a family's entropy).

    The plain ``kl_p_q`` comes first, then its specialisations (``kl_normal_normal_logvar``,
    ``kl_vae`` ...) by name.
    """
    from symkl.torch.functional import FUNCTIONS

    module = _module()
    names = [n for n, spec in FUNCTIONS.items() if tuple(spec) == (quantity, p, q)]
    plain = "_".join(x for x in (quantity, p, q) if x)
    names.sort(key=lambda n: (n != plain, n))
    return [GeneratedFunction(n, inspect.getsource(getattr(module, n)).rstrip("\n")) for n in names]


def not_generated() -> dict[str, str]:
    """``{function name: reason}`` for the results ``symkl codegen`` could not generate."""
    source = inspect.getsource(_module())
    return dict(sorted(_NOT_GENERATED.findall(source)))
