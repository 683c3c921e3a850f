"""Saved models and checkpoints: round trips, tied weights, atomic writes, refusing bad files,
crash-safe checkpoint pairs, stray temporary files, disk-full errors naming the file."""

import errno
import json
import os
import random

import numpy as np
import pytest
import torch
from safetensors import safe_open
from torch import nn

from lstmlens.train import checkpoint as checkpoint_module
from lstmlens.train import load_model, save_json_atomic, save_model
from lstmlens.train.checkpoint import (
    clean_stray_files,
    load_checkpoint,
    mark_started,
    read_checkpoint,
    save_checkpoint,
    write_atomic,
)
from lstmlens.train.state import (
    load_optimizer_state,
    optimizer_state,
    restore_rng_state,
    rng_state,
)


class Forecaster(nn.Module):
    """A tiny LSTM + linear head, rebuilt from a config dict."""

    def __init__(self, hidden, layers):
        super().__init__()
        self.lstm = nn.LSTM(1, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.lstm(x)  # (B, T, H)
        return self.head(out[:, -1])  # (B, 1)


def build(config):
    return Forecaster(config["hidden"], config["layers"])


class Tied(nn.Module):
    """A language-model shape whose decoder shares the embedding matrix."""

    def __init__(self, vocab=11, dim=5):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.decode = nn.Linear(dim, vocab)
        self.decode.weight = self.embed.weight  # tied: one tensor, two names
        self.register_buffer("firsts", self.embed.weight.detach()[:, 0])  # a strided view

    def forward(self, tokens):
        return self.decode(self.embed(tokens))


def files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_save_then_load_predicts_the_same(tmp_path):
    model, config = build({"hidden": 6, "layers": 2}), {"hidden": 6, "layers": 2, "note": "ß"}
    x = torch.randn(3, 7, 1)
    model.eval()
    expected = model(x)
    save_model(tmp_path / "run", model, config)
    loaded, loaded_config = load_model(tmp_path / "run", build)
    assert loaded_config == config and not loaded.training
    assert torch.equal(loaded(x), expected)
    assert files(tmp_path / "run") == ["config.json", "model.safetensors"]


def test_tied_weights_are_stored_once_and_stay_equal(tmp_path):
    model = Tied()
    save_model(tmp_path, model, {})
    with safe_open(str(tmp_path / "model.safetensors"), framework="pt") as f:
        stored = set(f.keys())
    assert len(stored & {"embed.weight", "decode.weight"}) == 1 and "firsts" in stored
    loaded, _ = load_model(tmp_path, lambda config: Tied())
    assert loaded.decode.weight is loaded.embed.weight
    tokens = torch.tensor([[1, 4, 9]])
    assert torch.equal(loaded(tokens), model.eval()(tokens))
    assert torch.equal(loaded.firsts, model.embed.weight[:, 0])


@pytest.mark.parametrize("broken", ["missing", "garbage", "pickle", "mismatch"])
def test_bad_weights_raise_a_value_error_naming_the_file(tmp_path, broken):
    save_model(tmp_path, build({"hidden": 4, "layers": 1}), {"hidden": 4, "layers": 1})
    weights = tmp_path / "model.safetensors"
    if broken == "missing":
        weights.unlink()
    elif broken == "garbage":
        weights.write_bytes(b"\x00\x01 not safetensors at all")
    elif broken == "pickle":  # loading must never unpickle
        torch.save(build({"hidden": 4, "layers": 1}).state_dict(), weights)
    else:
        (tmp_path / "config.json").write_text(json.dumps({"hidden": 5, "layers": 1}))
    with pytest.raises(ValueError, match="model.safetensors"):
        load_model(tmp_path, build)


@pytest.mark.parametrize("text", [None, "{not json", "[1, 2]"])
def test_bad_config_raises_a_value_error_naming_the_file(tmp_path, text):
    save_model(tmp_path, build({"hidden": 4, "layers": 1}), {"hidden": 4, "layers": 1})
    config = tmp_path / "config.json"
    if text is None:
        config.unlink()
    else:
        config.write_text(text)
    with pytest.raises(ValueError, match="config.json"):
        load_model(tmp_path, build)


def test_unserialisable_config_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(TypeError, match="save_model: config must be JSON-serialisable"):
        save_model(tmp_path, nn.Linear(2, 1), {"device": torch.device("cpu")})
    assert files(tmp_path) == []


def test_failed_writes_leave_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    save_json_atomic(target, {"mae": 1.5, "inf": float("inf")})
    assert json.loads(target.read_text()) == {"mae": 1.5, "inf": float("inf")}

    with pytest.raises(TypeError, match="metrics.json"):
        save_json_atomic(target, {"bad": object()})

    def half_then_fail(tmp):
        with open(tmp, "w") as f:
            f.write('{"half": ')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, half_then_fail)
    assert json.loads(target.read_text())["mae"] == 1.5
    assert files(tmp_path) == ["metrics.json"]


def weights_files(folder):
    return sorted(p.name for p in folder.glob("checkpoint-*.safetensors"))


