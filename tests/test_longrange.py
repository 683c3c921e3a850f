"""Long-range tasks: generator structure and baselines, the cell race, and the CLI."""

import json
import math

import numpy as np
import pytest
import torch

from lstmlens import load_run
from lstmlens.cli.main import main
from lstmlens.tasks.longrange import (
    AddingProblem,
    CopyMemory,
    LongRangeBatch,
    TemporalOrder,
    make_task,
)
from lstmlens.tasks.longrange_compare import (
    CELLS,
    CompareConfig,
    LongRangeModel,
    build_recurrent,
    compare_cells,
    format_table,
    train_cell,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- adding


def test_adding_structure_and_target():
    T, B = 37, 500
    batch = AddingProblem(T).sample(B, gen())
    x = batch.inputs.numpy().astype(np.float64)
    assert x.shape == (B, T, 2) and batch.targets.shape == (B,) and batch.lengths is None
    values, marks = x[..., 0], x[..., 1]
    assert values.min() >= 0.0 and values.max() < 1.0
    assert set(np.unique(marks)) == {0.0, 1.0}
    assert (marks.sum(1) == 2).all()
    half = T // 2
    assert (marks[:, :half].sum(1) == 1).all() and (marks[:, half:].sum(1) == 1).all()
    np.testing.assert_allclose(batch.targets.numpy(), (values * marks).sum(1), rtol=1e-6)
    first = marks[:, :half].argmax(1)
    second = half + marks[:, half:].argmax(1)
    assert first.min() == 0 and first.max() == half - 1  # the whole first half is used
    assert second.min() == half and second.max() == T - 1


def test_adding_baseline_of_answering_one():
    task = AddingProblem(10)
    batch = task.sample(40000, gen(1))
    mse = float(task.loss(torch.ones(40000, 1), batch))
    assert task.baseline_loss == pytest.approx(1 / 6, abs=1e-12)
    assert mse == pytest.approx(1 / 6, abs=0.005)  # sd of the estimate ~0.001
    assert not task.solved(mse, None) and task.solved(0.009, None)


def test_same_seed_same_batch_other_seed_other_batch():
    a, b, c = (AddingProblem(20).sample(8, gen(s)) for s in (3, 3, 4))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.inputs, c.inputs)


# ------------------------------------------------------------------------------- copy


def test_copy_structure():
    T, B = 15, 64
    task = CopyMemory(T)
    batch = task.sample(B, gen())
    L = T + 20
    assert batch.inputs.shape == (B, L, 10) and batch.targets.shape == (B, L)
    assert (batch.inputs.sum(-1) == 1).all()  # one-hot
    tokens = batch.inputs.argmax(-1)
    symbols = tokens[:, :10]
    assert symbols.min() >= 1 and symbols.max() <= 8
    assert set(symbols.unique().tolist()) == set(range(1, 9))
    assert (tokens[:, 10 : 10 + T - 1] == 0).all()  # T - 1 blanks
    assert (tokens[:, T + 9] == 9).all()  # the delimiter
    assert (tokens[:, T + 10 :] == 0).all()  # 10 blanks while answering
    assert (batch.targets[:, : T + 10] == 0).all()
    assert torch.equal(batch.targets[:, T + 10 :], symbols)


def test_copy_memoryless_baseline_and_accuracy():
    T, B = 30, 16
    task = CopyMemory(T)
    batch = task.sample(B, gen())
    L = T + 20
    logits = torch.full((B, L, 9), -1e9)
    logits[:, : T + 10, 0] = 0.0  # certain blank while waiting
    logits[:, T + 10 :, 1:] = 0.0  # uniform over the 8 symbols when recalling
    loss = float(task.loss(logits, batch))
    assert loss == pytest.approx(10 * math.log(8) / (T + 20), rel=1e-5)
    assert task.baseline_loss == pytest.approx(10 * math.log(8) / (T + 20), rel=1e-12)
    perfect = torch.nn.functional.one_hot(batch.targets, 9).float()
    assert task.accuracy(perfect, batch) == 1.0 and task.solved(0.0, 1.0)
    wrong = perfect.clone()
    wrong[:, -10:] = torch.nn.functional.one_hot(batch.targets[:, -10:] % 8 + 1, 9).float()
    assert task.accuracy(wrong, batch) == 0.0 and not task.solved(1.0, 0.98)


