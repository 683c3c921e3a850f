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
from lstmlens.tasks.language import LanguageModel, save_language_model
from lstmlens.tasks.longrange import AddingProblem

CORPUS = "the bear ate; the bear slept.\n" * 4


def _table(page: str) -> dict[str, list[float]]:
    table = page.split('id="reach-table"')[1].split("</table>")[0]
    rows = re.findall(r"<tr><td>([^<]*)</td><td>\d+</td><td>\d+</td>(.*?)</tr>", table)
    return {
        name: [float(v) for v in re.findall(r"<td>([^<]+)</td>", cells)] for name, cells in rows
    }


def test_the_page_shows_each_models_reach_relative_to_lag_zero_and_its_saturation():
    torch.manual_seed(0)
    models = {"rnn": RNN(2, 8).eval(), "lstm": LSTM(2, 8).eval()}
    x = torch.randn(40, 2)  # (T, I)
    page = compare_page(models, x)
    html5lib.HTMLParser(strict=True).parse(page)
    for outside in ("http://", "https://", "<link", "@import", "url(", " src="):
        assert outside not in page.lower()
    assert page.count("<polyline") == 2
    table = _table(page)
    for name, model in models.items():
        reach = memory_reach(model, x, 39)
        expected = [reach[k] / reach[0] for k in (1, 10, 30)]
        np.testing.assert_allclose(table[name], expected, rtol=5e-3)
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
    assert re.findall(r'<polyline [^>]*data-model="([^"]+)"', page) == names
    table = _table(page)
    models, _ = load_run(tmp_path / "race")
    xs = AddingProblem(12).sample(50, torch.Generator().manual_seed(0)).inputs  # the page's
    for name in names:
        rel, n = relative_reach(models[name.split("/")[1]], [x[None] for x in xs])
        assert n == 50 and f"<td>{name}</td><td>11</td><td>50</td>" in page
        np.testing.assert_allclose(table[name], [rel[k] for k in (1, 10)], rtol=5e-3)
    runs = [str(tmp_path / c) for c in ("rnn", "gru", "lstm")]
    assert main(["inspect", *runs, "--compare", "--html", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert re.findall(r'<polyline [^>]*data-model="([^"]+)"', page) == [
        "rnn/rnn",
        "gru/gru",
        "lstm/lstm",
    ]
    assert set(_table(page)) == {"rnn/rnn", "gru/gru", "lstm/lstm"}
