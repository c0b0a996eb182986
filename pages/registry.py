"""The pages, in menu order. Kept free of heavy imports: app.py reads it before anything else so that
``st.navigation`` runs within milliseconds of a session starting.

Each page file is named like its URL path (gradient-flow.py for /gradient-flow): on a freshly started
server Streamlit may resolve the first request against the plain pages/ folder, and a matching name
finds the page instead of showing "Page not found".
"""

PAGE_FILES = {
    "overview": "pages/overview.py",
    "gradient_flow": "pages/gradient-flow.py",
    "spectrum": "pages/spectrum.py",
    "clipping": "pages/clipping.py",
    "truncation": "pages/truncation.py",
    "calculator": "pages/calculator.py",
}
PAGE_TITLES = {
    "overview": "Overview",
    "gradient_flow": "Gradient flow",
    "spectrum": "Spectrum",
    "clipping": "Clipping",
    "truncation": "Truncated BPTT",
    "calculator": "Calculator",
}
ICONS = {
    "overview": ":material/home:",
    "gradient_flow": ":material/grid_on:",
    "spectrum": ":material/blur_circular:",
    "clipping": ":material/content_cut:",
    "truncation": ":material/timeline:",
    "calculator": ":material/calculate:",
}


def url_path(page: str) -> str:
    return page.replace("_", "-")


def make_pages() -> list:
    """The st.Page list for st.navigation (absolute paths: valid whichever script is running)."""
    from pathlib import Path

    import streamlit as st

    root = Path(__file__).resolve().parents[1]
    return [
        st.Page(
            root / PAGE_FILES[k], title=PAGE_TITLES[k], icon=ICONS[k], url_path=url_path(k), default=k == "overview"
        )
        for k in PAGE_FILES
    ]
