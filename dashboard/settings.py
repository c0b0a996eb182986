"""The settings a visitor controls: their domains, how a URL value is read, their widgets, presets.

Every setting is bound to the URL (``bind="query-params"``). A URL is visitor input, so each value is
parsed here, by :meth:`Setting.parse`, before Streamlit's widget reads it (:func:`check_url`): a value
outside the setting's domain (``inf``, ``nan``, ``1e400``, 400 digits, an empty value, the wrong type,
non-ASCII digits, an unknown option) is removed from the URL and the widget shows its default, with a
warning that says so; Streamlit itself never sees it (its number input raised OverflowError on
``?m_seed=inf`` in every page's sidebar). A key repeated in the URL (``?m_hidden=8&m_hidden=16``) means
its **last** value, on sliders and number inputs alike, as a later value in a query string usually
overrides an earlier one.

The model settings' values live where their widgets keep them (``st.session_state[key]``);
:func:`model_config` reads them into one :class:`ModelConfig`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import streamlit as st

from bptt_core.config import ACTIVATIONS, CELLS, INITS, MAX_FORGET_BIAS, MAX_SEED, MAX_STACK, TASKS, ModelConfig
from dashboard import presets as P

from . import page_table

# The dashboard's control ranges: the library allows more (config.MAX_*), but beyond these the
# exact T x T Jacobian products stop answering in about a second.
UI_MAX_HIDDEN = 256
UI_MAX_SEQ_LEN = 400
UI_MAX_GAIN = 100.0
SHOWN_CHARS = 40  # of a refused URL value, in its warning
TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


@dataclass(frozen=True)
class Setting:
    """One URL-bound widget: its key (= query parameter), kind and domain, and default."""

    key: str
    label: str
    kind: str  # select | int | float | bool | cell (a heatmap cell "t,s", or "" for none)
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
        if self.kind == "cell":
            return f"two whole steps t,s with 1 ≤ s ≤ t ≤ {_num(self.hi)}"
        what = "a whole number" if self.kind == "int" else "a number"
        return f"{what} in [{_num(self.lo)}, {_num(self.hi)}]"

    def parse(self, raw: str):
        """The value a raw query string stands for; ValueError if it is outside the domain.

        Numbers are read as plain ASCII decimals (``12``, ``0.5``, ``1e3``): Python would also take
        other scripts' digits or ``_`` separators, which no link the dashboard writes contains."""
        if not isinstance(raw, str):
            raise ValueError("not text")
        if self.kind == "select":
            for o in self.options:
                if raw == str(o):
                    return o
            raise ValueError("not an option")
        if self.kind == "bool":
            word = raw.lower()
            if word in TRUE_WORDS or word in FALSE_WORDS:
                return word in TRUE_WORDS
            raise ValueError("not a flag")
        if self.kind == "cell":
            return _parse_cell(raw, int(self.hi))
        if not raw.isascii() or "_" in raw or not raw.strip():
            raise ValueError("not a plain number")
        v = float(raw)  # ValueError for text; a huge spelling gives inf, refused below
        if not math.isfinite(v):
            raise ValueError("not finite")
        if self.kind == "int":  # any float spelling of a whole number ("1e3"), as Streamlit reads it
            if not v.is_integer():
                raise ValueError("not whole")
            v = int(v)
        if not self.lo <= v <= self.hi:
            raise ValueError("out of range")
        return v

    def spell(self, value) -> str:
        """The value as the URL holds it (what :meth:`parse` reads back to ``value``)."""
        return str(value).lower() if isinstance(value, bool) else str(value)


def _parse_cell(raw: str, hi: int) -> str:
    """A heatmap cell as the URL spells it ("t,s", 1-indexed steps, s <= t), canonical. No cell is the
    default, left out of the URL: an empty value is refused like any other setting's."""
    parts = raw.split(",")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and len(p) <= 6 for p in parts):
        raise ValueError("not two whole steps")
    t, s = (int(p) for p in parts)
    if not 1 <= s <= t <= hi:
        raise ValueError("out of range")
    return f"{t},{s}"


