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

from bptt_core.config import ACTIVATIONS, check_choice

from .arguments import check_module, effective_weights
from .cells import NEW_CELLS, DiagonalRecurrence

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
        return self._jacobians(x, prev, wrt_input=False)

    def input_jacobians(self, x: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        """d state_t / d x_t for every t (what a stacked layer passes up): (T, I), (T, S) -> (T, S, I)."""
        return self._jacobians(x, prev, wrt_input=True)

    def _jacobians(self, x: torch.Tensor, prev: torch.Tensor, wrt_input: bool) -> torch.Tensor:
        # The pre-activations are W_ih x + W_hh h: differentiating by x instead of h swaps which
        # weight blocks multiply the same gate slopes (GRU: r gates only the W_hn h term).
        x = x.to(self.W_hh.dtype)
        H = self.hidden_size
        h = prev[:, :H]  # (T, H)
        gi = x @ self.W_ih.T + self.b_ih  # (T, G*H)
        gh = h @ self.W_hh.T + self.b_hh  # (T, G*H)
        W = self.W_ih if wrt_input else self.W_hh  # (G*H, I) or (G*H, H)
        if self.kind == "rnn":
            d = activation_derivative(self.activation, gi + gh)  # (T, H)
            return d[:, :, None] * W[None]  # diag(phi'(a_t)) W
        if self.kind == "gru":
            return self._gru_jacobians(gi, gh, h, W, wrt_input)
        return self._lstm_jacobians(gi + gh, prev[:, H:], W, wrt_input)

    def _gru_jacobians(self, gi, gh, h, W, wrt_input):
        H = self.hidden_size
        Wr, Wz, Wn = W[:H], W[H : 2 * H], W[2 * H :]  # (H, H or I) each
        r = torch.sigmoid(gi[:, :H] + gh[:, :H])  # (T, H)
        z = torch.sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
        m = gh[:, 2 * H :]  # W_hn h + b_hn, the part r gates
        n = torch.tanh(gi[:, 2 * H :] + r * m)
        through_n = Wn[None] if wrt_input else r[:, :, None] * Wn  # W_in x is not gated by r
        dn = (1 - n**2)[:, :, None] * ((m * r * (1 - r))[:, :, None] * Wr + through_n)  # (T, H, H or I)
        J = ((h - n) * z * (1 - z))[:, :, None] * Wz + (1 - z)[:, :, None] * dn
        return J if wrt_input else J + torch.diag_embed(z)

    def _lstm_jacobians(self, a, c, W, wrt_input):
        H = self.hidden_size
        Wi, Wf, Wg, Wo = (W[k * H : (k + 1) * H] for k in range(4))  # (H, H or I) each
        i, f = torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H : 2 * H])  # (T, H)
        g, o = torch.tanh(a[:, 2 * H : 3 * H]), torch.sigmoid(a[:, 3 * H :])
        c_new = f * c + i * g
        tc = torch.tanh(c_new)
        dc_dh = (
            (c * f * (1 - f))[:, :, None] * Wf + (g * i * (1 - i))[:, :, None] * Wi + (i * (1 - g**2))[:, :, None] * Wg
        )
        do_tc = o * (1 - tc**2)  # dh/dc_new, diagonal
        dh_dh = (tc * o * (1 - o))[:, :, None] * Wo + do_tc[:, :, None] * dc_dh
        if wrt_input:
            return torch.cat([dh_dh, dc_dh], 1)  # (T, 2H, I)
        # Assembled by concatenation, not by writing into an empty buffer, so that torch.func.vmap can
        # batch it over a stack of networks (bptt_core.sweeps.sweep).
        top = torch.cat([dh_dh, torch.diag_embed(do_tc * f)], dim=2)  # (T, H, 2H)
        bottom = torch.cat([dc_dh, torch.diag_embed(f)], dim=2)  # (T, H, 2H)
        return torch.cat([top, bottom], dim=1)  # (T, 2H, 2H)


