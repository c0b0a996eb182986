"""Reading the run folders :class:`bptt_core.monitor.monitor.GradientFlowMonitor` writes (docs/design.md, "runs").

A run folder holds ``manifest.json`` (the settings, the logged steps, and the SHA-256 of every data
file), ``history.npz`` (one value per logged step) and ``steps/step_XXXXXXXX.npz`` (the gradient-flow
matrix, ||dL/dh_t||, the Lyapunov exponents and each layer's spectrum at that step). Everything is
read without pickles (``allow_pickle=False``) and checked before use: a file the manifest lists that
is missing, larger than the limit or whose hash differs, a step file the manifest does not list, or a
path that leaves the folder, is refused with a :class:`RunError` naming it.

The dashboard only opens runs under one configured folder (:func:`runs_root`, from the
``BPTT_RUNS_DIR`` environment variable): :func:`resolve_run` refuses absolute paths, ``..`` and
symbolic links that lead outside it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bptt_core.figures.heatmaps import gradient_flow_heatmap
from bptt_core.figures.labels import fmt_power, safe_log10
from bptt_core.figures.profiles import loss_gradient_figure
from bptt_core.figures.spectra import eigenvalue_figure, lyapunov_figure, singular_values_figure
from bptt_core.figures.style import FONT, PLOTLY_CONFIG, style
from bptt_core.figures.training import grad_norm_history_figure, run_flow_history_figure
from bptt_core.report.panels import Panel, matrix_frame

from .monitor import HISTORY, HISTORY_COLUMNS, MANIFEST, RUN_FORMAT, RUN_VERSION, STEPS_DIR

RUNS_DIR_ENV = "BPTT_RUNS_DIR"
DEFAULT_RUNS_DIR = "runs"
MAX_MANIFEST_BYTES = 4 * 2**20
MAX_FILE_BYTES = 256 * 2**20  # one step file holds a (T, T) float64 matrix: T = 2000 is 32 MB
MAX_RUNS_LISTED = 500
MAX_DEPTH = 3  # run folders are found this many levels below the runs folder at most
_STEP_FILE = re.compile(r"steps/step_(\d{8})\.npz")
_RUN_NAME = re.compile(r"[A-Za-z0-9._\- /]{1,200}")


class RunError(ValueError):
    """A run folder that cannot be used: the message names the file and what is wrong."""


@dataclass
class StepData:
    step: int
    flow: np.ndarray | None  # (T, T) log10 ||dh_t/dh_s||, NaN for s > t
    dl_dh: np.ndarray | None  # (T,) ||dL/dh_t|| of the first sequence at the watched output (direct)
    dl_dh_total: np.ndarray | None  # (T,) ||dL/dh_t|| through the recurrence (total)
    lyapunov: np.ndarray | None  # (k,) top exponents, log10 per step
    eigenvalues: list[np.ndarray]  # per layer, complex
    singular_values: list[np.ndarray]  # per layer, descending
    gamma: float  # bound on |phi'| of the top layer (1 for gated cells' reading)


@dataclass
class Run:
    path: Path
    manifest: dict
    history: dict[str, np.ndarray]  # column -> (n_logged,) ; "param_grad_norms" (n_logged, n_params)

    @property
    def steps(self) -> list[int]:
        return [int(s) for s in self.history["step"]]

    @property
    def parameters(self) -> list[str]:
        return list(self.manifest["parameters"])

    def step_data(self, step: int) -> StepData:
        if step not in self.steps:
            raise RunError(f"step {step} was not logged in {self.path.name}; logged steps: {_few(self.steps)}")
        rel = f"{STEPS_DIR}/step_{step:08d}.npz"
        a = _load_npz(self.path, rel, self.manifest["files"])
        layers = int(self.manifest["model"]["num_layers"])

        def get(k):
            return a[k] if k in a else None

        return StepData(
            step=step,
            flow=get("flow"),
            dl_dh=get("dl_dh"),
            dl_dh_total=get("dl_dh_total"),
            lyapunov=get("lyapunov"),
            eigenvalues=[a[f"eigenvalues_l{i}"] for i in range(layers) if f"eigenvalues_l{i}" in a],
            singular_values=[a[f"singular_values_l{i}"] for i in range(layers) if f"singular_values_l{i}" in a],
            gamma=float(a["gamma"]) if "gamma" in a else 1.0,
        )

    def flow_range(self) -> tuple[float, float] | None:
        """The finite range of the flow matrix over every logged step (one colour scale for all)."""
        lo, hi = self.history.get("flow_min"), self.history.get("flow_max")
        if lo is None or hi is None or not np.isfinite(lo).any() or not np.isfinite(hi).any():
            return None
        lo, hi = float(np.nanmin(lo)), float(np.nanmax(hi))
        return (lo, hi) if lo < hi else None  # a constant flow: the heatmap's own (narrow) range

    def history_frame(self):
        """The history as a table: one row per logged step (pandas DataFrame)."""
        import pandas as pd

        cols = {k: v for k, v in self.history.items() if k != "param_grad_norms"}
        df = pd.DataFrame(cols)
        for i, name in enumerate(self.parameters):
            df[f"grad_norm/{name}"] = self.history["param_grad_norms"][:, i]
        return df


def runs_root(root: str | os.PathLike | None = None) -> Path:
    """The folder the dashboard opens runs from: ``root``, else $BPTT_RUNS_DIR, else ./runs."""
    return Path(root if root is not None else os.environ.get(RUNS_DIR_ENV) or DEFAULT_RUNS_DIR).resolve()


def resolve_run(root: str | os.PathLike, name: str) -> Path:
    """The run folder ``name`` (a relative path) under ``root``, or a RunError: never a path outside."""
    if not isinstance(name, str) or not name.strip():
        raise RunError("no run chosen: give the run folder's name under the runs directory")
    if not _RUN_NAME.fullmatch(name):
        raise RunError(f"run name {name[:60]!r} has characters a run folder name may not have")
    if name.startswith(("/", "\\")) or os.path.isabs(name) or re.match(r"^[A-Za-z]:", name):
        raise RunError(f"run {name!r} is an absolute path: give a folder under the runs directory")
    if ".." in Path(name).parts:
        raise RunError(f"run {name!r} contains '..': runs are opened only from inside the runs directory")
    base = Path(root).resolve()
    path = (base / name).resolve()  # follows symbolic links: one that leads outside is caught below
    if path != base and base not in path.parents:
        raise RunError(f"run {name!r} leads outside the runs directory (a symbolic link?)")
    if not path.is_dir():
        raise RunError(f"run {name!r} is not a folder under the runs directory")
    return path


def list_runs(root: str | os.PathLike) -> list[str]:
    """Names (relative paths) of the run folders under ``root`` holding a manifest, newest first."""
    base = Path(root).resolve()
    if not base.is_dir():
        return []
    found = []
    for dirpath, dirnames, filenames in os.walk(base):
        depth = len(Path(dirpath).relative_to(base).parts)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != STEPS_DIR)
        if depth >= MAX_DEPTH:
            dirnames[:] = []
        if MANIFEST in filenames and Path(dirpath) != base:
            try:
                found.append(
                    (
                        os.stat(Path(dirpath) / MANIFEST).st_mtime,
                        resolve_run(base, str(Path(dirpath).relative_to(base))),
                    )
                )
            except RunError:
                continue
        if len(found) >= MAX_RUNS_LISTED:
            break
    found.sort(key=lambda p: -p[0])
    return [str(p.relative_to(base)) for _, p in found]


def load_run(path: str | os.PathLike) -> Run:
    """Read and check a run folder (see the module docstring); RunError naming what is wrong."""
    path = Path(path)
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise RunError(f"{path.name}: no {MANIFEST}: not a run folder written by GradientFlowMonitor")
    if mpath.stat().st_size > MAX_MANIFEST_BYTES:
        raise RunError(f"{path.name}/{MANIFEST} is larger than {MAX_MANIFEST_BYTES // 2**20} MiB")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise RunError(f"{path.name}/{MANIFEST} is not valid JSON: {e}") from None
    _check_manifest(path, manifest)
    files = manifest["files"]
    for rel, digest in files.items():
        _check_file(path, rel, digest)
    listed_steps = {rel for rel in files if rel.startswith(f"{STEPS_DIR}/")}
    on_disk = (
        {f"{STEPS_DIR}/{p.name}" for p in (path / STEPS_DIR).glob("*.npz")} if (path / STEPS_DIR).is_dir() else set()
    )
    extra = sorted(on_disk - listed_steps)
    if extra:
        raise RunError(f"{path.name}: {extra[0]} is not in the manifest (the manifest does not match the files)")
    history = _load_npz(path, HISTORY, files) if HISTORY in files else _empty_history(manifest)
    steps = [int(s) for s in history["step"]]
    if steps != [int(s) for s in manifest["steps"]]:
        raise RunError(
            f"{path.name}: the manifest's steps do not match {HISTORY} (the manifest does not match the files)"
        )
    want = {f"{STEPS_DIR}/step_{s:08d}.npz" for s in steps}
    if want != listed_steps:
        missing = sorted(want - listed_steps) or sorted(listed_steps - want)
        raise RunError(f"{path.name}: step file {missing[0]} and the logged steps disagree")
    n = len(steps)
    for k, v in history.items():
        if v.shape[0] != n:
            raise RunError(f"{path.name}/{HISTORY}: column {k!r} has {v.shape[0]} rows for {n} logged steps")
    return Run(path=path, manifest=manifest, history=history)


def _check_manifest(path: Path, m) -> None:
    if not isinstance(m, dict) or m.get("format") != RUN_FORMAT:
        raise RunError(f"{path.name}/{MANIFEST} is not a BPTT Explorer run manifest (format {RUN_FORMAT!r} missing)")
    if m.get("version") != RUN_VERSION:
        raise RunError(f"{path.name}/{MANIFEST}: version {m.get('version')!r}, this reader knows {RUN_VERSION}")
    need = {"files": dict, "steps": list, "parameters": list, "model": dict}
    for key, kind in need.items():
        if not isinstance(m.get(key), kind):
            raise RunError(f"{path.name}/{MANIFEST}: {key!r} missing or not a {kind.__name__}")
    for key in ("num_layers", "hidden_size"):
        v = m["model"].get(key)
        if not isinstance(v, int) or not 1 <= v <= 4096:
            raise RunError(f"{path.name}/{MANIFEST}: model.{key} must be a whole number, got {v!r}")
    for rel, digest in m["files"].items():
        if not isinstance(rel, str) or not (rel == HISTORY or _STEP_FILE.fullmatch(rel)):
            raise RunError(f"{path.name}/{MANIFEST}: unexpected file entry {str(rel)[:80]!r}")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise RunError(f"{path.name}/{MANIFEST}: {rel} has no valid SHA-256")


def _check_file(path: Path, rel: str, digest: str) -> Path:
    f = path / rel
    if f.is_symlink() or not f.resolve().is_relative_to(path.resolve()):
        raise RunError(f"{path.name}/{rel} is a symbolic link: refused")
    if not f.is_file():
        raise RunError(f"{path.name}/{rel} is listed in the manifest but missing")
    if f.stat().st_size > MAX_FILE_BYTES:
        raise RunError(f"{path.name}/{rel} is larger than {MAX_FILE_BYTES // 2**20} MiB")
    if hashlib.sha256(f.read_bytes()).hexdigest() != digest:
        raise RunError(f"{path.name}/{rel} does not match its SHA-256 in the manifest (changed after it was written)")
    return f


def _load_npz(path: Path, rel: str, files: dict) -> dict[str, np.ndarray]:
    if rel not in files:
        raise RunError(f"{path.name}/{rel} is not in the manifest")
    f = _check_file(path, rel, files[rel])  # checked again: the file may have changed since the run was opened
    try:
        with np.load(f, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        raise RunError(f"{path.name}/{rel} cannot be read as arrays: {e}") from None


def _empty_history(manifest: dict) -> dict[str, np.ndarray]:

    out = {c: np.zeros(0) for c in HISTORY_COLUMNS}
    out["step"] = np.zeros(0, dtype=np.int64)
    out["param_grad_norms"] = np.zeros((0, len(manifest["parameters"])))
    return out


def _few(xs: list[int], n: int = 8) -> str:
    return ", ".join(map(str, xs[:n])) + (", …" if len(xs) > n else "") if xs else "none"


# -- what is said about a run ----------------------------------------------------------------------


def _num(v: float, fmt: str = ".4g") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def run_summary(run: Run) -> str:
    """A few lines about a run, every number read from its files."""
    m, h = run.manifest, run.history
    model = m["model"]
    lines = [
        f"run: {run.path.name}",
        f"model: {model.get('type')} '{model.get('module') or '(the model itself)'}', {model.get('cell')}, "
        f"H = {model['hidden_size']}, {model['num_layers']} layer(s), batch_first={model.get('batch_first')}",
        f"logged every {m.get('every')} steps; clip threshold {m.get('clip') if m.get('clip') is not None else 'not given'}; "
        f"{len(run.steps)} logged steps: {_few(run.steps)}",
    ]
    if run.steps:
        g = h["grad_norm"]
        lines.append(
            f"global gradient norm before clipping: first {_num(float(g[0]))}, last {_num(float(g[-1]))}, "
            f"max {_num(float(np.nanmax(g)) if np.isfinite(g).any() else math.nan)}"
        )
        if m.get("clip") is not None:
            fired = h["clip_fired"]
            lines.append(f"clipping fired at {int(np.nansum(fired))} of {len(fired)} logged steps")
        last = {k: float(h[k][-1]) for k in ("decay_rate", "memory_horizon", "lyapunov_top", "rho", "sigma1")}
        hz = last["memory_horizon"]
        lines.append(
            f"at step {run.steps[-1]}: decay rate {_num(last['decay_rate'], '+.4g')} log10/step, memory horizon "
            f"{'beyond the sequence' if math.isnan(hz) else f'{int(hz)} steps'}, top Lyapunov exponent "
            f"{_num(last['lyapunov_top'], '+.4g')} log10/step, rho {_num(last['rho'])}, sigma_1 {_num(last['sigma1'])}"
        )
    errors = m.get("errors") or []
    if errors:
        lines.append(
            f"{len(errors)} diagnostic(s) failed; the last: step {errors[-1].get('step')}: {errors[-1].get('what')}: {errors[-1].get('error')}"
        )
    return "\n".join(lines)


def history_panels(run: Run) -> list:
    """The run's histories as :class:`bptt_core.report.panels.Panel` (figure, CSV numbers, explanation)."""
    import pandas as pd

    h = run.history
    df = pd.DataFrame({"step": h["step"], "grad_norm": h["grad_norm"], "clipped": np.nan_to_num(h["clip_fired"]) > 0})
    clip = run.manifest.get("clip")
    finite = h["grad_norm"][np.isfinite(h["grad_norm"])]
    line = clip if clip else (float(finite.max()) if finite.size and finite.max() > 0 else 1.0)
    gfig = grad_norm_history_figure({"norm": df}, line)
    gfig.update_layout(title="Global gradient norm before clipping, at the logged steps", showlegend=False)
    say = (
        f"The dashed line is the clip threshold c = {clip:g}; a tick marks a logged step where clipping fired "
        "(clip_grad_norm_'s rule: c / (‖g‖ + 1e-6) < 1)."
        if clip
        else "No clip threshold was given to the monitor: the dashed line marks the largest norm logged."
    )
    flow = {k: h[k] for k in ("step", "decay_rate", "memory_horizon", "lyapunov_top", "rho", "sigma1")}
    return [
        Panel("ru_gradnorm", "Gradient norm", gfig, run.history_frame(), "history.csv",
              "The global L2 norm of the gradient over all of the model's parameters at each logged step, "
              "before clipping, as torch.nn.utils.clip_grad_norm_ returns it. " + say,
              "‖∂L/∂θ‖₂ before clipping."),
        Panel("ru_flowhist", "Flow and spectrum", run_flow_history_figure(h), pd.DataFrame(flow), "flow-history.csv",
              "Left axis: the decay rate fitted to the gradient-flow matrix of the first sequence (log10 change "
              "of ‖∂h(t)/∂h(t−k)‖ per step of lag k) and the top Lyapunov exponent of the driven network (log10 "
              "per step); below 0 gradients vanish with distance. Right axis: ρ and σ₁ of the top layer's "
              "recurrent matrix.", "Decay rate, λ₁, ρ, σ₁ at the logged steps."),
    ]  # fmt: skip


