"""A lecture hall on one server: many concurrent browser sessions against a single Streamlit process.

Each session (its own browser context, so its own Streamlit session) opens the Gradient flow page,
chooses a preset, then acts a bounded number of times, always to settings it has not had before, so
the server keeps computing new results and its caches keep receiving new entries: it alternately
steps the sequence-length slider (right, then back left next time) and the seed's "+" button. The
walk visits (T+1, s), (T+1, s+1), (T, s+1), (T, s+2), ...: always new, and of a steady size, so a
growing memory would be the server's, not bigger models'.
Sessions move in rounds (a barrier after every action), and the server's resident memory (the
process and its children) is sampled every 50 ms in a thread and at the end of every round.

Reported: errors (exception boxes, error alerts, timeouts; the goal is 0), the median and 95th
percentile time per action (key press -> rerun finished and chart updated), the server's peak RSS,
and RSS after round 1 against after the last round (flat when the caches are bounded).

Bounded: --sessions <= 60, --actions <= 400, every wait has a timeout and the whole run stops after
--max-seconds. Browsers and server run on the same machine, so client rendering competes with the
server for the same cores; the numbers are an upper bound for a real lecture hall.

    python bench/bench_load.py --sessions 30 --actions 10              # the lecture hall
    python bench/bench_load.py --sessions 6 --actions 300 --ramp 1 --max-seconds 3600   # a soak
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "browser")]

import harness as H  # noqa: E402

from dashboard import presets as P  # noqa: E402

PAGE = "gradient-flow"
# What the sessions change, in turn (labels as the page shows them).
SLIDER = "Sequence length T"
SEED = "Seed"
# Presets the sessions choose, round robin: the ones that open the Gradient flow page (button titles
# on the Overview page, reached through the sidebar link).
PRESETS: tuple[str, ...] = tuple(p.title for p in P.PRESETS if p.page == "gradient_flow")
PRESETS_LINK = "Presets: the classic experiments"
ACTION_TIMEOUT = 180.0  # seconds for one action under full load
OPEN_TIMEOUT = 360.0  # seconds for one session to open its page and choose its preset
MAX_ACTIONS = 400  # per session: a soak (few sessions, many actions) shows whether memory levels off
MiB = 2**20


class RssSampler(threading.Thread):
    """Peak resident memory of a process and all its children, sampled every ``every`` seconds."""

    def __init__(self, pid: int, every: float = 0.05):
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.every = every
        self.peak = 0
        self.floor = None  # least RSS since the last take_floor(): what stays between computations
        self._halt = threading.Event()

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process and its (living) children so far."""
        total = 0.0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def rss(self) -> int:
        total = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:  # a child that just exited
                pass
        return total

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                rss = self.rss()
            except psutil.Error:
                return
            self.peak = max(self.peak, rss)
            self.floor = rss if self.floor is None else min(self.floor, rss)
            self._halt.wait(self.every)

    def take_floor(self) -> int:
        """The least RSS sampled since the last call (or now, if none was)."""
        floor, self.floor = self.floor, None
        return floor if floor is not None else self.rss()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


@dataclass
class Session:
    index: int
    times: list[float] = field(default_factory=list)  # key press -> chart updated in the browser
    server_times: list[float] = field(default_factory=list)  # key press -> the server's "rerun finished"
    errors: list[str] = field(default_factory=list)
    opened_after: float = 0.0


async def _wait_finished(watcher: H.RerunWatcher, after: int, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while watcher.finished <= after:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"no finished rerun within {timeout:.0f} s")
        await asyncio.sleep(0.005)


async def _page_errors(page) -> list[str]:
    texts = await page.locator(H.EXCEPTION).all_inner_texts()
    texts += await page.locator(H.ERROR_ALERT).all_inner_texts()
    return [t.strip().splitlines()[0][:200] if t.strip() else "(empty)" for t in texts]


async def _open(page, url: str, watcher: H.RerunWatcher) -> None:
    n = watcher.finished
    await page.goto(url, wait_until="domcontentloaded", timeout=OPEN_TIMEOUT * 1000)
    await _wait_finished(watcher, n, OPEN_TIMEOUT)
    await page.wait_for_function(
        f"(sel) => document.querySelector('{H.EXCEPTION}') || ({H.DRAWN_JS})(sel) >= 1",
        arg=H.PLOT,
        timeout=OPEN_TIMEOUT * 1000,
        polling=50,
    )
    await page.evaluate(H.QUIET_JS, [150, 10_000])


