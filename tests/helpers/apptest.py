"""Driving the dashboard with Streamlit's AppTest: open a page as a URL or through the router, wait for its
background jobs, read the figures it sent. Importing ``navigation_mode`` into a test module applies it there."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from dashboard.layout import EXPORTS_OPEN, details_key
from dashboard.settings import PRESET_PICK

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TIMEOUT = 120
FAST_CLIP = {"cl_steps": "10", "cl_batch": "2"}  # keeps the twin runs well under a second

# page -> (page file, expected chart keys, its heading)
PAGES = {
    "overview": ("pages/overview.py", {"ov_diagram"}, "BPTT Explorer"),
    "gradient_flow": ("pages/gradient-flow.py", {"gf_heatmap", "gf_lag", "gf_dldh", "gf_contrib"}, "Gradient flow"),
    "spectrum": ("pages/spectrum.py", {"sp_eig", "sp_sv", "sp_lyap"}, "Spectrum"),
    "clipping": ("pages/clipping.py", {"cl_gradnorm", "cl_loss", "cl_dh"}, "Gradient clipping"),
    "truncation": ("pages/truncation.py", {"tb_heatmap", "tb_compare"}, "Truncated BPTT"),
    "calculator": ("pages/calculator.py", {"ca_memory"}, "BPTT calculator"),
}


@pytest.fixture(autouse=True)
def navigation_mode(monkeypatch):
    """AppTest resets Streamlit's 'pages/ folder' (MPA v1) flag before every run and, since our page
    scripts live in pages/, would then run the page alone, without app.py. In a real server the flag is
    cleared for good by the first st.navigation call; do the same here."""
    orig = PagesManager.__init__

    def init(self, *a, **k):
        orig(self, *a, **k)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


def open_page(page: str, query: dict | None = None, state: dict | None = None, wait_jobs: bool = True) -> AppTest:
    """The page as a browser opens it from a URL: its first run is the page itself, with these query
    parameters (a page run on its own draws the shared sidebar, as app.py does)."""
    script = APP if page == "overview" else str(Path(APP).parent / PAGES[page][0])
    at = AppTest.from_file(script, default_timeout=TIMEOUT)
    for k, v in {**(FAST_CLIP if page == "clipping" else {}), **(query or {})}.items():
        at.query_params[k] = v
    # The exports' expander open (closed, its elements are not drawn: tested on its own below).
    for k, v in {EXPORTS_OPEN: True, **(state or {})}.items():
        at.session_state[k] = v
    return settle(at.run()) if wait_jobs else at.run()


def pick_preset(at: AppTest, key: str) -> AppTest:
    """Click the preset's button in the Overview's row of presets (one st.pills)."""
    return at.button_group(key=PRESET_PICK).set_value(key)


def settle(at: AppTest, timeout: float = TIMEOUT) -> AppTest:
    """Rerun until no background job is in progress (a browser's progress fragment reruns the page when
    its job is done; AppTest does not run fragments on a timer)."""
    import time

    from dashboard.jobs import default_runner

    end = time.monotonic() + timeout
    while at.get("progress") and time.monotonic() < end:
        runner = default_runner()
        while (runner.running() or runner.queued()) and time.monotonic() < end:
            time.sleep(0.05)
        at.run()
    return at


def open_through_router(page: str) -> AppTest:
    """app.py first, then the page through st.navigation (how a click in the menu gets there)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in (FAST_CLIP if page == "clipping" else {}).items():
        at.query_params[k] = v
    at.run()
    return settle(at.switch_page(PAGES[page][0]).run()) if page != "overview" else at


def open_details(at: AppTest, figure_keys) -> AppTest:
    """Open the figures' expanders (each holds its explanation and CSV, drawn only while it is open)."""
    for key in figure_keys:
        at.session_state[details_key(key)] = True
    return settle(at.run())


def chart_keys(at: AppTest) -> set[str]:
    """The figures drawn: Plotly charts by key, and static SVG figures (layout.diagram) by data-key."""
    plotly = {c.proto.id.rsplit("-", 1)[-1] if c.key is None else c.key for c in at.get("plotly_chart")}
    return plotly | {m for h in at.get("html") for m in re.findall(r'data-key="(\w+)"', h.proto.body)}


def chart_spec(at: AppTest, key: str) -> dict:
    for c in at.get("plotly_chart"):
        if c.key == key:
            return json.loads(c.proto.spec)
    raise AssertionError(f"no chart {key}; have {chart_keys(at)}")


def decode(v) -> np.ndarray:
    """A Plotly array from the figure JSON (plain list or base64 'bdata')."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
    return np.asarray(v)


def assert_ok(at: AppTest, page: str) -> None:
    assert not at.exception, [e.value for e in at.exception]
    missing = PAGES[page][1] - chart_keys(at)
    assert not missing, f"{page}: charts {missing} missing; errors: {[e.value for e in at.error]}"


SMALL_H16 = {"m_hidden": "16", "m_seq_len": "20"}


def z_of(at, key: str) -> np.ndarray:
    z = chart_spec(at, key)["data"][0]["z"]
    if isinstance(z, dict):
        return decode(z).astype(float).reshape([int(n) for n in str(z["shape"]).split(",")])
    return np.array([decode(row) for row in z], dtype=float)
