"""The training process that tests/test_durability.py kills: a fork server around a tiny run.

Run as a script it imports torch and trains two epochs once (so that children
start warm), says ``ready``, then reads commands on stdin:

* ``go RUN_DIR EPOCHS SEED``: fork a child that resumes the run in RUN_DIR (a
  claimed folder: see ``mark_started``) up to EPOCHS epochs, as ``lstmlens ...
  train --resume`` would. The server answers ``pid N``. The child slows every step of a save (the bytes,
  each fsync, rename, link and unlink sleep up to 3 ms, drawn from SEED) so that
  random kill times land inside checkpoint writes, and announces each step on
  stdout (``step NAME``, ``save start``, ``save end``) so the test knows where
  its kill landed.
* ``wait N``: reap child N; the answer is ``status S`` (the raw wait status).

Imported, it provides the model, the task and :func:`reference_weights` (the
weights after every epoch of one uninterrupted run), which the test compares
with every checkpoint it finds after a kill.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lstmlens.train import TrainConfig, Trainer
from lstmlens.train import checkpoint as checkpoint_module

CONFIG = dict(lr=0.01, schedule="plateau")  # epochs come from the command


class Regression:
    """y = x w + noise: 64 rows, 4 features, shuffled batches of 16 (the trainer's generator)."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(7)
        w = torch.randn(4, 1, generator=g)
        self.x, self.xv = torch.randn(64, 4, generator=g), torch.randn(32, 4, generator=g)
        self.y, self.yv = self.x @ w, self.xv @ w
        self.after_epoch: list[dict[str, torch.Tensor]] = []

    def train_batches(self, epoch, generator):
        order = torch.randperm(len(self.x), generator=generator)
        return [(self.x[i], self.y[i]) for i in order.split(16)]  # (16, 4), (16, 1)

    def training_loss(self, model, batch):
        x, y = batch
        return F.mse_loss(model(x), y)

    def validate(self, model):
        self.after_epoch.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"val_loss": F.mse_loss(model(self.xv), self.yv).item()}


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(0.1), nn.Linear(8, 1))


def reference_weights(epochs: int) -> list[dict[str, torch.Tensor]]:
    """``weights[e]``: the model after epoch ``e`` of an uninterrupted run (``e = 0``: initial)."""
    model, task = make_model(), Regression()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    Trainer(model, task, TrainConfig(epochs=epochs, **CONFIG)).fit()
    return [initial, *task.after_epoch]


# ------------------------------------------------------------------ child


def _say(text: str) -> None:
    os.write(1, (text + "\n").encode())


def _slowed(name: str, real, rng: random.Random):
    def step(*args, **kwargs):
        _say(f"step {name}")
        _sleep(rng)
        return real(*args, **kwargs)

    return step


def _sleep(rng: random.Random) -> None:
    time.sleep(rng.uniform(0, 0.003))


def _slow_down_saves(rng: random.Random) -> None:
    for name in ("fsync", "replace", "link", "unlink"):
        setattr(os, name, _slowed(name, getattr(os, name), rng))

    def fill(tmp: str, data: bytes) -> None:  # half the bytes, a pause, the rest
        with open(tmp, "wb") as f:
            f.write(data[: len(data) // 2])
            f.flush()
            _say("step half-written")
            _sleep(rng)
            f.write(data[len(data) // 2 :])

    real_save = checkpoint_module.save_checkpoint

    def save(*args, **kwargs):
        _say("save start")
        result = real_save(*args, **kwargs)
        _say("save end")
        return result

    checkpoint_module._fill = fill
    import lstmlens.train.trainer as trainer_module

    trainer_module.save_checkpoint = save


def _train(run_dir: Path, epochs: int, seed: int) -> None:
    torch.set_num_threads(1)
    _slow_down_saves(random.Random(seed))
    Trainer(make_model(), Regression(), TrainConfig(epochs=epochs, **CONFIG), run_dir).fit(
        resume=True
    )


def serve() -> None:
    torch.set_num_threads(1)  # before any op: no thread pool for the children to inherit
    with tempfile.TemporaryDirectory() as warm:  # every lazy import and first-call set-up,
        Trainer(make_model(), Regression(), TrainConfig(epochs=2, **CONFIG), warm).fit()
    print("ready", flush=True)  # ... done once here, not in every child
    for line in sys.stdin:
        command, *args = line.split()
        if command == "go":
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    _train(Path(args[0]), int(args[1]), int(args[2]))
                except BaseException as e:
                    print(f"child failed: {e!r}", file=sys.stderr, flush=True)
                    code = 1
                os._exit(code)
            print(f"pid {pid}", flush=True)
        elif command == "wait":
            _, status = os.waitpid(int(args[0]), 0)
            print(f"status {status}", flush=True)


if __name__ == "__main__":
    serve()
