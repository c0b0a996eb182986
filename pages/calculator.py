"""The BPTT calculator: parameters, training memory, FLOPs, gradient risk and time, each labelled how it
was obtained. With an uploaded model it describes that model; the decay rate and memory horizon are
the Gradient flow page's (the same module and input)."""

import streamlit as st

from bptt_core.config import DIAGONAL_CELLS, MAX_INPUT
from bptt_core.data.tasks import task_input_size
from bptt_core.learning import calculator as K
from dashboard import compute, layout
from dashboard import settings as S
from dashboard.settings import UI_MAX_SEQ_LEN, Setting

PAGE = "calculator"
BATCH = Setting("ca_batch", "Batch size B", "int", 32, lo=1, hi=1024, step=1)
LAYERS = Setting("ca_layers", "Layers (0 = the sidebar's)", "int", 0, lo=0, hi=K.MAX_LAYERS, step=1)
INPUT = Setting("ca_input", "Input size I (0 = the task's)", "int", 0, lo=0, hi=MAX_INPUT, step=1)
OUTPUT = Setting("ca_output", "Output size O (0 = the task's)", "int", 0, lo=0, hi=MAX_INPUT, step=1)
TRUNC = Setting("ca_trunc", "Truncation k (0 = full BPTT)", "int", 0, lo=0, hi=UI_MAX_SEQ_LEN, step=1)
OPTIMIZER = Setting(
    "ca_opt", "Optimiser", "select", "sgd", K.OPTIMIZERS,
    help="Its state counts in the training memory: SGD none, momentum one copy of the parameters, Adam two.",
)  # fmt: skip
CHECKPOINT = Setting(
    "ca_ckpt", "Checkpointing", "bool", False,
    help="Gradient checkpointing every ceil(sqrt(T)) steps: keep only each segment's input state, recompute the rest.",
)  # fmt: skip
DATASET = Setting("ca_dataset", "Sequences per epoch", "int", 10000, lo=1, hi=K.MAX_DATASET, step=1000)
LR = Setting("ca_lr", "Learning rate", "float", 0.01, lo=0.0001, hi=K.MAX_LR, step=0.005)
TIME = Setting("ca_time", "Time it", "bool", True, help="Measure the time of a real training step on this machine.")
SETTINGS = (BATCH, LAYERS, INPUT, OUTPUT, TRUNC, OPTIMIZER, CHECKPOINT, DATASET, LR, TIME)


def sizes_caption(ctx: compute.PageContext, used: dict, in_size: int, out_size: int) -> str:
    """Where the input and output sizes and the depth came from."""
    source = "the uploaded model" if ctx.upload is not None else f"the {ctx.cfg.task} task"
    out_source = "this page" if out_size else "the readout or the task" if ctx.upload is not None else "the task"
    layers = used["num_layers"]
    return (
        f"Input size {used['input_size']} ({'this page' if in_size else source}), output size "
        f"{used['output_size']} ({out_source}), {layers} layer{'s' if layers > 1 else ''}, the rest from the sidebar."
    )


@st.fragment
def body(ctx: compute.PageContext) -> None:
    """Everything below the header: its controls rerun only this part of the page."""
    cfg, upload = ctx.cfg, ctx.upload
    fixed_depth = upload is not None or cfg.cell in DIAGONAL_CELLS  # the model's own (diagonal cells: 1)
    c = layout.row(5)
    batch = S.page_setting(BATCH, c[0])
    layers = S.page_setting(LAYERS, c[1], disabled=fixed_depth)
    in_size = S.page_setting(INPUT, c[2], disabled=upload is not None)
    out_size = S.page_setting(OUTPUT, c[3])
    trunc = S.page_setting(TRUNC, c[4])
    c = layout.row(5)
    optimizer = S.page_setting(OPTIMIZER, c[0])
    checkpointing = S.page_setting(CHECKPOINT, c[1])
    dataset = S.page_setting(DATASET, c[2])
    lr = S.page_setting(LR, c[3], format="%.4f")
    measure = S.page_setting(TIME, c[4])
    layout.export_format_toggle(PAGE)
    if trunc > cfg.seq_len:
        st.warning(f"The truncation k = {trunc} exceeds the sequence length T = {cfg.seq_len}; using k = T.")
        trunc = cfg.seq_len
    if fixed_depth:
        layers = 0  # the analysed model's depth
    if upload is not None:
        in_size = 0  # the uploaded model's input width
    settings = dict(
        batch_size=batch, num_layers=layers, input_size=in_size, output_size=out_size, truncation=trunc or None,
        optimizer=optimizer, checkpointing=checkpointing, dataset_size=dataset, lr=lr, measure_time=measure,
    )  # fmt: skip
    try:
        table, csv, used = compute.calculator_view(ctx, **settings)  # its spinner shows on a cache miss only
    except ValueError as e:
        st.error(f"The calculator cannot use these settings: {e}")
        return

    st.caption(sizes_caption(ctx, used, in_size, out_size))
    if used["same_as_flow"]:
        st.caption(
            "Decay rate and memory horizon: the Gradient flow page's model and input, so the same numbers "
            "(Frobenius norm, threshold 1e-3)."
        )
    else:
        task_I = task_input_size(cfg.task, cfg.input_size)
        st.info(
            f"Decay rate and memory horizon: measured on a model with {used['num_layers']} layer(s) and input size "
            f"{used['input_size']}, built from the sidebar's settings, on a Gaussian input: the Gradient flow page "
            f"shows a different model ({cfg.num_layers} layer(s), input size {task_I}).",
            icon=":material/info:",
        )
    # A static table wraps its cells: the "how it was obtained" sentences are the point and must be read whole.
    st.table(table, hide_index=True)
    st.download_button(
        "CSV of the table", csv, file_name="bptt-calculator.csv", mime="text/csv",
        icon=":material/download:",
        key="ca_table_csv", on_click="ignore",
    )  # fmt: skip
    # Memory against sequence length: full BPTT grows linearly, checkpointing as sqrt(T), a TBPTT window not at all.
    I, O, depth = used["input_size"], used["output_size"], used["num_layers"]
    layout.show_figure(PAGE, compute.memory_view(cfg, I, O, batch, depth, trunc, S.lecture()), ctx)
    layout.exports(PAGE, ctx, SETTINGS, report_kw=dict(calculator=settings))


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
