"""The baseline of bench/bench_ui.py: a bare Streamlit page with one slider (what any rerun costs)."""

import streamlit as st

st.slider("Hidden units H", 1, 256, 64, key="m_hidden")
