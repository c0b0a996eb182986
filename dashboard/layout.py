"""The frame of every page: the shared sidebar, ``page_start`` (header, URL warnings, the page's
:class:`PageContext`), figures with their CSV and explanation, the exports, lecture mode.

How a value gets from a widget to a figure (docs/design.md): app.py draws the sidebar (the widgets
keep their values under their URL keys); the page calls :func:`page_start`, which reads them into one
frozen PageContext (the ModelConfig, with an uploaded model's architecture applied, and the upload);
the page passes that context and its own controls' values to the cached functions of
:mod:`dashboard.compute`, and shows what they return with :func:`show_figure`.
"""

from __future__ import annotations

import json
import urllib.parse
from functools import partial
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from bptt_core import figures as F

from . import compute, page_table, uploads
from . import settings as S
from .compute import PageContext, Shown


def draw_sidebar() -> None:
    """The shared controls (the sidebar), and above the page the warnings about refused URL values."""
    with st.sidebar:
        uploads.upload_controls()
        warnings = S.shared_settings(disabled=uploads.disabled_settings())
        try:
            overview = page_table.page(page_table.DEFAULT).file
            st.page_link(overview, label="Presets: the classic experiments", icon=":material/science:")
        except Exception:  # noqa: BLE001 - a page run on its own (no navigation) has no page to link to
            pass
    for w in warnings:
        st.warning(w, icon="⚠️")


def _through_router() -> bool:
    """Whether this run went through app.py (which drew the sidebar), not to a page script alone: as
    AppTest.from_file(page) runs it, or a fresh server's first request in the pages/-folder mode."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    ctx = get_script_run_ctx()
    routed = ctx is not None and Path(ctx.main_script_path).name == "app.py"
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
        _claim_navigation()
        draw_sidebar()
    apply_view_css()


def page_start(page: str, title: str, intro: str) -> PageContext | None:
    """Title, intro and the page's context: the model settings it analyses (an uploaded model's
    architecture applied where the page uses uploads) and the upload. None: the settings cannot be
    used, the page has shown why and stops."""
    info = page_table.page(page)
    frame()
    st.title(title)
    st.markdown(intro)
    cfg, error = S.model_config()
    if cfg is None:
        st.error(f"These settings cannot be used: {error}")
        return None
    upload = uploads.current_upload() if info.uses_upload else None
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
                st.info(n, icon="ℹ️")
    errors, notes = compute.problems(cfg)
    for n in notes:
        st.info(n, icon="ℹ️")
    for e in errors:
        st.error(e)
    if errors:
        st.caption("Change the setting in the sidebar; every other page is still available.")
        return None
    return PageContext(cfg, upload)


def apply_view_css() -> None:
    css = []
    if S.lecture():
        css.append(
            """
            html { font-size: 20px; }
            [data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li,
            [data-testid="stCaptionContainer"] { font-size: 1.3rem !important; }
            h1 { font-size: 3rem !important; } h2 { font-size: 2.3rem !important; } h3 { font-size: 1.8rem !important; }
            [data-testid="stMetricValue"] [data-testid="stMarkdownContainer"] p { font-size: 2.6rem !important; }
            """
        )
    if not S.show_controls():
        css.append(
            """
            section[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"],
            [data-testid="stExpandSidebarButton"] { display: none !important; }
            """
        )
    if css:
        st.html("<style>" + "\n".join(css) + "</style>")


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
    return F.PLOTLY_CONFIG_SVG if st.session_state.get(svg_key(page)) else F.PLOTLY_CONFIG


def svg_key(page: str) -> str:
    return f"{page}_svg"


def export_format_toggle(page: str, container=None) -> None:
    (container or st).toggle(
        "Export figures as SVG (camera button)", key=svg_key(page), help="Off: PNG at 3x scale. On: SVG (vector)."
    )


def chart(spec: dict, key: str, page: str) -> None:
    """A figure dict from dashboard.compute, drawn with the shared config."""
    st.plotly_chart(_Drawn(spec), key=key, config=plotly_config(page), width="stretch", theme=None)


def _csv(data) -> bytes:
    return data.to_csv(index=False).encode()


def show_figure(page: str, shown: Shown) -> None:
    """The figure, its CSV download beside it (written when clicked), and the 'what am I looking at' paragraph."""
    chart(shown.spec, shown.key, page)
    c1, c2 = st.columns([1, 4], vertical_alignment="top")
    c1.download_button(
        "CSV",
        partial(_csv, shown.data),
        file_name=shown.csv_name,
        mime="text/csv",
        key=f"{shown.key}_csv",
        on_click="ignore",
        icon=":material/download:",
        help="The numbers behind this figure, as CSV",
    )
    with c2.expander("What am I looking at?"):
        st.markdown(shown.explain)


# -- exports ----------------------------------------------------------------------------------------


def exports(
    page: str,
    ctx: PageContext,
    page_settings: tuple[S.Setting, ...] = (),
    extra: dict | None = None,
    report_kw: dict | None = None,
) -> None:
    """Settings as JSON, the link to this view, and the HTML report (``report_kw``: what
    bptt_core.report.build_report adds for this page)."""
    st.divider()
    st.subheader("Share and export")
    c1, c2 = st.columns([1, 2])
    settings = {"page": page, **ctx.cfg.to_dict(), **{s.key: st.session_state.get(s.key) for s in page_settings}}
    settings |= extra or {}
    up = ctx.upload
    if up is not None:
        settings |= {"uploaded_model": up.model_name, "uploaded_model_sha256": up.model_sha}
        if up.sequence_sha:
            settings |= {"uploaded_sequence": up.sequence_name, "uploaded_sequence_sha256": up.sequence_sha}
    c1.download_button(
        "⬇ Settings (JSON)",
        json.dumps(settings, indent=2),
        file_name=f"bptt-{page}-settings.json",
        mime="application/json",
        key=f"{page}_json",
        on_click="ignore",
    )
    if c1.button("Build the HTML report", key=f"{page}_report", help="Every figure for these settings in one file."):
        with st.spinner("Computing every figure for the report…"):
            try:
                html = compute.report_html(ctx, lecture=S.lecture(), **(report_kw or {}))
            except ValueError as e:
                html = None
                st.error(f"The report could not be built: {e}")
        if html:
            c1.download_button(
                "⬇ HTML report",
                html,
                file_name="bptt-report.html",
                mime="text/html",
                key=f"{page}_report_dl",
                on_click="ignore",
            )
    c2.markdown("**Link to this view** (copy it; it reopens these settings):")
    c2.code(view_link(page, page_settings), language=None)
    if up is not None:
        c2.caption(f"The link holds the settings only: whoever opens it uploads {up.model_name} again.")


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
