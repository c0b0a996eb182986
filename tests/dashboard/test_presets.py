"""Presets (dashboard/presets.py): every preset is a valid configuration whose classic effect really shows
in the numbers and whose claims hold; picking one opens its page with its settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bptt_core.analyses.numbers import flow_matrix_of, model_and_sequence, problems, spectrum_of
from bptt_core.flow.summary import decay_rate
from dashboard import page_table
from dashboard import presets as P
from dashboard.settings import MODEL_SETTINGS
from tests.helpers.apptest import (
    PAGES,
    chart_keys,
    chart_spec,
    navigation_mode,  # noqa: F401 - the fixture
    open_page,
    pick_preset,
    settle,
)

ROOT = Path(__file__).resolve().parents[2]


def rate(cfg) -> float:
    return decay_rate(flow_matrix_of(cfg))


@pytest.mark.parametrize("preset", P.PRESETS, ids=lambda p: p.key)
def test_preset_is_valid_and_has_a_page(preset):
    cfg = preset.config()
    errors, _ = problems(cfg)
    assert not errors
    assert preset.page in page_table.BY_KEY
    assert (ROOT / page_table.page(preset.page).file).is_file()
    assert preset.title and preset.summary and preset.reference
    assert set(P.settings(preset)) == set(cfg.to_dict())
    assert all(k.split("_")[0] in ("gf", "cl", "clip", "tb", "ca", "sp") for k in preset.page_settings)


def test_keys_are_unique_and_lookup_refuses_unknown():
    assert len({p.key for p in P.PRESETS}) == len(P.PRESETS)
    assert P.get("irnn").config().init == "identity"
    with pytest.raises(ValueError, match="preset must be one of"):
        P.get("banana")


# (preset, check on (spectrum, decay rate)) -- what each classic experiment is supposed to show
EFFECTS = {
    "vanishing": lambda s, r: s.gamma * s.sigma1 < 1 and r < -0.1,
    "exploding": lambda s, r: s.rho > 1 and r > 0.05,
    "edge_of_chaos": lambda s, r: 1.0 < s.rho < 3.0,  # the driven network's edge lies above gain 1 (input saturates)
    "orthogonal": lambda s, r: np.allclose(s.singular_values, 1.0, atol=1e-5),
    "irnn": lambda s, r: np.allclose(s.singular_values, 1.0) and abs(r) < 0.02,
    "sparse": lambda s, r: abs(s.rho - 0.95) < 1e-4,
}


@pytest.mark.parametrize("key", list(EFFECTS))
def test_preset_shows_its_effect(key):
    cfg = P.get(key).config()
    assert EFFECTS[key](spectrum_of(cfg), rate(cfg))


def test_sparse_preset_has_15_nonzeros_per_unit():
    rnn, *_ = model_and_sequence(P.get("sparse").config())
    W = rnn.weight_hh_l0.detach()
    assert torch.all((W != 0).sum(1) == 15)


def test_lstm_keeps_gradient_longer_than_the_same_rnn():
    cfg = P.get("lstm_vs_rnn").config()
    rnn_cfg = type(cfg)(**{**cfg.to_dict(), "cell": "rnn"})
    assert rate(cfg) > rate(rnn_cfg)


# -- claims: each preset's promise, measured -------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("preset", P.PRESETS, ids=lambda p: p.key)
def test_every_claim_of_every_preset_holds(preset):
    assert preset.claims, "a preset must say what it demonstrates"
    for checked in preset.check():
        assert checked.holds, f"{preset.key}: {checked.claim.text}; measured {checked.value_text()}"


def test_no_preset_is_the_defaults():
    """Clicking a preset must change what is shown (the orthogonal preset once equalled the defaults)."""
    from bptt_core.config import ModelConfig

    for p in P.PRESETS:
        assert p.config() != ModelConfig() or p.page_settings, p.key


def test_edge_of_chaos_gain_is_found_not_assumed():
    from bptt_core.report.claims import Context, measure

    cfg = P.get("edge_of_chaos").config()
    assert cfg.gain != 1.0 and P.get("edge_of_chaos").model.get("gain") is None
    assert abs(measure("lyapunov_top", Context(cfg))) <= 0.005  # the finder's own tolerance is tighter than the claim


def test_a_claim_that_does_not_hold_is_reported_as_such():
    from bptt_core.report.claims import Claim, check

    wrong = Claim("decay_rate", ">", 0.0, "the default network's gradients explode")
    (checked,) = check([wrong], P.get("vanishing").config())
    assert not checked.holds and "decay rate = -0.4" in checked.value_text()
    with pytest.raises(ValueError, match="measure must be one of"):
        Claim("banana", "<", 0.0, "x")


def test_the_active_preset_is_derived_from_the_settings():
    p = P.get("lstm_vs_rnn")
    assert P.active(p.config(), p.page, dict(p.page_settings)) is p
    changed = type(p.config())(**{**p.config().to_dict(), "seed": 1})
    assert P.active(changed, p.page, dict(p.page_settings)) is None
    assert P.active(p.config(), p.page, {**p.page_settings, "gf_block": "h"}) is None


def test_lru_ring_keeps_gradient_near_one_where_the_same_rnn_vanishes():
    cfg = P.get("lru_ring").config()
    rnn_cfg = type(cfg)(**{**cfg.to_dict(), "cell": "rnn", "activation": "tanh"})
    L_lru, L_rnn = flow_matrix_of(cfg, norm=2), flow_matrix_of(rnn_cfg, norm=2)
    T = cfg.seq_len
    # the spectral norm of diag(lambda)^(T-1) is max|lambda|^(T-1), the ring's top unit
    rho = spectrum_of(cfg).rho
    assert 0.9 <= rho <= 0.999 and L_lru[T - 1, 0] == pytest.approx((T - 1) * np.log10(rho), abs=1e-9)
    assert L_lru[T - 1, 0] > -1  # the summary: within 10x of 1 over 300 steps ...
    assert L_rnn[T - 1, 0] < -3  # ... while the RNN's falls more than 1000x
    assert rate(cfg) > rate(rnn_cfg)


# == Picking a preset in the page ============================================================================


@pytest.mark.parametrize("preset", P.PRESETS, ids=lambda p: p.key)
def test_preset_opens_its_page_with_its_settings(preset):
    at = open_page("overview", state={"cl_steps": 10, "cl_batch": 2})
    settle(pick_preset(at, preset.key).run())
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == PAGES[preset.page][2]
    values = P.settings(preset)
    for s in MODEL_SETTINGS:
        assert at.session_state[s.key] == values[s.attr], s.key
    for k, v in preset.page_settings.items():
        assert at.session_state[k] == v
    assert PAGES[preset.page][1] <= chart_keys(at)
    # the page states what the preset claims, with the measured value beside it, and it holds
    claims = [m.value for m in at.markdown if "Claim:" in m.value]
    assert len(claims) == len(preset.claims) and all("**holds**" in c for c in claims), claims
    assert all(c.claim.text in " ".join(claims) for c in preset.check())


def test_a_changed_setting_ends_the_preset_claims():
    at = open_page("overview")
    pick_preset(at, "vanishing").run()
    assert any("Claim:" in m.value for m in at.markdown)
    at.session_state["m_seed"] = 5
    at.run()
    assert not any("Claim:" in m.value for m in at.markdown)


def test_lstm_vs_rnn_preset_draws_both_profiles():
    at = open_page("overview")
    pick_preset(at, "lstm_vs_rnn").run()
    names = [tr.get("name", "") for tr in chart_spec(at, "gf_lag")["data"]]
    assert any("LSTM" in n for n in names) and any("RNN" in n for n in names), names


def test_preset_from_a_page_whose_url_holds_bound_settings():
    """A preset clicked while the URL already carries bound values (a shared link) still switches."""
    at = open_page("overview", {"m_seq_len": "40", "m_hidden": "16"})
    pick_preset(at, "vanishing").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Gradient flow" and at.session_state["m_gain"] == 0.5


def test_lru_ring_preset_draws_the_lru_against_the_rnn():
    at = open_page("overview")
    pick_preset(at, "lru_ring").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["m_r_min"] == 0.9 and at.session_state["m_r_max"] == 0.999
    names = [tr.get("name", "") for tr in chart_spec(at, "gf_lag")["data"]]
    assert any("LRU" in n for n in names) and any("RNN" in n for n in names), names


def test_a_presets_claims_are_measured_on_the_pages_own_numbers(monkeypatch):
    """The Clipping preset's claims need the three twins: they come from the page's own training, not a second one."""
    import bptt_core.learning.training as T
    import dashboard.jobs as J
    from bptt_core.report import claims
    from dashboard import compute

    runner = J.JobRunner()  # nothing trained yet, whatever other tests left in the process-wide one
    monkeypatch.setattr(J, "default_runner", lambda: runner)
    compute.preset_checks.clear()
    claims._library_twins.cache_clear()
    calls = []
    real = T.twin_runs
    monkeypatch.setattr(T, "twin_runs", lambda *a, **k: calls.append(1) or real(*a, **k))
    at = open_page("overview")
    try:
        settle(pick_preset(at, "clipping").run())
    finally:
        runner.shutdown()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Claim:" in m.value for m in at.markdown)
    assert len(calls) == 1, f"the twins were trained {len(calls)} times"
