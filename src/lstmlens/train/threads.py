"""How many CPU threads torch (and BLAS) may use while a command runs.

The recurrent models here are small (batches of a few dozen sequences, hidden sizes in the
hundreds): a second thread gains little, and when another process shares the cores, torch's
OpenMP threads wait on each other so badly that two threads ran 5 to 100 times slower than one
on a busy 2-core machine. Commands therefore train on one thread unless told otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from ..limits import MAX_THREADS

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(n: int | None = 1) -> Iterator[None]:
    """Run the body with ``n`` torch and BLAS threads, then restore the previous setting.

    ``n`` of 0 or None leaves torch's own setting alone; above
    :data:`~lstmlens.limits.MAX_THREADS` is refused (torch crashes at 100000).
    """
    if not n:
        yield
        return
    if n < 0:
        raise ValueError(f"torch_threads: expected a number of threads >= 0, got {n}")
    if n > MAX_THREADS:
        raise ValueError(f"torch_threads: expected at most {MAX_THREADS} threads, got {n}")
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n, "blas"):
            yield
    finally:
        torch.set_num_threads(before)
