"""What every page shares: the URL-bound settings, their validation, cached computations, and the
figure/export helpers. Pages import from here and stay thin; the numbers come from bptt_core.
"""

from __future__ import annotations

import functools
import json
import math
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st

from bptt_core import figures as F
from bptt_core import presets as P
from bptt_core.config import (
    ACTIVATIONS,
    CELLS,
    INITS,
    MAX_UPLOAD_BYTES,
    MODEL_EXTENSIONS,
    SEQUENCE_EXTENSIONS,
    TASKS,
    ModelConfig,
)
from pages.registry import PAGE_FILES, PAGE_TITLES  # noqa: F401 - re-exported for the pages

if TYPE_CHECKING:
    import pandas as pd

    from bptt_core.sources import Upload

# The dashboard's control ranges: the library allows more (config.MAX_*), but beyond these the
# exact T x T Jacobian products stop answering in about a second.
UI_MAX_HIDDEN = 256
UI_MAX_SEQ_LEN = 400
UI_MAX_GAIN = 100.0
UI_MAX_SEED = 2**31 - 1

# -- the numerics, imported on first use ----------------------------------------------------------------
# torch costs ~2 s to import. The Overview page and the sidebar never compute with it, so they must not
# import it: the first page a visitor opens would wait for it (the goal: ready within 5 s of the
# server starting).


@functools.cache
def report():
    """bptt_core.report (and torch), set up for serving: one thread per computation, because the
    server runs sessions in threads on a small machine and torch's own thread pool fighting them made
    the small matmuls here 10-100x slower; the loaded libraries frozen out of the garbage collector's
    full passes (bptt_core.allocator)."""
    import torch

    from bptt_core import report as R
    from bptt_core.allocator import freeze_loaded_libraries

    torch.set_num_threads(1)
    freeze_loaded_libraries()  # the libraries are loaded now: full collections need not scan them again
    return R


# At most one computation per core at a time, server-wide: more would not finish sooner on a small machine,
# but each would hold its step Jacobians and products at once, so a lecture hall that clicks together
# would set the server's memory by how many clicked (bench/bench_load.py). These are the job runner's
# light slots: heavy work runs in its background workers instead and never holds one, so a visitor at the
# defaults is not kept waiting by heavy tabs (bptt_core.jobs, dashboard/jobs_ui.py).
def _light_runner():
    from bptt_core.jobs import default_runner

    return default_runner()


_SLOTS = _light_runner()._light


def compute_slot():
    """Wait for a free light slot, then compute (a nested call in the same thread takes no second slot)."""
    return _light_runner().light_slot()


def forget_idle_cache_locks() -> int | None:
    """Drop the per-key locks st.cache_data keeps after a value is computed; how many are left
    (None where this Streamlit keeps them elsewhere).

    Streamlit (1.67, ``cache_utils.Cache._value_locks``) makes one lock per key it ever computed so
    two sessions never compute the same value at once, and keeps it for good: under a class that keeps
    changing settings, a few hundred bytes per new setting, forever. A lock nobody holds guards nothing
    (dropping one at the wrong instant costs at most one duplicate computation), so every rerun drops
    them. A Streamlit release that stores them differently fails tests/test_cache_locks.py.
    """
    from streamlit.runtime.caching import cache_data_api

    try:
        registry = cache_data_api._data_caches
        with registry._caches_lock:
            caches = [c for by_key in registry._function_caches.values() for c in by_key.values()]
        left = 0
        for cache in caches:
            with cache._value_locks_lock:
                locks = cache._value_locks
                for key in [k for k, lock in locks.items() if not lock.locked()]:
                    del locks[key]
                left += len(locks)
        return left
    except AttributeError:  # another Streamlit's internals: leave them be (the page must not break)
        return None


def sources():
    """bptt_core.sources: the uploaded-model store (imports torch; see :func:`report`)."""
    report()
    from bptt_core import sources as SRC

    return SRC


