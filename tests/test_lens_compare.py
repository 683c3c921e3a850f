"""The comparison page: every model's memory reach relative to lag 0 and its saturation
scatter; ``lstmlens inspect RUN_A RUN_B --compare`` writes it for saved runs."""

from __future__ import annotations

import re

import html5lib
import numpy as np
import pytest
import torch

from lstmlens import LSTM, RNN
from lstmlens.cli.main import main
from lstmlens.data.text import build_tokenizer
from lstmlens.lens import memory_reach
from lstmlens.lens.compare import compare_page, reach_figure
from lstmlens.tasks.language import LanguageModel, save_language_model

CORPUS = "the bear ate; the bear slept.\n" * 4


def _table(page: str) -> dict[str, list[float]]:
    table = page.split('id="reach-table"')[1].split("</table>")[0]
    rows = re.findall(r"<tr><td>([^<]*)</td><td>\d+</td>(.*?)</tr>", table)
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
