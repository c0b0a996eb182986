"""BPTT Explorer: the router. Page config, then navigation; pages do the showing."""

import streamlit as st

st.set_page_config(page_title="BPTT Explorer", page_icon="∂", layout="wide")
st.title("BPTT Explorer")
st.write("How gradients flow backward through time in recurrent networks. The pages arrive with the dashboard.")
