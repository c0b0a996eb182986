"""Recurrent cells, their activations, and one view of any supported module for the analyses.

The vanilla cell is the Elman network h_t = phi(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
(Elman 1990); torch's own ``nn.RNN`` offers only tanh and ReLU, so :class:`ElmanRNN` adds the
sigmoid and the linear (identity) activations with the same parameter names, which keeps
state_dicts interchangeable. LSTM (Hochreiter & Schmidhuber 1997) and GRU (Cho et al. 2014) are
torch's own modules.

:class:`CellView` reads the weights of any single-layer ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` or
``ElmanRNN`` and gives the analyses one interface: run the state forward, and the exact step
Jacobians J_t = d state_t / d state_{t-1}, hand-derived and batched over time (the tests check
every one against autograd in float64). The state of an LSTM is (h, c), of size 2H.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .arguments import check_module, effective_weights
from .config import ACTIVATIONS, check_choice

# Bound gamma on |phi'| (Pascanu, Mikolov & Bengio 2013): sigma_1 < 1/gamma suffices for vanishing.
ACTIVATION_GAMMA = {"tanh": 1.0, "relu": 1.0, "sigmoid": 0.25, "linear": 1.0}


def activation(name: str, a: torch.Tensor) -> torch.Tensor:
    if name == "tanh":
        return torch.tanh(a)
    if name == "relu":
        return torch.relu(a)
    if name == "sigmoid":
        return torch.sigmoid(a)
    if name == "linear":
        return a
    raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {name!r}")


def activation_derivative(name: str, a: torch.Tensor) -> torch.Tensor:
    """phi'(a), computed so that saturated units keep their tiny slope instead of rounding to 0."""
    if name == "tanh":
        return 1.0 / torch.cosh(a) ** 2  # sech^2: 1 - tanh^2 would round to 0 for |a| > ~19
    if name == "relu":
        return (a > 0).to(a.dtype)
    if name == "sigmoid":
        s = torch.sigmoid(a)
        return s * torch.sigmoid(-a)  # s(1 - s) without cancellation
    if name == "linear":
        return torch.ones_like(a)
    raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {name!r}")


class ElmanRNN(nn.Module):
    """Single-layer vanilla RNN with any activation; ``nn.RNN``'s parameter names and call shape."""

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh"):
        super().__init__()
        check_choice("activation", nonlinearity, ACTIVATIONS)
        self.input_size, self.hidden_size, self.nonlinearity = input_size, hidden_size, nonlinearity
        self.num_layers, self.bidirectional, self.batch_first = 1, False, False
        self.weight_ih_l0 = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh_l0 = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih_l0 = nn.Parameter(torch.empty(hidden_size))
        self.bias_hh_l0 = nn.Parameter(torch.empty(hidden_size))
        bound = 1.0 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)  # torch's nn.RNN default

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None):
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(1)  # (T, 1, I)
        T, B, _ = x.shape
        h = x.new_zeros(B, self.hidden_size) if h0 is None else h0.reshape(B, self.hidden_size)
        pre_in = x @ self.weight_ih_l0.T + self.bias_ih_l0  # (T, B, H), all input terms at once
        outs = []
        for t in range(T):
            h = activation(self.nonlinearity, pre_in[t] + h @ self.weight_hh_l0.T + self.bias_hh_l0)
            outs.append(h)
        out = torch.stack(outs)  # (T, B, H)
        if unbatched:
            return out[:, 0], out[-1:, 0]
        return out, out[-1:]


