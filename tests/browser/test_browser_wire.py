"""The wire clock bench/bench_ui.py times the server's end of a rerun with: the dashboard works through
it, it sees each rerun's script_finished once, and before the page reads it."""

from __future__ import annotations

import time

import harness as H
from wire import WireClock


def test_the_wire_sees_every_rerun_end_before_the_page_reads_it(server, browser):
    with WireClock(server.port) as wire:
        ctx = browser.new_context(viewport=H.VIEWPORT)
        try:
            page = ctx.new_page()
            watcher = H.RerunWatcher(page)
            H.open_page(page, f"{wire.url}/gradient-flow", watcher, charts=4, timeout=120)
            assert wire.finished == watcher.finished >= 1
            thumb = H.slider(page, "Hidden units H")
            for key in ("ArrowRight", "ArrowLeft"):
                n = watcher.finished
                thumb.focus()
                t0 = time.perf_counter()
                page.keyboard.press(key)
                watcher.wait_finished(n, timeout=60)
                assert wire.finished == watcher.finished == n + 1
                assert t0 < wire.last_finished_at <= watcher.last_finished_at
                H.wait_idle(page, timeout=60)
            assert wire.error is None
            assert H.problems(page) == {"exceptions": [], "errors": []}
        finally:
            ctx.close()
