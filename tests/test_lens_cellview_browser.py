"""The magnifier in headless Chromium: the cell view's numbers are the trace's and obey the
variant's update rule, the arrow keys step, clicking a saturation point selects its unit, and a
pattern search finds the planted places first; the console stays free of errors.

Chromium is driven as in ``test_lens_browser.py`` (DevTools protocol on a pipe).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

import lstmlens
from lstmlens import GRU, LSTM
from lstmlens.lens import memory_reach
from lstmlens.lens.html import text_page, write_page
from lstmlens.lens.stats import one_sequence
from test_lens_browser import Chromium, Page, find_chromium

pytestmark = pytest.mark.browser

TEXT = "the cat sat on the mat; a bear! the bear ran, and the bear slept. " * 3


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    exe = find_chromium()
    if exe is None:
        pytest.skip("headless Chromium not found: install Debian's `chromium` package")
    folder = tmp_path_factory.mktemp("chromium")
    b = Chromium(exe, folder / "profile", folder / "chromium.log")
    try:
        b.call("Browser.getVersion")
    except (OSError, TimeoutError, ConnectionError) as e:
        b.close()
        pytest.skip(f"{exe} did not start headless ({e})")
    yield b
    b.close()


def _page_of(layer, tmp_path, name: str) -> tuple[lstmlens.lens.Trace, str]:
    torch.manual_seed(0)
    x = torch.randn(len(TEXT), 1, layer.input_size)  # (T, 1, I): one step per character
    trace = lstmlens.inspect(layer, x)
    path = tmp_path / f"{name}.html"
    write_page(text_page(trace, TEXT), path)
    return trace, path.as_uri()


def _gate(trace, name: str) -> np.ndarray:
    return one_sequence(trace.gate(name), lengths=trace.lengths, batch_first=trace.batch_first)


def _numbers(page: Page) -> dict[str, float]:
    cells = page.js(
        "Array.from(document.querySelectorAll('#cell-numbers td[data-key]'),"
        " td => [td.dataset.key, td.dataset.value])"
    )
    return {k: float(v) if v else float("nan") for k, v in cells}


def _press(page: Page, key: str) -> None:
    for kind in ("keyDown", "keyUp"):
        params = {
            "type": kind,
            "key": key,
            "code": key,
            "windowsVirtualKeyCode": 39 if key == "ArrowRight" else 37,
        }
        page.browser.call("Input.dispatchKeyEvent", params, session=page.session)


@pytest.mark.parametrize("variant", ["vanilla", "cifg", "nfg"])
def test_cell_view_numbers_are_the_trace_and_obey_the_update_rule(browser, tmp_path, variant):
    trace, url = _page_of(LSTM(3, 6, variant=variant), tmp_path, variant)
    page = Page(browser, url)
    try:
        unit, t = 4, 17
        page.js(
            f"(() => {{ const s = document.getElementById('unit'); s.value = '{unit}';"
            " s.dispatchEvent(new Event('change')); })()"
        )
        page.js(
            f"(() => {{ const s = document.getElementById('step'); s.value = '{t}';"
            " s.dispatchEvent(new Event('change')); })()"
        )
        got = _numbers(page)
        keys = {
            "i": "input",
            "f": "forget",
            "g": "candidate",
            "o": "output",
            "c": "cell",
            "h": "hidden",
        }
        for key, name in keys.items():
            a = _gate(trace, name)  # (T, H)
            tol = 1e-6 + np.abs(a).max() / 32767  # the page stores int16 of the array's peak
            assert got[key] == pytest.approx(float(a[t, unit]), abs=tol), key
            if key in ("c", "h"):
                assert got[key + "_prev"] == pytest.approx(float(a[t - 1, unit]), abs=tol), key
        # the variant's own rule: c = f c_prev + i g (cifg: f = 1 - i; nfg: f = 1), h = o tanh(c)
        tol_c = 3 * np.abs(_gate(trace, "cell")).max() / 32767 + 1e-4
        assert got["c"] == pytest.approx(got["f"] * got["c_prev"] + got["i"] * got["g"], abs=tol_c)
        assert got["forget"] + got["learn"] == pytest.approx(got["c"], abs=tol_c)
        assert got["h"] == pytest.approx(got["o"] * np.tanh(got["c"]), abs=1e-3)
        if variant == "cifg":
            assert got["f"] == pytest.approx(1 - got["i"], abs=1e-4)
        if variant == "nfg":
            assert got["f"] == 1.0
            assert "no forget gate" in page.js(
                "document.getElementById('cell-captions').textContent"
            )
        caption = page.js("document.getElementById('cell-captions').textContent")
        assert f"{got['c']:.3f}" in caption
        assert page.js("document.querySelectorAll('#cell-svg [data-key]').length") > 5
        # arrow keys step t, the text cursor follows
        page.js("document.getElementById('cellview').focus()")
        _press(page, "ArrowRight")
        _press(page, "ArrowRight")
        _press(page, "ArrowLeft")
        assert page.js("document.getElementById('step').value") == str(t + 1)
        assert page.js("document.querySelector('#text span.current').dataset.step") == str(t + 1)
        after = float(_gate(trace, "cell")[t + 1, unit])
        assert _numbers(page)["c"] == pytest.approx(after, abs=tol_c)
        assert page.errors() == []
    finally:
        page.close()


def test_gru_cell_view_obeys_its_rule_and_a_scatter_click_selects_the_unit(browser, tmp_path):
    trace, url = _page_of(GRU(3, 5), tmp_path, "gru")
    page = Page(browser, url)
    try:
        page.js(
            "(() => { const s = document.getElementById('step'); s.value = '9';"
            " s.dispatchEvent(new Event('change')); })()"
        )
        page.js(
            'document.querySelector(\'#saturation svg[data-gate="update"] circle[data-unit="3"]\')'
            ".dispatchEvent(new MouseEvent('click', {bubbles: true}))"
        )
        assert page.js("document.getElementById('unit').value") == "3"
        assert page.js("document.getElementById('step-label').textContent").endswith("unit 3")
        got = _numbers(page)
        assert got["h"] == pytest.approx(float(_gate(trace, "hidden")[9, 3]), abs=2e-4)
        assert got["h"] == pytest.approx(
            (1 - got["z"]) * got["n"] + got["z"] * got["h_prev"], abs=1e-3
        )
        chosen = page.js("document.querySelectorAll('#saturation circle[r=\"5\"]').length")
        assert chosen == page.js("document.querySelectorAll('#saturation svg').length") == 2
        assert page.errors() == []
    finally:
        page.close()


class _Windows:
    """A stand-in forecaster for :func:`lstmlens.lens.pages.window_trace`: ``net`` reads
    the ``W`` rows of ``x`` (T, F) before each origin."""

    def __init__(self, net, x, window):
        self.net, self.x, self.window = net, x, window

    def inputs(self, series, origins):
        return torch.stack([self.x[o - self.window : o] for o in origins])  # (n, W, F)


def test_forecast_page_cell_view_reads_the_state_before_in_the_same_window(browser, tmp_path):
    """Rows of a forecast page are separate windows: h(t-1), c(t-1) are the window's own
    state one step before its end, not the previous row's."""
    from lstmlens.lens.html import series_page
    from lstmlens.lens.pages import window_trace

    torch.manual_seed(0)
    net, window = LSTM(2, 5, batch_first=True), 6
    x = torch.randn(40, 2)  # (T, F)
    origins = np.arange(window, 40)
    trace = window_trace(_Windows(net, x, window), None, origins)
    path = tmp_path / "forecast.html"
    write_page(series_page(trace, x[window - 1 : -1, 0].numpy(), reach_steps=0), path)
    page = Page(browser, path.as_uri())
    try:
        unit, row = 3, 11
        page.js(
            f"(() => {{ const s = document.getElementById('unit'); s.value = '{unit}';"
            " s.dispatchEvent(new Event('change')); })()"
        )
        page.js(
            f"(() => {{ const s = document.getElementById('step'); s.value = '{row}';"
            " s.dispatchEvent(new Event('change')); })()"
        )
        got = _numbers(page)
        with torch.no_grad():
            _, (h_read, c_read) = net(x[None, origins[row] - window : origins[row] - 1])
        assert got["h_prev"] == pytest.approx(float(h_read[0, 0, unit]), abs=2e-4)
        assert got["c_prev"] == pytest.approx(float(c_read[0, 0, unit]), abs=2e-4)
        assert got["c"] == pytest.approx(got["f"] * got["c_prev"] + got["i"] * got["g"], abs=1e-3)
        caption = page.js("document.getElementById('cell-captions').textContent")
        assert "one step earlier in that window" in caption
        assert page.errors() == []
    finally:
        page.close()


