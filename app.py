"""BPTT Explorer: the router. Page config, the shared sidebar controls, navigation; pages show."""

import streamlit as st

from pages.common import PAGE_FILES, PAGE_TITLES, follow_preset, sidebar

st.set_page_config(page_title="BPTT Explorer", page_icon="∂", layout="wide")

ICONS = {
    "overview": ":material/home:",
    "gradient_flow": ":material/grid_on:",
    "spectrum": ":material/blur_circular:",
    "clipping": ":material/content_cut:",
    "truncation": ":material/timeline:",
    "calculator": ":material/calculate:",
}
pages = [
    st.Page(PAGE_FILES[k], title=PAGE_TITLES[k], icon=ICONS[k], url_path=k.replace("_", "-"), default=k == "overview")
    for k in PAGE_FILES
]
nav = st.navigation(pages)
follow_preset()
sidebar()
nav.run()
