"""Lens pictures: each figure draws exactly the numbers it is given; PNGs are written atomically."""

from __future__ import annotations

import numpy as np
import pytest

from lens_standin import GRU_GATES, StandInTrace, random_lstm_trace
from lstmlens.lens.plots import (
    cell_trajectories_figure,
    gate_heatmaps_figure,
    pick_units,
    saturation_figure,
    save_png,
    text_heat_figure,
    write_pngs,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# T = 4 steps, H = 3 units; unit 1 always open, unit 2 half shut
FORGET = np.array([[0.5, 0.95, 0.05], [0.5, 0.95, 0.05], [0.95, 0.95, 0.5], [0.05, 0.95, 0.5]])
INPUT = 1.0 - FORGET


def test_saturation_scatter_puts_each_unit_at_its_fractions():
    fig = saturation_figure([{"input": INPUT, "forget": FORGET, "cell": FORGET * 3}])
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["input gate", "forget gate"]  # no panel for cell
    forget_points = axes[1].collections[0].get_offsets()
    # unit 0: one step < 0.1 and one > 0.9 of four; unit 1: always > 0.9; unit 2: half < 0.1
    np.testing.assert_allclose(forget_points, [[0.25, 0.25], [0.0, 1.0], [0.5, 0.0]])
    input_points = axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(input_points, [[0.25, 0.25], [1.0, 0.0], [0.0, 0.5]])


def test_saturation_scatter_colours_layers_and_refuses_no_sigmoid_gate():
    fig = saturation_figure([{"forget": FORGET}, {"forget": INPUT}])
    assert len(fig.get_axes()[0].collections) == 2  # one point cloud per layer
    with pytest.raises(ValueError, match="saturation_figure: expected at least one of the gates"):
        saturation_figure({"cell": FORGET})


def test_heatmaps_show_the_chosen_units_over_time():
    cell = np.arange(12.0).reshape(4, 3) - 6
    fig = gate_heatmaps_figure({"forget": FORGET, "cell": cell}, units=[2, 0], tokens="abcd")
    ax_f, ax_c = fig.get_axes()[:2]  # the colour bars come after
    np.testing.assert_array_equal(ax_f.images[0].get_array(), FORGET[:, [2, 0]].T)
    np.testing.assert_array_equal(ax_c.images[0].get_array(), cell[:, [2, 0]].T)
    assert ax_f.images[0].get_clim() == (0.0, 1.0)
    assert ax_c.images[0].get_clim() == (-6.0, 6.0)  # symmetric about 0 for the cell
    assert [t.get_text() for t in ax_c.get_xticklabels()] == list("abcd")
    with pytest.raises(ValueError, match=r"gate_heatmaps_figure: expected units in \[0, 3\)"):
        gate_heatmaps_figure({"forget": FORGET}, units=[3])


def test_cell_trajectories_draw_the_cell_values():
    cell = np.cumsum(np.ones((5, 3)), axis=0) * [1, -1, 2]
    fig = cell_trajectories_figure(cell, units=[0, 2], signal=np.arange(5), signal_name="column")
    ax = fig.get_axes()[0]
    lines = [line for line in ax.get_lines() if line.get_label().startswith("unit")]
    np.testing.assert_array_equal(lines[0].get_ydata(), cell[:, 0])
    np.testing.assert_array_equal(lines[1].get_ydata(), cell[:, 2])
    assert fig.get_axes()[1].get_ylabel() == "column"
    with pytest.raises(ValueError, match=r"expected a signal of shape \(5,\)"):
        cell_trajectories_figure(cell, signal=np.arange(4))
    with pytest.raises(ValueError, match=r"expected one sequence \(T, H\)"):
        cell_trajectories_figure(cell[None])


def test_text_heat_writes_every_character():
    fig = text_heat_figure("ab\ncd", [0.0, 1.0, -1.0, 2.0, -0.5], width=4)
    texts = [t.get_text() for t in fig.get_axes()[0].texts]
    assert texts == ["a", "b", "\u21b5", "c", "d"]
    rgba = fig.get_axes()[0].images[0].get_array()
    assert rgba.shape[:2] == (2, 3)  # two lines, the longest 3 characters ("ab" and the newline)
    np.testing.assert_allclose(rgba[0, 0, :3], [1, 1, 1])  # 0 is white
    # c (the largest, 2) is bluer than b (1); the newline (-1) is red
    assert rgba[1, 0, 2] == 1.0 and rgba[1, 0, 0] < rgba[0, 1, 0] < 1.0
    assert rgba[0, 2, 0] == 1.0 and rgba[0, 2, 2] < 1.0
    wrapped = text_heat_figure("abcdef", np.zeros(6), width=4).get_axes()[0]
    assert wrapped.images[0].get_array().shape[:2] == (2, 4)  # "abcd" / "ef"
    assert [(t.get_position(), t.get_text()) for t in wrapped.texts][4] == ((0, 1), "e")
    with pytest.raises(ValueError, match="text_heat_figure: expected 5 values"):
        text_heat_figure("ab\ncd", [0.0])


def test_pick_units_prefers_units_that_move():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(50, 6)) * [0.1, 3, 0.1, 2, 0.1, 1]
    assert pick_units(values, k=3) == [1, 3, 5]


def test_write_pngs_for_lstm_gru_and_rnn(tmp_path):
    written = write_pngs(
        random_lstm_trace(30, 4, layers=2), tmp_path / "lstm", tokens="x" * 30, dpi=30
    )
    names = sorted(p.name for p in written)
    assert names == [
        "cell_l0.png",
        "cell_l1.png",
        "gates_l0.png",
        "gates_l1.png",
        "saturation.png",
    ]
    for path in written:
        assert path.read_bytes()[:8] == PNG_MAGIC
    rng = np.random.default_rng(0)
    gru = {name: rng.uniform(size=(10, 3)) for name in GRU_GATES}
    gru_trace = StandInTrace("gru", [[gru, gru]])  # bidirectional
    names = sorted(p.name for p in write_pngs(gru_trace, tmp_path / "gru", units=[0, 2], dpi=30))
    assert "hidden_l0_reverse.png" in names and "saturation_reverse.png" in names
    rnn_trace = StandInTrace("rnn", [[{"hidden": rng.normal(size=(10, 3))}]])
    names = sorted(p.name for p in write_pngs(rnn_trace, tmp_path / "rnn", dpi=30))
    assert names == ["gates_l0.png", "hidden_l0.png"]  # a plain RNN has no gate to saturate


def test_save_png_is_atomic(tmp_path):
    fig = cell_trajectories_figure(FORGET)
    target = tmp_path / "cell.png"
    target.write_bytes(b"old")
    save_png(fig, target, dpi=30)
    assert target.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in tmp_path.iterdir()] == ["cell.png"]
