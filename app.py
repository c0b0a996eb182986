"""BPTT Explorer: the router. Page config, navigation, the shared sidebar controls; pages show."""

import streamlit as st

from pages.registry import ICONS, PAGE_FILES, PAGE_TITLES, url_path

st.set_page_config(page_title="BPTT Explorer", page_icon="∂", layout="wide")
# Navigation first, before the heavy imports: it is what tells Streamlit to ignore the plain pages/ folder.
nav = st.navigation(
    [
        st.Page(PAGE_FILES[k], title=PAGE_TITLES[k], icon=ICONS[k], url_path=url_path(k), default=k == "overview")
        for k in PAGE_FILES
    ]
)

from pages.common import follow_preset, sidebar  # noqa: E402

follow_preset()
sidebar()
st.session_state["_sidebar_done"] = True
nav.run()
