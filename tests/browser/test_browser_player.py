"""The training player, click to unroll and compare mode in a real browser.

- Play: on Clipping with ``cl_play=true``, Plotly's own ▶ Play button moves the player through its frames
  (the slider's active step and the figure's title, which names the training step, change) while the
  Streamlit server runs no rerun: the browser sends no BackMsg (no rerun request, no widget change) and
  the server sends no "script running" status and no ``script_finished`` (both read off the websocket).
- Unroll: a click on the Gradient flow heatmap opens the clicked cell's chain (the "Click to unroll"
  section shows ∂h(t)/∂h(s) and its chain figure) and puts ``gf_cell=t,s`` in the URL.
- Screenshots of the player, the unroll and compare mode, saved (cropped to their sections) under
  artifacts/screenshots/ (docs/screenshots/ holds the ones the README shows).
"""

from __future__ import annotations

from urllib.parse import urlencode

import harness as H

SMALL = {"m_hidden": "8", "m_seq_len": "16"}
PLAY_HEATMAP = ".st-key-cl_play_heatmap .js-plotly-plot"


class BackMsgWatcher:
    """Counts what the browser sends the server (BackMsgs: rerun requests, widget changes), by type."""

    def __init__(self, page):
        from streamlit.proto.BackMsg_pb2 import BackMsg

        self._BackMsg = BackMsg
        self.sent: list[str] = []
        page.on("websocket", self._on_socket)

    def _on_socket(self, ws) -> None:
        if "/_stcore/stream" in ws.url:
            ws.on("framesent", self._on_frame)

    def _on_frame(self, payload) -> None:
        msg = H.parse_message(self._BackMsg, payload)
        if msg is None:
            return
        self.sent.append(msg.WhichOneof("type") or "")


_ROUTED: set[str] = set()


def through_the_router(page, server) -> None:
    """Open the overview once per server first: a fresh server may answer its very first request from the
    pages/ folder, without app.py's wide layout (layout.frame), and these screenshots show the usual page."""
    if server.url not in _ROUTED:
        H.open_page(page, server.url, page.watcher, timeout=180)
        _ROUTED.add(server.url)


def player_state(page) -> tuple[int, str, str]:
    """(the slider's active step, its shown value, the figure's title) of the player's heatmap."""
    return page.locator(PLAY_HEATMAP).first.evaluate(
        """g => [g._fullLayout.sliders[0].active,
                 Array.from(g.querySelectorAll('.slider-container text')).map(t => t.textContent)
                      .find(t => t.startsWith('training step')) || '',
                 (g._fullLayout.title && g._fullLayout.title.text) || '']"""
    )


def section_shot(page, name: str, first: str, last: str, pad: int = 12):
    """A PNG of the page from the top of ``first`` to the bottom of ``last`` (CSS selectors), the main
    column's width, under artifacts/screenshots/<name>.png (the viewport made tall enough to hold it)."""
    H.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(last).last.scroll_into_view_if_needed()
    page.wait_for_timeout(400)  # Plotly lays out charts drawn while off screen
    height = page.locator(last).last.bounding_box()
    top = page.locator(first).first.bounding_box()
    height = height["y"] + height["height"] - top["y"] + 2 * pad
    old = page.viewport_size
    page.set_viewport_size({"width": old["width"], "height": int(min(height + 200, 8000))})
    page.wait_for_timeout(500)
    page.locator(first).first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(400)
    top = page.locator(first).first.bounding_box()
    main = page.locator('[data-testid="stMainBlockContainer"]').first.bounding_box()
    path = H.SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), clip={"x": main["x"], "y": max(0, top["y"] - pad), "width": main["width"],
                                          "height": height})  # fmt: skip
    page.set_viewport_size(old)
    return path


