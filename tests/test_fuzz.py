"""Fuzz harness (issue 17, item 7): hypothesis over the layer API, run folders and the CLI.

Three properties, each "a right answer or a named error, never a crash":

* layers: random shapes, dtypes, cells, variants, options, initial states and packed lengths;
  the ``auto`` backend either equals the ``reference`` backend or both raise the same
  ``ValueError``/``TypeError`` (a ``RuntimeError``, ``IndexError``, ... is a failure);
* run folders: a valid run with one ``config.json`` field replaced by a random JSON value (or
  removed), or its weights truncated or a header byte changed, then loaded through the CLI:
  exit 0, or exit 2 with one ``lstmlens: error:`` line; never a traceback;
* CLI: random argv for ``forecast predict``, ``text next|generate``, ``classify predict``
  (run) and the ``train`` parsers (parsed only): exit 0, or 2 with one line.

The number of examples comes from the hypothesis profile (``tests/conftest.py``: ``ci``
when ``CI=true``, ``dev`` otherwise; both 25 per test), so the file runs in well under a minute.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence

import lstmlens
from lstmlens.cli.common import CLIError
from lstmlens.cli.main import build_parser, main
from runfolders import classify_run, forecast_run, language_run, series_csv

NAMED = (ValueError, TypeError)

# ------------------------------------------------------------------------------ layers


def _layer_kwargs(data: st.DataObject, kind: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "num_layers": data.draw(st.integers(0, 3), "num_layers"),
        "bias": data.draw(st.booleans(), "bias"),
        "batch_first": data.draw(st.booleans(), "batch_first"),
        "bidirectional": data.draw(st.booleans(), "bidirectional"),
    }
    if kind == "LSTM":
        kwargs["variant"] = data.draw(st.sampled_from([*lstmlens.PRESETS, "bogus"]), "variant")
        kwargs["proj_size"] = data.draw(st.integers(-1, 4), "proj_size")
        kwargs["layer_norm"] = data.draw(st.booleans(), "layer_norm")
        kwargs["forget_bias"] = data.draw(st.sampled_from([0.0, 1.0]), "forget_bias")
    if kind == "RNN":
        kwargs["nonlinearity"] = data.draw(st.sampled_from(["tanh", "relu", "sigmoid"]), "nonlin")
    return kwargs


def _run(layer: torch.nn.Module, x: Any, hx: Any) -> Any:
    with torch.no_grad():
        out, state = layer(x, hx)
    out = out.data if hasattr(out, "batch_sizes") else out
    return [out, *(state if isinstance(state, tuple) else (state,))]


def _outcome(make: Any, x: Any, hx: Any, weights: dict | None) -> tuple[Any, Any]:
    """``("ok", tensors)`` or ``(error type, message)``; other exceptions propagate (a crash)."""
    try:
        layer = make()
        if weights is not None:
            layer.load_state_dict(weights)
        layer.eval()
        return "ok", (_run(layer, x, hx), layer.state_dict())
    except NAMED as e:
        assert "\n" not in str(e).strip(), str(e)
        return type(e), str(e)


@given(data=st.data())
def test_layers_auto_equals_reference_or_both_raise_a_named_error(data):
    kind = data.draw(st.sampled_from(["LSTM", "GRU", "RNN"]), "kind")
    cls = getattr(lstmlens, kind)
    size = data.draw(st.integers(0, 4), "input_size")
    hidden = data.draw(st.integers(0, 4), "hidden_size")
    kwargs = _layer_kwargs(data, kind)
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]), "dtype")
    steps, batch = data.draw(st.integers(0, 4), "T"), data.draw(st.integers(0, 3), "B")
    feature = data.draw(st.sampled_from([size, size + 1]), "features")  # sometimes wrong
    shape = (batch, steps, feature) if kwargs["batch_first"] else (steps, batch, feature)
    x: Any = torch.randn(shape, dtype=dtype)
    if data.draw(st.booleans(), "packed") and steps * batch * feature > 0:  # torch packs no empty
        lengths = data.draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch))
        x = pack_padded_sequence(x, torch.tensor(lengths), kwargs["batch_first"], False)
    hx = None
    if data.draw(st.booleans(), "hx") and kind != "LSTM":
        layers = max(kwargs["num_layers"], 0) * (2 if kwargs["bidirectional"] else 1)
        hx = torch.randn(layers, batch, hidden, dtype=dtype)

    def make(backend: str) -> Any:
        return lambda: cls(size, hidden, **kwargs, backend=backend, dtype=dtype)

    reference = _outcome(make("reference"), x, hx, None)
    weights = reference[1][1] if reference[0] == "ok" else None
    auto = _outcome(make("auto"), x, hx, weights)
    assert auto[0] == reference[0], (auto, reference)
    if reference[0] == "ok":
        tol = 1e-4 if dtype == torch.float32 else 1e-9
        for a, r in zip(auto[1][0], reference[1][0], strict=True):
            torch.testing.assert_close(a, r, rtol=tol, atol=tol)


# --------------------------------------------------------------------------- run folders


@pytest.fixture(scope="module")
def base_runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    data = series_csv(root / "y.csv")
    return {
        "forecast": forecast_run(root / "forecast", data),
        "language": language_run(root / "language"),
        "classify": classify_run(root / "classify", root / "seq.csv"),
    }


def _commands(kind: str, run: Path) -> list[str]:
    return {
        "forecast": ["forecast", "predict", str(run), "--data", str(run.parent / "y.csv")],
        "language": ["text", "next", str(run), "to be"],
        "classify": ["classify", "predict", str(run), str(run.parent / "seq.csv")],
    }[kind]


def _leaves(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Paths (tuples of keys / indices) to every value of a JSON document, containers included."""
    paths = [prefix] if prefix else []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node[:3])
        if isinstance(node, list)
        else ()
    )
    for key, value in items:
        paths += _leaves(value, (*prefix, key))
    return paths


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=2)
    ),
    max_leaves=4,
)


