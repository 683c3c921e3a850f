"""The lens page in a real browser: headless Chromium opens the page of a small trained text
model, the test changes the selected unit and checks that the colouring follows it, hovers a
step, and checks that the console stays free of errors.

Chromium is driven over its DevTools protocol on a pipe (``--remote-debugging-pipe``: it
reads commands on fd 3 and writes answers and events on fd 4, each a JSON message ended by
a NUL byte), so no Python package and no network port are needed. Needs Debian's
``chromium`` package (``apt-get install -y chromium``); skipped with a message without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import lstmlens
from lstmlens.data.text import build_tokenizer
from lstmlens.lens.html import text_page, write_page
from lstmlens.lens.stats import one_sequence
from lstmlens.tasks.language import LanguageModel

pytestmark = pytest.mark.browser

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1280,900",
)
CORPUS = (
    'First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\n"Speak, speak."\n\n'
    "First Citizen:\nYou are all resolved (rather) to die than to famish?\n\n"
    'All:\nResolved. "Resolved."\n\nFirst Citizen:\nFirst, you know Caius Marcius is chief '
    "enemy to the people.\n\nAll:\nWe know't, we know't (we do).\n\n"
)


def find_chromium() -> str | None:
    """The Chromium executable, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


class Chromium:
    """A headless Chromium and its DevTools protocol over a pipe (fd 3 in, fd 4 out)."""

    def __init__(self, exe: str, profile: Path, log: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        args = [exe, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe"]
        actions = [
            (os.POSIX_SPAWN_DUP2, to_chrome_r, 3),
            (os.POSIX_SPAWN_DUP2, from_chrome_w, 4),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, str(log), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        ]
        self.pid = os.posix_spawn(exe, [*args, "about:blank"], os.environ, file_actions=actions)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_chrome], [], [], max(deadline - time.time(), 0))
            if not ready:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise ConnectionError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.time() + 30
        while True:
            answer = self._receive(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]
            self.events.append(answer)

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (OSError, RuntimeError, TimeoutError, ConnectionError):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)  # only the browser this test started
        os.waitpid(self.pid, 0)
        os.close(self._to_chrome)
        os.close(self._from_chrome)