@pytest.mark.parametrize("shown", [None, 70])
def test_pattern_search_finds_the_planted_places_first(browser, tmp_path, shown):
    """Units 2, 5 and 7 fire together on every 'bear' (and nowhere else): select one 'bear'.

    With ``shown``, the page shows that many steps and searches the whole recorded corpus
    (uint8); the planted places beyond the shown steps are found too.
    """
    rng = np.random.default_rng(0)
    steps, hidden = len(TEXT), 12
    h = rng.uniform(-0.4, 0.45, (steps, hidden))  # (T, H)
    starts = [k for k in range(steps) if TEXT.startswith("bear", k)]
    decoys = [k for k in range(steps) if TEXT.startswith("cat", k)]
    for k in starts:
        h[k : k + 4, [2, 5, 7]] = 0.9
    for k in decoys:  # one unit of the pattern also fires on 'cat': a weaker match
        h[k : k + 4, [2, 9, 10]] = 0.9
    gates = {name: torch.tensor(h).unsqueeze(1).float() for name in ("hidden",)}  # (T, 1, H)
    trace = lstmlens.lens.Trace("rnn", 1, 1, hidden, False, True, None, _gates={(0, 0): gates})
    path = tmp_path / "pattern.html"
    corpus = None if shown is None else steps
    write_page(text_page(trace, TEXT, max_steps=shown, corpus_steps=corpus), path)
    page = Page(browser, path.as_uri())
    try:
        selected = starts[1]
        assert shown is None or (selected + 3 < shown < starts[-1])
        page.js(
            f"document.getElementById('pat-from').value = '{selected}';"
            f"document.getElementById('pat-to').value = '{selected + 3}';"
            "document.getElementById('pat-threshold').value = '0.5';"
            "document.getElementById('pat-search').click()"
        )
        found = page.js(
            "Array.from(document.querySelectorAll('#pat-results button'),"
            " b => [+b.dataset.step, +b.dataset.score])"
        )
        others = sorted(set(starts) - {selected})
        assert sorted(s for s, _ in found[: len(others)]) == others
        assert all(score == 1.0 for _, score in found[: len(others)])
        assert all(score < 1.0 for _, score in found[len(others) :])
        assert "bear" in page.js("document.querySelector('#pat-results mark').textContent")
        assert page.errors() == []
    finally:
        page.close()


