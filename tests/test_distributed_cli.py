"""``--nproc`` on the command line: 2 workers give the 1-process model, one set of files."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lstmlens import load_run
from lstmlens.cli import launch
from lstmlens.cli.main import main
from lstmlens.tasks.forecast_model import ForecastTask
from lstmlens.train.checkpoint import load_checkpoint
from test_cli_forecast import TINY, write_csv
from test_cli_forecast_global import TINY as GLOBAL
from test_cli_forecast_global import _long

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


def test_a_killed_worker_ends_the_command_with_one_line_naming_it(tmp_path, capfd, monkeypatch):
    """Rank 1 SIGKILLed in epoch 2: exit 1 and one error line naming rank 1 and SIGKILL (never
    rank 0's follow-on gloo error, which waits until the launcher has seen the death); rank
    0's last checkpoint loads. When the agent stops rank 0 before its collective fails, rank
    0's trainer also says where its checkpoint is ("warning: interrupted by SIGTERM; ...")."""
    import torch.distributed as dist

    real = ForecastTask.train_batches

    def dying(self, epoch, generator):  # (inherited by the forked workers)
        if epoch == 2 and dist.get_rank() == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, epoch, generator)

    monkeypatch.setattr(ForecastTask, "train_batches", dying)
    data = write_csv(tmp_path / "d.csv")
    run = tmp_path / "r"
    args = ["forecast", "train", str(data), "--target", "sales", *TINY, "--epochs", "50"]
    capfd.readouterr()
    assert main([*args, "--no-lens", "--baselines", "none", "--out", str(run), "--nproc", "2"]) == 1
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    stopped = f"warning: interrupted by SIGTERM; checkpoint of epoch 1 in {run}"
    err = [line for line in err if line != stopped]
    assert len(err) == 1, err
    assert err[0].startswith("lstmlens: error: worker rank 1 failed (exit code -9): ")
    assert "SIGKILL" in err[0]
    _, state = load_checkpoint(run)
    assert state["epoch"] == 1 and state["world_size"] == 2


def _children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (from /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        try:
            if (
                d.name.isdigit()
                and int((d / "stat").read_bytes().rsplit(b")", 1)[1].split()[1]) == pid
            ):
                out.append(int(d.name))
        except (OSError, IndexError, ValueError):
            continue
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_ctrl_c_on_the_launcher_stops_every_worker_and_the_run_loads(tmp_path):
    """``lstmlens forecast train --nproc 2`` in a subprocess; SIGINT to the launcher alone once
    rank 0's first checkpoint is there: exit 130, "interrupted" on its last line, no worker
    left running, and ``load_run`` loads the folder (rank 0 saved the model of that epoch).
    The workers are forked (as in the other tests here), which also checks that a forked
    worker gets the default signal handlers back from torch's agent."""
    data = write_csv(tmp_path / "d.csv")
    run = tmp_path / "r"
    code = (
        "import sys; from lstmlens.cli import launch; launch.START_METHOD = 'fork'; "
        "from lstmlens.cli.main import main; sys.exit(main(sys.argv[1:]))"
    )
    argv = ["forecast", "train", str(data), "--target", "sales", *TINY, "--epochs", "500"]
    argv += ["--no-lens", "--baselines", "none", "--out", str(run), "--nproc", "2"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.Popen([sys.executable, "-c", code, *argv], env=env, start_new_session=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        checkpoint = run / "checkpoint.json"
        while not (checkpoint.exists() and json.loads(checkpoint.read_text())["epoch"] >= 1):
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
        workers = _children(p.pid)
        assert len(workers) == 2
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130, err
    assert err.splitlines()[-1] == "lstmlens: interrupted"
    assert "Traceback" not in err and "death signal" not in err
    assert not [w for w in workers if Path(f"/proc/{w}").exists()]
    forecaster, config = load_run(run)
    assert config["task"] == "forecast" and forecaster.net is not None


def test_bad_input_under_many_processes_is_one_line_exit_2(tmp_path, capfd, monkeypatch):
    """More processes than the data gives (known once the workers have read it: every rank
    fails alike before --out is claimed; rank 0's line is the one printed, nothing written);
    a torchrun environment whose MASTER_PORT is in use (nothing written)."""
    panel = _long(tmp_path, n=1)  # one series for two processes
    run = tmp_path / "few"
    capfd.readouterr()
    assert main(["forecast", "train", str(panel), "--id", "shop", "--date", "month", "--target",
                 "units", *GLOBAL, "--out", str(run), "--nproc", "2"]) == 2  # fmt: skip
    err = [line for line in capfd.readouterr().err.splitlines() if line.startswith("lstmlens")]
    assert err == [
        "lstmlens: error: 2 processes but only 1 series long enough to train on: every process "
        "needs at least one; use at most 1 process (--nproc 1)"
    ]
    assert not run.exists()
    data = write_csv(tmp_path / "d.csv")
    args = ["forecast", "train", str(data), "--target", "sales", *TINY, "--no-lens"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        env = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1"}
        for name, value in {**env, "MASTER_PORT": str(port)}.items():
            monkeypatch.setenv(name, value)
        assert main([*args, "--out", str(tmp_path / "busy")]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert err == [
        f"lstmlens: error: torch.distributed: port in use (MASTER_ADDR=127.0.0.1 "
        f"MASTER_PORT={port}); pick a free one"
    ]
    assert not (tmp_path / "busy").exists()


def test_torchrun_gives_the_weights_of_nproc_2(tmp_path):
    """``torchrun --standalone --nproc-per-node 2 -m lstmlens.cli.main forecast train ...``
    (a subprocess; torchrun spawns its workers) writes the same weights, bit for bit, and
    the same set of files as ``--nproc 2``."""
    torchrun = Path(sys.executable).with_name("torchrun")
    command = (
        [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
    )
    data = write_csv(tmp_path / "d.csv")
    args = ["forecast", "train", str(data), "--target", "sales", *TINY, "--epochs", "2"]
    args += ["--no-lens", "--baselines", "none"]
    assert main([*args, "--out", str(tmp_path / "nproc"), "--nproc", "2"]) == 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    done = subprocess.run(
        [*command, "--standalone", "--nproc-per-node", "2", "-m", "lstmlens.cli.main", *args,
         "--out", str(tmp_path / "torchrun")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    one = load_file(str(tmp_path / "nproc" / "model.safetensors"))
    two = load_file(str(tmp_path / "torchrun" / "model.safetensors"))
    assert one.keys() == two.keys() and all(torch.equal(one[k], two[k]) for k in one)
    assert files(tmp_path / "torchrun") == files(tmp_path / "nproc")
