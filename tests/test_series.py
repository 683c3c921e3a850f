"""Series reading, missing values, windows, splits and the training-only scaler."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmlens.data import datasets
from lstmlens.data.series import (
    from_pandas,
    infer_freq,
    interpolate_missing,
    read_csv,
    season_from_freq,
)
from lstmlens.data.windows import (
    Scaler,
    backtest_splits,
    chronological_split,
    make_windows,
    window_origins,
)


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


MONTHLY = "month,sales,price\n2020-01,10,1.5\n2020-02,12,1.6\n2020-03,11,1.4\n2020-04,15,1.7\n"


# ------------------------------------------------------------------ reading


def test_csv_with_dates_and_covariates(tmp_path):
    s = read_csv(write(tmp_path, MONTHLY), target="sales", covariates=["price"])
    np.testing.assert_array_equal(s.values, [10, 12, 11, 15])
    np.testing.assert_array_equal(s.covariates[:, 0], [1.5, 1.6, 1.4, 1.7])
    assert s.name == "sales" and s.covariate_names == ("price",)
    assert list(s.index) == list(
        pd.to_datetime(["2020-01-01", "2020-02-01", "2020-03-01", "2020-04-01"])
    )
    assert s.freq == "MS"
    assert list(s.future_index(2)) == list(pd.to_datetime(["2020-05-01", "2020-06-01"]))
    assert s.features.shape == (4, 2)


def test_csv_without_dates_uses_row_numbers(tmp_path):
    s = read_csv(write(tmp_path, "value\n1\n2\n4\n"))
    np.testing.assert_array_equal(s.values, [1, 2, 4])
    assert isinstance(s.index, pd.RangeIndex) and s.freq is None
    assert list(s.future_index(2)) == [3, 4]


def test_unsorted_dates_are_put_in_order(tmp_path):
    s = read_csv(write(tmp_path, "date,y\n2020-01-03,3\n2020-01-01,1\n2020-01-02,2\n"))
    np.testing.assert_array_equal(s.values, [1, 2, 3])
    assert s.freq == "D"


def test_target_must_be_named_when_ambiguous(tmp_path):
    with pytest.raises(ValueError, match="cannot tell which column.*sales, price"):
        read_csv(write(tmp_path, MONTHLY))


@pytest.mark.parametrize(
    ("text", "kwargs", "pattern"),
    [
        (MONTHLY, {"target": "nope"}, "no column 'nope'.*month, sales, price"),
        (MONTHLY, {"target": "sales", "covariates": ["cost"]}, "no column 'cost'"),
        (
            "d,y\n2020-01-01,1\n2020-01-02,abc\n",
            {},
            "target column 'y' is not numeric: line 3 .*'abc'",
        ),
        (
            "d,y\n2020-01-01,1\nsoon,2\n",
            {"date": "d"},
            "date column 'd' does not parse.*line 3.*'soon'",
        ),
        ("date,y\n2020-01-01,1\n2020-01-01,2\n", {}, "2020-01-01 appears more than once"),
        ("y\n", {}, "header but no data rows"),
        ("", {}, "is empty"),
    ],
)
def test_bad_csv(tmp_path, text, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        read_csv(write(tmp_path, text), **kwargs)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        read_csv(tmp_path / "absent.csv")
    with pytest.raises(ValueError, match="is a folder"):
        read_csv(tmp_path)


def test_missing_values_reported_then_interpolated(tmp_path):
    path = write(tmp_path, "date,y\n2020-01-01,1\n2020-01-02,\n2020-01-03,\n2020-01-04,7\n")
    with pytest.raises(ValueError, match=r"2 missing value\(s\).*first at 2020-01-02.*interpolate"):
        read_csv(path)
    s = read_csv(path, fill="interpolate")
    np.testing.assert_allclose(s.values, [1, 3, 5, 7])
    assert s.filled == 2


def test_interpolate_edges_take_nearest_value():
    x = np.array([[np.nan, 1.0], [2.0, np.nan], [np.nan, 3.0], [6.0, np.nan]])
    np.testing.assert_allclose(interpolate_missing(x), [[2, 1], [2, 2], [4, 3], [6, 3]])
    with pytest.raises(ValueError, match="no values"):
        interpolate_missing(np.array([np.nan, np.nan]))


def test_from_pandas_uses_a_datetime_index():
    idx = pd.date_range("2000-01-01", periods=5, freq="W-SAT")
    s = from_pandas(pd.Series(np.arange(5.0), index=idx, name="z"))
    assert s.name == "z" and s.freq == "W-SAT" and s.index.equals(idx)


def test_freq_and_season():
    assert infer_freq(pd.date_range("2000", periods=6, freq="MS")) == "MS"
    assert infer_freq(pd.DatetimeIndex(["2000-01-01", "2000-01-02", "2000-01-05"])) is None
    assert infer_freq(pd.RangeIndex(5)) is None
    expected = {"MS": 12, "ME": 12, "W-SAT": 52, "D": 7, "B": 5, "h": 24, "QS-OCT": 4}
    for freq, season in expected.items():
        assert season_from_freq(freq) == season, freq
    assert season_from_freq("YS-JAN") is None and season_from_freq(None) is None


# ------------------------------------------------------- windows and splits


def test_windows_line_up_with_source_rows():
    t = np.arange(20)
    y = 100.0 + t  # row r holds 100 + r
    features = np.column_stack([y, 1000.0 + t])  # (T, 2)
    origins = window_origins(start=5, stop=12, window=4, horizon=3)
    np.testing.assert_array_equal(origins, [5, 6, 7, 8, 9])  # last target row 9 + 2 = 11 < 12
    x, target = make_windows(features, y, origins, window=4, horizon=3)
    assert x.shape == (5, 4, 2) and target.shape == (5, 3)
    np.testing.assert_array_equal(x[0, :, 0], [101, 102, 103, 104])  # rows 1..4
    np.testing.assert_array_equal(x[0, :, 1], [1001, 1002, 1003, 1004])
    np.testing.assert_array_equal(target[0], [105, 106, 107])  # rows 5..7
    np.testing.assert_array_equal(target[-1], [109, 110, 111])
    np.testing.assert_array_equal(window_origins(0, 20, 4, 3, stride=5), [4, 9, 14])


def test_windows_reject_out_of_range_origins():
    with pytest.raises(ValueError, match="origins must lie in"):
        make_windows(np.zeros((10, 1)), np.zeros(10), np.array([2]), window=3, horizon=1)


def test_chronological_split():
    s = chronological_split(100, window=10, horizon=2)
    assert (s.train_end, s.val_end, s.n) == (88, 98, 100)  # test: the last H rows
    s = chronological_split(144, window=30, horizon=12, test_size=12, val_size=24)
    assert (s.train_end, s.val_end, s.val_size, s.test_size) == (108, 132, 24, 12)
    with pytest.raises(ValueError, match="too short: 40 rows.*need at least 41"):
        chronological_split(40, window=30, horizon=3, test_size=4, val_size=4)
    with pytest.raises(ValueError, match="at least one horizon"):
        chronological_split(100, window=10, horizon=5, test_size=3)


def test_backtest_splits_roll_the_origin():
    folds = backtest_splits(100, window=10, horizon=5, folds=3, test_size=10, val_size=10)
    assert [(f.train_end, f.val_end, f.n) for f in folds] == [
        (60, 70, 80),
        (70, 80, 90),
        (80, 90, 100),
    ]


def test_scaler_sees_training_rows_only():
    rng = np.random.default_rng(1)
    rows = rng.normal(5.0, 2.0, size=(50, 2))
    split = chronological_split(50, window=5, horizon=1, test_size=10, val_size=10)
    poisoned = rows.copy()
    poisoned[split.train_end :] = 1e6  # validation and test rows must not matter
    scaler = Scaler.fit(poisoned[: split.train_end])
    np.testing.assert_allclose(scaler.mean, rows[:30].mean(axis=0))
    np.testing.assert_allclose(scaler.scale, rows[:30].std(axis=0))
    z = scaler.transform(rows)
    np.testing.assert_allclose(scaler.inverse(z), rows)
    np.testing.assert_allclose(scaler.inverse(z[:, 0], feature=0), rows[:, 0])
    again = Scaler.from_dict(scaler.to_dict())
    np.testing.assert_array_equal(again.mean, scaler.mean)


def test_scaler_constant_column_and_bad_dict():
    s = Scaler.fit(np.array([[3.0, 1.0], [3.0, 2.0]]))
    assert s.scale[0] == 1.0
    with pytest.raises(ValueError, match="mean and scale"):
        Scaler.from_dict({"mean": [0.0]})


# ------------------------------------------------------------------ datasets


def test_offline_datasets():
    co2 = datasets.load_co2()
    assert len(co2) == 2284 and int(co2.isna().sum()) == 59
    assert infer_freq(co2.index) == "W-SAT"
    spots = datasets.load_sunspots()
    assert len(spots) == 309 and spots.index[0].year == 1700 and not spots.isna().any()
    text = datasets.load_pydoc_text()
    assert len(text) > 100_000 and text == datasets.load_pydoc_text()
    x, y = datasets.load_digits_sequences()
    assert x.shape == (1797, 8, 8) and x.dtype == np.float32 and 0 <= x.min() and x.max() == 1
    assert y.shape == (1797,) and set(np.unique(y)) == set(range(10))
