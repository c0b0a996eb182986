"""Your own model: an uploaded state_dict is analysed exactly like the same module built directly,
in the library (bptt_core.analyses.sources), the dashboard (AppTest, through the real file uploader) and
the command line (--model), and a hostile file is refused everywhere without running."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bptt_core.analyses import sources as S
from bptt_core.analyses.numbers import flow_matrix_of, loss_gradients_of, model_and_sequence, spectrum_of
from bptt_core.config import ModelConfig
from bptt_core.data.tasks import make_task
from bptt_core.files.model_io import SequenceFileError, UploadError, model_bytes
from bptt_core.flow.jacobians import jacobian_log_norms, loss_gradient_norms
from bptt_core.flow.spectra import spectrum
from bptt_core.models.recurrent import ElmanRNN
from dashboard.uploads import OPEN

ROOT = Path(__file__).resolve().parents[1]
I, H, T = 3, 6, 20
CFG = ModelConfig(seq_len=T, seed=5)

# (cell, nonlinearity, file name, with a readout in the file): swept by the library tests.
GRID = [
    ("rnn", "relu", "m.safetensors", False),
    ("rnn", "sigmoid", "m.pt", True),
    ("lstm", None, "m.pt", False),
    ("lstm", None, "m.safetensors", True),
    ("gru", None, "m.pth", True),
]


def module(cell: str, act: str | None, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return ElmanRNN(I, H, act) if cell == "rnn" else (nn.LSTM if cell == "lstm" else nn.GRU)(I, H)


def upload(mod, name, readout=None, nonlin=None, seq: tuple[bytes, str] | None = None):
    seq_bytes, seq_name = seq if seq is not None else (None, "")
    up, loaded, notes = S.make_upload(model_bytes(mod, name, readout), name, nonlin, seq_bytes, seq_name)
    return up, loaded, notes


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


# -- the dashboard -----------------------------------------------------------------------------------


def _page(name: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=120)
    at.session_state[OPEN] = True  # the "Your own model" expander: its inputs are drawn only while open
    return at


def test_gradient_flow_page_analyses_the_uploaded_file():
    mod = module("gru", None, seed=3)
    at = _page("gradient-flow.py")
    at.run()
    at.file_uploader(key="up_model_0").upload("mine.safetensors", model_bytes(mod, "mine.safetensors")).run()
    assert not at.exception
    assert any("Model: uploaded mine.safetensors" in m.value for m in at.markdown)
    assert any("GRU" in s.value for s in at.success)
    assert at.selectbox(key="m_cell").disabled and at.slider(key="m_hidden").disabled
    z = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]["z"]
    z = np.frombuffer(base64.b64decode(z["bdata"]), z["dtype"]) if isinstance(z, dict) else np.asarray(z, float)
    x = make_task("gaussian", ModelConfig().seq_len, 1, ModelConfig().seed + 2, I).x[:, 0]
    np.testing.assert_allclose(
        z.ravel(), jacobian_log_norms(mod, x, dtype=torch.float64).ravel(), rtol=1e-12
    )  # the heatmap is the file's model (its chain multiplied in float64)
    # back to the settings model: the header goes, the settings apply again
    at.button(key="up_clear").click().run()
    assert not at.exception
    assert not any("Model: uploaded" in m.value for m in at.markdown)
    assert not at.selectbox(key="m_cell").disabled


def test_closing_the_expander_keeps_the_upload():
    """The expander is lazy (closed, its inputs are not drawn and forget their file): the upload lives in the
    session, so closing and opening it again neither drops the model nor takes the empty inputs for a removal."""
    at = _page("spectrum.py")
    at.run()
    at.file_uploader(key="up_model_0").upload("mine.pt", model_bytes(module("rnn", "tanh", seed=1), "mine.pt")).run()
    assert any("Model: uploaded mine.pt" in m.value for m in at.markdown)
    at.session_state[OPEN] = False
    at.run()
    assert not at.get("file_uploader") and any("Model: uploaded mine.pt" in m.value for m in at.markdown)
    at.session_state[OPEN] = True
    at.run()
    assert at.file_uploader(key="up_model_0").value is None  # drawn again, empty
    assert any("Model: uploaded mine.pt" in m.value for m in at.markdown) and not at.exception
    at.button(key="up_clear").click().run()
    assert not any("Model: uploaded" in m.value for m in at.markdown)


def test_a_hostile_upload_is_refused_on_the_page_and_the_settings_model_stays(tmp_path):
    marker = tmp_path / "pwned"

    class Touch:
        def __reduce__(self):
            return (os.system, (f"touch '{marker}'",))

    buf = io.BytesIO()
    torch.save({**nn.RNN(2, 3).state_dict(), "weight_hh_l0": Touch()}, buf)
    at = _page("spectrum.py")
    at.run()
    at.file_uploader(key="up_model_0").upload("evil.pt", buf.getvalue()).run()
    assert not at.exception
    assert any("refused" in e.value and "cannot be used" in e.value for e in at.error)
    assert not any("Model: uploaded" in m.value for m in at.markdown)
    assert len(at.get("plotly_chart")) >= 2  # the page still shows the settings model
    assert not marker.exists()


# -- the command line --------------------------------------------------------------------------------


def cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bptt_core", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_cli_jacobian_of_an_uploaded_model_and_sequence(tmp_path):
    mod = module("lstm", None, seed=1)
    (tmp_path / "m.safetensors").write_bytes(model_bytes(mod, "m.safetensors"))
    seq = np.random.default_rng(1).normal(size=(15, I))
    np.savetxt(tmp_path / "x.csv", seq, delimiter=",")
    r = cli("jacobian", "--model", "m.safetensors", "--sequence", "x.csv", "--out", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "uploaded m.safetensors" in r.stdout
    L = np.load(tmp_path / "out" / "jacobian.npy")
    np.testing.assert_array_equal(
        L, jacobian_log_norms(mod, torch.tensor(seq, dtype=torch.float32), dtype=torch.float64)
    )


def test_cli_refuses_a_hostile_pt_with_exit_2_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Touch:
        def __reduce__(self):
            return (os.system, (f"touch '{marker}'",))

    buf = io.BytesIO()
    torch.save({**nn.RNN(2, 3).state_dict(), "evil": Touch()}, buf)
    (tmp_path / "evil.pt").write_bytes(buf.getvalue())
    for sub in (["jacobian", "--out", "o"], ["report", "--out", "r.html"]):
        r = cli(*sub, "--model", "evil.pt", cwd=tmp_path)
        assert r.returncode == 2
        assert "refused" in r.stderr and f"{os.system.__module__}.system" in r.stderr
        assert "Traceback" not in r.stderr
        assert not marker.exists()


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


def test_clipping_page_trains_from_the_upload():
    from dashboard import uploads

    at = _page("clipping.py")
    at.session_state[uploads.STATE] = upload(module("gru", None), "g.safetensors")[0]
    at.session_state["cl_steps"] = 10
    at.run()
    assert not at.exception
    assert any("Model: uploaded g.safetensors" in m.value for m in at.markdown)
    assert any("Training starts from your uploaded weights" in i.value for i in at.info)
    assert len(at.get("plotly_chart")) == 3
