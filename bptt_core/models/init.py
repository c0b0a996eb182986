"""Seeded initialisations of recurrent (and input) weights.

- ``pytorch``: torch's default U(-1/sqrt(H), 1/sqrt(H)) on every parameter, times the gain.
- ``xavier_uniform`` / ``xavier_normal``: Glorot & Bengio (2010).
- ``kaiming``: He et al. (2015), normal, fan-in, gain-scaled.
- ``orthogonal``: Saxe, McClelland & Ganguli (2013); every singular value equals the gain.
- ``identity``: the IRNN of Le, Jaitly & Hinton (2015): W_hh = gain * I, inputs N(0, 0.001^2).
- ``gaussian``: N(0, g^2/H); by the circular law its eigenvalues fill the disk of radius g.
- ``sparse``: Pascanu, Mikolov & Bengio (2013) / Sutskever et al. (2013): 15 non-zero Gaussian
  weights per unit, then rescaled to spectral radius 0.95 (or the ``spectral_radius`` asked for).

Gated cells get the scheme on each H x H gate block. Biases are zero except for ``pytorch``.
``spectral_radius > 0`` rescales the recurrent matrix (every gate block) to exactly that rho.

The diagonal cells (:mod:`bptt_core.models.cells`) have no recurrent matrix: their recurrence is the
diagonal a(x_t), so ``spectral_radius`` does not apply to them (refused) and the scheme and gain
act on their input projections only (every (H, I) ``weight_*``, as ``_input_block`` does for W_ih;
biases as above). The selective SSM keeps its structural A_log and D and draws b_delta by Mamba's
rule (seeded). The LRU ignores scheme and gain: it always takes its own ring initialisation
(|lambda| between r_min and r_max, see :class:`bptt_core.models.cells.LRU`) and the paper's Gaussian B, C, D,
all from the seed.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bptt_core.config import INITS, MAX_GAIN, check_choice, check_float

from .recurrent import cell_kind

SPARSE_NONZEROS = 15  # per unit, Pascanu et al. 2013
SPARSE_DEFAULT_RHO = 0.95


def _square(scheme: str, n: int, gain: float, gen: torch.Generator) -> torch.Tensor:
    """One (n, n) recurrent block."""
    if scheme == "identity":
        return gain * torch.eye(n)
    if scheme == "sparse":
        return _sparse(n, n, gen)
    return _rect(scheme, n, n, gain, gen)


def _rect(scheme: str, rows: int, cols: int, gain: float, gen: torch.Generator) -> torch.Tensor:
    """One (rows, cols) block for the schemes defined on any shape. cols is the fan-in."""
    if scheme == "pytorch":
        return gain * (torch.rand(rows, cols, generator=gen) * 2 - 1) / math.sqrt(rows)
    if scheme == "xavier_uniform":
        a = gain * math.sqrt(6.0 / (rows + cols))
        return (torch.rand(rows, cols, generator=gen) * 2 - 1) * a
    if scheme == "xavier_normal":
        return torch.randn(rows, cols, generator=gen) * gain * math.sqrt(2.0 / (rows + cols))
    if scheme == "kaiming":
        return torch.randn(rows, cols, generator=gen) * gain / math.sqrt(cols)
    if scheme == "gaussian":
        return torch.randn(rows, cols, generator=gen) * gain / math.sqrt(cols)
    if scheme == "orthogonal":
        a = torch.randn(max(rows, cols), min(rows, cols), generator=gen, dtype=torch.float64)
        q, r = torch.linalg.qr(a)
        q = q * torch.sign(torch.diagonal(r))  # Haar-distributed (Mezzadri 2007)
        q = q if rows >= cols else q.T
        return (gain * q).to(torch.float32)
    raise ValueError(f"init must be one of {', '.join(INITS)}; got {scheme!r}")


def _sparse(rows: int, cols: int, gen: torch.Generator) -> torch.Tensor:
    w = torch.zeros(rows, cols)
    k = min(SPARSE_NONZEROS, cols)
    for r in range(rows):
        idx = torch.randperm(cols, generator=gen)[:k]
        w[r, idx] = torch.randn(k, generator=gen)
    return w


def spectral_radius(w: torch.Tensor) -> float:
    return float(torch.linalg.eigvals(w.detach().to(torch.float64)).abs().max())


def rescale_to_radius(w: torch.Tensor, rho: float) -> torch.Tensor:
    current = spectral_radius(w)
    if current == 0.0:
        raise ValueError("spectral_radius: cannot rescale a recurrent matrix whose spectral radius is 0")
    return w * (rho / current)


def _input_block(scheme: str, rows: int, cols: int, gain: float, gen: torch.Generator) -> torch.Tensor:
    if scheme == "identity":
        return torch.randn(rows, cols, generator=gen) * 0.001  # Le et al. 2015
    if scheme == "sparse":
        return torch.randn(rows, cols, generator=gen) / math.sqrt(cols)
    return _rect(scheme, rows, cols, 1.0 if scheme == "gaussian" else gain, gen)


@torch.no_grad()
def initialise(
    module: nn.Module, scheme: str, gain: float = 1.0, spectral_radius_target: float = 0.0, seed: int = 0
) -> nn.Module:
    """Initialise ``module`` in place (and return it); same seed, same weights."""
    check_choice("init", scheme, INITS)
    check_float("gain", gain, 0.0, MAX_GAIN, lo_open=True)
    check_float("spectral_radius", spectral_radius_target, 0.0, MAX_GAIN)
    kind = cell_kind(module)
    if kind not in ("rnn", "lstm", "gru"):
        return _initialise_diagonal(module, scheme, gain, spectral_radius_target, seed)
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    gen = torch.Generator().manual_seed(int(seed))
    p = dict(module.named_parameters())
    rho = spectral_radius_target or (SPARSE_DEFAULT_RHO if scheme == "sparse" else 0.0)
    for k in range(getattr(module, "num_layers", 1)):  # a stack: every layer by the same scheme, in order
        W_ih, W_hh = p[f"weight_ih_l{k}"], p[f"weight_hh_l{k}"]
        H, I = W_hh.shape[1], W_ih.shape[1]
        hh, ih = [], []
        for _ in range(gates):
            block = _square(scheme, H, gain, gen)  # (H, H)
            if rho > 0:
                block = rescale_to_radius(block, rho)
            hh.append(block)
            ih.append(_input_block(scheme, H, I, gain, gen))  # (H, I)
        W_hh.copy_(torch.cat(hh))
        W_ih.copy_(torch.cat(ih))
        for name in (f"bias_ih_l{k}", f"bias_hh_l{k}"):
            if name in p:
                if scheme == "pytorch":
                    p[name].copy_((torch.rand(p[name].shape, generator=gen) * 2 - 1) / math.sqrt(H))
                else:
                    p[name].zero_()
    return module


def _initialise_diagonal(module: nn.Module, scheme: str, gain: float, rho: float, seed: int) -> nn.Module:
    if rho > 0:
        raise ValueError(
            f"spectral_radius must be 0 for the {module.kind} cell: its recurrence is the diagonal a(x_t), there is "
            "no recurrent matrix to rescale" + (" (set the ring with r_min / r_max)" if module.kind == "lru" else "")
        )
    gen = torch.Generator().manual_seed(int(seed))
    H, I = module.hidden_size, module.input_size
    if module.kind == "lru":
        module.ring_init_(gen)
        for name in ("B_re", "B_im"):
            getattr(module, name).copy_(torch.randn(H, I, generator=gen) / math.sqrt(2 * I))
        for name in ("C_re", "C_im"):
            getattr(module, name).copy_(torch.randn(H, H, generator=gen) / math.sqrt(H))
        module.D.copy_(torch.randn(H, I, generator=gen) / math.sqrt(I))
        return module
    for name, p in module.named_parameters():
        if name.startswith("weight_"):
            p.copy_(_input_block(scheme, H, I, gain, gen))
        elif name.startswith("bias_") and name != "bias_delta":
            p.copy_((torch.rand(H, generator=gen) * 2 - 1) / math.sqrt(I) if scheme == "pytorch" else torch.zeros(H))
    if module.kind == "ssm":
        module.reset_delta_bias_(gen)
    return module
