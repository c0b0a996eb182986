"""The Runs page in AppTest: it renders a monitored run (histories, heatmap, ||dL/dh_t||, spectra) and
moves through its logged steps; a run path from the URL outside the runs directory is refused."""

import os
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from bptt_core.monitor import runs as R
from dashboard.layout import details_key
from tests.helpers.apptest import (
    APP,
    TIMEOUT,
    chart_spec,
    decode,
    navigation_mode,  # noqa: F401 - the fixture
)
from tests.helpers.runs import _flip_byte, make_run

PAGE_FILE = str(Path(APP).parent / "pages" / "runs.py")
CHARTS = {"ru_gradnorm", "ru_flowhist", "ru_heatmap", "ru_dldh", "ru_eig", "ru_sv", "ru_lyap"}


@pytest.fixture()
def runs_dir(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    make_run(root / "exp1", steps=5, every=2)
    (tmp_path / "secret").mkdir()
    make_run(tmp_path / "secret" / "other", steps=1)
    os.symlink(tmp_path / "secret" / "other", root / "link-out")
    monkeypatch.setenv(R.RUNS_DIR_ENV, str(root))
    return root


def open_runs(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(PAGE_FILE, default_timeout=TIMEOUT)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def charts(at) -> set[str]:
    return {c.key for c in at.get("plotly_chart")}


def test_page_renders_a_run_and_moves_through_its_steps(runs_dir):
    at = open_runs({"ru_run": "exp1"})
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert CHARTS <= charts(at)
    run = R.load_run(runs_dir / "exp1")
    assert "3 logged steps: 0, 2, 4" in at.code[0].value
    slider = at.select_slider(key="ru_step")
    assert slider.value == 4
    z_last = decode(chart_spec(at, "ru_heatmap")["data"][0]["z"])
    np.testing.assert_allclose(z_last.reshape(run.step_data(4).flow.shape), run.step_data(4).flow, equal_nan=True)
    zr_last = [chart_spec(at, "ru_heatmap")["data"][0][k] for k in ("zmin", "zmax")]
    assert zr_last == pytest.approx(list(run.flow_range()))  # the run's range, not this step's
    slider.set_value(0).run()
    assert not at.exception
    assert [chart_spec(at, "ru_heatmap")["data"][0][k] for k in ("zmin", "zmax")] == zr_last  # one colour scale
    z_first = decode(chart_spec(at, "ru_heatmap")["data"][0]["z"]).reshape(8, 8)
    np.testing.assert_allclose(z_first, run.step_data(0).flow, equal_nan=True)
    dl = decode(chart_spec(at, "ru_dldh")["data"][0]["y"])  # the total ||dL/dh_t||, log10
    np.testing.assert_allclose(dl, np.log10(run.step_data(0).dl_dh_total))
    for key in CHARTS:  # each figure's CSV, in its expander (drawn once that is open)
        at.session_state[details_key(key)] = True
    at.run()
    for key in CHARTS:
        assert any(b.proto.id.endswith(f"{key}_csv") for b in at.get("download_button")), key


@pytest.mark.parametrize("bad", ["../secret/other", "/etc", "link-out", "exp1/../../secret/other"])
def test_a_run_outside_the_runs_directory_is_refused(runs_dir, bad):
    at = open_runs({"ru_run": bad})
    assert not at.exception, [e.value for e in at.exception]
    assert any("Refused" in e.value for e in at.error), [e.value for e in at.error]
    assert "other" not in at.code[0].value  # what is shown is the allowed run, not the one asked for
    assert "run: exp1" in at.code[0].value
    assert at.query_params["ru_run"] == "exp1"


def test_a_tampered_run_is_refused_in_the_page(runs_dir):
    _flip_byte(runs_dir / "exp1" / "history.npz")
    at = open_runs({"ru_run": "exp1"})
    assert not at.exception, [e.value for e in at.exception]
    assert any("history.npz does not match its SHA-256" in e.value for e in at.error), [e.value for e in at.error]
    assert not charts(at)


def test_no_runs_yet_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.setenv(R.RUNS_DIR_ENV, str(tmp_path / "none"))
    at = open_runs()
    assert not at.exception and not at.error
    assert any("No run folders" in i.value for i in at.info)


def test_runs_page_through_the_router(runs_dir):
    """From app.py, as a click in the menu gets there."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/runs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Runs"
    assert CHARTS <= charts(at)
