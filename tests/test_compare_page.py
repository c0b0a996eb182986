"""Compare mode on the Gradient flow page (compare=true, B's settings under b_ keys): with B equal to A
every difference is exactly zero; the two heatmaps share one colour range that covers both; the link
round-trips A and B; bad B values in the URL fall back with a warning like A's."""

from __future__ import annotations

import urllib.parse

import numpy as np
from test_app import chart_keys, chart_spec, decode, navigation_mode, open_page  # noqa: F401 - the fixture

SMALL = {"m_hidden": "6", "m_seq_len": "12"}
CMP_KEYS = {"gf_cmp_a", "gf_cmp_b", "gf_cmp_ratio"}


def z_of(at, key: str) -> np.ndarray:
    z = chart_spec(at, key)["data"][0]["z"]
    if isinstance(z, dict):
        return decode(z).astype(float).reshape([int(n) for n in str(z["shape"]).split(",")])
    return np.array([decode(row) for row in z], dtype=float)


def metrics(at):
    (df,) = [d.value for d in at.dataframe if "B − A" in d.value.columns]
    return df


def test_compare_is_off_by_default_and_B_starts_as_a_copy_of_A():
    at = open_page("gradient_flow", {**SMALL, "m_gain": "1.5"})
    assert not at.exception and not CMP_KEYS & chart_keys(at)
    at.toggle(key="compare").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert CMP_KEYS <= chart_keys(at)
    assert at.session_state["b_m_hidden"] == 6 and at.session_state["b_m_gain"] == 1.5
    # B = A: every difference exactly zero
    D = z_of(at, "gf_cmp_ratio")
    assert np.isfinite(D).any() and (D[np.isfinite(D)] == 0).all()
    df = metrics(at)
    d = df["B − A"].to_numpy(float)
    assert ((d == 0) | (np.isnan(df["A"].to_numpy(float)) & np.isnan(df["B"].to_numpy(float)))).all(), df
    assert (d == 0).sum() >= 3
    assert np.array_equal(z_of(at, "gf_cmp_a"), z_of(at, "gf_cmp_b"), equal_nan=True)


def test_the_two_heatmaps_share_one_colour_range_covering_both():
    at = open_page("gradient_flow", {**SMALL, "compare": "true", "b_m_hidden": "6", "b_m_seq_len": "12",
                                     "b_m_gain": "3", "b_m_init": "gaussian"})  # fmt: skip
    assert not at.exception and CMP_KEYS <= chart_keys(at)
    a, b = (chart_spec(at, k)["data"][0] for k in ("gf_cmp_a", "gf_cmp_b"))
    assert a["zmin"] == b["zmin"] and a["zmax"] == b["zmax"]
    za, zb = z_of(at, "gf_cmp_a"), z_of(at, "gf_cmp_b")
    both = np.concatenate([za[np.isfinite(za)], zb[np.isfinite(zb)]])
    assert a["zmin"] <= both.min() and a["zmax"] >= both.max()
    assert np.abs(za[np.isfinite(za)] - zb[np.isfinite(zb)]).max() > 0.1  # B really differs here
    D = z_of(at, "gf_cmp_ratio")
    assert (D[np.isfinite(D)] != 0).any()


def test_the_link_round_trips_A_and_B():
    query = {**SMALL, "compare": "true", "b_m_cell": "lstm", "b_m_hidden": "8", "b_m_seq_len": "10", "b_m_seed": "3"}
    at = open_page("gradient_flow", query)
    assert not at.exception and CMP_KEYS <= chart_keys(at)
    link = next(c.value for c in at.code if c.value.startswith("http"))
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))
    for k, v in query.items():
        assert params.get(k) == v, (k, params)
    again = open_page("gradient_flow", params)
    assert not again.exception
    for k in ("b_m_cell", "b_m_hidden", "b_m_seq_len", "b_m_seed", "m_hidden", "m_seq_len"):
        assert again.session_state[k] == at.session_state[k], k
    assert np.array_equal(z_of(again, "gf_cmp_ratio"), z_of(at, "gf_cmp_ratio"), equal_nan=True)
    assert z_of(at, "gf_cmp_ratio").shape == (10, 10)  # the steps both have


def test_bad_B_values_in_the_url_fall_back_with_a_warning_like_As():
    at = open_page("gradient_flow", {**SMALL, "compare": "true", "b_m_hidden": "inf", "b_m_cell": "transformer",
                                     "b_m_seq_len": "12", "b_m_gain": "1e400"})  # fmt: skip
    assert not at.exception
    shown = " ".join(w.value for w in at.warning)
    for key in ("b_m_hidden", "b_m_cell", "b_m_gain"):
        assert f"URL parameter **{key}**" in shown and "falls back to the default" in shown, key
    assert at.session_state["b_m_hidden"] == 64 and at.session_state["b_m_cell"] == "rnn"
    assert CMP_KEYS <= chart_keys(at)


def test_compare_cells_is_a_shortcut_for_a_B_preset():
    at = open_page("gradient_flow", {**SMALL, "m_gain": "1.5"})
    at.toggle(key="gf_compare").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["compare"] is True and at.session_state["b_m_cell"] == "lstm"
    assert at.session_state["b_m_hidden"] == 6 and at.session_state["b_m_gain"] == 1.5  # the rest is A's
    assert at.selectbox(key="b_m_cell").value == "lstm"  # B's sidebar section shows it
    assert CMP_KEYS <= chart_keys(at)
    names = [tr.get("name", "") for tr in chart_spec(at, "gf_lag")["data"]]
    assert any("B: LSTM" in n for n in names) and any("(RNN)" in n for n in names), names
    link = next(c.value for c in at.code if c.value.startswith("http"))
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))
    assert params["compare"] == "true" and params["b_m_cell"] == "lstm"
    at.toggle(key="gf_compare").set_value(False).run()
    assert not at.exception and at.session_state["compare"] is False
    assert not CMP_KEYS & chart_keys(at)


def test_a_link_with_compare_cells_alone_opens_the_B_preset():
    at = open_page("gradient_flow", {**SMALL, "m_cell": "lstm", "gf_compare": "true"})
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["compare"] is True and at.session_state["b_m_cell"] == "rnn"
    assert CMP_KEYS <= chart_keys(at)


def test_a_metric_one_model_lacks_is_n_a_with_the_reason():
    """γσ₁ has no meaning for a gated cell: B = LSTM shows n/a (not "None") and says why; B = A does not."""
    same = open_page("gradient_flow", {**SMALL, "compare": "true"})
    missing = metrics(same)[["A", "B"]].isna().to_numpy().any()
    assert any("n/a:" in c.value for c in same.caption) == missing  # the caption only where something is n/a
    lstm = open_page("gradient_flow", {**SMALL, "compare": "true", "b_m_cell": "lstm"})
    assert not lstm.exception, [e.value for e in lstm.exception]
    df = metrics(lstm)
    row = df[df["metric"].str.startswith("γσ₁")]
    assert len(row) == 1 and np.isnan(float(row["B"].iloc[0])) and np.isnan(float(row["B − A"].iloc[0]))
    assert any("n/a: the number does not exist for that model" in c.value for c in lstm.caption)