def test_memory_reach_curve_and_shading(browser, tmp_path):
    layer = LSTM(3, 6).double()
    torch.manual_seed(0)
    x = torch.randn(len(TEXT), 1, 3, dtype=torch.float64)
    path = tmp_path / "reach.html"
    write_page(text_page(lstmlens.inspect(layer, x), TEXT), path)
    page = Page(browser, path.as_uri())
    try:
        reach = page.js("JSON.parse(document.getElementById('lens-data').textContent).reach")
        last = len(TEXT) - 1
        assert reach["steps"][-1] == last and len(reach["steps"]) == 4
        expected = memory_reach(layer, x, last)[:201]
        np.testing.assert_allclose(
            reach["curves"][str(last)], expected / expected[0], rtol=6e-3
        )  # 3 digits
        assert page.js("document.querySelectorAll('#reach-svg polyline').length") == 1
        read = "Array.from(document.querySelectorAll('#text span[data-step]'), s => s.style.backgroundColor)"
        before = page.js(read)
        page.js("document.getElementById('reach-shade').click()")
        colours = page.js(read)
        assert colours[last] == "rgb(255, 135, 40)"  # k = 0: reach 1, full orange
        assert colours[last - 1] != colours[last]
        page.js("document.getElementById('reach-shade').click()")
        assert page.js(read) == before  # the unit's colouring is back
        assert page.errors() == []
    finally:
        page.close()


