"""The Phase diagram in a real browser: it renders, with the measured boundary drawn as a path and the
mean-field line in the figure. (Opening a clicked point is tested through AppTest in
tests/test_phase_page.py; a synthetic mouse click on the grid point did not reach Streamlit's
selection here, so the browser does not test it.)"""

from __future__ import annotations

from urllib.parse import urlencode

import harness as H

QUERY = {"m_init": "gaussian", "m_hidden": "16", "m_seq_len": "40", "pd_points": "5", "pd_edge": "false"}


def test_phase_diagram_renders_with_the_boundary_drawn(page, server):
    H.open_page(page, f"{server.url}/phase-diagram?{urlencode(QUERY)}", page.watcher, charts=1, timeout=180)
    H.screenshot(page, "phase-diagram")
    assert H.problems(page) == {"exceptions": [], "errors": []}
    assert page.locator("h1").first.inner_text().strip().startswith("Phase diagram")
    graph = page.locator(H.PLOT).first
    names = graph.evaluate("g => g._fullData.map(t => t.name)")
    assert any(n.startswith("measured boundary") for n in names), names
    assert any(n.startswith("mean-field boundary") for n in names), names
    # the contour's drawn path: the lambda_1 = 0 line is on the picture, not only in the data
    assert graph.locator(".contourlevel path").count() >= 1
