"""BPTT Explorer's library: exact gradient-flow diagnostics for recurrent networks.

Pure numerics and figure builders; never imports streamlit. The public API (docs/design.md):
``jacobian_log_norms``, ``tbptt_gradients``, ``rtrl_gradients``, ``estimate``.

The names below are loaded on first use (PEP 562): ``from bptt_core import figures`` or
``bptt_core.config`` must not pay for importing torch (about 2 s), so the dashboard's first page,
which draws no tensor, opens without it.
"""

from importlib import import_module

from .extras import missing_package, missing_package_message

__version__ = "3.0.0"  # the distribution's one version: pyproject.toml reads it, `bptt --version` prints it

# public name -> the submodule that defines it
_EXPORTS = {
    "build_model": "models.build",
    "build_task": "models.build",
    "LRU": "models.cells",
    "MinGRU": "models.cells",
    "MinLSTM": "models.cells",
    "SelectiveSSM": "models.cells",
    "Estimate": "learning.calculator",
    "estimate": "learning.calculator",
    "ModelConfig": "config",
    "decay_rate": "flow.summary",
    "diagonal_log_norms": "flow.jacobians",
    "layer_reach": "flow.jacobians",
    "jacobian_log_norms": "flow.jacobians",
    "lag_profile": "flow.summary",
    "lag_view": "flow.summary",
    "loss_gradient_norms": "flow.jacobians",
    "memory_horizon": "flow.summary",
    "GradientFlowMonitor": "monitor.monitor",
    "MonitorWarning": "monitor.monitor",
    "LoadedModel": "files.model_io",
    "ModelFileError": "files.model_io",
    "SequenceFileError": "files.model_io",
    "UploadError": "files.model_io",
    "load_model": "files.model_io",
    "load_sequence": "files.model_io",
    "ElmanRNN": "models.recurrent",
    "lyapunov_exponents": "flow.spectra",
    "Axis": "sweeps.grid",
    "SweepSpec": "sweeps.grid",
    "edge_of_chaos": "sweeps.boundary",
    "spectrum": "flow.spectra",
    "TrainConfig": "learning.training",
    "TrainResult": "learning.training",
    "train": "learning.training",
    "twin_runs": "learning.training",
    "bptt_gradients": "learning.truncation",
    "compare_variants": "learning.truncation",
    "contribution_norms": "learning.truncation",
    "contributions": "learning.truncation",
    "rtrl_gradients": "learning.truncation",
    "tbptt_gradients": "learning.truncation",
    "tbptt_kept_mask": "learning.truncation",
    "tbptt_schedule": "learning.truncation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bptt_core' has no attribute {name!r}")
    try:
        value = getattr(import_module(f".{module}", __name__), name)
    except ModuleNotFoundError as e:  # an optional dependency (pandas for the sweeps): say what to install
        package = missing_package(e)
        if package is None:
            raise
        raise ModuleNotFoundError(missing_package_message(package, f"bptt_core.{name}"), name=e.name) from e
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
