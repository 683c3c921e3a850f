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

Full gate recurrence (``fgr``), measured with ``benchmarks/step_engine.py --fold`` (same
machine, loaded; time / ``torch.nn.LSTM`` vanilla at (64,100,256,256), (16,200,128,512),
x2, bi, train): two products per step 1.7-2.1x, folded into one ``[h | s] [W_hh | E]^T``
1.9-3.2x (it multiplies E's zero (H x 3H) block too: 16H^2 instead of 13H^2 per row, and the
wider weight leaves the cache sooner), gate product in bf16 1.6-2.0x. fgr's matmul FLOPs are
2.1x vanilla's at I = H, so in fp32 no reordering reaches 1.25x. Defaults: two products,
fp32; :func:`fold_fgr` and :func:`fgr_bf16` switch the others on.
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
def _switch(name: str = "lstmlens_native_step_engine"):
    """The kernel's setter ``name`` (int -> previous int), or None without the kernel."""
    st = status()
    if not st.ok or st.path is None:
        return None
    fn = getattr(ctypes.CDLL(str(st.path)), name)
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
    return fn


def fold_fgr(on: bool | None = None) -> bool | None:
    """Whether full gate recurrence (``fgr``, without layer norm) runs as one recurrent product
    per step, ``[h | s] [W_hh | E]^T``, instead of two (the default: measured faster, see the
    module docstring); sets it when ``on`` is given and returns the setting before (None
    without the native kernel). Both equal the reference."""
    fn = _switch("lstmlens_native_fold_fgr")
    return None if fn is None else bool(fn(-1 if on is None else int(on)))


def fgr_bf16(on: bool | None = None) -> bool | None:
    """Whether float32 kernels run fgr's gate-recurrence product ``s_{t-1} W_gate^T`` with
    bfloat16 operands (float32 accumulation; every other product stays float32): off by
    default. Sets it when ``on`` is given and returns the setting before (None without the
    native kernel). Meant for CPUs with native bf16 (:func:`lstmlens.precision.native_bf16`)."""
    fn = _switch("lstmlens_native_fgr_bf16")
    return None if fn is None else bool(fn(-1 if on is None else int(on)))


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
