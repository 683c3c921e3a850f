"""Make docs/lens.png: the lens page of a trained text model, photographed by headless Chromium.

    lstmlens text train ../shared/data/tinyshakespeare.txt --out runs/shakespeare --max-minutes 15
    python examples/lens_screenshot.py runs/shakespeare \\
        --input ../shared/data/tinyshakespeare.txt --out docs/lens.png
    python examples/lens_screenshot.py runs/reach --compare --out docs/memory_reach.png

``--at "step=27&unit=3"`` opens the page at that step and unit (the cell view);
``--compare`` photographs the page of ``lstmlens inspect RUN ... --compare``.

It runs ``lstmlens inspect RUN --html ...`` and then Chromium's own ``--screenshot``
(Debian's ``chromium`` package; nothing is downloaded, no network is used).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from lstmlens.cli.main import main as lstmlens_main

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("lens_screenshot: Chromium not found; install it with: apt-get install -y chromium")


def screenshot(page: Path, out: Path, width: int = 1280, height: int = 960, at: str = "") -> Path:
    """Photograph the HTML file ``page`` (opened at ``#at`` when given) into the PNG ``out``
    (written atomically)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp.png")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                find_chromium(),
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "--virtual-time-budget=5000",  # let the page's script finish drawing
                f"--screenshot={tmp}",
                page.resolve().as_uri() + (f"#{at}" if at else ""),
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
    os.replace(tmp, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", nargs="+", help="a run folder (several with --compare)")
    parser.add_argument("--compare", action="store_true", help="inspect RUN ... --compare")
    parser.add_argument("--at", default="", help='open the page at "step=N&unit=U"')
    parser.add_argument("--input", help="text or a text file to feed the model")
    parser.add_argument("--out", default="docs/lens.png", help="the PNG to write (docs/lens.png)")
    parser.add_argument("--max-steps", type=int, default=700, help="characters shown (700)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=960)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "lens.html"
        command = ["inspect", *args.run, "--html", str(page), "--max-steps", str(args.max_steps)]
        if args.compare:
            command.append("--compare")
        if args.input:
            command += ["--input", args.input]
        status = lstmlens_main(command)
        if status:
            return status
        print(screenshot(page, Path(args.out), args.width, args.height, args.at))
    return 0


if __name__ == "__main__":
    sys.exit(main())
