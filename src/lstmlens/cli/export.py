"""``lstmlens export RUN --format onnx|exported-program --output PATH``: ship a trained run.

onnx writes PATH and a sidecar PATH with suffix .json (inputs, outputs, pre- and
post-processing, vocabulary or classes) that examples/serve_onnx.py reads with onnxruntime
and numpy only. exported-program writes a torch.export ExportedProgram
(torch.export.load(PATH)).
"""

from __future__ import annotations

import argparse

from .common import CLIError

__all__ = ["register", "run_export"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``export``."""
    from ..export.runs import FORMATS

    parser = subparsers.add_parser(
        "export",
        help="write a trained run as ONNX (+ sidecar JSON) or a torch.export program",
        description="Ship a trained run: " + __doc__.split("\n\n")[1].replace("\n", " "),
        epilog="example:\n  lstmlens export runs/forecast --format onnx --output forecast.onnx",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", metavar="RUN", help="a run folder (forecast, text or classify)")
    parser.add_argument(
        "--format",
        default="onnx",
        help=f"one of {', '.join(FORMATS)} (%(default)s)",
        metavar="FORMAT",
    )
    parser.add_argument("--output", required=True, help="the file to write, e.g. model.onnx")
    parser.add_argument("--force", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    """Export the run; one line per file written."""
    from ..export.onnx import INSTALL_HINT
    from ..export.runs import export_run

    try:
        written = export_run(args.run, args.output, args.format, force=args.force)
    except ImportError as err:
        name = getattr(err, "name", None) or "onnx"
        raise CLIError(f"export: {name} is not installed; install it with {INSTALL_HINT}") from None
    except ValueError as err:
        raise CLIError(f"export: {err}") from None
    for path in written:
        print(f"wrote {path}")
    return 0
