"""Compare mode on Spectrum, Clipping and Truncated BPTT (compare=true, B under b_ keys): with B equal to
A every difference is exactly zero; side-by-side pictures share one colour or axis range that covers both;
the link round-trips A and B; bad B values in the URL fall back with a warning like A's; B may be the
uploaded model while A is the settings model. The Gradient flow page's own cases: test_compare_page.py."""

from __future__ import annotations

import urllib.parse

import numpy as np
import pytest
from test_app import chart_keys, chart_spec, decode, navigation_mode, open_page, settle  # noqa: F401 - the fixture
from test_compare_page import z_of

SMALL = {"m_hidden": "6", "m_seq_len": "12"}
SAME_B = {"compare": "true", "b_m_hidden": "6", "b_m_seq_len": "12"}  # B = A (every other b_ key its default)
OTHER_B = {"compare": "true", "b_m_hidden": "5", "b_m_seq_len": "12", "b_m_gain": "2.5", "b_m_init": "gaussian"}
# page -> (its compare charts, extra URL values); the Clipping page trains 10 steps (test_app.FAST_CLIP)
CMP = {
    "spectrum": ({"sp_cmp_eig", "sp_cmp_sv", "sp_cmp_lyap"}, {}),
    "truncation": ({"tb_cmp_a", "tb_cmp_b"}, {"tb_k1": "4", "tb_k2": "3"}),
    "clipping": ({"cl_cmp_gradnorm"}, {"clip_threshold": "0.5"}),
}


def open_saved_view(at):
    """Open the sidebar's lazy 'Open a saved view' expander (its controls exist only while it is open)."""
    at.session_state["view_expander"] = True
    return at.run()


def metrics(at):
    (df,) = [d.value for d in at.dataframe if "B − A" in d.value.columns]
    return df


def traces(at, key: str) -> dict[str, dict]:
    """A chart's traces by the side they belong to ("A" or "B"), reference lines left out."""
    out = {}
    for tr in chart_spec(at, key)["data"]:
        name = tr.get("name", "")
        for side in "AB":
            if name == side or name.startswith(f"{side}:"):
                out[side] = tr
    assert set(out) == {"A", "B"}, [t.get("name") for t in chart_spec(at, key)["data"]]
    return out


def ys(tr: dict) -> np.ndarray:
    return decode(tr["y"]).astype(float)


def assert_no_difference(df) -> None:
    a, b, d = (df[c].to_numpy(float) for c in ("A", "B", "B − A"))
    both_undefined = np.isnan(a) & np.isnan(b)
    assert ((d == 0) | both_undefined).all(), df
    assert (d == 0).sum() >= 3, df
    np.testing.assert_array_equal(a, b)


def open_cmp(page: str, query: dict):
    at = open_page(page, {**SMALL, **CMP[page][1], **query})
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert CMP[page][0] <= chart_keys(at), chart_keys(at)
    return at


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


def test_spectrum_one_plane_and_one_axis_cover_both():
    at = open_cmp("spectrum", OTHER_B)
    eig = traces(at, "sp_cmp_eig")
    lay = chart_spec(at, "sp_cmp_eig")["layout"]
    for axis, part in (("xaxis", "x"), ("yaxis", "y")):
        lo, hi = lay[axis]["range"]
        vals = np.concatenate([decode(eig[s][part]).astype(float) for s in "AB"])
        assert lo <= vals.min() and hi >= vals.max(), (axis, lo, hi)
        assert lo <= -1 and hi >= 1  # the unit circle too
    assert not np.allclose(np.abs(decode(eig["A"]["x"])).max(), np.abs(decode(eig["B"]["x"])).max())
    for key in ("sp_cmp_sv", "sp_cmp_lyap"):
        tr = traces(at, key)
        lo, hi = chart_spec(at, key)["layout"]["yaxis"]["range"]
        vals = np.concatenate([ys(tr[s]) for s in "AB"])
        vals = vals[np.isfinite(vals)]
        assert lo <= vals.min() and hi >= vals.max(), (key, lo, hi, vals)
    df = metrics(at).set_index("metric")
    d = df["B − A"].to_numpy(float)
    assert (d != 0).all(), df
    np.testing.assert_allclose(df["B − A"], df["B"] - df["A"], rtol=1e-12)


def test_truncation_heatmaps_share_one_colour_range_covering_both():
    at = open_cmp("truncation", OTHER_B)
    a, b = (chart_spec(at, k)["data"][0] for k in ("tb_cmp_a", "tb_cmp_b"))
    assert a["zmin"] == b["zmin"] and a["zmax"] == b["zmax"]
    za, zb = z_of(at, "tb_cmp_a"), z_of(at, "tb_cmp_b")
    both = np.concatenate([za[np.isfinite(za)], zb[np.isfinite(zb)]])
    assert a["zmin"] <= both.min() and a["zmax"] >= both.max()
    assert np.abs(za[np.isfinite(za)] - zb[np.isfinite(zb)]).max() > 0.1  # B really differs
    df = metrics(at).set_index("metric")
    assert df.loc["pairs (t, s) dropped (fraction)", "B − A"] == 0  # same T, k1, k2: the same pairs
    assert df.loc["largest dropped log10 ‖∂h(t)/∂h(s)‖", "B − A"] != 0


def test_clipping_histories_of_A_and_B_on_one_axis():
    at = open_cmp("clipping", OTHER_B)
    tr = traces(at, "cl_cmp_gradnorm")
    assert tr["A"].get("yaxis", "y") == tr["B"].get("yaxis", "y") == "y"
    assert not np.allclose(ys(tr["A"]), ys(tr["B"]))
    df = metrics(at)
    assert set(df["run"]) == {"unclipped", "norm", "value"}
    final = df[df["metric"] == "final loss"]
    np.testing.assert_allclose(final["B − A"], final["B"] - final["A"], rtol=1e-12)


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
