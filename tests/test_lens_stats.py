"""Lens statistics on hand-made gate arrays, with numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lens_standin import StandInTrace
from lstmlens.lens.stats import (
    correlation,
    half_life,
    half_life_of,
    interpretable_units,
    mean_activation,
    one_sequence,
    saturation,
    series_signals,
    steps,
    text_signals,
    top_correlated,
)

# forget gate, T = 4 steps, H = 4 units (columns)
#   unit 0: 0.25 0.25 1 1   -> geometric mean of f = 0.5 -> half-life 1; median 0.625
#   unit 1: always 1        -> never forgets: half-life inf, 100 % right-saturated
#   unit 2: 0.05 0.1 0.9 0.95 -> the thresholds are strict: 1 left, 1 right
#   unit 3: 0.5 0.5 0.5 0   -> one step wipes the cell: geometric half-life 0
FORGET = np.array(
    [
        [0.25, 1.0, 0.05, 0.5],
        [0.25, 1.0, 0.10, 0.5],
        [1.00, 1.0, 0.90, 0.5],
        [1.00, 1.0, 0.95, 0.0],
    ]
)


def test_saturation_counts_strictly_below_and_above_the_thresholds():
    sat = saturation(FORGET)
    np.testing.assert_array_equal(sat.left, [0.0, 0.0, 0.25, 0.25])
    np.testing.assert_array_equal(sat.right, [0.5, 1.0, 0.25, 0.0])


def test_saturation_thresholds_can_be_moved():
    sat = saturation(FORGET, low=0.3, high=0.99)
    np.testing.assert_array_equal(sat.left, [0.5, 0.0, 0.5, 0.25])
    np.testing.assert_array_equal(sat.right, [0.5, 1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="saturation: expected low < high"):
        saturation(FORGET, low=0.9, high=0.1)


def test_mean_activation_per_unit():
    np.testing.assert_allclose(mean_activation(FORGET), [0.625, 1.0, 0.5, 0.375])


def test_half_life_of_handles_one_and_zero():
    hl = half_life_of([1.0, 0.5, 0.25, 0.0, 0.125])
    assert hl[0] == math.inf  # f -> 1: nothing is forgotten
    np.testing.assert_allclose(hl[1:], [1.0, 0.5, 0.0, 1.0 / 3.0])  # 0.125**(1/3) = 0.5
    with pytest.raises(ValueError, match=r"half_life_of: expected forget-gate values in \[0, 1\]"):
        half_life_of([0.5, 1.5])


def test_half_life_geometric_and_median():
    hl = half_life(FORGET)
    assert hl[0] == pytest.approx(1.0)  # exp(mean ln f) = sqrt(0.25) = 0.5
    assert hl[1] == math.inf
    assert hl[2] == pytest.approx(math.log(0.5) / np.mean(np.log([0.05, 0.1, 0.9, 0.95])))
    assert hl[3] == 0.0
    med = half_life(FORGET, reduce="median")
    assert med[0] == pytest.approx(math.log(0.5) / math.log(0.625))  # 1.4748...
    assert med[3] == pytest.approx(1.0)  # the median step keeps 0.5: a rare reset is ignored
    with pytest.raises(ValueError, match="half_life: reduce must be"):
        half_life(FORGET, reduce="mean")


def test_half_life_near_one_is_large_and_finite():
    f = np.full((10, 1), 1 - 1e-6)
    assert half_life(f)[0] == pytest.approx(math.log(0.5) / math.log(1 - 1e-6), rel=1e-6)


# batch of B = 2 sequences, T = 3, H = 1; sequence 1 has one valid step, then padding
BATCH = np.array([[[0.0], [0.95]], [[0.5], [0.0]], [[1.0], [0.0]]])  # (T, B, H)


def test_lengths_leave_out_padded_steps():
    sat = saturation(BATCH, lengths=[3, 1])  # valid values: 0, 0.5, 1, 0.95
    assert sat.left[0] == pytest.approx(1 / 4)
    assert sat.right[0] == pytest.approx(2 / 4)
    assert mean_activation(BATCH, lengths=[3, 1])[0] == pytest.approx(2.45 / 4)
    assert saturation(BATCH).left[0] == pytest.approx(3 / 6)  # padding counted without lengths


def test_batch_first_and_mask_give_the_same_numbers():
    mask = np.array([[True, True], [True, False], [True, False]])  # (T, B)
    expected = mean_activation(BATCH, lengths=[3, 1])
    np.testing.assert_allclose(mean_activation(BATCH, mask=mask), expected)
    bf = BATCH.transpose(1, 0, 2)  # (B, T, H)
    np.testing.assert_allclose(mean_activation(bf, lengths=[3, 1], batch_first=True), expected)
    np.testing.assert_allclose(mean_activation(bf, mask=mask.T, batch_first=True), expected)


def test_tensors_are_accepted_and_shapes_checked():
    t = torch.tensor(FORGET, dtype=torch.float32, requires_grad=True)
    np.testing.assert_allclose(saturation(t).right, [0.5, 1.0, 0.25, 0.0])
    with pytest.raises(ValueError, match=r"steps: expected values shaped \(T, H\) or \(T, B, H\)"):
        steps(np.zeros(5))
    with pytest.raises(ValueError, match=r"expected lengths of shape \(2,\)"):
        steps(BATCH, lengths=[3, 1, 1])
    with pytest.raises(ValueError, match="lengths needs batched values"):
        steps(FORGET, lengths=[4])


def test_one_sequence_picks_and_cuts():
    np.testing.assert_array_equal(one_sequence(BATCH, 1, lengths=[3, 1]), [[0.95]])
    bf = BATCH.transpose(1, 0, 2)
    np.testing.assert_array_equal(one_sequence(bf, 0, batch_first=True), BATCH[:, 0])
    np.testing.assert_array_equal(one_sequence(FORGET), FORGET)
    with pytest.raises(ValueError, match=r"batch_index must be in \[0, 2\)"):
        one_sequence(BATCH, 2)


# units against the signal s = 1 2 3 4: +1, -1, constant (nan), and 0
SIGNAL = np.array([1.0, 2.0, 3.0, 4.0])
UNITS = np.array([[2.0, 4.0, 7.0, 1.0], [4.0, 3.0, 7.0, 0.0], [6.0, 2.0, 7.0, 0.0], [8, 1, 7, 1]])


def test_correlation_is_pearson_per_unit():
    r = correlation(UNITS, SIGNAL)
    np.testing.assert_allclose(r[[0, 1, 3]], [1.0, -1.0, 0.0], atol=1e-12)
    assert np.isnan(r[2])
    rng = np.random.default_rng(1)
    a, s = rng.normal(size=(50, 3)), rng.normal(size=50)
    expected = [np.corrcoef(a[:, u], s)[0, 1] for u in range(3)]
    np.testing.assert_allclose(correlation(a, s), expected, rtol=1e-12)


def test_top_correlated_sorts_by_strength_and_drops_constant_units():
    top = top_correlated(UNITS, SIGNAL, k=5, name="s")
    assert [u.unit for u in top] == [0, 1, 3]
    assert [round(u.r, 9) for u in top] == [1.0, -1.0, 0.0]
    assert {u.signal for u in top} == {"s"}
    assert [u.unit for u in top_correlated(UNITS, SIGNAL, k=1)] == [0]


def test_correlation_with_a_batched_signal_and_lengths():
    values = np.stack([UNITS, UNITS[::-1]], axis=1)  # (T, 2, H)
    signal = np.stack([SIGNAL, SIGNAL[::-1]], axis=1)  # (T, 2)
    r = correlation(values, signal, lengths=[4, 4])
    np.testing.assert_allclose(r[[0, 1]], [1.0, -1.0], atol=1e-12)
    with pytest.raises(ValueError, match=r"expected a signal of shape \(4, 2\)"):
        correlation(values, SIGNAL)


def test_text_signals_by_hand():
    sig = text_signals('a"b"(c)\nd')
    #                   a  "  b  "  (  c  )  \n d
    np.testing.assert_array_equal(sig["position_in_line"], [1, 2, 3, 4, 5, 6, 7, 0, 1])
    np.testing.assert_array_equal(sig["inside_quotes"], [0, 1, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(sig["inside_brackets"], [0, 0, 0, 0, 1, 1, 0, 0, 0])


def test_text_signals_nesting_typographic_quotes_and_tokens():
    sig = text_signals("([x])) \u201cy\u201d")
    np.testing.assert_array_equal(sig["inside_brackets"], [1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(sig["inside_quotes"], [0, 0, 0, 0, 0, 0, 0, 1, 1, 0])
    words = text_signals(["ab", " (cd", ")", "\n", "e"])  # read at each token's last char
    np.testing.assert_array_equal(words["position_in_line"], [2, 6, 7, 0, 1])
    np.testing.assert_array_equal(words["inside_brackets"], [0, 1, 0, 0, 0])


def test_series_signals():
    sig = series_signals([3.0, 5.0, 4.0])
    np.testing.assert_array_equal(sig["value"], [3, 5, 4])
    np.testing.assert_array_equal(sig["change"], [0, 2, -1])


def test_interpretable_units_finds_the_unit_that_counts_columns():
    text = "to be\nor not\nto be, that\n"
    pos = text_signals(text)["position_in_line"]
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(len(text), 4))
    cell = noise.copy()
    cell[:, 2] = 0.1 * pos + 0.01 * noise[:, 2]  # unit 2 of layer 1 tracks the column
    layer0 = {"cell": noise, "hidden": np.tanh(noise)}
    layer1 = {"cell": cell, "hidden": np.tanh(noise[::-1])}
    trace = StandInTrace("lstm", [[layer0], [layer1]])
    found = interpretable_units(trace, text_signals(text), k=3)
    assert (found[0].layer, found[0].gate, found[0].unit) == (1, "cell", 2)
    assert found[0].signal == "position_in_line"
    assert found[0].r == pytest.approx(correlation(cell, pos)[2])
    assert found[0].r > 0.99
    assert len(found) == 3 and abs(found[1].r) <= abs(found[0].r)
    with pytest.raises(ValueError, match="interpretable_units: expected k >= 1"):
        interpretable_units(trace, text_signals(text), k=0)