def step_panels(run: Run, step: int) -> list:
    """One logged step as Panels: heatmap, ||dL/dh_t||, eigenvalues, singular values, Lyapunov spectrum."""
    import pandas as pd

    d = run.step_data(step)
    out = []
    norm = 2 if run.manifest.get("norm") in (2, "2") else "fro"
    if d.flow is not None:
        heat = gradient_flow_heatmap(d.flow, norm, zrange=run.flow_range(), centre="one")
        out.append(Panel("ru_heatmap", "Gradient flow", heat, matrix_frame(d.flow),
                         f"flow-step{step}.csv",
                         "log10 ‖∂h(t)/∂h(s)‖ for every pair s ≤ t of the first sequence of the batch at this step, "
                         "with the weights of this step (top layer for a stack). White is a norm of 1; blue: the gradient from "
                         "step t reaches step s shrunk; red: amplified. One colour scale for every logged step of the run, "
                         "so moving through the steps compares like with like.", f"Step {step}."))  # fmt: skip
    if d.dl_dh is not None:
        out.append(_dl_dh_panel(d, step))
    if d.eigenvalues:
        top = len(d.eigenvalues) - 1
        ev, sv = d.eigenvalues[top], d.singular_values[top]
        matrix = "W_hh" if run.manifest["model"].get("cell") == "rnn" else "the candidate block of W_hh"
        eig = pd.DataFrame({"real": ev.real, "imag": ev.imag, "abs": np.abs(ev)})
        out.append(Panel("ru_eig", "Eigenvalues", eigenvalue_figure(ev, float(np.abs(ev).max()), matrix), eig,
                         f"eigenvalues-step{step}.csv",
                         f"Eigenvalues of {matrix} of the top layer (layer {top}) at this step, with the unit circle.",
                         f"Step {step}."))  # fmt: skip
        out.append(Panel("ru_sv", "Singular values", singular_values_figure(sv, d.gamma, matrix),
                         pd.DataFrame({"i": np.arange(1, len(sv) + 1), "singular_value": sv}),
                         f"singular-values-step{step}.csv",
                         f"Singular values of {matrix} of the top layer at this step; the dashed line is 1/γ "
                         "(Pascanu et al. 2013: σ₁ below it guarantees vanishing gradients).", f"Step {step}."))  # fmt: skip
    if d.lyapunov is not None:
        rate = float(run.history["decay_rate"][run.steps.index(step)])
        lam = pd.DataFrame({"i": np.arange(1, len(d.lyapunov) + 1), "lyapunov_log10_per_step": d.lyapunov})
        out.append(Panel("ru_lyap", "Lyapunov spectrum", lyapunov_figure(d.lyapunov, rate), lam,
                         f"lyapunov-step{step}.csv",
                         "The top Lyapunov exponents of the network driven by the first sequence (QR method), log10 "
                         "per step; the green line is this step's fitted decay rate.", f"Step {step}."))  # fmt: skip
    return out


