"""The reporter: the one object that tells the user how training goes.

Nothing below ``cli/`` prints. The trainer (and any task) calls a reporter:

* ``epoch_start(epoch, epochs, batches)`` once per epoch (epochs count from 1),
* ``batch(loss)`` after every optimizer step,
* ``epoch_end(metrics)`` with the epoch's record (``epoch``, ``train_loss``,
  ``val_loss``, ``lr``, ``seconds`` and the task's metrics),
* ``message(text)`` for anything else worth a line, ``warning(text)`` for what
  must be seen even with ``quiet``.

:class:`Reporter` draws a tqdm bar with the running loss and the epoch's ETA
only when its stream (stderr) is a terminal and it is not quiet; otherwise it
writes one line per epoch (unless quiet). Every line, quiet or not, is also
appended to ``log_path`` when one is given. :class:`NullReporter` says nothing.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from ..runfiles import append_text

__all__ = ["NullReporter", "Reporter", "format_epoch"]

_SKIP = ("epoch", "seconds")


def _number(value: float) -> str:
    """A metric in four significant digits (``0.01234``, ``1.235e-05``, ``nan``)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _clock(seconds: float) -> str:
    """``h:mm:ss`` or ``m:ss``."""
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_epoch(metrics: Mapping[str, float], epochs: int | None = None) -> str:
    """One line per epoch: ``epoch 3/20  train_loss 0.1234  val_loss 0.2  lr 0.001  1.2s``."""
    epoch = metrics.get("epoch", "?")
    head = f"epoch {epoch}/{epochs}" if epochs else f"epoch {epoch}"
    parts = [head] + [f"{k} {_number(v)}" for k, v in metrics.items() if k not in _SKIP]
    if isinstance(metrics.get("seconds"), float):
        parts.append(f"{metrics['seconds']:.1f}s")
    return "  ".join(parts)


class Reporter:
    """Progress on a stream (default ``sys.stderr``), optionally mirrored to a log file.

    Args:
        quiet: no bar and no lines on the stream (warnings still show); the log
            file, if any, still receives every line.
        stream: where to write; a tqdm bar is drawn only if ``stream.isatty()``.
        log_path: a text file to which every line is appended; never followed
            through a symbolic link (``ValueError`` naming it, here and at each line).
    """

    def __init__(
        self,
        quiet: bool = False,
        stream: TextIO | None = None,
        log_path: str | Path | None = None,
    ) -> None:
        self.quiet = quiet
        self.stream = sys.stderr if stream is None else stream
        self.log_path = None if log_path is None else Path(log_path)
        if self.log_path is not None and self.log_path.is_symlink():
            raise ValueError(f"{self.log_path}: is a symbolic link; run files are never followed")
        self._bar: tqdm | None = None
        self._epochs: int | None = None
        self._epoch_seconds: list[float] = []
        self._started = 0.0
        self._loss_sum = 0.0
        self._batches = 0

    @property
    def interactive(self) -> bool:
        """True when a progress bar is drawn: not quiet and the stream is a terminal."""
        isatty = getattr(self.stream, "isatty", None)
        return not self.quiet and callable(isatty) and bool(isatty())

    def epoch_start(self, epoch: int, epochs: int, batches: int | None = None) -> None:
        """An epoch begins (``epoch`` counts from 1 to ``epochs``; ``batches`` if known)."""
        self.close()
        self._epochs = epochs
        self._started = time.monotonic()
        self._loss_sum, self._batches = 0.0, 0
        if self.interactive:
            self._bar = tqdm(
                total=batches,
                desc=f"epoch {epoch}/{epochs}",
                unit="batch",
                file=self.stream,
                leave=False,
                dynamic_ncols=True,
            )

    def batch(self, loss: float) -> None:
        """One optimizer step was taken with training loss ``loss``."""
        self._loss_sum += loss
        self._batches += 1
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{self._loss_sum / self._batches:.4g}", refresh=False)
            self._bar.update(1)

    def epoch_end(self, metrics: Mapping[str, float]) -> None:
        """The epoch's record; writes one line with the run's ETA."""
        self.close()
        self._epoch_seconds.append(time.monotonic() - self._started)
        line = format_epoch(metrics, self._epochs)
        epoch = metrics.get("epoch")
        if self._epochs and isinstance(epoch, int) and epoch < self._epochs:
            mean = math.fsum(self._epoch_seconds) / len(self._epoch_seconds)
            line += f"  eta {_clock(mean * (self._epochs - epoch))}"
        self._emit(line, show=not self.quiet and self._worth_a_line(epoch))

    def _worth_a_line(self, epoch: object) -> bool:
        """On a terminal every epoch; in a log or pipe about 20 lines a run (the log file gets all)."""
        if self.interactive or not self._epochs or not isinstance(epoch, int):
            return True
        stride = math.ceil(self._epochs / 20)
        return epoch == 1 or epoch == self._epochs or epoch % stride == 0

    def message(self, text: str) -> None:
        """A line for the user (hidden when quiet)."""
        self._emit(text, show=not self.quiet)

    def warning(self, text: str) -> None:
        """A line the user must see, even when quiet."""
        self._emit(f"warning: {text}", show=True)

    def close(self) -> None:
        """Remove the progress bar, if one is drawn."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _emit(self, text: str, show: bool) -> None:
        if self.log_path is not None:
            append_text(self.log_path, text + "\n")  # never through a planted link
        if not show:
            return
        if self._bar is not None:
            tqdm.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)


class NullReporter(Reporter):
    """A reporter that says nothing (library use and tests)."""

    def __init__(self) -> None:
        super().__init__(quiet=True)

    def epoch_start(self, epoch: int, epochs: int, batches: int | None = None) -> None:
        pass

    def batch(self, loss: float) -> None:
        pass

    def epoch_end(self, metrics: Mapping[str, float]) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def warning(self, text: str) -> None:
        pass
