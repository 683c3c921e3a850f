"""The golden constants of test_golden.py are what tests/make_golden.py computes."""

import pytest

from make_golden import golden
from test_golden import GOLDEN


@pytest.mark.parametrize("variant", list(GOLDEN))
def test_the_generator_reproduces_the_constants(variant):
    hs, c = golden()[variant]
    expected_h, expected_c = GOLDEN[variant]
    assert hs == pytest.approx(expected_h, abs=1e-14) and c == pytest.approx(expected_c, abs=1e-14)
