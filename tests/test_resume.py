"""Resume that checks, and run folders that survive their first seconds: library and CLI.

Every CLI reproduction below passed silently (or failed to recover) before the
checks existed: a resume with other options carried on and rewrote the config,
``text train --resume`` ignored ``--variant`` and ``--level``, a second resume
wrote beside a running one, and a Ctrl-C before the first checkpoint left a
folder that could be neither resumed nor rerun.
"""

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from lstmlens.cli.main import main
from lstmlens.train import TrainConfig, Trainer
from lstmlens.train.checkpoint import mark_started, read_checkpoint
from lstmlens.train.resume import check_resume, file_identity, resume_differences

FORECAST = ["--target", "sales", "--horizon", "3", "--hidden", "4", "--epochs", "1", "--quiet"]
FORECAST += ["--no-lens"]


def one_line_error(capsys, status):
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("lstmlens: error: ") and err.count("\n") == 1, err
    return err.removeprefix("lstmlens: error: ").strip()


def files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != ".lstmlens-lock"}


# ------------------------------------------------------------------ library


def test_check_resume_names_every_field_that_differs():
    saved = {"variant": "niaf", "window": 30, "data": {"path": "/a.csv", "sha256": "1"}, "x": None}
    check_resume(saved, dict(saved))
    with pytest.raises(ValueError) as caught:
        check_resume(saved, {**saved, "variant": "noaf", "window": 20})
    assert str(caught.value) == (
        "--resume: variant differs: checkpoint has 'niaf', command line asks 'noaf'; "
        "window differs: checkpoint has 30, command line asks 20"
    )
    moved = {**saved, "data": {"path": "/b.csv", "sha256": "1"}}
    assert resume_differences(saved, moved) == [
        "data.path differs: checkpoint has '/a.csv', command line asks '/b.csv'"
    ]
    assert resume_differences(saved, {**saved, "window": 20}, may_change={"window"}) == []


def test_options_added_later_count_as_off_and_tuples_equal_lists():
    saved = {"quantiles": [0.1, 0.9]}
    assert (
        resume_differences(saved, {"quantiles": (0.1, 0.9), "calendar": False, "sep": None}) == []
    )
    assert resume_differences(saved, {"quantiles": [0.1, 0.9], "folds": 3}) == [
        "folds differs: checkpoint has nothing (not recorded), command line asks 3"
    ]


class Tiny:
    """One batch an epoch; nothing to learn, everything to checkpoint."""

    def train_batches(self, epoch, generator):
        return [torch.randn(8, 2, generator=generator)]

    def training_loss(self, model, batch):
        return model(batch).square().mean()

    def validate(self, model):
        return {"val_loss": 1.0}


def test_the_trainer_records_spec_and_world_size_and_refuses_others(tmp_path):
    def fit(spec, resume=False, epochs=1):
        trainer = Trainer(nn.Linear(2, 1), Tiny(), TrainConfig(epochs=epochs), tmp_path, spec=spec)
        return trainer.fit(resume=resume)

    fit({"hidden": 4, "data": {"path": "/a.csv"}})
    state = read_checkpoint(tmp_path).state
    assert state["spec"] == {"hidden": 4, "data": {"path": "/a.csv"}} and state["world_size"] == 1
    with pytest.raises(ValueError, match=r"Trainer.fit\(resume=True\): .*checkpoint.json: "
                       "hidden differs: checkpoint has 4, this run asks 8$"):  # fmt: skip
        fit({"hidden": 8, "data": {"path": "/a.csv"}}, resume=True)
    doc = json.loads((tmp_path / "checkpoint.json").read_text())
    (tmp_path / "checkpoint.json").write_text(json.dumps({**doc, "world_size": 2}))
    with pytest.raises(ValueError, match="world_size differs: checkpoint has 2, this run asks 1"):
        fit({"hidden": 4, "data": {"path": "/a.csv"}}, resume=True)
    mark_started(tmp_path)  # a run that trained nothing: any spec starts it afresh
    assert len(fit({"hidden": 8}, resume=True, epochs=2).history) == 2