@pytest.mark.slow
def test_a_page_of_20000_recorded_steps_of_512_units_loads_fast(browser, tmp_path):
    """Issue 15: 20,000 recorded steps of a 512-unit layer; the page shows 1,000 of them."""
    steps, hidden = 20_000, 512
    gen = torch.Generator().manual_seed(0)
    h = torch.rand(steps, 1, hidden, generator=gen) * 2 - 1  # (T, 1, H)
    trace = lstmlens.lens.Trace(
        "rnn", 1, 1, hidden, False, True, None, _gates={(0, 0): {"hidden": h}}
    )
    text = ("lorem ipsum dolor sit amet, " * 1000)[:steps]
    path = tmp_path / "big.html"
    write_page(text_page(trace, text, max_steps=1000, corpus_steps=steps), path)
    size_mb = path.stat().st_size / 1e6
    started = time.perf_counter()
    page = Page(browser, path.as_uri())  # returns once the page has drawn (body data-ready)
    seconds = time.perf_counter() - started
    try:
        print(f"\n20,000 x 512 page: {size_mb:.1f} MB, ready in {seconds:.2f} s")
        assert size_mb < 20
        assert seconds < 6  # issue target 2 s, measured ~1 s on an idle machine; shared CPUs
        page.js(
            "document.getElementById('pat-from').value = '10';"
            "document.getElementById('pat-to').value = '12';"
            "document.getElementById('pat-threshold').value = '0.2';"
            "document.getElementById('pat-search').click()"
        )
        assert "searched in 20000 steps" in page.js(
            "document.getElementById('pat-summary').textContent"
        )
        assert page.errors() == []
    finally:
        page.close()


def test_the_reverse_direction_steps_back_from_t_plus_one(browser, tmp_path):
    trace, url = _page_of(LSTM(3, 4, bidirectional=True), tmp_path, "bidirectional")
    page = Page(browser, url)
    try:
        page.js(
            "(() => { const s = document.getElementById('direction'); s.value = '1';"
            " s.dispatchEvent(new Event('change')); const t = document.getElementById('step');"
            " t.value = '10'; t.dispatchEvent(new Event('change')); })()"
        )
        got = _numbers(page)
        cell = one_sequence(trace.gate("cell", 0, 1))  # (T, H)
        unit = int(page.js("document.getElementById('unit').value"))
        tol = 1e-6 + np.abs(cell).max() / 32767
        assert got["c_prev"] == pytest.approx(float(cell[11, unit]), abs=tol)
        assert got["c"] == pytest.approx(
            got["f"] * got["c_prev"] + got["i"] * got["g"], abs=3 * tol
        )
        assert "Reverse direction" in page.js(
            "document.getElementById('cell-captions').textContent"
        )
        assert page.errors() == []
    finally:
        page.close()


def test_compare_page_a_scatter_click_selects_the_unit_in_every_gate(browser, tmp_path):
    from lstmlens import RNN
    from lstmlens.lens import compare_page

    torch.manual_seed(0)
    models = {"rnn": RNN(2, 5), "gru": GRU(2, 5), "lstm": LSTM(2, 5, variant="peephole")}
    path = tmp_path / "compare.html"
    write_page(compare_page(models, torch.randn(30, 2)), path)
    page = Page(browser, path.as_uri())
    try:
        page.js(
            'document.querySelector(\'.model[data-name="lstm"] svg[data-gate="forget"]'
            " circle[data-unit=\"3\"]').dispatchEvent(new MouseEvent('click', {bubbles: true}))"
        )
        chosen = page.js(
            "Array.from(document.querySelectorAll('circle.chosen'),"
            " c => [c.closest('.model').dataset.name, c.closest('svg').dataset.gate, c.dataset.unit])"
        )
        assert chosen == [["lstm", g, "3"] for g in ("input", "forget", "output")]
        assert page.js("document.getElementById('picked').textContent").startswith("lstm, unit 3")
        assert page.errors() == []
    finally:
        page.close()
