"""The ``hf-activekd`` entry point: ``main`` hands ``distill`` and ``serve-teacher`` their arguments."""

from __future__ import annotations

import sys

from .distill_run import distill_main
from .errors import EXIT_USAGE

USAGE = """usage: hf-activekd <command> [options]

commands:
  distill         distil a teacher LLM into a small classifier (see `hf-activekd distill --help`)
  serve-teacher   serve a teacher LLM over the TGI protocol (see `hf-activekd serve-teacher --help`)
"""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hf-activekd`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else EXIT_USAGE
    if argv[0] in ("-V", "--version"):
        from .. import __version__

        print(f"hf-activekd {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command == "distill":
        return distill_main(rest)
    if command == "serve-teacher":
        from ..server.app import serve_main

        return serve_main(rest)
    print(f"hf-activekd: error: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return EXIT_USAGE
