"""The BPTT calculator: parameters, memory, FLOPs, gradient risk and time, each labelled how it was obtained."""

import streamlit as st

from bptt_core import calculator as K
from bptt_core.tasks import task_input_size, task_output_size
from dashboard import compute, layout
from dashboard import settings as S
from dashboard.settings import UI_MAX_SEQ_LEN, Setting

PAGE = "calculator"
BATCH = Setting("ca_batch", "Batch size B", "int", 32, lo=1, hi=1024, step=1)
LAYERS = Setting("ca_layers", "Layers", "int", 1, lo=1, hi=K.MAX_LAYERS, step=1)
TRUNC = Setting("ca_trunc", "Truncation k (0 = full BPTT)", "int", 0, lo=0, hi=UI_MAX_SEQ_LEN, step=1)
DATASET = Setting("ca_dataset", "Sequences per epoch", "int", 10000, lo=1, hi=K.MAX_DATASET, step=1000)
LR = Setting("ca_lr", "Learning rate", "float", 0.01, lo=0.0001, hi=K.MAX_LR, step=0.005)
TIME = Setting("ca_time", "Time it", "bool", True, help="Measure the time of a real training step on this machine.")
SETTINGS = (BATCH, LAYERS, TRUNC, DATASET, LR, TIME)


@st.fragment
def body(ctx: compute.PageContext) -> None:
    """Everything below the header: its controls rerun only this part of the page."""
    cfg = ctx.cfg
    c = st.columns(6)
    batch = S.page_setting(BATCH, c[0])
    layers = S.page_setting(LAYERS, c[1])
    trunc = S.page_setting(TRUNC, c[2])
    dataset = S.page_setting(DATASET, c[3])
    lr = S.page_setting(LR, c[4], format="%.4f")
    measure = S.page_setting(TIME, c[5])
    layout.export_format_toggle(PAGE)
    if trunc > cfg.seq_len:
        st.warning(f"The truncation k = {trunc} exceeds the sequence length T = {cfg.seq_len}; using k = T.")
        trunc = cfg.seq_len
    I, O = task_input_size(cfg.task, cfg.input_size), task_output_size(cfg.task, cfg.input_size)
    kw = dict(
        cell=cfg.cell, input_size=I, hidden_size=cfg.hidden_size, output_size=O, seq_len=cfg.seq_len,
        batch_size=batch, num_layers=layers, lr=lr, truncation=trunc or None, dataset_size=dataset,
        activation=cfg.activation if cfg.cell == "rnn" else "tanh", init=cfg.init, gain=cfg.gain,
        measure_time=measure, seed=cfg.seed,
    )  # fmt: skip
    with st.spinner("Measuring…"):
        try:
            table, csv = compute.calculator_view(**kw)
        except ValueError as e:
            st.error(f"The calculator cannot use these settings: {e}")
            return

    st.caption(f"Input size {I} and output size {O} come from the {cfg.task} task; the rest from the sidebar.")
    # A static table wraps its cells: the "how it was obtained" sentences are the point and must be read whole.
    st.table(table, hide_index=True)
    st.download_button(
        "CSV of the table", csv, file_name="bptt-calculator.csv", mime="text/csv",
        icon=":material/download:",
        key="ca_table_csv", on_click="ignore",
    )  # fmt: skip
    # Memory against sequence length: full BPTT grows linearly, a TBPTT window does not.
    layout.show_figure(PAGE, compute.memory_view(cfg, I, O, batch, layers, trunc, S.lecture()), ctx)
    layout.exports(PAGE, ctx, SETTINGS, report_kw=dict(calculator=dict(
        batch_size=batch, num_layers=layers, truncation=trunc or None, dataset_size=dataset, lr=lr,
        measure_time=measure)))  # fmt: skip


ctx = layout.page_start(
    PAGE,
    "BPTT calculator",
    "What this model costs to train with BPTT and whether its gradients will flow. Every number says how it "
    "was obtained: **exact** (from the layer shapes), **measured** (on this machine, now) or **estimated** "
    "(a formula checked against measurement).",
)
if ctx is None:
    st.stop()
body(ctx)
