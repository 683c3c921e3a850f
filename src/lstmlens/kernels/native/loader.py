"""Build the native kernel once, cache it per user, load it; or say why it cannot be had.

The C++ sources beside this file (one translation unit, ``lstm.cpp``) are compiled with one
compiler call into ``<cache>/lstmlens_native-<key>.so``, where ``<key>`` hashes the sources,
the torch version and the compile command, so a changed source or a new torch rebuilds it.
The cache is ``$LSTMLENS_CACHE_DIR``, else ``$XDG_CACHE_HOME/lstmlens``, else
``~/.cache/lstmlens`` (never inside the source tree; a per-user temporary folder when that
cannot be created). The library is written under a temporary name and moved into place, so
processes building at the same time never see half a file.

The build needs only a C++20 compiler (``$CXX`` or ``c++``), not ninja (which
``torch.utils.cpp_extension.load`` requires): one compiler call with torch's include paths.
The library registers its operators with ``TORCH_LIBRARY`` (``torch.ops.lstmlens_native``), so
it does not depend on the Python version. With MKL inside torch, the per-step matmuls use MKL's
packed GEMM (``cblas_sgemm_pack``) and bfloat16 GEMM; otherwise ATen's. ``LSTMLENS_NATIVE=0``
turns the kernel off.

What went wrong is kept in :func:`status`, one of: ``"disabled"``, ``"no-compiler"``,
``"build-failed"`` (a compile error: a bug to fix, never silently skipped by the tests) and
``"load-failed"``.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["SOURCES", "NativeStatus", "build_command", "cache_dir", "compile_library", "status"]

#: the sources of the library: lstm.cpp includes the headers (one translation unit)
SOURCE_DIR = Path(__file__).parent
SOURCES = ("lstm.cpp", "lstm_backward.h", "gru_rnn.h", "common.h")
LIBRARY_NAME = "lstmlens_native"
BUILD_TIMEOUT_S = 900


@dataclass(frozen=True)
class NativeStatus:
    """Whether the compiled kernel is loaded, and if not, why."""

    ok: bool
    reason: str = ""  # "", "disabled", "no-compiler", "build-failed", "load-failed"
    detail: str = ""  # the compiler's or loader's message (last lines)
    path: Path | None = None  # the shared library, when built
    bf16: bool = False  # built with MKL's bfloat16 GEMM (``precision="bf16"`` available)

    def summary(self) -> str:
        """One line: what happened (the first compiler error, else the last line of detail)."""
        lines = [s.strip() for s in self.detail.splitlines() if s.strip()]
        errors = [s for s in lines if "error" in s.lower()]
        line = (errors or lines or [""])[0 if errors else -1]
        return f"{self.reason}: {line}" if line else self.reason


_STATUS: NativeStatus | None = None


def cache_dir() -> Path:
    """Where built libraries are kept (see the module docstring)."""
    if os.environ.get("LSTMLENS_CACHE_DIR"):
        return Path(os.environ["LSTMLENS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lstmlens"


def _torch_lib_dir() -> Path:
    return Path(torch.__file__).parent / "lib"


@functools.cache
def _has_mkl() -> bool:
    """MKL's packed and bfloat16 GEMMs are exported by this torch's libtorch_cpu (x86, MKL)."""
    if not torch.backends.mkl.is_available():
        return False
    try:
        lib = ctypes.CDLL(str(_torch_lib_dir() / "libtorch_cpu.so"))
    except OSError:
        return False
    names = (
        "cblas_sgemm_pack_get_size",
        "cblas_sgemm_pack",
        "cblas_sgemm_compute",
        "MKL_Set_Num_Threads_Local",
        "cblas_gemm_bf16bf16f32",
    )
    return all(hasattr(lib, n) for n in names)


def _capability_flags() -> list[str]:
    """Vector width of ATen's Vectorized<T>, as torch itself dispatches on this CPU."""
    cap = torch.backends.cpu.get_cpu_capability()
    if cap == "AVX512":
        isa = ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma"]
        return ["-DCPU_CAPABILITY=AVX512", "-DCPU_CAPABILITY_AVX512", *isa]
    if cap == "AVX2":
        return ["-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2", "-mavx2", "-mfma", "-mf16c"]
    return []  # Vectorized<T> falls back to portable loops


