"""Regenerate the constants of ``tests/test_golden.py`` from a float64 NumPy loop.

    python tests/make_golden.py        # prints the GOLDEN dict to paste into test_golden.py

Independent of lstmlens: the LSTM equations written out for I = H = 1, T = 3, B = 1 with
constant weights (every input weight 0.5, every recurrent weight -0.25, bias_ih 0.1, bias_hh
0, peepholes 0.3), x = 1, 2, -1 and h0 = c0 = 0 (docs/design.md, "Variants")::

    a_k = 0.5 x + 0.1 - 0.25 h          (k = i, f, g, o: input + recurrent pre-activation)
    i = σ(a_i + p c),  f = σ(a_f + p c),  g = tanh(a_g)
    c' = f c + i g,    o = σ(a_o + p c'), h' = o tanh(c')

``vanilla`` has no peepholes (p = 0); ``peephole`` has them; ``cifg`` couples f = 1 - i;
``nfg`` has no forget gate (f = 1).
"""

from __future__ import annotations

import math

W_IH, W_HH, B_IH, B_HH, PEEP = 0.5, -0.25, 0.1, 0.0, 0.3
X = (1.0, 2.0, -1.0)
VARIANTS = ("vanilla", "peephole", "cifg", "nfg")


def _sigmoid(a: float) -> float:
    return 1.0 / (1.0 + math.exp(-a))


def run(variant: str) -> tuple[list[float], float]:
    """``([h_1, h_2, h_3], c_3)`` of one variant."""
    import numpy as np

    p = 0.0 if variant == "vanilla" else PEEP
    h, c = np.float64(0.0), np.float64(0.0)
    hs = []
    for x in X:
        a = np.float64(W_IH * x + B_IH + W_HH * h + B_HH)  # the same for every gate
        i = _sigmoid(a + p * c)
        f = {"cifg": 1.0 - i, "nfg": 1.0}.get(variant, _sigmoid(a + p * c))
        g = math.tanh(a)
        c = f * c + i * g
        o = _sigmoid(a + p * c)
        h = o * math.tanh(c)
        hs.append(float(h))
    return hs, float(c)


def golden() -> dict[str, tuple[list[float], float]]:
    """The ``GOLDEN`` dict of test_golden.py: variant -> ((h_1, h_2, h_3), c_3)."""
    return {v: run(v) for v in VARIANTS}


def main() -> None:
    print("GOLDEN = {  # variant -> (h_1, h_2, h_3), c_3")
    for variant, (hs, c) in golden().items():
        print(f'    "{variant}": ([{", ".join(f"{v:.15f}" for v in hs)}], {c:.15f}),')
    print("}")


if __name__ == "__main__":
    main()
