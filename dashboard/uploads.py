"""The visitor's own model: the sidebar's "Your own model" expander, and the upload a page analyses.

The checked upload (a small frozen :class:`bptt_core.analyses.sources.Upload`: hashes and names; the bytes stay in
the library's bounded store) is this module's own state in the session, under :data:`STATE`. A page
gets it from :func:`dashboard.layout.page_start`, inside its PageContext, never from session state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from bptt_core.config import ACTIVATIONS, MAX_UPLOAD_BYTES, MODEL_EXTENSIONS, SEQUENCE_EXTENSIONS, ModelConfig

if TYPE_CHECKING:
    from bptt_core.analyses.sources import Upload

STATE = "upload"  # the accepted Upload
FILES = "upload_files"  # (model file id, sequence file id, nonlinearity) last checked
MESSAGE = "upload_message"  # (ok, text) about the last check
GENERATION = "upload_generation"  # bumped to give fresh, empty uploaders
OPEN = "upload_open"  # the "Your own model" expander (lazy: its inputs are drawn only while it is open)
UNUSED = ("m_cell", "m_activation", "m_hidden", "m_init", "m_gain", "m_radius", "m_layers", "m_r_min", "m_r_max",
          "m_forget_bias")  # settings an upload replaces  # fmt: skip
SEQUENCE_UNUSED = ("m_seq_len", "m_task")  # with an uploaded sequence
NONLIN_AUTO = "from the file (else tanh)"


def _sources():
    """bptt_core.analyses.sources (imports torch, set up for serving first)."""
    from . import compute

    compute.numerics()
    from bptt_core.analyses import sources

    return sources


def current_upload() -> Upload | None:
    """The uploaded model analysed instead of the settings model, or None."""
    up = st.session_state.get(STATE)
    if up is None:  # the usual case: answered without importing the upload store (and torch)
        return None
    return up if isinstance(up, _sources().Upload) else None


def disabled_settings() -> tuple[str, ...]:
    """The sidebar settings that do not apply while an upload is analysed."""
    up = current_upload()
    if up is None:
        return ()
    return UNUSED + (SEQUENCE_UNUSED if up.sequence_sha else ())


def accept_upload(model: bytes, model_name: str, nonlinearity: str | None, sequence=None, sequence_name: str = ""):
    """Check the uploaded bytes; on success make them the analysed model. Returns (ok, message):
    the summary and notes, or the reason the files cannot be used (the settings model stays)."""
    try:
        up, loaded, notes = _sources().make_upload(model, model_name, nonlinearity, sequence, sequence_name)
    except ValueError as e:  # UploadError, or a bad nonlinearity name from the library's checks
        return False, str(e)
    st.session_state[STATE] = up
    return True, "\n".join([f"**{model_name}**: {loaded.summary()}", *(f"- {n}" for n in notes)])


def clear_upload() -> None:
    for k in (STATE, FILES, MESSAGE):
        st.session_state.pop(k, None)
    st.session_state[GENERATION] = st.session_state.get(GENERATION, 0) + 1  # fresh, empty uploaders


def upload_controls() -> None:
    """The sidebar's "Your own model" expander: upload, check, and switch back."""
    gen = st.session_state.get(GENERATION, 0)
    mb = MAX_UPLOAD_BYTES // 2**20
    # Lazy: closed, its five elements are not sent at every rerun. The upload itself lives in the session, not
    # in the file inputs (which forget their file when not drawn), so closing the expander keeps it.
    # (``expanded`` is constant: a default that changes gives the expander a new identity, which reopens it.)
    shelf = st.expander("Your own model", key=OPEN, on_change="rerun")
    if not shelf.open:
        st.session_state.pop(FILES, None)  # the inputs come back empty: that is not the user removing the file
        return
    with shelf:
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
            if st.session_state.get(FILES) is not None:  # the user removed the file
                clear_upload()
        else:
            files = (mfile.file_id, sfile.file_id if sfile is not None else "", nonlin)
            if files != st.session_state.get(FILES):
                st.session_state[FILES] = files
                ok, msg = accept_upload(
                    mfile.getvalue(), mfile.name, nonlin, sfile.getvalue() if sfile is not None else None,
                    sfile.name if sfile is not None else "",
                )  # fmt: skip
                if not ok:
                    st.session_state.pop(STATE, None)
                st.session_state[MESSAGE] = (ok, msg)
        ok_msg = st.session_state.get(MESSAGE)
        if ok_msg is not None:
            ok, msg = ok_msg
            if ok:
                st.success(msg, icon=":material/check_circle:")
            else:
                st.error(f"This file cannot be used: {msg}. The settings model is analysed instead.")
        if current_upload() is not None:
            st.button("Use the settings model again", key="up_clear", on_click=clear_upload, width="stretch")


def analysed_model(cfg: ModelConfig, upload: Upload) -> tuple[ModelConfig, list[str]]:
    """The settings with the upload's architecture (what every analysis of it takes), and the notes
    the page shows about it. ValueError when the upload cannot be used any more."""
    src = _sources()
    return src.effective_config(cfg, upload), src.input_notes(cfg, upload)