# ------------------------------------------------------------------------------ order


@pytest.mark.parametrize(
    ("T", "relevant", "windows"),
    [
        (100, 2, [(10, 20), (50, 60)]),
        (100, 3, [(10, 20), (33, 43), (66, 76)]),
        (200, 2, [(20, 40), (100, 120)]),
    ],
)
def test_order_structure(T, relevant, windows):
    B = 400
    task = TemporalOrder(T, relevant=relevant)
    batch = task.sample(B, gen())
    assert task.output_size == 2**relevant
    assert batch.lengths.min() >= T and batch.lengths.max() <= T + T // 10
    assert batch.inputs.shape == (B, int(batch.lengths.max()), 8)
    for b in range(B):
        n = int(batch.lengths[b])
        x = batch.inputs[b]
        assert (x[:n].sum(-1) == 1).all() and (x[n:] == 0).all()
        tok = x[:n].argmax(-1).tolist()
        assert tok[0] == 6 and tok[-1] == 7  # E first, the trigger B last
        assert 6 not in tok[1:] and 7 not in tok[:-1]
        where = [i + 1 for i, t in enumerate(tok) if t in (4, 5)]  # 1-based positions of X, Y
        assert len(where) == relevant
        assert all(lo <= p <= hi for p, (lo, hi) in zip(where, windows))
        label = 0
        for p in where:
            label = 2 * label + (tok[p - 1] - 4)  # X = 0, Y = 1
        assert int(batch.targets[b]) == label
    assert set(batch.targets.tolist()) == set(range(2**relevant))


def test_order_chance_baseline():
    task = TemporalOrder(40, relevant=3)
    batch = task.sample(32, gen())
    assert float(task.loss(torch.zeros(32, 8), batch)) == pytest.approx(math.log(8), rel=1e-6)
    assert task.baseline_loss == pytest.approx(math.log(8))


@pytest.mark.parametrize(("name", "too_short"), [("adding", 1), ("copy", 0), ("order", 19)])
def test_length_too_small_is_refused(name, too_short):
    with pytest.raises(ValueError, match="length must be at least"):
        make_task(name, too_short)
    make_task(name, too_short + 1)  # the smallest length works


def test_bad_task_arguments():
    with pytest.raises(ValueError, match="unknown task"):
        make_task("parity", 10)
    with pytest.raises(ValueError, match="relevant"):
        TemporalOrder(100, relevant=4)
    with pytest.raises(ValueError, match="batch_size"):
        AddingProblem(10).sample(0)


# ------------------------------------------------------------------------------ model


def test_packed_order_batch_equals_each_sequence_alone():
    task = TemporalOrder(20)
    batch = task.sample(6, gen())
    assert batch.lengths.unique().numel() > 1  # unequal lengths really are packed
    model = LongRangeModel(task, "lstm", 8).eval()
    together = model(batch.inputs, batch.lengths)
    for b in range(6):
        n = int(batch.lengths[b])
        alone = model(batch.inputs[b : b + 1, :n])
        torch.testing.assert_close(together[b : b + 1], alone, rtol=1e-5, atol=1e-6)


