"""Runs: what GradientFlowMonitor logged during a user's own training, read from a run folder.

Only folders under the configured runs directory ($BPTT_RUNS_DIR, else ./runs) can be opened; the
run named in the URL (``?ru_run=NAME``) is checked by bptt_core.monitor.runs.resolve_run (no absolute paths,
no '..', no symbolic links out) and its manifest against every file (bptt_core.monitor.runs.load_run).
"""

import os

import streamlit as st

from bptt_core.monitor import runs as R
from dashboard import compute, layout
from dashboard import settings as S

PAGE = "runs"
RUN_KEY, STEP_KEY = "ru_run", "ru_step"


@st.cache_data(max_entries=8, show_spinner=False)
def _load(path: str, stamp: tuple) -> R.Run:
    """The checked run; ``stamp`` (the manifest's mtime and size) makes a rewritten run load again."""
    return R.load_run(path)


def _stamp(path) -> tuple:
    st_ = os.stat(path / R.MANIFEST)
    return (st_.st_mtime_ns, st_.st_size)


def chosen_run(root, names: list[str]) -> str | None:
    """The run from the URL if it is allowed, else the selection box's; a refused URL value is said."""
    asked = st.query_params.get(RUN_KEY)
    if asked is not None and asked not in names:
        try:
            R.resolve_run(root, asked)
            st.error(f"Run {asked!r} cannot be opened: it has no manifest.json (not a monitor's run folder).")
        except R.RunError as e:
            st.error(f"Refused: {e}.")
        asked = None
    index = names.index(asked) if asked in names else 0
    name = st.selectbox("Run folder", names, index=index, key=RUN_KEY + "_box", help=f"Run folders under {root}")
    st.query_params[RUN_KEY] = name
    return name


layout.frame()
st.title("Runs")
st.markdown(
    "What `bptt_core.GradientFlowMonitor` recorded while your own model trained: the gradient norm before "
    "clipping, whether clipping fired, and at each logged step the exact gradient-flow matrix, ‖∂L/∂h(t)‖ "
    "and the spectra. Start a run with `monitor = GradientFlowMonitor(model, 'runs/NAME', every=50)`."
)
root = R.runs_root()
names = R.list_runs(root)
st.caption(f"Runs directory: `{root}` (set `{R.RUNS_DIR_ENV}` to change it).")
if not names:
    st.info(f"No run folders under `{root}` yet: a run folder is the `log_dir` given to GradientFlowMonitor.")
    st.stop()
name = chosen_run(root, names)
try:
    path = R.resolve_run(root, name)
    run = _load(str(path), _stamp(path))
except (R.RunError, OSError) as e:
    st.error(f"This run cannot be shown: {e}")
    st.stop()

st.code(R.run_summary(run), language=None)
if not run.steps:
    st.info("No step has been logged in this run yet.")
    st.stop()
layout.export_format_toggle(PAGE)
for panel in R.history_panels(run):
    layout.show_figure(PAGE, compute.ready(panel, S.lecture()))

st.subheader("One logged step")
step = st.select_slider("Logged step", options=run.steps, value=run.steps[-1], key=STEP_KEY,
                        help="Move through the steps the monitor logged")  # fmt: skip
try:
    panels = {p.key: p for p in R.step_panels(run, step)}
except R.RunError as e:
    st.error(f"Step {step} cannot be shown: {e}")
    st.stop()
for key in ("ru_heatmap", "ru_dldh"):
    if key in panels:
        layout.show_figure(PAGE, compute.ready(panels[key], S.lecture()))
cols = st.columns(2)
for col, key in zip(cols, ("ru_eig", "ru_sv"), strict=True):
    if key in panels:
        with col:
            layout.show_figure(PAGE, compute.ready(panels[key], S.lecture()))
if "ru_lyap" in panels:
    layout.show_figure(PAGE, compute.ready(panels["ru_lyap"], S.lecture()))
missing = [k for k in ("ru_heatmap", "ru_dldh", "ru_lyap") if k not in panels]
if missing:
    st.info("Not recorded at this step (see the run's errors in the summary): " + ", ".join(missing))
st.download_button("HTML report of this run", R.build_run_report(run, [step]).encode(), file_name="run-report.html",
                   mime="text/html", on_click="ignore", key="ru_report")  # fmt: skip
