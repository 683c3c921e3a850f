"""The training engine on tiny regression tasks: learning, stopping, schedules, resume, Ctrl-C."""

import io
import json
import math
import os
import random
import signal
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lstmlens.train import NullReporter, Reporter, TrainConfig, Trainer, TrainResult
from lstmlens.train import trainer as trainer_module
from lstmlens.train.checkpoint import load_checkpoint

RUN_FILES = {"metrics.jsonl", "checkpoint.json", "checkpoint-*.safetensors", ".lstmlens-lock"}


def run_files(folder):
    """The names in ``folder``, the one checkpoint weights file shown as ``checkpoint-*``."""
    names = {p.name for p in folder.iterdir()}
    weights = {n for n in names if n.startswith("checkpoint-")}
    assert len(weights) == 1, names
    return names - weights | {"checkpoint-*.safetensors"}


class Regression:
    """y = x w + 0.1 noise, 4 features, batches of 16 shuffled by the trainer's generator.

    Every training batch also draws jitter from NumPy's and Python's global
    RNGs, and the model below uses dropout (torch's global RNG), so a resumed
    run can only match if every one of those states is restored.
    """

    def __init__(self, n=64, batch=16, jitter=0.01):
        g = torch.Generator().manual_seed(1234)
        w = torch.randn(4, 1, generator=g)
        self.x, self.xv = torch.randn(n, 4, generator=g), torch.randn(n, 4, generator=g)
        self.y = self.x @ w + 0.1 * torch.randn(n, 1, generator=g)
        self.yv = self.xv @ w + 0.1 * torch.randn(n, 1, generator=g)
        self.batch, self.jitter = batch, jitter
        self.epochs_seen, self.epochs_started, self.val_modes = [], [], []

    def on_epoch_start(self, epoch):
        self.epochs_started.append(epoch)

    def train_batches(self, epoch, generator):
        self.epochs_seen.append(epoch)
        order = torch.randperm(len(self.x), generator=generator)
        return [(self.x[i], self.y[i]) for i in order.split(self.batch)]  # (batch, 4), (batch, 1)

    def training_loss(self, model, batch):
        x, y = batch
        shift = np.random.normal(0.0, self.jitter) + random.gauss(0.0, self.jitter)  # noqa: NPY002
        return F.mse_loss(model(x + shift), y)

    def validate(self, model):
        self.val_modes.append((model.training, torch.is_grad_enabled()))
        pred = model(self.xv)
        return {
            "val_loss": F.mse_loss(pred, self.yv).item(),
            "val_mae": (pred - self.yv).abs().mean().item(),
        }


class Scripted(Regression):
    """Validation losses follow a script; each validate() records the weights it saw."""

    def __init__(self, losses):
        super().__init__()
        self.losses, self.seen = list(losses), []

    def validate(self, model):
        self.seen.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"val_loss": self.losses[len(self.seen) - 1]}


class Interrupting(Regression):
    """Interrupts the first batch of ``epoch``: by raising, or by a real SIGINT."""

    def __init__(self, epoch, how="raise"):
        super().__init__()
        self.at, self.how, self.current = epoch, how, 0

    def train_batches(self, epoch, generator):
        self.current = epoch
        return super().train_batches(epoch, generator)

    def training_loss(self, model, batch):
        if self.current == self.at:
            self.at = None
            if self.how == "raise":
                raise KeyboardInterrupt
            if self.how == "raise_signal":
                signal.raise_signal(signal.SIGINT)
            else:
                os.kill(os.getpid(), signal.SIGINT)
        return super().training_loss(model, batch)


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(0.2), nn.Linear(16, 1))


