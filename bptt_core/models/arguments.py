"""Checks of what callers hand the public functions: modules, sequences, states, dtypes, masks.

One owner for these rules, so that every public function answers a bad argument with a ValueError
naming it (never a KeyError, TypeError, RuntimeError or NotImplementedError from deep inside torch),
and nothing is silently changed: a complex value is refused rather than losing its imaginary part,
a value that overflows the dtype it will be used in is refused after the conversion.

Modules whose weights are computed rather than stored (``torch.nn.utils.parametrizations``
orthogonal / weight_norm / spectral_norm, ``torch.nn.utils.prune``, the older
``torch.nn.utils.spectral_norm``) are read through their *effective* weights, the tensors their
forward uses: orthogonal RNNs (Arjovsky et al. 2016; Lezcano-Casado & Martinez-Rubio 2019) are
the textbook cure for vanishing and exploding gradients, so they must be readable here.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from .cells import DiagonalRecurrence

# The weights a single-layer torch.nn.RNN / LSTM / GRU (or ElmanRNN) computes with.
LAYER_WEIGHTS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
CHAIN_DTYPES = (torch.float32, torch.float64)  # precisions the chain's running products may use


def check_module(module, name: str = "rnn") -> None:
    """A module with real floating-point parameters that hold values (not on the meta device)."""
    if not isinstance(module, nn.Module):
        raise ValueError(f"{name} must be a torch.nn.Module (RNN, LSTM, GRU ...), got {type(module).__name__}")
    params = list(module.named_parameters())
    if not params:
        raise ValueError(f"{name} has no parameters: expected a recurrent module with weights")
    devices = set()
    for pname, p in params:
        if p.is_meta:
            raise ValueError(
                f"{name} is on the meta device ({pname} has a shape but no values): give it weights first, e.g. "
                f"{name}.to_empty(device='cpu') and an initialisation, or load_state_dict"
            )
        if p.is_complex():
            raise ValueError(
                f"{name} has complex parameters ({pname} is {p.dtype}): the real-valued cells would drop the "
                "imaginary part; expected real floating-point weights"
            )
        if not p.is_floating_point():
            raise ValueError(f"{name}.{pname} has dtype {p.dtype}: expected real floating-point weights")
        devices.add(p.device)
    if len(devices) > 1:
        raise ValueError(f"{name}'s parameters are on several devices ({sorted(map(str, devices))}): expected one")


def _hook_weight(module: nn.Module, wname: str) -> torch.Tensor | None:
    """The weight a forward pre-hook computes (old spectral_norm, pruning), as the forward would."""
    from torch.nn.utils.prune import BasePruningMethod
    from torch.nn.utils.spectral_norm import SpectralNorm

    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, SpectralNorm) and hook.name == wname:
            return hook.compute_weight(module, do_power_iteration=False)  # eval mode's: u, v as stored
        if isinstance(hook, BasePruningMethod) and getattr(hook, "_tensor_name", None) == wname:
            return hook.apply_mask(module)
    return None


def plain_copy(module: nn.Module) -> nn.Module:
    """``module`` itself when its weights are plain parameters, else a copy whose parameters are the
    effective weights (parametrizations, pruning and the old spectral norm folded in), for
    computations that replace a weight by name. ``module`` is left as it was."""
    from torch.nn.utils import parametrize, prune
    from torch.nn.utils.spectral_norm import SpectralNorm

    if isinstance(module, DiagonalRecurrence) or all(n in LAYER_WEIGHTS for n, _ in module.named_parameters()):
        return module  # the diagonal cells' weights are their own parameters (no parametrizations read)
    with torch.no_grad():
        eff = {k: w.detach().clone() for k, w in effective_weights(module).items()}
        hooks = (SpectralNorm, prune.BasePruningMethod)
        for hook in module._forward_pre_hooks.values():  # weights a forward computed are non-leaf: no deepcopy
            if isinstance(hook, hooks):
                name = getattr(hook, "name", None) or hook._tensor_name
                setattr(module, name, getattr(module, name).detach())
        if hasattr(module, "_init_flat_weights"):  # torch.nn.RNN's cache, refreshed by its next forward anyway
            module._init_flat_weights()
        out = copy.deepcopy(module)
    if parametrize.is_parametrized(out):  # its class is a derived one holding the properties: back to the base
        out.__class__ = type(out).__bases__[0]
        del out._modules["parametrizations"]
    for key, hook in list(out._forward_pre_hooks.items()):
        if isinstance(hook, hooks):
            del out._forward_pre_hooks[key]
    for wname, value in eff.items():
        for extra in ("_orig", "_mask", "_u", "_v"):
            out._parameters.pop(wname + extra, None)
            out._buffers.pop(wname + extra, None)
        out._parameters.pop(wname, None)
        out.__dict__.pop(wname, None)
        out.register_parameter(wname, nn.Parameter(value))
    if hasattr(out, "_init_flat_weights"):
        out._init_flat_weights()
    return out


def effective_weights(module: nn.Module, layer: int = 0) -> dict[str, torch.Tensor]:
    """Layer ``layer``'s weights as its forward uses them, by name: plain parameters as they are,
    parametrized ones through ``module.<name>`` (which parametrizations compute), pruned and
    old-style spectral-norm ones through their hooks. Gradients flow to the stored originals."""
    out = {}
    for wname in (w.replace("_l0", f"_l{layer}") for w in LAYER_WEIGHTS):
        w = _hook_weight(module, wname)
        if w is None:
            w = getattr(module, wname, None)
        if isinstance(w, torch.Tensor):
            out[wname] = w
    if f"weight_ih_l{layer}" not in out or f"weight_hh_l{layer}" not in out:
        raise ValueError(
            f"the module has no weight_ih_l{layer} / weight_hh_l{layer} (found {sorted(out)}): expected a "
            "torch.nn.RNN / LSTM / GRU or ElmanRNN"
        )
    return out


def as_real_tensor(name: str, value) -> torch.Tensor:
    """``value`` (tensor, numpy array, nested lists of numbers) as a dense real tensor, unconverted."""
    if value is None or isinstance(value, (str, bytes, dict, set)):
        raise ValueError(f"{name} must be an array of numbers (a tensor or numpy array), got {type(value).__name__}")
    if isinstance(value, np.ndarray) and value.dtype.kind not in "biuf":
        raise ValueError(f"{name} has numpy dtype {value.dtype}: expected real numbers (float, int or bool)")
    try:
        t = torch.as_tensor(value)
    except Exception:
        raise ValueError(
            f"{name} must be an array of numbers (a tensor or numpy array), got {type(value).__name__}"
        ) from None
    if t.is_meta:
        raise ValueError(f"{name} is on the meta device (a shape without values): expected a tensor with values")
    if t.layout != torch.strided:
        raise ValueError(f"{name} is a {t.layout} tensor: expected a dense tensor (call .to_dense())")
    if t.is_complex():
        raise ValueError(
            f"{name} is complex ({t.dtype}): the real-valued cells would drop the imaginary part; expected real numbers"
        )
    if t.is_quantized:
        raise ValueError(f"{name} is a quantized tensor ({t.dtype}): expected real numbers (call .dequantize())")
    return t


def finite_as(name: str, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t`` converted to ``dtype`` (the dtype it will be used in), checked finite after the conversion."""
    out = t.to(dtype)
    if not bool(torch.isfinite(out).all()):
        too_big = bool(torch.isfinite(t.to(torch.float64)).all())
        why = f"values too large for {str(dtype).replace('torch.', '')}" if too_big else "NaN or inf"
        raise ValueError(f"{name} must contain only finite numbers, got {why}")
    return out


def check_initial_state(h0, dtype: torch.dtype = torch.float64) -> torch.Tensor | None:
    """None, or h0 as a real, finite tensor in ``dtype`` (its shape is checked by the cell)."""
    if h0 is None:
        return None
    return finite_as("h0", as_real_tensor("h0", h0), dtype)


def check_chain_dtype(dtype) -> torch.dtype | None:
    """None (the default), torch.float32 or torch.float64: the precision of the chain's products.
    float16/bfloat16 lose up to a decade of the norms over long chains, so they are refused."""
    if dtype is None or (isinstance(dtype, torch.dtype) and dtype in CHAIN_DTYPES):
        return dtype
    raise ValueError(
        f"dtype must be torch.float32 or torch.float64 (the precision of the chain's products), got {dtype!r}"
    )