def cell_of(value: str) -> tuple[int, int] | None:
    """The 1-indexed (t, s) a cell setting holds, or None for none."""
    return None if not value else tuple(int(v) for v in value.split(","))


def _num(v) -> str:
    if isinstance(v, bool):  # as the URL spells it, not Python's True/False
        return "true" if v else "false"
    return f"{v:g}" if isinstance(v, float) else str(v)


D = ModelConfig()
MODEL_SETTINGS: tuple[Setting, ...] = (
    Setting("m_cell", "Cell", "select", D.cell, CELLS, attr="cell",
            help="Vanilla RNN, LSTM, GRU, or a diagonal recurrence: LRU (Orvieto et al. 2023), minGRU / minLSTM "
            "(Feng et al. 2024), selective SSM (Mamba-style)."),
    Setting("m_layers", "Stacked layers", "int", D.num_layers, lo=1, hi=MAX_STACK, step=1, attr="num_layers",
            help="num_layers of a vanilla RNN (tanh or ReLU), LSTM or GRU: the pictures read the top layer's h."),
    Setting("m_activation", "Activation (vanilla RNN)", "select", D.activation, ACTIVATIONS, attr="activation"),
    Setting("m_hidden", "Hidden units H", "int", D.hidden_size, lo=1, hi=UI_MAX_HIDDEN, step=1, attr="hidden_size"),
    Setting("m_seq_len", "Sequence length T", "int", D.seq_len, lo=1, hi=UI_MAX_SEQ_LEN, step=1, attr="seq_len"),
    Setting("m_init", "Initialisation of W_hh", "select", D.init, INITS, attr="init"),
    Setting("m_gain", "Gain g", "float", D.gain, lo=0.01, hi=UI_MAX_GAIN, step=0.05, attr="gain",
            help="Multiplies the initialisation (ignored by the sparse init)."),
    Setting("m_radius", "Spectral radius ρ (0 = as initialised)", "float", D.spectral_radius, lo=0.0,
            hi=UI_MAX_GAIN, step=0.05, attr="spectral_radius", help="> 0 rescales W_hh to exactly this spectral radius."),
    Setting("m_r_min", "LRU ring: smallest |λ|", "float", D.r_min, lo=0.0, hi=0.999, step=0.01, attr="r_min",
            help="The LRU's ring initialisation draws |λ| between these two (other cells ignore them)."),
    Setting("m_r_max", "LRU ring: largest |λ|", "float", D.r_max, lo=0.001, hi=1.0, step=0.001, attr="r_max"),
    Setting("m_seed", "Seed", "int", D.seed, lo=0, hi=MAX_SEED, step=1, attr="seed"),
    Setting("m_task", "Task (input sequence)", "select", D.task, TASKS, attr="task"),
    Setting("m_forget_bias", "Forget-gate bias (LSTM)", "float", D.forget_bias, lo=-MAX_FORGET_BIAS,
            hi=MAX_FORGET_BIAS, step=0.5, attr="forget_bias",
            help="Added to the LSTM's forget-gate bias: 1 is Gers et al.'s and Jozefowicz et al.'s advice."),
)  # fmt: skip
# Settings only one kind of cell reads: greyed out for the others (their values stay, unused).
CELL_ONLY = {"m_activation": ("rnn",), "m_forget_bias": ("lstm",), "m_layers": ("rnn", "lstm", "gru"),
             "m_r_min": ("lru",), "m_r_max": ("lru",)}  # fmt: skip
