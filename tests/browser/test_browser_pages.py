"""The dashboard in a real browser (headless Debian Chromium driven by Playwright).

What AppTest cannot see: the charts are drawn (Plotly SVG in the page), no exception box or error
alert, a slider moved with the keyboard changes the chart and the URL, a URL reopens the exact
view, the export buttons exist and produce files, a bad URL value warns instead of crashing, and
lecture mode hides the controls. A full-page screenshot of every page lands in
artifacts/screenshots/<page>.png (1400 px wide).

A full page load costs seconds here (Plotly's bundle is parsed anew each time), so one session
("the tour") walks through the pages with the sidebar links, as a student would, and only the
tests about URLs load a page from a URL.
"""

from __future__ import annotations

import csv
import io
import struct
from urllib.parse import urlencode

import harness as H
import pytest

from bptt_core.config import ModelConfig
from bptt_core.figures.style import TEMPLATE
from dashboard import presets as P
from dashboard.layout import DETAILS_LABEL

DEFAULTS = ModelConfig()
PRESET = P.get("exploding")  # the preset the browser clicks (AppTest sweeps all of them)
PRESET_KEYS = {"activation": "m_activation", "init": "m_init", "gain": "m_gain", "spectral_radius": "m_radius"}

# Every page: (id, URL path, sidebar link text, h1 title, charts it must draw at the default
# settings, whether every chart must have a CSV download and labelled axes). Swept as data.
PAGES = [
    ("overview", "", "Overview", "BPTT Explorer", 0, False),  # its one figure is static SVG (checked apart)
    ("gradient-flow", "gradient-flow", "Gradient flow", "Gradient flow", 4, True),
    ("spectrum", "spectrum", "Spectrum", "Spectrum", 3, True),
    ("clipping", "clipping", "Clipping", "Gradient clipping", 3, True),
    ("truncation", "truncation", "Truncated BPTT", "Truncated BPTT", 2, True),
    ("calculator", "calculator", "Calculator", "BPTT calculator", 1, True),
]
GF = "gradient-flow"
GF_CHARTS = 4
SEQ_SLIDER = "Sequence length T"  # the shared slider the interaction tests move
SEQ_KEY = "m_seq_len"
# Bad values for URL-bound settings, all in one URL: each must be named in a warning.
BAD_URL = {"m_hidden": "abc", "m_cell": "banana", "m_gain": "nan", "m_seq_len": "-5", "m_seed": "1e99"}


def _url(server, path: str, **params) -> str:
    return f"{server.url}/{path}" + (f"?{urlencode(params)}" if params else "")


def _no_problems(page) -> None:
    p = H.problems(page)
    assert p == {"exceptions": [], "errors": []}, f"{page.url}: {p}"


def _figure_facts(page) -> list[dict]:
    """Title, axis titles and trace types of every drawn Plotly figure (Plotly's full layout)."""
    return page.evaluate(
        """(sel) => Array.from(document.querySelectorAll(sel)).map(g => {
            const L = g._fullLayout || {};
            const ids = [...((L._subplots || {}).xaxis || []), ...((L._subplots || {}).yaxis || [])];
            const axes = ids.map(id => id.replace(/^([xy])/, '$1axis')).filter(k => L[k] && L[k].visible !== false);
            return {
                title: (L.title && L.title.text) || '',
                axes: axes.map(k => [k, (L[k].title && L[k].title.text) || '']),
                traces: (g.data || []).map(t => t.type || 'scatter'),
            };
        })""",
        H.PLOT,
    )


def _new_page(browser):
    ctx = browser.new_context(viewport=H.VIEWPORT, accept_downloads=True)
    ctx.set_default_timeout(60_000)
    pg = ctx.new_page()
    pg.watcher = H.RerunWatcher(pg)
    return pg


