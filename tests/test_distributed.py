"""Training on 2 gloo processes equals training on 1 (float64), and the distributed plumbing.

The workers are forked (``torch.multiprocessing``, a file rendezvous), run one
scenario each and save what they end with; the test compares it with the same
training run in this process without any process group. ``2 processes at
(global) batch 2b`` means each rank trains on b rows of every batch.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import tempfile
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import lstmlens
from lstmlens.data.sequences import LabelledSequences
from lstmlens.data.text import build_tokenizer
from lstmlens.tasks.classify import ClassifyTask, SequenceClassifier
from lstmlens.tasks.forecast_model import ForecastNet, ForecastTask, NetConfig
from lstmlens.tasks.language import LanguageModel, LanguageTask
from lstmlens.train import TrainConfig, Trainer, seed_everything
from lstmlens.train import distributed as D
from lstmlens.train.checkpoint import load_checkpoint

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="no gloo backend"
)

TOL = 1e-10  # float64
TOL32 = 1e-5  # float32
TEXT = "the quick brown fox jumps over the lazy dog; pack my box with five dozen jugs. " * 6


# ------------------------------------------------------------------ scenarios


def forecaster(
    run_dir: str | None = None,
    epochs: int = 2,
    resume: bool = False,
    dtype: torch.dtype = torch.float64,
    **cfg,
):
    """A tiny forecaster (2-member ensemble, 3 quantiles) on noisy sine windows: 21 windows,
    batch 8 (the last one 5: 3 rows on rank 0, 2 on rank 1); as in ``forecast train``, the
    last windows' targets past the training part are NaN (left out of the loss), so the
    ranks' shares hold uneven numbers of loss terms."""
    g = torch.Generator().manual_seed(3)
    t = torch.arange(60, dtype=torch.float64)
    u = torch.sin(t / 4) + 0.1 * torch.randn(60, generator=g, dtype=torch.float64)
    x = torch.stack([u[i : i + 6] for i in range(30)]).unsqueeze(-1).to(dtype)  # (30, 6, 1)
    y = torch.stack([u[i + 6 : i + 9] for i in range(30)]).to(dtype)  # (30, 3)
    y[19, 2:] = y[20, 1:] = torch.nan  # (steps past the training part)
    task = ForecastTask(x[:21], y[:21], x[21:], y[21:], quantiles=(0.1, 0.5, 0.9), batch_size=8)
    seed_everything(0)
    net = NetConfig(input_size=1, hidden_size=5, out_steps=3, n_outputs=3, members=2)
    model = ForecastNet(net).to(dtype)
    config = TrainConfig(epochs=epochs, lr=0.01, **cfg)
    result = Trainer(model, task, config, run_dir=run_dir).fit(resume=resume)
    return model.state_dict(), result.history


def language(epochs: int = 2, dtype: torch.dtype = torch.float64):
    """A tiny character model: 6 parallel streams (3 per rank), BPTT 7."""
    tok = build_tokenizer(TEXT, "char")
    ids = torch.tensor(tok.encode(TEXT))
    seed_everything(0)
    model = LanguageModel(tok, embed_size=6, hidden_size=8).to(dtype)
    task = LanguageTask(model, ids[:400], ids[400:], batch_size=6, seq_len=7)
    result = Trainer(model, task, TrainConfig(epochs=epochs, lr=0.01)).fit()
    return model.state_dict(), result.history


def classifier(epochs: int = 2, dtype: torch.dtype = torch.float64):
    """A tiny classifier on sequences of lengths 3..8: 19 sequences, batch 6, class-weighted
    loss (so the ranks' shares weigh unevenly)."""
    g = torch.Generator().manual_seed(5)
    lengths = [3 + i % 6 for i in range(27)]
    seqs = [torch.randn(n, 2, generator=g, dtype=torch.float64).to(dtype) for n in lengths]
    labels = torch.tensor([int(s[:, 0].mean() > 0) for s in seqs])
    ids = [str(i) for i in range(27)]
    data = LabelledSequences(seqs, labels, ids, ["a", "b"])
    weights = torch.tensor([0.3, 1.7], dtype=dtype)
    task = ClassifyTask(
        data.subset(range(19)), data.subset(range(19, 27)), batch_size=6, weights=weights
    )
    seed_everything(0)
    model = SequenceClassifier({"num_classes": 2, "input_size": 2, "hidden_size": 5}).to(dtype)
    result = Trainer(model, task, TrainConfig(epochs=epochs, lr=0.01)).fit()
    return model.state_dict(), result.history


