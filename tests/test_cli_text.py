"""``lstmlens text train|generate|next`` in-process: the run folder, streaming, and bad input."""

import json

import pytest

from lstmlens.cli.main import main

CORPUS = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
    "All:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\n"
) * 12
TINY = ["--hidden", "16", "--embed-dim", "8", "--seq-len", "20", "--batch-size", "8", "--quiet"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny character model trained for two epochs, shared by the tests below."""
    folder = tmp_path_factory.mktemp("text")
    corpus = folder / "corpus.txt"
    corpus.write_text(CORPUS, encoding="utf-8")
    out = folder / "run"
    assert main(["text", "train", str(corpus), "--out", str(out), "--epochs", "2", *TINY]) == 0
    return out


def error_line(capsys) -> str:
    """The whole stderr, which must be exactly one `lstmlens: error:` line."""
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstmlens: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_train_writes_the_run_folder(run):
    names = {p.name for p in run.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "metrics.json",
        "metrics.jsonl",
        "loss.png",
    } <= names
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    assert (
        config["task"] == "text"
        and config["format_version"] == 1
        and config["tokenizer"]["level"] == "char"
    )
    assert config["best_epoch"] in (1, 2) and config["corpus"].endswith("corpus.txt")
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert len(metrics["history"]) == 2 and metrics["best_val_bpc"] > 0
    assert metrics["best_val_loss"] == min(r["val_loss"] for r in metrics["history"])


def test_generate_streams_and_repeats_with_a_seed(run, capsys):
    argv = ["text", "generate", str(run), "--prompt", "First", "--length", "30", "--seed", "7"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert first.startswith("First") and len(first) == len("First") + 30 + 1  # + final newline
    assert main(argv) == 0
    assert capsys.readouterr().out == first
    assert main([*argv[:-1], "8", "--top-k", "3", "--top-p", "0.9"]) == 0
    assert capsys.readouterr().out.startswith("First")


def test_next_lists_sorted_probabilities(run, capsys):
    assert main(["text", "next", str(run), "Speak, spe", "--top", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and [line.split()[0] for line in lines] == ["1", "2", "3", "4"]
    probs = [float(line.split()[1]) for line in lines]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1


def test_word_level_and_existing_folder_kept(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text(CORPUS * 2, encoding="utf-8")
    out = tmp_path / "w"
    argv = ["text", "train", str(corpus), "--out", str(out), "--level", "word", "--epochs", "1"]
    word = [*TINY, "--seq-len", "10", "--batch-size", "16"]
    assert main([*argv, *word, "--max-vocab", "12"]) == 0
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert len(config["tokenizer"]["tokens"]) == 11  # + <unk> = --max-vocab
    capsys.readouterr()
    before = (out / "model.safetensors").read_bytes()
    assert main([*argv, *word]) == 2  # no --force
    assert "already exists" in error_line(capsys)
    assert (out / "model.safetensors").read_bytes() == before
    assert main([*argv, *word, "--force"]) == 0


def test_default_corpus_is_pydoc(tmp_path, capsys, monkeypatch):
    import lstmlens.data.datasets as datasets

    calls = []

    def first_part():  # the real default text, cut short to keep the test fast
        calls.append(1)
        return real()[:6000]

    real = datasets.load_pydoc_text
    assert "Python" in real()
    monkeypatch.setattr(datasets, "load_pydoc_text", first_part)
    out = tmp_path / "pydoc"
    assert main(["text", "train", "--out", str(out), "--epochs", "1", *TINY]) == 0
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["corpus"] == "pydoc_data" and calls == [1]
    assert "best val_loss" in capsys.readouterr().out


# -- bad input: one line, exit status 2, nothing written --------------------------------


def bad_corpus(tmp_path, name, data):
    path = tmp_path / name
    if data is not None:
        path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("missing.txt", None, "does not exist"),
        ("empty.txt", b"", "is empty"),
        ("binary.bin", b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
        ("latin1.txt", "d\u00e9j\u00e0 vu".encode("latin-1") * 50, "not UTF-8"),
        ("short.txt", b"too short for one batch", "too short"),
    ],
)
def test_train_bad_corpus(tmp_path, capsys, name, data, message):
    corpus = bad_corpus(tmp_path, name, data)
    out = tmp_path / "out"
    assert main(["text", "train", str(corpus), "--out", str(out), *TINY]) == 2
    assert message in error_line(capsys)
    assert not out.exists()


def test_train_bad_options(tmp_path, capsys):
    corpus = bad_corpus(tmp_path, "c.txt", CORPUS.encode())
    out = tmp_path / "out"
    for extra, message in [
        (["--seq-len", "0"], "--seq-len must be a positive integer"),
        (["--val-fraction", "1.5"], "--val-fraction must be in (0, 1)"),
        (["--variant", "bogus"], "unknown variant"),
        (["--embed-dim", "8", "--tie-weights"], "tie_weights needs embed_size"),
        (["--epochs", "0"], "--epochs"),
    ]:
        assert main(["text", "train", str(corpus), "--out", str(out), *TINY, *extra]) == 2
        assert message in error_line(capsys)
        assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["generate", "RUN", "--prompt", "\u4e2d\u6587", "--length", "5"], "only tokens unknown"),
        (["next", "RUN", "@@@"], "only tokens unknown"),
        (["generate", "RUN", "--length", "0"], "--length must be a positive integer, got 0"),
        (["generate", "RUN", "--temperature", "0"], "--temperature must be a positive number"),
        (["generate", "RUN", "--temperature", "-1"], "--temperature must be a positive number"),
        (["generate", "RUN", "--top-k", "0"], "--top-k must be a positive integer"),
        (["generate", "RUN", "--top-p", "1.5"], "--top-p must be in (0, 1]"),
        (["generate", "RUN", "--length", "many"], "invalid int value: 'many'"),
        (["next", "RUN", "to be", "--top", "0"], "--top must be a positive integer, got 0"),
        (["next", "RUN", "to be", "--top", "-3"], "--top must be a positive integer, got -3"),
    ],
)
def test_use_bad_input(run, capsys, argv, message):
    capsys.readouterr()
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    argv = [str(run) if a == "RUN" else a for a in argv]
    assert main(["text", *argv]) == 2
    assert message in error_line(capsys)
    assert capsys.readouterr().out == ""  # nothing streamed before the error
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before


def test_run_folder_of_another_task(tmp_path, capsys):
    other = tmp_path / "forecast_run"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"task": "forecast"}), encoding="utf-8")
    for argv in (["generate", str(other)], ["next", str(other), "hello"]):
        assert main(["text", *argv]) == 2
        assert "holds a 'forecast' run, not a text model" in error_line(capsys)
    assert main(["text", "next", str(tmp_path / "nowhere"), "hello"]) == 2
    assert "is not a run folder" in error_line(capsys)
    assert [p.name for p in other.iterdir()] == ["config.json"]
