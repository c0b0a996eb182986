"""BPTT Explorer's library: exact gradient-flow diagnostics for recurrent networks.

Pure numerics and figure builders; never imports streamlit. The public API (DESIGN.md):
``jacobian_log_norms``, ``tbptt_gradients``, ``rtrl_gradients``, ``estimate``.

The names below are loaded on first use (PEP 562): ``from bptt_core import figures`` or
``bptt_core.config`` must not pay for importing torch (about 2 s), so the dashboard's first page,
which draws no tensor, opens without it.
"""

from importlib import import_module

# public name -> the submodule that defines it
_EXPORTS = {
    "build_model": "build",
    "build_task": "build",
    "Estimate": "calculator",
    "estimate": "calculator",
    "ModelConfig": "config",
    "decay_rate": "jacobians",
    "jacobian_log_norms": "jacobians",
    "lag_profile": "jacobians",
    "lag_view": "jacobians",
    "loss_gradient_norms": "jacobians",
    "memory_horizon": "jacobians",
    "LoadedModel": "model_io",
    "ModelFileError": "model_io",
    "SequenceFileError": "model_io",
    "UploadError": "model_io",
    "load_model": "model_io",
    "load_sequence": "model_io",
    "ElmanRNN": "models",
    "lyapunov_exponents": "spectra",
    "spectrum": "spectra",
    "TrainConfig": "training",
    "TrainResult": "training",
    "train": "training",
    "twin_runs": "training",
    "bptt_gradients": "truncation",
    "compare_variants": "truncation",
    "contribution_norms": "truncation",
    "contributions": "truncation",
    "rtrl_gradients": "truncation",
    "tbptt_gradients": "truncation",
    "tbptt_kept_mask": "truncation",
    "tbptt_schedule": "truncation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bptt_core' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
