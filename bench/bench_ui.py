"""How fast the dashboard answers in a real browser (headless Debian Chromium, Playwright).

(a) First chart: from starting the server process to the first page drawing its first chart (a cold
    server each time: imports, first cached computations, the browser's first paint).
(b) Slider step, every page: the sidebar's "Hidden units H" slider moved one step (ArrowRight and
    ArrowLeft alternately, so after the first steps both values are cached: the defaults' own cost),
    timed from the key press to three moments: the server's end of the rerun it caused, on the wire
    (its ``script_finished`` leaving the server, timestamped by a pass-through proxy in front of it,
    tests/browser/wire.py); the page reading that message (Chromium's websocket event, which waits for
    whatever the page's main thread is drawing); the page standing still again (its last change before
    150 ms without one: charts redrawn).
Baseline, in the same run and interleaved step for step with (b), so machine load hits both alike: a
bare Streamlit page with one slider and nothing else (bench/bare_slider.py) on its own server, the
same step measured the same ways, through a proxy of its own. The table gives each clock's median and
the ratio of medians; the goal (<= 1.5x the bare page) is read on the wire.

    python bench/bench_ui.py                      # defaults: 3 cold starts, 12 steps per page
    python bench/bench_ui.py --cold 1 --steps 6   # quicker
    python bench/bench_ui.py --cold 0 --steps 8 --pages gradient_flow,overview   # those pages' steps only
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "browser"))

import harness as H  # noqa: E402
from wire import WireClock  # noqa: E402

from dashboard.page_table import PAGES  # noqa: E402

SLIDER_LABEL = "Hidden units H"  # the sidebar slider (b) moves, and the bare page's one slider
BARE = "bench/bare_slider.py"


def first_page_ready(pw, path: str, runs: int, script: str = "app.py") -> list[dict]:
    """Cold server each run; the browser is launched beforehand and not counted."""
    out = []
    browser = H.launch_chromium(pw)
    try:
        for _ in range(runs):
            ctx = browser.new_context(viewport=H.VIEWPORT)
            page = ctx.new_page()
            watcher = H.RerunWatcher(page)
            srv = H.StreamlitServer(script=script)
            try:
                srv.start()
                page.goto(f"{srv.url}/{path}", wait_until="domcontentloaded", timeout=60_000)
                ready, charts = first_chart(page, srv.started_at)
                H.wait_idle(page, watcher, 0, timeout=60)
                H.wait_charts(page, 0)  # fails on an exception box
                out.append(
                    {
                        "healthy": srv.healthy_after,
                        "ready": ready,
                        "finished": watcher.last_finished_at - srv.started_at,
                        "charts": charts,
                    }
                )
            finally:
                ctx.close()
                srv.stop()
    finally:
        browser.close()
    return out


def first_chart(page, t_start: float, timeout: float = 60.0) -> tuple[float, int]:
    """Seconds from ``t_start`` until the page's first figure is drawn: a Plotly chart holding its
    SVG, or a static SVG figure loaded (polled every 5 ms). Returns (seconds, Plotly charts drawn by
    then). Fails on an exception box."""
    drawn = f"{H.PLOT} svg.main-svg"
    while time.perf_counter() - t_start < timeout:
        if page.locator(drawn).count() or H.drawn_static_figures(page):
            return time.perf_counter() - t_start, page.locator(drawn).count()
        if page.locator(H.EXCEPTION).count():
            raise H.PageError(page.locator(H.EXCEPTION).first.inner_text())
        page.wait_for_timeout(5)
    raise TimeoutError(f"no chart drawn {timeout:.0f} s after the server started")


PLOTLY_FIRST = "gradient-flow"  # a cold start straight onto a page of Plotly charts
NO_CHART_AT_DEFAULTS = (
    "overview",
    "runs",
)  # Overview: its one figure is static SVG, not a Plotly chart  # the Runs page draws once a run folder exists


# The page's own clock: the key press, and the last change to the page (a MutationObserver, always on).
PAGE_CLOCK_JS = """
window.__bench = {key: 0, last: 0};
document.addEventListener('keydown', () => { window.__bench.key = performance.now(); }, true);
new MutationObserver(() => { window.__bench.last = performance.now(); })
    .observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
