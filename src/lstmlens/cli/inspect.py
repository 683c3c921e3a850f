"""``lstmlens inspect RUN``: write the lens page (and PNGs) of a trained model of any task.

The run folder is read with lstmlens.load_run. A text run is fed --input (a file name, or
else the text itself); without it, the validation part of the corpus it was trained on, or
else text the model writes. A forecast run is shown over its own series, or over --input,
a CSV in the same format; a classification run over the first sequence of --input (a digits
run: the first digit); a long-range race over one task sequence, for the cell --cell. A
forecast page shows the last --max-steps steps, the others the first. The page goes to
--html (default RUN/lens.html), the pictures to --png.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

from .common import CLIError, add_device_arg, add_threads_arg, cpu_device, positive_int

__all__ = ["INSPECTORS", "register", "run"]

#: task -> "module:function" writing the lens page of a loaded run of that task.
INSPECTORS = {
    "forecast": "lstmlens.tasks.forecast_run:inspect_forecast_run",
    "text": "lstmlens.tasks.text_run:inspect_text_run",
    "classify": "lstmlens.tasks.classify_report:inspect_classify_run",
    "longrange": "lstmlens.tasks.longrange_run:inspect_longrange_run",
}
EXAMPLE = """examples:
  lstmlens inspect runs/text --input "to be or not to be" --png runs/text/pngs
  lstmlens inspect runs/forecast --max-steps 200 --html co2.html
  lstmlens inspect runs/race --cell cifg
  lstmlens inspect runs/small runs/large --compare --html compare.html"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``inspect`` subcommand to the ``lstmlens`` parser."""
    p = subparsers.add_parser(
        "inspect",
        help="look inside every gate of a trained model (HTML page, PNG plots)",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN", help="a run folder written by a train command")
    p.add_argument("more_runs", nargs="*", metavar="RUN", help="more runs, with --compare")
    p.add_argument(
        "--compare",
        action="store_true",
        help="one page with every RUN's memory reach and gate saturation side by side",
    )
    p.add_argument(
        "--input",
        metavar="TEXT|FILE",
        help="what to feed the model: a file (a CSV for a forecast or classify run), or text",
    )
    p.add_argument("--cell", help="long-range race: the cell to show (lstm, else the first)")
    p.add_argument("--html", metavar="PATH", help="where to write the page (RUN/lens.html)")
    p.add_argument("--png", metavar="DIR", help="also write PNG plots into DIR")
    p.add_argument(
        "--max-steps",
        type=positive_int,
        default=1000,
        metavar="N",
        help="show at most N steps: a series' last, any other sequence's first (%(default)s)",
    )
    add_device_arg(p)
    add_threads_arg(p)
    p.set_defaults(func=run)
    return p


def _compare(args: argparse.Namespace) -> int:
    """``--compare``: :func:`lstmlens.lens.compare.compare_runs` (page in --html)."""
    from ..lens.compare import compare_runs

    if not args.compare:
        raise CLIError("inspect: several runs need --compare")
    if args.html is None:
        raise CLIError("inspect --compare: pass --html PATH for the comparison page")
    text = args.input
    if text is not None and Path(text).is_file():
        text = Path(text).read_text(encoding="utf-8")
    runs = [args.run, *args.more_runs]
    try:
        print(compare_runs(runs, args.html, text=text, max_steps=args.max_steps))
    except ValueError as e:
        raise CLIError(f"inspect: {e}") from None
    return 0


def run(args: argparse.Namespace) -> int:
    """Write the lens page (and PNGs) for ``args.run``; returns the exit status."""
    from ..io import load_run, run_task

    if args.compare or args.more_runs:
        return _compare(args)
    cpu_device(args, "the lens")
    run_dir = Path(args.run)
    try:
        task, _ = run_task(run_dir)
    except ValueError as e:
        raise CLIError(f"inspect: {e}") from None
    html_path = Path(args.html) if args.html else run_dir / "lens.html"
    if not html_path.parent.is_dir():
        raise CLIError(f"inspect: cannot write {html_path}: no folder {html_path.parent}")
    if args.cell is not None and task != "longrange":
        raise CLIError(f"inspect: --cell applies to long-range races, {run_dir} is a {task} run")
    model, config = load_run(run_dir)
    module, function = INSPECTORS[task].split(":")
    options: dict[str, Any] = {"png_dir": args.png, "max_steps": args.max_steps}
    if task == "longrange":
        options["cell"] = args.cell
    else:
        options["input"] = args.input
    write = getattr(importlib.import_module(module), function)
    title = f"lstmlens lens: {run_dir.name}"
    for path in write(run_dir, model, config, html_path, title=title, **options):
        print(path)
    return 0
