"""``lstmlens inspect`` in-process: saved text and forecast runs get their lens page and
pictures; ``text train`` and ``forecast train`` leave one in the run folder (unless
``--no-lens``); bad input gives one line on stderr and exit status 2."""

from __future__ import annotations

import base64
import json
import shutil

import html5lib
import numpy as np
import pytest
import torch

import lstmlens.lens.pages as lens_pages
from lstmlens.cli.main import main
from lstmlens.data.text import build_tokenizer
from lstmlens.tasks.language import LanguageModel, save_language_model

CORPUS = 'He said "stop" (twice).\nThen: "go [now]".\nEnd of the line.\n' * 3


@pytest.fixture
def text_run(tmp_path):
    """A saved (untrained) character model."""
    torch.manual_seed(0)
    model = LanguageModel(build_tokenizer(CORPUS, "char"), embed_size=8, hidden_size=6)
    run = tmp_path / "run"
    save_language_model(run, model)
    return run


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lstmlens: error: "), err
    return err


def test_inspect_writes_the_page_and_pngs(text_run, tmp_path, capsys):
    html = tmp_path / "lens.html"
    pngs = tmp_path / "png"
    assert (
        main(["inspect", str(text_run), "--input", CORPUS, "--html", str(html), "--png", str(pngs)])
        == 0
    )
    page = html.read_text(encoding="utf-8")
    html5lib.HTMLParser(strict=True).parse(page)
    data = json.loads(page.split('id="lens-data">')[1].split("</script>")[0])
    assert "".join(data["tokens"]) == CORPUS and data["steps"] == len(CORPUS)
    names = sorted(p.name for p in pngs.iterdir())
    assert {"gates_l0.png", "cell_l0.png", "saturation.png"} <= set(names)
    assert len([n for n in names if n.startswith("unit_l0_")]) == 3
    assert str(html) in capsys.readouterr().out


def test_inspect_reads_a_file_cuts_to_max_steps_and_defaults_into_the_run(text_run, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS, encoding="utf-8")
    assert main(["inspect", str(text_run), "--input", str(corpus), "--max-steps", "20"]) == 0
    page = (text_run / "lens.html").read_text(encoding="utf-8")
    data = json.loads(page.split('id="lens-data">')[1].split("</script>")[0])
    assert "".join(data["tokens"]) == CORPUS[:20]


def test_inspect_defaults_to_the_validation_part_of_the_recorded_corpus(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS, encoding="utf-8")
    model = LanguageModel(build_tokenizer(CORPUS, "char"), embed_size=8, hidden_size=6)
    run = tmp_path / "run"
    save_language_model(run, model, {"corpus": str(corpus), "val_fraction": 0.25})
    assert main(["inspect", str(run)]) == 0
    page = (run / "lens.html").read_text(encoding="utf-8")
    data = json.loads(page.split('id="lens-data">')[1].split("</script>")[0])
    assert "".join(data["tokens"]) == CORPUS[int(len(CORPUS) * 0.75) :]


def test_inspect_bad_input(text_run, tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope")]) == 2
    assert "no such folder" in _error_line(capsys)
    (tmp_path / "empty").mkdir()
    assert main(["inspect", str(tmp_path / "empty")]) == 2
    assert "no config.json" in _error_line(capsys)
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"task": "weather"}))
    assert main(["inspect", str(other)]) == 2
    assert "unknown task 'weather'" in _error_line(capsys)
    (other / "config.json").write_text(json.dumps({"task": "text", "format_version": 99}))
    assert main(["inspect", str(other)]) == 2
    assert "format_version 99" in _error_line(capsys)
    (other / "config.json").write_text(json.dumps({"task": "classify", "format_version": 1}))
    assert main(["inspect", str(other)]) == 2
    assert "model.safetensors: file not found" in _error_line(capsys)
    (other / "config.json").write_text("{not json")
    assert main(["inspect", str(other)]) == 2
    assert "not valid JSON" in _error_line(capsys)
    assert main(["inspect", str(text_run), "--html", str(tmp_path / "no" / "x.html")]) == 2
    assert "no folder" in _error_line(capsys)
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\x01\x02")
    assert main(["inspect", str(text_run), "--input", str(binary)]) == 2
    assert "looks binary" in _error_line(capsys)
    assert main(["inspect", str(text_run), "--max-steps", "0"]) == 2
    assert not (text_run / "lens.html").exists()