def same_weights(a, b):
    a, b = (
        a.state_dict() if isinstance(a, nn.Module) else a,
        b.state_dict() if isinstance(b, nn.Module) else b,
    )
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def without_seconds(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


# ------------------------------------------------------------------ learning


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop"])
def test_every_optimizer_lowers_the_loss(optimizer):
    lr = {"sgd": 0.05, "rmsprop": 0.003}.get(optimizer, 0.01)
    result = Trainer(mlp(), Regression(), TrainConfig(epochs=15, optimizer=optimizer, lr=lr)).fit()
    first, last = result.history[0], result.history[-1]
    assert last["train_loss"] < 0.3 * first["train_loss"]
    assert result.best_val_loss < 0.3 * first["val_loss"]
    assert result.stopped == "completed"


def test_bf16_autocast_trains_too(monkeypatch):
    monkeypatch.setattr("lstmlens.precision.native_bf16", lambda: True)  # emulated elsewhere
    model = mlp()
    result = Trainer(model, Regression(), TrainConfig(epochs=10, lr=0.01, precision="bf16")).fit()
    assert result.best_val_loss < 0.3 * result.history[0]["val_loss"]
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay float32


def test_an_lstm_learns_to_sum_a_sequence():
    class SumTask:
        """y = sum_t x_t for x_t ~ U(-0.5, 0.5), T = 6: Var y = 6/12, what predicting 0 scores."""

        def __init__(self):
            g = torch.Generator().manual_seed(7)
            self.x = torch.rand(64, 6, 1, generator=g) - 0.5  # (B, T, 1)
            self.xv = torch.rand(32, 6, 1, generator=g) - 0.5

        def train_batches(self, epoch, generator):
            order = torch.randperm(64, generator=generator)
            return [self.x[i] for i in order.split(32)]  # (32, T, 1)

        def training_loss(self, model, x):
            return F.mse_loss(model(x), x.sum(1))

        def validate(self, model):
            return {"val_loss": F.mse_loss(model(self.xv), self.xv.sum(1)).item()}

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.head = nn.LSTM(1, 8, batch_first=True), nn.Linear(8, 1)

        def forward(self, x):
            out, _ = self.lstm(x)  # (B, T, 8)
            return self.head(out[:, -1])  # (B, 1)

    result = Trainer(Net(), SumTask(), TrainConfig(epochs=20, lr=0.03)).fit()
    assert result.best_val_loss < 0.1 * (6 / 12)


def test_history_hooks_and_metrics_log(tmp_path):
    task = Regression()
    result = Trainer(mlp(), task, TrainConfig(epochs=3), run_dir=tmp_path).fit()
    assert isinstance(result, TrainResult)
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    assert set(result.history[0]) == {"epoch", "train_loss", "val_loss", "val_mae", "lr", "seconds"}
    assert task.epochs_seen == task.epochs_started == [1, 2, 3]
    assert task.val_modes == [(False, False)] * 3  # eval mode, no grad
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == result.history
    assert run_files(tmp_path) == RUN_FILES  # no temporary file left


def test_gradient_clipping_bounds_the_step():
    class Steep(Regression):
        def training_loss(self, model, batch):
            return 1e3 * model(batch[0]).sum()

        def train_batches(self, epoch, generator):
            return [(self.x, self.y)]

    def step_norm(clip_norm):
        model = nn.Linear(4, 1)
        before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
        cfg = TrainConfig(epochs=1, optimizer="sgd", momentum=0.0, lr=1.0, clip_norm=clip_norm)
        Trainer(model, Steep(), cfg).fit()
        after = torch.cat([p.detach().flatten() for p in model.parameters()])
        return (after - before).norm().item()

    # SGD with lr 1 moves the weights by exactly the (clipped) gradient: ||g|| * min(1, c/||g||).
    assert step_norm(0.5) == pytest.approx(0.5, rel=1e-5)
    assert step_norm(None) > 100


# ---------------------------------------------------------- stopping rules


def test_early_stopping_keeps_the_best_weights():
    task = Scripted([3.0, 2.0, 1.0, 1.5, 1.0, 9.0, 9.0])
    model = mlp()
    result = Trainer(model, task, TrainConfig(epochs=7, patience=2)).fit()
    assert result.stopped == "early_stopping"
    assert len(result.history) == 5  # epochs 4 and 5 do not beat epoch 3 (1.0 is not < 1.0)
    assert (result.best_epoch, result.best_val_loss) == (3, 1.0)
    assert same_weights(model, task.seen[2])
    assert not same_weights(model, task.seen[4])


def test_max_minutes_stops_at_the_first_epoch_end(tmp_path):
    task = Scripted([2.0, 1.0, 0.5])
    model = mlp()
    result = Trainer(model, task, TrainConfig(epochs=3, max_minutes=1e-9), run_dir=tmp_path).fit()
    assert result.stopped == "max_minutes"
    assert len(result.history) == 1 and result.best_epoch == 1
    assert same_weights(model, task.seen[0])
    assert load_checkpoint(tmp_path)[1]["stopped"] == "max_minutes"


def test_cosine_schedule_follows_the_formula():
    lr, epochs = 0.01, 5
    result = Trainer(
        mlp(), Regression(), TrainConfig(epochs=epochs, lr=lr, schedule="cosine")
    ).fit()
    expected = [lr / 2 * (1 + math.cos(math.pi * e / epochs)) for e in range(epochs)]
    assert [r["lr"] for r in result.history] == pytest.approx(expected, rel=1e-12)


def test_plateau_schedule_halves_after_three_flat_epochs():
    # Epoch 1 sets the best; epochs 2-4 are flat, so after epoch 4 (3 > patience 2) lr halves;
    # the count restarts, epochs 5-7 are flat, so epoch 8 runs at a quarter.
    a = 0.01
    result = Trainer(
        mlp(), Scripted([1.0] * 8), TrainConfig(epochs=8, lr=a, schedule="plateau")
    ).fit()
    assert [r["lr"] for r in result.history] == [a, a, a, a, a / 2, a / 2, a / 2, a / 4]


# ---------------------------------------------------------------- resume


@pytest.mark.parametrize(
    "config",
    [
        TrainConfig(epochs=6, lr=0.01, schedule="cosine"),
        TrainConfig(epochs=6, lr=0.05, optimizer="sgd", schedule="plateau", patience=5),
    ],
    ids=["adam-cosine", "sgd-plateau"],
)
@pytest.mark.parametrize("stop_epoch", [1, 4])
def test_interrupt_then_resume_is_bit_identical(tmp_path, config, stop_epoch):
    reference = mlp()
    full = Trainer(reference, Regression(), config, run_dir=tmp_path / "a").fit()

    first = Trainer(mlp(), Interrupting(stop_epoch), config, run_dir=tmp_path / "b").fit()
    assert first.stopped == "interrupted" and len(first.history) == stop_epoch - 1
    resumed_model = mlp(seed=99)  # different initial weights: all must come from the checkpoint
    resumed = Trainer(resumed_model, Regression(), config, run_dir=tmp_path / "b").fit(resume=True)

    assert resumed.stopped == full.stopped == "completed"
    assert same_weights(resumed_model, reference)  # the best weights
    last_a, last_b = load_checkpoint(tmp_path / "a")[0], load_checkpoint(tmp_path / "b")[0]
    assert same_weights(last_a, last_b)  # the final weights, optimizer moments and RNG states
    assert without_seconds(resumed.history) == without_seconds(full.history)


def test_resume_after_max_minutes_with_more_epochs_matches_one_long_run(tmp_path):
    config = TrainConfig(epochs=5, lr=0.01)
    reference = mlp()
    Trainer(reference, Regression(), config).fit()
    short = TrainConfig(epochs=5, lr=0.01, max_minutes=1e-9)
    assert Trainer(mlp(), Regression(), short, run_dir=tmp_path).fit().stopped == "max_minutes"
    model = mlp(seed=5)
    result = Trainer(model, Regression(), config, run_dir=tmp_path).fit(resume=True)
    assert len(result.history) == 5 and same_weights(model, reference)


def test_resume_refuses_a_different_setup_or_a_missing_checkpoint(tmp_path):
    Trainer(mlp(), Regression(), TrainConfig(epochs=1), run_dir=tmp_path).fit()
    with pytest.raises(
        ValueError, match="optimizer differs: checkpoint has 'adam', this run asks 'sgd'"
    ):
        Trainer(mlp(), Regression(), TrainConfig(optimizer="sgd"), run_dir=tmp_path).fit(
            resume=True
        )
    with pytest.raises(ValueError, match="checkpoint.json: file not found"):
        Trainer(mlp(), Regression(), TrainConfig(), run_dir=tmp_path / "x").fit(resume=True)
    wider = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(0.2), nn.Linear(8, 1))
    with pytest.raises(ValueError, match=r"checkpoint-\w+.safetensors: weights do not match"):
        Trainer(wider, Regression(), TrainConfig(), run_dir=tmp_path).fit(resume=True)