def test_cells_and_forget_bias():
    assert {"rnn", "gru", "lstm", "cifg", "nfg", "peephole"} <= set(CELLS)
    with pytest.raises(ValueError, match="unknown cell"):
        build_recurrent("transformer", 2, 4)
    H = 5
    torch.manual_seed(0)
    plain = build_recurrent("lstm", 2, H, forget_bias=0.0)
    torch.manual_seed(0)
    biased = build_recurrent("lstm", 2, H, forget_bias=1.0)
    diff = biased.bias_ih_l0 - plain.bias_ih_l0  # rows i, f, g, o
    assert torch.allclose(diff[H : 2 * H], torch.ones(H)) and diff[:H].abs().max() == 0
    torch.manual_seed(0)
    plain = build_recurrent("cifg", 2, H, forget_bias=0.0)
    torch.manual_seed(0)
    biased = build_recurrent("cifg", 2, H, forget_bias=1.0)
    diff = biased.bias_ih_l0 - plain.bias_ih_l0  # rows i, g, o; f = 1 - i
    assert torch.allclose(diff[:H], -torch.ones(H)) and diff[H:].abs().max() == 0
    build_recurrent("nfg", 2, H, forget_bias=1.0)  # no forget gate: nothing to bias


def test_chrono_initialisation_spreads_the_forget_times_over_the_task_length():
    H, T = 2000, 100
    torch.manual_seed(0)
    layer = build_recurrent("lstm", 2, H, forget_init="chrono", length=T)
    b_ih, b_hh = layer.bias_ih_l0.detach(), layer.bias_hh_l0.detach()  # rows i, f, g, o
    b_f, b_i = b_ih[H : 2 * H], b_ih[:H]
    torch.testing.assert_close(b_i, -b_f)
    assert b_hh[: 2 * H].abs().max() == 0 and b_hh[2 * H :].abs().max() > 0  # g, o: torch's
    times = b_f.exp()  # log U(1, T - 1) -> U(1, T - 1)
    assert times.min() >= 1 and times.max() <= T - 1
    assert abs(float(times.mean()) - T / 2) < 2.0  # mean of U(1, 99) is 50, sd of mean ~0.6
    cifg = build_recurrent("cifg", 2, 50, forget_init="chrono", length=T)
    f = 1 - torch.sigmoid(cifg.bias_ih_l0[:50].detach())  # f = 1 - i = σ(-b_i) = σ(b_f)
    assert f.min() >= torch.sigmoid(torch.tensor(0.0)) - 1e-6  # b_f = log U(1, 99) >= 0
    torch.manual_seed(0)
    nfg, plain = build_recurrent("nfg", 2, 4, forget_init="chrono"), None
    torch.manual_seed(0)
    plain = build_recurrent("nfg", 2, 4)
    torch.testing.assert_close(nfg.bias_ih_l0, plain.bias_ih_l0)  # no forget gate: untouched
    with pytest.raises(ValueError, match="forget_init"):
        build_recurrent("lstm", 2, 4, forget_init="chrnoo")
    with pytest.raises(ValueError, match="forget_init"):
        CompareConfig(forget_init="zero")


# ---------------------------------------------------------------------------- the race


def test_train_cell_solves_short_adding_and_stops():
    task = AddingProblem(2)  # both values are marked: a linear map suffices
    cfg = CompareConfig(
        steps=400, batch_size=32, hidden_size=8, lr=3e-2, eval_every=20, test_size=200
    )
    records = []
    result = train_cell(task, "lstm", cfg, progress=lambda cell, r: records.append(r))
    assert result.solved and result.test_loss < 0.01
    assert result.steps_to_solve == result.steps < 400  # stopped at its first solved score
    assert result.steps % 20 == 0 and records[-1]["step"] == result.steps
    assert [r["step"] for r in records] == list(range(20, result.steps + 1, 20))
    assert result.accuracy is None and not result.diverged


def test_compare_same_data_for_every_cell_and_table():
    task = CopyMemory(3)
    cfg = CompareConfig(steps=6, batch_size=4, hidden_size=8, eval_every=3, test_size=10)
    results = compare_cells(task, ["rnn", "LSTM", "cifg"], cfg)
    assert [r.cell for r in results] == ["rnn", "lstm", "cifg"]
    for r in results:
        assert r.steps == 6 and len(r.history) == 2 and 0.0 <= r.accuracy <= 1.0
        assert math.isfinite(r.test_loss) and not r.solved and r.steps_to_solve is None
    again = compare_cells(task, ["lstm"], cfg)[0]
    assert again.test_loss == results[1].test_loss  # seeded: the same run twice
    table = format_table(task, results)
    assert "copy, length 3" in table and table.count("\n| ") == 4  # header + 3 rows
    with pytest.raises(ValueError, match="expected cells"):
        compare_cells(task, ["lstm", "bogus"], cfg)