def _goto_via_sidebar(page, link: str, charts: int) -> None:
    """Click the page's link in the sidebar navigation (no reload) and wait for its charts."""
    n = page.watcher.finished
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=link).first.click()
    H.wait_idle(page, page.watcher, n, timeout=120)
    H.wait_charts(page, charts, timeout=120)
    H.wait_idle(page)


def _step(page, thumb, key: str) -> list[str]:
    """Press an arrow key on a slider; wait for the new chart and the end of the rerun."""
    before = H.chart_signatures(page)
    n = page.watcher.finished
    thumb.focus()
    page.keyboard.press(key)
    after = H.wait_signature_change(page, before, timeout=120)
    H.wait_idle(page, page.watcher, n, timeout=120)
    return after


@pytest.fixture(scope="module")
def tour(server, browser):
    """One session for the whole walk through the pages: it opens the root first, as a lecturer would."""
    pg = _new_page(browser)
    H.open_page(pg, server.url, pg.watcher, timeout=120)
    yield pg
    pg.context.close()


@pytest.mark.parametrize(("name", "path", "link", "title", "charts", "strict"), PAGES, ids=[p[0] for p in PAGES])
def test_page_renders_its_charts(tour, name, path, link, title, charts, strict):
    _goto_via_sidebar(tour, link, charts)
    H.screenshot(tour, name)  # first: a failing page is the one worth looking at
    assert tour.url.rstrip("/").endswith(path) if path else True, tour.url
    _no_problems(tour)
    assert tour.locator("h1").first.inner_text().strip().startswith(title)
    drawn = H.drawn_charts(tour)
    assert drawn >= charts, f"{name}: {drawn} charts drawn, expected at least {charts}"
    if name == "overview":  # the unrolled network, an <img> of SVG: loaded and as wide as the text
        tour.wait_for_function("() => document.querySelector('.bptt-figure img')?.complete", timeout=30_000)
        assert H.drawn_static_figures(tour) == 1
        assert tour.locator(".bptt-figure img").bounding_box()["height"] > 150
    for f in _figure_facts(tour):
        assert f["title"].strip(), f"{name}: a figure without a title: {f}"
        if strict:
            unlabelled = [k for k, t in f["axes"] if not t.strip()]
            assert not unlabelled, f"{name}: figure {f['title']!r} has unlabelled axes {unlabelled}"
    if strict:  # each figure's CSV is in its expander (drawn once opened: test_csv_download_holds_the_numbers)
        details = tour.locator('[data-testid="stExpander"]').filter(has_text=DETAILS_LABEL).count()
        assert details >= drawn, f"{name}: {details} CSV expanders for {drawn} figures"


def test_slider_step_updates_chart_and_url(tour):
    _goto_via_sidebar(tour, "Gradient flow", GF_CHARTS)
    thumb = H.slider(tour, SEQ_SLIDER)
    start = int(thumb.get_attribute("value"))
    before = H.chart_signatures(tour)
    after = _step(tour, thumb, "ArrowRight")
    assert after[0] != before[0], "the heatmap did not change"
    assert int(thumb.get_attribute("value")) == start + 1
    assert H.query_params(tour).get(SEQ_KEY) == [str(start + 1)], tour.url
    back = _step(tour, thumb, "ArrowLeft")
    assert back[0] == before[0], "stepping back did not restore the same heatmap"
    # at the default the parameter may leave the URL or stay with the default: both reopen this view
    assert H.query_params(tour).get(SEQ_KEY) in (None, [str(start)]), tour.url
    _no_problems(tour)


