"""``lstmlens``: the console script. Parses arguments and dispatches to a subcommand.

Each subcommand lives in ``lstmlens.cli.<name>`` and provides
``register(subparsers)``, which adds its parser and sets ``func`` (a callable
taking the parsed ``argparse.Namespace`` and returning an exit status or None).
Modules not written yet are skipped, so the tool works while it grows.

Exit statuses: 0 success; 2 a usage error or bad input (argparse, or a
``CLIError``/``ValueError``/``OSError`` raised by the command: one line
``lstmlens: error: ...`` on stderr, no traceback); 130 interrupted by Ctrl-C.
Set ``LSTMLENS_DEBUG=1`` to get the traceback instead. A standard output closed by
its reader (``| head``) is not an error: the command finishes (its run saved) quietly.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from ..train.lock import release_run_locks
from .common import EXIT_INTERRUPTED, CLIError
from .launch import run_command
from .stdout import closed_stdout_is_quiet

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

SUBCOMMANDS = ("forecast", "text", "classify", "longrange", "inspect", "bench", "export")
DESCRIPTION = (
    "LSTM networks built from their gates: train them on series, text and sequences, "
    "and look inside every gate."
)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("lstmlens")
    except Exception:  # not installed (running from a source tree)
        return "unknown"


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``CLIError``, exit status 2 in ``main``)."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix("lstmlens").strip()
        raise CLIError(f"{where}: {message}" if where else message)


def build_parser() -> argparse.ArgumentParser:
    """The ``lstmlens`` parser with every subcommand module that exists."""
    parser = OneLineParser(prog="lstmlens", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"lstmlens {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        module_name = f"{__package__}.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        importlib.import_module(module_name).register(subparsers)
    return parser


def _one_line(error: BaseException) -> str:
    """The error as one line; an ``OSError`` reads ``PATH: reason``."""
    if isinstance(error, OSError) and error.strerror:
        text = f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def _exit_status(code: object) -> int:
    """``SystemExit.code`` as an exit status (argparse: 0 for --help, 2 for errors)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``lstmlens`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    debug = os.environ.get("LSTMLENS_DEBUG", "") not in ("", "0")
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        func = getattr(args, "func", None)
        if func is None:
            raise CLIError(f"{args.command}: an action is needed; see lstmlens {args.command} -h")
        argv = sys.argv[1:] if argv is None else list(argv)
        threads = getattr(args, "threads", 0)
        with closed_stdout_is_quiet():  # `| head`: the run is still saved, nothing printed
            if threads:
                from ..train.threads import torch_threads

                with torch_threads(threads):
                    status = run_command(args, argv, func)
            else:
                status = run_command(args, argv, func)
        return 0 if status is None else int(status)
    except SystemExit as e:
        return _exit_status(e.code)
    except (CLIError, ValueError, OSError) as e:
        if debug:
            raise
        print(f"lstmlens: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            raise
        print("lstmlens: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        release_run_locks()  # the run folders this command claimed


if __name__ == "__main__":
    sys.exit(main())
