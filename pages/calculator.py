"""The BPTT calculator: parameters, training memory, FLOPs, gradient risk and time, each labelled how it
was obtained. With an uploaded model it describes that model; the decay rate and memory horizon are
the Gradient flow page's (the same module and input)."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from bptt_core import calculator as K
from bptt_core import figures as F
from bptt_core.config import DIAGONAL_CELLS, MAX_INPUT
from bptt_core.tasks import task_input_size, task_output_size
from pages import common as C

PAGE = "calculator"
BATCH = C.Setting("ca_batch", "Batch size B", "int", 32, lo=1, hi=1024, step=1)
LAYERS = C.Setting("ca_layers", "Layers (0 = the sidebar's)", "int", 0, lo=0, hi=K.MAX_LAYERS, step=1)
INPUT = C.Setting("ca_input", "Input size I (0 = the task's)", "int", 0, lo=0, hi=MAX_INPUT, step=1)
OUTPUT = C.Setting("ca_output", "Output size O (0 = the task's)", "int", 0, lo=0, hi=MAX_INPUT, step=1)
TRUNC = C.Setting("ca_trunc", "Truncation k (0 = full BPTT)", "int", 0, lo=0, hi=C.UI_MAX_SEQ_LEN, step=1)
OPTIMIZER = C.Setting(
    "ca_opt", "Optimiser", "select", "sgd", K.OPTIMIZERS,
    help="Its state counts in the training memory: SGD none, momentum one copy of the parameters, Adam two.",
)  # fmt: skip
CHECKPOINT = C.Setting(
    "ca_ckpt", "Checkpointing", "bool", False,
    help="Gradient checkpointing every ceil(sqrt(T)) steps: keep only each segment's input state, recompute the rest.",
)  # fmt: skip
DATASET = C.Setting("ca_dataset", "Sequences per epoch", "int", 10000, lo=1, hi=K.MAX_DATASET, step=1000)
LR = C.Setting("ca_lr", "Learning rate", "float", 0.01, lo=0.0001, hi=K.MAX_LR, step=0.005)
TIME = C.Setting("ca_time", "Time it", "bool", True, help="Measure the time of a real training step on this machine.")
C.PAGE_SETTINGS[PAGE] = (BATCH, LAYERS, INPUT, OUTPUT, TRUNC, OPTIMIZER, CHECKPOINT, DATASET, LR, TIME)
SMALL_FLOW_BUDGET = 1e10  # a model other than the Gradient flow page's is measured within this (well under a second)


@st.cache_data(max_entries=16, show_spinner=False)
def estimate(cfg, upload, same_as_flow: bool, **kw):
    """The calculator's table. ``same_as_flow``: measure the Gradient flow page's own module and input
    (the settings model or the upload), so its decay rate and horizon are that page's."""
    with C.compute_slot():
        if same_as_flow:
            rnn, readout, x, _, _ = C.report().model_and_sequence(cfg, upload)
            if readout.out_features != kw["output_size"]:
                readout = None
            if upload is not None:
                labels = dict(model_label=f"the uploaded {upload.model_name}", input_label=(
                    f"the uploaded sequence {upload.sequence_name}" if upload.sequence_sha
                    else f"the {cfg.task} task's first sequence, as on the Gradient flow page"))  # fmt: skip
            else:
                labels = dict(model_label="the sidebar's model (the Gradient flow page's)",
                              input_label=f"the {cfg.task} task's first sequence, as on the Gradient flow page")  # fmt: skip
            e = K.estimate(**kw, model=rnn, x=x, readout=readout, **labels)
        else:
            e = K.estimate(**kw, flow_flop_budget=SMALL_FLOW_BUDGET)
    return e.table(), e.activation_bytes, e.tbptt_activation_bytes


cfg = C.page_start(
    PAGE,
    "BPTT calculator",
    "What this model costs to train with BPTT and whether its gradients will flow. Every number says how it "
    "was obtained: **exact** (from the layer shapes), **measured** (on this machine, now) or **estimated** "
    "(a formula checked against measurement).",
)
if cfg is None:
    st.stop()

upload = C.upload_for(cfg)
task_I, task_O = task_input_size(cfg.task, cfg.input_size), task_output_size(cfg.task, cfg.input_size)
c = st.columns(5)
batch = C.page_setting(BATCH, c[0])
layers = C.page_setting(LAYERS, c[1], disabled=upload is not None or cfg.cell in DIAGONAL_CELLS)
in_size = C.page_setting(INPUT, c[2], disabled=upload is not None)
out_size = C.page_setting(OUTPUT, c[3])
trunc = C.page_setting(TRUNC, c[4])
c = st.columns(5)
optimizer = C.page_setting(OPTIMIZER, c[0])
checkpointing = C.page_setting(CHECKPOINT, c[1])
dataset = C.page_setting(DATASET, c[2])
lr = C.page_setting(LR, c[3], format="%.4f")
measure = C.page_setting(TIME, c[4])
C.export_format_toggle(PAGE)
if trunc > cfg.seq_len:
    st.warning(f"The truncation k = {trunc} exceeds the sequence length T = {cfg.seq_len}; using k = T.")
    trunc = cfg.seq_len
if upload is not None or cfg.cell in DIAGONAL_CELLS or not layers:
    layers = cfg.num_layers  # the sidebar's or the uploaded model's depth (the diagonal cells are not stacked)
if upload is not None:
    in_size = 0  # the uploaded model's input width