class Page:
    """One tab: evaluate JavaScript, move the mouse, and list the console's errors."""

    def __init__(self, browser: Chromium, url: str) -> None:
        self.browser = browser
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.target = target
        attach = {"targetId": target, "flatten": True}
        self.session = browser.call("Target.attachToTarget", attach)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            browser.call(f"{domain}.enable", session=self.session)
        browser.call("Page.navigate", {"url": url}, session=self.session)
        deadline = time.time() + 20
        while self.js("document.body && document.body.dataset.ready") != "1":
            if self.errors() or time.time() > deadline:
                raise TimeoutError(f"the page never became ready; errors: {self.errors()}")
            time.sleep(0.05)

    def js(self, expression: str):
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        result = self.browser.call("Runtime.evaluate", params, session=self.session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def mouse_move(self, x: float, y: float) -> None:
        params = {"type": "mouseMoved", "x": x, "y": y}
        self.browser.call("Input.dispatchMouseEvent", params, session=self.session)

    def errors(self) -> list[str]:
        """Uncaught exceptions, console.error / console.assert, and error log entries."""
        found = []
        for e in self.browser.events:
            if e.get("sessionId") != self.session:
                continue
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(json.dumps(p["exceptionDetails"])[:300])
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                found.append(json.dumps(p.get("args"))[:300])
            elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
                found.append(p["entry"].get("text", "")[:300])
        return found

    def close(self) -> None:
        self.browser.call("Target.closeTarget", {"targetId": self.target})


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    exe = find_chromium()
    if exe is None:
        pytest.skip(
            "headless Chromium not found: install Debian's `chromium` package "
            "(apt-get install -y chromium) to run the browser test"
        )
    folder = tmp_path_factory.mktemp("chromium")
    b = None
    try:
        b = Chromium(exe, folder / "profile", folder / "chromium.log")
        b.call("Browser.getVersion")
    except (OSError, TimeoutError, ConnectionError) as e:
        if b is not None:
            b.close()
        log = (folder / "chromium.log").read_text(errors="replace")[-500:]
        pytest.skip(f"{exe} is installed but did not start headless ({e}); its log ends: {log}")
    yield b
    b.close()


@pytest.fixture(scope="module")
def lens(tmp_path_factory):
    """(trace, tokens, path) of the lens page of a small text model trained for a moment."""
    torch.manual_seed(0)
    tokenizer = build_tokenizer(CORPUS, "char")
    model = LanguageModel(tokenizer, embed_size=12, hidden_size=16)
    data = torch.tensor(tokenizer.encode(CORPUS * 4), dtype=torch.long)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(60):
        starts = torch.randint(0, len(data) - 33, (16,))
        batch = torch.stack([data[s : s + 33] for s in starts.tolist()])  # (16, 33)
        logits, _ = model(batch[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 2.5  # it learned something (uniform over the vocabulary: ~3.3)
    model.eval()
    tokens = tokenizer.split(CORPUS)
    ids = torch.tensor([tokenizer.encode(CORPUS)], dtype=torch.long)  # (1, T)
    trace = lstmlens.inspect(model, ids)
    path = tmp_path_factory.mktemp("lens") / "lens.html"
    write_page(text_page(trace, list(tokenizer.pieces(tokens))), path)
    return trace, tokens, path


@pytest.fixture
def page(browser, lens):
    p = Page(browser, lens[2].as_uri())
    yield p
    p.close()


def _forget(lens, unit: int) -> np.ndarray:
    trace = lens[0]
    f = one_sequence(trace.gate("forget"), lengths=trace.lengths, batch_first=trace.batch_first)
    return f[:, unit]


def _select(page: Page, select_id: str, value) -> None:
    page.js(
        f"(() => {{ const s = document.getElementById({select_id!r}); s.value = {str(value)!r};"
        " s.dispatchEvent(new Event('change', {bubbles: true})); })()"
    )


def _colours(page: Page) -> list[str]:
    return page.js(
        "Array.from(document.querySelectorAll('#text span[data-step]'),"
        " s => s.style.backgroundColor)"
    )


def _forget_from_colour(colours: list[str]) -> np.ndarray:
    # page.js paints a sigmoid gate x as rgb(255 - 175 x, 255 - 105 x, 255 - 25 x)
    red = np.array([int(c.split("(")[1].split(",")[0]) for c in colours], dtype=np.float64)
    return (255.0 - red) / 175.0


def test_changing_the_unit_recolours_the_text(page, lens):
    trace, tokens, _ = lens
    assert page.js("document.querySelectorAll('#text span[data-step]').length") == len(tokens)
    _select(page, "layer", 0)
    _select(page, "gate", "forget")
    _select(page, "unit", 0)
    before = _colours(page)
    np.testing.assert_allclose(_forget_from_colour(before), _forget(lens, 0), atol=0.01)
    # the unit whose forget gate differs most from unit 0's
    gaps = [np.abs(_forget(lens, u) - _forget(lens, 0)).max() for u in range(trace.hidden_size)]
    other = int(np.argmax(gaps))
    assert gaps[other] > 0.1
    _select(page, "unit", other)
    after = _colours(page)
    assert after != before
    np.testing.assert_allclose(_forget_from_colour(after), _forget(lens, other), atol=0.01)
    assert page.js("document.getElementById('unit-card').textContent").count(f"unit {other}") == 1
    assert page.errors() == []


def test_hovering_a_step_shows_every_gate(page, lens):
    _select(page, "unit", 3)
    step = 7
    box = page.js(
        f"(() => {{ const r = document.querySelector('#text span[data-step=\"{step}\"]')"
        ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
    )
    page.mouse_move(*box)
    tip = page.js(
        "(() => { const t = document.getElementById('tip');"
        " return t.hidden ? null : t.textContent; })()"
    )
    assert tip is not None
    for name in lens[0].gate_names:
        assert name in tip
    assert f"{_forget(lens, 3)[step]:.3f}" in tip
    assert page.errors() == []


def test_the_interpretable_units_list_selects_a_unit(page):
    units = page.js("JSON.parse(document.getElementById('lens-data').textContent).units")
    assert units, "the page lists no interpretable unit"
    page.js("document.querySelector('#top-units button').click()")
    assert page.js("document.getElementById('unit').value") == str(units[0]["unit"])
    assert page.js("document.getElementById('gate').value") == units[0]["gate"]
    assert page.errors() == []