# ------------------------------------------------------------------ forecast runs

WINDOW = 8
FC_TINY = ["--window", str(WINDOW), "--hidden", "4", "--epochs", "1", "--quiet"]


def _page_data(page: str) -> dict:
    return json.loads(page.split('id="lens-data">')[1].split("</script>")[0])


def _decode(entry: dict, steps: int) -> np.ndarray:
    q = np.frombuffer(base64.b64decode(entry["b64"]), dtype="<i2")
    return q.reshape(steps, entry["width"]) / entry["scale"]  # (T, H)


def _assert_self_contained(page: str) -> None:
    html5lib.HTMLParser(strict=True).parse(page)  # any HTML5 parse error raises
    lowered = page.lower()
    for bad in ("http://", "https://", "//cdn", "<link", "@import", "url("):
        assert bad not in lowered, f"the page refers to something outside it: {bad!r}"


def _write_series_csv(path, n: int = 60, level: float = 50.0):
    """Monthly ``month,y,temp``: trend + season + noise; returns the path and y, temp."""
    t = np.arange(n)
    rng = np.random.default_rng(0)
    y = level + 0.5 * t + 5 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.5, n)
    temp = np.cos(t)
    lines = ["month,y,temp"] + [
        f"{2000 + i // 12}-{i % 12 + 1:02d},{y[i]:.3f},{temp[i]:.3f}" for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, np.round(y, 3), np.round(temp, 3)


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory):
    """A forecast run trained for one epoch by ``forecast train`` (its lens page included)."""
    root = tmp_path_factory.mktemp("lens_fc")
    data, y, temp = _write_series_csv(root / "sales.csv")
    run = root / "run"
    argv = ["forecast", "train", str(data), "--target", "y", "--covariates", "temp", "--test", "6"]
    assert main([*argv, "--out", str(run), *FC_TINY]) == 0
    return run, data, y, temp


def _window_ends(run, y, temp, first: int, drop: int = 0):
    """The LSTM's (h, c) at the last step of each window ending at t >= first, computed
    without the lens: scale with the saved scaler, take the target relative to the last
    value of the window, and run the plain forward of the saved LSTM (on all but the last
    ``drop`` rows of each window: ``drop=1`` gives the state the last step read)."""
    from lstmlens.tasks.forecast import Forecaster

    fc, config = Forecaster.load(run)
    mean = np.array(config["scaler"]["mean"])
    scale = np.array(config["scaler"]["scale"])
    z = np.log(y) if config["forecast"]["log"] else y  # log and seasonal indices: as fitted
    u = (np.column_stack([z, temp]) - mean) / scale  # (T, 2)
    s = np.asarray(config["seasonal_indices"])
    u[:, 0] -= s[np.arange(len(y)) % len(s)]
    windows = []
    for t in range(first, len(y)):
        x = u[t - WINDOW + 1 : t + 1].copy()  # (W, 2): the rows up to t
        x[:, 0] -= u[t, 0]
        windows.append(x)
    x = torch.tensor(np.stack(windows), dtype=torch.float32)[:, : WINDOW - drop]  # (N, W', 2)
    with torch.no_grad():
        _, (h_n, c_n) = fc.net.lstm(x)  # (1, N, H) each
    return h_n[0].double().numpy(), c_n[0].double().numpy()


def test_forecast_train_writes_a_lens_page_of_the_test_part(forecast_run, capsys):
    run, _, y, temp = forecast_run
    page = (run / "lens.html").read_text(encoding="utf-8")
    _assert_self_contained(page)
    data = _page_data(page)
    test_rows = json.loads((run / "metrics.json").read_text())["test"]["rows"]
    assert data["mode"] == "series" and data["seriesName"] == "y"
    assert data["steps"] == test_rows == 6
    np.testing.assert_allclose(data["series"], y[-test_rows:], atol=1e-9)
    assert "2004-07-01 .. 2004-12-01" in page  # the dates of the test rows, in the heading
    h, c = _window_ends(run, y, temp, len(y) - test_rows)
    for name, want in (("hidden", h), ("cell", c)):
        got = _decode(data["arrays"][f"0/0/{name}"], test_rows)
        np.testing.assert_allclose(got, want, atol=1.5 * np.abs(want).max() / 32767 + 1e-6)