def one_line_or_ok(argv: list[str]) -> tuple[int, str]:
    """Run ``argv`` in-process; assert exit 0, or exit 2 with one ``lstmlens: error:`` line."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    text = err.getvalue().strip()
    assert "Traceback" not in text, text
    assert status in (0, 2), (argv, status, text)
    if status == 2:
        lines = [line for line in text.splitlines() if line.startswith("lstmlens: error:")]
        assert len(lines) == 1, (argv, text)
    return status, text


@given(data=st.data())
def test_a_tampered_run_folder_loads_or_gives_one_line(base_runs, data):
    kind = data.draw(st.sampled_from(sorted(base_runs)), "kind")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("y.csv", "seq.csv"):
            shutil.copy(base_runs[kind].parent / name, root / name)
        run = Path(shutil.copytree(base_runs[kind], root / kind))
        how = data.draw(st.sampled_from(["set", "remove", "truncate", "poke"]), "how")
        if how in ("set", "remove"):
            config = json.loads((run / "config.json").read_text(encoding="utf-8"))
            path = data.draw(st.sampled_from(_leaves(config)), "field")
            parent = config
            for key in path[:-1]:
                parent = parent[key]
            if how == "set":
                parent[path[-1]] = data.draw(JSON_VALUES, "value")
            else:
                del parent[path[-1]]
            (run / "config.json").write_text(json.dumps(config), encoding="utf-8")
        else:
            weights = run / "model.safetensors"
            raw = bytearray(weights.read_bytes())
            at = data.draw(st.integers(0, len(raw) - 1), "byte")
            if how == "truncate":
                raw = raw[:at]
            else:
                raw[at] = data.draw(st.integers(0, 255), "value")
            weights.write_bytes(bytes(raw))
        one_line_or_ok(_commands(kind, run))


def test_a_forecast_run_without_its_window_gives_one_line(base_runs, tmp_path):
    """A case hypothesis found: a config without ``forecast.window`` once reached an assert."""
    for name in ("y.csv", "seq.csv"):
        shutil.copy(base_runs["forecast"].parent / name, tmp_path / name)
    run = Path(shutil.copytree(base_runs["forecast"], tmp_path / "forecast"))
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    del config["forecast"]["window"]
    (run / "config.json").write_text(json.dumps(config), encoding="utf-8")
    status, text = one_line_or_ok(_commands("forecast", run))
    assert status == 2 and "window" in text, text


# ------------------------------------------------------------------------------------ CLI

VALUES = [
    "0",
    "1",
    "2",
    "-1",
    "0.5",
    "nan",
    "inf",
    "-inf",
    "1e309",
    "99999999999999999999",
    "1" * 5000,
    "abc",
    "",
    "-",
    "--",
    "x.csv",
    "a,b",
    "é",
]
OPTIONS = {
    "forecast predict": ["--data", "--steps", "--output", "--sep", "--decimal", "--threads"],
    "text next": ["--top", "--threads"],
    "text generate": ["--prompt", "--length", "--temperature", "--top-k", "--top-p", "--seed"],
    "classify predict": ["--output", "--threads"],
}
TRAIN_OPTIONS = [
    "--hidden",
    "--layers",
    "--epochs",
    "--threads",
    "--lr",
    "--dropout",
    "--window",
    "--horizon",
    "--seq-len",
    "--batch-size",
    "--embed",
    "--max-minutes",
    "--proj-size",
    "--folds",
    "--steps",
    "--clip",
    "--patience",
    "--seed",
]


def _argv(data: st.DataObject, options: list[str]) -> list[str]:
    pairs = data.draw(
        st.lists(st.tuples(st.sampled_from(options), st.sampled_from(VALUES)), max_size=3)
    )
    return [token for pair in pairs for token in pair]


@given(data=st.data())
def test_random_argv_on_a_run_exits_0_or_2_with_one_line(base_runs, data):
    command = data.draw(st.sampled_from(sorted(OPTIONS)), "command")
    kind = {"forecast": "forecast", "text": "language", "classify": "classify"}[command.split()[0]]
    run = base_runs[kind]
    positional = {"text next": ["to be"], "classify predict": [str(run.parent / "seq.csv")]}
    argv = [
        *command.split(),
        str(run),
        *positional.get(command, []),
        *_argv(data, OPTIONS[command]),
    ]
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):  # --output lands here
        one_line_or_ok(argv)


@given(data=st.data())
def test_random_train_argv_parses_or_gives_one_line(data):
    command = data.draw(
        st.sampled_from(
            [
                "forecast train",
                "text train",
                "classify train",
                "forecast backtest",
                "longrange adding",
            ]
        ),
        "command",
    )
    argv = [*command.split(), *_argv(data, TRAIN_OPTIONS)]
    try:
        build_parser().parse_args(argv)
    except CLIError as e:
        assert "\n" not in str(e), str(e)
    except SystemExit as e:  # --help and --version only
        assert e.code == 0, argv
