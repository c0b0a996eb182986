"""Background training in a real browser: the page answers at once with a progress bar, the fragment
polls the job, and the charts appear by themselves when training ends; Cancel stops it."""

from __future__ import annotations

from urllib.parse import urlencode

import harness as H

PROGRESS = '[data-testid="stProgress"]'


def _url(server, **params) -> str:
    return f"{server.url}/clipping?{urlencode(params)}"


def test_training_runs_in_the_background_and_the_charts_come_by_themselves(page, server):
    # ~3-5 s of training: heavier than the light threshold, so it runs as a job
    H.open_page(page, _url(server, cl_steps=300, cl_batch=8, m_seed=5151), page.watcher)
    page.wait_for_selector(PROGRESS, timeout=30_000)
    assert "Training the three twins" in page.locator(PROGRESS).first.inner_text()
    assert H.drawn_charts(page) == 0
    H.wait_charts(page, 3, timeout=120)  # no reload, no click: the polling fragment reran the page
    assert page.locator(PROGRESS).count() == 0
    assert H.problems(page) == {"exceptions": [], "errors": []}


def test_cancel_in_the_browser(page, server):
    H.open_page(page, _url(server, cl_steps=1000, cl_batch=16, m_seed=5152), page.watcher)
    page.wait_for_selector(PROGRESS, timeout=30_000)
    page.get_by_role("button", name="Cancel").click()
    page.get_by_text("cancelled. Change a setting, or run it again.").wait_for(timeout=10_000)
    assert page.get_by_role("button", name="Run again").count() == 1
    assert H.drawn_charts(page) == 0
