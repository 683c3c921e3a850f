"""``lstmlens classify train|predict`` in-process: outputs, run folders and every bad input."""

import csv
import io
import json

import numpy as np
import pandas as pd
import pytest
import torch

from lstmlens.cli.main import main
from lstmlens.tasks.classify_run import load_classifier, predict


def numeric_csv(path, n=8, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n):
        label = "up" if k % 2 == 0 else "down"
        for t in range(int(rng.integers(2, 5))):
            rows.append(
                {"seq": k, "t": t, "x": (1 if label == "up" else -1) * rng.random(), "label": label}
            )
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


TRAIN = [
    "--id",
    "seq",
    "--time",
    "t",
    "--label",
    "label",
    "--epochs",
    "2",
    "--hidden",
    "4",
    "--batch-size",
    "4",
    "--val-fraction",
    "0.25",
    "--test-fraction",
    "0.25",
    "--quiet",
]


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def one_line_error(capsys, status, *needles):
    out, err = capsys.readouterr()
    assert status == 2, err
    assert err.startswith("lstmlens: error: ") and err.count("\n") == 1 and "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return out


@pytest.fixture
def trained_run(tmp_path, capsys):
    data = numeric_csv(tmp_path / "d.csv")
    run = tmp_path / "run"
    assert main(["classify", "train", str(data), *TRAIN, "--out", str(run)]) == 0
    out, _ = capsys.readouterr()
    assert "test accuracy" in out and "macro-F1" in out
    return data, run


def test_train_writes_a_run_and_predict_matches_the_library(trained_run, tmp_path, capsys):
    data, run = trained_run
    names = {p.name for p in run.iterdir()}
    assert {"config.json", "model.safetensors", "metrics.json", "confusion.png"} <= names
    assert main(["classify", "predict", str(run), str(data)]) == 0
    out, err = capsys.readouterr()
    assert "accuracy" in err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["id"] for r in rows] == [str(k) for k in range(8)]
    model, config = load_classifier(run)
    _, probs = predict(model, config, data)
    got = torch.tensor([[float(r["p_down"]), float(r["p_up"])] for r in rows])
    torch.testing.assert_close(got, probs, rtol=1e-5, atol=1e-6)
    assert all(r["predicted"] == ("up" if p[1] > p[0] else "down") for r, p in zip(rows, probs))
    # again, to a file; twice gives the same bytes; a third time without --force is refused
    target = tmp_path / "pred.csv"
    assert main(["classify", "predict", str(run), str(data), "--output", str(target)]) == 0
    first = target.read_bytes()
    assert first.decode() == out and capsys.readouterr().out == ""
    status = main(["classify", "predict", str(run), str(data), "--output", str(target)])
    one_line_error(capsys, status, "exists", "--force")
    assert target.read_bytes() == first


def test_predict_without_labels(trained_run, tmp_path, capsys):
    data, run = trained_run
    unlabelled = tmp_path / "u.csv"
    pd.read_csv(data).drop(columns=["label"]).to_csv(unlabelled, index=False)
    assert main(["classify", "predict", str(run), str(unlabelled)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == "id,predicted,p_down,p_up" and err == ""


def test_existing_run_is_not_overwritten_without_force(trained_run, capsys):
    data, run = trained_run
    before = snapshot(run)
    status = main(["classify", "train", str(data), *TRAIN, "--out", str(run)])
    one_line_error(capsys, status, "already exists", "--force")
    assert snapshot(run) == before


@pytest.mark.parametrize(
    ("edit", "extra", "needles"),
    [
        (lambda f: f.rename(columns={"label": "class"}), [], ["no column 'label'"]),
        (lambda f: f.assign(label="up"), [], ["one class"]),
        (lambda f: f.assign(x=f.x.where(f.index != 2, np.nan)), [], ["NaN", "'x'"]),
        (lambda f: f.assign(x=f.x.astype(str).where(f.index != 1, "abc")), [], ["not a number"]),
        (lambda f: f, ["--features", "x,nope"], ["no column 'nope'"]),
    ],
)
def test_bad_numeric_input_is_one_line_and_overwrites_nothing(
    trained_run, tmp_path, capsys, edit, extra, needles
):
    data, run = trained_run
    before = snapshot(run)
    bad = tmp_path / "bad.csv"
    edit(pd.read_csv(data)).to_csv(bad, index=False)
    status = main(["classify", "train", str(bad), *TRAIN, *extra, "--out", str(run), "--force"])
    one_line_error(capsys, status, *needles)
    assert snapshot(run) == before  # even with --force: input is checked before the folder
    fresh = tmp_path / "fresh"
    status = main(["classify", "train", str(bad), *TRAIN, *extra, "--out", str(fresh)])
    one_line_error(capsys, status, *needles)
    assert not fresh.exists()


def test_bad_text_input(tmp_path, capsys):
    path = tmp_path / "t.csv"
    pd.DataFrame({"text": ["fine", "", "bad"], "y": ["a", "b", "a"]}).to_csv(path, index=False)
    out_dir = tmp_path / "run"
    status = main(
        [
            "classify",
            "train",
            str(path),
            "--text",
            "text",
            "--label",
            "y",
            "--out",
            str(out_dir),
            "--quiet",
        ]
    )
    one_line_error(capsys, status, "empty at data row 2")
    assert not out_dir.exists()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--id", "seq", "--time", "t"], "--label is needed"),
        (["--label", "label"], "needs --id and --time"),
        (["--text", "x", "--id", "seq", "--label", "label"], "cannot be combined"),
    ],
)
def test_missing_options(tmp_path, capsys, argv, needle):
    data = numeric_csv(tmp_path / "d.csv")
    status = main(["classify", "train", str(data), *argv, "--out", str(tmp_path / "r")])
    one_line_error(capsys, status, needle)


def test_missing_file_and_missing_run(tmp_path, capsys):
    status = main(
        [
            "classify",
            "train",
            str(tmp_path / "nope.csv"),
            "--id",
            "a",
            "--time",
            "b",
            "--label",
            "c",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    one_line_error(capsys, status, "file not found")
    status = main(["classify", "predict", str(tmp_path / "norun"), str(tmp_path / "x.csv")])
    one_line_error(capsys, status, "no such run folder")
    (tmp_path / "notarun").mkdir()
    status = main(["classify", "predict", str(tmp_path / "notarun"), str(tmp_path / "x.csv")])
    one_line_error(capsys, status, "config.json")


def test_digits_default_trains(tmp_path, capsys):
    run = tmp_path / "digits"
    status = main(
        ["classify", "train", "--epochs", "1", "--hidden", "8", "--quiet", "--out", str(run)]
    )
    out, _ = capsys.readouterr()
    metrics = json.loads((run / "metrics.json").read_text())
    assert (
        status == 0 and "10 classes" in out and f"{metrics['sizes']['test']} test sequences" in out
    )
    assert sum(metrics["sizes"].values()) == 1797 and 260 <= metrics["sizes"]["test"] <= 280
