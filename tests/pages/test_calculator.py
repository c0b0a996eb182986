"""The BPTT calculator page (pages/calculator.py) in AppTest: its controls, the Gradient flow page's numbers,
the uploaded model."""

from __future__ import annotations

import pytest
import torch

from tests.helpers.apptest import (
    assert_ok,
    navigation_mode,  # noqa: F401 - the fixture
    open_page,
)


def _calculator_rows(at) -> dict:
    t = at.table[0].value
    return dict(zip(t["quantity"], t["value"], strict=True))


def test_calculator_shows_training_memory_for_the_chosen_optimizer_and_checkpointing():
    at = open_page("calculator", {"ca_opt": "adam", "ca_ckpt": "true", "ca_time": "false", "ca_input": "5",
                                  "ca_output": "4", "ca_trunc": "10", "m_hidden": "8", "m_seq_len": "30"})  # fmt: skip
    assert_ok(at, "calculator")
    rows = _calculator_rows(at)
    for q in ("total training memory, full BPTT", "total training memory, TBPTT(k = 10)",
              "total training memory, checkpointing every 6 steps", "FLOPs per epoch", "optimiser state (adam)"):  # fmt: skip
        assert q in rows, q
    H, I, O = 8, 5, 4  # the page's input and output sizes are used
    assert rows["total parameters"].replace(",", "") == str(H * (I + H) + 2 * H + H * O + O)
    kinds = ("selectbox", "number_input", "toggle", "checkbox", "slider", "select_slider")
    keys = {w.key for kind in kinds for w in at.get(kind)}
    assert {"ca_input", "ca_output", "ca_opt", "ca_ckpt", "ca_layers"} <= keys


@pytest.mark.parametrize(
    "query, cfg_kw",
    [
        ({"m_cell": "lstm", "m_hidden": "8", "m_seq_len": "40", "m_task": "adding"},
         dict(cell="lstm", hidden_size=8, seq_len=40, task="adding")),
        ({"m_hidden": "12", "m_seq_len": "60", "m_radius": "2"}, dict(hidden_size=12, seq_len=60, spectral_radius=2.0)),
        ({"m_cell": "gru", "m_layers": "2", "m_hidden": "8", "m_seq_len": "30"},
         dict(cell="gru", num_layers=2, hidden_size=8, seq_len=30)),
    ],
)  # fmt: skip
def test_calculator_gives_the_gradient_flow_pages_decay_rate_and_horizon(query, cfg_kw):
    from bptt_core.analyses.numbers import flow_matrix_of, spectrum_of
    from bptt_core.config import ModelConfig
    from bptt_core.report.panels import flow_summary

    at = open_page("calculator", {**query, "ca_time": "false"})
    assert_ok(at, "calculator")
    cfg = ModelConfig(**cfg_kw)
    s = flow_summary(flow_matrix_of(cfg), spectrum_of(cfg), cfg.cell)
    rows = _calculator_rows(at)
    assert rows["decay rate"] == f"{s.rate:.4g}"
    assert rows["memory horizon"] == ("—" if s.horizon is None else f"{s.horizon:,}")
    if cfg.spectral_radius:
        assert rows["spectral radius rho"] == f"{cfg.spectral_radius:.4g}"  # the sidebar's rho, not the init's


def test_calculator_describes_the_uploaded_model():
    from bptt_core.analyses import sources as S
    from bptt_core.files.model_io import model_bytes
    from dashboard import uploads

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 16)
    up = S.make_upload(model_bytes(lstm, "m.pt", None), "m.pt", None, None, "")[0]
    at = open_page("calculator", {"ca_time": "false"}, {uploads.STATE: up})
    assert_ok(at, "calculator")
    rows = _calculator_rows(at)
    O = int(rows["readout parameters"].replace(",", "")) // 17  # H O + O with H = 16
    assert rows["total parameters"].replace(",", "") == str(sum(p.numel() for p in lstm.parameters()) + 17 * O)
    assert any("uploaded m.pt" in m.value for m in at.markdown)
    how = dict(zip(at.table[0].value["quantity"], at.table[0].value["how it was obtained"], strict=True))
    assert "the uploaded m.pt" in how["decay rate"] and "the uploaded m.pt" in how["recurrent parameters"]