# -- settings bound to the URL ----------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One URL-bound widget: its key (= query parameter), kind and domain, and default."""

    key: str
    label: str
    kind: str  # select | int | float | bool
    default: object
    options: tuple = ()
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    attr: str | None = None  # the ModelConfig field it sets
    help: str = ""

    def domain(self) -> str:
        if self.kind == "select":
            return "one of " + ", ".join(map(str, self.options))
        if self.kind == "bool":
            return "true or false"
        what = "a whole number" if self.kind == "int" else "a number"
        return f"{what} in [{_num(self.lo)}, {_num(self.hi)}]"

    def parse(self, raw: str):
        """The value a raw query string stands for, or ValueError if it is outside the domain."""
        if self.kind == "select":
            for o in self.options:
                if raw == str(o):
                    return o
            raise ValueError
        if self.kind == "bool":
            if raw.lower() == "true":
                return True
            if raw.lower() == "false":
                return False
            raise ValueError
        if self.kind == "int":  # as Streamlit reads it: any float spelling of a whole number ("1e3")
            f = float(raw)
            if not (math.isfinite(f) and f.is_integer()):
                raise ValueError
            v = int(f)
        else:
            v = float(raw)
            if not math.isfinite(v):
                raise ValueError
        if not self.lo <= v <= self.hi:
            raise ValueError
        return v


