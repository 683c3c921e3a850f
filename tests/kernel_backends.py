"""The registered kernel backends, for tests that run on every one of them.

Parametrise over :func:`registered` (read from the registry when the test module is
collected, so a backend registered before collection is tested like the built-in ones) and
call :func:`usable` first in the test: it skips a backend this machine cannot run (the native
kernel without a compiler; ``test_native.py`` FAILS on a real build error).
"""

import pytest

from lstmlens.kernels import registry


def registered(*, without: tuple[str, ...] = ()) -> list[str]:
    """Every registered backend, ``auto``'s order, minus ``without``."""
    return [name for name in registry.names() if name not in without]


def usable(name: str) -> str:
    """``name``, or skip the test when that backend cannot run here."""
    info = {b.name: b for b in registry.backends()}
    if name not in info:
        pytest.skip(f"backend {name!r} is no longer registered")
    if not info[name].available:
        pytest.skip(f"backend {name!r} unavailable here: {info[name].reason}")
    return name