def language_validation():
    """The language task's validation on this rank through ``validate_share`` (float64): the
    metrics and the number of streams each forward of the model read."""
    tok = build_tokenizer(TEXT, "char")
    ids = torch.tensor(tok.encode(TEXT))
    seed_everything(0)
    model = LanguageModel(tok, embed_size=6, hidden_size=8).double()
    task = LanguageTask(model, ids[:300], ids[300:], batch_size=6, seq_len=7)
    rows: list[int] = []
    model.register_forward_pre_hook(lambda _, args: rows.append(args[0].shape[0]))
    with torch.no_grad():
        shared = task.validate_share(model, D.ranks())
        return shared, list(rows), task.validate(model)


class RowsTask:
    """Least squares on 10 rows in batches of 4, 4, 2 yielded as :class:`D.Rows`; ``loaded``
    records how many rows each build made."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(7)
        self.x = torch.randn(10, 3, generator=g, dtype=torch.float64)
        self.y = torch.randn(10, 1, generator=g, dtype=torch.float64)
        self.loaded: list[int] = []

    def train_batches(self, epoch, generator):
        order = torch.randperm(10, generator=generator)
        return [D.Rows(order[lo : lo + 4], self.load) for lo in range(0, 10, 4)]

    def load(self, index):
        self.loaded.append(len(index))
        return self.x[index], self.y[index]

    def training_loss(self, model, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(model(x), y)

    def validate(self, model):
        return {"val_loss": float(torch.nn.functional.mse_loss(model(self.x), self.y))}


def rows(epochs: int = 2):
    """:class:`RowsTask` for 2 epochs: the weights and the row counts each build made."""
    seed_everything(0)
    model = torch.nn.Linear(3, 1).double()
    task = RowsTask()
    Trainer(model, task, TrainConfig(epochs=epochs, lr=0.05)).fit()
    return model.state_dict(), task.loaded


def variant_steps(variant: str):
    """Two DDP steps of an ``lstmlens.LSTM`` with ``variant`` (fails on unused parameters)."""
    seed_everything(0)
    lstm = lstmlens.LSTM(3, 4, num_layers=2, variant=variant, batch_first=True).double()
    model = torch.nn.parallel.DistributedDataParallel(lstm)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(3):
        x = torch.randn(2, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        out, _ = model(x)
        out.square().mean().backward()
        opt.step()
    return lstm.state_dict()


SCENARIOS = {
    "forecaster": forecaster,
    "language": language,
    "classifier": classifier,
    "language_validation": language_validation,
    "rows": rows,
    "variants": lambda: {v: variant_steps(v) for v in lstmlens.variants.PRESETS},
}


def _entry(rank: int, world: int, folder: str, name: str, kwargs: dict) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{folder}/rendezvous",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        torch.save(SCENARIOS[name](**kwargs), f"{folder}/result-{rank}.pt")
    finally:
        dist.destroy_process_group()


def on_ranks(tmp_path: Path, name: str, world: int = 2, **kwargs):
    """Run scenario ``name`` on ``world`` forked gloo processes; returns each rank's result."""
    folder = Path(tempfile.mkdtemp(prefix=f"ranks-{name}-", dir=tmp_path))
    context = mp.start_processes(
        _entry,
        args=(world, str(folder), name, kwargs),
        nprocs=world,
        start_method="fork",
        join=False,
    )
    deadline = time.monotonic() + 120  # a hung rank fails the test instead of hanging it
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for p in context.processes:
                p.kill()
            raise TimeoutError(f"scenario {name} on {world} ranks did not finish in 120 s")
    return [torch.load(folder / f"result-{r}.pt", weights_only=False) for r in range(world)]


def assert_same(a: dict, b: dict, tol: float = TOL) -> None:
    assert a.keys() == b.keys()
    for k in a:
        diff = (a[k].double() - b[k].double()).abs().max().item() if a[k].numel() else 0.0
        assert diff <= tol, f"{k}: differs by {diff:.3g}"


def assert_history(a: list, b: list, rel: float = 1e-6) -> None:
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        for key in ("train_loss", "val_loss"):  # (the language task's loss is float32)
            assert math.isclose(ra[key], rb[key], rel_tol=rel), (key, ra[key], rb[key])


