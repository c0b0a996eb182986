"""The frame of every page: the shared sidebar, ``page_start`` (header, URL warnings, the page's
:class:`PageContext`), figures with their CSV and explanation, the exports, lecture mode.

How a value gets from a widget to a figure (docs/design.md): app.py draws the sidebar (the widgets
keep their values under their URL keys); the page calls :func:`page_start`, which reads them into one
frozen PageContext (the ModelConfig, with an uploaded model's architecture applied, and the upload);
the page passes that context and its own controls' values to the cached functions of
:mod:`dashboard.compute`, and shows what they return with :func:`show_figure`.
"""

from __future__ import annotations

import base64
import html
import urllib.parse
from functools import partial
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from bptt_core.figures.style import PLOTLY_CONFIG, PLOTLY_CONFIG_SVG

from . import compute, page_table, uploads
from . import settings as S
from .compute import PageContext, Shown


def draw_sidebar() -> None:
    """The shared controls (the sidebar), and above the page the warnings about refused URL values."""
    with st.sidebar:
        uploads.upload_controls()
        warnings = S.shared_settings(disabled=() if S.b_uses_upload() else uploads.disabled_settings())
        S.saved_view_controls()
        try:
            overview = page_table.page(page_table.DEFAULT).file
            st.page_link(overview, label="Presets: the classic experiments", icon=":material/science:")
        except Exception:  # noqa: BLE001 - a page run on its own (no navigation) has no page to link to
            pass
    for w in warnings:
        st.warning(w, icon=":material/warning:")