# Compare mode: a second model B, its settings under A's keys with a b_ prefix (b_m_cell, b_m_hidden, ...).
# Switching compare on copies A's values into B's; a B key missing from the URL means its default, as A's.
COMPARE = Setting(
    "compare",
    "Compare mode: A against B",
    "bool",
    False,
    help="A second model B beside this one (A): its own settings below, starting as a copy of A.",
)
B_PREFIX = "b_"
B_SETTINGS: tuple[Setting, ...] = tuple(replace(s, key=B_PREFIX + s.key, label=f"B: {s.label}") for s in MODEL_SETTINGS)
COMPARE_PAGES = ("Gradient flow", "Spectrum", "Clipping", "Truncated BPTT")  # the pages that show B
B_UPLOAD = Setting(
    "b_upload", "B uses the uploaded model", "bool", False,
    help="On: B is your uploaded model (sidebar, 'Your own model') and A the settings model above, on every "
    "page (the Calculator too). Off: an upload is A, and B these settings.",
)  # fmt: skip
VIEW_SETTINGS: tuple[Setting, ...] = (
    Setting("lecture", "Lecture mode (large type)", "bool", False),
    Setting("controls", "Show controls", "bool", True, help="Off hides every control: the figures and their words."),
    Setting("slide", "Slide: one figure, full screen", "select", "off", ("off", *page_table.FIGURES),
            help="Shows only this figure, filling the screen, with every control hidden (for a lecture slide; "
            "remove slide= from the URL to come back)."),
)  # fmt: skip


# -- the URL ---------------------------------------------------------------------------------------


def check_url(setting: Setting) -> str | None:
    """Make the URL's value for ``setting`` one its widget can take, before the widget reads it.

    Repeated: the last value is kept (one value, spelled canonically). Outside the domain: removed,
    so the widget shows its default; returns the warning to show. Streamlit keeps the URL twice (the
    values the page was opened with, which seed the widgets, and the live ones): both are checked.
    """
    try:
        from streamlit.runtime.state.session_state_proxy import get_session_state

        with get_session_state().query_params() as qp:
            return _check_url(qp, setting)
    except (AttributeError, RuntimeError, KeyError):  # no session (bare mode) or another Streamlit's internals
        return None


def _check_url(qp, setting: Setting) -> str | None:
    warning = None
    for initial, store in ((True, qp._initial_query_params), (False, qp._query_params)):
        if setting.key not in store:
            continue
        raw = store[setting.key]
        last = raw[-1] if isinstance(raw, list) and raw else raw if isinstance(raw, str) else ""
        try:
            value = setting.parse(last)
        except (ValueError, TypeError, OverflowError):
            warning = refused(setting, last)
            if initial:
                del store[setting.key]
            else:
                qp.remove_param(setting.key)  # and the browser's address bar with it
            continue
        spelled = setting.spell(value)
        if initial:
            store[setting.key] = [spelled]
        elif raw != spelled:
            qp.set_with_no_forward_msg(setting.key, spelled)
    return warning


def forget(setting: Setting, value: str) -> None:
    """Drop ``setting``'s ``value`` from the session and the URL (before its widget is drawn), so that
    it returns to its default: for a value another setting made meaningless (an LSTM's c block once the
    cell is an RNN), so that no link carries it. Any other value is left to the usual URL checks."""
    if st.session_state.get(setting.key) == value:
        st.session_state.pop(setting.key)
    try:
        from streamlit.runtime.state.session_state_proxy import get_session_state

        with get_session_state().query_params() as qp:
            for store in (qp._initial_query_params, qp._query_params):
                raw = store.get(setting.key)
                last = raw[-1] if isinstance(raw, list) and raw else raw
                if last == value:
                    if store is qp._query_params:
                        qp.remove_param(setting.key)
                    else:
                        del store[setting.key]
    except (AttributeError, RuntimeError, KeyError):  # no session (bare mode) or another Streamlit's internals
        pass


def refused(setting: Setting, raw: str) -> str:
    """The warning for a URL value outside ``setting``'s domain."""
    shown = raw if len(raw) <= SHOWN_CHARS else raw[:SHOWN_CHARS] + "…"
    shown = shown.replace("`", "'") or "(empty)"
    return (
        f"URL parameter **{setting.key}** = `{shown}` is not valid for *{setting.label}* "
        f"(it must be {setting.domain()}); it falls back to the default {_num(setting.default) or '(none)'}."
    )


