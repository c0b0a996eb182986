"""The Runs page in headless Chromium: a monitored run is drawn (every chart, no exception box or
error), and a run path from the URL that leaves the runs directory is refused in the page.

Its own server: the runs directory is configured by the environment the server starts with."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import harness as H
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.helpers.runs import make_run  # noqa: E402

CHARTS = 7  # gradient norm, flow history, heatmap, ||dL/dh_t||, eigenvalues, singular values, Lyapunov


@pytest.fixture(scope="module")
def runs_server(tmp_path_factory, browser):
    root = tmp_path_factory.mktemp("runs")
    make_run(root / "exp1", steps=5, every=2)
    old = os.environ.get("BPTT_RUNS_DIR")
    os.environ["BPTT_RUNS_DIR"] = str(root)
    try:
        srv = H.StreamlitServer().start()
    finally:
        if old is None:
            os.environ.pop("BPTT_RUNS_DIR")
        else:
            os.environ["BPTT_RUNS_DIR"] = old
    yield srv
    log = srv.log_tail(None)
    srv.stop()
    assert "Traceback" not in log, f"the server logged a traceback:\n{log}"


def test_runs_page_draws_a_run(runs_server, page):
    H.open_page(page, f"{runs_server.url}/runs?ru_run=exp1", page.watcher, charts=CHARTS)
    assert H.problems(page) == {"exceptions": [], "errors": []}
    assert H.drawn_charts(page) >= CHARTS
    assert "3 logged steps: 0, 2, 4" in page.locator('[data-testid="stCode"]').first.inner_text()
    H.screenshot(page, "runs")


def test_runs_page_refuses_a_path_outside(runs_server, page):
    H.open_page(page, f"{runs_server.url}/runs?ru_run=..%2F..%2Fetc", page.watcher, charts=CHARTS)
    errors = H.problems(page)["errors"]
    assert any("Refused" in e and "'..'" in e for e in errors), errors
    assert "run: exp1" in page.locator('[data-testid="stCode"]').first.inner_text()