# ---------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", ["forecaster", "language", "classifier"])
def test_two_processes_equal_one_process_at_the_same_global_batch(tmp_path, name):
    """2 ranks x b rows per step == 1 process x 2b rows, parameters within 1e-10 (float64),
    after 2 epochs (6 Adam steps for the forecaster, 19 for the language model, 8 for the
    classifier); the forecaster's NaN targets and the classifier's class weights make the
    ranks' shares hold uneven numbers of loss terms."""
    alone, alone_history = SCENARIOS[name]()
    results = on_ranks(tmp_path, name)
    for state, history in results:  # every rank holds the same model
        assert_same(state, alone)
        assert_history(history, alone_history)
    assert len(alone_history) == 2


@pytest.mark.parametrize("name", ["forecaster", "language", "classifier"])
def test_two_processes_equal_one_process_at_the_same_global_batch_in_float32(tmp_path, name):
    """float32, 3 epochs of Adam (k = 9 steps for the forecaster, about 28 for the language
    model, 12 for the classifier): every parameter of 2 ranks x b rows within 1e-5 (absolute) of
    1 process x 2b rows; the losses within 1e-5 relative.

    The shares' losses are weighted by their loss terms (known targets, class weights), so
    the arithmetic is the single process's up to float32 rounding: per-rank partial sums
    of the gradient instead of one sum (DDP sums 2 float32 values, which float64 would round
    the same); measured differences are 1e-7 .. 1e-6.
    """
    alone, alone_history = SCENARIOS[name](epochs=3, dtype=torch.float32)
    for state, history in on_ranks(tmp_path, name, epochs=3, dtype=torch.float32):
        assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
        assert_same(state, alone, tol=TOL32)
        assert_history(history, alone_history, rel=TOL32)
    assert len(alone_history) == 3


def test_each_rank_validates_its_share_of_the_streams_and_the_metrics_are_the_whole_splits(
    tmp_path,
):
    """The language task validates on 2 ranks with 3 of the 6 validation streams each (no
    rank reads all of them), and the summed metrics equal 1 process's within 1e-6 relative
    (the task sums its cross-entropy in float32, one sum per segment: 3 streams' terms, not 6;
    measured 1e-8)."""
    _, _, alone = language_validation()
    for shared, rows, _ in on_ranks(tmp_path, "language_validation"):
        assert rows and set(rows) == {3}
        assert shared.keys() == alone.keys() == {"val_loss", "val_ppl", "val_bpc"}
        for key in alone:
            assert math.isclose(shared[key], alone[key], rel_tol=1e-6), key


def test_a_rows_batch_is_built_for_each_ranks_rows_only(tmp_path):
    """A task yielding :class:`~lstmlens.train.distributed.Rows`: one process builds whole
    batches (4, 4, 2 rows), each of 2 ranks only its half (2, 2, 1), and the weights are
    1 process's within 1e-10 (float64)."""
    alone, loaded = rows()
    assert loaded == [4, 4, 2] * 2
    for state, mine in on_ranks(tmp_path, "rows"):
        assert mine == [2, 2, 1] * 2
        assert_same(state, alone)


def test_token_streams_share_splits_the_rows():
    """``TokenStreams.share``: the ranks' streams, stacked, are the streams; same segments."""
    from lstmlens.data.text import TokenStreams

    streams = TokenStreams(torch.arange(100), batch_size=5, seq_len=4)
    parts = [streams.share(r, 2) for r in range(2)]
    assert [p.batch_size for p in parts] == [3, 2]
    assert torch.equal(torch.cat([p.data for p in parts]), streams.data)
    assert all(len(p) == len(streams) and p.seq_len == 4 for p in parts)


def test_every_variant_trains_inside_distributed_data_parallel(tmp_path):
    """No unused parameters (DDP raises on the second step if a registered one gets no grad)."""
    ranks = on_ranks(tmp_path, "variants")
    for variant, state in ranks[0].items():
        assert_same(state, ranks[1][variant], tol=0.0)


