"""Shared helpers for driving the dashboard in a real browser: one copy, used by tests/browser and bench/.

A Streamlit server is started as a subprocess on a free loopback port (its own process group, so
stopping it also stops anything it spawned), and Debian's headless Chromium is driven with the
Playwright sync API. "The rerun has finished" is read from the protocol itself: every ForwardMsg
the server sends over the websocket is decoded, and a ``script_finished`` message ends a rerun.
Then the page is given until its Plotly charts hold SVG again. Every wait is bounded.

Never ``playwright install``: the browser is /usr/bin/chromium.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1400, "height": 900}  # screenshots are taken 1400 px wide

PLOT = ".js-plotly-plot"  # one per rendered Plotly figure (the graph div Plotly draws into)
EXCEPTION = '[data-testid="stException"]'
ERROR_ALERT = '[data-testid="stAlertContentError"]'
WARNING_ALERT = '[data-testid="stAlertContentWarning"]'
# Streamlit's react-aria slider: the thumb is a visually hidden <input type="range"> (implicit role slider).
THUMB = 'input[type="range"], [role="slider"]'
SLIDER = '[data-testid="stSlider"] input[type="range"], [data-testid="stSlider"] [role="slider"]'


# ----------------------------------------------------------------------------------------------
# the server


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback only)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class StreamlitServer:
    """`streamlit run app.py` on 127.0.0.1 in its own process group; use as a context manager.

    ``command``: another command that serves the dashboard on ``port`` (an installed ``bptt-explorer``),
    run in ``cwd`` with ``env`` added to the environment."""

    script: str = "app.py"
    port: int = field(default_factory=free_port)
    startup_timeout: float = 60.0
    extra_args: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    cwd: Path = ROOT
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    started_at: float = 0.0  # time.perf_counter() just before Popen
    healthy_after: float = 0.0  # seconds from Popen to the first "ok" from /_stcore/health
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StreamlitServer:
        cmd = [
            sys.executable, "-m", "streamlit", "run", self.script,
            "--server.headless", "true",
            "--server.port", str(self.port),
            "--server.address", "127.0.0.1",
            "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none",  # no reloads while other helpers edit files
            *self.extra_args,
        ]  # fmt: skip
        cmd = list(self.command) or cmd
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / f"streamlit-{self.port}.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        log.close()
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        self.healthy_after = time.perf_counter() - self.started_at
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200 and r.read().strip() == b"ok":
                        return
            time.sleep(0.05)
        raise TimeoutError(f"streamlit not healthy after {self.startup_timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, n: int | None = 4000) -> str:
        """The last ``n`` characters of the server's output (all of it for ``n=None``)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace")
        return text if n is None else text[-n:]

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = self.proc.pid  # start_new_session: the group id is the child's pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=timeout)

    def __enter__(self) -> StreamlitServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ----------------------------------------------------------------------------------------------
# the browser


