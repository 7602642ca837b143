"""Drop-in numeric KL, entropy and cross-entropy for ``torch.distributions`` objects.

    >>> import torch, symkl.torch
    >>> p = torch.distributions.Gamma(torch.tensor(3.0), torch.tensor(2.0))
    >>> q = torch.distributions.Gamma(torch.tensor(3.0), torch.tensor(2.0 * (1 + 1e-6)))
    >>> symkl.torch.kl_divergence(p, q)   # accurate where torch's loses its digits

The catalogue family of each object is found from ``Family.torch_class`` (the one place that
says how torch spells a family); parameters are read by their torch names, so
MultivariateNormal built from ``scale_tril`` or ``precision_matrix`` and Categorical or
Bernoulli built from ``logits`` all work. ``register()`` installs the rules into torch's own
registry.
"""

from __future__ import annotations

import difflib
import functools
from typing import Any

import torch
import torch.distributions as td

from symkl import distributions
from symkl.family import Family
from symkl.kernels import linalg_torch as linalg
from symkl.torch import functional
from symkl.torch._execution import compile_mode, set_compile_mode
from symkl.torch.functional import FUNCTIONS

__all__ = ["kl_divergence", "entropy", "cross_entropy", "register", "functional", "supported",
           "compile_mode", "set_compile_mode"]


def _family_of(dist: td.Distribution) -> tuple[Family, td.Distribution]:
    """The catalogue family of a torch distribution, and the object that holds its
    parameters by their torch names (the base of an Independent)."""
    for family in distributions.REGISTRY.values():
        if family.torch_class == type(dist).__name__ and not isinstance(dist, td.Independent):
            return family, dist
        if (
            isinstance(dist, td.Independent)
            and family.torch_class == f"Independent({type(dist.base_dist).__name__}, "
            f"{dist.reinterpreted_batch_ndims})"
        ):
            return family, dist.base_dist
    known = sorted(f.torch_class for f in distributions.REGISTRY.values())
    raise NotImplementedError(
        f"symkl has no family for {_describe(dist)}; supported torch classes: {', '.join(known)}"
    )


def _describe(dist: td.Distribution) -> str:
    if isinstance(dist, td.Independent):
        return f"Independent({type(dist.base_dist).__name__}, {dist.reinterpreted_batch_ndims})"
    return type(dist).__name__


def supported(quantity: str = "kl") -> list[tuple[str, ...]]:
    """The (P, Q) pairs (or families, for entropy) with generated code."""
    return sorted(tuple(x for x in spec[1:] if x) for spec in FUNCTIONS.values() if spec[0] == quantity)


def _call(quantity: str, dists: tuple[td.Distribution, ...]) -> torch.Tensor:
    found = [_family_of(d) for d in dists]
    name = "_".join([quantity] + [f.name for f, _ in found])
    if name not in FUNCTIONS:
        pairs = ", ".join(" || ".join(p) for p in supported(quantity))
        described = " || ".join(_describe(d) for d in dists)
        hint = difflib.get_close_matches(name, list(FUNCTIONS), n=1)
        raise NotImplementedError(
            f"symkl has no {quantity} for {described}; supported: {pairs}"
            + (f" (closest: {hint[0]})" if hint else "")
        )
    # MultivariateNormal holds its Cholesky factor: use the variant that takes it, except in
    # narrow dtypes where every object keeps the covariance it was built from: symkl then
    # factors those exact matrices in float64, inside the function (see _scale_tril).
    tril = name + "_tril" in FUNCTIONS and not (any(d.loc.dtype != torch.float64 for d in dists)
                                                 and all("covariance_matrix" in vars(d) for d in dists))
    args: dict[str, Any] = {}
    for suffix, (family, holder) in zip(("p", "q"), found):
        for param in family.params:
            # Read only what the function takes: torch derives the parameters an object was
            # not built from on first access (covariance_matrix = L L^T from scale_tril, a
            # batched product that autograd then carried: 1e4 x 16 x 16 float32 KL from
            # scale_tril-built objects 1.35 (2.72) times torch's time, raw function 0.72 (1.42)).
            tril_of_covariance = tril and param.name == "covariance_matrix"
            pname = "scale_tril" if tril_of_covariance else param.name
            value = _scale_tril(holder) if tril_of_covariance else getattr(holder, pname)
            args[pname if quantity == "entropy" else f"{pname}_{suffix}"] = value
    name = name + "_tril" if tril else name
    # The distributions validated their parameters when they were built (validate_args).
    out = getattr(functional, name)(**args, validate=False)
    if tril:  # a float64 factor of a narrow object promoted the result: round it once
        out = out.to(functools.reduce(torch.promote_types, (d.loc.dtype for d in dists)))
    batch = torch.broadcast_shapes(*(d.batch_shape for d in dists))
    return out.expand(batch) if out.shape != batch else out