def _num(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


D = ModelConfig()
MODEL_SETTINGS: tuple[Setting, ...] = (
    Setting("m_cell", "Cell", "select", D.cell, CELLS, attr="cell", help="Vanilla RNN, LSTM or GRU."),
    Setting("m_activation", "Activation (vanilla RNN)", "select", D.activation, ACTIVATIONS, attr="activation"),
    Setting("m_hidden", "Hidden units H", "int", D.hidden_size, lo=1, hi=UI_MAX_HIDDEN, step=1, attr="hidden_size"),
    Setting("m_seq_len", "Sequence length T", "int", D.seq_len, lo=1, hi=UI_MAX_SEQ_LEN, step=1, attr="seq_len"),
    Setting("m_init", "Initialisation of W_hh", "select", D.init, INITS, attr="init"),
    Setting(
        "m_gain",
        "Gain g",
        "float",
        D.gain,
        lo=0.01,
        hi=UI_MAX_GAIN,
        step=0.05,
        attr="gain",
        help="Multiplies the initialisation (ignored by the sparse init).",
    ),  # fmt: skip
    Setting(
        "m_radius",
        "Spectral radius ρ (0 = as initialised)",
        "float",
        D.spectral_radius,
        lo=0.0,
        hi=UI_MAX_GAIN,
        step=0.05,
        attr="spectral_radius",
        help="> 0 rescales W_hh to exactly this spectral radius.",
    ),  # fmt: skip
    Setting("m_seed", "Seed", "int", D.seed, lo=0, hi=UI_MAX_SEED, step=1, attr="seed"),
    Setting("m_task", "Task (input sequence)", "select", D.task, TASKS, attr="task"),
)
VIEW_SETTINGS: tuple[Setting, ...] = (
    Setting("lecture", "Lecture mode (large type)", "bool", False),
    Setting("controls", "Show controls", "bool", True, help="Off hides the sidebar: a clean view for a slide."),
)
MODEL_KEYS = tuple(s.key for s in MODEL_SETTINGS)
FLAG_ALIASES = {"1": True, "0": False, "yes": True, "no": False, "on": True, "off": False}


def _query_value(key: str) -> str | None:
    try:
        vals = st.query_params.get_all(key)
    except Exception:  # noqa: BLE001 - a query string we cannot read is treated as absent
        return None
    return vals[-1] if vals else None


def check_query(setting: Setting) -> str | None:
    """A warning if the URL holds a value for this setting that is outside its domain."""
    raw = _query_value(setting.key)
    if raw is None or raw == "":
        return None
    try:
        setting.parse(raw)
        return None
    except (ValueError, TypeError, OverflowError):
        if setting.kind == "bool" and raw.lower() in FLAG_ALIASES:
            return None
        shown = raw if len(raw) <= 40 else raw[:40] + "…"
        return (
            f"URL parameter **{setting.key}** = `{shown}` is not valid for *{setting.label}* "
            f"(it must be {setting.domain()}); using the default {_num(setting.default)}."
        )


def widget(setting: Setting, container=None, **kw):
    """Create the URL-bound widget for ``setting`` (after checking its raw URL value).

    The widget always gets the same arguments, its real default included: a default that changed
    between reruns (e.g. index 0 once the key is in session state) makes the browser reset the
    widget to it. A value in session state (earlier runs, a preset) still wins; Streamlit's log
    warning about that is switched off in .streamlit/config.toml.
    """
    c = container or st
    warn = check_query(setting)
    if warn:
        st.session_state.setdefault("_url_warnings", []).append(warn)
    if setting.kind == "bool":
        raw = _query_value(setting.key)
        if raw is not None and raw.lower() in FLAG_ALIASES and setting.key not in st.session_state:
            st.session_state[setting.key] = FLAG_ALIASES[raw.lower()]
    common = dict(key=setting.key, help=setting.help or None, bind="query-params", **kw)
    if setting.kind == "select":
        return c.selectbox(setting.label, setting.options, index=setting.options.index(setting.default), **common)
    if setting.kind == "bool":
        return c.toggle(setting.label, value=setting.default, **common)
    if setting.kind == "int":
        lo, hi, step = int(setting.lo), int(setting.hi), int(setting.step)
        if hi - lo <= 1000:
            return c.slider(setting.label, lo, hi, int(setting.default), step, **common)
        return c.number_input(setting.label, lo, hi, int(setting.default), step, **common)
    common.setdefault("format", "%.2f")
    return c.number_input(
        setting.label, float(setting.lo), float(setting.hi), float(setting.default), float(setting.step), **common
    )


def sidebar() -> None:
    """The shared controls (called by app.py before the page runs). Stores the settings in
    session state for the page: ``st.session_state['_cfg']`` (a ModelConfig or None) and the URL
    warnings to show."""
    st.session_state["_url_warnings"] = []
    values = {}
    with st.sidebar:
        upload_controls()
        up = current_upload()
        unused = UPLOAD_UNUSED + (UPLOAD_SEQ_UNUSED if up is not None and up.sequence_sha else ())
        st.markdown("### Model settings")
        if up is not None:
            st.caption("Greyed out: not used while your uploaded model is analysed.")
        for s in MODEL_SETTINGS:
            off = up is not None and s.key in unused
            values[s.attr] = widget(s, **({"disabled": True} if off else {}))
        st.markdown("### View")
        for s in VIEW_SETTINGS:
            widget(s)
        try:
            st.page_link(PAGE_FILES["overview"], label="Presets: the classic experiments", icon=":material/science:")
        except Exception:  # noqa: BLE001 - a page run on its own (no navigation) has no page to link to
            pass
    try:
        st.session_state["_cfg"] = ModelConfig(**values)
        st.session_state["_cfg_error"] = None
    except ValueError as e:  # only reachable through a value the widgets' domain let through
        st.session_state["_cfg"] = None
        st.session_state["_cfg_error"] = str(e)


# -- your own model ------------------------------------------------------------------------------------

UPLOAD_PAGES = ("gradient_flow", "spectrum", "truncation", "clipping")  # pages that use the uploaded model
UPLOAD_UNUSED = ("m_cell", "m_activation", "m_hidden", "m_init", "m_gain", "m_radius")
UPLOAD_SEQ_UNUSED = ("m_seq_len", "m_task")  # with an uploaded sequence
NONLIN_AUTO = "from the file (else tanh)"


def current_upload() -> Upload | None:
    """The uploaded model analysed instead of the settings model, or None."""
    up = st.session_state.get("_upload")
    if up is None:  # the usual case: answered without importing the upload store (and torch)
        return None
    return up if isinstance(up, sources().Upload) else None


def accept_upload(model: bytes, model_name: str, nonlinearity: str | None, sequence=None, sequence_name: str = ""):
    """Check the uploaded bytes; on success make them the analysed model. Returns (ok, message):
    the summary and notes, or the reason the files cannot be used (the settings model stays)."""
    try:
        up, loaded, notes = sources().make_upload(model, model_name, nonlinearity, sequence, sequence_name)
    except ValueError as e:  # UploadError, or a bad nonlinearity name from the library's checks
        return False, str(e)
    st.session_state["_upload"] = up
    return True, "\n".join([f"**{model_name}**: {loaded.summary()}", *(f"- {n}" for n in notes)])


def _clear_upload() -> None:
    for k in ("_upload", "_upload_key", "_upload_msg", "_upload_cfg"):
        st.session_state.pop(k, None)
    st.session_state["_upload_gen"] = st.session_state.get("_upload_gen", 0) + 1  # fresh, empty uploaders


def upload_controls() -> None:
    """The sidebar's "Your own model" expander: upload, check, and switch back."""
    gen = st.session_state.get("_upload_gen", 0)
    mb = MAX_UPLOAD_BYTES // 2**20
    with st.expander("Your own model", expanded=current_upload() is not None):
        st.caption(
            "A trained single-layer torch.nn.RNN / LSTM / GRU state_dict (torch.save(model.state_dict(), path) "
            f"or safetensors), up to {mb} MB. Optional: an input sequence, one row per step."
        )
        mfile = st.file_uploader(
            "Model (.pt, .pth, .safetensors)", type=[e[1:] for e in MODEL_EXTENSIONS], key=f"up_model_{gen}"
        )
        sfile = st.file_uploader(
            "Input sequence (.csv, .npy; optional)", type=[e[1:] for e in SEQUENCE_EXTENSIONS], key=f"up_seq_{gen}"
        )
        act = st.selectbox(
            "Nonlinearity (vanilla RNN)",
            (NONLIN_AUTO, *ACTIVATIONS),
            key="up_act",
            help="A state_dict does not store a vanilla RNN's nonlinearity; LSTM and GRU ignore this.",
        )
        nonlin = None if act == NONLIN_AUTO else act
        if mfile is None:
            if st.session_state.get("_upload_key") is not None:  # the user removed the file
                _clear_upload()
        else:
            key = (mfile.file_id, sfile.file_id if sfile is not None else "", nonlin)
            if key != st.session_state.get("_upload_key"):
                st.session_state["_upload_key"] = key
                ok, msg = accept_upload(
                    mfile.getvalue(), mfile.name, nonlin, sfile.getvalue() if sfile is not None else None,
                    sfile.name if sfile is not None else "",
                )  # fmt: skip
                if not ok:
                    st.session_state.pop("_upload", None)
                st.session_state["_upload_msg"] = (ok, msg)
        ok_msg = st.session_state.get("_upload_msg")
        if ok_msg is not None:
            ok, msg = ok_msg
            if ok:
                st.success(msg, icon=":material/check_circle:")
            else:
                st.error(f"This file cannot be used: {msg}. The settings model is analysed instead.")
        if current_upload() is not None:
            st.button("Use the settings model again", key="up_clear", on_click=_clear_upload, width="stretch")


def upload_for(cfg: ModelConfig) -> Upload | None:
    """The upload that ``cfg`` describes (the page's effective config), else None: a config built
    from it (the LSTM-vs-RNN comparison) gets a settings model of its own."""
    up = current_upload()
    return up if up is not None and st.session_state.get("_upload_cfg") == cfg else None


def _upload_config(page: str, cfg: ModelConfig) -> ModelConfig:
    """The page's config with the uploaded model's architecture, and the header saying so."""
    up = current_upload()
    if up is None:
        return cfg
    if page not in UPLOAD_PAGES:
        return cfg
    try:
        ecfg = sources().effective_config(cfg, up)
        notes = sources().input_notes(cfg, up)
    except ValueError as e:  # evicted bytes, or a sequence that no longer fits
        _clear_upload()
        st.error(f"The uploaded model cannot be used any more: {e}. Showing the settings model.")
        return cfg
    st.session_state["_upload_cfg"] = ecfg
    st.markdown(f"**{notes[0]}**")
    for n in notes[1:]:
        st.info(n, icon="ℹ️")
    return ecfg


def ensure_sidebar() -> None:
    """Pages call this first: app.py normally drew the sidebar in this run already; a page script run
    on its own (AppTest.from_file on the page, or before navigation exists) draws it itself."""
    if not st.session_state.pop("_sidebar_done", False):
        _claim_navigation()
        sidebar()


def _claim_navigation() -> None:
    """On a freshly started server, the first session may run a page script straight from the pages/
    folder (Streamlit's older multipage mode, chosen before any st.navigation call). Register the
    real navigation from here, so the menu is right and later runs go through app.py."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        from pages.registry import make_pages

        st.navigation(make_pages())


def lecture() -> bool:
    return bool(st.session_state.get("lecture", False))


def apply_view_css() -> None:
    css = []
    if lecture():
        css.append(
            """
            html { font-size: 20px; }
            [data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li,
            [data-testid="stCaptionContainer"] { font-size: 1.3rem !important; }
            h1 { font-size: 3rem !important; } h2 { font-size: 2.3rem !important; } h3 { font-size: 1.8rem !important; }
            [data-testid="stMetricValue"] [data-testid="stMarkdownContainer"] p { font-size: 2.6rem !important; }
            """
        )
    if not st.session_state.get("controls", True):
        css.append(
            """
            section[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"],
            [data-testid="stExpandSidebarButton"] { display: none !important; }
            """
        )
    if css:
        st.html("<style>" + "\n".join(css) + "</style>")


# -- the start of every page --------------------------------------------------------------------------


def page_start(page: str, title: str, intro: str) -> ModelConfig | None:
    """Title, intro, URL warnings, and the checked ModelConfig (None: the page shows why and stops)."""
    ensure_sidebar()
    apply_view_css()
    st.title(title)
    st.markdown(intro)
    for w in st.session_state.get("_url_warnings", []):
        st.warning(w, icon="⚠️")
    cfg = st.session_state.get("_cfg")
    if cfg is None:
        err = st.session_state.get("_cfg_error") or "the shared settings were not set up (open the app through app.py)"
        st.error(f"These settings cannot be used: {err}")
        return None
    cfg = _upload_config(page, cfg)
    errors, notes = report().problems(cfg)
    for n in notes:
        st.info(n, icon="ℹ️")
    for e in errors:
        st.error(e)
    if errors:
        st.caption("Change the setting in the sidebar; every other page is still available.")
        return None
    return cfg


def page_setting(setting: Setting, container=None, **kw):
    """A page-specific URL-bound control; a bad URL value is warned about right here."""
    warn = check_query(setting)
    if warn:
        st.warning(warn, icon="⚠️")
    return widget(setting, container, **kw)


def plotly_config(page: str) -> dict:
    return F.PLOTLY_CONFIG_SVG if st.session_state.get(f"{page}_svg") else F.PLOTLY_CONFIG


def export_format_toggle(page: str, container=None) -> None:
    (container or st).toggle(
        "Export figures as SVG (camera button)", key=f"{page}_svg", help="Off: PNG at 3x scale. On: SVG (vector)."
    )


def show_figure(fig, key: str, data: pd.DataFrame, csv_name: str, explain: str, page: str) -> None:
    """The figure, its CSV download beside it, and the 'what am I looking at' paragraph."""
    height = fig.layout.height or 450  # Plotly's own default
    F.style(fig, lecture=lecture(), height=int(height * (1.4 if lecture() else 1)))
    st.plotly_chart(fig, key=key, config=plotly_config(page), width="stretch", theme=None)
    c1, c2 = st.columns([1, 4], vertical_alignment="top")
    c1.download_button(
        "CSV",
        data.to_csv(index=False).encode(),
        file_name=csv_name,
        mime="text/csv",
        key=f"{key}_csv",
        on_click="ignore",
        icon=":material/download:",
        help="The numbers behind this figure, as CSV",
    )
    with c2.expander("What am I looking at?"):
        st.markdown(explain)


def exports(page: str, cfg: ModelConfig, extra: dict | None = None, report_kw: dict | None = None) -> None:
    """Settings as JSON, the link to this view, and the HTML report."""
    st.divider()
    st.subheader("Share and export")
    c1, c2 = st.columns([1, 2])
    settings = {"page": page, **cfg.to_dict(), **(extra or {})}
    up = upload_for(cfg)
    if up is not None:
        settings |= {"uploaded_model": up.model_name, "uploaded_model_sha256": up.model_sha}
        if up.sequence_sha:
            settings |= {"uploaded_sequence": up.sequence_name, "uploaded_sequence_sha256": up.sequence_sha}
    c1.download_button(
        "⬇ Settings (JSON)",
        json.dumps(settings, indent=2),
        file_name=f"bptt-{page}-settings.json",
        mime="application/json",
        key=f"{page}_json",
        on_click="ignore",
    )
    if c1.button("Build the HTML report", key=f"{page}_report", help="Every figure for these settings in one file."):
        with st.spinner("Computing every figure for the report…"):
            try:
                html = cached_report(cfg, **(report_kw or {}), lecture=lecture())
            except ValueError as e:
                html = None
                st.error(f"The report could not be built: {e}")
        if html:
            c1.download_button(
                "⬇ HTML report",
                html,
                file_name="bptt-report.html",
                mime="text/html",
                key=f"{page}_report_dl",
                on_click="ignore",
            )
    c2.markdown("**Link to this view** (copy it; it reopens these settings):")
    c2.code(view_link(page), language=None)
    if up is not None:
        c2.caption(f"The link holds the settings only: whoever opens it uploads {up.model_name} again.")


def view_link(page: str) -> str:
    """The full URL of this view: the page's address plus every non-default setting."""
    base = None
    try:
        base = st.context.url
    except Exception:  # noqa: BLE001 - no browser context (tests, bare mode)
        base = None
    if not base:
        base = f"http://localhost:8501/{page.replace('_', '-') if page != 'overview' else ''}"
    params = {}
    for s in MODEL_SETTINGS + VIEW_SETTINGS + tuple(PAGE_SETTINGS.get(page, ())):
        if s.key in st.session_state and st.session_state[s.key] != s.default:
            v = st.session_state[s.key]
            params[s.key] = str(v).lower() if isinstance(v, bool) else str(v)
    return base + ("?" + urllib.parse.urlencode(params) if params else "")


# Page-specific URL-bound settings, registered by each page module for the link above.
PAGE_SETTINGS: dict[str, tuple[Setting, ...]] = {}


# -- presets ---------------------------------------------------------------------------------------------


def _apply_preset(key: str) -> None:
    """Callback: write the preset into the widgets' state (runs before the next script run)."""
    p = P.get(key)
    values = P.settings(p)
    for s in MODEL_SETTINGS:
        st.session_state[s.key] = values[s.attr]
    for k, v in p.page_settings.items():
        st.session_state[k] = v
    st.session_state["_goto"] = p.page


def preset_button(p: P.Preset, container=None) -> None:
    (container or st).button(
        p.title, key=f"preset_{p.key}", on_click=_apply_preset, args=(p.key,), help=p.summary, width="stretch"
    )


def follow_preset() -> None:
    """Switch to the page a preset asked for (called by app.py before navigation runs a page)."""
    goto = st.session_state.pop("_goto", None)
    if goto:
        # query_params={}: the default (None) would clear the URL through the checked path, which
        # refuses while widgets are bound to it; the new page's widgets write their values back.
        st.switch_page(PAGE_FILES[goto], query_params={})


# -- cached computations ------------------------------------------------------------------------------

CACHE = dict(max_entries=32, show_spinner=False)


# The public names read the current upload; the cached ones are keyed by it (a small frozen Upload).


@st.cache_data(**CACHE)
def _flow_matrix(cfg: ModelConfig, norm: str, block: str, upload):
    with compute_slot():
        return report().flow_matrix_of(cfg, norm, block, upload)


def flow_matrix(cfg: ModelConfig, norm: str, block: str):
    return _flow_matrix(cfg, norm, block, upload_for(cfg))


@st.cache_data(**CACHE)
def _spectrum(cfg: ModelConfig, upload):
    with compute_slot():
        return report().spectrum_of(cfg, upload)


def spectrum(cfg: ModelConfig):
    return _spectrum(cfg, upload_for(cfg))


@st.cache_data(**CACHE)
def _lyapunov(cfg: ModelConfig, upload):
    with compute_slot():
        return report().lyapunov_of(cfg, upload=upload)


def lyapunov(cfg: ModelConfig):
    return _lyapunov(cfg, upload_for(cfg))


@st.cache_data(**CACHE)
def _loss_gradients(cfg: ModelConfig, upload):
    with compute_slot():
        return report().loss_gradients_of(cfg, upload)


def loss_gradients(cfg: ModelConfig):
    return _loss_gradients(cfg, upload_for(cfg))


@st.cache_data(**CACHE)
def _contributions(cfg: ModelConfig, t: int, upload):
    with compute_slot():
        return report().contributions_of(cfg, t, upload)


def contributions(cfg: ModelConfig, t: int):
    return _contributions(cfg, t, upload_for(cfg))


@st.cache_data(max_entries=8, show_spinner=False)
def _cached_report(cfg: ModelConfig, upload, lecture: bool = False, **kw) -> str:
    with compute_slot():
        return report().build_report(cfg, lecture=lecture, upload=upload, **kw)


def cached_report(cfg: ModelConfig, lecture: bool = False, **kw) -> str:
    return _cached_report(cfg, upload_for(cfg), lecture=lecture, **kw)