def _dl_dh_panel(d: StepData, step: int):
    import plotly.graph_objects as go

    t = np.arange(1, len(d.dl_dh) + 1)
    data = {"t": t, "dL_dh_direct": d.dl_dh}
    if d.dl_dh_total is not None:
        data["dL_dh_total"] = d.dl_dh_total
        fig = loss_gradient_figure(d.dl_dh_total)
        fig.data[0].name = "total (through the recurrence)"
        g = safe_log10(d.dl_dh)
        fig.add_trace(
            go.Scatter(x=t, y=np.where(np.isneginf(g), np.nan, g), mode="markers", name="direct (at the output)",
                       marker=dict(size=5, symbol="circle-open", color="#7f7f7f"),
                       customdata=[fmt_power(float(v)) for v in d.dl_dh],
                       hovertemplate="t = %{x}<br>direct ‖∂L/∂h<sub>t</sub>‖ = %{customdata}<extra></extra>")
        )  # fmt: skip
        fig.update_layout(showlegend=True, legend=dict(orientation="h", yanchor="top", y=-0.2, x=0))
    else:
        fig = loss_gradient_figure(d.dl_dh)
    fig.update_layout(xaxis_title="step t of the first sequence")
    return Panel(
        "ru_dldh", "‖∂L/∂h(t)‖", fig, pd_frame(data), f"dldh-step{step}.csv",
        "The line: ‖∂L/∂h(t)‖ in total for each step t of the first sequence, the gradient that reaches h(t) "
        "through everything after it (the gradient at the watched output carried back by the exact step "
        "Jacobians). The open circles: the direct part, the gradient that reached the watched output at t "
        "(zero where the loss does not read h(t), e.g. every step but the last for a last-step loss). Steps "
        "where the line is far below its end get almost no gradient: long dependencies are not learned.",
        f"Step {step}.",
    )  # fmt: skip