def test_each_save_writes_a_new_pair_and_removes_the_old_one(tmp_path):
    first = save_checkpoint(tmp_path, {"w": torch.ones(2)}, {"epoch": 1})
    second = save_checkpoint(tmp_path, {"w": torch.zeros(2)}, {"epoch": 2})
    assert first.name != second.name and weights_files(tmp_path) == [second.name]
    assert files(tmp_path) == sorted(["checkpoint.json", second.name])  # nothing else left
    state = json.loads((tmp_path / "checkpoint.json").read_text())
    assert state["tensors"] == second.name and len(state["sha256"]) == 64
    tensors, state = load_checkpoint(tmp_path)
    assert state["epoch"] == 2 and torch.equal(tensors["w"], torch.zeros(2))


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no ``except Exception`` catches it."""

    @staticmethod
    def raise_(*args, **kwargs):
        raise Killed


@pytest.mark.parametrize(
    "stop_at", ["_fill", "_link_atomic", "save_json_atomic", "_retire_old_pairs"]
)
def test_a_kill_between_the_steps_of_a_save_leaves_a_loadable_pair(tmp_path, monkeypatch, stop_at):
    """Stop the save before each of its steps, as a kill would, and load what is on disk."""
    save_checkpoint(tmp_path, {"w": torch.ones(2)}, {"epoch": 1})

    monkeypatch.setattr(checkpoint_module, stop_at, Killed.raise_)
    with pytest.raises(Killed):
        save_checkpoint(tmp_path, {"w": torch.zeros(2)}, {"epoch": 2})
    new_pair_in_place = stop_at == "_retire_old_pairs"
    tensors, state = load_checkpoint(tmp_path)
    assert state["epoch"] == (2 if new_pair_in_place else 1)
    assert torch.equal(tensors["w"], torch.zeros(2) if new_pair_in_place else torch.ones(2))


def test_the_loader_falls_back_to_the_previous_pair_when_the_newest_is_damaged(tmp_path):
    save_checkpoint(tmp_path, {"w": torch.ones(2)}, {"epoch": 1})
    old_json = (tmp_path / "checkpoint.json").read_text()
    old_weights = weights_files(tmp_path)[0]
    (tmp_path / "keep").mkdir()
    (tmp_path / old_weights).rename(tmp_path / "keep" / old_weights)
    save_checkpoint(tmp_path, {"w": torch.zeros(2)}, {"epoch": 2})
    # the state right after step 3 of a save: both pairs on disk
    (tmp_path / "keep" / old_weights).rename(tmp_path / old_weights)
    (tmp_path / "checkpoint.prev.json").write_text(old_json)
    assert load_checkpoint(tmp_path)[1]["epoch"] == 2

    newest = json.loads((tmp_path / "checkpoint.json").read_text())["tensors"]
    (tmp_path / newest).write_bytes((tmp_path / newest).read_bytes()[:-3] + b"xyz")  # damaged
    found = read_checkpoint(tmp_path)
    assert found.state["epoch"] == 1 and found.source.name == "checkpoint.prev.json"
    assert torch.equal(found.tensors["w"], torch.ones(2))
    (tmp_path / "checkpoint.json").unlink()  # a kill between the link and the new JSON
    assert load_checkpoint(tmp_path)[1]["epoch"] == 1


def test_a_pair_that_does_not_match_is_refused_naming_the_file(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    save_checkpoint(tmp_path / "a", {"w": torch.ones(2)}, {"epoch": 1})
    save_checkpoint(tmp_path / "b", {"w": torch.zeros(2)}, {"epoch": 2})
    tensors, state = load_checkpoint(tmp_path / "a")
    assert state["epoch"] == 1 and torch.equal(tensors["w"], torch.ones(2))

    # b's weights under the name a's JSON records: the SHA-256 tells them apart
    [a_weights], [b_weights] = weights_files(tmp_path / "a"), weights_files(tmp_path / "b")
    (tmp_path / "b" / b_weights).replace(tmp_path / "a" / a_weights)
    with pytest.raises(ValueError, match=f"{a_weights}: does not match the SHA-256 recorded in"):
        load_checkpoint(tmp_path / "a")
    (tmp_path / "a" / a_weights).unlink()
    with pytest.raises(ValueError, match=f"{a_weights}: file not found"):
        load_checkpoint(tmp_path / "a")

    doc = json.loads((tmp_path / "b" / "checkpoint.json").read_text())
    for name in ["../a/x.safetensors", "/etc/passwd", "model.safetensors"]:  # nothing let in
        (tmp_path / "b" / "checkpoint.json").write_text(json.dumps({**doc, "tensors": name}))
        with pytest.raises(ValueError, match="not a checkpoint file of this folder"):
            load_checkpoint(tmp_path / "b")
    (tmp_path / "b" / "checkpoint.json").write_text(json.dumps({**doc, "version": 1}))
    with pytest.raises(ValueError, match="checkpoint version 1, this lstmlens reads version 2"):
        load_checkpoint(tmp_path / "b")
    (tmp_path / "b" / "checkpoint.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="checkpoint.json: not an lstmlens checkpoint"):
        load_checkpoint(tmp_path / "b")


def test_a_started_run_reads_as_a_checkpoint_without_tensors(tmp_path):
    mark_started(tmp_path)
    tensors, state = load_checkpoint(tmp_path)
    assert tensors == {} and state["epoch"] == 0 and state["tensors"] is None


def test_stray_temporary_files_and_orphan_weights_are_cleaned(tmp_path):
    save_checkpoint(tmp_path, {"w": torch.ones(2)}, {"epoch": 1})
    [kept] = weights_files(tmp_path)
    strays = [
        ".checkpoint.json.k2j4_x1.tmp",  # ours (write_atomic)
        ".tmpAb3dE9",  # safetensors' own
        "checkpoint-" + "0" * 32 + ".safetensors",  # weights whose JSON never landed
    ]
    for name in strays:
        (tmp_path / name).write_bytes(b"half")
    (tmp_path / "notes.tmp").write_text("mine")  # not ours: kept
    (tmp_path / ".draft.txt.tmp").write_text("another program's")  # kept
    assert sorted(clean_stray_files(tmp_path)) == sorted(strays)
    assert files(tmp_path) == sorted([".draft.txt.tmp", "checkpoint.json", kept, "notes.tmp"])
    assert load_checkpoint(tmp_path)[1]["epoch"] == 1


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_a_full_disk_is_one_os_error_naming_the_file_and_the_old_pair_stays(
    tmp_path, monkeypatch, code
):
    save_checkpoint(tmp_path, {"w": torch.ones(2)}, {"epoch": 1})

    def full(tmp, data):
        with open(tmp, "wb") as f:
            f.write(data[: len(data) // 2])
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(checkpoint_module, "_fill", full)
    with pytest.raises(OSError) as caught:
        save_checkpoint(tmp_path, {"w": torch.zeros(2)}, {"epoch": 2})
    assert caught.value.errno == code and caught.value.strerror == os.strerror(code)
    assert caught.value.filename.startswith(str(tmp_path / "checkpoint-"))
    assert load_checkpoint(tmp_path)[1]["epoch"] == 1
    assert len(files(tmp_path)) == 2  # the old pair, no temporary file
    with pytest.raises(OSError, match="model.safetensors"):
        save_model(tmp_path / "model", nn.Linear(2, 1), {})


@pytest.mark.parametrize(
    "make",
    [
        lambda p: torch.optim.Adam(p, lr=0.01),
        lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
        lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
        lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.9),
    ],
    ids=["adam", "adamw", "sgd", "rmsprop"],
)
def test_optimizer_state_survives_the_split_into_tensors_and_json(tmp_path, make):
    model = nn.Linear(3, 2)
    optimizer = make(model.parameters())
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(4, 3)).square().sum().backward()
        optimizer.step()
    tensors, doc = optimizer_state(optimizer)
    save_checkpoint(tmp_path, tensors, {"optimizer": doc})
    tensors, state = load_checkpoint(tmp_path)

    fresh = make(nn.Linear(3, 2).parameters())
    load_optimizer_state(fresh, tensors, state["optimizer"])
    a, b = optimizer.state_dict(), fresh.state_dict()
    assert a["param_groups"] == b["param_groups"]  # including tuples such as Adam's betas
    for pid in a["state"]:
        assert a["state"][pid].keys() == b["state"][pid].keys()
        for key, value in a["state"][pid].items():
            assert torch.equal(value, b["state"][pid][key])


def test_rng_states_round_trip(tmp_path):
    generator = torch.Generator().manual_seed(3)
    np.random.normal()  # noqa: NPY002 (a cached Gaussian must survive too)
    tensors, doc = rng_state(generator)
    save_checkpoint(tmp_path, tensors, {"rng": doc})

    def draws():
        return (
            torch.rand(3).tolist(),
            torch.rand(3, generator=generator).tolist(),
            np.random.normal(size=3).tolist(),  # noqa: NPY002
            [random.random() for _ in range(3)],
        )

    first = draws()
    tensors, state = load_checkpoint(tmp_path)
    restore_rng_state(generator, tensors, state["rng"])
    assert draws() == first


def test_a_save_after_one_killed_past_its_link_leaves_no_temporary(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, {"w": torch.ones(2)}, {"epoch": 1})
    monkeypatch.setattr(checkpoint_module, "save_json_atomic", Killed.raise_)
    with pytest.raises(Killed):  # killed after checkpoint.prev.json became a link to the JSON
        save_checkpoint(tmp_path, {"w": torch.zeros(2)}, {"epoch": 2})
    monkeypatch.undo()
    save_checkpoint(tmp_path, {"w": torch.zeros(2)}, {"epoch": 2})  # links onto that same file
    assert [n for n in files(tmp_path) if n.endswith(".tmp")] == []
    assert load_checkpoint(tmp_path)[1]["epoch"] == 2
