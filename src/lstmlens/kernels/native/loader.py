"""Build the native kernel once, cache it per user, load it; or say why it cannot be had.

The C++ sources beside this file (one translation unit, ``ops.cpp``, which includes the headers)
are compiled with one compiler call into ``<cache>/lstmlens_native-<key>.so``, where ``<key>``
hashes the sources, the torch version and the compile command (with the compiler as named, so
the key is known without a compiler): a changed source or a new torch rebuilds it. The cache is
``$LSTMLENS_CACHE_DIR``, else ``$XDG_CACHE_HOME/lstmlens``, else ``~/.cache/lstmlens`` (never
inside the source tree).

Loading a library runs its code, so (see :mod:`.cache`) the cache folder must be private to
this user (created with mode 0700; one owned by someone else or writable by others, or a link
of someone else's, is not used: with a compiler the kernel is then built in a fresh ``mkdtemp``
folder for this process, with one warning line), and a library is loaded only after its
SHA-256 matches the record written beside it when it was built. After loading, the library's
own lists of weight slots, config ints, saved tensors and ops must equal Python's (:mod:`.abi`).
A library that is missing, truncated or altered is (re)built before anything maps it; one that
fails to load is rebuilt once; one that loads but lacks the ops is removed (the process keeps
it mapped under that name, so the next process rebuilds it). Whatever fails, :func:`status`
says so in one line and the callers fall back. A verified cached build is used even when no
compiler is on PATH.

The build needs only a C++20 compiler (``$CXX`` or ``c++``), not ninja (which
``torch.utils.cpp_extension.load`` requires): one compiler call with torch's include paths,
announced in one line (a ``logging`` warning: on stderr unless logging is configured). The
library registers its operators with ``TORCH_LIBRARY`` (``torch.ops.lstmlens_native``), so it
does not depend on the Python version. With MKL inside torch, the per-step matmuls use MKL's
packed GEMM (``cblas_sgemm_pack``) and bfloat16 GEMM; otherwise ATen's. ``LSTMLENS_NATIVE=0``
turns the kernel off.

What went wrong is kept in :func:`status`, one of: ``"disabled"``, ``"no-compiler"``,
``"build-failed"`` (a compile error: a bug to fix, never silently skipped by the tests) and
``"load-failed"`` (the library would not load, lacks the ops, or disagrees with Python).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from . import abi, cache

__all__ = [
    "SOURCES",
    "NativeStatus",
    "build_command",
    "cache_dir",
    "compile_flags",
    "compile_library",
    "library_name",
    "status",
]

#: the sources of the library: ops.cpp includes the headers (one translation unit)
SOURCE_DIR = Path(__file__).parent
SOURCES = ("ops.cpp", *sorted(p.name for p in SOURCE_DIR.glob("*.h")))
LIBRARY_NAME = "lstmlens_native"
BUILD_TIMEOUT_S = 900
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NativeStatus:
    """Whether the compiled kernel is loaded, and if not, why."""

    ok: bool
    reason: str = ""  # "", "disabled", "no-compiler", "build-failed", "load-failed"
    detail: str = ""  # the compiler's or loader's message (last lines)
    path: Path | None = None  # the shared library, when built
    bf16: bool = False  # built with MKL's bfloat16 GEMM (``precision="bf16"`` available)
    note: str = ""  # what the loader had to work around (an unusable cache folder), or ""

    def summary(self) -> str:
        """One line: what happened (the first compiler error, else the last line of detail)."""
        lines = [s.strip() for s in self.detail.splitlines() if s.strip()]
        errors = [s for s in lines if "error" in s.lower()]
        line = (errors or lines or [""])[0 if errors else -1]
        return f"{self.reason}: {line}" if line else self.reason


_STATUS: NativeStatus | None = None
_LOADED: set[tuple[int, int]] = set()  # (device, inode) of the libraries loaded here


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


def compile_flags() -> list[str]:
    """The flags of every compile of these sources: language, defines, ISA, include paths."""
    from torch.utils.cpp_extension import include_paths  # imported late: it is slow to import

    includes = [f"-I{p}" for p in include_paths()]  # no Python.h: the library is not a module
    cxx11_abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    mkl = ["-DLSTMLENS_MKL_PACKED"] if _has_mkl() else []
    return [
        "-std=c++20", "-O3", "-fopenmp", "-DNDEBUG", "-w",
        f"-D_GLIBCXX_USE_CXX11_ABI={cxx11_abi}", *_capability_flags(), *mkl, *includes,
    ]  # fmt: skip


def build_command(compiler: str, source: Path, output: Path) -> list[str]:
    """The one compiler call that turns ``source`` into the shared library ``output``."""
    lib = _torch_lib_dir()
    return [
        compiler, str(source), "-o", str(output), "-shared", "-fPIC", *compile_flags(),
        f"-L{lib}", "-lc10", "-ltorch_cpu", "-ltorch", f"-Wl,-rpath,{lib}",
    ]  # fmt: skip


def _compiler_name() -> str:
    return os.environ.get("CXX") or "c++"


def _find_compiler() -> str | None:
    return shutil.which(_compiler_name())


def library_name() -> str:
    """``lstmlens_native-<key>.so``: the key hashes the sources, torch's version and the compile
    command (the compiler as named, so no compiler is needed to find a cached build)."""
    h = hashlib.sha256()
    for name in SOURCES:
        h.update((SOURCE_DIR / name).read_bytes())
    h.update(torch.__version__.encode())
    h.update(" ".join(build_command(_compiler_name(), Path(SOURCES[0]), Path("out.so"))).encode())
    return f"{LIBRARY_NAME}-{h.hexdigest()[:16]}.so"


def compile_library(source: Path, output: Path, compiler: str) -> NativeStatus:
    """Compile ``source`` into ``output`` (atomically, with its SHA-256 record beside it).
    Never raises for a compile error."""
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
        with open(tmp, "rb") as f:  # on disk before it is named: no truncated library after a crash
            os.fsync(f.fileno())
        os.replace(tmp, output)
        cache.record(output)
        return NativeStatus(True, path=output)
    except (OSError, subprocess.SubprocessError) as e:
        return NativeStatus(False, "build-failed", f"{type(e).__name__}: {e}")
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _first_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"


def _registered_ops() -> set[str]:
    """The ``lstmlens_native`` ops torch has already (from a library loaded earlier)."""
    return {op for op in abi.OPS if hasattr(torch.ops.lstmlens_native, op)}


def _second_build(ident: tuple[int, int]) -> bool:
    """Whether the library with this (device, inode) is not the kernel this process loaded,
    while one is loaded (the ops are registered)."""
    return ident not in _LOADED and bool(_registered_ops())


def _open(path: Path) -> tuple[NativeStatus, str]:
    """Load a verified library and check that it is the kernel these Python files expect.
    Returns the status and, on failure, what to do with the file (see :func:`_load_library`)."""
    problem, action = _load_library(path)
    if problem:
        return NativeStatus(False, "load-failed", f"{path.name} {problem}"), action
    return NativeStatus(True, path=path, bf16=_has_mkl()), "keep"


def _load_library(path: Path) -> tuple[str, str]:
    """``("", "keep")`` once ``path`` is loaded and agrees with Python, else what went wrong and
    what to do with the file:

    * ``"rebuild"``: it would not load (nothing of it stays in the process): build it again;
    * ``"remove"``: it loaded but is not the kernel; the process keeps it mapped under its
      name, so a rebuild under that name could not be loaded here: the next process rebuilds;
    * ``"keep"``: it disagrees with Python (its sources do: a rebuild would too), or it is
      another build than the one this process has (loading it would register the ops twice,
      which aborts the process).
    """
    try:
        st = os.stat(path)
        ident = (st.st_dev, st.st_ino)
        if _second_build(ident):
            return "is not the build of the kernel already loaded in this process", "keep"
        torch.ops.load_library(str(path))
        handle = ctypes.CDLL(str(path))  # the same handle again: this library's own symbols
    except (OSError, RuntimeError) as e:
        return f"failed to load: {_first_line(e)}", "rebuild"
    _LOADED.add(ident)
    describe = getattr(handle, "lstmlens_native_abi", None)
    if describe is None:
        return "lacks the lstmlens_native ops", "remove"
    describe.restype = ctypes.c_char_p
    problem = abi.mismatch(describe().decode())
    if problem:
        return f"disagrees with Python: {problem}", "keep"
    if _registered_ops() != set(abi.OPS):
        return "did not register its ops", "remove"
    return "", "keep"


def _folder(compiler: str | None) -> tuple[Path | None, str]:
    """The cache folder and a note: "" or why the configured folder is not used. With no usable
    folder a compiler builds in a private temporary one; with no compiler either there is
    nothing to build or to trust: (None, note)."""
    wanted = cache_dir()
    try:
        return cache.private_folder(wanted), ""
    except OSError as e:
        note = f"kernel cache {wanted} not used ({e.strerror or e})"
    if compiler is None:
        return None, note
    warnings.warn(
        f"lstmlens: {note}; building the kernel in a private temporary folder for this process",
        RuntimeWarning,
        stacklevel=4,
    )
    return cache.temporary_folder(), note


def _build(path: Path, compiler: str) -> NativeStatus:
    """Compile into ``path`` (atomically replacing whatever is there), saying so on one line."""
    _log.warning("lstmlens: building the native kernel (once, about 30 s) in %s", path.parent)
    return compile_library(SOURCE_DIR / SOURCES[0], path, compiler)


def _load() -> NativeStatus:
    if os.environ.get("LSTMLENS_NATIVE", "1") == "0":
        return NativeStatus(False, "disabled", "LSTMLENS_NATIVE=0")
    compiler = _find_compiler()
    no_compiler = f"no C++ compiler ({_compiler_name()}) on PATH"
    folder, note = _folder(compiler)
    if folder is None:
        return NativeStatus(False, "no-compiler", f"{no_compiler}; {note}", note=note)
    path = folder / library_name()
    problem = cache.verify(path)
    if problem is None:  # a verified build: load it, no compiler needed
        st, action = _open(path)
        if st.ok or action == "keep":
            return _noted(st, note)
        if action == "remove":
            with contextlib.suppress(OSError):
                cache.remove(path)
            return _noted(st, note, "removed: the next process rebuilds it")
        if compiler is None:
            return _noted(st, note, f"{no_compiler} to rebuild it")
        problem = st.detail
    elif compiler is None:
        if problem == cache.MISSING:
            return NativeStatus(False, "no-compiler", no_compiler, note=note)
        return NativeStatus(False, "load-failed", f"{problem}; {no_compiler} to rebuild it")
    st = _build(path, compiler)
    if st.ok:
        st, _ = _open(path)
    return _noted(st, note, "" if problem == cache.MISSING else f"rebuilt because {problem}")


def _noted(st: NativeStatus, note: str, more: str = "") -> NativeStatus:
    """``st`` with the cache note, and ``more`` added to a failure's detail (still one line)."""
    detail = f"{st.detail} ({more})" if more and not st.ok else st.detail
    return NativeStatus(st.ok, st.reason, detail, st.path, st.bf16, note or st.note)


def status() -> NativeStatus:
    """Build (first call only) and load the kernel; the outcome is kept for the process."""
    global _STATUS
    if _STATUS is None:
        try:
            _STATUS = _load()
        except OSError as e:  # an unreadable source or cache file: no kernel, one line
            _STATUS = NativeStatus(False, "load-failed", _first_line(e))
        if _STATUS.ok and os.environ.get("LSTMLENS_STEP_ENGINE"):
            from .engine import apply_environment  # the per-step GEMM engine (engine.py)

            apply_environment()
    return _STATUS