I, O = in_size or task_I, out_size or task_O
same_as_flow = I == task_I and layers == cfg.num_layers
kw = dict(
    cell=cfg.cell, input_size=I, hidden_size=cfg.hidden_size, output_size=O, seq_len=cfg.seq_len, batch_size=batch,
    num_layers=layers, lr=lr, truncation=trunc or None, dataset_size=dataset,
    activation=cfg.activation if cfg.cell == "rnn" else "tanh", init=cfg.init, gain=cfg.gain,
    spectral_radius=cfg.spectral_radius, optimizer=optimizer, checkpointing=checkpointing,
    measure_time=measure, seed=cfg.seed,
)  # fmt: skip
with st.spinner("Measuring…"):
    try:
        table, act_bytes, tb_bytes = estimate(cfg, upload, same_as_flow, **kw)
    except ValueError as e:
        st.error(f"The calculator cannot use these settings: {e}")
        st.stop()

source = "the uploaded model" if upload is not None else f"the {cfg.task} task" if not in_size else "this page"
st.caption(
    f"Input size {I} ({'this page' if in_size else source}), output size {O} "
    f"({'this page' if out_size else 'the task' if upload is None else 'the readout or the task'}), "
    f"{layers} layer{'s' if layers > 1 else ''}, the rest from the sidebar."
)
if same_as_flow:
    st.caption(
        "Decay rate and memory horizon: the Gradient flow page's model and input, so the same numbers "
        "(Frobenius norm, threshold 1e-3)."
    )
else:
    st.info(
        f"Decay rate and memory horizon: measured on a model with {layers} layer(s) and input size {I}, built "
        "from the sidebar's settings, on a Gaussian input: the Gradient flow page shows a different model "
        f"({cfg.num_layers} layer(s), input size {task_I})."
    )


def shown_value(row) -> str:
    v, unit = row["value"], row["unit"]
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    if unit == "bytes":
        return f"{K.format_bytes(v)} ({int(v):,} B)"
    if unit == "FLOP":
        return f"{v:.3e}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return f"{v:,}" if isinstance(v, int) else str(v)


view = table.assign(shown=table.apply(shown_value, axis=1))
# A static table wraps its cells: the "how it was obtained" sentences are the point and must be read whole.
st.table(
    view[["quantity", "shown", "unit", "kind", "how"]].rename(columns={"shown": "value", "how": "how it was obtained"}),
    hide_index=True,
)
st.download_button(
    "⬇ CSV of the table", table.to_csv(index=False).encode(), file_name="bptt-calculator.csv", mime="text/csv",
    key="ca_table_csv", on_click="ignore",
)  # fmt: skip

# Memory against sequence length: full BPTT grows linearly, a TBPTT window does not.
Ts = np.unique(np.linspace(1, max(cfg.seq_len * 2, 10), 40).astype(int))
act = "linear" if cfg.cell == "rnn" and cfg.activation == "linear" else "tanh"
full = [K.activation_bytes(cfg.cell, I, cfg.hidden_size, O, int(t), batch, layers, act) for t in Ts]
fig = go.Figure(
    go.Scatter(x=Ts, y=np.array(full) / 2**20, mode="lines", name="full BPTT (estimated)",
               hovertemplate="T = %{x}<br>%{y:.4g} MiB<extra></extra>")
)  # fmt: skip
frame = pd.DataFrame({"seq_len": Ts, "full_bptt_bytes": full})
if cfg.cell not in DIAGONAL_CELLS:  # a formula for every T (the diagonal cells are measured, not drawn)
    ck = [K.checkpoint_activation_bytes(cfg.cell, I, cfg.hidden_size, O, int(t), batch, layers, act) for t in Ts]
    frame["checkpointing_bytes"] = ck
    fig.add_trace(go.Scatter(x=Ts, y=np.array(ck) / 2**20, mode="lines", name="checkpointing every ⌈√T⌉ steps (estimated)",
                             line=dict(dash="dot"), hovertemplate="T = %{x}<br>%{y:.4g} MiB<extra></extra>"))  # fmt: skip
if trunc:
    win = [K.activation_bytes(cfg.cell, I, cfg.hidden_size, O, int(min(t, trunc)), batch, layers, act) for t in Ts]
    frame["tbptt_window_bytes"] = win
    fig.add_trace(go.Scatter(x=Ts, y=np.array(win) / 2**20, mode="lines", name=f"TBPTT window k = {trunc} (estimated)",
                             line=dict(dash="dash"), hovertemplate="T = %{x}<br>%{y:.4g} MiB<extra></extra>"))  # fmt: skip
fig.add_vline(x=cfg.seq_len, line=dict(color="#555", dash="dot"), annotation_text=f"T = {cfg.seq_len}")
fig.update_layout(
    title=f"Activation memory held for backward, batch {batch} (estimated)",
    xaxis_title="sequence length T (steps)",
    yaxis_title="memory (MiB)",
    legend=dict(orientation="h", yanchor="bottom", y=-0.35, x=0),
)
C.show_figure(
    F.style(fig),
    "ca_memory",
    frame,
    "activation-memory.csv",
    "The bytes autograd keeps between the forward and the backward pass, by PyTorch's own saving rules, "
    "as the sequence grows: full BPTT stores every step's activations, so memory grows linearly with T; "
    "TBPTT with window k only ever holds k steps; checkpointing keeps about sqrt(T) states and recomputes one "
    "segment at a time. Parameters, gradients and optimiser state are not included here (the table's total "
    "training memory adds them).",
    PAGE,
)
C.exports(PAGE, cfg, {s.key: st.session_state.get(s.key) for s in C.PAGE_SETTINGS[PAGE]})