def test_inspect_forecast_run_writes_the_series_page_and_pngs(
    forecast_run, tmp_path, capsys, monkeypatch
):
    run, _, y, temp = forecast_run
    monkeypatch.setattr(lens_pages, "_CHUNK", 10)  # 53 windows traced in 6 pieces
    html, pngs = tmp_path / "lens.html", tmp_path / "png"
    assert main(["inspect", str(run), "--html", str(html), "--png", str(pngs)]) == 0
    assert str(html) in capsys.readouterr().out
    page = html.read_text(encoding="utf-8")
    _assert_self_contained(page)
    data = _page_data(page)
    steps = len(y) - (WINDOW - 1)  # every step with a whole window before it
    assert data["steps"] == steps and data["kind"] == "lstm" and data["hidden"] == 4
    np.testing.assert_allclose(data["series"], y[WINDOW - 1 :], atol=1e-9)
    gates = ("input", "forget", "candidate", "output", "cell", "hidden")
    assert {f"0/0/{g}" for g in gates} <= set(data["arrays"])
    assert len(data["initialUnits"]) >= 1 and all(0 <= u < 4 for u in data["initialUnits"])
    h, c = _window_ends(run, y, temp, WINDOW - 1)
    for name, want in (("hidden", h), ("cell", c)):
        got = _decode(data["arrays"][f"0/0/{name}"], steps)
        np.testing.assert_allclose(got, want, atol=1.5 * np.abs(want).max() / 32767 + 1e-6)
    for sigmoid in ("input", "forget", "output"):
        values = _decode(data["arrays"][f"0/0/{sigmoid}"], steps)
        assert values.min() >= 0 and values.max() <= 1 and values.std() > 0
    # each row is its own window: the state its step read is one step earlier in that window
    assert data["cell"]["before"] is True and data["cell"]["consecutive"] is False
    h_read, c_read = _window_ends(run, y, temp, WINDOW - 1, drop=1)
    for name, want in (("hidden", h_read), ("cell", c_read)):
        got = _decode(data["arrays"][f"0/0/before_{name}"], steps)
        np.testing.assert_allclose(got, want, atol=1.5 * np.abs(want).max() / 32767 + 1e-6)
    i, f, g = (_decode(data["arrays"][f"0/0/{n}"], steps) for n in ("input", "forget", "candidate"))
    np.testing.assert_allclose(f * c_read + i * g, c, atol=1e-3)  # c = f c_read + i g per row
    names = {p.name for p in pngs.iterdir()}
    assert names == {"gates_l0.png", "cell_l0.png", "saturation.png"}
    assert all((pngs / n).read_bytes()[:4] == b"\x89PNG" for n in names)


def test_inspect_forecast_run_on_another_csv_and_max_steps(forecast_run, tmp_path):
    run, *_ = forecast_run
    other, y2, _ = _write_series_csv(tmp_path / "other.csv", n=40, level=80.0)
    html = tmp_path / "other.html"
    assert main(["inspect", str(run), "--input", str(other), "--html", str(html)]) == 0
    data = _page_data(html.read_text(encoding="utf-8"))
    np.testing.assert_allclose(data["series"], y2[WINDOW - 1 :], atol=1e-9)
    assert main(["inspect", str(run), "--input", str(other), "--html", str(html), "--max-steps",
                 "20"]) == 0  # fmt: skip
    data = _page_data(html.read_text(encoding="utf-8"))
    assert data["steps"] == 20
    np.testing.assert_allclose(data["series"], y2[-20:], atol=1e-9)


def test_forecast_train_no_lens(tmp_path, capsys):
    data, *_ = _write_series_csv(tmp_path / "d.csv")
    out = tmp_path / "run"
    argv = ["forecast", "train", str(data), "--target", "y", "--out", str(out), "--no-lens"]
    assert main([*argv, *FC_TINY]) == 0
    assert "lens page" not in capsys.readouterr().out
    assert (out / "model.safetensors").is_file() and not (out / "lens.html").exists()