def test_a_rerun_fetches_nothing_and_the_favicon_is_inline(tour):
    """A slider step is one websocket exchange: the page asks the server (or anyone) for nothing over HTTP.
    The page icon was a character Streamlit does not take for an emoji, so it became the favicon's URL and
    every rerun fetched /%E2%88%82 (the app's HTML, not an image); a Material icon would be fetched from
    fonts.gstatic.com. SVG markup is sent inline."""
    _goto_via_sidebar(tour, "Gradient flow", GF_CHARTS)
    icons = tour.evaluate("() => Array.from(document.querySelectorAll('link[rel*=icon]')).map(l => l.href)")
    assert icons and all(h.startswith("data:image/svg+xml") for h in icons), icons
    fetched = []

    def note(request):
        fetched.append(request.url)

    tour.on("request", note)
    thumb = H.slider(tour, SEQ_SLIDER)
    _step(tour, thumb, "ArrowRight")
    _step(tour, thumb, "ArrowLeft")
    tour.wait_for_timeout(300)
    tour.remove_listener("request", note)
    assert fetched == [], fetched


def test_modebar_exports_png_at_3x(tour):
    _goto_via_sidebar(tour, "Gradient flow", GF_CHARTS)
    heat = tour.locator(H.PLOT).first
    heat.hover()
    button = heat.locator('.modebar-btn[data-title="Download plot as a PNG"]')
    button.wait_for(state="visible", timeout=10_000)
    opts = heat.evaluate("g => g._context.toImageButtonOptions")
    assert opts.get("scale") == 3 and opts.get("format") == "png", opts
    assert heat.evaluate("g => g._context.displaylogo") is False
    w, h = heat.evaluate("g => [g._fullLayout.width, g._fullLayout.height]")
    with tour.expect_download(timeout=60_000) as dl:
        button.click()
    png = open(dl.value.path(), "rb").read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "the download is not a PNG"
    pw, ph = struct.unpack(">II", png[16:24])
    assert (pw, ph) == (3 * w, 3 * h), f"PNG is {pw}x{ph}, the figure {w}x{h}: not 3x"


def test_csv_download_holds_the_numbers(tour):
    _goto_via_sidebar(tour, "Gradient flow", GF_CHARTS)
    T = int(H.slider(tour, SEQ_SLIDER).get_attribute("value"))
    n = tour.watcher.finished
    tour.locator('[data-testid="stExpander"] summary').filter(has_text=DETAILS_LABEL).first.click()  # reruns: drawn now
    H.wait_idle(tour, tour.watcher, n, timeout=60)
    button = tour.locator('[data-testid="stDownloadButton"]').filter(has_text="CSV").first
    with tour.expect_download(timeout=60_000) as dl:
        button.click()
    assert dl.value.suggested_filename.endswith(".csv"), dl.value.suggested_filename
    rows = list(csv.reader(io.StringIO(open(dl.value.path(), encoding="utf-8").read())))
    header, body = rows[0], rows[1:]
    assert len(header) >= 2 and len(body) >= T, f"{len(body)} rows for T = {T}: {header}"
    numbers = [float(x) for r in body for x in r if x not in ("", "nan", "NaN")]
    assert numbers, "the CSV holds no numbers"
    _no_problems(tour)


def test_preset_button_opens_its_page(tour):
    """Last on the tour: the preset changes the session's settings."""
    _goto_via_sidebar(tour, "Overview", 0)  # its diagram is static SVG
    n = tour.watcher.finished
    tour.get_by_role("radio", name=PRESET.title, exact=True).click()  # the presets are one row of pills
    assert PRESET.page == "gradient_flow"
    tour.wait_for_function(
        f"() => location.pathname.endsWith('/{GF}') || document.querySelector('{H.EXCEPTION}')", timeout=60_000
    )
    _no_problems(tour)
    H.wait_idle(tour, tour.watcher, n, timeout=120)
    H.wait_charts(tour, GF_CHARTS, timeout=120)
    H.wait_idle(tour)
    _no_problems(tour)
    # the preset's settings are in the URL (non-default ones: defaults keep the URL clean)
    q = H.query_params(tour)
    for fld, key in PRESET_KEYS.items():
        want = PRESET.model[fld]
        if want == getattr(DEFAULTS, fld):
            continue
        got = q.get(key, [None])[-1]
        same = got == str(want) if isinstance(want, str) else got is not None and float(got) == float(want)
        assert same, f"{key}: URL has {got!r}, the preset sets {want!r} ({tour.url})"