def _scale_tril(mvn: td.MultivariateNormal) -> torch.Tensor:
    """A MultivariateNormal's Cholesky factor as precise as the matrix it was built from.

    torch factors a covariance or precision matrix in its own dtype; rounded to float32, the
    factor moved float32 KLs by up to 443 ULP (covariance, symkl verify) and 6 ULP
    (precision, 200 random pairs of dimension 6). In narrow dtypes symkl takes the factor of
    that exact matrix in float64 instead. A factor the object was built from is exact as it
    is. (An object may hold several of the three once they have been read: the covariance,
    then the precision, is what it was built from or as precise, so they go first.)
    """
    built = vars(mvn)
    if mvn.loc.dtype == torch.float64:
        return mvn.scale_tril
    if "covariance_matrix" in built:
        return linalg.cholesky(built["covariance_matrix"].to(torch.float64))
    if "precision_matrix" in built:
        return linalg.scale_tril_from_precision(built["precision_matrix"].to(torch.float64))
    return mvn.scale_tril


def kl_divergence(p: td.Distribution, q: td.Distribution) -> torch.Tensor:
    """KL(p || q) from symkl's generated, numerically stable code (batch shape broadcast)."""
    return _call("kl", (p, q))


def cross_entropy(p: td.Distribution, q: td.Distribution) -> torch.Tensor:
    """H(p, q) = -E_p[log q]."""
    return _call("cross_entropy", (p, q))


def entropy(p: td.Distribution) -> torch.Tensor:
    """H(p) = -E_p[log p]."""
    return _call("entropy", (p,))


# -- torch's registry -------------------------------------------------------------------------

_REGISTERED: dict[tuple[type, type], Any] = {}


def _torch_types(family: Family) -> type:
    name = family.torch_class.split("(")[1].split(",")[0] if family.torch_class.startswith("Independent(") \
        else family.torch_class
    return td.Independent if family.torch_class.startswith("Independent(") else getattr(td, name)


def register(override: bool = False) -> list[tuple[str, str]]:
    """Install symkl's KL rules into ``torch.distributions.kl_divergence``'s registry.

    With ``override=False`` only pairs torch lacks are added (e.g. Gamma || Normal); with
    ``override=True`` symkl's rules also replace torch's own for the pairs both have.
    Idempotent: calling it again changes nothing. ``Independent`` pairs that are not
    diagonal Normals fall back to the rule that was registered before. Returns the pairs
    symkl now handles.
    """
    installed = []
    for p_name, q_name in supported("kl"):
        fam_p, fam_q = distributions.get(p_name), distributions.get(q_name)
        key = (_torch_types(fam_p), _torch_types(fam_q))
        if key in _REGISTERED:
            installed.append((p_name, q_name))
            continue
        previous = td.kl._KL_REGISTRY.get(key)
        if previous is not None and not override:
            continue
        td.kl.register_kl(*key)(_rule(previous))
        _REGISTERED[key] = previous
        installed.append((p_name, q_name))
    return installed


def _rule(previous: Any):
    def rule(p: td.Distribution, q: td.Distribution) -> torch.Tensor:
        try:
            return kl_divergence(p, q)
        except NotImplementedError:
            if previous is None:
                raise
            return previous(p, q)

    rule.__doc__ = "symkl's generated KL (see symkl.torch.register)."
    return rule
