"""One ``train`` command on many processes: ``--nproc N``, or started by ``torchrun``.

``lstmlens ... train --nproc N ...`` starts N local workers through torch's elastic
launcher (:func:`lstmlens.train.launcher.launch`); each worker runs the very
same command line. A command started by ``torchrun`` (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT`` set) is such a worker already, so
several machines are one ``torchrun --nnodes ... --rdzv-endpoint ...`` away.

In a worker, rank 0 runs the command as usual: it claims ``--out``, reports,
writes every file. Every other rank trains its share (the trainer's
``DistributedDataParallel``) with its output silenced, and whatever the command
writes after training goes to a scratch folder that is deleted when it ends; so
the run folder holds one set of files, rank 0's. A failed worker ends the
command with one line naming the rank (rank 0's own error line when it is the
one that failed). A rank whose collective fails because a peer died waits until the
launcher has seen that death (:func:`~lstmlens.train.distributed.wait_for_dead_peers`), so
the one line names the dead rank, and the survivor prints nothing.

The process group is gloo: every train command trains on the CPU in this release
(:func:`~lstmlens.cli.common.cpu_device`), also on a machine with CUDA; nccl is for a
model on CUDA (:func:`~lstmlens.train.distributed.backend_for`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..train import distributed, launcher
from .argtypes import NPROC
from .errors import EXIT_INTERRUPTED, CLIError

__all__ = ["add_nproc_arg", "run_command"]

EXIT_WORKER_FAILED = 1
_PRINTED = (2, EXIT_INTERRUPTED)  # statuses after which main has printed the one line
START_METHOD = "spawn"  # how --nproc starts its workers (the tests fork, to skip re-imports)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def add_nproc_arg(parser: argparse.ArgumentParser) -> None:
    """``--nproc N``: train on N local processes (torch.distributed, gloo on CPU)."""
    parser.add_argument(
        "--nproc",
        type=NPROC,
        default=1,
        metavar="N",
        help="train on N local processes (torch DistributedDataParallel; each rank takes "
        "1/N of every batch, so the result is that of one process; --batch-size is the "
        "global batch). Under torchrun, leave it out. Default 1",
    )


def run_command(
    args: argparse.Namespace, argv: Sequence[str], func: Callable[[argparse.Namespace], Any]
) -> Any:
    """Run ``func(args)`` as one process, as N launched workers, or as a ``torchrun`` worker."""
    env = distributed.environment()  # a half-set environment: one-line ValueError
    nproc = getattr(args, "nproc", 1)
    if env is None:
        return func(args) if nproc == 1 else _launch(args, argv)
    world = int(env["WORLD_SIZE"])
    if nproc not in (1, world):
        raise CLIError(f"--nproc {nproc}, but this command is one of {world} torchrun processes")
    joined = not distributed.ranks().distributed
    distributed.init_from_environment(device=_train_device(args))
    distributed.note_local_peers()
    try:
        if int(env["RANK"]) == 0:
            return func(args)
        with _follower(args):
            return func(args)
    except Exception:
        distributed.wait_for_dead_peers()  # a dead peer is the cause: the launcher names it
        if int(env["RANK"]) != 0:
            distributed.wait_for_main()  # bad input: rank 0 fails alike and prints the line
        raise
    finally:
        if joined:
            import torch.distributed as dist

            dist.destroy_process_group()


def _train_device(args: argparse.Namespace) -> str:
    """Where the command trains: the CPU in this release (``--device cuda``: one-line error)."""
    from .common import cpu_device

    return cpu_device(args, "training")


def _launch(args: argparse.Namespace, argv: Sequence[str]) -> int:
    threads = getattr(args, "threads", 1) or 0
    try:
        launcher.launch(
            _worker_main,
            (list(argv),),
            nproc=args.nproc,
            threads=threads,
            start_method=START_METHOD,
            device=_train_device(args),
        )
    except launcher.WorkerFailedError as e:
        if e.rank == 0 and e.exitcode in _PRINTED:
            return e.exitcode  # rank 0's main has printed its own one-line error
        print(f"lstmlens: error: {e}", file=sys.stderr)
        return EXIT_WORKER_FAILED
    return 0


def _worker_main(argv: list[str]) -> int:
    """A launched worker: the same command line (the environment makes it a worker)."""
    from .main import main

    status = main(argv)
    if status:
        sys.exit(status)
    return status


@contextlib.contextmanager
def _follower(args: argparse.Namespace) -> Iterator[None]:
    """Rank > 0: stdout/stderr to /dev/null; ``--out`` and ``--output`` into a scratch folder,
    deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="lstmlens-rank-") as scratch:
        for name in ("out", "output"):  # the run folder, an extra results file
            if getattr(args, name, None) is not None:
                setattr(args, name, Path(scratch) / name)
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 1)
            os.dup2(null, 2)
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in (*saved, null):
                os.close(fd)
