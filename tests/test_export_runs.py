"""``lstmlens export RUN``: forecast, text and classify runs served by ``examples/serve_onnx.py``
(onnxruntime and numpy only, torch never imported) give what the ``lstmlens`` commands give."""

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from lstmlens.cli.main import main  # noqa: E402
from test_cli_classify import TRAIN as CLASSIFY_TRAIN  # noqa: E402
from test_cli_classify import numeric_csv  # noqa: E402
from test_cli_forecast import write_csv  # noqa: E402
from test_cli_text import CORPUS  # noqa: E402

SERVE = Path(__file__).parents[1] / "examples" / "serve_onnx.py"
# runs the script as __main__, then fails if anything imported torch
NO_TORCH = (
    "import runpy, sys; sys.argv = sys.argv[1:]; "
    "code = 0\ntry: runpy.run_path(sys.argv[0], run_name='__main__')\n"
    "except SystemExit as e: code = e.code\n"
    "assert 'torch' not in sys.modules and 'lstmlens' not in sys.modules, 'torch was imported'\n"
    "sys.exit(code)"
)


def serve(*argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", NO_TORCH, str(SERVE), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def cli(capsys, *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def same_table(got: str, want: str, rtol: float = 1e-5) -> None:
    """Same header and labels; numbers equal within ``rtol``."""
    a, b = rows(got), rows(want)
    assert a[0] == b[0] and len(a) == len(b)
    for x, y in zip(a[1:], b[1:]):
        for u, v in zip(x, y):
            try:
                assert float(u) == pytest.approx(float(v), rel=rtol, abs=1e-6)
            except ValueError:
                assert u == v


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Tiny forecast (quantiles, a covariate), text and classify (numeric; text) runs, exported."""
    root = tmp_path_factory.mktemp("export")
    write_csv(root / "sales.csv", n=80)
    forecast = ["forecast", "train", str(root / "sales.csv"), "--target", "sales"]
    assert main([*forecast, "--covariates", "temp", "--quantiles", "0.1,0.5,0.9",
                 "--window", "8", "--horizon", "3", "--hidden", "4", "--epochs", "1",
                 "--anchor", "level", "--members", "1", "--no-deseasonalise", "--no-calibrate",
                 "--quiet", "--no-lens", "--out", str(root / "fc")]) == 0  # fmt: skip
    numeric_csv(root / "cls.csv", n=12)
    assert main(["classify", "train", str(root / "cls.csv"), *CLASSIFY_TRAIN,
                 "--out", str(root / "cls")]) == 0  # fmt: skip
    texts = ["great fun, loved it", "awful and dull", "a joy to read!", "don't bother"] * 4
    labels = ["pos", "neg"] * 8
    lines = ["text,y"] + [f'"{t}",{y}' for t, y in zip(texts, labels)]
    (root / "texts.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["classify", "train", str(root / "texts.csv"), "--text", "text", "--label", "y",
                 "--epochs", "1", "--hidden", "4", "--bidirectional", "--pooling", "mean",
                 "--quiet", "--out", str(root / "tcls")]) == 0  # fmt: skip
    (root / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    assert main(["text", "train", str(root / "corpus.txt"), "--epochs", "1", "--hidden", "8",
                 "--embed-dim", "4", "--seq-len", "20", "--batch-size", "8", "--quiet",
                 "--no-lens", "--out", str(root / "txt")]) == 0  # fmt: skip
    for name in ("fc", "cls", "tcls", "txt"):
        assert main(["export", str(root / name), "--output", str(root / f"{name}.onnx")]) == 0
    return root


@pytest.mark.slow
def test_forecast_predict_through_onnxruntime(runs, capsys):
    want = cli(capsys, "forecast", "predict", str(runs / "fc"), "--steps", "7")
    same_table(serve(str(runs / "fc.onnx"), "--steps", "7"), want)
    side = json.loads((runs / "fc.json").read_text())
    assert side["task"] == "forecast" and side["quantile_levels"] == [0.1, 0.5, 0.9]
    assert len(side["history"]) == side["window"] == 8


@pytest.mark.slow
def test_text_next_through_onnxruntime(runs, capsys):
    for prompt in ("Speak, spe", ""):
        want = cli(capsys, "text", "next", str(runs / "txt"), prompt, "--top", "5").splitlines()
        got = serve(str(runs / "txt.onnx"), prompt, "--top", "5").splitlines()
        assert [line.split("  ")[-1] for line in got] == [line.split("  ")[-1] for line in want]
        for g, w in zip(got, want):
            assert float(g.split()[1]) == pytest.approx(float(w.split()[1]), abs=2e-4)


@pytest.mark.slow
def test_classify_predict_through_onnxruntime(runs, capsys):
    for run, data in (("cls", "cls.csv"), ("tcls", "texts.csv")):  # numeric; text, mean pooling
        want = cli(capsys, "classify", "predict", str(runs / run), str(runs / data))
        same_table(serve(str(runs / f"{run}.onnx"), str(runs / data)), want)


@pytest.mark.slow
def test_exported_programs(runs, capsys):
    """forecast: the same pass as the ONNX graph; language: one step; classify: the eager
    logits on another batch size and length."""
    cli(capsys, "export", str(runs / "fc"), "--format", "exported-program",
        "--output", str(runs / "fc.pt2"))  # fmt: skip
    program = torch.export.load(str(runs / "fc.pt2")).module()
    side = json.loads((runs / "fc.json").read_text())
    history = np.asarray(side["history"])[None].repeat(3, axis=0)  # batch 3, traced with 2
    from lstmlens.export.onnx import run_onnx

    (want,) = run_onnx(runs / "fc.onnx", {"history": history})
    with torch.no_grad():
        got = program(torch.from_numpy(history)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)
    cli(capsys, "export", str(runs / "txt"), "--format", "exported-program",
        "--output", str(runs / "txt.pt2"))  # fmt: skip
    step = torch.export.load(str(runs / "txt.pt2")).module()
    h = torch.zeros(1, 3, 8)
    logits, h1, _ = step(torch.tensor([[1], [2], [3]]), h, h)
    assert logits.shape[:2] == (3, 1) and h1.shape == (1, 3, 8)
    for run in ("cls", "tcls"):  # numeric and text: the padded batch with its lengths
        cli(capsys, "export", str(runs / run), "--format", "exported-program",
            "--output", str(runs / f"{run}.pt2"))  # fmt: skip
        program = torch.export.load(str(runs / f"{run}.pt2")).module()
        from lstmlens.tasks.classify_run import load_classifier

        model, _ = load_classifier(runs / run)
        torch.manual_seed(0)
        lengths = torch.tensor([9, 4, 6])  # batch 3 and length 9: traced with 2 and 4
        if model.text:
            x = torch.randint(1, model.embed.num_embeddings, (3, 9))
        else:
            x = torch.randn(3, 9, model.rnn.input_size)
        with torch.no_grad():
            logits, probabilities = program(x, lengths)
            torch.testing.assert_close(logits, model(x, lengths), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(probabilities.sum(-1), torch.ones(3))


def one_line_error(capsys, argv, needle) -> None:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("lstmlens: error:") and needle in err


def test_bad_input_is_one_line(tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "m.onnx")
    one_line_error(capsys, ["export", str(tmp_path / "nope"), "--output", out], "not a run folder")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text("{not json", encoding="utf-8")
    one_line_error(capsys, ["export", str(corrupt), "--output", out], "config.json")
    (corrupt / "config.json").write_text('{"task": "longrange"}', encoding="utf-8")
    one_line_error(capsys, ["export", str(corrupt), "--output", out], "cannot export")
    one_line_error(
        capsys, ["export", str(corrupt), "--output", out, "--format", "tflite"], "unknown format"
    )
    (tmp_path / "m.onnx").write_bytes(b"old")
    (corrupt / "config.json").write_text('{"task": "language"}', encoding="utf-8")
    one_line_error(capsys, ["export", str(corrupt), "--output", out], "use --force")
    assert (tmp_path / "m.onnx").read_bytes() == b"old"
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a)
    )
    one_line_error(
        capsys,
        ["export", str(corrupt), "--output", out, "--force"],
        "pip install 'lstmlens[export]'",
    )
    assert (tmp_path / "m.onnx").read_bytes() == b"old"
