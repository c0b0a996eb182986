"""Autograd references for the Jacobian engine: the torch module's own states and steps, d state_t / d
state_s through them, and the matrix of log10 norms in float64. They never use ``CellView``, so a mistake in
a hand-derived Jacobian cannot cancel against the same mistake in the reference."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from bptt_core import ElmanRNN
from tests.helpers.cells import jacobian_through


def is_lstm(m):
    return isinstance(m, nn.LSTM)


def module_step(m, x_t, state):
    """One step of the torch module itself: x_t (I,), state (S,) -> (S,) (LSTM: (h, c))."""
    H = m.hidden_size
    if is_lstm(m):
        _, (h, c) = m(x_t[None], (state[:H].reshape(1, H), state[H:].reshape(1, H)))
        return torch.cat([h.reshape(H), c.reshape(H)])
    _, h = m(x_t[None], state.reshape(1, H))
    return h.reshape(H)


def module_states(m, x, h0=None):
    """(T + 1, S) states by the torch module, row 0 the initial state."""
    S = 2 * m.hidden_size if is_lstm(m) else m.hidden_size
    state = torch.zeros(S, dtype=x.dtype) if h0 is None else h0
    out = [state]
    with torch.no_grad():
        for t in range(x.shape[0]):
            state = module_step(m, x[t], state)
            out.append(state)
    return torch.stack(out)


def autograd_multi_step(m, x, states, t, s, rows: slice, cols: slice):
    """d state_t[rows] / d state_s[cols] by autograd through the module run from s to t.

    0-indexed as in docs/design.md: state_t is the state after x[t] (states[t + 1]); the other entries
    of state_s (LSTM: c_s for block 'h') are held fixed.
    """
    return jacobian_through(module_step, m, x, states, t, s, rows, cols)


def reference_L(m, x, norm, block="h", h0=None):
    H = m.hidden_size
    sl = slice(H, 2 * H) if block == "c" else slice(0, H)
    states = module_states(m, x, h0)
    T = x.shape[0]
    L = np.full((T, T), np.nan)
    for t in range(T):
        for s in range(t + 1):
            J = autograd_multi_step(m, x, states, t, s, sl, sl)
            n = torch.linalg.matrix_norm(J, ord=norm).item()
            L[t, s] = math.log10(n) if n > 0 else -math.inf  # every ReLU unit off: exactly 0
    return L


def assert_L_close(L, ref, atol):
    assert L.shape == ref.shape and L.dtype == np.float64
    np.testing.assert_array_equal(np.isnan(L), np.isnan(ref))
    assert np.isnan(L[np.triu_indices(L.shape[0], 1)]).all()
    np.testing.assert_allclose(L[~np.isnan(ref)], ref[~np.isnan(ref)], rtol=0, atol=atol)


def active_relu(H, a, dtype):
    """ReLU with W_hh = a I and strictly positive drive: every unit stays on, J_t = a I."""
    m = ElmanRNN(2, H, "relu").to(torch.float64)  # a exactly, then rounded once to dtype
    with torch.no_grad():
        m.weight_hh_l0.copy_(a * torch.eye(H, dtype=torch.float64))
        m.weight_ih_l0.uniform_(0.1, 1.0)
        m.bias_ih_l0.fill_(0.1)
        m.bias_hh_l0.fill_(0.05)
    return m.to(dtype)
