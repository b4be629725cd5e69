"""``python -m hf_activekd.cli``: the ``hf-activekd`` command."""

from .entry import main

if __name__ == "__main__":
    raise SystemExit(main())
