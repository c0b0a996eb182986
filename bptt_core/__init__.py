"""BPTT Explorer's library: exact gradient-flow diagnostics for recurrent networks.

Pure numerics and figure builders; never imports streamlit. The public API (DESIGN.md):
``jacobian_log_norms``, ``tbptt_gradients``, ``rtrl_gradients``, ``estimate``.
"""

from .build import build_model, build_task
from .calculator import Estimate, estimate
from .config import ModelConfig
from .jacobians import decay_rate, jacobian_log_norms, lag_profile, lag_view, loss_gradient_norms, memory_horizon
from .model_io import LoadedModel, ModelFileError, SequenceFileError, UploadError, load_model, load_sequence
from .models import ElmanRNN
from .spectra import lyapunov_exponents, spectrum
from .training import TrainConfig, TrainResult, train, twin_runs
from .truncation import (
    bptt_gradients,
    compare_variants,
    contribution_norms,
    contributions,
    rtrl_gradients,
    tbptt_gradients,
    tbptt_kept_mask,
    tbptt_schedule,
)

__all__ = [
    "Estimate",
    "TrainConfig",
    "TrainResult",
    "ElmanRNN",
    "LoadedModel",
    "ModelFileError",
    "SequenceFileError",
    "UploadError",
    "ModelConfig",
    "build_model",
    "bptt_gradients",
    "build_task",
    "compare_variants",
    "contribution_norms",
    "contributions",
    "decay_rate",
    "estimate",
    "jacobian_log_norms",
    "lag_profile",
    "lag_view",
    "load_model",
    "load_sequence",
    "loss_gradient_norms",
    "lyapunov_exponents",
    "memory_horizon",
    "rtrl_gradients",
    "spectrum",
    "tbptt_gradients",
    "tbptt_kept_mask",
    "tbptt_schedule",
    "train",
    "twin_runs",
]