# -- widgets ---------------------------------------------------------------------------------------


def widget(setting: Setting, container=None, **kw):
    """The URL-bound widget for ``setting`` (its URL value checked first); returns its value.

    The widget always gets the same arguments, its real default included: a default that changed
    between reruns (e.g. index 0 once the key is in session state) makes the browser reset the
    widget to it. A value in session state (earlier runs, a preset) still wins; Streamlit's log
    warning about that is switched off in .streamlit/config.toml.
    """
    c = container or st
    common = dict(key=setting.key, help=setting.help or None, bind="query-params", **kw)
    if setting.kind == "select":
        return c.selectbox(setting.label, setting.options, index=setting.options.index(setting.default), **common)
    if setting.kind == "bool":
        return c.toggle(setting.label, value=setting.default, **common)
    if setting.kind == "cell":
        return c.text_input(setting.label, value=setting.default, max_chars=13, **common)
    if setting.kind == "int":
        lo, hi, step = int(setting.lo), int(setting.hi), int(setting.step)
        if hi - lo <= 1000:
            return c.slider(setting.label, lo, hi, int(setting.default), step, **common)
        return c.number_input(setting.label, lo, hi, int(setting.default), step, **common)
    common.setdefault("format", "%.2f")
    return c.number_input(
        setting.label, float(setting.lo), float(setting.hi), float(setting.default), float(setting.step), **common
    )


def page_setting(setting: Setting, container=None, **kw):
    """A page's own URL-bound control; a refused URL value (or a saved view's) is warned about right here."""
    warn = check_url(setting) or take_saved_value(setting)
    if warn:
        st.warning(warn, icon=":material/warning:")
    return widget(setting, container, **kw)


def shared_settings(disabled: tuple[str, ...] = ()) -> list[str]:
    """The model and view settings' widgets (in the current container, the sidebar); returns the
    warnings about refused URL values. ``disabled``: keys of settings greyed out."""
    warnings = [w for s in MODEL_SETTINGS + VIEW_SETTINGS if (w := check_url(s))]
    st.markdown("### Model settings")
    if disabled:
        st.caption("Greyed out: not used while your uploaded model is analysed.")
    cell = st.session_state.get("m_cell", D.cell)
    for s in MODEL_SETTINGS:
        off = s.key in disabled or cell not in CELL_ONLY.get(s.key, (cell,))
        widget(s, **({"disabled": True} if off else {}))
    warnings += compare_settings()
    st.markdown("### View")
    for s in VIEW_SETTINGS:
        widget(s)
    return warnings


def _copy_a_to_b() -> None:
    """Compare switched on: B starts as a copy of A (every model setting)."""
    if st.session_state.get(COMPARE.key):
        for a, b in zip(MODEL_SETTINGS, B_SETTINGS, strict=True):
            st.session_state[b.key] = st.session_state.get(a.key, a.default)


def compare_settings() -> list[str]:
    """The compare toggle and, while it is on, B's model settings; returns the warnings about refused
    URL values (B's read like A's: outside the domain, removed and the default used)."""
    warnings = [w for w in [check_url(COMPARE)] if w]
    take_pending_compare_cells()
    if not widget(COMPARE, on_change=_copy_a_to_b):
        return warnings
    warnings += [w for s in (B_UPLOAD, *B_SETTINGS) if (w := check_url(s))]
    st.caption(f"Model B, shown on: {', '.join(COMPARE_PAGES)}.")
    widget(B_UPLOAD)
    replaced = b_upload_replaces()
    if replaced:
        st.caption("Greyed out: not used while B is your uploaded model.")
    cell = st.session_state.get(B_PREFIX + "m_cell", D.cell)
    for s in B_SETTINGS:
        a_key = s.key.removeprefix(B_PREFIX)
        off = cell not in CELL_ONLY.get(a_key, (cell,)) or a_key in replaced
        widget(s, **({"disabled": True} if off else {}))
    return warnings


