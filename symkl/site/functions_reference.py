"""The table of every generated function (``docs/reference/functions.md``).

``symkl.numpy`` and ``symkl.torch.functional`` create their functions at import time from
the generated modules, so mkdocstrings (which reads source files) cannot list them; this page
does, from the same spec table the wrappers use.
"""

from __future__ import annotations

import inspect

from symkl.site.markdown import generated_note, table

_QUANTITY = {"kl": "KL(P || Q)", "cross_entropy": "H(P, Q)", "entropy": "H(P)"}


def page(pair_slug, not_generated: dict[str, str]) -> str:  # noqa: ANN001 - pages.pair_slug
    """The Markdown of the page; ``pair_slug(p, q)`` names a pair's page."""
    import symkl.numpy
    from symkl.torch.functional import FUNCTIONS

    rows = []
    for name, (quantity, p, q) in sorted(FUNCTIONS.items()):
        params = [n for n, prm in inspect.signature(getattr(symkl.numpy, name)).parameters.items()
                  if prm.kind is not inspect.Parameter.KEYWORD_ONLY]
        where = f"../pairs/{pair_slug(p, q)}.md" if q else f"../families/{p}.md"
        label = f"{p} || {q}" if q else p
        rows.append((f"`{name}`", ", ".join(f"`{x}`" for x in params), _QUANTITY[quantity],
                     f"[{label}]({where})"))
    missing = [f"- `{name}`: {reason}" for name, reason in not_generated.items()] or ["- none"]
    return "\n".join([
        "# Generated functions", "",
        generated_note("This page is written from `symkl.torch.functional.FUNCTIONS` and the "
                       "signatures of `symkl.numpy`'s functions."),
        f"The {len(rows)} functions of [`symkl.torch.functional`](torch.md) and "
        "[`symkl.numpy`](numpy.md): same names, same parameters (plus a keyword-only `validate`). "
        "The page of each pair or family shows the source and the kernels it calls.", "",
        table(("function", "parameters", "computes", "pair or family"), rows),
        "Not generated (the symbolic result exists; `symkl codegen` cannot print it yet):", "",
        *missing,
    ]).rstrip("\n") + "\n"
