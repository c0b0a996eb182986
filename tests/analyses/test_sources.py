"""Your own model in the library (bptt_core.analyses.sources): an uploaded state_dict is analysed exactly
like the same module built directly; its sequence, readout and task; the bounded registry; twins that start
from the uploaded weights."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from bptt_core.analyses import sources as S
from bptt_core.analyses.numbers import flow_matrix_of, loss_gradients_of, model_and_sequence, spectrum_of
from bptt_core.config import ModelConfig
from bptt_core.data.tasks import make_task
from bptt_core.files.model_io import SequenceFileError, UploadError
from bptt_core.flow.jacobians import jacobian_log_norms, loss_gradient_norms
from bptt_core.flow.spectra import spectrum
from tests.helpers.uploads import H, I, T, module, upload

CFG = ModelConfig(seq_len=T, seed=5)

# (cell, nonlinearity, file name, with a readout in the file): swept by the library tests.
GRID = [
    ("rnn", "relu", "m.safetensors", False),
    ("rnn", "sigmoid", "m.pt", True),
    ("lstm", None, "m.pt", False),
    ("lstm", None, "m.safetensors", True),
    ("gru", None, "m.pth", True),
]


@pytest.mark.parametrize("cell,act,name,with_readout", GRID)
def test_resolve_matches_the_module_built_directly(cell, act, name, with_readout):
    mod = module(cell, act)
    ro = nn.Linear(H, 2) if with_readout else None
    up, loaded, _ = upload(mod, name, ro, nonlin=act if name.endswith(".pt") else None)
    assert (loaded.cell, loaded.input_size, loaded.hidden_size) == (cell, I, H)
    cfg = S.effective_config(CFG, up)
    assert (cfg.cell, cfg.hidden_size, cfg.input_size, cfg.seq_len) == (cell, H, I, T)
    if cell == "rnn":
        assert cfg.activation == act
    x = make_task("gaussian", T, 1, CFG.seed + 2, I).x[:, 0]  # (T, I): what the settings would feed
    rnn, readout, x_got, y_got, _ = model_and_sequence(cfg, up)
    torch.testing.assert_close(x_got, x)
    np.testing.assert_array_equal(flow_matrix_of(cfg, upload=up), jacobian_log_norms(mod, x, dtype=torch.float64))
    np.testing.assert_allclose(spectrum_of(cfg, up).singular_values, spectrum(mod).singular_values)
    if with_readout:
        torch.testing.assert_close(readout.weight, ro.weight)
        np.testing.assert_allclose(loss_gradients_of(cfg, up), loss_gradient_norms(mod, ro, x, y_got))
    # the analyses work on copies: the shared parsed model is never touched
    assert rnn is not S.loaded_model(up).module


def test_uploaded_sequence_is_used_as_the_input():
    mod = module("gru", None)
    seq = np.random.default_rng(0).normal(size=(37, I))
    buf = io.BytesIO()
    np.save(buf, seq)
    up, _, notes = upload(mod, "g.safetensors", seq=(buf.getvalue(), "x.npy"))
    cfg = S.effective_config(CFG, up)
    assert cfg.seq_len == 37  # the sequence's length, not the settings'
    _, _, x, y, data = model_and_sequence(cfg, up)
    torch.testing.assert_close(x, torch.tensor(seq, dtype=torch.float32))
    assert y.shape == (37, 1) and data.loss_on == "last"
    np.testing.assert_array_equal(flow_matrix_of(cfg, upload=up), jacobian_log_norms(mod, x, dtype=torch.float64))
    assert any("x.npy" in n for n in notes)


def test_sequence_of_the_wrong_width_says_what_the_model_expects():
    csv = "\n".join(",".join(["0.5"] * (I + 1)) for _ in range(5)).encode()
    with pytest.raises(SequenceFileError, match=f"input_size={I} columns, got {I + 1}"):
        upload(module("rnn", "tanh"), "m.pt", seq=(csv, "x.csv"))


def test_readout_is_seeded_when_the_file_has_none():
    up, _, notes = upload(module("lstm", None), "m.safetensors")
    cfg = S.effective_config(CFG, up)
    r1 = model_and_sequence(cfg, up)[1]
    r2 = model_and_sequence(cfg, up)[1]
    assert isinstance(r1, nn.Linear) and r1.in_features == H
    torch.testing.assert_close(r1.weight, r2.weight)  # deterministic: the same figures every time
    assert any("no readout" in n for n in notes)


@pytest.mark.parametrize("task,kept", [("adding", False), ("copy", False), ("gaussian", True)])
def test_a_task_of_another_width_falls_back_to_gaussian_and_says_so(task, kept):
    up, _, _ = upload(module("rnn", "tanh"), "m.safetensors")  # I = 3: no fixed-width task fits
    cfg = ModelConfig(task=task, seq_len=T)
    assert S.effective_config(cfg, up).task == ("gaussian" if not kept else task)
    said = any("gaussian task" in n for n in S.input_notes(cfg, up))
    assert said == (not kept)


def test_registry_is_bounded_and_evicted_uploads_say_so():
    shas = [S.register(f"file {i}".encode()) for i in range(S.MAX_REGISTERED + 4)]
    assert len(S._files) <= S.MAX_REGISTERED
    with pytest.raises(UploadError, match="upload it again"):
        S.fetch(shas[0])
    assert S.fetch(shas[-1]) == f"file {S.MAX_REGISTERED + 3}".encode()


def test_clipping_twins_start_from_the_uploaded_weights():
    from bptt_core.learning.training import TrainConfig, twin_runs

    mod = module("rnn", "tanh", seed=2)
    ro = nn.Linear(H, 1)
    up, _, _ = upload(mod, "m.pt", ro)
    cfg = S.effective_config(ModelConfig(task="gaussian", seq_len=8, input_size=0), up)
    (rnn, readout), note = S.training_start(cfg, up)
    assert "seeded readout" in note  # the gaussian task has 3 targets, the file's readout 1
    torch.testing.assert_close(rnn.weight_hh_l0, mod.weight_hh_l0)
    tcfg = TrainConfig(steps=2, batch_size=2)
    ours = twin_runs(cfg, tcfg, initial=(rnn, readout))
    again = twin_runs(cfg, tcfg, initial=S.training_start(cfg, up)[0])
    fresh = twin_runs(cfg, tcfg)
    first = ours["unclipped"].history["loss"].iloc[0]
    assert first == again["unclipped"].history["loss"].iloc[0]  # same start, same batches
    assert first != fresh["unclipped"].history["loss"].iloc[0]  # not the settings' initial weights
    torch.testing.assert_close(S.loaded_model(up).module.weight_hh_l0, mod.weight_hh_l0)  # never changed