async def choose_preset(page, watcher: H.RerunWatcher, label: str) -> None:
    """From the Gradient flow page: the sidebar's presets link, then the preset's button, which
    sets the sidebar and switches back to the Gradient flow page."""
    n = watcher.finished
    await (
        page.locator('[data-testid="stSidebar"] a')
        .filter(has_text=PRESETS_LINK)
        .first.click(timeout=OPEN_TIMEOUT * 1000)
    )
    await _wait_finished(watcher, n, ACTION_TIMEOUT)
    button = page.get_by_role("radio", name=label, exact=True)  # a preset is one of the row of pills
    await button.wait_for(timeout=ACTION_TIMEOUT * 1000)
    n = watcher.finished
    await button.click(timeout=OPEN_TIMEOUT * 1000)
    await page.wait_for_function(
        f"() => location.pathname.endsWith('/{PAGE}') || document.querySelector('{H.EXCEPTION}')",
        timeout=ACTION_TIMEOUT * 1000,
    )
    await _wait_finished(watcher, n, ACTION_TIMEOUT)
    await page.wait_for_function(
        f"(sel) => document.querySelector('{H.EXCEPTION}') || ({H.DRAWN_JS})(sel) >= 1",
        arg=H.PLOT,
        timeout=ACTION_TIMEOUT * 1000,
        polling=50,
    )
    await page.evaluate(H.QUIET_JS, [150, 10_000])


async def act(page, watcher: H.RerunWatcher, press) -> tuple[float, float]:
    """One action: ``press()`` changes a setting. Returns (key press -> the server's "rerun
    finished" message arrived, key press -> rerun finished and the chart updated in the page), s."""
    before = await page.evaluate(H.SIGNATURES_JS, H.PLOT)
    n = watcher.finished
    t0 = time.perf_counter()
    await press()
    await page.wait_for_function(
        H.SIGNATURE_CHANGED_JS, arg=[H.PLOT, before], timeout=ACTION_TIMEOUT * 1000, polling="raf"
    )
    t_chart = time.perf_counter()
    await _wait_finished(watcher, n, ACTION_TIMEOUT)
    server = watcher.last_finished_at - t0
    await page.evaluate(H.QUIET_JS, [100, 10_000])
    return server, max(t_chart, watcher.last_finished_at) - t0


async def step_slider(page, watcher: H.RerunWatcher, label: str, right: bool) -> tuple[float, float]:
    """Move a slider one step right (or left) with the keyboard."""
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text=label).locator(H.THUMB).first
    await thumb.focus()
    return await act(page, watcher, lambda: page.keyboard.press("ArrowRight" if right else "ArrowLeft"))


async def step_number(page, watcher: H.RerunWatcher, label: str) -> tuple[float, float]:
    """Press a number input's "+" button."""
    box = page.locator('[data-testid="stNumberInput"]').filter(has_text=label).first
    plus = box.locator('[data-testid="stNumberInputStepUp"]')
    return await act(page, watcher, lambda: plus.click(timeout=ACTION_TIMEOUT * 1000))


