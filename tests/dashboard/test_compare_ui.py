"""Compare mode on Spectrum, Clipping and Truncated BPTT (dashboard/compare_ui.py; compare=true, B under
b_ keys): with B equal to A every difference is exactly zero; switched on, B starts as A; the link
round-trips A and B; bad B values fall back with a warning like A's; B can be the uploaded model; the report
and the settings JSON hold B."""

from __future__ import annotations

import urllib.parse

import numpy as np
import pytest

from tests.helpers.apptest import (
    chart_keys,
    decode,
    navigation_mode,  # noqa: F401 - the fixture
    open_page,
    settle,
    z_of,
)
from tests.helpers.compare_pages import CMP, OTHER_B, SMALL, metrics, open_cmp, traces, ys

SAME_B = {"compare": "true", "b_m_hidden": "6", "b_m_seq_len": "12"}  # B = A (every other b_ key its default)


def open_saved_view(at):
    """Open the sidebar's lazy 'Open a saved view' expander (its controls exist only while it is open)."""
    at.session_state["view_expander"] = True
    return at.run()


def assert_no_difference(df) -> None:
    a, b, d = (df[c].to_numpy(float) for c in ("A", "B", "B − A"))
    both_undefined = np.isnan(a) & np.isnan(b)
    assert ((d == 0) | both_undefined).all(), df
    assert (d == 0).sum() >= 3, df
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("page", list(CMP))
def test_b_equal_to_a_gives_exactly_zero_differences(page):
    at = open_cmp(page, SAME_B)
    assert_no_difference(metrics(at))
    if page == "truncation":
        assert np.array_equal(z_of(at, "tb_cmp_a"), z_of(at, "tb_cmp_b"), equal_nan=True)
        return
    for key in CMP[page][0]:
        tr = traces(at, key)
        for axis in ("x", "y"):
            np.testing.assert_array_equal(decode(tr["A"][axis]).astype(float), decode(tr["B"][axis]).astype(float))


def test_compare_switched_on_in_the_sidebar_copies_A_into_B():
    at = open_page("spectrum", {**SMALL, "m_gain": "1.5", "m_init": "gaussian"})
    assert not CMP["spectrum"][0] & chart_keys(at)
    at.toggle(key="compare").set_value(True).run()
    assert not at.exception and CMP["spectrum"][0] <= chart_keys(at)
    assert at.session_state["b_m_gain"] == 1.5 and at.session_state["b_m_init"] == "gaussian"
    shown_on = next(c.value for c in at.caption if c.value.startswith("Model B, shown on"))
    assert all(p in shown_on for p in ("Gradient flow", "Spectrum", "Clipping", "Truncated BPTT")), shown_on
    assert_no_difference(metrics(at))


@pytest.mark.parametrize("page", list(CMP))
def test_the_link_round_trips_A_and_B(page):
    query = {**OTHER_B, "b_m_seed": "3"}
    at = open_cmp(page, query)
    link = next(c.value for c in at.code if c.value.startswith("http"))
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))
    for k, v in {**SMALL, **query}.items():
        assert params.get(k) == v, (k, params)
    again = open_page(page, params)
    assert not again.exception
    for k in ("compare", "b_m_hidden", "b_m_seed", "b_m_gain", "b_m_init", "m_hidden", "m_seq_len"):
        assert again.session_state[k] == at.session_state[k], k
    first, second = metrics(at), metrics(again)
    np.testing.assert_array_equal(first["B"].to_numpy(float), second["B"].to_numpy(float))


@pytest.mark.parametrize("page", list(CMP))
def test_bad_B_values_in_the_url_fall_back_with_a_warning_like_As(page):
    at = open_page(page, {**SMALL, **CMP[page][1], "compare": "true", "b_m_hidden": "abc", "b_m_seq_len": "12",
                          "b_m_gain": "1e400", "b_m_layers": "99", "b_upload": "maybe"})  # fmt: skip
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(w.value for w in at.warning)
    for key in ("b_m_hidden", "b_m_gain", "b_m_layers", "b_upload"):
        assert f"URL parameter **{key}**" in shown and "falls back to the default" in shown, key
    assert at.session_state["b_m_hidden"] == 64 and at.session_state["b_m_gain"] == 1.0
    assert at.session_state["b_m_layers"] == 1 and at.session_state["b_upload"] is False
    assert CMP[page][0] <= chart_keys(at)


def _uploaded_gru():
    import torch
    from torch import nn

    from bptt_core.analyses import sources
    from bptt_core.files.model_io import model_bytes

    torch.manual_seed(4)
    mod = nn.GRU(3, 5)
    up = sources.make_upload(model_bytes(mod, "g.safetensors"), "g.safetensors", None)[0]
    return mod, up


