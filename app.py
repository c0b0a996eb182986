"""BPTT Explorer: the router. Page config, navigation, the shared sidebar controls; pages show."""

import streamlit as st

from bptt_core.allocator import tune_for_server
from pages.registry import make_pages

tune_for_server()  # once per process: memory stays flat while many sessions compute (see the module)

st.set_page_config(page_title="BPTT Explorer", page_icon="∂", layout="wide")
# Navigation first, before the heavy imports: it is what tells Streamlit to ignore the plain pages/ folder.
nav = st.navigation(make_pages())

from pages.common import follow_preset, forget_idle_cache_locks, sidebar  # noqa: E402

follow_preset()
sidebar()
st.session_state["_sidebar_done"] = True
forget_idle_cache_locks()  # st.cache_data would keep one lock per setting ever computed
nav.run()