def test_resume_of_a_finished_run_trains_no_more(tmp_path):
    task = Scripted([3.0, 2.0, 2.5, 2.5, 1.0])
    Trainer(mlp(), task, TrainConfig(epochs=5, patience=2), run_dir=tmp_path).fit()
    model = mlp(seed=3)
    result = Trainer(model, task, TrainConfig(epochs=5, patience=2), run_dir=tmp_path).fit(
        resume=True
    )
    assert result.stopped == "early_stopping" and len(result.history) == 4
    assert len(task.seen) == 4 and same_weights(model, task.seen[1])


# ---------------------------------------------------------------- Ctrl-C


@pytest.mark.parametrize("how", ["raise", "raise_signal", "kill"])
def test_ctrl_c_leaves_a_loadable_checkpoint(tmp_path, how):
    model = mlp()
    result = Trainer(model, Interrupting(3, how), TrainConfig(epochs=5), run_dir=tmp_path).fit()
    assert result.stopped == "interrupted"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    tensors, state = load_checkpoint(tmp_path)
    assert state["epoch"] == 2 and len(state["history"]) == 2
    best = {k[len("best/") :]: v for k, v in tensors.items() if k.startswith("best/")}
    assert same_weights(model, best)  # the model holds the best weights of the saved run
    assert run_files(tmp_path) == RUN_FILES