def test_url_reopens_the_exact_view(server, browser, tour):
    """Set a view with the keyboard, copy the URL, open it in a new session: same widgets, same charts."""
    _goto_via_sidebar(tour, "Gradient flow", GF_CHARTS)
    thumb = H.slider(tour, SEQ_SLIDER)
    _step(tour, thumb, "ArrowLeft")
    url, view, value = tour.url, H.chart_signatures(tour), thumb.get_attribute("value")
    assert H.query_params(tour).get(SEQ_KEY) == [value], url

    other = _new_page(browser)
    try:
        H.open_page(other, url, other.watcher, charts=GF_CHARTS, timeout=120)
        H.wait_idle(other)
        _no_problems(other)
        assert H.slider(other, SEQ_SLIDER).get_attribute("value") == value
        assert H.chart_signatures(other) == view, "the same URL drew different charts"
    finally:
        other.context.close()


def test_bad_url_values_warn_and_fall_back(server, browser, tour):
    pg = _new_page(browser)
    try:
        H.open_page(pg, _url(server, GF, **BAD_URL), pg.watcher, charts=GF_CHARTS, timeout=120)
        H.wait_idle(pg)
        _no_problems(pg)
        warnings = pg.locator(H.WARNING_ALERT).all_inner_texts()
        missing = [k for k in BAD_URL if not any(k in w for w in warnings)]
        assert not missing, f"no warning names {missing}: {warnings}"
        # the defaults are in use
        assert H.slider(pg, "Hidden units").get_attribute("value") == str(DEFAULTS.hidden_size)
        assert H.slider(pg, SEQ_SLIDER).get_attribute("value") == str(DEFAULTS.seq_len)
        H.screenshot(pg, "gradient-flow-bad-url")
    finally:
        pg.context.close()


def test_lecture_mode_hides_controls(server, browser, tour):
    pg = _new_page(browser)
    try:
        H.open_page(pg, _url(server, GF, lecture="true", controls="false"), pg.watcher, charts=GF_CHARTS, timeout=120)
        H.wait_idle(pg)
        _no_problems(pg)
        assert not pg.locator('[data-testid="stSidebar"]').is_visible(), "the sidebar is still shown"
        assert not H.slider(pg, SEQ_SLIDER).is_visible(), "the sliders are still shown"
        size = pg.locator(H.PLOT).first.evaluate("g => g._fullLayout.font.size")
        assert size > TEMPLATE.layout.font.size, f"lecture font {size} is not above {TEMPLATE.layout.font.size}"
        visible = pg.evaluate(VISIBLE_CONTROLS_JS)
        assert visible == [], f"controls still shown with controls=false: {visible}"
        H.screenshot(pg, "gradient-flow-lecture")
    finally:
        pg.context.close()


# Every control a visitor could touch, and whether any of them is on screen.
VISIBLE_CONTROLS_JS = """() => Array.from(document.querySelectorAll(
    'input, select, textarea, button, [role="slider"], [data-testid="stExpander"], [data-testid="stDownloadButton"]'))
    .filter(e => e.offsetParent !== null && e.getBoundingClientRect().width > 0
                 && !e.closest('.modebar') && !e.closest('.js-plotly-plot'))
    .map(e => (e.getAttribute('aria-label') || e.innerText || e.tagName).slice(0, 40))"""


