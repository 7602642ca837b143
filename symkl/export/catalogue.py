"""The list of exported documents: the single source for the files, the index and the catalogue.

Every derivation symkl exports appears here exactly once, as a :class:`Document` with a
stable slug (the file name without extension) and a title. The writers in this package
only ever iterate over :func:`documents`; nothing else decides what is exported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import sympy as sp

from symkl.derivation import Derivation

#: Section headings of the index and the catalogue, in catalogue order.
QUANTITY_HEADINGS = {
    "kl": "KL divergence",
    "cross_entropy": "Cross-entropy",
    "entropy": "Entropy",
    "mle": "Maximum likelihood",
}


@dataclass(frozen=True)
class Document:
    """One exported derivation: ``<slug>.tex`` and ``<slug>.md``."""

    slug: str
    title: str
    derivation: Derivation
    #: Why this variant exists, for derivations with fixed parameters ("" otherwise).
    note: str = ""

    @property
    def quantity(self) -> str:
        return self.derivation.quantity

    @property
    def families(self) -> tuple[str, ...]:
        d = self.derivation
        return tuple(name for name in (d.p, d.q) if name is not None)


def _family_title(name: str) -> str:
    from symkl import distributions

    return distributions.get(name).title


def _pair_title(quantity: str, p: str, q: str | None) -> str:
    head = QUANTITY_HEADINGS[quantity]
    if q is None:
        return f"{head} of {_family_title(p)}"
    return f"{head}: {_family_title(p)} || {_family_title(q)}"


def _slug_value(value: sp.Basic) -> str:
    """``1`` -> ``1``, ``1/2`` -> ``1_2``, ``-3`` -> ``m3``: file-name safe and stable."""
    text = str(value).replace("-", "m")
    return re.sub(r"[^A-Za-z0-9.]+", "_", text).strip("_")


def _unsuffixed(name: str) -> str:
    """``scale_q`` -> ``scale``: fixed values are keyed by suffixed parameter names."""
    return re.sub(r"_[pq]$", "", name)


def mle_slug(d: Derivation) -> str:
    """``mle-normal-fix-scale-1-data-normal``: model family, fixed parameters, data family."""
    parts = ["mle", str(d.q)]
    for name in sorted(d.fixed):
        parts += ["fix", _unsuffixed(name), _slug_value(d.fixed[name])]
    if d.p is not None:
        parts += ["data", d.p]
    return "-".join(parts)


def _mle_title(d: Derivation) -> str:
    title = f"Maximum likelihood: {_family_title(str(d.q))} model"
    if d.fixed:
        fixed = ", ".join(f"{_unsuffixed(n)} = {d.fixed[n]}" for n in sorted(d.fixed))
        title += f" ({fixed} fixed)"
    if d.p is not None:
        title += f", data from {_family_title(d.p)}"
    return title


def _mle_examples() -> list[Derivation]:
    from symkl.likelihood import examples

    return list(examples())


def _catalogue(progress: Callable[[str], None]) -> Iterable[Document]:
    import symkl

    pairs = symkl.pairs()
    for p, q in pairs:
        progress(f"KL({p} || {q})")
        yield Document(f"kl-{p}-{q}", _pair_title("kl", p, q), symkl.kl(p, q))
    progress("KL(mvn_diag || N(0, I))")
    yield Document(
        "kl-mvn_diag-mvn_diag-vae",
        "KL divergence: diagonal Normal || N(0, I) (the VAE term)",
        symkl.kl("mvn_diag", "mvn_diag", q={"loc": 0, "scale": 1}),
        note="Q is the standard normal prior N(0, I) of a variational autoencoder; "
             "this is the KL term of its loss.",
    )
    for p, q in pairs:
        progress(f"H({p}, {q})")
        yield Document(f"cross-entropy-{p}-{q}", _pair_title("cross_entropy", p, q),
                       symkl.cross_entropy(p, q))
    for family in symkl.families():
        progress(f"H({family.name})")
        yield Document(f"entropy-{family.name}", _pair_title("entropy", family.name, None),
                       symkl.entropy(family.name))
    progress("maximum likelihood")
    for d in _mle_examples():
        yield Document(mle_slug(d), _mle_title(d), d)


def expected_count() -> int:
    """How many times :func:`documents` calls ``progress`` (the MLE examples count once)."""
    import symkl

    return 2 * len(symkl.pairs()) + 1 + len(symkl.families()) + 1


def documents(progress: Callable[[str], None] | None = None) -> list[Document]:
    """Every exported derivation, in catalogue order (KL, cross-entropy, entropy, MLE).

    ``progress`` is called with a short label before each derivation is requested
    (derivations come from the on-disk cache, or are derived on a cold cache).
    Raises ``ValueError`` if two documents would share a slug.
    """
    docs = list(_catalogue(progress or (lambda label: None)))
    seen: set[str] = set()
    for doc in docs:
        if doc.slug in seen:
            raise ValueError(f"two exported derivations share the file name {doc.slug!r}")
        seen.add(doc.slug)
    return docs


def grouped(docs: Sequence[Document]) -> list[tuple[str, list[Document]]]:
    """Consecutive documents of one quantity, with the quantity's heading (catalogue order)."""
    groups: list[tuple[str, list[Document]]] = []
    for doc in docs:
        heading = QUANTITY_HEADINGS.get(doc.quantity, doc.quantity)
        if not groups or groups[-1][0] != heading:
            groups.append((heading, []))
        groups[-1][1].append(doc)
    return groups
