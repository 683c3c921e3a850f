"""Small, valid run folders of each kind, written in milliseconds (no training), for tamper tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lstmlens.data.text import build_tokenizer
from lstmlens.data.windows import Scaler
from lstmlens.tasks.classify import SequenceClassifier
from lstmlens.tasks.forecast import ForecastConfig, Forecaster
from lstmlens.tasks.forecast_model import ForecastNet, NetConfig
from lstmlens.tasks.language import LanguageModel, save_language_model
from lstmlens.train import save_model

RUN_MARKER = ".lstmlens-run"


def series_csv(path: Path, rows: int = 60) -> Path:
    """A CSV with a ``y`` column: a noisy sine, ``rows`` rows."""
    t = np.arange(rows)
    y = 10 + np.sin(t / 3) + 0.01 * t
    path.write_text("y\n" + "\n".join(f"{v:.5f}" for v in y) + "\n", encoding="utf-8")
    return path


def forecast_run(run: Path, data: Path) -> Path:
    """A forecast run (window 4, hidden 4) whose ``data`` entry names ``data``."""
    fc = Forecaster(ForecastConfig(window=4, hidden_size=4, quantiles=(), members=1))
    fc.net = ForecastNet(NetConfig(input_size=1, hidden_size=4))
    fc.scaler = Scaler(mean=np.array([10.0]), scale=np.array([1.0]))
    fc.target, fc.covariates, fc.season = "y", (), None
    fc.save(run, extra={"data": {"source": "csv", "path": str(data), "target": "y"}})
    (run / RUN_MARKER).touch()
    return run


def language_run(run: Path) -> Path:
    """A character language model (embedding 4, hidden 4) over a tiny alphabet."""
    model = LanguageModel(build_tokenizer("to be or not to be\n", level="char"), 4, 4)
    save_language_model(run, model)
    (run / RUN_MARKER).touch()
    return run


def classify_run(run: Path, data: Path) -> Path:
    """A numeric sequence classifier (1 feature, hidden 4, 2 classes) and a CSV to predict."""
    config = {"num_classes": 2, "input_size": 1, "hidden_size": 4, "mean": [0.0], "std": [1.0]}
    spec = {"kind": "numeric", "id": "id", "time": "t", "label": "label", "features": ["x"]}
    save_model(
        run, SequenceClassifier(config), {"model": config, "classes": ["p", "q"], "data": spec}
    )
    (run / RUN_MARKER).touch()
    rows = [f"{s},{t},{x}" for s, x0 in (("a", 1.0), ("b", 3.0)) for t, x in enumerate([x0, 2.0])]
    data.write_text("id,t,x\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return run


def edit_config(run: Path, path: str, value: object) -> None:
    """Set the dotted ``path`` of ``run``'s config.json to ``value`` (written as JSON allows)."""
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node[key]
    node[last] = value
    (run / "config.json").write_text(json.dumps(config), encoding="utf-8")
