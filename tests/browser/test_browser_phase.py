"""The Phase diagram in a real browser: it renders with the measured boundary drawn (a contour path) and
the mean-field line, and clicking a grid point opens that network on Gradient flow, its settings in the URL."""

from __future__ import annotations

from urllib.parse import urlencode

import harness as H

QUERY = {"m_init": "gaussian", "m_hidden": "16", "m_seq_len": "40", "pd_points": "5", "pd_edge": "false"}


def test_phase_diagram_renders_and_a_click_opens_the_network(page, server):
    H.open_page(page, f"{server.url}/phase-diagram?{urlencode(QUERY)}", page.watcher, charts=1, timeout=180)
    H.screenshot(page, "phase-diagram")
    assert H.problems(page) == {"exceptions": [], "errors": []}
    assert page.locator("h1").first.inner_text().strip().startswith("Phase diagram")
    graph = page.locator(H.PLOT).first
    names = graph.evaluate("g => g._fullData.map(t => t.name)")
    assert any(n.startswith("measured boundary") for n in names), names
    assert any(n.startswith("mean-field boundary") for n in names), names
    assert graph.locator(".contourlevel path").count() >= 1  # the lambda_1 = 0 line is drawn, not only data
    # click grid point 7 (gain 1.625, the second hidden size) where Plotly draws it
    graph.scroll_into_view_if_needed()  # a click outside the viewport reaches nothing
    page.wait_for_timeout(300)
    gx, gy, gain, hidden = graph.evaluate(
        """g => { const t = g._fullData.find(d => d.name.startsWith('grid points'));
                  const xa = g._fullLayout.xaxis, ya = g._fullLayout.yaxis;
                  return [xa._offset + xa.l2p(t.x[7]), ya._offset + ya.l2p(t.y[7]), t.x[7], t.y[7]]; }"""
    )
    box = graph.bounding_box()
    page.mouse.move(box["x"] + gx, box["y"] + gy)
    page.wait_for_timeout(300)  # Plotly picks the hovered point, which the click selects
    page.mouse.click(box["x"] + gx, box["y"] + gy)
    page.wait_for_function("() => location.pathname.endsWith('/gradient-flow')", timeout=120_000, polling=100)
    H.wait_idle(page, page.watcher, None, timeout=120)
    params = H.query_params(page)
    assert float(params["m_gain"][0]) == gain, page.url
    assert params.get("m_hidden") == [str(int(hidden))], page.url
    assert page.locator("h1").first.inner_text().strip().startswith("Gradient flow")
    assert H.problems(page) == {"exceptions": [], "errors": []}
