"""Many series from long and wide tables: reading, bad input, lazy windows, scalers."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmlens.data.panel import Panel, from_long, from_wide, read_panel
from lstmlens.data.panel_windows import PanelScaler, PanelWindows, last_h_split
from lstmlens.data.windows import make_windows, window_origins


def _wide() -> pd.DataFrame:
    """Three monthly series; ``b`` starts two months late, ``c`` ends one month early."""
    dates = pd.date_range("2020-01-01", periods=12, freq="MS")
    a = np.arange(12, dtype=float)
    b = np.r_[np.nan, np.nan, 100 + np.arange(10.0) ** 2]
    c = np.r_[np.sin(np.arange(11.0)), np.nan]
    return pd.DataFrame({"month": dates.strftime("%Y-%m-%d"), "a": a, "b": b, "c": c})


def _long(wide: pd.DataFrame) -> pd.DataFrame:
    long = wide.melt(id_vars="month", var_name="store", value_name="sales").dropna()
    return long.sample(frac=1.0, random_state=1).reset_index(drop=True)  # rows shuffled


def _write(tmp_path: Path, frame: pd.DataFrame, name: str = "d.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_long_and_wide_give_the_same_series_and_training_windows(tmp_path):
    wide = _wide()
    pw = read_panel(_write(tmp_path, wide, "w.csv"), "all")
    pl = read_panel(_write(tmp_path, _long(wide), "l.csv"), "sales", id="store", date="month")
    assert pw.ids == ("a", "b", "c")
    assert list(pl.ids) == list(pd.unique(_long(wide)["store"]))  # order of first appearance
    assert "rows sorted by id and date" in pl.notes
    order = [pl.ids.index(i) for i in pw.ids]
    for j, i in enumerate(order):
        np.testing.assert_array_equal(pw.series(j), pl.series(i))
    assert pw.lengths.tolist() == [12, 10, 11]  # unequal length and start
    assert str(pw.starts[1].date()) == "2020-03-01"
    assert pw.freq == pl.freq == "MS"

    def windows(p: Panel) -> dict[str, np.ndarray]:
        split = last_h_split(p.lengths, 2)
        z = PanelScaler.fit(p, split.train_end).transform(p, np.float64)
        w = PanelWindows(z, p.offsets, *split.part("train"), window=3, horizon=2)
        x, y, i = w.gather(np.arange(len(w)))
        return {p.ids[s]: np.c_[x[i == s], y[i == s]] for s in range(len(p))}

    a, b = windows(pw), windows(pl)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_lazy_windows_match_the_single_series_windows():
    rng = np.random.default_rng(0)
    parts = [rng.normal(size=n) for n in (30, 17, 9, 25)]
    lengths = np.array([len(p) for p in parts])
    panel = Panel(np.concatenate(parts), np.r_[0, np.cumsum(lengths)], ("p", "q", "r", "s"))
    W, H = 5, 3
    w = PanelWindows(panel.values, panel.offsets, np.zeros(4, int), lengths, W, H)
    x, y, which = w.gather(np.arange(len(w)))
    assert len(w) == sum(max(n - W - H + 1, 0) for n in lengths)  # stride 1: every window
    for i, part in enumerate(parts):
        origins = window_origins(0, len(part), W, H)
        xs, ys = make_windows(part[:, None], part, origins, W, H)
        np.testing.assert_allclose(x[which == i].numpy(), xs[:, :, 0])
        np.testing.assert_allclose(y[which == i].numpy(), ys)
    xk, yk, ik = w[7]
    np.testing.assert_array_equal(xk.numpy(), x[7].numpy())
    assert ik == int(which[7])
    with pytest.raises(IndexError, match="out of range"):
        w.gather(np.array([len(w)]))


def test_window_counts_with_stride():
    panel = Panel(np.zeros(40), np.array([0, 40]), ("x",))
    w = PanelWindows(panel.values, panel.offsets, np.array([20]), np.array([40]), 8, 4)
    assert len(w) == 40 - 20 - 4 + 1  # origins 20..36, inputs reaching back before 20
    assert w.locate(np.array([0, len(w) - 1]))[1].tolist() == [20, 36]
    w4 = PanelWindows(panel.values, panel.offsets, np.array([20]), np.array([40]), 8, 4, 4)
    assert w4.locate(np.arange(len(w4)))[1].tolist() == [20, 24, 28, 32, 36]


def test_scalers_never_see_validation_or_test_rows():
    train = np.array([1.0, 2.0, 3.0, 4.0])
    clean = np.r_[train, 5.0, 6.0, 7.0, 8.0]
    spiked = np.r_[train, 1e6, -1e6, 1e9, 3.0]  # later rows changed wildly
    for later in (clean, spiked):
        panel = Panel(np.r_[later, 10 + 2 * later], np.array([0, 8, 16]), ("u", "v"))
        s = PanelScaler.fit(panel, np.array([4, 4]))
        np.testing.assert_allclose(s.mean, [2.5, 15.0])
        np.testing.assert_allclose(s.std, [train.std(), 2 * train.std()])


def test_drop_short_names_the_series():
    panel = Panel(np.zeros(15), np.array([0, 10, 12, 15]), ("long", "tiny", "small"))
    kept, dropped = panel.drop_short(5)
    assert kept.ids == ("long",) and dropped == ("tiny", "small")
    with pytest.raises(ValueError, match="no series has the 50 points"):
        panel.drop_short(50)


def _long_frame(changes: dict | None = None) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "id": ["A"] * 4 + ["B"] * 4,
            "date": [f"2020-01-0{d}" for d in range(1, 5)] * 2,
            "y": [1, 2, 3, 4, 5, 6, 7, 8],
        }
    ).astype({"y": object})
    for (col, row), value in (changes or {}).items():
        frame.loc[row, col] = value
    return frame


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({("date", 1): "2020-01-01"}, r"series 'A' has date 2020-01-01 more than once \(line 3"),
        ({("id", 2): None}, r"'id' is blank at line 4"),
        ({("date", 5): ""}, r"'date' is blank at line 7"),
        ({("y", 6): "n/a?"}, r"target 'y' of series 'B' is not numeric: line 8 holds 'n/a\?'"),
    ],
)
def test_bad_long_tables(changes, message):
    frame = _long_frame(changes)
    with pytest.raises(ValueError, match=message):
        from_long(frame, "id", "y", "date")


def test_long_table_without_id_is_refused_with_the_hint(tmp_path):
    path = _write(tmp_path, _long_frame())
    with pytest.raises(ValueError, match=r"date 2020-01-01 appears more than once.*--id \('id'"):
        read_panel(path, "y", date="date")


def test_wide_bad_input(tmp_path):
    with pytest.raises(ValueError, match="--target all: no numeric column"):
        from_wide(pd.DataFrame({"date": ["2020-01-01", "2020-01-02"], "k": ["x", "y"]}))
    frame = _wide().astype({"b": object})
    frame.loc[5, "b"] = "oops"
    with pytest.raises(ValueError, match=r"target 'b' is not numeric: line 7 holds 'oops'"):
        from_wide(frame, ["a", "b"], "month")
    with pytest.raises(ValueError, match="no column 'zz'"):
        from_wide(_wide(), ["zz"])


def test_wide_all_skips_text_columns_and_reads_semicolons(tmp_path):
    frame = _wide().assign(note="x")
    text = frame.to_csv(index=False, sep=";").replace(".", ",")
    path = tmp_path / "eu.csv"
    path.write_text(text)
    panel = read_panel(path, "all")
    assert panel.ids == ("a", "b", "c")
    assert any("';'-separated" in n for n in panel.notes)
    np.testing.assert_allclose(panel.series(2), np.sin(np.arange(11.0)))
