"""Compare mode on a page (compare=true): model B's context, and the metrics as A, B and B − A.

B is read from its sidebar section (``b_`` keys, dashboard/settings.py) as A is by
:func:`dashboard.layout.page_start`: its settings, or the uploaded model when ``b_upload`` is on (A is then
the settings model). A combination B cannot use is said in the page, under B's name, and B is left out.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from . import compute, uploads
from . import jobs_ui as JU
from . import settings as S
from .compute import PageContext


def _model_b() -> tuple[PageContext | None, list[tuple[str, str]]]:
    """(B's context or None, what the page should say about B: (kind, text) with kind error, warning,
    markdown or caption). Compare mode must be on."""
    said = []
    cfg_b, error = S.model_config_b()
    if cfg_b is None:
        return None, [("error", f"Model B's settings cannot be used: {error}")]
    upload = None
    if S.b_uses_upload():
        upload = uploads.current_upload()
        if upload is None:
            said.append(("warning", "B uses the uploaded model (b_upload), but no model is uploaded in this session: "
                         "B is the settings model of its sidebar section. Upload one under 'Your own model'."))  # fmt: skip
        else:
            try:
                cfg_b, notes = uploads.analysed_model(cfg_b, upload)
            except ValueError as e:  # evicted bytes, or a sequence that no longer fits
                said.append(
                    ("error", f"The uploaded model cannot be used for B any more: {e}. B is its settings model.")
                )
                upload = None
            else:
                said.append(("markdown", f"**B: {notes[0]}** A is the settings model."))
    errors, notes = compute.problems(cfg_b)
    said += [("caption", f"Model B: {n}") for n in notes] + [("error", f"Model B: {e}") for e in errors]
    return (None if errors else PageContext(cfg_b, upload)), said


def context_b(heading: str = "Compare: A against B") -> PageContext | None:
    """Model B's PageContext (its heading drawn), or None: compare mode is off, or B cannot be used (the
    page has said why)."""
    if not S.compare_on():
        return None
    st.subheader(heading)
    ctx_b, said = _model_b()
    for kind, text in said:
        if kind == "warning":
            st.warning(text, icon=":material/warning:")
        else:
            getattr(st, kind)(text)
    return ctx_b


def quiet_flow_b(norm, block) -> tuple[str, compute.Result] | None:
    """Model B's name and gradient-flow matrix, for drawing inside A's own figures (the Gradient flow
    page's lag profile): when compare mode is on, B can be used and its matrix is light or already
    computed; None otherwise, without a word (the compare section further down says why)."""
    if not S.compare_on():
        return None
    ctx_b, _ = _model_b()
    if ctx_b is None:
        return None
    L_b = JU.ask_quietly(compute.FLOW, ctx_b, norm, block)
    name = "uploaded model" if ctx_b.upload is not None else ctx_b.cfg.cell.upper()
    return None if L_b is None else (name, L_b)


def metrics(page: str, table: pd.DataFrame, key: str) -> None:
    """The A, B, B − A table and its CSV (not on a slide: it shows one figure alone)."""
    if S.slide() is not None:
        return
    numbers = [c for c in ("A", "B", "B − A") if c in table.columns]
    shown = table.style.format("{:.6g}", subset=numbers, na_rep="n/a")  # a missing number is n/a, not "None"
    st.dataframe(shown, hide_index=True, key=key)
    if table[numbers].isna().to_numpy().any():
        st.caption("n/a: the number does not exist for that model (no memory horizon within the sequence, "
                   "γσ₁ for a gated cell, no divergence or no clip in a run), so neither does its difference.")  # fmt: skip
    st.download_button(
        "Metrics CSV (A, B, B − A)",
        table.to_csv(index=False).encode(),
        file_name=f"bptt-{page.replace('_', '-')}-compare-metrics.csv",
        mime="text/csv",
        key=f"{key}_csv",
        on_click="ignore",
        icon=":material/download:",
    )


def report_kw() -> dict:
    """What bptt_core.report.html.build_report adds for compare mode's B (nothing while compare mode is off or
    B cannot be used): B's analysed settings and its upload."""
    if not S.compare_on():
        return {}
    ctx_b, _ = _model_b()
    return {} if ctx_b is None else {"compare_cfg": ctx_b.cfg, "compare_upload": ctx_b.upload}