def test_slide_mode_fills_a_projector_screen_with_one_figure(server, browser, tour):
    """?slide=gf_heatmap: the heatmap alone on a 1920 x 1080 screen, no control, no text around it."""
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080})
    pg = ctx.new_page()
    pg.watcher = H.RerunWatcher(pg)
    try:
        H.open_page(pg, _url(server, GF, slide="gf_heatmap"), pg.watcher, charts=1, timeout=120)
        H.wait_idle(pg)
        _no_problems(pg)
        plots = [b for b in (p.bounding_box() for p in pg.locator(H.PLOT).all()) if b and b["height"] > 0]
        assert len(plots) == 1, f"{len(plots)} figures on the slide"
        assert plots[0]["height"] >= 900 and plots[0]["width"] >= 1700, plots[0]
        assert pg.evaluate(VISIBLE_CONTROLS_JS) == []
        assert not pg.locator("h1").first.is_visible(), "the page title is still on the slide"
        pg.screenshot(path=str(H.SCREENSHOTS / "slide-mode.png"))
    finally:
        ctx.close()


@pytest.mark.parametrize("path", [GF, "spectrum"])
def test_deep_link_on_a_fresh_server(browser, path):
    """The very first visitor of a freshly started server follows a slide's link to a page, with
    settings in it. (Streamlit decides how to read pages/ when the first session starts.)"""
    with H.StreamlitServer() as fresh:
        pg = _new_page(browser)
        try:
            H.open_page(pg, _url(fresh, path, m_hidden=32, m_cell="lstm"), pg.watcher, charts=1, timeout=120)
            H.wait_idle(pg)
            _no_problems(pg)
            assert H.slider(pg, "Hidden units").get_attribute("value") == "32"
            cell = pg.locator('[data-testid="stSelectbox"]').filter(has_text="Cell").locator("input").first
            assert cell.input_value() == "lstm"
            url_warnings = [w for w in pg.locator(H.WARNING_ALERT).all_inner_texts() if "URL" in w]
            assert not url_warnings, url_warnings
            nav = [t.strip().lower() for t in pg.locator('[data-testid="stSidebarNav"] a').all_inner_texts()]
            assert not {"common", "registry", "app"} & set(nav), f"helper modules offered as pages: {nav}"
            # the wide layout app.py sets, though this first run went straight to the page's script
            main = pg.locator('[data-testid="stMainBlockContainer"]').first.bounding_box()
            assert main["width"] > 0.6 * H.VIEWPORT["width"], f"a centred page, {main['width']:.0f} px wide"
        finally:
            pg.context.close()


# Values Streamlit's own number input could not take (OverflowError in the sidebar, on every page),
# and a repeated key: what a real browser's URL does, not only AppTest's query parameters.
HOSTILE_URL = [
    ("calculator", "m_seed=inf&m_gain=1e400&ca_batch=" + "9" * 400 + "&ca_dataset=nan&m_hidden=8&m_hidden=16"),
    ("", "m_seed=-inf&m_radius=%D9%A1%D9%A2&lecture=&m_hidden=8&m_hidden=16"),
]


@pytest.mark.parametrize(("path", "query"), HOSTILE_URL, ids=["calculator", "overview"])
def test_hostile_url_values_warn_in_the_browser(server, browser, tour, path, query):
    pg = _new_page(browser)
    try:
        H.open_page(pg, f"{server.url}/{path}?{query}", pg.watcher, charts=1 if path else 0, timeout=120)
        H.wait_idle(pg)
        _no_problems(pg)
        warnings = " ".join(pg.locator(H.WARNING_ALERT).all_inner_texts())
        refused = [kv.split("=")[0] for kv in query.split("&") if not kv.startswith("m_hidden=")]
        missing = [k for k in refused if k not in warnings]
        assert not missing and "falls back to the default" in warnings, (missing, warnings)
        assert H.slider(pg, "Hidden units").get_attribute("value") == "16"  # a repeated key: its last value
        seed = pg.locator('[data-testid="stNumberInput"]').filter(has_text="Seed").locator("input").first
        assert seed.input_value() == str(DEFAULTS.seed)
        H.screenshot(pg, f"hostile-url-{path or 'overview'}")
    finally:
        pg.context.close()
