"""The kernel cache lets no one else plant a library, and a broken build never kills a run.

Issue 17 item 2 and issue 10's one definition of the Python/C++ lists. The tests call
``loader._load()`` (what ``status()`` runs once per process) against cache folders made here:

* a library planted at the exact name the loader looks for, in a folder someone else can write,
  is never loaded (its constructor would leave a marker file);
* a cached, verified build loads with no compiler on PATH; a truncated one is caught by its
  SHA-256 before it is mapped (mapping it would SIGBUS) and is rebuilt, or falls back with one
  line; a library without the ops, or one that fails to load, is unavailable, not "ok";
* the library's slot / config / saved / op lists equal Python's, or it is refused.

Nothing here compiles the kernel: a "compiler" script stands in that hard-links the real build
(the same inode, which the dynamic loader recognises as already loaded).
"""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

from lstmlens.cells import CellSpec
from lstmlens.kernels.native import abi, cache, loader
from lstmlens.variants import resolve_variant

LN = shutil.which("ln")  # found now: the tests empty PATH
PLANTED = r"""
#include <cstdio>
#include <cstdlib>
__attribute__((constructor)) static void planted() {  // what an attacker's code would do
  if (const char* p = std::getenv("LSTMLENS_PLANTED_MARKER"))
    if (FILE* f = std::fopen(p, "w")) std::fclose(f);
}
"""


@pytest.fixture(scope="module")
def planted_lib(tmp_path_factory, built):
    """A shared library that is not the kernel: loading it leaves the marker file."""
    d = tmp_path_factory.mktemp("planted")
    (d / "planted.cpp").write_text(PLANTED)
    compiler = loader._find_compiler()
    if compiler is None:
        pytest.skip("no C++ compiler to build a stand-in library")
    cmd = [compiler, "-shared", "-fPIC", str(d / "planted.cpp"), "-o", str(d / "planted.so")]
    subprocess.run(cmd, check=True, capture_output=True)
    return d / "planted.so"