def build_command(compiler: str, source: Path, output: Path) -> list[str]:
    """The one compiler call that turns ``source`` into the shared library ``output``."""
    from torch.utils.cpp_extension import include_paths  # imported late: it is slow to import

    lib = _torch_lib_dir()
    includes = [f"-I{p}" for p in include_paths()]  # no Python.h: the library is not a module
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    mkl = ["-DLSTMLENS_MKL_PACKED"] if _has_mkl() else []
    return [
        compiler, str(source), "-o", str(output),
        "-shared", "-fPIC", "-std=c++20", "-O3", "-fopenmp", "-DNDEBUG", "-w",
        f"-D_GLIBCXX_USE_CXX11_ABI={abi}", *_capability_flags(), *mkl, *includes,
        f"-L{lib}", "-lc10", "-ltorch_cpu", "-ltorch", f"-Wl,-rpath,{lib}",
    ]  # fmt: skip


def _find_compiler() -> str | None:
    return shutil.which(os.environ.get("CXX") or "c++")


def _key(command: list[str]) -> str:
    h = hashlib.sha256()
    for name in SOURCES:
        h.update((SOURCE_DIR / name).read_bytes())
    h.update(torch.__version__.encode())
    h.update(" ".join(command).encode())
    return h.hexdigest()[:16]


def compile_library(source: Path, output: Path, compiler: str) -> NativeStatus:
    """Compile ``source`` into ``output`` (atomically). Never raises for a compile error."""
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=output.stem + ".", suffix=".tmp.so", dir=output.parent)
    os.close(fd)
    try:
        cmd = build_command(compiler, source, Path(tmp))
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            first = next((k for k, s in enumerate(lines) if "error" in s), 0)
            head = "\n".join(lines[max(0, first - 5) : first + 25])  # the first error, in context
            return NativeStatus(False, "build-failed", head or f"exit status {proc.returncode}")
        os.replace(tmp, output)
        return NativeStatus(True, path=output)
    except (OSError, subprocess.SubprocessError) as e:
        return NativeStatus(False, "build-failed", f"{type(e).__name__}: {e}")
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _load() -> NativeStatus:
    if os.environ.get("LSTMLENS_NATIVE", "1") == "0":
        return NativeStatus(False, "disabled", "LSTMLENS_NATIVE=0")
    compiler = _find_compiler()
    if compiler is None:
        return NativeStatus(
            False, "no-compiler", f"no C++ compiler ({os.environ.get('CXX') or 'c++'}) on PATH"
        )
    source = SOURCE_DIR / SOURCES[0]
    name = f"{LIBRARY_NAME}-{_key(build_command(compiler, source, Path('out.so')))}.so"
    path = cache_dir() / name
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:  # no writable cache folder (read-only home): a private temporary one
            path = Path(tempfile.gettempdir()) / f"lstmlens-{os.getuid()}" / name
    if not path.exists():
        try:
            st = compile_library(source, path, compiler)
        except OSError as e:  # the folder cannot be created or written
            st = NativeStatus(False, "build-failed", f"{type(e).__name__}: {e}")
        if not st.ok:
            return st
    try:
        torch.ops.load_library(str(path))
    except (OSError, RuntimeError) as e:
        return NativeStatus(False, "load-failed", f"{type(e).__name__}: {e}", path)
    return NativeStatus(True, path=path, bf16=_has_mkl())


def status() -> NativeStatus:
    """Build (first call only) and load the kernel; the outcome is kept for the process."""
    global _STATUS
    if _STATUS is None:
        _STATUS = _load()
    return _STATUS
