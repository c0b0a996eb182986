"""Your own model in the dashboard (dashboard/uploads.py): an uploaded file is analysed on the pages and
trains the Clipping twins, it is kept while the expander is closed, and a hostile or crafted file gets the
documented message, never an exception box."""

from __future__ import annotations

import base64
import io
import json
import os

import numpy as np
import torch
from torch import nn

from bptt_core.config import ModelConfig
from bptt_core.data.tasks import make_task
from bptt_core.files.model_io import model_bytes
from bptt_core.flow.jacobians import jacobian_log_norms
from dashboard.uploads import OPEN
from tests.helpers.hostile import GOOD, PoisonedOrderedDict, attack_sd, torch_bytes
from tests.helpers.uploads import ROOT, I, module, upload

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


# == Issue 11's crafted uploads on the page ==================================================================

# -- the page: crafted uploads give the documented message, never an exception box --------------


def test_crafted_uploads_on_the_page():
    from streamlit.testing.v1 import AppTest

    from dashboard.uploads import OPEN

    at = AppTest.from_file(str(ROOT / "pages" / "spectrum.py"), default_timeout=120)
    at.session_state[OPEN] = True  # the "Your own model" expander: its inputs are drawn only while open
    at.run()
    overflow = {k: v.double() for k, v in attack_sd().items()}
    overflow["weight_hh_l0"][0, 0] = 1e39
    cases = [
        ("appended.pt", torch_bytes(attack_sd(nn.GRU)) + GOOD, "refused: the .pt archive has"),
        ("overflow.pt", torch_bytes(overflow), "too large for float32"),
        ("legacy.pt", torch_bytes(attack_sd(), _use_new_zipfile_serialization=False), "legacy"),
    ]
    for name, data, words in cases:
        at.file_uploader(key="up_model_0").upload(name, data).run()
        assert not at.exception, name
        assert any(words in e.value and "cannot be used" in e.value for e in at.error), (
            name,
            [e.value for e in at.error],
        )
        assert not any("Model: uploaded" in m.value for m in at.markdown)
    poisoned = torch_bytes(PoisonedOrderedDict(attack_sd(), {"items": 5, "keys": 3}))
    at.file_uploader(key="up_model_0").upload("poisoned.pt", poisoned).run()
    assert not at.exception and any("Model: uploaded poisoned.pt" in m.value for m in at.markdown)
