"""Your own model in a real browser: a state_dict chosen in the sidebar's file input drives the
gradient-flow page, and a hostile .pt is refused with a message while the page keeps working."""

from __future__ import annotations

import io

import harness as H
import torch
from torch import nn

from bptt_core.files.model_io import model_bytes

GF_CHARTS = 3


def _open_uploader(page, server) -> None:
    H.open_page(page, server.url + "/gradient-flow", page.watcher, charts=GF_CHARTS)
    page.get_by_text("Your own model").click()


def test_uploaded_model_drives_the_gradient_flow_page(page, server, tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "my_gru.safetensors"
    path.write_bytes(model_bytes(nn.GRU(3, 32), path.name, nn.Linear(32, 1)))
    _open_uploader(page, server)
    before = H.chart_signatures(page)
    page.locator('input[type="file"]').first.set_input_files(str(path))
    page.get_by_text("Model: uploaded my_gru.safetensors").wait_for(timeout=60_000)
    H.wait_signature_change(page, before, timeout=60)
    H.screenshot(page, "upload")
    assert H.problems(page) == {"exceptions": [], "errors": []}
    assert page.get_by_text("GRU: input_size=3, hidden_size=32").count() >= 1


def test_hostile_upload_is_refused_and_the_page_keeps_working(page, server, tmp_path):
    class Run:
        def __reduce__(self):
            return (exec, ("raise SystemExit('ran')",))

    buf = io.BytesIO()
    torch.save({**nn.RNN(2, 3).state_dict(), "evil": Run()}, buf)
    path = tmp_path / "evil.pt"
    path.write_bytes(buf.getvalue())
    _open_uploader(page, server)
    page.locator('input[type="file"]').first.set_input_files(str(path))
    page.get_by_text("This file cannot be used").wait_for(timeout=60_000)
    assert "refused" in " ".join(H.problems(page)["errors"])
    assert not H.problems(page)["exceptions"]
    assert H.wait_charts(page, GF_CHARTS) >= GF_CHARTS  # still the settings model's charts
