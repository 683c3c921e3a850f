"""``--nproc`` on the command line: 2 workers give the 1-process model, one set of files."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lstmlens.cli import launch
from lstmlens.cli.main import main
from test_cli_forecast import TINY, write_csv

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def forked_workers(monkeypatch):
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # import torch._dynamo before forking
    monkeypatch.setattr(launch, "START_METHOD", "fork")


def files(folder: Path) -> list[str]:
    return sorted(
        p.name if not p.name.startswith("checkpoint-") else "checkpoint-*" for p in folder.iterdir()
    )


def test_forecast_train_on_two_processes_equals_one_and_resume_needs_the_same_n(tmp_path, capfd):
    data = write_csv(tmp_path / "d.csv")
    args = [
        "forecast",
        "train",
        str(data),
        "--target",
        "sales",
        *TINY,
        "--epochs",
        "2",
        "--no-lens",
    ]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "--out", str(tmp_path / "two"), "--nproc", "2"]) == 0
    one = load_file(str(tmp_path / "one" / "model.safetensors"))
    two = load_file(str(tmp_path / "two" / "model.safetensors"))
    # float32, 2 epochs of Adam: every weight within 1e-5 (measured: 3e-8). The last training
    # windows' targets past the training part are NaN; each rank's loss is weighted by its
    # known targets, so the arithmetic is one process's up to float32 rounding.
    for k in one:
        assert (one[k] - two[k]).abs().max() <= 1e-5, k
    assert files(tmp_path / "two") == files(tmp_path / "one")  # rank 0's files only
    assert json.loads((tmp_path / "two" / "checkpoint.json").read_text())["world_size"] == 2
    capfd.readouterr()
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "two").glob("[!.]*")}
    assert main([*args, "--out", str(tmp_path / "two"), "--epochs", "3", "--resume"]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trained on 2 process(es), this command runs 1" in err[0]
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "two").glob("[!.]*")}
    assert after == before  # nothing written


def test_bad_nproc_and_half_set_torchrun_environment(tmp_path, capfd, monkeypatch):
    data = write_csv(tmp_path / "d.csv")
    args = [
        "forecast",
        "train",
        str(data),
        "--target",
        "sales",
        *TINY,
        "--out",
        str(tmp_path / "r"),
    ]
    assert main([*args, "--nproc", "0"]) == 2
    assert "--nproc: expected an integer in [1, 256], got '0'" in capfd.readouterr().err
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(args) == 2
    err = capfd.readouterr().err
    assert "half set" in err and "LOCAL_RANK, MASTER_ADDR, MASTER_PORT missing" in err
    assert not (tmp_path / "r").exists()


def test_a_port_in_use_is_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ValueError, match=f"port {port} on 127.0.0.1 is already in use"):
            launch.distributed.launch(print, nproc=2, port=port)