def launch_chromium(playwright, **kw):
    """Debian's chromium, headless, with the flags that keep it quiet and sandbox-free in CI."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, **kw)


def parse_message(proto, payload):
    """``payload`` read as a ``proto`` message (the server's ForwardMsg, the browser's BackMsg), or None
    for a text frame or bytes that are not one."""
    if isinstance(payload, str):
        return None
    msg = proto()
    try:
        msg.ParseFromString(payload)
    except Exception:  # noqa: BLE001 - not such a message: nothing to count
        return None
    return msg


class RerunWatcher:
    """Counts finished reruns by decoding the ForwardMsgs the server pushes over the websocket.

    Attach before navigating. ``finished`` grows by one for every ``script_finished`` message;
    ``running`` mirrors the server's own "script is running" flag.
    """

    def __init__(self, page):
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # the server's own protocol

        self._ForwardMsg = ForwardMsg
        self.finished = 0
        self.started = 0  # script runs the server said it started
        self.running = False
        self.statuses: list[int] = []
        self.last_finished_at = 0.0
        self.last_started_at = 0.0  # when the server said a rerun began (its first message of the rerun)
        self.socket = None  # the page's current Streamlit websocket (Playwright's WebSocket)
        self._page = page
        page.on("websocket", self._on_socket)

    def _on_socket(self, ws) -> None:
        if "/_stcore/stream" in ws.url:
            self.socket = ws
            ws.on("framereceived", self._on_frame)

    def wait_finished(self, after: int, timeout: float) -> None:
        """Block until more than ``after`` reruns have finished, woken by the frames themselves rather
        than by polling round trips to the browser's driver (which took CPU from the server and the
        browser, on the same cores, while a step was being timed). A page that navigates opens a new
        websocket: the wait moves to it. TimeoutError after ``timeout`` seconds."""
        from playwright.sync_api import Error as PlaywrightError

        deadline = time.monotonic() + timeout
        while self.finished <= after:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no script_finished after {timeout:.0f} s")
            ws = self.socket
            if ws is None or ws.is_closed():  # not open yet, or replaced by a navigation
                self._page.wait_for_timeout(10)
                continue
            # in slices, so that a socket replaced meanwhile is noticed; Playwright's TimeoutError is an Error
            with contextlib.suppress(PlaywrightError):
                ws.wait_for_event(
                    "framereceived", predicate=lambda _: self.finished > after, timeout=min(left, 0.5) * 1000
                )

    def _on_frame(self, payload) -> None:
        msg = parse_message(self._ForwardMsg, payload)
        if msg is None:
            return
        kind = msg.WhichOneof("type")
        if kind == "session_status_changed":
            if msg.session_status_changed.script_is_running:
                self.started += 1
                if not self.running:
                    self.last_started_at = time.perf_counter()
            self.running = msg.session_status_changed.script_is_running
        elif kind == "new_session":
            self.started += 1
            if not self.running:
                self.last_started_at = time.perf_counter()
            self.running = True
        elif kind == "script_finished":
            self.statuses.append(msg.script_finished)
            self.running = False
            self.finished += 1
            self.last_finished_at = time.perf_counter()


# A Plotly graph div is "drawn" when it holds its main SVG and Plotly has attached data to it.
DRAWN_JS = """(sel) => Array.from(document.querySelectorAll(sel)).filter(
    g => g.querySelector('svg.main-svg') && Array.isArray(g.data) && g._fullLayout).length"""

# A fingerprint of every chart on the page: titles plus a hash of the traces' data.
SIGNATURES_JS = """(sel) => Array.from(document.querySelectorAll(sel)).map(g => {
    const s = JSON.stringify([g.layout && g.layout.title, g.data]);
    let h = 0;
    for (let i = 0; i < s.length; i++) { h = (Math.imul(31, h) + s.charCodeAt(i)) | 0; }
    const t = g.layout && g.layout.title;
    return ((t && (t.text ?? t)) || '') + '#' + s.length + ':' + h;
})"""


def drawn_static_figures(page) -> int:
    """Static SVG figures (dashboard.layout.diagram) whose image has loaded."""
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('.bptt-figure img')).filter(i => i.complete && i.naturalWidth > 0).length"
    )


def drawn_charts(page) -> int:
    return page.evaluate(DRAWN_JS, PLOT)


def chart_signatures(page) -> list[str]:
    return page.evaluate(SIGNATURES_JS, PLOT)


# True when the status widget does not say "Running" and no element is marked stale.
IDLE_JS = """() => {
    const s = document.querySelector('[data-testid="stStatusWidget"]');
    if (s && /Running/i.test(s.innerText)) return false;
    return !document.querySelector('[data-stale="true"]');
}"""


def wait_idle(page, watcher: RerunWatcher | None = None, after: int | None = None, timeout: float = 30.0) -> None:
    """Wait until the rerun has finished: the server said so (``watcher.finished > after``), the
    status widget no longer says "Running", and no element is marked stale."""
    deadline = time.monotonic() + timeout
    if watcher is not None and after is not None:
        watcher.wait_finished(after, timeout)
    remaining_ms = max(1.0, (deadline - time.monotonic()) * 1000)
    page.wait_for_function(IDLE_JS, timeout=remaining_ms, polling=20)
    settle(page)


# Resolves once the DOM has not changed for `quiet` ms (false after `timeout` ms without a quiet spell).
QUIET_JS = """([quiet, timeout]) => new Promise(resolve => {
    let last = performance.now();
    const start = last;
    const obs = new MutationObserver(() => { last = performance.now(); });
    obs.observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
    const tick = () => {
        const now = performance.now();
        if (now - last >= quiet) { obs.disconnect(); resolve(true); }
        else if (now - start > timeout) { obs.disconnect(); resolve(false); }
        else setTimeout(tick, 20);
    };
    setTimeout(tick, 20);
})"""


def settle(page, quiet_ms: int = 150, timeout: float = 10.0) -> bool:
    """Let the front end finish drawing what the server sent: wait until the DOM has not changed
    for ``quiet_ms`` (a MutationObserver), at most ``timeout`` s. The websocket frame that ends a
    rerun reaches us before React has committed the deltas before it, so this gap is real."""
    return page.evaluate(QUIET_JS, [quiet_ms, timeout * 1000])


class PageError(AssertionError):
    """The page showed an exception box while we waited for it."""


def wait_charts(page, minimum: int, timeout: float = 30.0) -> int:
    """Wait until at least ``minimum`` Plotly charts are drawn (SVG present, data attached).
    Fails at once, with the exception's text, if the page shows an exception box instead."""
    if minimum > 0:
        page.wait_for_function(
            f"""(sel) => document.querySelector('{EXCEPTION}') || ({DRAWN_JS})(sel) >= {int(minimum)}""",
            arg=PLOT,
            timeout=timeout * 1000,
            polling=20,
        )
    exceptions = page.locator(EXCEPTION).all_inner_texts()
    if exceptions:
        raise PageError(f"exception on {page.url}:\n" + "\n---\n".join(exceptions))
    return drawn_charts(page)