"""


@dataclass
class Step:
    """One slider step, in seconds from the key press."""

    wire: float  # the server's script_finished leaves the server (wire.WireClock, a proxy in front of it)
    page: float  # the page's main thread reads it (Chromium's websocket event: after what it was drawing)
    drawn: float  # the page's last change before it stood still for 150 ms (charts redrawn), or ``page``
    server: float  # on the wire: the rerun's first "script is running" -> its script_finished


class Tab:
    """One browser tab on one page, through its own WireClock, with the slider (b) moves."""

    def __init__(self, browser, url: str, charts: int = 0, label: str = SLIDER_LABEL):
        parts = urlsplit(url)
        self.wire = WireClock(parts.port).__enter__()
        self.ctx = browser.new_context(viewport=H.VIEWPORT)
        self.ctx.add_init_script(PAGE_CLOCK_JS)
        self.page = self.ctx.new_page()
        self.watcher = H.RerunWatcher(self.page)
        H.open_page(self.page, parts._replace(netloc=f"127.0.0.1:{self.wire.port}").geturl(), self.watcher, timeout=120)
        H.wait_charts(self.page, charts, timeout=180)  # a background job (Clipping's twins) draws when it is done
        self.slider = H.slider(self.page, label)
        self.slider.wait_for(state="attached")
        self.i = 0

    def step(self) -> Step:
        """One slider step, timed three ways (:class:`Step`); the page settles before and after."""
        self.page.bring_to_front()
        H.settle(self.page)
        n, w = self.watcher.finished, self.wire.finished
        self.slider.focus()
        t0 = time.perf_counter()
        self.page.keyboard.press("ArrowRight" if self.i % 2 == 0 else "ArrowLeft")
        self.i += 1
        self.watcher.wait_finished(n, timeout=120)
        self.wire.wait_finished(w, timeout=10)  # it left the server before the page read it
        assert self.wire.finished == w + 1 and self.watcher.finished == n + 1, "one step, one rerun"
        assert self.wire.error is None, self.wire.error
        H.wait_idle(self.page, timeout=120)
        problems = H.problems(self.page)
        assert not problems["exceptions"], f"{self.page.url}: {problems}"
        clock = self.page.evaluate("window.__bench")
        started = self.wire.last_started_at
        return Step(
            wire=self.wire.last_finished_at - t0,
            page=self.watcher.last_finished_at - t0,
            # a rerun that changes nothing on the page (the bare one) is drawn once the page has read it
            drawn=max((clock["last"] - clock["key"]) / 1e3, self.watcher.last_finished_at - t0),
            server=self.wire.last_finished_at - started if started > t0 else float("nan"),
        )

    def close(self) -> None:
        self.ctx.close()
        self.wire.__exit__()


def every_page_step(
    pw, app: H.StreamlitServer, bare: H.StreamlitServer, steps: int, warmup: int = 2, only: tuple[str, ...] = ()
) -> dict[str, tuple[list[Step], list[Step]]]:
    """page key -> (its steps, the bare page's steps taken between them, one for one)."""
    browser = H.launch_chromium(pw)
    try:
        base = Tab(browser, bare.url)
        out = {}
        root = Tab(browser, app.url)  # the root first: the router registers the pages
        root.close()
        for info in PAGES:
            if only and info.key not in only:
                continue
            charts = 0 if info.key in NO_CHART_AT_DEFAULTS else 1
            tab = Tab(browser, f"{app.url}/{info.url_path if info.key != 'overview' else ''}", charts=charts)
            mine, theirs = [], []
            for i in range(warmup + steps):
                a, b = tab.step(), base.step()
                if i >= warmup:
                    mine.append(a)
                    theirs.append(b)
            out[info.key] = (mine, theirs)
            tab.close()
        base.close()
        return out
    finally:
        browser.close()


CLOCKS = ("wire", "page", "drawn")


def _ms(values: list[float]) -> str:
    ok = [v for v in values if v == v]  # a rerun whose start was not seen is NaN
    return f"{statistics.median(ok) * 1e3:.0f} ms" if ok else "n/a"


def table_rows(times: dict[str, tuple[list[Step], list[Step]]]) -> list[str]:
    """The bare page's row, then one per page: each clock's median and its ratio to the bare page's
    steps taken between that page's (the goal, <= 1.5x, read on the wire)."""
    every_bare = [b for _, theirs in times.values() for b in theirs]

    def col(steps, attr):
        return [getattr(s, attr) for s in steps]

    rows = [
        "| bare page, one slider (bench/bare_slider.py) | "
        + " | ".join(f"{_ms(col(every_bare, c))} | 1.00×" for c in CLOCKS)
        + f" | {_ms(col(every_bare, 'server'))} |"
    ]
    for key, (mine, theirs) in times.items():
        cells = []
        for c in CLOCKS:
            ratio = statistics.median(col(mine, c)) / statistics.median(col(theirs, c))
            mark = (" ✓" if ratio <= 1.5 else " ✗") if c == "wire" else ""
            cells.append(f"{_ms(col(mine, c))} | {ratio:.2f}×{mark}")
        rows.append(f"| {key} | " + " | ".join(cells) + f" | {_ms(col(mine, 'server'))} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cold", type=int, default=3, help="cold server starts for (a)")
    ap.add_argument("--steps", type=int, default=12, help="slider steps per page (and as many on the bare page)")
    ap.add_argument("--first-path", default="", help="URL path of the first page for (a) ('' = the default page)")
    ap.add_argument("--pages", default="", help="comma-separated page keys to step (default: every page)")
    args = ap.parse_args()
    only = tuple(k for k in args.pages.split(",") if k)
    assert not set(only) - {p.key for p in PAGES}, f"--pages: known keys are {[p.key for p in PAGES]}"
    assert 0 <= args.cold <= 10 and 2 <= args.steps <= 200, "--cold in [0, 10], --steps in [2, 200]"

    from playwright.sync_api import sync_playwright

    load_before = os.getloadavg()
    with sync_playwright() as pw:
        cold = first_page_ready(pw, args.first_path, args.cold)
        cold_plotly = first_page_ready(pw, PLOTLY_FIRST, args.cold)  # the first Plotly chart a visitor meets
        with H.StreamlitServer(script=BARE) as bare, H.StreamlitServer() as app:
            times = every_page_step(pw, app, bare, args.steps, only=only)
        chromium = H.launch_chromium(pw)
        version = chromium.version
        chromium.close()
    load_after = os.getloadavg()

    import streamlit

    chart_s = [c["ready"] for c in cold]
    plotly_s = [c["ready"] for c in cold_plotly]
    print("\nraw (ms, wire / page / drawn):")
    print("  first chart:", [{k: round(v, 3) for k, v in c.items()} for c in cold])
    for key, (mine, theirs) in times.items():
        for who, steps in ((key, mine), ("  bare", theirs)):
            print(f"  {who}: " + " ".join(f"{s.wire * 1e3:.0f}/{s.page * 1e3:.0f}/{s.drawn * 1e3:.0f}" for s in steps))
    cmd = f"python bench/bench_ui.py --cold {args.cold} --steps {args.steps}"
    rows = table_rows(times)
    print(
        f"""
#### Browser timings (`{cmd}`)

Headless Chromium {version}, Streamlit {streamlit.__version__}, {os.cpu_count()} CPU cores
({platform.machine()}), load average {load_before[0]:.1f} before / {load_after[0]:.1f} after.
Sidebar "{SLIDER_LABEL}" moved one step on each page at the defaults ({args.steps} steps per page, interleaved
with as many on the bare page), timed from the key press to: the server's end of the rerun on the wire (its
script_finished leaving the server: the goal, ≤ 1.5× the bare page); the page reading it (Chromium's websocket
event, after whatever the page was drawing); the page standing still (its last change, charts redrawn).

| page | on the wire | ratio | read by the page | ratio | drawn | ratio | the server's rerun on the wire |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

"""
    )
    if cold:
        print(
            f"""First chart after a cold server start ({len(chart_s)} starts, "/{args.first_path}"): median
{statistics.median(chart_s):.2f} s, max {max(chart_s):.2f} s (goal ≤ 3 s). The first Plotly chart, on a
cold server opened at "/{PLOTLY_FIRST}" (the browser loads Plotly's script first): median
{statistics.median(plotly_s):.2f} s, max {max(plotly_s):.2f} s.
"""
        )


if __name__ == "__main__":
    main()
