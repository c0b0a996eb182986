"""The Spectrum page (pages/spectrum.py) in AppTest: the LRU's sensitivity curve and compare mode's plane."""

from __future__ import annotations

import numpy as np

from tests.helpers.apptest import (
    SMALL_H16,
    assert_ok,
    chart_keys,
    chart_spec,
    decode,
    navigation_mode,  # noqa: F401 - the fixture
    open_page,
)
from tests.helpers.compare_pages import OTHER_B, metrics, open_cmp, traces, ys


def test_lru_spectrum_page_shows_the_sensitivity_curve():
    at = open_page("spectrum", {**SMALL_H16, "m_cell": "lru"})
    assert_ok(at, "spectrum")
    names = [tr.get("name", "") for tr in chart_spec(at, "sp_lambda")["data"]]
    assert names[0].endswith("measured") and any("∂h_T/∂h_1" in n for n in names), names
    assert "sp_lambda" not in chart_keys(open_page("spectrum", SMALL_H16))  # only for the LRU


# == Compare mode: one plane and one axis ====================================================================


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