# True once the charts' fingerprints differ from `before` and at least as many charts are drawn.
SIGNATURE_CHANGED_JS = f"""([sel, before]) => {{
    const now = ({SIGNATURES_JS})(sel);
    return now.length >= before.length && JSON.stringify(now) !== JSON.stringify(before)
        && ({DRAWN_JS})(sel) >= before.length;
}}"""


def wait_signature_change(page, before: list[str], timeout: float = 30.0) -> list[str]:
    """Wait until the charts' fingerprints differ from ``before`` (same count of charts drawn)."""
    page.wait_for_function(SIGNATURE_CHANGED_JS, arg=[PLOT, before], timeout=timeout * 1000, polling="raf")
    return chart_signatures(page)


def open_page(page, url: str, watcher: RerunWatcher | None = None, charts: int = 0, timeout: float = 60.0) -> None:
    """Navigate, wait for the first rerun to finish and ``charts`` charts to be drawn."""
    before = watcher.finished if watcher else None
    page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000)
    page.wait_for_selector('[data-testid="stAppViewContainer"]', timeout=timeout * 1000)
    wait_idle(page, watcher, before, timeout=timeout)
    if charts > 0:
        # Fail fast when the rerun is over and the page simply has fewer charts (drawn or still
        # loading behind a skeleton) than asked for, rather than waiting out the timeout.
        placed = page.locator('[data-testid="stPlotlyChart"], [data-testid="stSkeleton"]').count()
        if placed < charts and not page.locator(EXCEPTION).count():
            raise PageError(f"{page.url}: {placed} charts on the page after the rerun, expected at least {charts}")
    wait_charts(page, charts, timeout=timeout)


def slider(page, label: str):
    """The thumb of the (first) slider whose label contains ``label``: focus it and press arrows."""
    return page.locator('[data-testid="stSlider"]').filter(has_text=label).locator(THUMB).first


def query_params(page) -> dict[str, list[str]]:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(page.url).query)


def problems(page) -> dict[str, list[str]]:
    """The exception boxes and error alerts on the page, as text (empty lists when all is well)."""
    return {
        "exceptions": page.locator(EXCEPTION).all_inner_texts(),
        "errors": page.locator(ERROR_ALERT).all_inner_texts(),
    }


def screenshot(page, name: str) -> Path:
    """A full-page PNG at artifacts/screenshots/<name>.png.

    Streamlit scrolls inside its own container, so the page is first made as tall as its content
    (otherwise a "full page" shot stops at the viewport)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    height = page.evaluate(
        """() => {
            const c = document.querySelector('[data-testid="stMain"]')
                || document.querySelector('[data-testid="stAppViewContainer"]');
            return Math.max(c ? c.scrollHeight : 0, document.body.scrollHeight);
        }"""
    )
    old = page.viewport_size
    page.set_viewport_size({"width": old["width"], "height": min(max(int(height) + 40, old["height"]), 12000)})
    page.wait_for_timeout(300)  # let Plotly re-layout at the new size
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(old)
    return path


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]) of a non-empty list."""
    assert values, "percentile of an empty list"
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q / 100 * (len(s) - 1))))
    return s[k]