def test_play_advances_the_frames_without_a_server_rerun(page, server):
    through_the_router(page, server)
    sent = BackMsgWatcher(page)
    query = {**SMALL, "cl_steps": "30", "cl_batch": "2", "cl_play": "true"}
    H.open_page(page, f"{server.url}/clipping?{urlencode(query)}", page.watcher, charts=8, timeout=180)
    assert H.problems(page) == {"exceptions": [], "errors": []}
    graph = page.locator(PLAY_HEATMAP).first
    graph.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    n_frames = graph.evaluate("g => g._transitionData._frames.length")
    assert n_frames >= 3, n_frames
    active0, shown0, title0 = player_state(page)
    assert active0 == 0 and "training step 0," in title0, (active0, title0)
    finished, started, n_sent = page.watcher.finished, page.watcher.started, len(sent.sent)

    graph.locator(".updatemenu-button").first.click()  # Plotly's own ▶ Play
    page.wait_for_function(
        "g => g._fullLayout.sliders[0].active >= 2", arg=graph.element_handle(), timeout=20_000, polling=50
    )
    active1, shown1, title1 = player_state(page)
    assert active1 >= 2 and title1 != title0 and shown1 != shown0, (active1, shown1, title1)
    step = graph.evaluate("(g, i) => g._fullLayout.sliders[0].steps[i].label", active1)
    assert f"training step {step}," in title1 and step in shown1, (step, shown1, title1)
    page.wait_for_timeout(1500)  # let it play on: still no rerun
    assert page.watcher.finished == finished, "a rerun finished while the player played"
    assert page.watcher.started == started, "the server started a script run while the player played"
    assert sent.sent[n_sent:] == [], f"the browser sent {sent.sent[n_sent:]} while the player played"
    graph.locator(".updatemenu-button").nth(1).click()  # ‖ Pause
    section_shot(page, "player", 'h3:has-text("Play training")', ".st-key-cl_play_lyap")


def test_a_click_on_the_heatmap_opens_the_chain(page, server):
    through_the_router(page, server)
    H.open_page(page, f"{server.url}/gradient-flow?{urlencode(SMALL)}", page.watcher, charts=4, timeout=180)
    assert page.get_by_text("Click a cell of the heatmap").count() >= 1
    graph = page.locator(".st-key-gf_heatmap .js-plotly-plot").first
    graph.scroll_into_view_if_needed()
    page.wait_for_timeout(400)
    t, s = 11, 4  # 1-indexed steps: y = t, x = s
    gx, gy = graph.evaluate(
        """(g, ts) => { const xa = g._fullLayout.xaxis, ya = g._fullLayout.yaxis;
                        return [xa._offset + xa.d2p(ts[1]), ya._offset + ya.d2p(ts[0])]; }""",
        [t, s],
    )
    box = graph.bounding_box()
    before = page.watcher.finished
    page.mouse.move(box["x"] + gx, box["y"] + gy)
    page.wait_for_timeout(300)
    page.mouse.click(box["x"] + gx, box["y"] + gy)
    H.wait_idle(page, page.watcher, before, timeout=120)
    page.wait_for_selector(".st-key-gf_unroll .js-plotly-plot", timeout=60_000)
    H.wait_charts(page, 5, timeout=60)
    assert H.problems(page) == {"exceptions": [], "errors": []}
    assert H.query_params(page).get("gf_cell") == [f"{t},{s}"], page.url
    text = page.locator('[data-testid="stMarkdownContainer"]').filter(has_text=f"∂h({t})/∂h({s})").first.inner_text()
    assert "log10 of its norm" in text and "differ by" in text, text
    title = page.locator(".st-key-gf_unroll .js-plotly-plot").first.evaluate("g => g._fullLayout.title.text")
    assert title.startswith(f"∂h({t})/∂h({s}) unrolled"), title
    section_shot(
        page, "unroll", 'h3:has-text("Click to unroll")', ".st-key-gf_unroll_contrib, .st-key-gf_unroll_nonnormal"
    )


def test_compare_mode_screenshot(page, server):
    through_the_router(page, server)
    query = {**SMALL, "compare": "true", "b_m_cell": "lstm", "b_m_hidden": "8", "b_m_seq_len": "16"}
    H.open_page(page, f"{server.url}/gradient-flow?{urlencode(query)}", page.watcher, charts=7, timeout=180)
    assert H.problems(page) == {"exceptions": [], "errors": []}
    assert page.get_by_text("Compare: A against B").count() >= 1
    section_shot(page, "compare", 'h3:has-text("Compare: A against B")', ".js-plotly-plot")
