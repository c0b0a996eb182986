"""The Phase diagram page (AppTest): it renders, draws the measured boundary and the mean-field line, and a
clicked point opens that network on another page through the URL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from bptt_core.sweeps.grid import Axis, SweepSpec
from bptt_core.sweeps.phase import phase_figure
from bptt_core.sweeps.run import sweep
from bptt_core.sweeps.table import read_sweep_csv
from dashboard.layout import details_key
from tests.helpers.apptest import (
    decode,
    navigation_mode,  # noqa: F401 - the fixture
)
from tests.helpers.phase import trace

APP = str(Path(__file__).resolve().parents[2] / "app.py")
SMALL = {"m_init": "gaussian", "pd_points": "5", "m_seq_len": "40", "m_hidden": "16"}


def through_router(query: dict) -> AppTest:
    """app.py with these query parameters, then the Phase diagram page from the menu."""
    at = AppTest.from_file(APP, default_timeout=180)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    return at.switch_page("pages/phase-diagram.py").run()


def chart(at: AppTest) -> dict:
    for c in at.get("plotly_chart"):
        if c.key == "pd_chart":
            return json.loads(c.proto.spec)
    raise AssertionError(f"no phase diagram; errors: {[e.value for e in at.error]}")


def grid(v) -> np.ndarray:
    """A 2-D Plotly array: nested lists, or base64 'bdata' with its shape."""
    if isinstance(v, dict):
        return decode(v).astype(float).reshape([int(n) for n in str(v["shape"]).split(",")])
    return np.array([[np.nan if e is None else e for e in row] for row in v], dtype=float)


def click(at: AppTest, x, y) -> AppTest:
    at.session_state["pd_chart"] = {"selection": {"points": [{"x": x, "y": y}], "point_indices": [0], "box": [],
                                                  "lasso": []}}  # fmt: skip
    return at.run()


def test_page_renders_with_the_boundary_and_the_theory_drawn():
    at = through_router({**SMALL, "pd_y": "input_scale"})
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Phase diagram"
    spec = chart(at)
    boundary = trace(spec, "measured boundary")
    assert boundary["type"] == "contour" and boundary["contours"]["start"] == boundary["contours"]["end"] == 0
    z = grid(boundary["z"])
    assert np.nanmin(z) < 0 < np.nanmax(z)  # lambda_1 changes sign inside the grid: the line is drawn
    theory = trace(spec, "mean-field boundary")
    gains = decode(theory["x"]).astype(float)
    inputs = decode(theory["y"]).astype(float)
    from bptt_core.flow.theory import boundary_gain

    assert gains[-1] == pytest.approx(boundary_gain(inputs[-1] ** 2, 0.0))
    text = " ".join(m.value for m in at.markdown)
    assert "Theory against measurement" in text and "Edge of chaos" in text


def test_a_clicked_point_opens_that_network_on_gradient_flow():
    at = through_router({**SMALL, "pd_y": "hidden_size", "pd_edge": "false"})
    assert not at.exception, [e.value for e in at.exception]
    x = trace(chart(at), "grid points")
    gain, hidden = float(decode(x["x"])[7]), int(decode(x["y"])[7])
    at = click(at, gain, hidden)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Gradient flow"
    assert float(at.query_params["m_gain"]) == pytest.approx(gain)  # the network is in the URL
    assert int(at.query_params["m_hidden"]) == hidden
    assert at.query_params["m_init"] == "gaussian"


def test_a_point_the_other_pages_cannot_show_says_so():
    at = through_router({**SMALL, "pd_y": "input_scale", "pd_edge": "false"})
    at = click(at, 1.0, 0.5)
    assert not at.exception and at.title[0].value == "Phase diagram"
    assert any("input scale 0.5" in w.value for w in at.warning)


def test_same_axis_twice_is_refused_in_the_page():
    at = through_router({**SMALL, "pd_y": "gain"})
    assert not at.exception
    assert any("both gain" in e.value for e in at.error)


def test_a_sweep_file_from_the_command_line_reads_back(tmp_path):
    from bptt_core.cli.main import main
    from bptt_core.config import ModelConfig

    assert main(["sweep", "--hidden-size", "4", "--seq-len", "8", "--x", "gain:0.5:2:3", "--y", "bias_scale:0:1:2",
                 "--seeds", "2", "--measure", "lyapunov,sigma1_gamma", "--no-progress", "--out", str(tmp_path)]) == 0  # fmt: skip
    f = read_sweep_csv((tmp_path / "sweep.csv").read_bytes())
    assert f.axes == ["gain", "bias_scale"] and f.measures == ["lyapunov", "sigma1_gamma"]
    spec = SweepSpec(ModelConfig(hidden_size=4, seq_len=8), Axis("gain", 0.5, 2, 3), Axis("bias_scale", 0, 1, 2),
                       seeds=2, measures=("lyapunov", "sigma1_gamma"))  # fmt: skip
    np.testing.assert_array_equal(f.table["lyapunov"].to_numpy(), sweep(spec)["lyapunov"].to_numpy())
    with pytest.raises(ValueError, match="no 'seed' column"):
        read_sweep_csv(b"gain,lyapunov\n1,2\n")
    with pytest.raises(ValueError, match="must be one or two of"):
        read_sweep_csv(b"temperature,seed,lyapunov\n1,0,2\n")


def test_a_large_grid_is_previewed_coarse():
    from bptt_core.config import ModelConfig
    from dashboard import sweeps

    spec = SweepSpec(ModelConfig(), Axis("gain", 0.5, 3.0, 30), Axis("hidden_size", 8, 64, 29), seeds=3)
    quick = sweeps.coarse(spec)
    assert quick.x == Axis("gain", 0.5, 3.0, sweeps.COARSE_POINTS) and quick.seeds == 1
    assert quick.y.count <= sweeps.COARSE_POINTS and (quick.y.start, quick.y.stop) == (8, 64)  # whole steps kept
    small = SweepSpec(ModelConfig(), Axis("gain", 0.5, 3.0, 5))
    assert sweeps.coarse(small) == small  # nothing to preview


def test_the_table_csv_is_drawn_once_its_expander_is_open():
    """Lazy like every figure's: closed, no CSV and no equations are sent; open, the CSV holds the swept table."""
    at = through_router(SMALL)
    assert not at.exception and not any(b.proto.id.endswith("pd_csv") for b in at.get("download_button"))
    assert not at.latex
    at.session_state[details_key("pd_chart")] = True
    at.run()
    assert not at.exception and any(b.proto.id.endswith("pd_csv") for b in at.get("download_button"))
    assert at.latex and "chi_1" in at.latex[0].value


def test_the_map_is_built_once_per_view(monkeypatch):
    """A rerun at the same settings reuses the map's figure (building it was most of the page's rerun);
    a view-only change (spread instead of mean) builds it anew, and the drawn figure follows."""
    from bptt_core.sweeps import phase
    from dashboard import sweeps

    sweeps.phase_spec.clear()
    built = []
    real = phase_figure
    monkeypatch.setattr(
        phase, "phase_figure", lambda *a, **kw: built.append(a[3] if len(a) > 3 else kw.get("stat")) or real(*a, **kw)
    )
    at = through_router(SMALL)
    first = chart(at)
    assert built == ["mean"]
    at.run()
    at.run()
    assert built == ["mean"], "a rerun at the same view rebuilt the map"
    assert chart(at) == first
    at.selectbox(key="pd_stat").set_value("spread").run()
    assert built == ["mean", "std"]
    assert chart(at) != first
