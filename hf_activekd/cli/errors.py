"""The command line's user-facing error and its exit status."""

from __future__ import annotations

EXIT_USAGE = 2


class CLIError(Exception):
    """A user-facing error: printed as one message, exit status 2, no traceback."""
