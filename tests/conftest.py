"""Shared test set-up: CPU only, fixed seeds per test, and the reference data folder.

Warnings are errors (pyproject). CUDA is hidden unless ``LSTMLENS_TEST_GPU=1``
(for the GPU kernel tests on a machine that has one). Torch keeps its default
number of threads.

Hypothesis (the fuzz tests) runs a bounded number of examples: the ``ci`` profile
(selected when ``CI=true``) a fixed 25 per test, derandomised so that a CI run is
repeatable; the ``dev`` profile (the default) 25 random ones. ``HYPOTHESIS_PROFILE``
picks another (``thorough``: 500).
"""

import os

if os.environ.get("LSTMLENS_TEST_GPU") != "1":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch is imported anywhere
os.environ.setdefault("MPLBACKEND", "Agg")  # plots without a display

import random  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

_FUZZ = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile(
    "ci", max_examples=25, derandomize=True, database=None, print_blob=True, **_FUZZ
)
settings.register_profile("dev", max_examples=25, **_FUZZ)
settings.register_profile("thorough", max_examples=500, **_FUZZ)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "dev")
)

SHARED_DATA = Path(__file__).parents[1] / ".." / "shared" / "data"


@pytest.fixture(autouse=True)
def _fixed_seeds() -> None:
    """Every test starts from the same random state: torch, NumPy and ``random`` seeded with 0."""
    torch.manual_seed(0)
    np.random.seed(0)  # noqa: NPY002 (the legacy global RNG, which code under test may use)
    random.seed(0)


@pytest.fixture(scope="module")
def built():
    """The native kernel is loaded (its status); skip only when this machine has no compiler
    or the kernel is switched off, fail with the build's output when the build broke."""
    from lstmlens.kernels.native import loader

    st = loader.status()
    if st.reason in ("no-compiler", "disabled"):
        pytest.skip(f"native kernel not built: {st.summary()}")
    if not st.ok:
        pytest.fail(f"native kernel failed ({st.reason}):\n{st.detail}", pytrace=False)
    return st


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; the test is skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA.resolve()}")
    return SHARED_DATA


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Gradient checks (``test_gradcheck*``, float64 finite differences) are slow: marked so
    that ``make test-fast`` leaves them out; ``make test`` still runs them."""
    for item in items:
        if item.originalname.startswith("test_gradcheck"):  # type: ignore[attr-defined]
            item.add_marker(pytest.mark.slow)
