"""BPTT Explorer: the router. Page config, navigation, the shared sidebar; pages show (docs/design.md)."""

import streamlit as st

from dashboard.allocator import freeze_new_imports, tune_for_server
from dashboard.page_table import PAGE_CONFIG, make_pages
from dashboard.transport import send_without_delay

tune_for_server()  # once per process: memory stays flat while many sessions compute (see the module)
send_without_delay()  # once per process: Nagle's algorithm had held each rerun's messages (see the module)

st.set_page_config(**PAGE_CONFIG)
# Navigation first, before the heavier imports: it is what tells Streamlit to ignore the plain pages/ folder.
nav = st.navigation(make_pages())

from dashboard.compute import forget_idle_cache_locks  # noqa: E402
from dashboard.layout import draw_sidebar  # noqa: E402
from dashboard.settings import follow_preset  # noqa: E402

follow_preset()
draw_sidebar()
forget_idle_cache_locks()  # Streamlit's caches would keep one lock per setting ever computed
nav.run()
freeze_new_imports()  # Streamlit collects garbage after every rerun: keep the libraries out of that pass
