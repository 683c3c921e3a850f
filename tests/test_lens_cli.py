"""``lstmlens inspect`` in-process: a saved text run gets its lens page and pictures; bad
input gives one line on stderr and exit status 2."""

from __future__ import annotations

import json

import html5lib
import pytest
import torch

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
    (other / "config.json").write_text(json.dumps({"task": "classify"}))
    assert main(["inspect", str(other)]) == 2
    assert "holds a 'classify' run" in _error_line(capsys)
    (other / "config.json").write_text("{not json")
    assert main(["inspect", str(other)]) == 2
    assert "is not valid JSON" in _error_line(capsys)
    assert main(["inspect", str(text_run), "--html", str(tmp_path / "no" / "x.html")]) == 2
    assert "no folder" in _error_line(capsys)
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\x01\x02")
    assert main(["inspect", str(text_run), "--input", str(binary)]) == 2
    assert "looks binary" in _error_line(capsys)
    assert main(["inspect", str(text_run), "--max-steps", "0"]) == 2
    assert not (text_run / "lens.html").exists()
