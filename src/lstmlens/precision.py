"""Whether this CPU runs bfloat16 matmuls natively, and the policy for ``precision="bf16"``.

Native bfloat16 means the CPU has dot-product instructions for it: ``avx512_bf16`` or
``amx_bf16`` on x86 (Intel Cooper Lake, Sapphire Rapids and later; AMD Zen 4 has
``avx512_bf16``), ``bf16`` on aarch64. Without them oneDNN and MKL still accept bfloat16 but
emulate it: measured on an AVX2-only AMD EPYC, a bf16 matmul ran at 13-19 GFLOP/s against
130 GFLOP/s in fp32, so ``--precision bf16`` would train several times slower.

The policy (one place, used by the CLI and :class:`~lstmlens.train.Trainer`): on a CPU
without native bfloat16, ``precision="bf16"`` is **refused** with one line (CLI: exit 2;
library: ``ValueError``) rather than silently mapped to fp32, so a run's recorded precision is
always the one that ran. CUDA devices are not checked here.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

import torch

__all__ = ["BF16_FLAGS", "check_precision", "cpu_flags", "cpu_model", "native_bf16"]

#: /proc/cpuinfo flags that mean native bfloat16 dot products
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The first CPU's feature flags (``flags`` on x86, ``Features`` on aarch64); empty where
    /proc/cpuinfo is absent."""
    for line in _cpuinfo().splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (``lscpu``'s "Model name"), or the platform's processor string."""
    for line in _cpuinfo().splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "model name":
            return value.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU has bfloat16 dot-product instructions (see the module docstring).

    From /proc/cpuinfo's flags; where there is none (not Linux), from oneDNN's own check."""
    flags = cpu_flags()
    if flags:
        return any(f in flags for f in BF16_FLAGS)
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def check_precision(precision: str, device: str | torch.device, owner: str) -> None:
    """Refuse ``precision="bf16"`` on a CPU that would emulate it (a ``ValueError`` naming
    ``owner``, one line); anything else passes."""
    if precision != "bf16" or torch.device(device).type != "cpu" or native_bf16():
        return
    raise ValueError(
        f"{owner}: bfloat16 needs a CPU with native bf16 ({' or '.join(BF16_FLAGS[:2])}); this "
        f"one ({cpu_model()}) would emulate it, several times slower than fp32: use fp32"
    )