@dataclass
class CellView:
    """The weights of one single-layer recurrent module, in the dtype the analyses compute in."""

    kind: str  # rnn | lstm | gru
    activation: str  # vanilla only; gated cells report "tanh"
    input_size: int
    hidden_size: int
    W_ih: torch.Tensor  # (G*H, I), G = 1, 4 (i, f, g, o) or 3 (r, z, n)
    W_hh: torch.Tensor  # (G*H, H)
    b_ih: torch.Tensor  # (G*H,)
    b_hh: torch.Tensor  # (G*H,)

    @property
    def state_size(self) -> int:
        return 2 * self.hidden_size if self.kind == "lstm" else self.hidden_size

    # -- forward -----------------------------------------------------------------------------
    def step(self, x_t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """One step on a batch: x_t (B, I), state (B, S) -> (B, S)."""
        H = self.hidden_size
        h = state[:, :H]
        gi = x_t @ self.W_ih.T + self.b_ih  # (B, G*H)
        gh = h @ self.W_hh.T + self.b_hh  # (B, G*H)
        if self.kind == "rnn":
            return activation(self.activation, gi + gh)
        if self.kind == "gru":
            r = torch.sigmoid(gi[:, :H] + gh[:, :H])
            z = torch.sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
            n = torch.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
            return (1 - z) * n + z * h
        c = state[:, H:]
        a = gi + gh
        i, f = torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H : 2 * H])
        g, o = torch.tanh(a[:, 2 * H : 3 * H]), torch.sigmoid(a[:, 3 * H :])
        c_new = f * c + i * g
        return torch.cat([o * torch.tanh(c_new), c_new], dim=1)

    def initial_state(self, h0: torch.Tensor | None, batch: int = 1) -> torch.Tensor:
        S = self.state_size
        if h0 is None:
            return self.W_hh.new_zeros(batch, S)
        h0 = torch.as_tensor(h0, dtype=self.W_hh.dtype)
        if h0.numel() == S * batch:
            return h0.reshape(batch, S)
        if self.kind == "lstm" and h0.numel() == self.hidden_size * batch:  # h given, c = 0
            return torch.cat([h0.reshape(batch, -1), h0.new_zeros(batch, self.hidden_size)], 1)
        raise ValueError(f"h0 must have {S} entries per sequence (the {self.kind} state), got shape {tuple(h0.shape)}")

    def run(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """States for a sequence: x (T, I) -> (T + 1, S), row 0 the initial state."""
        x = x.to(self.W_hh.dtype)
        state = self.initial_state(h0)  # (1, S)
        states = [state[0]]
        for t in range(x.shape[0]):
            state = self.step(x[t : t + 1], state)
            states.append(state[0])
        return torch.stack(states)

    # -- exact step Jacobians ----------------------------------------------------------------
    def step_jacobians(self, x: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        """J_t = d state_t / d state_{t-1} for every t: x (T, I), prev (T, S) -> (T, S, S)."""
        x = x.to(self.W_hh.dtype)
        H = self.hidden_size
        h = prev[:, :H]  # (T, H)
        gi = x @ self.W_ih.T + self.b_ih  # (T, G*H)
        gh = h @ self.W_hh.T + self.b_hh  # (T, G*H)
        if self.kind == "rnn":
            d = activation_derivative(self.activation, gi + gh)  # (T, H)
            return d[:, :, None] * self.W_hh[None]  # diag(phi'(a_t)) W_hh
        if self.kind == "gru":
            return self._gru_jacobians(gi, gh, h)
        return self._lstm_jacobians(gi + gh, prev[:, H:])

    def _gru_jacobians(self, gi, gh, h):
        H = self.hidden_size
        Wr, Wz, Wn = self.W_hh[:H], self.W_hh[H : 2 * H], self.W_hh[2 * H :]  # (H, H) each
        r = torch.sigmoid(gi[:, :H] + gh[:, :H])  # (T, H)
        z = torch.sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
        m = gh[:, 2 * H :]  # W_hn h + b_hn, the part r gates
        n = torch.tanh(gi[:, 2 * H :] + r * m)
        dn = (1 - n**2)[:, :, None] * ((m * r * (1 - r))[:, :, None] * Wr + r[:, :, None] * Wn)  # (T, H, H)
        J = ((h - n) * z * (1 - z))[:, :, None] * Wz + (1 - z)[:, :, None] * dn
        return J + torch.diag_embed(z)

    def _lstm_jacobians(self, a, c):
        H = self.hidden_size
        Wi, Wf, Wg, Wo = (self.W_hh[k * H : (k + 1) * H] for k in range(4))  # (H, H) each
        i, f = torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H : 2 * H])  # (T, H)
        g, o = torch.tanh(a[:, 2 * H : 3 * H]), torch.sigmoid(a[:, 3 * H :])
        c_new = f * c + i * g
        tc = torch.tanh(c_new)
        dc_dh = (
            (c * f * (1 - f))[:, :, None] * Wf + (g * i * (1 - i))[:, :, None] * Wi + (i * (1 - g**2))[:, :, None] * Wg
        )
        do_tc = o * (1 - tc**2)  # dh/dc_new, diagonal
        dh_dh = (tc * o * (1 - o))[:, :, None] * Wo + do_tc[:, :, None] * dc_dh
        # Assembled by concatenation, not by writing into an empty buffer, so that torch.func.vmap can
        # batch it over a stack of networks (bptt_core.sweep).
        top = torch.cat([dh_dh, torch.diag_embed(do_tc * f)], dim=2)  # (T, H, 2H)
        bottom = torch.cat([dc_dh, torch.diag_embed(f)], dim=2)  # (T, H, 2H)
        return torch.cat([top, bottom], dim=1)  # (T, 2H, 2H)