def test_rank_zero_alone_writes_and_two_process_resume_equals_uninterrupted_run(tmp_path):
    whole = on_ranks(tmp_path, "forecaster", run_dir=str(tmp_path / "whole"), epochs=3)
    part = tmp_path / "part"
    on_ranks(tmp_path, "forecaster", run_dir=str(part), epochs=1)
    resumed = on_ranks(tmp_path, "forecaster", run_dir=str(part), epochs=3, resume=True)
    assert_same(resumed[0][0], whole[0][0], tol=0.0)
    assert_history(resumed[0][1], whole[0][1])
    # one set of files: one checkpoint pair and one metrics log, written by rank 0
    names = sorted(p.name for p in part.iterdir())
    assert names == sorted(
        [".lstmlens-lock", "checkpoint.json", "metrics.jsonl"]
        + [n for n in names if n.startswith("checkpoint-")]
    )
    assert len([n for n in names if n.startswith("checkpoint-")]) == 1
    _, state = load_checkpoint(part)
    assert state["world_size"] == 2 and state["epoch"] == 3
    assert set(state["rng"]["ranks"]) == {"1"}
    lines = (part / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]


def test_resume_with_another_world_size_is_refused_naming_both(tmp_path):
    on_ranks(tmp_path, "forecaster", run_dir=str(tmp_path / "run"), epochs=1)
    with pytest.raises(ValueError, match=r"world_size differs: checkpoint has 2, this run asks 1"):
        forecaster(run_dir=str(tmp_path / "run"), epochs=2, resume=True)


# ----------------------------------------------------------- environment, errors


def test_half_set_environment_is_one_line_naming_the_missing_variables():
    with pytest.raises(ValueError) as e:
        D.environment({"RANK": "0", "WORLD_SIZE": "2"})
    msg = str(e.value)
    assert "\n" not in msg and "LOCAL_RANK, MASTER_ADDR, MASTER_PORT missing" in msg
    assert D.environment({}) is None
    full = {
        "RANK": "1",
        "WORLD_SIZE": "2",
        "LOCAL_RANK": "1",
        "MASTER_ADDR": "h",
        "MASTER_PORT": "5",
    }
    assert D.environment(full)["WORLD_SIZE"] == 2
    with pytest.raises(ValueError, match="RANK=2 is not in"):
        D.environment({**full, "RANK": "2"})


def test_single_process_defaults():
    r = D.ranks()
    assert (r.rank, r.world_size, r.is_main) == (0, 1, True)
    assert D.reduce_mean({"a": 1}, r) == {"a": 1.0}
    assert D.backend_for("cpu") == "gloo" and D.backend_for("cuda:0") == "nccl"


class _Joined(Exception):
    """Raised by the stand-in ``init_process_group`` once it has noted the backend."""


