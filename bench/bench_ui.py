"""How fast the dashboard answers in a real browser (headless Debian Chromium, Playwright).

(a) First page ready: from starting the server process to the first page showing its first chart
    (a cold server each time: imports, first cached computations, the browser's first paint).
(b) Slider step: on the Gradient flow page at the default settings, ArrowRight / ArrowLeft
    alternately on one slider; time from the key press until the server has finished the rerun
    and the chart on the page holds the new figure.
Baseline, in the same run and interleaved with (b) so machine load hits both alike: a no-op rerun
(Streamlit's own "r" shortcut, same settings, everything cached), i.e. what any rerun of this page
costs before the slider's own work.

    python bench/bench_ui.py                      # defaults: 3 cold starts, 20 steps
    python bench/bench_ui.py --cold 1 --steps 10  # quicker
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "browser"))

import harness as H  # noqa: E402

# Where (b) runs and which slider it moves (the label the page gives the slider).
PAGE = "gradient-flow"
SLIDER_LABEL = "Sequence length T"


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
    """Seconds from ``t_start`` until the first Plotly chart on the page holds its SVG (polled
    every 5 ms). Returns (seconds, charts drawn by then). Fails on an exception box."""
    drawn = f"{H.PLOT} svg.main-svg"
    while time.perf_counter() - t_start < timeout:
        if page.locator(drawn).count():
            return time.perf_counter() - t_start, page.locator(H.PLOT).count()
        if page.locator(H.EXCEPTION).count():
            raise H.PageError(page.locator(H.EXCEPTION).first.inner_text())
        page.wait_for_timeout(5)
    raise TimeoutError(f"no chart drawn {timeout:.0f} s after the server started")


def _blur(page) -> None:
    page.evaluate("() => document.activeElement && document.activeElement.blur()")


def slider_and_noop(
    pw, srv: H.StreamlitServer, steps: int, page_path: str = PAGE, slider_label: str = SLIDER_LABEL, warmup: int = 2
) -> tuple[list[float], list[float], str]:
    """Interleaved: one slider step, one no-op rerun, ... Returns (step times, no-op times, slider)."""
    browser = H.launch_chromium(pw)
    try:
        ctx = browser.new_context(viewport=H.VIEWPORT)
        page = ctx.new_page()
        watcher = H.RerunWatcher(page)
        H.open_page(page, srv.url, watcher)  # the root first: the router registers the pages
        H.open_page(page, f"{srv.url}/{page_path}", watcher, charts=1)
        slider = H.slider(page, slider_label)
        slider.wait_for(state="attached")
        label = slider.get_attribute("aria-label") or slider_label
        step_t, noop_t = [], []
        for i in range(warmup + steps):
            # the slider step: press, then wait for the server's "finished" and the new chart
            before = H.chart_signatures(page)
            n = watcher.finished
            slider.focus()
            t0 = time.perf_counter()
            page.keyboard.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")
            H.wait_signature_change(page, before, timeout=60)
            while watcher.finished <= n:
                page.wait_for_timeout(2)
            t_step = max(time.perf_counter(), watcher.last_finished_at) - t0
            H.settle(page)
            # the baseline: a rerun with nothing changed
            _blur(page)
            n = watcher.finished
            t0 = time.perf_counter()
            page.keyboard.press("r")
            while watcher.finished <= n:
                if time.perf_counter() - t0 > 60:
                    raise TimeoutError("the 'r' rerun did not finish in 60 s")
                page.wait_for_timeout(2)
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            t_noop = time.perf_counter() - t0
            H.settle(page)
            if i >= warmup:
                step_t.append(t_step)
                noop_t.append(t_noop)
        problems = H.problems(page)
        assert not any(problems.values()), f"the page showed errors: {problems}"
        ctx.close()
        return step_t, noop_t, label
    finally:
        browser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cold", type=int, default=3, help="cold server starts for (a)")
    ap.add_argument("--steps", type=int, default=20, help="slider steps (and as many no-op reruns) for (b)")
    ap.add_argument("--first-path", default="", help="URL path of the first page for (a) ('' = the default page)")
    ap.add_argument("--page", default=PAGE, help="URL path of the page for (b)")
    ap.add_argument("--slider", default=SLIDER_LABEL, help="label of the slider (b) moves")
    ap.add_argument("--script", default="app.py", help="the Streamlit script (relative to the repository root)")
    args = ap.parse_args()
    assert 1 <= args.cold <= 10 and 2 <= args.steps <= 200, "--cold in [1, 10], --steps in [2, 200]"

    from playwright.sync_api import sync_playwright

    load_before = os.getloadavg()
    with sync_playwright() as pw:
        cold = first_page_ready(pw, args.first_path, args.cold, args.script)
        with H.StreamlitServer(script=args.script) as srv:
            step_t, noop_t, label = slider_and_noop(pw, srv, args.steps, args.page, args.slider)
        chromium = H.launch_chromium(pw)
        version = chromium.version
        chromium.close()
    load_after = os.getloadavg()

    import streamlit

    chart_s = [c["ready"] for c in cold]
    med_step, med_noop = statistics.median(step_t), statistics.median(noop_t)
    cmd = f"python bench/bench_ui.py --cold {args.cold} --steps {args.steps}"
    print("\nraw (s):")
    print("  first page:", [{k: round(v, 3) for k, v in c.items()} for c in cold])
    print("  slider steps:", [round(t, 3) for t in step_t])
    print("  no-op reruns:", [round(t, 3) for t in noop_t])
    print(
        f"""
#### Browser timings (`{cmd}`)

Headless Chromium {version}, Streamlit {streamlit.__version__}, {os.cpu_count()} CPU cores
({platform.machine()}), load average {load_before[0]:.1f} before / {load_after[0]:.1f} after.

| measurement | median | p95 | goal |
|---|---|---|---|
| first page ready: server start → first chart drawn ({len(chart_s)} cold starts, "/{args.first_path}") | {statistics.median(chart_s):.2f} s | {max(chart_s):.2f} s (max) | ≤ 5 s |
| slider step ("{label}", {args.page}, defaults): key press → rerun finished, chart updated ({len(step_t)} steps) | {med_step:.3f} s | {H.percentile(step_t, 95):.3f} s | median ≤ 0.5 s |
| baseline: no-op rerun (same settings, "r"), interleaved with the steps | {med_noop:.3f} s | {H.percentile(noop_t, 95):.3f} s | |
| slider step / no-op rerun (medians) | {med_step / med_noop:.2f}× | | |
"""
    )


if __name__ == "__main__":
    main()