@dataclass
class StackedView:
    """A stack of single-layer views (torch's ``num_layers >= 2``): layer l reads layer l-1's new h_t.

    The state at step t is every layer's state, [s^0_t, s^1_t, ...] (each H, or 2H for an LSTM), so
    the full-state step Jacobian is block lower triangular: layer l's own J^l on the diagonal, and
    below it d s^l_t / d s^k_{t-1} = X^l_t (d h^{l-1}_t / d s^k_{t-1}) for k < l, X^l_t = d s^l_t / d h^{l-1}_t
    the layer's input Jacobian. Dropout between layers is not applied (the model is analysed as in eval).
    """

    layers: list[CellView]

    @property
    def kind(self) -> str:
        return self.layers[0].kind

    @property
    def activation(self) -> str:
        return self.layers[0].activation

    @property
    def input_size(self) -> int:
        return self.layers[0].input_size

    @property
    def hidden_size(self) -> int:
        return self.layers[0].hidden_size

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def state_size(self) -> int:
        return sum(v.state_size for v in self.layers)

    @property
    def W_hh(self) -> torch.Tensor:  # dtype and device probe, like CellView's
        return self.layers[-1].W_hh

    def layer_slice(self, layer: int) -> slice:
        """Where layer ``layer``'s state sits in the full state."""
        start = sum(v.state_size for v in self.layers[:layer])
        return slice(start, start + self.layers[layer].state_size)

    def initial_state(self, h0: torch.Tensor | None, batch: int = 1) -> torch.Tensor:
        """h0: None, the full state (S entries per sequence), or torch's (num_layers, [batch,] H) h0 (c = 0)."""
        if h0 is None:
            return self.W_hh.new_zeros(batch, self.state_size)
        h0 = torch.as_tensor(h0, dtype=self.W_hh.dtype)
        L, H = self.num_layers, self.hidden_size
        if h0.numel() == self.state_size * batch:
            return h0.reshape(batch, self.state_size)
        if h0.numel() == L * H * batch:  # torch's layout (num_layers, batch, H)
            per_layer = h0.reshape(L, batch, H)
            return torch.cat([v.initial_state(per_layer[k], batch) for k, v in enumerate(self.layers)], 1)
        raise ValueError(
            f"h0 must have {self.state_size} entries per sequence (every layer's {self.kind} state) or "
            f"num_layers * hidden_size = {L * H} (torch's h0, shape ({L}, {H})), got shape {tuple(h0.shape)}"
        )

    def step(self, x_t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """One step on a batch: x_t (B, I), state (B, S) -> (B, S)."""
        new, u = [], x_t
        for k, v in enumerate(self.layers):
            s = v.step(u, state[:, self.layer_slice(k)])  # (B, S_k)
            new.append(s)
            u = s[:, : v.hidden_size]
        return torch.cat(new, 1)

    run = CellView.run  # the same loop over its own step and initial_state

    def step_jacobians(self, x: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        """Full-state J_t for every t: x (T, I), prev (T, S) -> (T, S, S), block lower triangular."""
        x = x.to(self.W_hh.dtype)
        T, S = prev.shape
        new = self.step(x, prev)  # (T, S): the steps are independent given prev, so batch them over t
        J = prev.new_zeros(T, S, S)
        u = x
        for k, v in enumerate(self.layers):
            sl, p = self.layer_slice(k), prev[:, self.layer_slice(k)]
            J[:, sl, sl] = v.step_jacobians(u, p)  # (T, S_k, S_k)
            if k:
                below = self.layer_slice(k - 1)
                h_rows = J[:, below.start : below.start + self.hidden_size, : sl.start]  # d h^{k-1}_t / d s^{<k}_{t-1}
                J[:, sl, : sl.start] = v.input_jacobians(u, p) @ h_rows  # (T, S_k, H) @ (T, H, sl.start)
            u = new[:, sl][:, : v.hidden_size]
        return J


def cell_kind(module: nn.Module) -> str:

    if isinstance(module, DiagonalRecurrence):
        return module.kind
    if isinstance(module, nn.LSTM):
        return "lstm"
    if isinstance(module, nn.GRU):
        return "gru"
    if isinstance(module, (nn.RNN, ElmanRNN)):
        return "rnn"
    raise ValueError(
        "the model must be a torch.nn.RNN, LSTM, GRU or a bptt_core ElmanRNN, LRU, MinGRU, MinLSTM or "
        f"SelectiveSSM; got {type(module).__name__}"
    )


def cell_view(module: nn.Module, dtype: torch.dtype = torch.float64):
    """Read a recurrent module (weights detached) in ``dtype``: a :class:`CellView` for one layer, a
    :class:`StackedView` for ``num_layers >= 2``, a :class:`bptt_core.models.cells.DiagonalView` for the
    diagonal cells. ``batch_first`` changes only how the module itself is called: the analyses take
    one sequence, x of shape (T, input_size), either way."""
    kind = cell_kind(module)
    check_module(module)
    if kind not in ("rnn", "lstm", "gru"):
        return module.view(dtype)
    if getattr(module, "bidirectional", False):
        raise ValueError(
            "bidirectional models are not supported: bidirectional must be False (the backward direction's "
            "chain runs in reversed time; analyse each direction as its own unidirectional module)"
        )
    if getattr(module, "proj_size", 0):
        raise ValueError(f"proj_size must be 0 (LSTM without projection), got {module.proj_size}")
    layers = [_layer_view(module, kind, k, dtype) for k in range(getattr(module, "num_layers", 1))]
    return layers[0] if len(layers) == 1 else StackedView(layers)


def _layer_view(module: nn.Module, kind: str, k: int, dtype: torch.dtype) -> CellView:
    p = effective_weights(module, k)  # parametrized, pruned or spectral-normed weights as the forward uses them
    W_ih, W_hh = p[f"weight_ih_l{k}"], p[f"weight_hh_l{k}"]
    zeros = torch.zeros(W_hh.shape[0], dtype=W_hh.dtype)
    b_ih, b_hh = p.get(f"bias_ih_l{k}", zeros), p.get(f"bias_hh_l{k}", zeros)
    act = getattr(module, "nonlinearity", "tanh") if kind == "rnn" else "tanh"
    return CellView(
        kind=kind,
        activation=act,
        input_size=W_ih.shape[1],
        hidden_size=W_hh.shape[1],
        **{k: v.detach().to(dtype) for k, v in dict(W_ih=W_ih, W_hh=W_hh, b_ih=b_ih, b_hh=b_hh).items()},
    )


def make_rnn(
    cell: str, input_size: int, hidden_size: int, activation_name: str = "tanh", num_layers: int = 1
) -> nn.Module:
    """An untrained module of the given kind: nn.LSTM / nn.GRU, ElmanRNN (nn.RNN when stacked) for
    the vanilla cell, and the diagonal cells of :mod:`bptt_core.models.cells`."""

    if num_layers != 1 and cell not in ("rnn", "lstm", "gru"):
        raise ValueError(f"num_layers must be 1 for the {cell} cell (stacking is offered for rnn, lstm, gru)")
    if cell == "lstm":
        return nn.LSTM(input_size, hidden_size, num_layers)
    if cell == "gru":
        return nn.GRU(input_size, hidden_size, num_layers)
    if cell == "rnn" and num_layers > 1:
        if activation_name not in ("tanh", "relu"):
            raise ValueError(
                f"a stacked vanilla RNN is torch's nn.RNN: activation must be tanh or relu, got {activation_name!r}"
            )
        return nn.RNN(input_size, hidden_size, num_layers, nonlinearity=activation_name)
    if cell == "rnn":
        return ElmanRNN(input_size, hidden_size, activation_name)
    if cell in NEW_CELLS:
        return NEW_CELLS[cell](input_size, hidden_size)
    raise ValueError(f"cell must be one of rnn, lstm, gru, {', '.join(NEW_CELLS)}; got {cell!r}")


def recurrent_matrix(view: CellView) -> torch.Tensor:
    """The square H x H recurrent matrix the spectra describe.

    Vanilla: W_hh. Gated cells have one block per gate; the one that carries the state itself is
    the candidate block (LSTM's g, GRU's n), so that is the one shown.
    """
    if isinstance(view, StackedView):
        view = view.layers[-1]  # the top layer's, whose h the readout sees
    H = view.hidden_size
    if view.kind == "lstm":
        return view.W_hh[2 * H : 3 * H]
    if view.kind == "gru":
        return view.W_hh[2 * H :]
    return view.W_hh
