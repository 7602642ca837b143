"""The documentation site's generated pages, written by ``symkl docs``.

The site (``mkdocs.yml``, ``docs/``) mixes hand-written pages with pages generated from the
catalogue: one per (P, Q) pair, one per family's entropy, their two index tables, the
command-line reference and the matching blocks of the navigation. :func:`symkl.site.build.generate`
renders all of them as text (byte-for-byte reproducible: no dates, no timings, sorted
sets); :func:`symkl.site.build.write` writes them or, with ``check=True``, lists the stale
files without writing.

Nothing is imported here: ``symkl.cli`` imports ``symkl.site.cli`` to build its parser,
and that must stay cheap.
"""