@pytest.mark.parametrize(
    ("damage", "extra", "message"),
    [
        (lambda r, d: None, ["--input", "{tmp}/absent.csv"], "no such file"),
        (lambda r, d: None, ["--input", "{tmp}/no_temp.csv"], "no column 'temp'"),
        (lambda r, d: None, ["--input", "{tmp}/short.csv"], "5 rows, fewer than the window of 8"),
        (lambda r, d: d.unlink(), [], "is gone; pass --input DATA.csv"),
        (lambda r, d: (r / "model.safetensors").write_bytes(b"junk"), [], "model.safetensors"),
        (
            lambda r, d: (r / "config.json").write_text(
                json.dumps({k: v for k, v in _cfg(r).items() if k != "net"})
            ),
            [],
            "net.input_size is missing",  # the run-folder schema (issue 17) names the field
        ),
        (lambda r, d: (r / "config.json").write_text('{"weights": 3}'), [], "names no task"),
        (lambda r, d: (r / "config.json").write_text("[1, 2"), [], "not valid JSON"),
        (lambda r, d: shutil.rmtree(r), [], "no such folder"),
    ],
)
def test_inspect_forecast_bad_input(forecast_run, tmp_path, capsys, damage, extra, message):
    run, data, *_ = forecast_run
    copy, csv = tmp_path / "run", tmp_path / "sales.csv"
    shutil.copytree(run, copy)
    shutil.copy(data, csv)
    config = _cfg(copy)
    config["data"]["path"] = str(csv)
    (copy / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (copy / "lens.html").unlink()
    (tmp_path / "no_temp.csv").write_text(
        "\n".join(line.rsplit(",", 1)[0] for line in csv.read_text().splitlines()) + "\n"
    )
    (tmp_path / "short.csv").write_text("\n".join(csv.read_text().splitlines()[:6]) + "\n")
    damage(copy, csv)
    capsys.readouterr()
    argv = [a.format(tmp=tmp_path) for a in extra]
    assert main(["inspect", str(copy), *argv]) == 2
    assert message in _error_line(capsys)
    assert not (copy / "lens.html").exists()


def _cfg(run) -> dict:
    return json.loads((run / "config.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------- text runs

LONG = "".join(f'line {i}: the (quick) fox said "{"ab" * (i % 7)}".\n' for i in range(60))
TEXT_TINY = ["--hidden", "8", "--embed-dim", "4", "--seq-len", "20", "--batch-size", "8"]


def test_text_train_writes_a_lens_page_of_validation_text(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(LONG, encoding="utf-8")
    out = tmp_path / "run"
    argv = ["text", "train", str(corpus), "--out", str(out), "--epochs", "1", "--quiet"]
    assert main([*argv, "--val-fraction", "0.5", *TEXT_TINY]) == 0
    assert f"lens page (the gates over validation text): {out / 'lens.html'}" in (
        capsys.readouterr().out
    )
    page = (out / "lens.html").read_text(encoding="utf-8")
    _assert_self_contained(page)
    data = _page_data(page)
    validation = LONG[int(len(LONG) * 0.5) :]
    assert len(validation) > 1000  # so the page shows a cut
    assert "".join(data["tokens"]) == validation[:1000] and data["steps"] == 1000
    assert {f"0/0/{g}" for g in ("input", "forget", "cell", "hidden")} <= set(data["arrays"])


def test_text_train_no_lens_and_a_failing_lens(tmp_path, capsys, monkeypatch):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(LONG, encoding="utf-8")
    argv = ["text", "train", str(corpus), "--epochs", "1", "--quiet", *TEXT_TINY]
    assert main([*argv, "--out", str(tmp_path / "a"), "--no-lens"]) == 0
    assert not (tmp_path / "a" / "lens.html").exists()
    assert "lens page" not in capsys.readouterr().out

    def broken(*args, **kwargs):
        raise ValueError("the page cannot be drawn")

    monkeypatch.setattr(lens_pages, "write_text_lens", broken)
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0  # the run itself is fine
    out, err = capsys.readouterr()
    assert err == "lstmlens: warning: no lens page for the run: the page cannot be drawn\n"
    assert "lens page" not in out and (tmp_path / "b" / "model.safetensors").is_file()
    assert not (tmp_path / "b" / "lens.html").exists()
