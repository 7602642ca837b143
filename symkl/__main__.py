"""``python -m symkl``: the same command line as the ``symkl`` console script."""

from symkl.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