def pd_frame(data: dict):
    import pandas as pd

    return pd.DataFrame(data)


def build_run_report(run: Run, steps: list[int] | None = None) -> str:
    """One self-contained HTML page: the summary, the histories, and the figures of the chosen logged
    steps (default: the first and the last)."""
    import html

    import plotly.graph_objects as go

    if steps is None:
        steps = sorted({run.steps[0], run.steps[-1]}) if run.steps else []
    sections = [("Histories", history_panels(run))] if run.steps else []
    sections += [(f"Step {s}", step_panels(run, s)) for s in steps]
    parts, first = [], True
    for name, panels in sections:
        parts.append(f"<h2>{html.escape(name)}</h2>")
        for p in panels:
            title, fig, caption = p.title, p.figure, p.explain
            assert isinstance(fig, go.Figure), title
            div = style(fig).to_html(full_html=False, include_plotlyjs=first, config=PLOTLY_CONFIG)
            first = False
            parts.append(
                f"<figure><h3>{html.escape(title)}</h3>{div}<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>BPTT Explorer run report: {html.escape(run.path.name)}</title>
<style>body {{ font-family: {FONT}; max-width: 1100px; margin: 2em auto; color: #222; }}
pre {{ background: #f6f6f6; padding: 1em; white-space: pre-wrap; }} figcaption {{ color: #555; }}</style></head><body>
<h1>Run {html.escape(run.path.name)}</h1>
<pre>{html.escape(run_summary(run))}</pre>
{"".join(parts)}
</body></html>
"""