@pytest.fixture
def machine_with_cuda(monkeypatch):
    """CUDA and nccl 'present', a torchrun environment set; ``init_process_group`` notes the
    backend it is asked for (and raises :class:`_Joined`); returns the list of notes."""
    chosen: list = []

    def init(backend, **kwargs):
        chosen.append(backend)
        raise _Joined

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: chosen.append(f"set_device({i})"))
    monkeypatch.setattr(dist, "is_nccl_available", lambda: True)
    monkeypatch.setattr(dist, "init_process_group", init)
    env = {
        "RANK": "0",
        "WORLD_SIZE": "2",
        "LOCAL_RANK": "1",
        "MASTER_ADDR": "h",
        "MASTER_PORT": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return chosen


def test_nccl_only_for_a_model_on_cuda(machine_with_cuda, tmp_path):
    """A CPU model on a machine with CUDA trains over gloo (the trainer, the launcher and a
    ``train`` command under torchrun with ``--device auto``); a CUDA device gets nccl."""
    chosen = machine_with_cuda
    with pytest.raises(_Joined):
        Trainer(torch.nn.Linear(2, 1), _NoTask())
    assert chosen == ["gloo"]
    with pytest.raises(_Joined):
        D.init_from_environment(device="cuda")
    assert chosen[1:] == ["set_device(1)", "nccl"]
    from lstmlens.cli.main import main
    from test_cli_forecast import TINY, write_csv

    data = write_csv(tmp_path / "d.csv")
    with pytest.raises(_Joined):
        main(["forecast", "train", str(data), "--target", "sales", *TINY, "--device", "auto",
              "--out", str(tmp_path / "r")])  # fmt: skip
    assert chosen[3:] == ["gloo"] and not (tmp_path / "r").exists()


def test_the_launcher_hands_its_workers_the_backend_of_the_device(monkeypatch):
    import torch.distributed.launcher.api as api

    seen: list = []
    monkeypatch.setattr(api, "elastic_launch", lambda config, entry: lambda *a: seen.append(a))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    D.launch(print, nproc=2)
    D.launch(print, nproc=2, device="cuda")
    assert [a[-1] for a in seen] == ["gloo", "nccl"]


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
def test_a_failing_rank_waits_until_its_dead_peer_is_reaped(monkeypatch):
    """A killed peer is a zombie until its launcher reaps it: wait_for_dead_peers returns only
    then (so the launcher sees that death first); with a live peer it returns at once."""
    import subprocess
    import threading

    peer = subprocess.Popen(["sleep", "30"])
    monkeypatch.setitem(D._PEERS, os.getpid(), {1: peer.pid})
    peer.kill()  # (not reaped: a zombie)
    reaper = threading.Timer(0.5, peer.wait)
    reaper.start()
    started = time.monotonic()
    assert D.wait_for_dead_peers() == [1]
    assert time.monotonic() - started >= 0.45 and peer.returncode == -9
    reaper.join()
    alive = subprocess.Popen(["sleep", "30"])
    try:
        monkeypatch.setitem(D._PEERS, os.getpid(), {1: alive.pid})
        started = time.monotonic()
        assert D.wait_for_dead_peers(settle=0.1) == []
        assert time.monotonic() - started < 2
    finally:
        alive.kill()
        alive.wait()


class _NoTask:
    def train_batches(self, epoch, generator):
        return []

    def training_loss(self, model, batch):
        return torch.zeros(())

    def validate(self, model):
        return {"val_loss": 0.0}


def test_launch_refuses_bad_nproc_and_a_busy_port():
    import socket

    with pytest.raises(ValueError, match="nproc must be an integer >= 1, got 0"):
        D.launch(print, nproc=0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ValueError, match=f"port {port} on 127.0.0.1 is already in use"):
            D.launch(print, nproc=2, port=port)


def test_more_processes_than_rows_in_a_batch_is_refused(tmp_path):
    """3 gloo ranks, a language model with 2 streams: one line on every rank, nothing hangs."""
    with pytest.raises(Exception, match="3 processes but a batch of only 2 rows"):
        on_ranks(tmp_path, "few_streams", world=3)


def few_streams():
    tok = build_tokenizer(TEXT, "char")
    ids = torch.tensor(tok.encode(TEXT))
    model = LanguageModel(tok, embed_size=4, hidden_size=4).double()
    task = LanguageTask(model, ids[:300], ids[300:], batch_size=2, seq_len=5)
    Trainer(model, task, TrainConfig(epochs=1)).fit()


SCENARIOS["few_streams"] = few_streams


@pytest.mark.slow
def test_launcher_runs_workers_and_a_killed_worker_is_one_line(tmp_path):
    """elastic_launch: results per rank; a SIGKILLed rank -> WorkerFailedError naming it (not
    its peer's follow-on error), within the timeout; the run folder loads."""
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # import torch._dynamo before forking
    out = D.launch(_launched_forecaster, (str(tmp_path / "ok"), 1), nproc=2, start_method="fork")
    assert out == {0: 1, 1: 1}
    run = tmp_path / "killed"
    started = time.monotonic()
    with pytest.raises(D.WorkerFailedError) as e:
        D.launch(_launched_forecaster, (str(run), 50, 2), nproc=2, timeout=20, start_method="fork")
    assert time.monotonic() - started < 20
    msg = str(e.value)
    # the killed rank, every time: rank 0's follow-on error (gloo's closed connection) waits
    # until the launcher has seen rank 1's death (distributed.wait_for_dead_peers)
    assert "\n" not in msg and msg.startswith("worker rank 1 failed (exit code -9): ")
    assert "SIGKILL" in msg and (e.value.rank, e.value.exitcode) == (1, -9)
    tensors, state = load_checkpoint(run)
    assert state["epoch"] >= 1 and state["world_size"] == 2


def _launched_forecaster(run_dir: str, epochs: int, kill_at: int | None = None):
    """Runs in a launched worker: the forecaster; rank 1 kills itself at epoch ``kill_at``."""
    if kill_at is not None and dist.get_rank() == 1:
        import signal

        real = ForecastTask.train_batches

        def dying(self, epoch, generator):
            if epoch == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(self, epoch, generator)

        ForecastTask.train_batches = dying
    state, history = forecaster(run_dir=run_dir, epochs=epochs)
    return len(history)
