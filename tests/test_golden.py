"""Golden values with constant weights, computed independently of the library.

I = H = 1, T = 3, B = 1. Every input weight 0.5, every recurrent weight -0.25, bias_ih 0.1,
bias_hh 0, peepholes 0.3; x = 1, 2, -1; h0 = c0 = 0. The numbers below came from a separate
float64 NumPy loop of the equations in DESIGN section 3; the first step of vanilla by hand:
a = 0.5 + 0.1 = 0.6, i = f = o = σ(0.6) = 0.645656, g = tanh(0.6) = 0.537050,
c = 0.645656 * 0.537050 = 0.346748, h = 0.645656 * tanh(0.346748) = 0.215320.
"""

import pytest
import torch

import lstmlens
from kernel_backends import registered, usable

GOLDEN = {  # variant -> (h_1, h_2, h_3), c_3
    "vanilla": ([0.215319685740438, 0.505191362411124, 0.048209879972837], 0.130549168859557),
    "peephole": ([0.223131086200552, 0.545228363424996, 0.059219850961223], 0.157085724984039),
    "cifg": ([0.223131086200552, 0.457094572559173, 0.072702369593024], 0.189808395150726),
    "nfg": ([0.223131086200552, 0.580412795485182, 0.258971391150582], 0.722698733779279),
}


@pytest.mark.parametrize("backend", registered())
@pytest.mark.parametrize("variant", list(GOLDEN))
def test_golden_values(variant, backend):
    m = lstmlens.LSTM(1, 1, variant=variant, backend=usable(backend)).double()
    with torch.no_grad():
        for name, p in m.named_parameters():
            value = {"weight_ih": 0.5, "weight_hh": -0.25, "bias_ih": 0.1, "bias_hh": 0.0}.get(
                name.rsplit("_l", 1)[0], 0.3
            )
            p.fill_(value)
    x = torch.tensor([1.0, 2.0, -1.0], dtype=torch.double).view(3, 1, 1)
    out, (h, c) = m(x)
    expected_h, expected_c = GOLDEN[variant]
    torch.testing.assert_close(
        out.flatten(), torch.tensor(expected_h, dtype=torch.double), rtol=0, atol=1e-13
    )
    torch.testing.assert_close(
        c.flatten(), torch.tensor([expected_c], dtype=torch.double), rtol=0, atol=1e-13
    )