def test_b_can_be_the_uploaded_model_while_a_is_the_settings_model():
    from bptt_core.config import ModelConfig
    from bptt_core.flow.spectra import spectrum
    from bptt_core.models.build import build_model
    from dashboard import uploads

    mod, up = _uploaded_gru()
    at = open_page("spectrum", {**SMALL, **SAME_B, "b_upload": "true"}, state={uploads.STATE: up})
    assert not at.exception, [e.value for e in at.exception]
    assert any("B: Model: uploaded g.safetensors" in m.value for m in at.markdown)
    assert not any(m.value.startswith("**Model: uploaded") for m in at.markdown)  # A: the settings model
    assert not at.slider(key="m_hidden").disabled and at.slider(key="b_m_hidden").disabled
    df = metrics(at).set_index("metric")
    rho_a = spectrum(build_model(ModelConfig(hidden_size=6, seq_len=12))[0]).rho
    assert df.loc["spectral radius ρ", "A"] == pytest.approx(rho_a, rel=1e-6)
    assert df.loc["spectral radius ρ", "B"] == pytest.approx(spectrum(mod).rho, rel=1e-6)
    # b_upload off: the upload is A again, as before compare mode knew about uploads
    at.toggle(key="b_upload").set_value(False).run()
    assert not at.exception
    assert any(m.value.startswith("**Model: uploaded g.safetensors") for m in at.markdown)
    assert metrics(at).set_index("metric").loc["spectral radius ρ", "A"] == pytest.approx(spectrum(mod).rho, rel=1e-6)


def test_b_upload_without_an_upload_says_so_and_b_is_its_settings_model():
    at = open_cmp("spectrum", {**SAME_B, "b_upload": "true"})
    assert any("no model is uploaded" in w.value for w in at.warning)
    assert_no_difference(metrics(at))


def test_the_html_report_includes_B_when_compare_is_on(monkeypatch):
    from bptt_core.report import html as R

    built = []
    real = R.build_report

    def recording(cfg, **kw):
        built.append((cfg, kw, real(cfg, **kw)))
        return built[-1][2]

    monkeypatch.setattr(R, "build_report", recording)
    at = open_cmp("spectrum", OTHER_B)
    settle(at.button(key="spectrum_report").click().run())
    assert not at.exception, [e.value for e in at.exception]
    (cfg, kw, html) = built[-1]
    assert kw["compare_cfg"].hidden_size == 5 and kw["compare_cfg"].gain == 2.5 and cfg.hidden_size == 6
    assert "Compare: A against B" in html and "Compare, spectrum: A, B and B − A" in html
    assert "A and B in one plane" in html and "Gradient flow, B against A" in html
    assert any("HTML" in b.proto.label for b in at.get("download_button"))
    assert any(b.proto.label.startswith("Metrics CSV") for b in at.get("download_button"))


def test_the_settings_json_holds_B_and_opens_it_again(monkeypatch):
    from dashboard import views

    written = []
    real = views.view_json
    monkeypatch.setattr(views, "view_json", lambda v: written.append(real(v)) or written[-1])
    at = open_cmp("spectrum", {**OTHER_B, "b_m_seed": "3"})
    text = written[-1]
    assert '"compare"' in text and '"b_upload": false' in text
    again = open_page("overview")
    open_saved_view(again).text_area(key="view_text").set_value(text).run()
    again.button(key="view_open").click().run()
    assert not again.exception, [e.value for e in again.exception]
    assert again.title[0].value == "Spectrum" and again.session_state["compare"] is True
    for k in ("b_m_hidden", "b_m_seed", "b_m_gain", "b_m_init", "m_hidden"):
        assert again.session_state[k] == at.session_state[k], k
    assert CMP["spectrum"][0] <= chart_keys(again)
    bad = text.replace('"b_upload": false', '"b_upload": "yes"')
    open_saved_view(again).text_area(key="view_text").set_value(bad).run()
    again.button(key="view_open").click().run()
    assert any("compare.b_upload" in e.value for e in again.error)


def test_clipping_trains_B_from_the_upload_and_A_from_the_settings():
    from dashboard import uploads

    _, up = _uploaded_gru()
    at = open_page("clipping", {**SMALL, **SAME_B, "b_upload": "true"}, state={uploads.STATE: up})
    assert not at.exception, [e.value for e in at.exception]
    assert any(i.value.startswith("B: Training starts from your uploaded weights") for i in at.info)
    assert not any(i.value.startswith("Training starts from your uploaded weights") for i in at.info)  # A
    assert "cl_cmp_gradnorm" in chart_keys(at)
    tr = traces(at, "cl_cmp_gradnorm")
    assert not np.array_equal(ys(tr["A"]), ys(tr["B"]))  # a GRU from the file against the settings' RNN