def _through_router() -> bool:
    """Whether this run went through the router (app.py or the installed router.py, which drew the
    sidebar), not to a page script alone: as AppTest.from_file(page) runs it, or a fresh server's first
    request in the pages/-folder mode."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    ctx = get_script_run_ctx()
    routed = ctx is not None and Path(ctx.main_script_path).name in page_table.ROUTER_SCRIPTS
    return routed and not PagesManager.uses_pages_directory


def _claim_navigation() -> None:
    """On a freshly started server, the first session may run a page script straight from the pages/
    folder (Streamlit's older multipage mode, chosen before any st.navigation call). Register the
    real navigation from here, so the menu is right and later runs go through app.py."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        st.navigation(page_table.make_pages())


def frame() -> None:
    """What every page starts with: the sidebar (drawn here when the page script runs on its own,
    as AppTest.from_file or a fresh server's first request do) and the view's CSS."""
    if not _through_router():
        st.set_page_config(**page_table.PAGE_CONFIG)  # wide, as app.py sets it
        _claim_navigation()
        draw_sidebar()
    apply_view_css()


def page_start(page: str, title: str, intro: str) -> PageContext | None:
    """Title, intro and the page's context: the model settings it analyses (an uploaded model's
    architecture applied where the page uses uploads) and the upload. None: the settings cannot be
    used, the page has shown why and stops."""
    info = page_table.page(page)
    frame()
    slide = S.slide()
    if slide is not None and slide not in info.figures:
        with st.container(key=SLIDE_NOTE):
            shown = ", ".join(info.figures) or "none"
            st.warning(
                f"slide = {slide} is not a figure of this page (its figures: {shown}); remove slide= from the URL."
            )
    st.title(title)
    st.markdown(intro)
    cfg, error = S.model_config()
    if cfg is None:
        st.error(f"These settings cannot be used: {error}")
        return None
    # compare mode with b_upload on: the upload is B's (dashboard/compare_ui.py), A the settings model
    upload = uploads.current_upload() if info.uses_upload and not S.b_uses_upload() else None
    if upload is not None:
        try:
            cfg, notes = uploads.analysed_model(cfg, upload)
        except ValueError as e:  # evicted bytes, or a sequence that no longer fits
            uploads.clear_upload()
            st.error(f"The uploaded model cannot be used any more: {e}. Showing the settings model.")
            upload = None
        else:
            st.markdown(f"**{notes[0]}**")
            for n in notes[1:]:
                st.info(n, icon=":material/info:")
    errors, notes = compute.problems(cfg)
    for n in notes:
        st.info(n, icon=":material/info:")
    for e in errors:
        st.error(e)
    if errors:
        st.caption("Change the setting in the sidebar; every other page is still available.")
        return None
    if upload is None:
        preset_claims(page, cfg)
    return PageContext(cfg, upload)


def preset_claims(page: str, cfg) -> None:
    """While the view shows a preset (its model and page settings, unchanged), what it claims and what
    was measured: the words come from dashboard.presets and the numbers from bptt_core.report.claims."""
    from dashboard import presets as P

    keys = {k for p in P.PRESETS if p.page == page for k in p.page_settings}
    preset = P.active(cfg, page, {k: st.session_state.get(k) for k in keys})
    if preset is None:
        return
    with st.container(border=True):
        st.markdown(f"**Preset: {preset.title}** ({preset.reference}). {preset.summary}")
        with st.spinner("Measuring what this preset claims…"):
            checks = compute.preset_checks(preset.key)
        for claim, measured, holds in checks:
            icon = ":material/check_circle:" if holds else ":material/cancel:"
            verdict = "holds" if holds else "does not hold"
            st.markdown(f"{icon} Claim: {claim}. Measured: {measured}: **{verdict}**.")


# Every control a visitor can touch, by Streamlit's own test ids: what "Show controls: off" hides.
CONTROLS = ("stSelectbox", "stSlider", "stNumberInput", "stCheckbox", "stToggle", "stButton", "stDownloadButton",
            "stExpander", "stFileUploader", "stTextArea", "stTextInput", "stCode")  # fmt: skip
SLIDE_NOTE = "slide_note"  # a keyed container slide mode keeps visible (a slide= that names no figure here)

LECTURE_CSS = """
html { font-size: 20px; }
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li,
[data-testid="stCaptionContainer"], [data-testid="stTable"] td, [data-testid="stTable"] th,
[data-baseweb="select"] *, [data-testid="stWidgetLabel"] p, [data-testid="stMetricLabel"] p,
[data-testid="stAlertContentInfo"] p, [data-testid="stAlertContentWarning"] p { font-size: 1.3rem !important; }
h1 { font-size: 3rem !important; } h2 { font-size: 2.3rem !important; } h3 { font-size: 1.8rem !important; }
[data-testid="stMetricValue"] [data-testid="stMarkdownContainer"] p { font-size: 2.6rem !important; }
"""
NO_SIDEBAR_CSS = """
section[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"],
[data-testid="stExpandSidebarButton"] { display: none !important; }
"""


def view_css(lecture: bool, controls: bool, slide: str | None) -> str:
    """The page's CSS for the view settings: larger type for a projector, controls hidden, one figure alone."""
    css = [LECTURE_CSS] if lecture else []
    if not controls:
        hidden = ", ".join(f'[data-testid="stMain"] [data-testid="stElementContainer"]:has([data-testid="{c}"])'
                           for c in CONTROLS)  # fmt: skip
        # blocks (expanders) are not element containers, and help icons sit inside metrics and labels
        blocks = (
            '[data-testid="stMain"] [data-testid="stExpander"], [data-testid="stMain"] [data-testid="stTooltipIcon"]'
        )
        css += [NO_SIDEBAR_CSS, f"{hidden}, {blocks}, .st-key-exports {{ display: none !important; }}"]
    if slide:
        keep = f":not(.st-key-{slide}):not(:has(.st-key-{slide})):not(.st-key-{SLIDE_NOTE}):not(:has(.st-key-{SLIDE_NOTE}))"
        css.append(
            f'[data-testid="stMain"] [data-testid="stElementContainer"]{keep} {{ display: none !important; }}\n'
            'header[data-testid="stHeader"], [data-testid="stToolbar"] { display: none !important; }\n'
            '[data-testid="stMainBlockContainer"] { padding: 0.5rem 1rem !important; max-width: 100% !important; }'
        )
    return "\n".join(css)


def shows_classic_cell(ctx: PageContext, what: str) -> bool:
    """Whether ``ctx``'s model is a one-layer vanilla RNN, LSTM or GRU (what the training player reads);
    otherwise the page says that ``what`` needs one, and this returns False."""
    if compute.classic_one_layer(ctx.cfg):
        return True
    st.info(
        f"{what} a one-layer vanilla RNN, LSTM or GRU; this model is a {ctx.cfg.cell} with "
        f"{ctx.cfg.num_layers} layer(s).",
        icon=":material/info:",
    )
    return False


def apply_view_css() -> None:
    css = view_css(S.lecture(), S.show_controls(), S.slide())
    if css:
        st.html("<style>" + css + "</style>")


# -- figures ----------------------------------------------------------------------------------------


class _Drawn(go.Figure):
    """A figure already validated, styled and turned into a dict (dashboard.compute.ready), handed to
    st.plotly_chart as a Figure: Streamlit then takes ``to_dict()`` as it is (a plain dict would be
    rebuilt into a Figure and validated again, which costs more than drawing it)."""

    def __init__(self, spec: dict):  # deliberately not go.Figure's: nothing to validate
        object.__setattr__(self, "_spec", spec)

    def to_dict(self) -> dict:
        return self._spec


def plotly_config(page: str) -> dict:
    return PLOTLY_CONFIG_SVG if st.session_state.get(svg_key(page)) else PLOTLY_CONFIG


def svg_key(page: str) -> str:
    return f"{page}_svg"


def row(n: int) -> list:
    """``n`` places side by side, for a row of controls or metrics: one horizontal container given ``n``
    times (indexed like ``st.columns(n)``). One block instead of st.columns' n + 1: every element is a
    message the server sends at every rerun, and they are most of a rerun's cost (bench/bench_ui.py)."""
    box = st.container(horizontal=True, gap="medium")
    return [box] * n


def export_format_toggle(page: str, container=None) -> None:
    (container or st).toggle(
        "Export figures as SVG (camera button)", key=svg_key(page), help="Off: PNG at 3x scale. On: SVG (vector)."
    )


SLIDE_HEIGHT = 1000  # pixels: a 1920 x 1080 screen less the browser's margins
SLIDE_FONT = 22  # pixels: read from the back of a lecture hall


def file_stem(page: str, ctx: PageContext | None = None) -> str:
    """What every export of this view is called: the page and the model's key settings."""
    from dashboard.views import file_stem as stem

    if ctx is None:
        return f"bptt-{page.replace('_', '-')}"
    return stem(page, ctx.cfg, ctx.upload.model_name if ctx.upload is not None else None)


def chart(spec: dict, key: str, page: str, stem: str | None = None, selectable: bool = False):
    """A figure dict from dashboard.compute, drawn with the shared config; the camera button's file is
    named ``stem``-``key`` (the page and the settings, then which figure). ``selectable``: a click on a
    point reruns the page and the selection event is returned (None otherwise)."""
    config = plotly_config(page)
    image = {**config["toImageButtonOptions"], "filename": f"{stem or file_stem(page)}-{key.replace('_', '-')}"}
    select = dict(on_select="rerun", selection_mode="points") if selectable else {}
    event = st.plotly_chart(
        _Drawn(spec), key=key, config={**config, "toImageButtonOptions": image}, width="stretch", theme=None, **select
    )
    return event if selectable else None


def diagram(svg: str, key: str, alt: str) -> None:
    """A static SVG figure (the Overview's diagram), in the page itself: shown the moment the rerun
    arrives, with no plotting library to load in the browser; in slide mode alone, like the charts."""
    slide = S.slide()
    if slide is not None and slide != key:
        return
    # An <img> of a data URI: the page's HTML sanitiser keeps it (it strips inline <svg>), and it needs
    # no request of its own.
    data = base64.b64encode(svg.encode()).decode()
    st.html(f'<div class="bptt-figure" data-key="{key}"><img src="data:image/svg+xml;base64,{data}" '
            f'alt="{html.escape(alt)}" style="width:100%"></div>')  # fmt: skip


CARDS_CSS = """<style>
.bptt-cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(17rem,1fr));gap:.75rem;margin:.25rem 0 1rem}
.bptt-card{border:1px solid rgba(31,36,48,.15);border-radius:.5rem;padding:.6rem .8rem;line-height:1.4}
.bptt-card b{display:block}.bptt-card i{color:#4b5563}.bptt-card small{display:block;color:#6b7280;margin-top:.3rem}
</style>"""


def cards(presets, page_titles: dict[str, str]) -> None:
    """The presets as cards (title, the page it opens, what to look for and who showed it), in one element."""
    body = "".join(
        f'<div class="bptt-card"><b>{html.escape(p.title)}</b><i>{html.escape(page_titles[p.page])}</i>'
        f"<small>{html.escape(p.summary)} ({html.escape(p.reference)})</small></div>"
        for p in presets
    )
    st.html(f'{CARDS_CSS}<div class="bptt-cards">{body}</div>')


def _csv(data) -> bytes:
    return data.to_csv(index=False).encode()


def show_figure(page: str, shown: Shown, ctx: PageContext | None = None, selectable: bool = False):
    """The figure, its CSV download beside it (written when clicked), and the 'what am I looking at'
    paragraph; ``ctx`` names the exported files after the settings. ``selectable``: returns the
    chart's selection event (a clicked point), None when the figure is not drawn."""
    stem = file_stem(page, ctx)
    slide = S.slide()
    if slide is not None:  # one figure alone, as tall as a 1080-pixel screen allows; the others not drawn
        if shown.key == slide:
            lay = shown.spec.get("layout", {})
            big = {"height": SLIDE_HEIGHT, "font": {**lay.get("font", {}), "size": SLIDE_FONT},
                   "title": {**lay.get("title", {}), "font": {"size": round(SLIDE_FONT * 1.25)}}}  # fmt: skip
            spec = {**shown.spec, "layout": {**lay, **big}}
            return chart(spec, shown.key, page, stem, selectable)
        return None
    event = chart(shown.spec, shown.key, page, stem, selectable)
    # Lazy: the CSV button and the paragraph are sent only while their expander is open (opening it reruns
    # this fragment), since every element costs a message and a browser redraw at every rerun.
    more = st.expander(DETAILS_LABEL, key=details_key(shown.key), on_change="rerun")
    if more.open:
        more.markdown(shown.explain)
        more.download_button(
            "CSV",
            partial(_csv, shown.data),
            file_name=f"{stem}-{shown.csv_name}",
            mime="text/csv",
            key=f"{shown.key}_csv",
            on_click="ignore",
            icon=":material/download:",
            help="The numbers behind this figure, as CSV",
        )
    return event


DETAILS_LABEL = "What am I looking at? · CSV"  # each figure's expander: its explanation and its CSV


def details_key(figure_key: str) -> str:
    """The key of a figure's expander (its explanation and CSV)."""
    return f"{figure_key}_explain"


# -- exports ----------------------------------------------------------------------------------------


def exports(
    page: str,
    ctx: PageContext,
    page_settings: tuple[S.Setting, ...] = (),
    extra: dict | None = None,
    report_kw: dict | None = None,
) -> None:
    """Settings as JSON, the link to this view, and the HTML report (``report_kw``: what
    bptt_core.report.html.build_report adds for this page)."""
    if S.slide() is not None:
        return
    # Lazy, like the explanations: the nine elements inside are sent only while it is open (opening it
    # reruns the page), since every element costs a message and a browser redraw at every rerun.
    shelf = st.expander(
        "Share and export: settings (JSON), a link to this view, the HTML report",
        key=EXPORTS_OPEN, on_change="rerun", icon=":material/ios_share:",
    )  # fmt: skip
    if shelf.open:
        with shelf.container(key="exports"):
            _exports(page, ctx, page_settings, extra, report_kw)


EXPORTS_OPEN = "exports_open"  # the exports' expander, one key on every page: open stays open across pages


def _exports(page, ctx, page_settings, extra, report_kw) -> None:
    c1, c2 = st.columns([1, 2])
    stem = file_stem(page, ctx)
    c1.download_button(
        "Settings (JSON)",
        view_json(page, ctx, page_settings, extra),
        file_name=f"{stem}-settings.json",
        mime="application/json",
        key=f"{page}_json",
        on_click="ignore",
        icon=":material/download:",
        help="This view as a file: load it back under 'Open a saved view' (sidebar) to reopen it.",
    )
    report_button(page, ctx, report_kw or {}, stem, c1)
    c2.markdown("**Link to this view** (copy it; it reopens these settings):")
    c2.code(view_link(page, page_settings), language=None)
    if ctx.upload is not None:
        c2.caption(f"The link holds the settings only: whoever opens it uploads {ctx.upload.model_name} again.")


def report_button(page: str, ctx: PageContext, report_kw: dict, stem: str, container) -> None:
    """'Build the HTML report' (every page's sections; this page's settings for its own), then its
    download. Costed first: light, it is built in this rerun; heavier, a background job with progress
    and Cancel; over the budget, the page says what to lower (dashboard/jobs_ui.py)."""
    from dashboard import compare_ui as CU
    from dashboard import jobs_ui as JU

    kw = {**report_kw, "every_page": True, **CU.report_kw()}  # compare mode: B's sections too
    key = ("report", ctx, tuple(sorted((k, repr(v)) for k, v in kw.items())), S.lecture())
    clicked = f"{page}_report_for"  # which report this session asked for (it outlives the click's rerun)
    if container.button(
        "Build the HTML report",
        key=f"{page}_report",
        help="Every page's figures for these settings (this page's own settings for its section).",
    ):
        st.session_state[clicked] = key  # fmt: skip
    if st.session_state.get(clicked) != key:
        return
    compute.numerics()
    from bptt_core.report.html import build_report, report_cost_of

    cost = report_cost_of(ctx.cfg, upload=ctx.upload, **kw)
    lecture = S.lecture()

    def build(progress, cancelled):
        return build_report(ctx.cfg, lecture=lecture, upload=ctx.upload, **kw)

    with container:
        html = JU.light_or_background(key, build, cost, "The HTML report")
    if html:
        container.download_button(
            "HTML report", html, file_name=f"{stem}-report.html", mime="text/html", key=f"{page}_report_dl",
            on_click="ignore", icon=":material/download:",
        )  # fmt: skip


def view_json(page: str, ctx: PageContext, page_settings: tuple[S.Setting, ...] = (), extra: dict | None = None) -> str:
    """This view as the settings JSON that 'Open a saved view' reads back (dashboard.views)."""
    from dashboard.views import View
    from dashboard.views import view_json as to_json

    values = {s.key: st.session_state.get(s.key, s.default) for s in page_settings} | (extra or {})
    up = ctx.upload
    record = {}
    if up is not None:
        record = {"model": up.model_name, "model_sha256": up.model_sha}
        if up.sequence_sha:
            record |= {"sequence": up.sequence_name, "sequence_sha256": up.sequence_sha}
    return to_json(View(page, ctx.cfg, values, record, **S.saved_compare()))


def view_link(page: str, page_settings: tuple[S.Setting, ...] = ()) -> str:
    """The full URL of this view: the page's address plus every non-default setting."""
    try:
        base = st.context.url
    except Exception:  # noqa: BLE001 - no browser context (tests, bare mode)
        base = None
    if not base:
        path = page_table.page(page).url_path if page != page_table.DEFAULT else ""
        base = f"http://localhost:8501/{path}"
    params = S.view_params(page_settings)
    return base + ("?" + urllib.parse.urlencode(params) if params else "")
