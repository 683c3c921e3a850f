"""The lens page: valid HTML5, self-contained, and carrying the trace's numbers faithfully."""

from __future__ import annotations

import base64
import json
import re

import html5lib
import numpy as np
import pytest

from lens_standin import GRU_GATES, StandInTrace, lstm_gates, random_lstm_trace
from lstmlens.lens.html import series_page, text_page, write_page
from lstmlens.lens.stats import correlation, half_life, saturation, text_signals

TEXT = 'He said "stop" (twice).\nThen: "go [now]".\nEnd\n'


def _parse(page: str):
    """Parse with html5lib in strict mode: any HTML5 parse error raises."""
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(page)


def _data(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="lens-data">(.*?)</script>', page, re.S)
    assert found, "the page has no lens-data block"
    return json.loads(found.group(1))


def _decode(entry: dict, steps: int, hidden: int) -> np.ndarray:
    q = np.frombuffer(base64.b64decode(entry["b64"]), dtype="<i2")
    return q.reshape(steps, hidden) / entry["scale"]  # (T, H)


def _assert_self_contained(page: str) -> None:
    lowered = page.lower()
    for bad in ("http://", "https://", "//cdn", "<link", "@import", "url("):
        assert bad not in lowered, f"the page refers to something outside it: {bad!r}"
    doc = _parse(page)
    for element in doc.iter():
        for attr in ("src", "href"):
            assert attr not in element.attrib, f"<{element.tag} {attr}=...> loads something"


@pytest.fixture(scope="module")
def two_layer():
    return random_lstm_trace(len(TEXT), 6, layers=2, seed=3)


def test_text_page_is_valid_html5_and_self_contained(two_layer):
    page = text_page(two_layer, TEXT)
    _parse(page)  # raises html5lib.html5parser.ParseError on any error
    _assert_self_contained(page)
    doc = _parse(page)
    ids = {e.get("id") for e in doc.iter() if e.get("id")}
    assert {"layer", "direction", "gate", "unit", "text", "top-units", "tip", "explain"} <= ids
    assert [e.tag for e in doc.iter() if e.get("id") in ("layer", "gate", "unit")] == ["select"] * 3


def test_page_data_round_trips_every_gate(two_layer):
    data = _data(text_page(two_layer, TEXT))
    assert data["mode"] == "text" and data["tokens"] == list(TEXT)
    assert (data["layers"], data["directions"], data["hidden"]) == (2, 1, 6)
    assert data["gates"] == list(two_layer.gate_names)
    for layer in range(2):
        for name in two_layer.gate_names:
            expected = two_layer.gate(name, layer).numpy()
            got = _decode(data["arrays"][f"{layer}/0/{name}"], len(TEXT), 6)
            peak = np.abs(expected).max()
            np.testing.assert_allclose(got, expected, atol=peak / 32767 * 0.51 + 1e-12)


def test_page_statistics_match_the_stats_module(two_layer):
    data = _data(text_page(two_layer, TEXT))
    forget = two_layer.gate("forget", 1).numpy()
    stats = data["stats"]["1/0"]
    right = saturation(forget).right  # the page keeps 4 decimals
    np.testing.assert_allclose(stats["saturation"]["forget"]["right"], right, atol=5e-5)
    np.testing.assert_allclose(stats["halfLife"], half_life(forget), rtol=1e-3, atol=0.01)
    assert "cell" not in stats["saturation"]  # saturation only for sigmoid gates
    pos = text_signals(TEXT)["position_in_line"]
    expected_r = correlation(two_layer.gate("cell", 1).numpy(), pos)
    np.testing.assert_allclose(data["corr"]["1/0/cell"]["position_in_line"], expected_r, atol=1e-3)
    best = data["units"][0]
    values = two_layer.gate(best["gate"], best["layer"]).numpy()
    r = correlation(values, text_signals(TEXT)[best["signal"]])[best["unit"]]
    assert best["r"] == pytest.approx(r, abs=1e-4)
    assert all(abs(u["r"]) <= abs(best["r"]) + 1e-12 for u in data["units"])


def test_page_explains_the_gates_in_tutorial_words(two_layer):
    page = text_page(two_layer, TEXT)
    explain = page[page.index('id="explain"') :]
    for word, gate in (("learn", "input"), ("forget", "forget"), ("remember", "cell update")):
        assert re.search(rf"<td>{word}</td><td>{gate}", explain), (word, gate)
    assert "<td>use</td><td>output gate" in explain


def test_markup_in_the_text_cannot_break_out_of_the_page():
    text = "</script><script>alert(1)</script><!-- & \u2028 \"'"
    trace = random_lstm_trace(len(text), 3)
    page = text_page(trace, text, title="<b>title</b> & co")
    _parse(page)
    _assert_self_contained(page)
    assert _data(page)["tokens"] == list(text)
    assert page.count("</script>") == 2  # the data block and the code block, nothing else
    assert "&lt;b&gt;title&lt;/b&gt; &amp; co" in page


def test_word_tokens_and_max_steps():
    tokens = ["To", " be", ",", " or", " not", "\n", "to", " be"]
    trace = random_lstm_trace(len(tokens), 4)
    data = _data(text_page(trace, tokens, max_steps=5))
    assert data["tokens"] == tokens[:5] and data["steps"] == 5
    got = _decode(data["arrays"]["0/0/forget"], 5, 4)
    np.testing.assert_allclose(got, trace.gate("forget").numpy()[:5], atol=1e-4)
    page = text_page(trace, tokens, max_steps=5)
    assert "first 5 of 8" in page


def test_batched_packed_and_bidirectional_traces():
    rng = np.random.default_rng(0)
    per_dir = []
    for _ in range(2):  # (B, T, H) with batch_first, sequence 1 is 4 steps long
        g = lstm_gates(
            rng.normal(size=(6, 2)),
            *(rng.normal(size=s) for s in ((12, 2), (12, 3))),
            rng.normal(size=12),
        )
        other = {k: v[::-1].copy() for k, v in g.items()}
        per_dir.append({k: np.stack([g[k], other[k]]) for k in g})
    trace = StandInTrace("lstm", [per_dir], batch_first=True, lengths=[6, 4])
    data = _data(text_page(trace, "abcd", batch_index=1))
    assert data["directions"] == 2 and data["steps"] == 4
    got = _decode(data["arrays"]["0/1/hidden"], 4, 3)
    np.testing.assert_allclose(got, per_dir[1]["hidden"][1, :4], atol=1e-4)


def test_projected_hidden_keeps_its_own_width():
    trace = random_lstm_trace(5, 4)
    hidden = trace._gates[0][0]["hidden"][:, :2].copy()  # proj_size = 2: h has 2 units, c has 4
    trace._gates[0][0]["hidden"] = hidden
    data = _data(text_page(trace, "abcde"))
    assert data["arrays"]["0/0/hidden"]["width"] == 2
    assert data["arrays"]["0/0/cell"]["width"] == 4 and data["hidden"] == 4
    np.testing.assert_allclose(_decode(data["arrays"]["0/0/hidden"], 5, 2), hidden, atol=1e-4)
    assert len(data["stats"]["0/0"]["mean"]["hidden"]) == 2


def test_gru_series_page():
    rng = np.random.default_rng(1)
    steps = 40
    gates = {name: rng.uniform(0, 1, size=(steps, 5)) for name in GRU_GATES}
    gates["hidden"] = np.tanh(rng.normal(size=(steps, 5)))
    y = np.sin(np.arange(steps) / 4.0) * 3 + 10
    gates["hidden"][:, 4] = (y - 10) / 3  # unit 4 follows the series
    trace = StandInTrace("gru", [[gates]])
    page = series_page(trace, y, series_name="co2")
    _parse(page)
    _assert_self_contained(page)
    data = _data(page)
    assert data["mode"] == "series" and data["seriesName"] == "co2"
    np.testing.assert_allclose(data["series"], y, atol=1e-6)
    assert data["initialUnits"][0] == 4 and data["units"][0]["signal"] == "value"
    assert data["stats"]["0/0"]["halfLife"] is None  # a GRU has no forget gate
    assert "<svg" in page and "update z" in page
    assert _data(series_page(trace, y, units=[1, 2]))["initialUnits"] == [1, 2]


def test_bad_input_is_refused_with_a_clear_message(two_layer):
    expected = rf"text_page: expected one token per step \({len(TEXT)}\), got 3"
    with pytest.raises(ValueError, match=expected):
        text_page(two_layer, "abc")
    with pytest.raises(ValueError, match="series_page: expected one series value per step"):
        series_page(two_layer, np.zeros(3))
    with pytest.raises(ValueError, match="series_page: the series has non-finite values"):
        series_page(two_layer, np.full(len(TEXT), np.nan))
    with pytest.raises(ValueError, match=r"series_page: expected units in \[0, 6\), got \[9\]"):
        series_page(two_layer, np.zeros(len(TEXT)), units=[9])
    with pytest.raises(ValueError, match="expected max_steps >= 1"):
        text_page(two_layer, TEXT, max_steps=0)
    broken = random_lstm_trace(4, 2)
    broken._gates[0][0]["cell"][2, 1] = np.inf
    with pytest.raises(ValueError, match="gate 'cell' of layer 0 has non-finite values"):
        text_page(broken, "abcd")


def test_write_page_writes_atomically(tmp_path, two_layer):
    target = tmp_path / "lens.html"
    target.write_text("old")
    page = text_page(two_layer, TEXT)
    assert write_page(page, target) == target
    assert target.read_text(encoding="utf-8") == page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lens.html"]  # no temporary left
    with pytest.raises(FileNotFoundError):
        write_page(page, tmp_path / "missing" / "lens.html")