def test_time_limit_stops_cells_and_says_so():
    task = AddingProblem(5)
    cfg = CompareConfig(
        steps=1000, batch_size=2, hidden_size=4, eval_every=500, test_size=4, total_minutes=1e-6
    )
    results = compare_cells(task, ["rnn", "gru"], cfg)
    for r in results:
        assert r.steps == 1 and r.out_of_time and not r.solved and len(r.history) == 1
    assert "no (time)" in format_table(task, results)


def test_batch_is_a_frozen_record():
    batch = LongRangeBatch(torch.zeros(1, 2, 2), torch.zeros(1))
    with pytest.raises(AttributeError):
        batch.inputs = torch.ones(1)  # type: ignore[misc]


# -------------------------------------------------------------------------------- CLI


def test_cli_prints_the_table(capsys):
    threads = torch.get_num_threads()
    status = main(
        [
            "longrange",
            "copy",
            "--length",
            "3",
            "--cells",
            "rnn,lstm",
            "--steps",
            "4",
            "--hidden",
            "8",
            "--batch-size",
            "4",
            "--eval-every",
            "2",
            "--test-size",
            "8",
            "--quiet",
        ]
    )
    out, err = capsys.readouterr()
    assert status == 0 and err == ""
    assert "| rnn " in out and "| lstm " in out and "baseline loss" in out
    assert torch.get_num_threads() == threads  # --threads 1 (the default) is undone afterwards


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["order", "--length", "5"], "length must be at least 20"),
        (["adding", "--length", "1"], "length must be at least 2"),
        (["adding", "--length", "10", "--cells", "rnn,bogus"], "unknown cell"),
        (["adding", "--length", "10", "--cells", ""], "cells"),
        (["adding", "--length", "10", "--threads", "-1"], "--threads"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(argv, message, capsys):
    status = main(["longrange", *argv, "--steps", "1", "--quiet"])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err.startswith("lstmlens: error: ") and err.count("\n") == 1 and message in err


def test_cli_forget_init_is_saved_with_the_run(tmp_path, capsys):
    out = tmp_path / "race"
    argv = ["longrange", "adding", "--length", "12", "--cells", "lstm", "--steps", "1"]
    argv += ["--hidden", "4", "--test-size", "4", "--quiet", "--forget-init", "chrono"]
    assert main([*argv, "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["compare"]["forget_init"] == "chrono"
    models, _ = load_run(out)
    assert isinstance(models["lstm"], LongRangeModel)
    capsys.readouterr()
    assert main([*argv[:-1], "warm"]) == 2
    assert "--forget-init" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "length", "count"), [("adding", 20, 2), ("copy", 5, 10), ("order", 40, 2)]
)
def test_relevant_steps_mark_what_the_answer_needs(name, length, count):
    task = make_task(name, length)
    batch = task.sample(6, torch.Generator().manual_seed(3))
    needed = task.relevant_steps(batch)  # (B, L) bool
    assert needed.shape == batch.inputs.shape[:2] and needed.dtype == torch.bool
    assert needed.sum(1).tolist() == [count] * 6
    if name == "adding":  # the marked values are exactly what the target sums
        values = (batch.inputs[..., 0] * needed).sum(1)
        torch.testing.assert_close(values, batch.targets)
    if name == "order":  # the X / Y symbols, read in order, are the class's bits
        symbols = batch.inputs.argmax(-1)[needed].view(6, count) - task.X  # 0: X, 1: Y
        torch.testing.assert_close(symbols[:, 0] * 2 + symbols[:, 1], batch.targets)