def cell_kind(module: nn.Module) -> str:
    if isinstance(module, nn.LSTM):
        return "lstm"
    if isinstance(module, nn.GRU):
        return "gru"
    if isinstance(module, (nn.RNN, ElmanRNN)):
        return "rnn"
    raise ValueError(f"the model must be a torch.nn.RNN, LSTM, GRU or bptt_core ElmanRNN; got {type(module).__name__}")


def cell_view(module: nn.Module, dtype: torch.dtype = torch.float64) -> CellView:
    """Read a single-layer, unidirectional, time-major recurrent module (weights detached)."""
    kind = cell_kind(module)
    check_module(module)
    if getattr(module, "num_layers", 1) != 1:
        raise ValueError(f"num_layers must be 1, got {module.num_layers}")
    if getattr(module, "bidirectional", False):
        raise ValueError("bidirectional models are not supported: bidirectional must be False")
    if getattr(module, "batch_first", False):
        raise ValueError("batch_first must be False: sequences are (T, input_size)")
    if getattr(module, "proj_size", 0):
        raise ValueError(f"proj_size must be 0 (LSTM without projection), got {module.proj_size}")
    p = effective_weights(module)  # parametrized, pruned or spectral-normed weights as the forward uses them
    W_ih, W_hh = p["weight_ih_l0"], p["weight_hh_l0"]
    zeros = torch.zeros(W_hh.shape[0], dtype=W_hh.dtype)
    b_ih, b_hh = p.get("bias_ih_l0", zeros), p.get("bias_hh_l0", zeros)
    act = getattr(module, "nonlinearity", "tanh") if kind == "rnn" else "tanh"
    return CellView(
        kind=kind,
        activation=act,
        input_size=W_ih.shape[1],
        hidden_size=W_hh.shape[1],
        **{k: v.detach().to(dtype) for k, v in dict(W_ih=W_ih, W_hh=W_hh, b_ih=b_ih, b_hh=b_hh).items()},
    )


def make_rnn(cell: str, input_size: int, hidden_size: int, activation_name: str = "tanh") -> nn.Module:
    """An untrained module of the given kind: nn.LSTM / nn.GRU, and ElmanRNN for the vanilla cell."""
    if cell == "lstm":
        return nn.LSTM(input_size, hidden_size)
    if cell == "gru":
        return nn.GRU(input_size, hidden_size)
    if cell == "rnn":
        return ElmanRNN(input_size, hidden_size, activation_name)
    raise ValueError(f"cell must be one of rnn, lstm, gru; got {cell!r}")


def recurrent_matrix(view: CellView) -> torch.Tensor:
    """The square H x H recurrent matrix the spectra describe.

    Vanilla: W_hh. Gated cells have one block per gate; the one that carries the state itself is
    the candidate block (LSTM's g, GRU's n), so that is the one shown.
    """
    H = view.hidden_size
    if view.kind == "lstm":
        return view.W_hh[2 * H : 3 * H]
    if view.kind == "gru":
        return view.W_hh[2 * H :]
    return view.W_hh
