"""The compiled kernel as a registered backend: CPU, float32 / float64 (bf16 matmuls optional).

Availability is :func:`.loader.status`: the first question builds the library (about 30 s,
then cached per user), and that first build says so beforehand in one warning line
(:class:`NativeBuildNotice`), so a first run does not sit silent. When the kernel cannot be
had the registry runs this backend's fallback (``fused``) and says so once.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import torch

from ...cells import CellSpec
from ..registry import NO_MASKS, Support
from . import loader
from .functions import bf16_requested, gru_native, lstm_native, rnn_native

__all__ = ["Native", "NativeBuildNotice"]

DTYPES = (torch.float32, torch.float64)


class NativeBuildNotice(UserWarning):
    """Said once, before the first (slow) build of the native kernel on this machine."""


def _build_pending() -> bool:
    """Whether asking for the kernel now will compile it (not built yet, nor cached).

    Best effort, from the loader's own naming of the cached library: a wrong guess only
    costs the notice line, never the build itself. A loader that names its library another
    way (and then says so itself, right before compiling) gets no second line from here.
    """
    if loader._STATUS is not None or os.environ.get("LSTMLENS_NATIVE", "1") == "0":
        return False
    try:
        compiler = loader._find_compiler()
        if compiler is None:
            return False
        source = loader.SOURCE_DIR / loader.SOURCES[0]
        key = loader._key(loader.build_command(compiler, source, Path("out.so")))
        name = f"{loader.LIBRARY_NAME}-{key}.so"
        private_tmp = Path(tempfile.gettempdir()) / f"lstmlens-{os.getuid()}"
        return not any((folder / name).exists() for folder in (loader.cache_dir(), private_tmp))
    except (AttributeError, OSError, ValueError, TypeError):  # the loader changed its layout
        return False


class Native:
    """``torch.ops.lstmlens_native``: the fused scheme in C++, every LSTM variant and option."""

    name = "native"
    records = False

    def available(self) -> Support:
        if _build_pending():
            warnings.warn(
                "lstmlens: building the native kernel once, about 30 s "
                f"(cached in {loader.cache_dir()})",
                NativeBuildNotice,
                stacklevel=2,
            )
        st = loader.status()
        return Support(st.ok, "" if st.ok else st.summary())

    def supports(
        self, mode: str, device: torch.device, dtype: torch.dtype, spec: CellSpec | None
    ) -> Support:
        if device.type != "cpu":
            return Support(False, f"the native kernel runs on CPU only, got device {device}")
        bf16_autocast = (
            dtype == torch.bfloat16
            and mode == "LSTM"
            and bf16_requested(None)
            and loader.status().bf16
        )
        if dtype not in DTYPES and not bf16_autocast:
            return Support(False, f"the native kernel runs float32 and float64, got {dtype}")
        return Support(True)

    def lstm(self, x, h0, c0, p, spec, masks=NO_MASKS, recorder=None):
        return lstm_native(x, h0, c0, p, spec, masks.keep_h, masks.keep_c, masks.rmask)

    def gru(self, x, h0, p, masks=NO_MASKS, recorder=None):
        return gru_native(x, h0, p, masks.keep_h)

    def rnn(self, x, h0, p, nonlinearity, masks=NO_MASKS, recorder=None):
        return rnn_native(x, h0, p, nonlinearity, masks.keep_h)
