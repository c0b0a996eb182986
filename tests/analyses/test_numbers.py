"""bptt_core.analyses.numbers: the calculator's estimate for the page and the report
(``calculator_estimate_of``) measures the Gradient flow page's model, the same settings deeper, or the upload."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.helpers.calculator import _page_flow


def test_the_pages_estimate_measures_the_gradient_flow_pages_model_or_the_same_settings_deeper():
    from bptt_core.analyses.numbers import calculator_estimate_of
    from bptt_core.config import ModelConfig

    cfg = ModelConfig(cell="lstm", hidden_size=8, seq_len=30, task="adding", forget_bias=1.0)
    e = calculator_estimate_of(cfg, dict(measure_time=False))
    page = _page_flow(cfg)
    assert e.settings["same_as_flow"] and (e.decay_rate, e.memory_horizon) == (page.rate, page.horizon)
    assert "the Gradient flow page's" in e.table().set_index("quantity").loc["decay rate", "how"]
    # another depth and input width: the sidebar's settings (forget-gate bias included), on a gaussian input
    d = calculator_estimate_of(cfg, dict(num_layers=2, input_size=5, output_size=3, measure_time=False))
    deeper = ModelConfig(**{**cfg.to_dict(), "num_layers": 2, "input_size": 5, "task": "gaussian"})
    assert not d.settings["same_as_flow"] and (d.settings["input_size"], d.settings["output_size"]) == (5, 3)
    assert d.decay_rate == _page_flow(deeper).rate != e.decay_rate
    with pytest.raises(ValueError, match="calculator settings not known"):
        calculator_estimate_of(cfg, dict(layers=2))


def test_the_pages_estimate_of_an_upload_is_the_uploaded_model():
    from bptt_core.analyses import sources as S
    from bptt_core.analyses.numbers import calculator_estimate_of
    from bptt_core.config import ModelConfig
    from bptt_core.files.model_io import model_bytes
    from bptt_core.report.html import calculator_of

    torch.manual_seed(1)
    gru = nn.GRU(3, 12, 2)
    up = S.make_upload(model_bytes(gru, "g.pt", None), "g.pt", None, None, "")[0]
    cfg = S.effective_config(ModelConfig(seq_len=25), up)
    e = calculator_estimate_of(cfg, dict(measure_time=False), up)
    page = _page_flow(cfg, up)
    assert (e.decay_rate, e.memory_horizon) == (page.rate, page.horizon)
    assert e.recurrent_params == sum(p.numel() for p in gru.parameters())
    assert "the uploaded g.pt" in e.table().set_index("quantity").loc["decay rate", "how"]
    with pytest.raises(ValueError, match="num_layers"):  # an upload's depth is its own
        calculator_estimate_of(cfg, dict(num_layers=1 + 2, measure_time=False), up)
    table, panel = calculator_of(cfg, dict(measure_time=False, checkpointing=True), up)
    assert "total training memory, checkpointing every 5 steps" in set(table["quantity"])
    assert {"full_bptt_bytes", "checkpointing_bytes"} <= set(panel.data.columns)
