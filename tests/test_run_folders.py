"""One run-folder format: every train command writes ``task`` and ``format_version``;
``lstmlens.load_run`` returns each task's model; ``lstmlens inspect`` reads every task through
it; old folders still load; unknown tasks and versions are refused with one line."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import lstmlens
from lstmlens.cli.main import main
from lstmlens.tasks.classify import SequenceClassifier
from lstmlens.tasks.forecast import Forecaster
from lstmlens.tasks.language import LanguageModel

CORPUS = "".join(f"line {i}: the quick fox jumps over {i % 7} lazy dogs.\n" for i in range(40))


def _series_csv(path, n: int = 60):
    rows = [f"{2000 + i // 12}-{i % 12 + 1:02d},{50 + 0.5 * i + (i % 12):.2f}" for i in range(n)]
    path.write_text("month,y\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _config(run) -> dict:
    return json.loads((run / "config.json").read_text(encoding="utf-8"))


def _train(argv, capsys) -> str:
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 0, err
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny run of every task, trained through the command line."""
    root = tmp_path_factory.mktemp("runs")
    data = _series_csv(root / "s.csv")
    corpus = root / "c.txt"
    corpus.write_text(CORPUS, encoding="utf-8")
    tiny = ["--epochs", "1", "--quiet", "--hidden", "4"]
    argvs = {
        "forecast": ["forecast", "train", str(data), "--window", "6", "--no-lens", *tiny],
        "text": [
            "text",
            "train",
            str(corpus),
            "--seq-len",
            "10",
            "--embed-dim",
            "4",
            "--batch-size",
            "4",
            "--no-lens",
            *tiny,
        ],  # fmt: skip
        "classify": ["classify", "train", "--batch-size", "64", *tiny],
        "longrange": [
            "longrange",
            "copy",
            "--length",
            "3",
            "--cells",
            "rnn,lstm",
            "--steps",
            "2",
            "--eval-every",
            "1",
            "--test-size",
            "4",
            "--batch-size",
            "4",
            "--hidden",
            "4",
            "--quiet",
        ],  # fmt: skip
    }
    out = {}
    for task, argv in argvs.items():
        run = root / task
        assert main([*argv, "--out", str(run)]) == 0, task
        out[task] = run
    return out


@pytest.mark.parametrize("task", ["forecast", "text", "classify", "longrange"])
def test_every_run_names_its_task_and_loads(runs, task):
    config = _config(runs[task])
    assert config["task"] == task and config["format_version"] == 1
    model, loaded = lstmlens.load_run(runs[task])
    assert loaded == config
    expected = {
        "forecast": Forecaster,
        "text": LanguageModel,
        "classify": SequenceClassifier,
        "longrange": nn.ModuleDict,
    }[task]
    assert isinstance(model, expected)


@pytest.mark.parametrize("task", ["forecast", "text", "classify", "longrange"])
def test_inspect_reads_every_task(runs, task, tmp_path, capsys):
    page = tmp_path / f"{task}.html"
    assert main(["inspect", str(runs[task]), "--html", str(page), "--max-steps", "30"]) == 0
    assert capsys.readouterr().out.strip() == str(page)
    text = page.read_text(encoding="utf-8")
    data = json.loads(text.split('id="lens-data">')[1].split("</script>")[0])
    assert 0 < data["steps"] <= 30 and "0/0/hidden" in data["arrays"]


def test_inspect_longrange_cell_choice(runs, tmp_path, capsys):
    page = tmp_path / "rnn.html"
    assert main(["inspect", str(runs["longrange"]), "--cell", "rnn", "--html", str(page)]) == 0
    assert "(rnn)" in page.read_text(encoding="utf-8")
    assert main(["inspect", str(runs["longrange"]), "--cell", "gru"]) == 2
    assert "no cell 'gru'; it raced rnn, lstm" in capsys.readouterr().err
    assert main(["inspect", str(runs["text"]), "--cell", "rnn"]) == 2
    assert "--cell applies to long-range races" in capsys.readouterr().err


def test_longrange_run_reloads_the_trained_cells(runs):
    models, config = lstmlens.load_run(runs["longrange"])
    assert list(models) == ["rnn", "lstm"] == config["cells"]
    x = torch.zeros(2, 3 + 10, models["lstm"].rnn.input_size)  # any input of the right width
    assert models["lstm"](x).shape[:2] == (2, x.shape[1])
    metrics = json.loads((runs["longrange"] / "metrics.json").read_text(encoding="utf-8"))
    assert [r["cell"] for r in metrics["results"]] == ["rnn", "lstm"]


def _strip(run, tmp_path, name, change):
    """A copy of ``run`` whose config.json is rewritten by ``change`` (an older format)."""
    import shutil

    copy = tmp_path / name
    shutil.copytree(run, copy)
    config = _config(copy)
    change(config)
    (copy / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return copy


def test_folders_written_before_format_version_still_load(runs, tmp_path):
    def drop(config):
        del config["task"], config["format_version"]

    def language(config):
        config["task"] = "language"
        del config["format_version"]

    old_forecast = _strip(runs["forecast"], tmp_path, "f", drop)  # has "format"
    old_text = _strip(runs["text"], tmp_path, "t", language)
    old_classify = _strip(runs["classify"], tmp_path, "c", drop)  # model, classes, data
    assert isinstance(lstmlens.load_run(old_forecast)[0], Forecaster)
    assert isinstance(lstmlens.load_run(old_text)[0], LanguageModel)
    assert isinstance(lstmlens.load_run(old_classify)[0], SequenceClassifier)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"task": "weather", "format_version": 1}, "unknown task 'weather'"),
        ({"task": "text", "format_version": 2}, "format_version 2; this lstmlens reads up to 1"),
        ({"task": "text", "format_version": "1"}, "format_version '1'"),
        ({"weights": 3}, "names no task"),
    ],
)
def test_unknown_tasks_and_versions_are_refused(tmp_path, config, message):
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        lstmlens.load_run(tmp_path)
    with pytest.raises(ValueError, match="no such folder"):
        lstmlens.load_run(tmp_path / "absent")


def test_compare_reads_a_longrange_race_and_a_text_run(runs, tmp_path, capsys):
    page = tmp_path / "compare.html"
    argv = ["inspect", str(runs["longrange"]), str(runs["text"]), "--compare"]
    assert main([*argv, "--html", str(page), "--max-steps", "20"]) == 0
    assert page.is_file() and "longrange" in page.read_text(encoding="utf-8")
