"""Which library runs the native kernel's per-step matmuls (float32), one choice per process.

Engines (``common.h`` ``StepEngine``):

* ``"mkl-packed"`` (default): the recurrent weight is packed once per call
  (``cblas_sgemm_pack``) and every step runs ``cblas_sgemm_compute`` on the packed panel;
* ``"aten"``: ``at::mm`` at every step (MKL's plain sgemm in torch's x86 wheels, or whatever
  BLAS torch was built with).

float64, and torch without MKL, always run ``at::mm``: the choice changes nothing there.

Measured (``benchmarks/step_engine.py``, one thread, Intel Xeon with AVX-512/AMX, loaded):
inference with the packed weight took 0.5-0.7x the time of ``at::mm`` at (64,100,256,256) and
(16,200,128,512); training was within the noise; oneDNN's own packed linear
(``torch.ops.mkldnn._linear_pointwise``) reached 0.4-0.9x ``torch.mm``'s GFLOP/s at the
per-step shapes. So MKL-packed is the default on every machine measured; ``aten`` stays as
an override (``LSTMLENS_STEP_ENGINE=aten`` in the environment, or :func:`set_engine`) for
machines where MKL's packed path is slow (none measured yet).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
from collections.abc import Iterator

from .loader import status

__all__ = [
    "ENGINES",
    "ENV",
    "apply_environment",
    "default_engine",
    "get_engine",
    "set_engine",
    "using",
]

#: engine names, in the kernel's numbering
ENGINES = ("mkl-packed", "aten")
_log = logging.getLogger("lstmlens")
#: environment variable that overrides :func:`default_engine`
ENV = "LSTMLENS_STEP_ENGINE"


@functools.cache
def _switch():
    """The kernel's ``lstmlens_native_step_engine`` (int -> int), or None without the kernel."""
    st = status()
    if not st.ok or st.path is None:
        return None
    fn = ctypes.CDLL(str(st.path)).lstmlens_native_step_engine
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
    return fn


def _check(name: str) -> int:
    if name not in ENGINES:
        raise ValueError(f"step engine must be one of {', '.join(ENGINES)}, got {name!r}")
    return ENGINES.index(name)


def default_engine() -> str:
    """``$LSTMLENS_STEP_ENGINE`` when set, else ``"mkl-packed"`` (the measured best here)."""
    name = os.environ.get(ENV, "").strip() or "mkl-packed"
    _check(name)
    return name


def apply_environment() -> None:
    """Set :func:`default_engine` in the kernel (the loader calls this once it is loaded and
    ``$LSTMLENS_STEP_ENGINE`` is set); a bad value is a one-line warning, not an error."""
    try:
        set_engine(default_engine())
    except ValueError as e:
        _log.warning("lstmlens: $%s ignored: %s", ENV, e)


def get_engine() -> str | None:
    """The engine in force, or None without the native kernel."""
    fn = _switch()
    return None if fn is None else ENGINES[fn(-1)]


def set_engine(name: str) -> str | None:
    """Make ``name`` the engine of every later native call; returns the previous one (None
    without the native kernel, where nothing is set)."""
    index = _check(name)
    fn = _switch()
    return None if fn is None else ENGINES[fn(index)]


@contextlib.contextmanager
def using(name: str) -> Iterator[None]:
    """Run the block with engine ``name``, then restore the previous one."""
    prev = set_engine(name)
    try:
        yield
    finally:
        if prev is not None:
            set_engine(prev)
