"""The comparison page: every model's memory reach relative to lag 0 and its saturation
scatter; ``lstmlens inspect RUN_A RUN_B --compare`` writes it for saved runs."""

from __future__ import annotations

import copy
import re

import html5lib
import numpy as np
import pytest
import torch

from lstmlens import LSTM, RNN, load_run
from lstmlens.cli.main import main
from lstmlens.data.text import build_tokenizer
from lstmlens.lens import memory_reach
from lstmlens.lens.compare import compare_page, reach_figure, relative_reach
from lstmlens.lens.compare_measures import marked_reach, window_median
from lstmlens.lens.memory_path import memory_path
from lstmlens.tasks.language import LanguageModel, save_language_model
from lstmlens.tasks.longrange import AddingProblem

CORPUS = "the bear ate; the bear slept.\n" * 4


def _table(page: str, table_id: str = "reach-table", columns: int = 2) -> dict[str, list[float]]:
    """A table of the page: model -> its values at the lags (blank cells as NaN)."""
    table = page.split(f'id="{table_id}"')[1].split("</table>")[0]
    lead = r"<td>[^<]*</td>" * columns
    rows = re.findall(rf"<tr><td>([^<]*)</td>{lead}(.*?)</tr>", table)
    return {
        name: [float(v or "nan") for v in re.findall(r"<td>([^<]*)</td>", cells)]
        for name, cells in rows
    }


def test_the_page_shows_each_models_reach_relative_to_lag_zero_and_its_saturation():
    torch.manual_seed(0)
    models = {"rnn": RNN(2, 8).eval(), "lstm": LSTM(2, 8).eval()}
    x = torch.randn(40, 2)  # (T, I)
    page = compare_page(models, x)
    html5lib.HTMLParser(strict=True).parse(page)
    for outside in ("http://", "https://", "<link", "@import", "url(", " src="):
        assert outside not in page.lower()
    assert page.count("<polyline") == 4  # reach and memory path, one line per model
    assert "marked-table" not in page  # no marks given
    table, paths = _table(page), _table(page, "path-table", 1)
    assert [m for m in re.findall(r"<tr><td>([^<]*)</td><td>([ch])</td>", page)] == [
        ("rnn", "h"),
        ("lstm", "c"),
    ]
    for name, model in models.items():
        wide = copy.deepcopy(model).double()
        reach = memory_reach(wide, x.double(), 39)
        np.testing.assert_allclose(table[name], [reach[k] / reach[0] for k in (1, 10, 30)], 5e-3)
        path = memory_path(wide, x.double(), 39)
        np.testing.assert_allclose(paths[name], [path[k] / path[0] for k in (1, 10, 30)], 5e-3)
    lstm_panel = page.split('data-name="lstm"')[1]
    assert [g for g in ("input", "forget", "output") if f'data-gate="{g}"' in lstm_panel] == [
        "input",
        "forget",
        "output",
    ]
    assert lstm_panel.count("<circle ") == 3 * 8
    assert "nothing to saturate" in page.split('data-name="rnn"')[1].split('data-name="lstm"')[0]


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="at least one model"):
        compare_page({}, torch.randn(3, 2))
    with pytest.raises(ValueError, match=r"no input for \['b'\]"):
        compare_page({"a": RNN(2, 3), "b": RNN(2, 3)}, {"a": torch.randn(3, 2)})
    with pytest.raises(ValueError, match="at least one curve"):
        reach_figure({})


