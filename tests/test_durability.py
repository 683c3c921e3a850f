"""Nothing lost: SIGKILL at random instants, SIGTERM, a full disk, one writer per run folder.

The slow test forks training processes from ``durability_driver.py`` (torch is
imported once, so a kill costs milliseconds, not a process start), kills each at
a random instant (the driver slows the steps of a save so that most kills land
inside one), and after every kill loads the checkpoint the way ``--resume``
does: it must load, and its weights must be bit-identical to an uninterrupted
run's at the same epoch. The next child resumes from it; the last one finishes,
and matches the uninterrupted run.
"""

import errno
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch import nn

from lstmlens.train import TrainConfig, Trainer
from lstmlens.train import checkpoint as checkpoint_module
from lstmlens.train.checkpoint import mark_started, read_checkpoint
from lstmlens.train.lock import RunFolderBusyError
from lstmlens.train.threads import torch_threads

DRIVER = Path(__file__).with_name("durability_driver.py")
SRC = Path(__file__).parents[1] / "src"
EPOCHS = 400  # more than the kills leave time for: every child is killed mid-run
KILLS_IN_SAVES = 50


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class Server:
    """The driver's fork server: ``go`` a child, kill it, ``wait`` for it, read what it said."""

    def __init__(self, stderr):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(DRIVER.parent)])}
        self.process = subprocess.Popen(
            [sys.executable, str(DRIVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
        assert self.process.stdout.readline().strip() == "ready"

    def ask(self, line, answer):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        said = []
        while not (said and said[-1].startswith(answer)):
            text = self.process.stdout.readline()
            assert text, f"the driver stopped; it said {said[-5:]}"
            said.append(text.strip())
        return said

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=30)
        self.process.stdout.close()


def where_it_landed(said):
    """The step of a save the child was in when killed, or 'outside a save'."""
    inside, step = False, None
    for line in said:
        if line == "save start":
            inside, step = True, "save start"
        elif line == "save end":
            inside = False
        elif line.startswith("step ") and inside:
            step = line[5:]
    return step if inside else "outside a save"


@pytest.mark.slow
def test_random_kills_during_checkpoint_writes_always_leave_a_run_that_resumes_exactly(
    tmp_path,
):
    from durability_driver import reference_weights

    with torch_threads(1):
        reference = reference_weights(EPOCHS)
    run, rng = tmp_path / "run", random.Random(2026)
    run.mkdir()
    mark_started(run)  # what a command does when it claims the folder, before any training
    landed, kills, last_epoch = Counter(), 0, 0
    with open(tmp_path / "driver.err", "w") as err:
        server = Server(err)
        try:
            while landed.total() - landed["outside a save"] < KILLS_IN_SAVES:
                assert kills < 4 * KILLS_IN_SAVES, f"kills do not reach the saves: {landed}"
                pid = int(server.ask(f"go {run} {EPOCHS} {kills}", "pid ")[-1].split()[1])
                time.sleep(rng.uniform(0.03, 0.25))
                os.kill(pid, signal.SIGKILL)
                said = server.ask(f"wait {pid}", "status ")
                status = int(said[-1].split()[1])
                assert os.WIFSIGNALED(status), (said, (tmp_path / "driver.err").read_text())
                kills += 1
                landed[where_it_landed(said)] += 1

                found = read_checkpoint(run)  # what --resume loads: it must load ...
                epoch = found.state["epoch"]
                assert epoch >= last_epoch  # ... nothing already saved is lost ...
                if found.state["tensors"] is not None:  # ... and the pair is consistent
                    model = {k[6:]: v for k, v in found.tensors.items() if k.startswith("model/")}
                    assert same(model, reference[epoch]), f"kill {kills}, epoch {epoch}"
                    assert len(found.state["history"]) == epoch
                last_epoch = epoch

            final = last_epoch + 2  # the last child resumes and finishes, unkilled
            pid = int(server.ask(f"go {run} {final} {kills}", "pid ")[-1].split()[1])
            status = int(server.ask(f"wait {pid}", "status ")[-1].split()[1])
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        finally:
            server.close()
    found = read_checkpoint(run)
    assert found.state["epoch"] == final and found.state["stopped"] == "completed"
    assert same({k[6:]: v for k, v in found.tensors.items() if k.startswith("model/")},
                reference[final])  # fmt: skip
    left = sorted(p.name for p in run.iterdir())
    assert left == [".lstmlens-lock", found.state["tensors"], "checkpoint.json", "metrics.jsonl"]
    print(f"{kills} kills, {landed.total() - landed['outside a save']} inside saves: {landed}")
    assert len(set(landed) - {"outside a save"}) >= 4  # spread over the steps of a save


# ------------------------------------------------------------- fast checks


class Tiny:
    def train_batches(self, epoch, generator):
        return [torch.randn(8, 2, generator=generator)]

    def training_loss(self, model, batch):
        return model(batch).square().mean()

    def validate(self, model):
        return {"val_loss": 1.0}


class SignalAt(Tiny):
    def __init__(self, epoch, signum):
        self.epoch, self.signum = epoch, signum

    def train_batches(self, epoch, generator):
        if epoch == self.epoch:
            os.kill(os.getpid(), self.signum)
        return super().train_batches(epoch, generator)


def test_sigterm_stops_like_ctrl_c_with_the_last_checkpoint_saved(tmp_path, capsys):
    from lstmlens.train import Reporter

    result = Trainer(
        nn.Linear(2, 1), SignalAt(3, signal.SIGTERM), TrainConfig(epochs=5), tmp_path, Reporter()
    ).fit()
    assert result.stopped == "interrupted" and len(result.history) == 2
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the default is back
    assert "interrupted by SIGTERM; checkpoint of epoch 2" in capsys.readouterr().err
    resumed = Trainer(nn.Linear(2, 1), Tiny(), TrainConfig(epochs=5), tmp_path).fit(resume=True)
    assert resumed.stopped == "completed" and len(resumed.history) == 5


def hold_lock(folder):
    """Another process holding ``folder``'s run lock (plain Python: starts in milliseconds)."""
    code = (
        "import fcntl, os, sys, time\n"
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


def test_a_second_process_cannot_train_into_a_folder_in_use(tmp_path):
    Trainer(nn.Linear(2, 1), Tiny(), TrainConfig(epochs=1), tmp_path).fit()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name != ".lstmlens-lock"}
    holder = hold_lock(tmp_path)
    try:
        for resume in (False, True):
            with pytest.raises(RunFolderBusyError) as caught:
                Trainer(nn.Linear(2, 1), Tiny(), TrainConfig(epochs=3), tmp_path).fit(resume)
            assert str(caught.value) == (
                f"[Errno {errno.EBUSY}] run folder {tmp_path} is in use by another process "
                f"(pid {holder.pid})"
            )
        after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name != ".lstmlens-lock"}
        assert after == before
    finally:
        holder.communicate("")
    # the holder is gone, and so is its lock (no stale lock blocks the next run)
    assert Trainer(nn.Linear(2, 1), Tiny(), TrainConfig(epochs=2), tmp_path).fit(True).history


def test_a_full_disk_stops_training_with_one_error_naming_the_file(tmp_path, monkeypatch):
    real_fill, calls = checkpoint_module._fill, []

    def fill_until_full(tmp, data):
        calls.append(tmp)
        if len(calls) == 3:  # the checkpoint of epoch 2
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fill(tmp, data)

    monkeypatch.setattr(checkpoint_module, "_fill", fill_until_full)
    with pytest.raises(OSError) as caught:
        Trainer(nn.Linear(2, 1), Tiny(), TrainConfig(epochs=4), tmp_path).fit()
    e = caught.value
    assert e.errno == errno.ENOSPC and Path(e.filename).parent == tmp_path
    assert Path(e.filename).name.startswith("checkpoint-")
    assert e.strerror == "No space left on device (the checkpoint of epoch 1 is kept)"
    assert read_checkpoint(tmp_path).state["epoch"] == 1
    monkeypatch.setattr(checkpoint_module, "_fill", real_fill)
    resumed = Trainer(nn.Linear(2, 1), Tiny(), TrainConfig(epochs=4), tmp_path).fit(resume=True)
    assert len(resumed.history) == 4


def test_the_next_run_removes_stray_temporary_files(tmp_path):
    Trainer(nn.Linear(2, 1), Tiny(), TrainConfig(epochs=1), tmp_path).fit()
    strays = [".metrics.jsonl.x1y2z3.tmp", ".tmpQw3rTy", "checkpoint-" + "a" * 32 + ".safetensors"]
    for name in strays:
        (tmp_path / name).write_bytes(b"\0" * 100)
    Trainer(nn.Linear(2, 1), Tiny(), TrainConfig(epochs=2), tmp_path).fit(resume=True)
    assert not any((tmp_path / name).exists() for name in strays)


@pytest.mark.slow
def test_a_full_disk_in_a_command_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    from lstmlens.cli.main import main

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 40, encoding="utf-8")
    out = tmp_path / "run"
    real_fill, calls = checkpoint_module._fill, []

    def fill_until_full(tmp, data):
        calls.append(tmp)
        if len(calls) == 3:  # model.safetensors, the checkpoint before epoch 1, that of epoch 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fill(tmp, data)

    monkeypatch.setattr(checkpoint_module, "_fill", fill_until_full)
    argv = ["text", "train", str(corpus), "--out", str(out), "--hidden", "8", "--embed-dim", "4",
            "--seq-len", "10", "--batch-size", "4", "--epochs", "2", "--quiet", "--no-lens"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(
        f"lstmlens: error: {re.escape(str(out))}/checkpoint-[0-9a-f]{{32}}.safetensors: "
        r"No space left on device \(the checkpoint of epoch 0 is kept\)\n",
        err,
    ), err
    monkeypatch.setattr(checkpoint_module, "_fill", real_fill)
    assert main([*argv, "--resume"]) == 0  # space again: the run goes on from its checkpoint