def test_file_identity_tells_an_edited_file_apart(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a\n1\n")
    first = file_identity(path)
    assert first["path"] == str(path.resolve()) and len(first["sha256"]) == 64
    path.write_text("a\n2\n")
    assert file_identity(path)["sha256"] != first["sha256"]


# --------------------------------------------------------------- forecast


def sales_csv(path, n=80, shift=0.0):
    t = np.arange(n)
    y = 50 + 0.5 * t + 5 * np.sin(2 * np.pi * t / 12) + shift
    months = [f"{2000 + i // 12}-{i % 12 + 1:02d}" for i in range(n)]
    pd.DataFrame({"month": months, "sales": y, "visits": 2 * y}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory):
    """A niaf run with a 30-step window, trained for one epoch."""
    folder = tmp_path_factory.mktemp("fc")
    data = sales_csv(folder / "sales.csv")
    out = folder / "run"
    argv = ["forecast", "train", str(data), "--out", str(out), "--variant", "niaf", "--window"]
    assert main([*argv, "30", *FORECAST]) == 0
    return data, out


def resume(data, out, *extra):
    return main(["forecast", "train", str(data), "--out", str(out), "--variant", "niaf",
                 "--window", "30", *FORECAST, "--resume", *extra])  # fmt: skip


@pytest.mark.slow
def test_forecast_resume_with_another_model_is_refused_and_changes_nothing(forecast_run, capsys):
    data, out = forecast_run
    before = files(out)
    status = resume(data, out, "--variant", "noaf", "--window", "20")
    assert one_line_error(capsys, status) == (
        "--resume: variant differs: checkpoint has 'niaf', command line asks 'noaf'; "
        "window differs: checkpoint has 30, command line asks 20"
    )
    assert files(out) == before  # config.json not rewritten, nothing trained


@pytest.mark.slow
@pytest.mark.parametrize(
    "change, message",
    [
        (["--horizon", "4"], "horizon differs: checkpoint has 3, command line asks 4"),
        (
            ["--target", "visits"],
            "target differs: checkpoint has 'sales', command line asks 'visits'",
        ),
        (["--lr", "0.01"], "lr differs: checkpoint has 0.003, command line asks 0.01"),
    ],
)
def test_forecast_resume_on_another_target_or_horizon_names_both(
    forecast_run, capsys, change, message
):
    data, out = forecast_run
    assert message in one_line_error(capsys, resume(data, out, *change))


@pytest.mark.slow
def test_forecast_resume_on_another_or_an_edited_file_names_both(forecast_run, tmp_path, capsys):
    data, out = forecast_run
    other = sales_csv(tmp_path / "other.csv")
    error = one_line_error(capsys, resume(other, out))
    assert f"data.path differs: checkpoint has '{data}', command line asks '{other}'" in error
    saved = data.read_bytes()
    try:
        sales_csv(data, shift=1.0)  # the same file, edited since the run started
        assert "data.sha256 differs: checkpoint has '" in one_line_error(capsys, resume(data, out))
    finally:
        data.write_bytes(saved)


@pytest.mark.slow
def test_forecast_resume_may_change_epochs_time_and_output(forecast_run, tmp_path, capsys):
    data, out = forecast_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    (copy / ".forecast.png.ab12cd34.tmp").write_bytes(b"half a plot")  # a killed write
    status = resume(data, copy, "--epochs", "2", "--max-minutes", "5", "--threads", "1")
    assert status == 0, capsys.readouterr().err
    assert not (copy / ".forecast.png.ab12cd34.tmp").exists()
    listed = "--epochs,--max-minutes,--patience,--precision,--quiet,--threads,--device,--no-lens,--baselines"
    help_text = "".join(capsys_help(capsys, ["forecast", "train", "-h"]).split())  # unwrapped
    assert f"only{listed}maychange" in help_text


def capsys_help(capsys, argv):
    assert main(argv) == 0
    return capsys.readouterr().out


def hold_lock(folder):
    """Another process holding ``folder``'s run lock, as a training run does."""
    code = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "os.ftruncate(fd, 0); os.write(fd, b'%d\\n' % os.getpid())\n"
        "print('locked', flush=True); sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(folder / ".lstmlens-lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


@pytest.mark.slow
def test_a_second_resume_while_the_first_trains_is_refused(forecast_run, capsys):
    data, out = forecast_run
    before = files(out)
    holder = hold_lock(out)
    try:
        error = one_line_error(capsys, resume(data, out))
        assert error == f"run folder {out} is in use by another process (pid {holder.pid})"
        assert one_line_error(capsys, main(["forecast", "train", str(data), "--out", str(out),
                                            *FORECAST, "--force"])).startswith("run folder")  # fmt: skip
    finally:
        holder.communicate("")
    assert files(out) == before


@pytest.mark.slow
def test_ctrl_c_in_the_first_seconds_leaves_a_folder_to_resume_or_rerun(
    tmp_path, capsys, monkeypatch
):
    import lstmlens.cli.forecast as forecast_cli

    data = sales_csv(tmp_path / "sales.csv")
    out = tmp_path / "run"
    argv = ["forecast", "train", str(data), "--out", str(out), "--window", "12", *FORECAST]
    real = forecast_cli.reporter_from_args

    def reporter_then_ctrl_c(args, run_dir=None):
        real(args, run_dir).message("starting")  # the log already holds a line
        raise KeyboardInterrupt

    monkeypatch.setattr(forecast_cli, "reporter_from_args", reporter_then_ctrl_c)
    assert main(argv) == 130
    monkeypatch.setattr(forecast_cli, "reporter_from_args", real)
    shutil.copytree(out, tmp_path / "again")
    assert main([*argv, "--resume"]) == 0, capsys.readouterr().err
    assert (out / "metrics.json").is_file()
    argv[argv.index(str(out))] = str(tmp_path / "again")
    assert main(argv) == 0, capsys.readouterr().err  # a plain rerun reuses it too


@pytest.mark.slow
def test_force_removes_the_temporary_files_safetensors_leaves(forecast_run, tmp_path):
    data, out = forecast_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    (copy / ".tmpAb12Cd").write_bytes(b"\0" * 1000)  # a killed safetensors write
    (copy / ".model.safetensors.x9y8.tmp").write_bytes(b"\0" * 1000)  # a killed write of ours
    argv = ["forecast", "train", str(data), "--out", str(copy), "--window", "12", *FORECAST]
    assert main([*argv, "--force", "--epochs", "1"]) == 0
    assert (
        not (copy / ".tmpAb12Cd").exists() and not (copy / ".model.safetensors.x9y8.tmp").exists()
    )


# ------------------------------------------------------------ text, classify

CORPUS = "the quick brown fox jumps over the lazy dog. " * 40


@pytest.mark.slow
def test_text_resume_refuses_another_variant_or_level(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS, encoding="utf-8")
    out = tmp_path / "run"
    argv = ["text", "train", str(corpus), "--out", str(out), "--hidden", "8", "--embed-dim", "4",
            "--seq-len", "10", "--batch-size", "4", "--epochs", "1", "--quiet", "--no-lens"]  # fmt: skip
    assert main([*argv, "--variant", "cifg"]) == 0
    before = files(out)
    error = one_line_error(capsys, main([*argv, "--resume", "--level", "word"]))
    assert error == (
        "--resume: level differs: checkpoint has 'char', command line asks 'word'; "
        "variant differs: checkpoint has 'cifg', command line asks 'vanilla'"
    )
    assert files(out) == before
    assert main([*argv, "--variant", "cifg", "--resume", "--epochs", "2"]) == 0


@pytest.mark.slow
def test_classify_resume_refuses_another_model(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = [{"seq": k, "t": t, "x": (1 if k % 2 else -1) * rng.random(), "label": k % 2}
            for k in range(16) for t in range(3)]  # fmt: skip
    pd.DataFrame(rows).to_csv(tmp_path / "d.csv", index=False)
    out = tmp_path / "run"
    argv = ["classify", "train", str(tmp_path / "d.csv"), "--id", "seq", "--time", "t",
            "--label", "label", "--hidden", "4", "--batch-size", "4", "--epochs", "1", "--quiet",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    error = one_line_error(capsys, main([*argv, "--resume", "--bidirectional"]))
    assert error == "--resume: bidirectional differs: checkpoint has False, command line asks True"
    assert main([*argv, "--resume", "--epochs", "2"]) == 0
