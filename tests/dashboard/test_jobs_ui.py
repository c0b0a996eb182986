"""Background work in the dashboard (dashboard/jobs_ui.py): large work runs as a job with progress and
cancel, over-budget work says what to lower and the override is one request, view-only controls never
retrain, a session that leaves cancels its work."""

from __future__ import annotations

import os
import time

import pytest
from streamlit.runtime import caching
from streamlit.testing.v1 import AppTest

import bptt_core.learning.training as T
from dashboard import compute
from dashboard import jobs as J
from tests.helpers.apptest import (
    PAGES,
    assert_ok,
    chart_keys,
    navigation_mode,  # noqa: F401 - the fixture
    open_page,
    settle,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AT_SESSION = "test session id"  # AppTest's session id (streamlit.testing.v1.local_script_runner)


def clipping(query: dict, timeout: float = 120) -> AppTest:
    at = AppTest.from_file(os.path.join(ROOT, "pages/clipping.py"), default_timeout=timeout)
    for k, v in query.items():
        at.query_params[k] = v
    return at


@pytest.fixture
def count_twin_runs(monkeypatch):
    calls = []
    real = T.twin_runs

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(T, "twin_runs", counted)
    return calls


def wait_for(pred, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_view_only_controls_on_clipping_never_retrain(count_twin_runs):
    at = settle(clipping({"cl_steps": "20", "cl_batch": "2", "m_seed": "9101"}).run())
    assert_ok(at, "clipping")
    assert len(count_twin_runs) == 1
    before = at.get("plotly_chart")[2].proto.spec
    at.session_state["cl_twin"] = "value"  # the heatmap's run
    at.run()
    at.session_state["clipping_svg"] = True  # the export format
    at.run()
    assert_ok(at, "clipping")
    assert len(count_twin_runs) == 1, "a view-only control retrained the twins"
    assert at.get("plotly_chart")[2].proto.spec != before  # the view did change
    at.session_state["cl_lr"] = 0.02  # a training setting does retrain
    settle(at.run())
    assert len(count_twin_runs) == 2


def test_heavy_training_runs_in_the_background_with_progress_and_cancel():
    at = clipping({"cl_steps": "1000", "cl_batch": "16", "m_seed": "9102"}).run()
    assert not at.exception
    bars = at.get("progress")
    assert bars and "Training the three twins" in bars[0].proto.text
    assert not at.get("plotly_chart")  # the page answered without waiting for the training
    runner = J.default_runner()
    job = next(j for k, j in list(runner._active.items()) if k[0] == compute.TWINS.name and k[1].cfg.seed == 9102)
    assert wait_for(lambda: job.fraction > 0)
    at.run()
    assert "%" in at.get("progress")[0].proto.text and "left" in at.get("progress")[0].proto.text  # the ETA
    at.button(key=next(b.key for b in at.button if b.key.startswith("_job_cancel_"))).click().run()
    assert job.wait(1.5) and job.state == J.CANCELLED
    at.run()
    assert any("cancelled" in i.value for i in at.info)
    assert any(b.key.startswith("_job_again_") for b in at.button)  # not restarted by itself


def test_a_session_that_leaves_cancels_its_training():
    clipping({"cl_steps": "1000", "cl_batch": "16", "m_seed": "9103"}).run()
    runner = J.default_runner()
    job = next(j for k, j in list(runner._active.items()) if k[0] == compute.TWINS.name and k[1].cfg.seed == 9103)
    assert wait_for(lambda: job.state == J.RUNNING)
    # what Streamlit runs when the browser goes (WebsocketSessionManager.disconnect_session ->
    # AppSession.clear_session_caches): the session's resource cache is cleared, its on_release fires
    caching.clear_session_resource_cache(AT_SESSION)
    assert job.wait(1.5) and job.state == J.CANCELLED
    assert wait_for(lambda: runner.running() == 0, 5)  # the worker is free


def test_over_budget_training_is_refused_with_what_to_lower():
    query = {"cl_steps": "1000", "cl_batch": "64", "m_cell": "gru", "m_hidden": "256", "m_seq_len": "400"}
    at = clipping(query).run()
    assert not at.exception
    text = " ".join(w.value for w in at.warning)
    assert "over the per-request budget" in text and "Lower the training steps, the batch size" in text
    assert not any(b.key.startswith("_job_override_") for b in at.button)  # beyond the ceiling: no override
    assert any("training steps fit the budget" in c.value for c in at.caption)
    assert not at.get("progress")
    assert not any(k[0] == compute.TWINS.name and k[1].cfg.hidden_size == 256 for k in J.default_runner()._active)


def test_the_override_runs_one_request_up_to_the_ceiling():
    query = {
        "cl_steps": "1000",
        "cl_batch": "64",
        "m_seed": "9104",
        "m_seq_len": "200",
    }  # ~2 min: over, under the ceiling
    at = clipping(query).run()
    assert "over the per-request budget" in " ".join(w.value for w in at.warning)
    button = next(b for b in at.button if b.key.startswith("_job_override_"))
    button.click().run()
    assert at.get("progress"), "the override did not start the job"
    runner = J.default_runner()
    job = next(j for k, j in list(runner._active.items()) if k[0] == compute.TWINS.name and k[1].cfg.seed == 9104)
    runner.cancel(job.key)
    assert job.wait(1.5)


def test_a_default_page_is_served_beside_heavy_jobs_on_every_core():
    """Issue 11: as many heavy training requests as there are cores (and more waiting), and a visitor
    opens the Gradient flow page at the defaults: answered within 10 s."""
    runner = J.default_runner()
    heavy = []
    try:
        for i in range(runner.workers + 2):
            at = clipping({"cl_steps": "1000", "cl_batch": "16", "m_seed": str(9200 + i)})
            at.run()
        heavy = [
            j for k, j in list(runner._active.items()) if k[0] == compute.TWINS.name and 9200 <= k[1].cfg.seed < 9300
        ]
        assert wait_for(lambda: runner.running() == runner.workers)
        t0 = time.monotonic()
        at = AppTest.from_file(os.path.join(ROOT, PAGES["gradient_flow"][0]), default_timeout=10).run()
        waited = time.monotonic() - t0
        assert_ok(at, "gradient_flow")
        assert waited < 10
        assert runner.running() == runner.workers  # the heavy jobs were still running
    finally:
        for j in heavy:
            runner.cancel(j.key)


def test_gradient_flow_over_budget_says_what_to_lower_and_the_override_is_one_request():
    query = {"m_hidden": "192", "m_seq_len": "400", "gf_norm": "2", "m_seed": "9301"}  # ~2 min estimated
    at = AppTest.from_file(os.path.join(ROOT, PAGES["gradient_flow"][0]), default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception
    text = " ".join(w.value for w in at.warning)
    assert "The gradient-flow matrix (spectral norm" in text and "over the per-request budget" in text
    assert "or use the Frobenius norm (far cheaper)." in text
    assert not at.get("plotly_chart")
    button = next(b for b in at.button if b.key.startswith("_job_override_"))
    assert "at most 5.0 min" in button.label
    button.click().run()
    runner = J.default_runner()
    job = next(j for k, j in list(runner._active.items()) if k[0] == compute.FLOW.name and k[1].cfg.seed == 9301)
    assert at.get("progress") and "The gradient-flow matrix" in at.get("progress")[0].proto.text
    at.button(key=next(b.key for b in at.button if b.key.startswith("_job_cancel_"))).click().run()
    assert job.wait(1.5) and job.state == J.CANCELLED
    # the override was for that one request (not the session): another seed asks again instead of computing
    at.session_state["m_seed"] = 9302
    at.run()
    assert "over the per-request budget" in " ".join(w.value for w in at.warning)
    assert not any(k[0] == compute.FLOW.name and k[1].cfg.seed == 9302 for k in runner._active)


def test_changing_a_training_setting_mid_run_cancels_the_old_job():
    at = clipping({"cl_steps": "1000", "cl_batch": "16", "m_seed": "9401"}).run()
    runner = J.default_runner()
    old = next(j for k, j in list(runner._active.items()) if k[0] == compute.TWINS.name and k[1].cfg.seed == 9401)
    at.session_state["cl_lr"] = 0.02
    at.run()
    assert old.wait(1.5) and old.state == J.CANCELLED  # one job per page and session
    new = next(j for k, j in list(runner._active.items()) if k[0] == compute.TWINS.name and k[1].cfg.seed == 9401)
    assert new is not old
    runner.cancel(new.key)
    assert new.wait(1.5)


# == Large work on the Gradient flow page ====================================================================


def test_large_work_runs_in_the_background_and_over_budget_work_asks():
    from dashboard.jobs import default_runner

    at = open_page("gradient_flow", {"m_hidden": "256", "m_seq_len": "400", "m_seed": "77"}, wait_jobs=False)
    assert not at.exception
    assert at.get("progress") and "The gradient-flow matrix" in at.get("progress")[0].proto.text
    assert "gf_heatmap" not in chart_keys(at)
    runner = default_runner()
    for key in [k for k in list(runner._active) if k[0] == compute.FLOW.name and k[1].cfg.seed == 77]:
        runner.cancel(key)  # the test need not wait for it
    at = open_page("gradient_flow", {"m_hidden": "256", "m_seq_len": "400", "gf_norm": "2"}, wait_jobs=False)
    assert not at.exception
    assert any("over the per-request budget" in w.value for w in at.warning)
    assert "gf_heatmap" not in chart_keys(at) and not at.get("progress")
