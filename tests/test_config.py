"""bptt_core.config: ModelConfig names every bad setting, normalises numbers and round-trips; the Jacobian
engine's memory limit and its bytes-per-entry arithmetic against a measured peak.

Under hypothesis (tests/helpers/strategies.py), settings far wider than the widgets allow (ints, floats,
NaN, inf, huge values, wrong types, unknown names) are refused with a ValueError only."""

from __future__ import annotations

import dataclasses
import math
import string

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bptt_core import ModelConfig
from bptt_core.config import MAX_HIDDEN, MAX_JACOBIAN_BYTES, check_jacobian_memory
from tests.helpers.strategies import PROFILE, VALID_FIELDS, WILD, config_kwargs, only_value_errors

BAD_CONFIGS = [
    # (setting, value, a word the message must contain besides the setting's name)
    ("hidden_size", 0, "[1, 512]"),
    ("hidden_size", -3, "[1, 512]"),
    ("hidden_size", 10**6, "[1, 512]"),
    ("hidden_size", 2.5, "whole number"),
    ("hidden_size", True, "whole number"),
    ("hidden_size", "64", "whole number"),
    ("seq_len", 0, "[1, 2000]"),
    ("seq_len", 10**5, "[1, 2000]"),
    ("gain", -1.0, "(0.0, 100.0]"),
    ("gain", 0.0, "(0.0, 100.0]"),
    ("gain", float("nan"), "(0.0, 100.0]"),
    ("gain", float("inf"), "(0.0, 100.0]"),
    ("gain", "big", "number"),
    ("spectral_radius", -0.5, "[0.0, 100.0]"),
    ("activation", "swish", "tanh, relu, sigmoid, linear"),
    ("init", "foo", "orthogonal"),
    ("cell", "xyz", "rnn, lstm, gru"),
    ("task", "parity", "adding"),
    ("seed", -1, "[0, "),
    ("batch_size", 0, "[1, 1024]"),
    ("input_size", -1, "[0, 256]"),
]


@pytest.mark.parametrize("setting,value,allowed", BAD_CONFIGS, ids=[f"{s}={v!r}" for s, v, _ in BAD_CONFIGS])
def test_bad_config_names_the_setting_and_range(setting, value, allowed):
    with pytest.raises(ValueError) as e:
        ModelConfig(**{setting: value})
    assert setting in str(e.value)
    assert allowed in str(e.value)


def test_config_normalises_numbers_and_round_trips():
    cfg = ModelConfig(hidden_size=np.int64(8), seq_len=12.0, gain=2, spectral_radius=np.float32(0.5))
    assert type(cfg.hidden_size) is int and type(cfg.seq_len) is int and type(cfg.gain) is float
    assert cfg == ModelConfig(hidden_size=8, seq_len=12, gain=2.0, spectral_radius=0.5)
    assert hash(cfg) == hash(ModelConfig(hidden_size=8, seq_len=12, gain=2.0, spectral_radius=0.5))
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown settings.*colour"):
        ModelConfig.from_dict({**cfg.to_dict(), "colour": "red"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.hidden_size = 3


def test_jacobian_memory_limit():
    check_jacobian_memory("rnn", MAX_HIDDEN, 200)  # 24 * 200 * 512^2 + 128 MiB = 1.39 GB: allowed
    with pytest.raises(ValueError, match="hidden_size.*seq_len"):
        check_jacobian_memory("rnn", MAX_HIDDEN, 2000)
    with pytest.raises(ValueError, match="lstm"):
        check_jacobian_memory("lstm", MAX_HIDDEN, 200)  # the (h, c) state doubles S: 4x the bytes
    # the limit the message quotes is the constant the check uses
    with pytest.raises(ValueError, match=f"{MAX_JACOBIAN_BYTES / 1e9:.1f} GB"):
        check_jacobian_memory("gru", MAX_HIDDEN, 2000)


# == Hypothesis: ModelConfig raises only ValueError ==========================================================

# -- strategies ------------------------------------------------------------------------------------

UNKNOWN_NAMES = st.dictionaries(st.text(string.ascii_lowercase + "_", min_size=1, max_size=8), WILD, max_size=2)

# -- ModelConfig ------------------------------------------------------------------------------------


def _estimate(**kw):
    from bptt_core.learning.calculator import estimate

    return estimate("rnn", 2, 3, 1, 5, 1, measure_time=False, **kw)


def _train_config(**kw):
    from bptt_core.learning.training import TrainConfig

    return TrainConfig(**kw)


@pytest.mark.parametrize(
    "make, field",
    [(ModelConfig, "gain"), (ModelConfig, "spectral_radius"), (_train_config, "lr"), (_train_config, "clip_threshold"),
     (_estimate, "lr"), (_estimate, "gain")],
)  # fmt: skip
@pytest.mark.parametrize("value", [10**400, -(10**309)], ids=["1e400", "-1e309"])
def test_huge_int_float_settings_are_value_errors(make, field, value):
    with pytest.raises(ValueError, match=field):
        make(**{field: value})


@settings(PROFILE, max_examples=400)
@given(config_kwargs(wild_share=0.5))
def test_model_config_raises_only_value_error(kw):
    cfg = only_value_errors(ModelConfig, **kw)
    if cfg is not None:  # accepted: normalised, hashable, and a JSON round trip gives it back
        assert type(cfg.hidden_size) is int and type(cfg.gain) is float
        assert math.isfinite(cfg.gain) and math.isfinite(cfg.spectral_radius)
        assert ModelConfig.from_dict(cfg.to_dict()) == cfg and hash(cfg) == hash(ModelConfig(**cfg.to_dict()))


@settings(PROFILE, max_examples=150)
@given(config_kwargs(), UNKNOWN_NAMES)
def test_from_dict_with_unknown_names_raises_only_value_error(kw, extra):
    extra = {k: v for k, v in extra.items() if k not in VALID_FIELDS}
    cfg = only_value_errors(ModelConfig.from_dict, {**kw, **extra})
    if extra:
        assert cfg is None, f"unknown settings {sorted(extra)} were accepted"


# == The engine's peak memory against the documented bytes per entry =========================================

PEAK_SCRIPT = """
import gc, resource, sys, torch
from bptt_core import ModelConfig, build_model, build_task, jacobian_log_norms
method, cell, block, H, T = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
cfg = ModelConfig(cell=cell, hidden_size=H, seq_len=T)
rnn, _ = build_model(cfg)
x = build_task(cfg).x[:, 0]
jacobian_log_norms(rnn, x[:4], method=method)  # libraries loaded, allocator warm
gc.collect()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
jacobian_log_norms(rnn, x, method=method, block=block)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
"""


@pytest.mark.parametrize("method,cell,block", [("split", "rnn", "h"), ("split", "lstm", "c"), ("chain", "rnn", "h")])
def test_engine_peak_memory_is_within_the_documented_bytes_per_entry(method, cell, block):
    """The memory limit's arithmetic (config.JACOBIAN_BYTES_PER_ENTRY) holds for the real peak RSS."""
    import subprocess
    import sys
    from pathlib import Path

    from bptt_core.config import jacobian_bytes

    H, T = (96, 160) if cell == "lstm" else (192, 160)
    run = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, method, cell, block, str(H), str(T)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    peak = int(run.stdout.split()[-1])
    assert peak <= jacobian_bytes(cell, H, T)