def test_ctrl_c_in_the_first_epoch_restores_the_initial_weights(tmp_path):
    model = mlp()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    result = Trainer(model, Interrupting(1), TrainConfig(epochs=3), run_dir=tmp_path).fit()
    assert (result.stopped, result.history, result.best_epoch) == ("interrupted", [], 0)
    assert same_weights(model, initial)
    assert load_checkpoint(tmp_path)[1]["epoch"] == 0


def test_sigint_while_saving_waits_for_the_save(tmp_path, monkeypatch):
    real_save, calls = trainer_module.save_checkpoint, []

    def save_then_interrupted(*args):
        calls.append(1)
        if len(calls) == 3:  # the checkpoint of epoch 2 (the first is written before epoch 1)
            signal.raise_signal(signal.SIGINT)
        real_save(*args)

    monkeypatch.setattr(trainer_module, "save_checkpoint", save_then_interrupted)
    result = Trainer(mlp(), Regression(), TrainConfig(epochs=5), run_dir=tmp_path).fit()
    assert result.stopped == "interrupted" and len(result.history) == 2
    assert load_checkpoint(tmp_path)[1]["epoch"] == 2


# ---------------------------------------------------------------- errors


def test_bad_tasks_and_configs_are_named():
    with pytest.raises(TypeError, match="Trainer: task object has no method train_batches"):
        Trainer(mlp(), object())
    with pytest.raises(TypeError, match="Trainer: model must be an nn.Module, got int"):
        Trainer(3, Regression())

    class NoValLoss(Regression):
        def validate(self, model):
            return {"mae": 1.0}

    with pytest.raises(ValueError, match="NoValLoss.validate must return a dict with 'val_loss'"):
        Trainer(mlp(), NoValLoss(), TrainConfig(epochs=1)).fit()
    for field, value in [("epochs", 0), ("optimizer", "lbfgs"), ("lr", -1.0), ("schedule", "step")]:
        with pytest.raises(ValueError, match=f"TrainConfig: {field} must be"):
            TrainConfig(**{field: value})


def test_a_diverging_loss_stops_with_an_error_and_the_best_weights():
    class Diverging(Scripted):
        def training_loss(self, model, batch):
            loss = super().training_loss(model, batch)
            return loss * math.inf if len(self.seen) == 2 else loss

    task, model = Diverging([1.0, 2.0, 3.0]), mlp()
    with pytest.raises(ValueError, match="training loss is inf at epoch 3, batch 1"):
        Trainer(model, task, TrainConfig(epochs=3)).fit()
    assert same_weights(model, task.seen[0])


# ---------------------------------------------------------------- reporter


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_reporter_lines_bar_quiet_and_log(tmp_path):
    plain = io.StringIO()
    Trainer(mlp(), Regression(), TrainConfig(epochs=2), reporter=Reporter(stream=plain)).fit()
    lines = plain.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2  train_loss ") and "eta" in lines[0]
    assert "\r" not in plain.getvalue()  # no bar when not a terminal

    terminal = FakeTerminal()
    Trainer(mlp(), Regression(), TrainConfig(epochs=2), reporter=Reporter(stream=terminal)).fit()
    assert "0/4 [" in terminal.getvalue() and "epoch 2/2  train_loss" in terminal.getvalue()

    quiet, log = FakeTerminal(), tmp_path / "train.log"
    reporter = Reporter(quiet=True, stream=quiet, log_path=log)
    Trainer(mlp(), Regression(), TrainConfig(epochs=2), reporter=reporter).fit()
    reporter.warning("disk almost full")
    assert quiet.getvalue() == "warning: disk almost full\n"
    assert log.read_text().splitlines()[1].startswith("epoch 2/2")

    null = NullReporter()
    null.message("nothing")  # says nothing, has every method
    null.warning("nothing")


def test_the_bar_shows_the_running_loss():
    terminal = FakeTerminal()
    reporter = Reporter(stream=terminal)
    reporter.epoch_start(1, 2, batches=3)
    reporter.batch(0.5)
    time.sleep(0.15)  # tqdm redraws at most every 0.1 s
    reporter.batch(0.25)
    reporter.close()
    assert "2/3" in terminal.getvalue() and "loss=0.375" in terminal.getvalue()
