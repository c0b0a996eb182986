"""Compare mode on a page (compare=true): model B's context, and the metrics as A, B and B − A.

B is read from its sidebar section (``b_`` keys, dashboard/settings.py) as A is by
:func:`dashboard.layout.page_start`: its settings, or the uploaded model when ``b_upload`` is on (A is then
the settings model). A combination B cannot use is said in the page, under B's name, and B is left out.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from . import compute, uploads
from . import settings as S
from .compute import PageContext


def context_b(heading: str = "Compare: A against B") -> PageContext | None:
    """Model B's PageContext (its heading drawn), or None: compare mode is off, or B cannot be used (the
    page has said why)."""
    if not S.compare_on():
        return None
    st.subheader(heading)
    cfg_b, error = S.model_config_b()
    if cfg_b is None:
        st.error(f"Model B's settings cannot be used: {error}")
        return None
    upload = None
    if S.b_uses_upload():
        upload = uploads.current_upload()
        if upload is None:
            st.warning(
                "B uses the uploaded model (b_upload), but no model is uploaded in this session: B is the "
                "settings model of its sidebar section. Upload one under 'Your own model'.",
                icon=":material/warning:",
            )
        else:
            try:
                cfg_b, notes = uploads.analysed_model(cfg_b, upload)
            except ValueError as e:  # evicted bytes, or a sequence that no longer fits
                st.error(f"The uploaded model cannot be used for B any more: {e}. B is its settings model.")
                upload = None
            else:
                st.markdown(f"**B: {notes[0]}** A is the settings model.")
    errors, notes = compute.problems(cfg_b)
    for n in notes:
        st.caption(f"Model B: {n}")
    for e in errors:
        st.error(f"Model B: {e}")
    return None if errors else PageContext(cfg_b, upload)


def metrics(page: str, table: pd.DataFrame, key: str) -> None:
    """The A, B, B − A table and its CSV."""
    st.dataframe(table, hide_index=True, key=key)
    st.download_button(
        "Metrics CSV (A, B, B − A)",
        table.to_csv(index=False).encode(),
        file_name=f"bptt-{page.replace('_', '-')}-compare-metrics.csv",
        mime="text/csv",
        key=f"{key}_csv",
        on_click="ignore",
        icon=":material/download:",
    )