def b_uses_upload() -> bool:
    """Whether compare mode is on with B the uploaded model (A is then the settings model). Asked before
    the widgets are drawn too (which of A's settings to grey out): then the URL's value, if valid, counts."""
    return bool(_current(COMPARE)) and bool(_current(B_UPLOAD))


def _current(setting: Setting):
    """The setting's value: its widget's, else (not drawn yet in this session) the URL's when valid."""
    if setting.key in st.session_state:
        return st.session_state[setting.key]
    try:
        return setting.parse(st.query_params.get(setting.key))
    except (ValueError, TypeError, OverflowError):
        return setting.default


def b_upload_replaces() -> tuple[str, ...]:
    """The (A-named) model settings B's upload replaces: none unless B uses an upload that is there."""
    from . import uploads

    return uploads.disabled_settings() if b_uses_upload() else ()


def compare_on() -> bool:
    return bool(st.session_state.get(COMPARE.key, False))


def model_config_b() -> tuple[ModelConfig | None, str | None]:
    """Model B of compare mode, as :func:`model_config` reads A."""
    return model_config(B_SETTINGS)


def model_config(settings: tuple[Setting, ...] = MODEL_SETTINGS) -> tuple[ModelConfig | None, str | None]:
    """The settings model the widgets describe, or (None, why) for a combination the config refuses."""
    values = {s.attr: st.session_state.get(s.key, s.default) for s in settings}
    try:
        return ModelConfig(**values), None
    except ValueError as e:  # only reachable through a value the widgets' domain let through
        return None, str(e)


def lecture() -> bool:
    return bool(st.session_state.get("lecture", False))


def show_controls() -> bool:
    return bool(st.session_state.get("controls", True)) and slide() is None


def slide() -> str | None:
    """The figure key slide mode shows alone, or None."""
    key = st.session_state.get("slide", "off")
    return None if key in (None, "off") else key


def view_params(page_settings: tuple[Setting, ...] = ()) -> dict[str, str]:
    """Every setting that differs from its default, as the URL spells it (the link to this view)."""
    params = {}
    compare = (COMPARE, B_UPLOAD, *B_SETTINGS) if compare_on() else ()
    for s in MODEL_SETTINGS + compare + VIEW_SETTINGS + tuple(page_settings):
        if s.key in st.session_state and st.session_state[s.key] != s.default:
            params[s.key] = s.spell(st.session_state[s.key])
    return params


# -- presets ---------------------------------------------------------------------------------------

GOTO = "preset_goto"  # the page a clicked preset asked for, until the router switches to it
PENDING = "preset_values"  # widget values to apply on the way there (set before any widget exists)


def _apply_preset(key: str) -> None:
    """Callback: write the preset into the widgets' state (runs before the next script run)."""
    p = P.get(key)
    values = P.settings(p)
    for s in MODEL_SETTINGS:
        st.session_state[s.key] = values[s.attr]
    for k, v in p.page_settings.items():
        st.session_state[k] = v
    if p.page_settings.get(COMPARE_CELLS):  # "Compare cells": a B preset (the other cell)
        compare_other_cell()
    st.session_state[GOTO] = (p.page, {})


PRESET_PICK = "preset_pick"  # the presets' one row of buttons (st.pills): one element, not one per preset


def _picked_preset() -> None:
    """Callback: apply the preset just picked; the row forgets the pick, so the same preset can be picked again."""
    key = st.session_state.get(PRESET_PICK)
    st.session_state[PRESET_PICK] = None
    if key is not None:
        _apply_preset(key)


def preset_picker() -> None:
    """Every preset as one button of one row (one element at every rerun, where a button each was nine)."""
    titles = {p.key: p.title for p in P.PRESETS}
    st.pills(
        "Open a preset", tuple(titles), format_func=titles.__getitem__, key=PRESET_PICK,
        on_change=_picked_preset, label_visibility="collapsed",
    )  # fmt: skip


