"""The error every subcommand raises on bad input, and the exit status of an interrupted run."""

from __future__ import annotations

__all__ = ["EXIT_INTERRUPTED", "CLIError"]

EXIT_INTERRUPTED = 130  # what a command returns when training was stopped by Ctrl-C


class CLIError(Exception):
    """A problem with the user's input; ``main`` prints ``lstmlens: error: MESSAGE``, exits 2."""