async def run_session(s: Session, browser, url: str, args, barrier: asyncio.Barrier, on_round) -> None:
    rng = random.Random(s.index)
    await asyncio.sleep(s.index * args.ramp)  # students arrive one after another
    ctx = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await ctx.new_page()
    watcher = H.RerunWatcher(page)
    usable = True
    t0 = time.perf_counter()
    try:
        async with asyncio.timeout(OPEN_TIMEOUT):
            await _open(page, f"{url}/{PAGE}", watcher)
            if PRESETS:
                await choose_preset(page, watcher, PRESETS[s.index % len(PRESETS)])
        s.opened_after = time.perf_counter() - t0
        s.errors += await _page_errors(page)
    except Exception as e:  # the session could not start: count it, keep the rounds in step
        s.errors.append(f"open: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
        usable = False
    await _round(barrier, on_round, 0, OPEN_TIMEOUT + args.sessions * args.ramp)
    for a in range(args.actions):
        if usable:
            try:
                await asyncio.sleep(rng.uniform(0, args.think))  # they do not all press at once
                if a % 2 == 0:  # T + 1, then T - 1 the next time: the size stays steady
                    server, chart = await step_slider(page, watcher, SLIDER, right=a % 4 == 0)
                else:
                    server, chart = await step_number(page, watcher, SEED)
                s.server_times.append(server)
                s.times.append(chart)
                s.errors += await _page_errors(page)
            except Exception as e:
                s.errors.append(f"action {a}: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
        await _round(barrier, on_round, a + 1)
    await ctx.close()


async def _round(barrier: asyncio.Barrier, on_round, k: int, timeout: float = ACTION_TIMEOUT * 2) -> None:
    try:
        async with asyncio.timeout(timeout):
            if await barrier.wait() == 0:
                on_round(k)
    except (TimeoutError, asyncio.BrokenBarrierError):
        pass  # a straggler: the rounds lose their lockstep, the run goes on


async def main_async(args) -> dict:
    from playwright.async_api import async_playwright

    srv = H.StreamlitServer(script=args.script)
    srv.start()
    sampler = RssSampler(srv.proc.pid)
    sampler.start()
    rounds: dict[int, int] = {}  # round -> RSS at its end
    floors: dict[int, int] = {}  # round -> least RSS during it
    try:
        async with async_playwright() as pw:
            browsers = [
                await pw.chromium.launch(executable_path=H.CHROMIUM, headless=True, args=H.CHROMIUM_ARGS)
                for _ in range(args.browsers)
            ]
            # The lecturer opens the dashboard first: the router runs once and registers its pages.
            ctx = await browsers[0].new_context()
            page = await ctx.new_page()
            w = H.RerunWatcher(page)
            await page.goto(srv.url, wait_until="domcontentloaded")
            await _wait_finished(w, 0, ACTION_TIMEOUT)
            await ctx.close()
            rss_idle = sampler.rss()
            sampler.take_floor()

            sessions = [Session(i) for i in range(args.sessions)]
            cpu0_server, cpu0_all = sampler.cpu_seconds(), psutil.cpu_times()
            barrier = asyncio.Barrier(args.sessions)
            t0 = time.perf_counter()

            def on_round(k: int) -> None:
                rounds[k] = sampler.rss()
                floors[k] = sampler.take_floor()

            tasks = [
                run_session(s, browsers[s.index % len(browsers)], srv.url, args, barrier, on_round) for s in sessions
            ]
            try:
                async with asyncio.timeout(args.max_seconds):
                    await asyncio.gather(*tasks)
                timed_out = False
            except TimeoutError:
                timed_out = True
            wall = time.perf_counter() - t0
            cpu1_all = psutil.cpu_times()
            cpu_server = sampler.cpu_seconds() - cpu0_server
            cpu_all = (cpu1_all.user + cpu1_all.system) - (cpu0_all.user + cpu0_all.system)
            for b in browsers:
                await b.close()
    finally:
        sampler.stop()
        server_alive = srv.proc.poll() is None
        srv.stop()
    return {
        "sessions": sessions,
        "rounds": rounds,
        "floors": floors,
        "rss_idle": rss_idle,
        "rss_peak": sampler.peak,
        "wall": wall,
        "cpu_server": cpu_server,
        "cpu_all": cpu_all,
        "timed_out": timed_out,
        "server_alive": server_alive,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=30)
    ap.add_argument("--actions", type=int, default=10, help="slider steps per session")
    ap.add_argument("--browsers", type=int, default=3, help="Chromium processes the sessions are spread over")
    ap.add_argument("--ramp", type=float, default=2.0, help="seconds between two sessions' arrivals")
    ap.add_argument("--think", type=float, default=2.0, help="random pause before each action, up to this (s)")
    ap.add_argument("--max-seconds", type=float, default=900, help="the whole run stops after this")
    ap.add_argument("--script", default="app.py", help="the Streamlit script (relative to the repository root)")
    args = ap.parse_args()
    if not (1 <= args.sessions <= 60 and 1 <= args.actions <= MAX_ACTIONS and 1 <= args.browsers <= 8):
        ap.error(f"--sessions in [1, 60], --actions in [1, {MAX_ACTIONS}], --browsers in [1, 8]")

    load_before = os.getloadavg()
    r = asyncio.run(main_async(args))
    sessions: list[Session] = r["sessions"]
    times = [t for s in sessions for t in s.times]
    server_times = [t for s in sessions for t in s.server_times]
    errors = [f"session {s.index}: {e}" for s in sessions for e in s.errors]
    if r["timed_out"]:
        errors.append(f"the run hit --max-seconds {args.max_seconds:.0f}")
    if not r["server_alive"]:
        errors.append("the server process died")
    rounds = r["rounds"]
    last = max(rounds) if rounds else None
    opened = [s.opened_after for s in sessions if s.opened_after]

    import streamlit

    print("\nerrors:" if errors else "\nerrors: none")
    for e in errors[:40]:
        print("  ", e)
    floors = r["floors"]
    every = max(1, len(rounds) // 25)
    print("RSS at the end of round (MiB):", {k: round(v / MiB) for k, v in sorted(rounds.items()) if k % every == 0})
    print("least RSS during round (MiB): ", {k: round(v / MiB) for k, v in sorted(floors.items()) if k % every == 0})
    cmd = f"python bench/bench_load.py --sessions {args.sessions} --actions {args.actions}"
    if (args.ramp, args.think, args.browsers) != (2.0, 2.0, 3):
        cmd += f" --ramp {args.ramp:g} --think {args.think:g} --browsers {args.browsers}"

    def stat(xs: list[float], f) -> str:
        return f"{f(xs):.2f} s" if xs else "n/a"

    med, p95 = stat(times, statistics.median), stat(times, lambda x: H.percentile(x, 95))
    smed, sp95 = stat(server_times, statistics.median), stat(server_times, lambda x: H.percentile(x, 95))

    def change(series: dict[int, int]) -> str:
        r1 = series.get(1)
        if not (r1 and last and last > 1 and last in series):
            return "n/a"
        return f"{r1 / MiB:.0f} MiB → {series[last] / MiB:.0f} MiB ({(series[last] - r1) / r1:+.1%})"

    late = sorted(k for k in rounds if last and k >= max(1, last // 2))

    def trend(series: dict[int, int]) -> str:
        ks = [k for k in late if k in series]
        if len(ks) < 3:
            return "n/a"
        slope = statistics.linear_regression(ks, [series[k] / MiB for k in ks]).slope
        return f"{slope:+.2f} MiB per round ({slope * (ks[-1] - ks[0]):+.0f} MiB over those {ks[-1] - ks[0]} rounds)"

    print(
        f"""
#### A lecture hall on one server (`{cmd}`)

{args.sessions} concurrent headless Chromium sessions ({args.browsers} browser processes) on loopback against one
Streamlit {streamlit.__version__} server, all on {os.cpu_count()} CPU cores (load average {load_before[0]:.1f} at the
start). Sessions arrive {args.ramp:g} s apart; each opens the {PAGE} page{", chooses a preset" if PRESETS else ""} and makes {args.actions} changes
(after a random pause of up to {args.think:g} s), alternately the sequence length (±1) and the seed (+1), each to
settings it has not had before at a steady size. {len(times)} actions
in {r["wall"]:.0f} s.

| measurement | value | goal |
|---|---|---|
| errors (exception boxes, error alerts, timeouts) | {len(errors)} | 0 |
| page open{" + preset" if PRESETS else ""} per session, median | {statistics.median(opened) if opened else float("nan"):.2f} s | |
| time per action, server (key press → the server's "rerun finished" arrives), median / p95 | {smed} / {sp95} | |
| time per action, browser (key press → rerun finished and chart redrawn), median / p95 | {med} / {p95} | |
| CPU seconds used during the run: the server / the whole machine (browsers and everything else running) | {r["cpu_server"]:.0f} s / {r["cpu_all"]:.0f} s | |
| server RSS idle (after the first page) | {r["rss_idle"] / MiB:.0f} MiB | |
| server RSS peak (process + children, sampled every 50 ms) | {r["rss_peak"] / MiB:.0f} MiB | |
| server RSS at the end of round 1 → round {last} | {change(rounds)} | flat |
| server RSS trend over rounds {late[0] if late else "-"}–{last} (least-squares slope) | {trend(rounds)} | ~0 |
| least RSS during round 1 → round {last} (what stays between computations) | {change(floors)} | flat |
| its trend over rounds {late[0] if late else "-"}–{last} | {trend(floors)} | ~0 |
"""
    )
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