# -- a saved view (the "Settings (JSON)" export) opened again -----------------------------------------

VIEW_FILE, VIEW_TEXT, VIEW_ERROR, VIEW_PENDING = "view_file", "view_text", "view_error", "view_pending"
# A saved view may set only its own page's settings (never the dashboard's internal keys).
PAGE_PREFIXES = {"gradient_flow": ("gf_",), "spectrum": ("sp_",), "clipping": ("cl_", "clip_"),
                 "truncation": ("tb_",), "calculator": ("ca_",)}  # fmt: skip


def open_view(text: str | bytes) -> str:
    """Write a saved view's model settings into the widgets' state and keep its page settings for the
    page's own controls to check (:func:`take_saved_value`); returns the page. ValueError naming what
    cannot be used (and then nothing is written)."""
    from dashboard.views import parse_view

    view = parse_view(text, tuple(page_table.BY_KEY))
    models = [(MODEL_SETTINGS, view.cfg, "")] + (
        [(B_SETTINGS, view.model_b, "compare.model_b.")] if view.model_b else []
    )
    for settings, cfg, where in models:
        for s in settings:
            value = getattr(cfg, s.attr)
            try:
                s.parse(s.spell(value))
            except (ValueError, TypeError, OverflowError):
                raise ValueError(
                    f"{where}{s.attr} = {value!r} is outside what the dashboard offers ({s.domain()})"
                ) from None
    prefixes = PAGE_PREFIXES.get(view.page, ())
    stray = [k for k in view.page_settings if not k.startswith(prefixes)]
    if stray:
        raise ValueError(f"page_settings: {', '.join(stray)} are not settings of the {view.page} page")
    for s in MODEL_SETTINGS:
        st.session_state[s.key] = getattr(view.cfg, s.attr)
    open_compare(view)
    st.session_state[VIEW_PENDING] = {k: str(v).lower() if isinstance(v, bool) else str(v)
                                      for k, v in view.page_settings.items()}  # fmt: skip
    return view.page


def take_saved_value(setting: Setting) -> str | None:
    """A page setting from a saved view just opened, checked by the page's own Setting as a URL value is;
    returns the warning if it is refused (the control then keeps its value)."""
    pending = st.session_state.get(VIEW_PENDING)
    if not pending or setting.key not in pending:
        return None
    raw = pending.pop(setting.key)
    try:
        st.session_state[setting.key] = setting.parse(raw)
    except (ValueError, TypeError, OverflowError):
        return refused(setting, raw).replace("URL parameter", "Saved setting")
    return None


def _open_view_clicked() -> None:
    data = st.session_state.get(VIEW_FILE)
    text = data.getvalue() if data is not None else st.session_state.get(VIEW_TEXT, "")
    try:
        page = open_view(text)
    except ValueError as e:
        st.session_state[VIEW_ERROR] = str(e)
        return
    st.session_state[GOTO] = (page, {})


def saved_view_controls() -> None:
    """The sidebar's "Open a saved view": the settings JSON of any page's export, uploaded or pasted."""
    saved = st.expander("Open a saved view", key="view_expander", on_change="rerun")
    if not saved.open:  # lazy: its three controls are sent only while it is open
        return
    with saved:
        st.file_uploader("Settings file (.json)", type=["json"], key=VIEW_FILE)
        st.text_area("… or paste its text", key=VIEW_TEXT, height=80)
        st.button("Open this view", key="view_open", on_click=_open_view_clicked, width="stretch")
        error = st.session_state.pop(VIEW_ERROR, None)
        if error:
            st.error(f"This view cannot be opened: {error}")


