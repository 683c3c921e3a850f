"""Reading real files: CSV dialects, gaps on the time grid, integer steps, where the date
column stands, row order; each bad case a one-line ValueError."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmlens.data.dialect import Dialect, sniff
from lstmlens.data.series import from_pandas, read_csv
from lstmlens.data.timegrid import regular_grid


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def monthly(n: int = 6, skip: tuple[int, ...] = ()) -> list[tuple[str, float]]:
    """(first-of-month date, value 10 + i) for months i = 0..n-1 except ``skip``."""
    return [(f"{2020 + i // 12}-{i % 12 + 1:02d}-01", 10.0 + i) for i in range(n) if i not in skip]


# ------------------------------------------------------------------ dialects


def test_semicolons_and_decimal_commas_with_thousands(tmp_path):
    text = "Datum;Umsatz;Preis\n2020-01-01;1.234,5;2,5\n2020-02-01;12,25;3\n2020-03-01;7;-0,5\n"
    s = read_csv(write(tmp_path, text), target="Umsatz", covariates=["Preis"])
    np.testing.assert_array_equal(s.values, [1234.5, 12.25, 7.0])
    np.testing.assert_array_equal(s.covariates[:, 0], [2.5, 3.0, -0.5])
    assert s.freq == "MS" and s.notes == ("read as ';'-separated, decimal commas",)


def test_semicolons_with_decimal_points_and_tabs(tmp_path):
    s = read_csv(write(tmp_path, "date;y\n2020-01-01;1.5\n2020-01-02;2.5\n2020-01-03;4\n"))
    np.testing.assert_array_equal(s.values, [1.5, 2.5, 4.0])
    assert s.notes == ("read as ';'-separated, decimal points",)
    s = read_csv(write(tmp_path, "date\ty\n2020-01-01\t3,5\n2020-01-02\t1\n2020-01-03\t2\n"))
    np.testing.assert_array_equal(s.values, [3.5, 1.0, 2.0])
    assert s.notes == ("read as tab-separated, decimal commas",)


def test_default_dialect_reads_as_before_and_says_nothing(tmp_path):
    s = read_csv(write(tmp_path, 'date,y\n2020-01-01,"1,5"\n2020-01-02,2\n2020-01-03,"3,25"\n'))
    np.testing.assert_array_equal(s.values, [1.5, 2.0, 3.25])  # quoted decimal commas
    assert s.notes == ("read as ','-separated, decimal commas",)
    s = read_csv(write(tmp_path, "date,y\n2020-01-01,1.5\n2020-01-02,2\n2020-01-03,3.25\n"))
    np.testing.assert_array_equal(s.values, [1.5, 2.0, 3.25])
    assert s.notes == ()


def test_a_separator_ending_every_line_is_no_extra_column(tmp_path):
    s = read_csv(write(tmp_path, "date;y;\n2020-01-01;1,5;\n2020-01-02;2;\n2020-01-03;3;\n"))
    np.testing.assert_array_equal(s.values, [1.5, 2.0, 3.0])
    s = read_csv(write(tmp_path, "date,y\n2020-01-01,1.5,\n2020-01-02,2,\n2020-01-03,3,\n"))
    np.testing.assert_array_equal(s.values, [1.5, 2.0, 3.0])
    assert s.freq == "D" and s.name == "y"


def test_sep_and_decimal_override_detection(tmp_path):
    path = write(tmp_path, "a,b;c\n1,2;3\n4,5;6\n")  # ',' and ';' both split every line in two
    with pytest.raises(
        ValueError, match="both ',' and ';' split every line into 2 fields; give --sep"
    ):
        read_csv(path, target="c")
    s = read_csv(path, target="c", sep=";", decimal=".")
    np.testing.assert_array_equal(s.values, [3.0, 6.0])
    # '1,234' alone reads as a decimal comma when ';' separates; --decimal . says otherwise
    path = write(tmp_path, "y;z\n1,234;1\n2,5;2\n", "weak.csv")
    np.testing.assert_array_equal(read_csv(path, target="z").values, [1.0, 2.0])
    assert sniff(path) == Dialect(";", ",")
    assert sniff(path, sep="semicolon", decimal=".") == Dialect(";", ".")


@pytest.mark.parametrize(
    ("text", "kwargs", "pattern"),
    [
        (
            "date;value\n2020-01-01;1;2\n2020-01-02;3\n",
            {},
            r"cannot determine the CSV dialect of .*data\.csv: no separator among ',', ';', tab, "
            r"'\|' splits every line alike \(with ';' the header has 2 fields, line 2 has 3\); "
            "give the separator with --sep",
        ),
        (
            "date;y\n2020-01-01;1,5\n2020-01-02;2.5\n",
            {},
            r"mixes decimal commas \(line 2: '1,5'\) and decimal points \(line 3: '2.5'\); "
            "give the mark with --decimal",
        ),
        (
            "date;y\n2020-01-01;1,5\n2020-01-02;abc\n2020-01-03;2,5\n",
            {},
            "target column 'y' is not numeric: line 3 holds 'abc'",
        ),
        ("y\n1\n", {"sep": "ab"}, "--sep must be one character"),
        ("y\n1\n", {"decimal": ";"}, "--decimal must be '.' or ','"),
    ],
)
def test_dialect_problems_are_one_line(tmp_path, text, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        read_csv(write(tmp_path, text), **kwargs)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------- the time column


def test_date_column_found_wherever_it_stands(tmp_path):
    s = read_csv(write(tmp_path, "sales,price,Month\n1,5,2020-01\n2,6,2020-02\n3,7,2020-03\n"),
                 target="sales", covariates=["price"])  # fmt: skip
    assert s.freq == "MS" and str(s.index[0].date()) == "2020-01-01"
    s = read_csv(write(tmp_path, "y,order_date\n1,2020-01-01\n2,2020-01-02\n3,2020-01-03\n"))
    assert s.name == "y" and s.freq == "D"
    # not named like a date but holding dates: found too, in any position
    s = read_csv(write(tmp_path, "y,when\n1,2020-01-01\n2,2020-01-02\n3,2020-01-03\n"))
    assert s.name == "y" and s.freq == "D"
    # a date-like name outranks a column that merely holds dates
    s = read_csv(write(tmp_path, "y,ds\n1,2021-01-01\n2,2021-01-02\n3,2021-01-03\n"))
    assert isinstance(s.index, pd.DatetimeIndex)


def test_integer_time_is_steps_not_nanoseconds(tmp_path):
    s = read_csv(write(tmp_path, "y,step\n1,10\n2,15\n4,20\n8,25\n"), target="y")
    assert list(s.index) == [10, 15, 20, 25] and s.index.name == "step"
    assert s.freq is None and list(s.future_index(2)) == [30, 35]
    s = read_csv(write(tmp_path, "year,y\n1990,1\n1991,2\n1992,3\n"))
    assert list(s.future_index(1)) == [1993]
    with pytest.raises(
        ValueError, match="time column 'time' holds '1.5' at line 3: expected dates"
    ):
        read_csv(write(tmp_path, "time,y\n1,1\n1.5,2\n2,3\n"))


def test_reversed_and_shuffled_rows_are_sorted_and_reported(tmp_path):
    rows = monthly(5)
    text = "date,y\n" + "".join(f"{d},{v}\n" for d, v in reversed(rows))
    s = read_csv(write(tmp_path, text))
    np.testing.assert_array_equal(s.values, [10, 11, 12, 13, 14])
    assert s.notes == ("rows run newest first: sorted oldest first",) and s.freq == "MS"
    shuffled = [rows[0], rows[2], rows[1], rows[3], rows[4]]
    s = read_csv(write(tmp_path, "date,y\n" + "".join(f"{d},{v}\n" for d, v in shuffled)))
    np.testing.assert_array_equal(s.values, [10, 11, 12, 13, 14])
    assert s.notes == (
        "rows are not in time order (line 4 is earlier than line 3): sorted by date",
    )
    s = read_csv(write(tmp_path, "step,y\n3,30\n2,20\n1,10\n"), target="y")
    assert list(s.index) == [1, 2, 3] and s.notes == ("rows run newest first: sorted oldest first",)
    # an error after sorting still names the file's line
    text = "date,y\n2020-03-01,3\n2020-02-01,x\n2020-01-01,1\n"
    with pytest.raises(ValueError, match="line 3 holds 'x'"):
        read_csv(write(tmp_path, text))


# ------------------------------------------------------------------------ gaps


def test_missing_months_refused_without_fill_then_filled(tmp_path):
    text = "date,y\n" + "".join(f"{d},{v}\n" for d, v in monthly(8, skip=(2, 3)))
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as info:
        read_csv(path)
    assert str(info.value) == (
        f"2 missing timestamp(s) in {path} (first 2020-03-01; the rows have frequency MS): "
        "the model needs a regular time grid; fill them with --fill interpolate or add the rows"
    )
    s = read_csv(path, fill="interpolate")
    np.testing.assert_allclose(s.values, 10.0 + np.arange(8))  # linear in time: exact here
    assert s.freq == "MS" and s.filled == 2 and len(s) == 8
    assert s.notes == (
        "2 missing timestamp(s) (first 2020-03-01) added on the regular grid (frequency MS) "
        "and filled by linear interpolation",
    )
    assert [str(d.date()) for d in s.future_index(2)] == ["2020-09-01", "2020-10-01"]


@pytest.mark.parametrize(
    ("dates", "freq", "missing"),
    [
        (pd.date_range("2021-01-01", periods=40, freq="D").delete([5, 6, 20]), "D", 3),
        (pd.date_range("2021-01-03", periods=30, freq="W-SUN").delete([10]), "W-SUN", 1),
        (pd.date_range("2021-01-04", periods=30, freq="B").delete([7, 8]), "B", 2),
        (pd.date_range("2021-01-01", periods=48, freq="h").delete([30]), "h", 1),
        (pd.date_range("2000-01-01", periods=20, freq="QS-JAN").delete([4]), "QS-JAN", 1),
        (pd.date_range("2000-01-31", periods=20, freq="ME").delete([4, 9]), "ME", 2),
    ],
)
def test_regular_grid_under_gaps(dates, freq, missing):
    grid = regular_grid(dates)
    assert grid is not None and grid.freq == freq and len(grid.missing) == missing
    assert dates.isin(grid.index).all()


def test_irregular_dates_and_step_gaps(tmp_path):
    irregular = pd.DatetimeIndex(["2020-01-01", "2020-01-02", "2020-01-09", "2020-03-30"])
    assert regular_grid(irregular) is None
    s = from_pandas(pd.DataFrame({"y": [1.0, 2, 3, 4]}, index=irregular), date=None)
    assert s.freq is None and "irregular" in s.notes[0]
    path = write(tmp_path, "step,y\n0,1\n2,2\n4,3\n8,5\n")
    with pytest.raises(
        ValueError, match=r"1 missing timestamp\(s\) .*first 6; the rows have step 2"
    ):
        read_csv(path, target="y")
    s = read_csv(path, target="y", fill="interpolate")
    assert list(s.index) == [0, 2, 4, 6, 8] and s.values[3] == 4.0


def test_nan_values_and_gaps_are_counted_together_when_filled(tmp_path):
    rows = [(d, "" if i == 0 else v) for i, (d, v) in enumerate(monthly(6, skip=(3,)))]
    s = read_csv(write(tmp_path, "date,y\n" + "".join(f"{d},{v}\n" for d, v in rows)),
                 fill="interpolate")  # fmt: skip
    assert s.filled == 2 and len(s) == 6