def test_inspect_compare_writes_one_page_for_several_runs(tmp_path, capsys):
    runs = []
    for name, hidden in (("small", 4), ("large", 8)):
        torch.manual_seed(0)
        model = LanguageModel(build_tokenizer(CORPUS, "char"), embed_size=6, hidden_size=hidden)
        save_language_model(tmp_path / name, model)
        runs.append(str(tmp_path / name))
    out = tmp_path / "compare.html"
    assert main(["inspect", *runs, "--compare", "--input", CORPUS, "--html", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert set(_table(page)) == {"small", "large"}
    assert str(out) in capsys.readouterr().out
    assert main(["inspect", *runs, "--html", str(out)]) == 2
    assert "--compare" in capsys.readouterr().err
    assert main(["inspect", *runs, "--compare"]) == 2
    assert "--html" in capsys.readouterr().err


def test_several_sequences_give_the_median_of_the_relative_reach():
    torch.manual_seed(0)
    model = LSTM(2, 5).eval()
    xs = [torch.randn(12, 2) for _ in range(3)]
    rel, n = relative_reach(model, xs)
    wide = copy.deepcopy(model).double()
    each = [(r := memory_reach(wide, x.double(), 11)) / r[0] for x in xs]
    assert n == 3
    np.testing.assert_allclose(rel, np.median(np.stack(each), axis=0), rtol=1e-12)
    shorter, _ = relative_reach(model, [*xs, torch.randn(7, 2)])  # aligned by lag, cut
    assert shorter.shape == (7,)
    with pytest.raises(ValueError, match="at least one sequence"):
        relative_reach(model, [])


def _race(folder, cells):
    argv = [
        "longrange",
        "adding",
        "--length",
        "12",
        "--cells",
        cells,
        "--steps",
        "2",
        "--hidden",
        "6",
    ]
    argv += ["--eval-every", "2", "--test-size", "4", "--quiet", "--out", str(folder)]
    assert main(argv) == 0


def test_inspect_compare_over_longrange_runs_draws_every_cell(tmp_path, capsys):
    """End to end: runs saved by ``lstmlens longrange --out``, one page with each reach."""
    _race(tmp_path / "race", "rnn,gru,lstm")  # one folder holding three cells
    for cell in ("rnn", "gru", "lstm"):  # and one folder per cell
        _race(tmp_path / cell, cell)
    out = tmp_path / "race.html"
    assert main(["inspect", str(tmp_path / "race"), "--compare", "--html", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    html5lib.HTMLParser(strict=True).parse(page)
    names = ["race/rnn", "race/gru", "race/lstm"]
    assert re.findall(r'<polyline [^>]*data-model="([^"]+)"', page) == names + names
    table, marked_table = _table(page), _table(page, "marked-table", 1)
    models, _ = load_run(tmp_path / "race")
    batch = AddingProblem(12).sample(50, torch.Generator().manual_seed(0))  # the page's
    xs, needed = [x[None] for x in batch.inputs], list(batch.inputs[..., 1] > 0)
    for name in names:
        model = models[name.split("/")[1]]
        rel, n = relative_reach(model, xs)
        assert n == 50 and f"<td>{name}</td><td>11</td><td>50</td>" in page
        np.testing.assert_allclose(table[name], [rel[k] for k in (1, 10)], rtol=5e-3)
        marked = marked_reach(model, xs, needed)
        assert f"<td>{name}</td><td>100</td>" in page  # two marked inputs per sequence
        assert page.count(f'data-marked="{name}"') == 1
        expected = [window_median(marked, k) for k in (1, 10)]
        np.testing.assert_allclose(marked_table[name], expected, rtol=5e-3)
    runs = [str(tmp_path / c) for c in ("rnn", "gru", "lstm")]
    assert main(["inspect", *runs, "--compare", "--html", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert re.findall(r'<polyline [^>]*data-model="([^"]+)"', page) == 2 * [
        "rnn/rnn",
        "gru/gru",
        "lstm/lstm",
    ]
    assert set(_table(page)) == {"rnn/rnn", "gru/gru", "lstm/lstm"}


def _fd_reach(rnn, x: torch.Tensor, s: int, eps: float = 1e-6) -> float:
    """||d y_last / d x_s|| by central differences (x (T, I) float64, y the layer's output)."""
    columns = []
    with torch.no_grad():
        for c in range(x.shape[1]):
            nudge = torch.zeros_like(x)
            nudge[s, c] = eps
            up, down = rnn((x + nudge)[None])[0][0, -1], rnn((x - nudge)[None])[0][0, -1]
            columns.append((up - down) / (2 * eps))
    return float(torch.stack(columns).norm())


def test_marked_reach_equals_finite_differences_at_the_marked_inputs():
    """The dots are reach ratios at the marked steps: check them against central finite
    differences of the task model's recurrent output (float64)."""
    from lstmlens.tasks.longrange_compare import LongRangeModel

    task = AddingProblem(8)
    torch.manual_seed(4)
    model = LongRangeModel(task, "lstm", 3).double().eval()
    batch = task.sample(2, torch.Generator().manual_seed(1))
    xs, needed = [x[None] for x in batch.inputs], list(task.relevant_steps(batch))
    rows = marked_reach(model, xs, needed)
    assert rows.shape == (4, 2)  # two marked steps in each of two sequences
    expected = [
        (7 - s, _fd_reach(model.rnn, x, s) / _fd_reach(model.rnn, x, 7))
        for x, marks in zip(batch.inputs.double(), needed)
        for s in torch.nonzero(marks).flatten().tolist()
    ]
    np.testing.assert_allclose(rows, np.array(expected), rtol=1e-6)
