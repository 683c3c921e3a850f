"""``--nproc N`` above what one batch or the data gives: one line, exit 2, nothing written.

The batch (``--batch-size``) is known in the launcher, so it is refused before any worker
starts. What the data gives (series, windows, streams, sequences) is known once the data
is read: every train command checks it (:func:`lstmlens.train.distributed.check_share`)
before it claims ``--out``; here a process that believes it is one of W ranks stands in
for a worker (the real 2-process case: ``tests/test_distributed_cli.py``).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmlens.cli import launch
from lstmlens.cli.main import main
from lstmlens.train import distributed
from test_cli_classify import TRAIN as CLASSIFY
from test_cli_classify import numeric_csv
from test_cli_forecast import TINY as FORECAST
from test_cli_forecast import write_csv
from test_cli_forecast_global import TINY as GLOBAL
from test_cli_forecast_global import _long
from test_cli_text import CORPUS
from test_cli_text import TINY as TEXT


def _wide(tmp_path: Path) -> Path:
    t = np.arange(120)
    path = tmp_path / "wide.csv"
    pd.DataFrame({"t": t, "a": np.sin(t / 3), "b": np.cos(t / 5)}).to_csv(path, index=False)
    return path


def _corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(CORPUS, encoding="utf-8")
    return path


#: name -> (the command line without --out, given the temporary folder)
COMMANDS = {
    "forecast": lambda d: ["forecast", "train", str(write_csv(d / "d.csv")), "--target",
                           "sales", *FORECAST, "--no-lens"],
    "global": lambda d: ["forecast", "train", str(_long(d)), "--id", "shop", "--date", "month",
                         "--target", "units", "--season", "12", *GLOBAL],
    "ltsf": lambda d: ["forecast", "train", str(_wide(d)), "--target", "all", "--date", "t",
                       "--protocol", "ltsf", "--split", "60,30,30", *GLOBAL],
    "text": lambda d: ["text", "train", str(_corpus(d)), "--epochs", "1", *TEXT],
    "classify": lambda d: ["classify", "train", str(numeric_csv(d / "c.csv")), *CLASSIFY],
}  # fmt: skip


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.fixture
def no_workers(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a worker was started")

    monkeypatch.setattr(launch.launcher, "launch", refuse)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_more_processes_than_a_batch_is_refused_before_any_worker(
    name, tmp_path, capsys, no_workers
):
    argv = [*COMMANDS[name](tmp_path), "--batch-size", "2", "--nproc", "3"]
    out = tmp_path / "run"
    assert main([*argv, "--out", str(out)]) == 2
    assert _one_line(capsys) == (
        "lstmlens: error: 3 processes but only 2 rows per batch (--batch-size): every process "
        "needs at least one; use at most 2 processes (--nproc 2)"
    )
    assert not out.exists()
    kept = tmp_path / "kept"  # an existing folder (a finished run, say) is left as it was
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    before = _snapshot(kept)
    assert main([*argv, "--out", str(kept), "--force"]) == 2
    assert _snapshot(kept) == before


@pytest.mark.parametrize(
    ("name", "world", "count", "what"),
    [
        ("forecast", 1000, 0, "training windows"),
        ("global", 5, 4, "series long enough to train on"),
        ("ltsf", 200, 2 * (60 - 12 - 6 + 1), "training windows"),
        ("text", 9, 8, "parallel token streams"),
        ("classify", 5, 4, "training sequences"),
    ],
)
def test_more_processes_than_the_data_gives_is_refused_before_out_is_claimed(
    name, world, count, what, tmp_path, capsys, monkeypatch
):
    argv = COMMANDS[name](tmp_path)
    monkeypatch.setattr(distributed, "ranks", lambda group=None: distributed.Ranks(0, world))
    out = tmp_path / "run"
    assert main([*argv, "--out", str(out)]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"lstmlens: error: {world} processes but only ")
    assert f" {what}: " in line and line.endswith(f"(--nproc {line.split()[6]})")
    if name != "forecast":  # (the single series' window count follows from its split)
        assert line.split()[6] == str(count)
    assert not out.exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    assert main([*argv, "--out", str(kept), "--force"]) == 2
    assert _snapshot(kept) == {"notes.txt": b"mine"}


def test_check_share_names_both_counts():
    distributed.check_share(2, "series", world=2)  # one each: fine
    with pytest.raises(ValueError, match=r"^3 processes but only 2 series: "):
        distributed.check_share(2, "series", world=3)


@pytest.mark.parametrize("extra", [[], ["--season", "12", "--window", "30"]])
def test_the_forecasters_window_count_is_the_one_it_trains_on(extra, tmp_path, monkeypatch):
    """The count checked before ``--out`` is claimed equals the rows ``fit`` gives its task."""
    from lstmlens.tasks import forecast, forecast_run

    counted, trained = [], []
    count = forecast_run.PreparedForecast.training_windows
    monkeypatch.setattr(
        forecast_run.PreparedForecast,
        "training_windows",
        lambda self: counted.append(count(self)) or counted[-1],
    )
    task = forecast.ForecastTask
    monkeypatch.setattr(
        forecast, "ForecastTask", lambda x, *a, **k: trained.append(len(x)) or task(x, *a, **k)
    )
    argv = [*COMMANDS["forecast"](tmp_path), "--epochs", "1", "--baselines", "none", *extra]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    assert counted == trained and counted[0] > 0


def test_the_global_task_tells_the_trainer_its_batch_rows():
    """``GlobalTask.batch_rows``: the trainer refuses more processes than windows per batch
    (the library's own check, for a script that skips the CLI's)."""
    import torch

    from lstmlens.data.panel_windows import PanelWindows
    from lstmlens.tasks.global_task import GlobalTask

    z = torch.arange(20, dtype=torch.float32)
    windows = PanelWindows(z, np.array([0, 20]), np.array([0]), np.array([20]), 8, 4)
    assert len(windows) == 20 - 8 - 4 + 1
    assert GlobalTask(windows, None, batch_size=4).batch_rows() == 4
    assert GlobalTask(windows, None, batch_size=64).batch_rows() == len(windows)
