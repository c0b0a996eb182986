"""Where the analysed model comes from: the seeded settings model, or a user's uploaded file.

Cached computations are keyed by small hashable values, never by megabytes of bytes, so an upload is
described by :class:`Upload` (sha256 fingerprints and the chosen nonlinearity) and its bytes are kept
in a small in-process registry keyed by fingerprint (:func:`register`). :func:`effective_config`
rewrites a :class:`ModelConfig` so that every field the pages read (cell, hidden size, input size,
activation, sequence length, task) describes the uploaded model; :func:`resolve` builds the
(rnn, readout, x, y, data) every analysis starts from.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from functools import lru_cache

import torch
from torch import nn

from bptt_core.config import ModelConfig
from bptt_core.data.tasks import TASK_MIN_SEQ_LEN, TaskData, make_task, task_input_size, task_output_size
from bptt_core.files.model_io import LoadedModel, UploadError, load_model, load_sequence, model_fingerprint
from bptt_core.models.build import seeded_readout

MAX_REGISTERED = 16  # uploads kept in memory (each at most model_io.MAX_UPLOAD_BYTES)


@dataclass(frozen=True)
class Upload:
    """A hashable handle on an uploaded model (and optional input sequence)."""

    model_sha: str  # sha256 of the model file's bytes
    model_name: str  # its file name (the extension picks the reader)
    nonlinearity: str = ""  # vanilla RNN: tanh | relu | sigmoid | linear; "" = the file's / tanh
    sequence_sha: str = ""  # sha256 of the sequence file's bytes; "" = the task generator
    sequence_name: str = ""


_lock = threading.Lock()
_files: OrderedDict[str, bytes] = OrderedDict()  # sha -> bytes, least recently used first


def register(data: bytes) -> str:
    """Keep ``data`` for later :func:`fetch` (bounded LRU); returns its sha256."""
    data = bytes(data)
    sha = model_fingerprint(data)
    with _lock:
        _files[sha] = data
        _files.move_to_end(sha)
        while len(_files) > MAX_REGISTERED:
            _files.popitem(last=False)
    return sha


def fetch(sha: str) -> bytes:
    with _lock:
        if sha not in _files:
            raise UploadError(
                "the uploaded file is no longer held by the server (too many uploads since): upload it again"
            )
        _files.move_to_end(sha)
        return _files[sha]


@lru_cache(maxsize=8)
def _loaded(sha: str, name: str, nonlinearity: str) -> LoadedModel:
    return load_model(fetch(sha), name, nonlinearity or None)


def loaded_model(upload: Upload) -> LoadedModel:
    """The uploaded model, parsed once per (file, nonlinearity). Treat as read-only."""
    return _loaded(upload.model_sha, upload.model_name, upload.nonlinearity)


@lru_cache(maxsize=8)
def _sequence(sha: str, name: str, input_size: int) -> torch.Tensor:
    return load_sequence(fetch(sha), name, input_size)


def sequence_of(upload: Upload, input_size: int) -> torch.Tensor | None:
    """The uploaded input sequence (T, I), or None when inputs come from the task generator."""
    if not upload.sequence_sha:
        return None
    return _sequence(upload.sequence_sha, upload.sequence_name, input_size)


def make_upload(
    model: bytes,
    model_name: str,
    nonlinearity: str | None = None,
    sequence: bytes | None = None,
    sequence_name: str = "",
) -> tuple[Upload, LoadedModel, list[str]]:
    """Check and register an upload. Raises UploadError (a ValueError) with the reason; on success
    returns the handle, the loaded model and notes for the page (what was assumed)."""
    loaded = load_model(model, model_name, nonlinearity)  # fails before anything is kept
    seq_sha = ""
    if sequence is not None:
        load_sequence(sequence, sequence_name, loaded.input_size)
        seq_sha = register(sequence)
    up = Upload(register(model), model_name, nonlinearity or "", seq_sha, sequence_name if seq_sha else "")
    return up, loaded, loaded.notes + input_notes(ModelConfig(), up)[1:]


def _task_for(cfg: ModelConfig, input_size: int) -> str:
    try:
        fits = task_input_size(cfg.task) == input_size
    except ValueError:
        fits = False
    return cfg.task if cfg.task == "gaussian" or fits else "gaussian"


def effective_config(cfg: ModelConfig, upload: Upload | None) -> ModelConfig:
    """``cfg`` with the architecture (and, for an uploaded sequence, the length) of the upload.

    Settings that do not apply to a trained model (init, gain, spectral radius) are kept but unused.
    """
    if upload is None:
        return cfg
    m = loaded_model(upload)
    task = _task_for(cfg, m.input_size)
    seq = sequence_of(upload, m.input_size)
    seq_len = cfg.seq_len if seq is None else seq.shape[0]
    if seq is not None:
        task = "gaussian"  # the generator is not used; gaussian accepts any length and width
    seq_len = max(seq_len, TASK_MIN_SEQ_LEN[task])
    return replace(
        cfg,
        cell=m.cell,
        activation=m.nonlinearity if m.cell == "rnn" else "tanh",
        hidden_size=m.hidden_size,
        input_size=m.input_size,
        num_layers=m.num_layers,
        seq_len=seq_len,
        task=task,
        batch_size=1,
    )


def input_notes(cfg: ModelConfig, upload: Upload | None) -> list[str]:
    """What the page should say about the inputs and readout of an uploaded model."""
    if upload is None:
        return []
    m = loaded_model(upload)
    notes = [f"Model: uploaded {upload.model_name} ({m.summary()})."]
    if upload.sequence_sha:
        T = sequence_of(upload, m.input_size).shape[0]
        notes.append(
            f"Inputs: the uploaded sequence {upload.sequence_name} (T = {T}); no targets were uploaded, so the "
            "loss is the squared readout output (targets 0)."
        )
    elif _task_for(cfg, m.input_size) != cfg.task:
        notes.append(
            f"Inputs: the {cfg.task} task has {task_input_size(cfg.task)} input channels but the model expects "
            f"{m.input_size}; using the gaussian task with {m.input_size} channels instead."
        )
    if m.readout is None:
        notes.append("The file has no readout: a seeded linear readout is used for the loss-based figures.")
    return notes


def resolve(cfg: ModelConfig, upload: Upload):
    """(rnn, readout, x (T, I), y (T, O), data) for the uploaded model; ``cfg`` as given by the user
    (it is passed through :func:`effective_config` here, so either form works)."""
    m = loaded_model(upload)
    ecfg = effective_config(cfg, upload)
    seq = sequence_of(upload, m.input_size)
    if seq is None:
        data = make_task(ecfg.task, ecfg.seq_len, 1, ecfg.seed + 2, ecfg.input_size)
        if m.readout is not None and data.output_size != m.readout.out_features:
            # The file's readout decides the outputs; targets of another width cannot be compared.
            data = TaskData(
                data.x, torch.zeros(ecfg.seq_len, 1, m.readout.out_features), data.loss_mask, data.name, data.loss_on
            )
    else:
        O = m.readout.out_features if m.readout is not None else 1
        T = seq.shape[0]
        mask = torch.zeros(T, dtype=torch.bool)
        mask[-1] = True
        data = TaskData(seq[:, None].clone(), torch.zeros(T, 1, O), mask, "uploaded", "last")
    readout = m.readout if m.readout is not None else seeded_readout(m.hidden_size, data.output_size, ecfg.seed)
    # Copies: the analyses may touch .grad, and the parsed model is shared between sessions.
    return copy.deepcopy(m.module), copy.deepcopy(readout), data.x[:, 0], data.y[:, 0], data


def training_start(cfg: ModelConfig, upload: Upload) -> tuple[tuple[nn.Module, nn.Linear], str]:
    """(rnn, readout) for training twins from the uploaded weights on the task of
    ``effective_config(cfg, upload)``, and a sentence for the page. The file's readout is kept when
    its width matches the task's targets, else a seeded one of the right width is used."""
    m = loaded_model(upload)
    ecfg = effective_config(cfg, upload)
    O = task_output_size(ecfg.task, ecfg.input_size)
    keep = m.readout is not None and m.readout.out_features == O
    readout = m.readout if keep else seeded_readout(m.hidden_size, O, ecfg.seed)
    what = "its own readout" if keep else f"a seeded readout to {O} outputs"
    note = (
        f"Training starts from your uploaded weights ({upload.model_name}, {what}) on batches of the "
        f"{ecfg.task} task, T = {ecfg.seq_len}."
    )
    return (copy.deepcopy(m.module).train(), copy.deepcopy(readout).train()), note