def follow_preset() -> None:
    """Switch to the page a preset (or a clicked point of the Phase diagram) asked for, its widget values
    applied first (called by app.py before navigation runs a page)."""
    pending = st.session_state.pop(PENDING, None)
    if pending:
        for key, value in pending.items():
            st.session_state[key] = value
    goto = st.session_state.pop(GOTO, None)
    if goto:
        page, params = goto
        # query_params given (never None): the default would clear the URL through the checked path, which
        # refuses while widgets are bound to it; the new page's widgets write their values back.
        st.switch_page(page_table.page(page).file, query_params=params)


# -- compare mode: the Gradient flow page's "Compare cells" shortcut ----------------------------------------

COMPARE_CELLS = "gf_compare"  # the Gradient flow page's toggle (pages/gradient-flow.py draws it)


def other_cell(cell: str) -> str:
    """The cell "Compare cells" puts in B: the LSTM against a vanilla RNN, the vanilla RNN against the others."""
    return "lstm" if cell == "rnn" else "rnn"


def compare_other_cell() -> None:
    """Compare mode on, with B a copy of A but for the cell (:func:`other_cell`): what "Compare cells"
    and the presets that use it set, shown in B's sidebar section and carried by the link like any B."""
    st.session_state[COMPARE.key] = True
    for a, b in zip(MODEL_SETTINGS, B_SETTINGS, strict=True):
        st.session_state[b.key] = st.session_state.get(a.key, a.default)
    st.session_state[B_PREFIX + "m_cell"] = other_cell(st.session_state.get("m_cell", D.cell))


def compare_cells_changed() -> None:
    """Callback of "Compare cells": on, B becomes the other cell (:func:`compare_other_cell`); off, compare
    mode goes off. The sidebar is outside the page's fragment: the page reruns the whole app after it."""
    if st.session_state.get(COMPARE_CELLS):
        compare_other_cell()
    else:
        st.session_state[COMPARE.key] = False
    st.session_state[RERUN_APP] = True


RERUN_APP = "compare_rerun_app"


def sync_compare_cells() -> bool:
    """Before "Compare cells" is drawn: keep it consistent with compare mode. A link that asks for it
    (gf_compare=true) without compare mode gets the B preset; a toggle left on after compare mode was
    switched off in the sidebar goes off. Returns whether the whole app must rerun (the sidebar changed)."""
    if st.session_state.pop(RERUN_APP, False):
        return True
    if not _current(Setting(COMPARE_CELLS, "", "bool", False)) or compare_on():
        return False
    if COMPARE_CELLS in st.session_state:  # switched off in the sidebar: the shortcut follows
        st.session_state[COMPARE_CELLS] = False
        return False
    st.session_state[COMPARE_CELLS] = True
    st.session_state[CELLS_PENDING] = True  # B is written before the sidebar's widgets, in the rerun
    return True


CELLS_PENDING = "compare_cells_pending"


def take_pending_compare_cells() -> None:
    """The B preset a link's gf_compare=true asked for (:func:`sync_compare_cells`), applied before the
    sidebar's compare widgets are drawn (a widget's value cannot change after it is drawn)."""
    if st.session_state.pop(CELLS_PENDING, False):
        compare_other_cell()


# -- compare mode: a saved view's B ---------------------------------------------------------------------------


def open_compare(view) -> None:
    """A saved view's compare mode (dashboard.views.View.model_b): B's settings and b_upload written into
    the widgets' state, compare mode on; a view without B switches compare mode off (it reopens as saved)."""
    st.session_state[COMPARE.key] = view.model_b is not None
    if view.model_b is not None:
        for s in B_SETTINGS:
            st.session_state[s.key] = getattr(view.model_b, s.attr)
        st.session_state[B_UPLOAD.key] = view.b_upload


def saved_compare() -> dict:
    """What the settings JSON export adds for compare mode (View fields): B's settings and b_upload."""
    if not compare_on():
        return {}
    cfg_b, _ = model_config_b()
    return {} if cfg_b is None else {"model_b": cfg_b, "b_upload": bool(st.session_state.get(B_UPLOAD.key, False))}