@pytest.fixture
def env(monkeypatch, tmp_path, built):
    """No compiler on PATH, a marker for planted code, and a private folder on the real build's
    file system (so the real build can be hard-linked into it)."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("CXX", raising=False)
    marker = tmp_path / "planted-code-ran"
    monkeypatch.setenv("LSTMLENS_PLANTED_MARKER", str(marker))
    linkable = Path(tempfile.mkdtemp(prefix="test-", dir=built.path.parent))
    monkeypatch.setattr(tempfile, "tempdir", str(linkable))  # temporary_folder() lands here too
    yield SimpleNamespace(marker=marker, linkable=linkable, tmp=tmp_path)
    shutil.rmtree(linkable, ignore_errors=True)


def fake_compiler(monkeypatch, env, built) -> Path:
    """``$CXX``: a script that "compiles" by hard-linking the real build; counts its runs."""
    log = env.tmp / "compiler-runs"
    script = env.tmp / "fake-cxx"
    script.write_text(
        "#!/bin/sh\n"
        f"echo run >> '{log}'\n"
        'while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done\n'
        f"exec '{LN}' -f '{built.path}' \"$out\"\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("CXX", str(script))
    return log


def runs(log: Path) -> int:
    return len(log.read_text().split()) if log.exists() else 0


def plant(folder: Path, library: Path, *, link: bool = False) -> Path:
    """Put ``library`` where the loader looks, with a matching SHA-256 record (an attacker who
    can write the folder can write both)."""
    path = folder / loader.library_name()
    (os.link if link else shutil.copy)(library, path)
    cache.record(path)
    return path


def one_line(st) -> None:
    assert "\n" not in st.detail and "\n" not in st.summary()


# -- folders no one else can write ---------------------------------------------------------------


UNSAFE = {
    "world-writable": "writable by others (mode 0777)",
    "group-writable": "writable by others (mode 0770)",
    "owned by another user": "owned by uid 65534, not by this user",
    "link to a world-writable folder": "writable by others (mode 0777)",
}


def unsafe_folder(how: str, tmp: Path) -> Path:
    folder = tmp / "cache"
    folder.mkdir(exist_ok=True)
    if how == "owned by another user":
        if os.geteuid() != 0:
            pytest.skip("needs root to give a folder to another user")
        os.chown(folder, 65534, 65534)
    else:
        folder.chmod(0o770 if how == "group-writable" else 0o777)
    if how.startswith("link"):
        (tmp / "link").symlink_to(folder)
        return tmp / "link"
    return folder


@pytest.mark.parametrize("how", list(UNSAFE))
def test_library_planted_in_an_unsafe_folder_is_not_loaded(monkeypatch, env, planted_lib, how):
    folder = unsafe_folder(how, env.tmp)
    plant(folder, planted_lib)
    monkeypatch.setenv("LSTMLENS_CACHE_DIR", str(folder))
    st = loader._load()
    assert not env.marker.exists()  # the planted code never ran
    assert (st.ok, st.reason) == (False, "no-compiler")
    assert f"kernel cache {folder} not used ({UNSAFE[how]}" in st.detail
    one_line(st)


def test_unsafe_folder_with_a_compiler_builds_in_a_private_temporary_one(
    monkeypatch, env, planted_lib, built
):
    folder = unsafe_folder("world-writable", env.tmp)
    monkeypatch.setenv("LSTMLENS_CACHE_DIR", str(folder))
    log = fake_compiler(monkeypatch, env, built)
    plant(folder, planted_lib)  # under the name this compiler's build would have
    with pytest.warns(RuntimeWarning, match=r"not used \(writable by others.*temporary folder"):
        st = loader._load()
    assert not env.marker.exists()
    assert st.ok and runs(log) == 1 and "writable by others" in st.note
    private = st.path.parent
    assert private != folder and private.parent == env.linkable
    mode = os.stat(private)
    assert stat.S_IMODE(mode.st_mode) == 0o700 and mode.st_uid == os.geteuid()


def test_a_new_cache_folder_is_private(monkeypatch, env):
    folder = env.tmp / "fresh" / "lstmlens"
    monkeypatch.setenv("LSTMLENS_CACHE_DIR", str(folder))
    assert loader._load().reason == "no-compiler"
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700


def test_a_link_of_ours_to_a_private_folder_is_used(monkeypatch, env, built):
    plant(env.linkable, built.path, link=True)
    (env.tmp / "link").symlink_to(env.linkable)
    monkeypatch.setenv("LSTMLENS_CACHE_DIR", str(env.tmp / "link"))
    st = loader._load()
    assert st.ok and st.path == env.linkable / loader.library_name()


# -- verified builds -----------------------------------------------------------------------------


def test_cached_build_is_used_without_a_compiler(monkeypatch, env, built):
    assert loader._find_compiler() is None
    path = plant(env.linkable, built.path, link=True)
    monkeypatch.setenv("LSTMLENS_CACHE_DIR", str(env.linkable))
    st = loader._load()
    assert st.ok and st.path == path and st.note == ""


def truncated(folder: Path, built) -> Path:
    """A copy of the real build cut in half after its record was written (a crash mid-copy)."""
    path = folder / loader.library_name()
    shutil.copy(built.path, path)
    cache.record(path)
    os.truncate(path, path.stat().st_size // 2)
    return path


def test_truncated_library_is_never_mapped_and_falls_back_in_one_line(monkeypatch, env, built):
    truncated(env.linkable, built)
    monkeypatch.setenv("LSTMLENS_CACHE_DIR", str(env.linkable))
    st = loader._load()  # mapping it would kill this process with SIGBUS
    assert (st.ok, st.reason) == (False, "load-failed")
    assert "does not match its recorded SHA-256" in st.detail and "no C++ compiler" in st.detail
    one_line(st)


def test_truncated_library_is_rebuilt_once(monkeypatch, env, built):
    log = fake_compiler(monkeypatch, env, built)
    path = truncated(env.linkable, built)
    monkeypatch.setenv("LSTMLENS_CACHE_DIR", str(env.linkable))
    st = loader._load()
    assert st.ok and st.path == path and runs(log) == 1
    assert path.stat().st_size == built.path.stat().st_size and cache.verify(path) is None


@pytest.mark.slow
def test_a_fresh_process_rebuilds_a_truncated_library(monkeypatch, env, built):
    """End to end, in a new process: the truncated library is caught, rebuilt and loaded."""
    log = fake_compiler(monkeypatch, env, built)
    truncated(env.linkable, built)
    monkeypatch.setenv("LSTMLENS_CACHE_DIR", str(env.linkable))
    code = "from lstmlens.kernels.native import loader; st = loader.status(); print(st.ok, st.path)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True", str(env.linkable / loader.library_name())]
    assert runs(log) == 1 and "building the native kernel" in proc.stderr


@pytest.mark.parametrize("compiler", [False, True])
@pytest.mark.parametrize("what", ["without the ops", "not a library"])
def test_a_library_without_the_ops_is_unavailable(
    monkeypatch, env, built, planted_lib, what, compiler
):
    """One that fails to load is rebuilt (with a compiler) or reported; one that loads but lacks
    the ops is removed, and reported: this process has it mapped under the library's name, so
    a rebuild could not be loaded here (the next process rebuilds it)."""
    log = fake_compiler(monkeypatch, env, built) if compiler else env.tmp / "none"
    bogus = env.tmp / "bogus.so"
    bogus.write_bytes(b"\x7fELF, or so it says")
    path = plant(env.linkable, planted_lib if what == "without the ops" else bogus)
    monkeypatch.setenv("LSTMLENS_CACHE_DIR", str(env.linkable))
    # as in a fresh process (this one has the kernel, and so refuses any other library)
    monkeypatch.setattr(loader, "_second_build", lambda ident: False)
    st = loader._load()
    if what == "not a library" and compiler:
        assert st.ok and st.path == path and runs(log) == 1
        return
    assert (st.ok, st.reason) == (False, "load-failed") and runs(log) == 0
    if what == "not a library":
        assert "failed to load: OSError" in st.detail and "no C++ compiler" in st.detail
    else:
        assert "lacks the lstmlens_native ops (removed" in st.detail and not path.exists()
    one_line(st)


def test_a_second_build_is_refused_not_loaded(monkeypatch, env, built):
    """Loading another copy of the kernel would abort the process (ops registered twice)."""
    plant(env.linkable, built.path)  # a copy: another inode
    monkeypatch.setenv("LSTMLENS_CACHE_DIR", str(env.linkable))
    st = loader._load()
    assert (st.ok, st.reason) == (False, "load-failed")
    assert "not the build of the kernel already loaded" in st.detail


def test_records_are_checked(env, built):
    path = plant(env.linkable, built.path, link=True)
    assert cache.verify(path) is None
    assert cache.verify(env.linkable / "absent.so") == cache.MISSING
    side = path.with_name(path.name + ".sha256")
    side.write_text("0" * 64 + "\n")
    assert "does not match its recorded SHA-256" in cache.verify(path)
    side.unlink()
    assert "no usable SHA-256 record" in cache.verify(path)
    link = env.linkable / "link.so"
    link.symlink_to(path)
    assert "cannot be checked" in cache.verify(link)


def test_a_library_writable_by_others_is_refused(env, built):
    path = env.linkable / "lib.so"
    shutil.copy(built.path, path)
    cache.record(path)
    path.chmod(0o666)
    assert "writable by others (mode 0666)" in cache.verify(path)


# -- one definition of the Python/C++ lists ------------------------------------------------------


def test_library_lists_equal_python_lists(built):
    import ctypes

    fn = ctypes.CDLL(str(built.path)).lstmlens_native_abi
    fn.restype = ctypes.c_char_p
    lists = abi.parse(fn().decode())
    assert lists["lstm_slots"] == abi.LSTM_SLOTS and lists["lstm_config"] == abi.LSTM_CONFIG
    assert lists["lstm_saved"] == abi.LSTM_SAVED and lists["ops"] == abi.OPS
    assert lists["simple_slots"] == abi.SIMPLE_SLOTS and lists["gru_saved"] == abi.GRU_SAVED
    assert abi.mismatch(fn().decode()) is None


def test_a_library_that_disagrees_with_python_is_refused(monkeypatch, env, built):
    swapped = ("weight_ih", "weight_hh", "bias_hh", "bias_ih", *abi.LSTM_SLOTS[4:])
    monkeypatch.setitem(abi._EXPECTED, "lstm_slots", swapped)
    log = fake_compiler(monkeypatch, env, built)
    plant(env.linkable, built.path, link=True)
    monkeypatch.setenv("LSTMLENS_CACHE_DIR", str(env.linkable))
    st = loader._load()
    assert (st.ok, st.reason) == (False, "load-failed")
    msg = "disagrees with Python: lstm_slots differ at position 2: the library has 'bias_ih', "
    assert msg + "Python has 'bias_hh'" in st.detail
    assert runs(log) == 0  # the sources disagree: a rebuild would too
    one_line(st)


def test_mismatch_names_the_first_difference():
    text = "".join(f"{k}={','.join(v)};" for k, v in abi._EXPECTED.items())
    assert abi.mismatch(text) is None
    assert abi.mismatch(text.replace(",bf16", "")) == (
        "lstm_config differ at position 11: the library has '(end)', Python has 'bf16'"
    )
    assert abi.mismatch(text.replace("ops=", "opz=")) == "the library does not list its ops"


def test_config_is_built_by_name():
    spec = CellSpec(resolve_variant("cifg"), 7, 3, True)
    cfg = dict(zip(abi.LSTM_CONFIG, abi.lstm_config(spec, bf16=True), strict=True))
    assert cfg == {"has_i": 1, "has_f": 0, "has_o": 1, "coupled": 1, "peepholes": 1,
                   "tanh_in": 1, "tanh_out": 1, "full_gate_recurrence": 0, "layer_norm": 1,
                   "hidden_size": 7, "proj_size": 3, "bf16": 1}  # fmt: skip


@pytest.mark.slow
def test_headers_are_self_contained(built):
    """Each header compiles on its own: it includes what it uses (about 10 s of CPU each)."""
    compiler = loader._find_compiler()

    def syntax_check(header: Path) -> str:
        cmd = [compiler, "-fsyntax-only", "-x", "c++", *loader.compile_flags(), "-include",
               str(header), "/dev/null"]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        return "" if proc.returncode == 0 else f"{header.name}: {proc.stderr[-1500:]}"

    headers = sorted(loader.SOURCE_DIR.glob("*.h"))
    with ThreadPoolExecutor(max_workers=min(len(headers), os.cpu_count() or 1)) as pool:
        failed = [msg for msg in pool.map(syntax_check, headers) if msg]
    assert not failed, "\n".join(failed)
