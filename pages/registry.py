"""The pages, in menu order. Kept free of heavy imports: app.py reads it before anything else so that
``st.navigation`` runs within milliseconds of a session starting."""

PAGE_FILES = {
    "overview": "pages/overview.py",
    "gradient_flow": "pages/gradient_flow.py",
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
