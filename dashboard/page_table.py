"""The pages, in menu order: one table for the router (:mod:`dashboard.router`), the presets and the tests.

Kept free of heavy imports: the router reads it before anything else so that ``st.navigation`` runs
within milliseconds of a session starting.

Each page file is named like its URL path (gradient-flow.py for /gradient-flow): on a freshly started
server Streamlit may resolve the first request against the plain pages/ folder, and a matching name
finds the page instead of showing "Page not found".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
# The folder whose pages/ holds the page scripts, beside the script Streamlit runs: installed, the
# package itself (the wheel ships the checkout's pages/ as dashboard/pages/, beside router.py); in the
# checkout, the repository root (pages/ beside app.py).
HOME = _PACKAGE if (_PACKAGE / "pages").is_dir() else _PACKAGE.parent
# The scripts Streamlit may run as the router (which draws the sidebar): the checkout's, the installed one.
ROUTER_SCRIPTS = ("app.py", "router.py")


@dataclass(frozen=True)
class PageInfo:
    key: str  # stable id: presets, widget-key prefixes and tests name pages by it
    file: str  # the script, relative to HOME (the router's folder)
    title: str  # the menu entry
    icon: str
    uses_upload: bool  # analyses the uploaded model (when there is one) instead of the settings model
    figures: tuple[str, ...] = ()  # its charts' keys, in page order (slide mode shows one of them)

    @property
    def url_path(self) -> str:
        return self.key.replace("_", "-")


PAGES: tuple[PageInfo, ...] = (
    PageInfo("overview", "pages/overview.py", "Overview", ":material/home:", False, ("ov_diagram",)),
    PageInfo("gradient_flow", "pages/gradient-flow.py", "Gradient flow", ":material/grid_on:", True,
             ("gf_heatmap", "gf_unroll", "gf_unroll_sv", "gf_unroll_sat", "gf_unroll_nonnormal", "gf_unroll_contrib",
              "gf_lag", "gf_depth", "gf_dldh", "gf_contrib", "gf_cmp_a", "gf_cmp_b", "gf_cmp_ratio",
              "gf_play_heatmap", "gf_play_dh", "gf_play_eig", "gf_play_sv", "gf_play_lyap")),
    PageInfo("spectrum", "pages/spectrum.py", "Spectrum", ":material/blur_circular:", True, ("sp_eig", "sp_sv", "sp_lyap", "sp_lambda",
             "sp_cmp_eig", "sp_cmp_sv", "sp_cmp_lyap")),
    PageInfo("clipping", "pages/clipping.py", "Clipping", ":material/content_cut:", True,
             ("cl_gradnorm", "cl_loss", "cl_dh", "cl_play_heatmap", "cl_play_dh", "cl_play_eig", "cl_play_sv",
              "cl_play_lyap", "cl_cmp_gradnorm")),
    PageInfo("truncation", "pages/truncation.py", "Truncated BPTT", ":material/timeline:", True,
             ("tb_heatmap", "tb_compare", "tb_cmp_a", "tb_cmp_b", "tb_play_heatmap", "tb_play_dh", "tb_play_eig",
              "tb_play_sv", "tb_play_lyap")),
    PageInfo("calculator", "pages/calculator.py", "Calculator", ":material/calculate:", True, ("ca_memory",)),
    PageInfo("runs", "pages/runs.py", "Runs", ":material/monitoring:", False,
             ("ru_history", "ru_heatmap", "ru_dldh", "ru_eig", "ru_sv", "ru_lyap")),
    PageInfo("phase_diagram", "pages/phase-diagram.py", "Phase diagram", ":material/grain:", False, ("pd_chart",)),
)  # fmt: skip
FIGURES = tuple(f for p in PAGES for f in p.figures)
# st.set_page_config's arguments: app.py's, and a page run without it (a fresh server's first request).
# The icon is SVG markup, which Streamlit sends inline as a data: URL. A plain character ("∂") became the
# favicon's URL, fetched at every rerun; an emoji has no font here (an empty box); a Material icon is
# fetched from fonts.gstatic.com.
FAVICON = (
    "<svg viewBox='0 0 64 64'><rect width='64' height='64' rx='12' fill='#1f77b4'/>"
    "<text x='32' y='48' font-size='46' font-family='serif' font-style='italic' text-anchor='middle' "
    "fill='white'>∂</text></svg>"
)
PAGE_CONFIG = dict(page_title="BPTT Explorer", page_icon=FAVICON, layout="wide")
BY_KEY = {p.key: p for p in PAGES}
DEFAULT = "overview"


def page(key: str) -> PageInfo:
    if key not in BY_KEY:
        raise ValueError(f"page must be one of {', '.join(BY_KEY)}; got {key!r}")
    return BY_KEY[key]


def make_pages() -> list:
    """The st.Page list for st.navigation (absolute paths: valid whichever script is running)."""
    import streamlit as st

    return [
        st.Page(HOME / p.file, title=p.title, icon=p.icon, url_path=p.url_path, default=p.key == DEFAULT) for p in PAGES
    ]
