"""Public derivation API: ``kl``, ``entropy``, ``cross_entropy``, ``families``, ``pairs``."""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Mapping

import sympy as sp

from symkl import cache, derive, distributions
from symkl.derivation import Derivation
from symkl.errors import UnsupportedPairError
from symkl.family import Family, Structure
from symkl.numeric import Side

Fixed = Mapping[str, object] | None


def side_for(family: Family, suffix: str, fixed: Fixed) -> Side:
    fixed = dict(fixed or {})
    unknown = set(fixed) - set(family.param_names)
    if unknown:
        raise ValueError(
            f"{family.title} has no parameter(s) {sorted(unknown)} to fix; "
            f"its parameters are {list(family.param_names)}"
        )
    for name in fixed:
        param = family.parameter(name)
        if family.structure is Structure.MATRIX:
            raise ValueError(
                f"{family.title} parameters are symbolic matrices of dimension k; fixing "
                f"'{name}' to a number is not supported (use mvn_diag for N(0, I) priors)"
            )
        if param.constraint.event_dim > 0:
            raise ValueError(
                f"{family.title} parameter '{name}' is {param.constraint.text}; only parameters "
                "with elementwise constraints can be fixed to a number (applied to every coordinate)"
            )
    family.validate({k: float(v) for k, v in fixed.items()})
    return Side(family, family.symbols(suffix), {k: sp.nsimplify(v) for k, v in fixed.items()})


def fixed_key(fixed: Fixed) -> tuple[tuple[str, sp.Expr], ...]:
    """Hashable, exact form of fixed values (0.5 -> 1/2) for the in-memory and disk caches."""
    return tuple(sorted((k, sp.nsimplify(v)) for k, v in (fixed or {}).items()))


@lru_cache(maxsize=None)
def _derive(quantity: str, p: str, q: str | None, p_fixed: tuple, q_fixed: tuple,
            use_cache: bool) -> Derivation:
    key = (quantity, p, q, p_fixed, q_fixed)
    if use_cache:
        hit = cache.load(key)
        if hit is not None:
            return hit
    fam_p = distributions.get(p)
    side_p = side_for(fam_p, "p", dict(p_fixed))
    side_q = None
    if q is not None:
        fam_q = distributions.get(q)
        if (fam_p.name, fam_q.name) not in distributions.pairs():
            raise UnsupportedPairError(fam_p.name, fam_q.name, distributions.pairs())
        side_q = side_for(fam_q, "q", dict(q_fixed))
    result = derive.run(quantity, side_p, side_q)
    if quantity == "kl" and side_q is not None:
        ce = _derive("cross_entropy", p, q, p_fixed, q_fixed, use_cache)
        h = _derive("entropy", p, None, p_fixed, (), use_cache)
        result.identities = derive.prove_identities(result, ce, h, side_p, side_q)
    if use_cache:
        cache.store(key, result)
    return result


def _names(p: str, q: str | None) -> tuple[str, str | None]:
    return distributions.get(p).name, (distributions.get(q).name if q is not None else None)


def _with_crosscheck(d: Derivation, brute_force: float | None) -> Derivation:
    # Every call gets its own Derivation object: the cached one stays as derived, whatever a
    # caller sets on its copy (a brute-force outcome once leaked into later exports this way).
    d = dataclasses.replace(d, identities=list(d.identities))
    if brute_force is not None:
        from symkl.crosscheck import crosscheck

        crosscheck(d, timeout=brute_force)
    return d


def kl(p_family: str, q_family: str, /, *, p: Fixed = None, q: Fixed = None,
       cache: bool = True, brute_force: float | None = None) -> Derivation:
    """Derive KL(P || Q) between two catalogue families.

    ``p`` / ``q`` fix parameters by their torch names, e.g.
    ``kl("mvn_diag", "mvn_diag", q={"loc": 0, "scale": 1})`` gives the VAE term.
    ``cache=False`` bypasses the on-disk cache. ``brute_force=seconds`` also runs the
    independent ``integrate`` cross-check with that time limit (see ``d.brute_force``).
    """
    a, b = _names(p_family, q_family)
    return _with_crosscheck(_derive("kl", a, b, fixed_key(p), fixed_key(q), cache), brute_force)


def cross_entropy(p_family: str, q_family: str, /, *, p: Fixed = None, q: Fixed = None,
                  cache: bool = True, brute_force: float | None = None) -> Derivation:
    """Derive the cross-entropy H(P, Q) = -E_P[log q] (same options as :func:`kl`)."""
    a, b = _names(p_family, q_family)
    return _with_crosscheck(_derive("cross_entropy", a, b, fixed_key(p), fixed_key(q), cache), brute_force)


def entropy(p_family: str, /, *, p: Fixed = None, cache: bool = True,
            brute_force: float | None = None) -> Derivation:
    """Derive the (differential) entropy H(P) = -E_P[log p] (same options as :func:`kl`)."""
    a, _ = _names(p_family, None)
    return _with_crosscheck(_derive("entropy", a, None, fixed_key(p), (), cache), brute_force)


def families() -> list[Family]:
    """The catalogue's families, by name."""
    return [distributions.REGISTRY[n] for n in sorted(distributions.REGISTRY)]


def pairs() -> list[tuple[str, str]]:
    """Every (P, Q) pair whose KL and cross-entropy the catalogue derives."""
    return distributions.pairs()
