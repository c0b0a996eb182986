"""Diagonal recurrences: the linear recurrent unit, minGRU / minLSTM and a selective state space.

Each cell here updates its state elementwise, h_t = a_t * h_{t-1} + b_t, with a_t and b_t functions
of the input x_t alone, so its step Jacobian d h_t / d h_{t-1} = diag(a_t) is diagonal (a 2 x 2
rotation-and-scaling block per unit for the complex LRU) and the gradient-flow matrix follows from
cumulative sums of log |a_t| (:func:`bptt_core.flow.jacobians.diagonal_log_norms`) instead of the dense
chain of products.

- :class:`LRU`, Orvieto et al. 2023, "Resurrecting recurrent neural networks for long sequences":
  h_t = lambda * h_{t-1} + gamma * (B x_t), y_t = Re(C h_t) + D x_t, with complex
  lambda_j = exp(-exp(nu_j) + i exp(theta_j)) and the normalisation gamma_j = exp(gamma_log_j),
  initialised to sqrt(1 - |lambda_j|^2). "Ring" initialisation: |lambda_j| uniform on the ring
  r_min <= |lambda| <= r_max (|lambda|^2 drawn uniformly between r_min^2 and r_max^2), phase uniform
  in [0, max_phase]. The complex state enters every norm, spectrum, h0 and h_n as the real vector
  (Re h, Im h) of length 2H; then d h_t / d h_s = diag(lambda)^(t-s), whatever the input.
- :class:`MinGRU`, :class:`MinLSTM`, Feng et al. 2024, "Were RNNs all we needed?":
  minGRU: z_t = sigmoid(W_z x_t + b_z), htilde_t = W_h x_t + b_h, h_t = (1 - z_t) h_{t-1} + z_t htilde_t.
  minLSTM: f_t = sigmoid(W_f x_t + b_f), i_t = sigmoid(W_i x_t + b_i), htilde_t = W_h x_t + b_h,
  f'_t = f_t / (f_t + i_t), i'_t = i_t / (f_t + i_t), h_t = f'_t h_{t-1} + i'_t htilde_t.
  ``scan="sequential"`` (default) runs the loop; ``scan="parallel"`` the log-space parallel scan
  (Heinsen 2023): with A_t = sum_{k<=t} log a_k, h_t = exp(A_t) (h_0 + sum_{k<=t} exp(-A_k) b_k), the
  sum taken by ``logcumsumexp`` over the positive and the negative parts of b separately.
- :class:`SelectiveSSM`, a selective diagonal state space in the style of Mamba's S6 (Gu & Dao
  2023, "Mamba: linear-time sequence modeling with selective state spaces"), one state per channel
  (Mamba's N = 1), H channels:
  Delta_t = softplus(W_delta x_t + b_delta)    (input-dependent step, one per channel)
  u_t = W_u x_t,  B_t = W_B x_t + b_B,  C_t = W_C x_t + b_C
  h_t = exp(Delta_t * A) * h_{t-1} + Delta_t * B_t * u_t,   A = -exp(A_log) < 0  (zero-order hold of A)
  y_t = C_t * h_t + D * u_t.
  A_log starts at log(1 + j mod 16) (S4D-real's A_n = -(n + 1) for 16 state sizes, spread over the
  channels) and b_delta at softplus^-1 of steps log-uniform in [0.001, 0.1], as Mamba does; so the
  Jacobian diag(exp(Delta_t A)) depends on the input through Delta_t: selectivity.

All four take and return what ``torch.nn.GRU`` does: ``module(x, h0) -> (output, h_n)`` with x
(T, input_size) or (T, batch, input_size), h0 (1, S) or (1, batch, S) or None, output (T, [batch,]
hidden_size) and h_n (1, [batch,] S), S the real state size (2H for the LRU, H otherwise).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bptt_core.config import check_choice, check_float, check_int

SCANS = ("sequential", "parallel")
MAX_SIZE = 10**6


class DiagonalRecurrence(nn.Module):
    """h_t = a(x_t) * h_{t-1} + b(x_t) elementwise; subclasses give a, b and the output map."""

    kind = ""  # the config.CELLS name
    complex_state = False

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size = check_int("input_size", input_size, 1, MAX_SIZE)
        self.hidden_size = check_int("hidden_size", hidden_size, 1, MAX_SIZE)
        self.num_layers, self.bidirectional, self.batch_first = 1, False, False

    @property
    def state_size(self) -> int:
        return 2 * self.hidden_size if self.complex_state else self.hidden_size

    # -- what a subclass defines ---------------------------------------------------------------------
    def coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """a_t and b_t for x (..., I): each (..., H), complex for the LRU."""
        raise NotImplementedError

    def output(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """y_t from x_t (..., I) and h_t (..., H) (complex for the LRU): (..., H)."""
        return h

    # -- the real form of the state -------------------------------------------------------------------
    def to_state(self, h: torch.Tensor) -> torch.Tensor:
        return torch.cat([h.real, h.imag], -1) if self.complex_state else h

    def from_state(self, s: torch.Tensor) -> torch.Tensor:
        H = self.hidden_size
        return torch.complex(s[..., :H], s[..., H:]) if self.complex_state else s

    # -- torch.nn.GRU's calling convention --------------------------------------------------------------
    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None):
        unbatched = x.dim() == 2
        if x.dim() not in (2, 3) or x.shape[-1] != self.input_size:
            raise ValueError(
                f"x must have shape (T, input_size) or (T, batch, input_size) with input_size={self.input_size}, "
                f"got {tuple(x.shape)}"
            )
        if unbatched:
            x = x.unsqueeze(1)  # (T, 1, I)
        B = x.shape[1]
        dtype = next(self.parameters()).dtype
        x = x.to(dtype)
        if h0 is None:
            s0 = x.new_zeros(B, self.state_size)
        else:
            if h0.numel() != B * self.state_size:
                raise ValueError(
                    f"h0 must have shape (1, {self.state_size}) or (1, batch, {self.state_size}) "
                    f"(the real state), got {tuple(h0.shape)}"
                )
            s0 = h0.reshape(B, self.state_size).to(dtype)
        a, b = self.coefficients(x)  # (T, B, H) each
        hs = self.scan_states(a, b, self.from_state(s0))  # (T, B, H)
        out = self.output(x, hs)  # (T, B, H)
        h_n = self.to_state(hs[-1:])  # (1, B, S)
        if unbatched:
            return out[:, 0], h_n[:, 0]
        return out, h_n

    def scan_states(self, a: torch.Tensor, b: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        hs = []
        for t in range(a.shape[0]):
            h = a[t] * h + b[t]
            hs.append(h)
        return torch.stack(hs)

    def view(self, dtype: torch.dtype = torch.float64) -> DiagonalView:
        return DiagonalView(self, dtype)


def parallel_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """Every h_t of h_t = a_t h_{t-1} + b_t (a_t > 0) at once, in log space: (T, B, H).

    h_t = exp(A_t) (h_0 + sum_{k<=t} exp(-A_k) b_k), A_t = sum_{k<=t} log a_k; the sum is two
    ``logcumsumexp`` (positive and negative parts of b), so nothing overflows.
    """
    A = torch.cumsum(torch.log(a), 0)  # (T, B, H)
    # An absent term is a finite sentinel, not -inf: exp(sentinel) is exactly 0 in float64 and, unlike
    # -inf, keeps logcumsumexp's gradient finite. Genuine entries are >= log(tiniest float) > -800.
    absent = torch.full_like(b, -1e5)
    safe_mag = torch.log(torch.where(b == 0, 1.0, b.abs())) - A  # (T, B, H)
    pos = torch.logcumsumexp(torch.where(b > 0, safe_mag, absent), 0)
    neg = torch.logcumsumexp(torch.where(b < 0, safe_mag, absent), 0)
    return torch.exp(A) * h0 + torch.exp(A + pos) - torch.exp(A + neg)


class _ScanOption(DiagonalRecurrence):
    def __init__(self, input_size: int, hidden_size: int, scan: str = "sequential"):
        super().__init__(input_size, hidden_size)
        self.scan = check_choice("scan", scan, SCANS)

    def scan_states(self, a, b, h):
        if self.scan == "parallel":
            return parallel_scan(a, b, h)
        return super().scan_states(a, b, h)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, scan={self.scan!r}"


def _linear_params(module: nn.Module, names: list[str], input_size: int, hidden_size: int) -> None:
    bound = 1.0 / math.sqrt(input_size)  # nn.Linear's default, U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    for n in names:
        setattr(module, f"weight_{n}", nn.Parameter(torch.empty(hidden_size, input_size).uniform_(-bound, bound)))
        setattr(module, f"bias_{n}", nn.Parameter(torch.empty(hidden_size).uniform_(-bound, bound)))


class MinGRU(_ScanOption):
    """minGRU (Feng et al. 2024): h_t = (1 - z_t) h_{t-1} + z_t htilde_t, gates from x_t alone."""

    kind = "mingru"
    recurrence_params = ("weight_z", "bias_z")  # what a_t = 1 - z_t depends on

    def __init__(self, input_size: int, hidden_size: int, scan: str = "sequential"):
        super().__init__(input_size, hidden_size, scan)
        _linear_params(self, ["z", "h"], self.input_size, self.hidden_size)

    def coefficients(self, x):
        z = torch.sigmoid(F.linear(x, self.weight_z, self.bias_z))  # (..., H)
        return 1 - z, z * F.linear(x, self.weight_h, self.bias_h)


class MinLSTM(_ScanOption):
    """minLSTM (Feng et al. 2024): h_t = f'_t h_{t-1} + i'_t htilde_t with f' + i' = 1."""

    kind = "minlstm"
    recurrence_params = ("weight_f", "bias_f", "weight_i", "bias_i")

    def __init__(self, input_size: int, hidden_size: int, scan: str = "sequential"):
        super().__init__(input_size, hidden_size, scan)
        _linear_params(self, ["f", "i", "h"], self.input_size, self.hidden_size)

    def coefficients(self, x):
        f = torch.sigmoid(F.linear(x, self.weight_f, self.bias_f))  # (..., H)
        i = torch.sigmoid(F.linear(x, self.weight_i, self.bias_i))
        total = f + i
        return f / total, (i / total) * F.linear(x, self.weight_h, self.bias_h)


class LRU(DiagonalRecurrence):
    """Linear recurrent unit (Orvieto et al. 2023) with the paper's parameters and ring initialisation."""

    kind = "lru"
    complex_state = True
    recurrence_params = ("nu_log", "theta_log")  # lambda

    def __init__(
        self, input_size: int, hidden_size: int, r_min: float = 0.0, r_max: float = 1.0, max_phase: float = 2 * math.pi
    ):
        super().__init__(input_size, hidden_size)
        self.r_max = check_float("r_max", r_max, 0.0, 1.0, lo_open=True)
        self.r_min = check_float("r_min", r_min, 0.0, self.r_max)
        if self.r_min >= self.r_max:
            raise ValueError(f"r_min must be below r_max={self.r_max}, got {r_min}")
        self.max_phase = check_float("max_phase", max_phase, 0.0, 2 * math.pi, lo_open=True)
        H, I = self.hidden_size, self.input_size
        self.nu_log = nn.Parameter(torch.empty(H))
        self.theta_log = nn.Parameter(torch.empty(H))
        self.gamma_log = nn.Parameter(torch.empty(H))
        self.B_re = nn.Parameter(torch.randn(H, I) / math.sqrt(2 * I))
        self.B_im = nn.Parameter(torch.randn(H, I) / math.sqrt(2 * I))
        self.C_re = nn.Parameter(torch.randn(H, H) / math.sqrt(H))
        self.C_im = nn.Parameter(torch.randn(H, H) / math.sqrt(H))
        self.D = nn.Parameter(torch.randn(H, I) / math.sqrt(I))
        self.ring_init_()

    @torch.no_grad()
    def ring_init_(self, generator: torch.Generator | None = None) -> LRU:
        """|lambda|^2 uniform in [r_min^2, r_max^2], phase uniform in [0, max_phase], gamma = sqrt(1 - |lambda|^2)."""
        H = self.hidden_size
        u1 = torch.rand(H, dtype=torch.float64, generator=generator).clamp(1e-12, 1 - 1e-12)
        u2 = torch.rand(H, dtype=torch.float64, generator=generator).clamp_min(1e-12)
        nu = -0.5 * torch.log(u1 * (self.r_max**2 - self.r_min**2) + self.r_min**2)  # -log |lambda| > 0
        self.nu_log.copy_(torch.log(nu.clamp_min(1e-300)))
        self.theta_log.copy_(torch.log(self.max_phase * u2))
        self.gamma_log.copy_(0.5 * torch.log1p(-torch.exp(-2 * nu)))  # log sqrt(1 - |lambda|^2)
        return self

    def eigenvalues(self) -> torch.Tensor:
        """lambda (H,) complex."""
        return torch.exp(torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log)))

    def coefficients(self, x):
        lam = self.eigenvalues()  # (H,)
        Bx = torch.complex(F.linear(x, self.B_re), F.linear(x, self.B_im))  # (..., H)
        return lam.expand_as(Bx), torch.exp(self.gamma_log) * Bx

    def output(self, x, h):
        # Re(C h) = C_re Re h - C_im Im h
        return F.linear(h.real, self.C_re) - F.linear(h.imag, self.C_im) + F.linear(x, self.D)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, r_min={self.r_min}, r_max={self.r_max}, max_phase={self.max_phase:.4g}"


class SelectiveSSM(DiagonalRecurrence):
    """Selective diagonal state space, Mamba S6 style with one state per channel (equations above)."""

    kind = "ssm"
    recurrence_params = ("A_log", "weight_delta", "bias_delta")  # exp(Delta_t A)
    DT_MIN, DT_MAX = 0.001, 0.1  # Mamba's range for the initial step Delta

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        H, I = self.hidden_size, self.input_size
        _linear_params(self, ["delta", "B", "C"], I, H)
        bound = 1.0 / math.sqrt(I)
        self.weight_u = nn.Parameter(torch.empty(H, I).uniform_(-bound, bound))
        self.A_log = nn.Parameter(torch.log1p(torch.arange(H, dtype=torch.float32) % 16))
        self.D = nn.Parameter(torch.ones(H))
        self.reset_delta_bias_()

    @torch.no_grad()
    def reset_delta_bias_(self, generator: torch.Generator | None = None) -> SelectiveSSM:
        """b_delta = softplus^-1(dt), dt log-uniform in [DT_MIN, DT_MAX] (Mamba's initialisation)."""
        u = torch.rand(self.hidden_size, dtype=torch.float64, generator=generator)
        dt = torch.exp(u * (math.log(self.DT_MAX) - math.log(self.DT_MIN)) + math.log(self.DT_MIN))
        self.bias_delta.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        return self

    def step_size(self, x: torch.Tensor) -> torch.Tensor:
        return F.softplus(F.linear(x, self.weight_delta, self.bias_delta))  # (..., H) Delta_t

    def coefficients(self, x):
        delta = self.step_size(x)
        A = -torch.exp(self.A_log)  # (H,)
        B = F.linear(x, self.weight_B, self.bias_B)
        return torch.exp(delta * A), delta * B * F.linear(x, self.weight_u)

    def output(self, x, h):
        return F.linear(x, self.weight_C, self.bias_C) * h + self.D * F.linear(x, self.weight_u)


NEW_CELLS = {"lru": LRU, "mingru": MinGRU, "minlstm": MinLSTM, "ssm": SelectiveSSM}


@dataclass(init=False)
class DiagonalView:
    """A float64 copy of a diagonal recurrence with the interface of :class:`bptt_core.models.recurrent.CellView`."""

    kind: str
    activation: str
    input_size: int
    hidden_size: int
    state_size: int
    module: DiagonalRecurrence

    def __init__(self, module: DiagonalRecurrence, dtype: torch.dtype = torch.float64, live: bool = False):
        # live: the module itself, so autograd reaches its parameters (training); else a detached copy
        if live:
            dtype = next(module.parameters()).dtype
        self.module = module if live else copy.deepcopy(module).to(dtype).requires_grad_(False)
        self.kind, self.activation = module.kind, "linear"
        self.input_size, self.hidden_size, self.state_size = module.input_size, module.hidden_size, module.state_size
        self.dtype = dtype

    def initial_state(self, h0: torch.Tensor | None, batch: int = 1) -> torch.Tensor:
        S = self.state_size
        if h0 is None:
            return torch.zeros(batch, S, dtype=self.dtype)
        h0 = torch.as_tensor(h0, dtype=self.dtype)
        if h0.numel() != S * batch:
            raise ValueError(
                f"h0 must have {S} entries per sequence (the {self.kind} state), got shape {tuple(h0.shape)}"
            )
        return h0.reshape(batch, S)

    def step(self, x_t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """One step on a batch: x_t (B, I), state (B, S) -> (B, S)."""
        m = self.module
        a, b = m.coefficients(x_t.to(self.dtype))
        return m.to_state(a * m.from_state(state) + b)

    def output(self, x_t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """What the readout sees: y_t (B, H)."""
        return self.module.output(x_t.to(self.dtype), self.module.from_state(state))

    def run(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """States for a sequence: x (T, I) -> (T + 1, S), row 0 the initial state."""
        m = self.module
        x = x.to(self.dtype)
        s0 = self.initial_state(h0)  # (1, S)
        a, b = m.coefficients(x[:, None])  # (T, 1, H)
        hs = DiagonalRecurrence.scan_states(m, a, b, m.from_state(s0))  # (T, 1, H)
        return torch.cat([s0, m.to_state(hs[:, 0])])

    def diagonal(self, x: torch.Tensor) -> torch.Tensor:
        """The step Jacobians' diagonals a_t (T, H) (complex for the LRU): they do not depend on the state."""
        a, _ = self.module.coefficients(x.to(self.dtype))
        return a

    def step_jacobians(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:
        """J_t = d state_t / d state_{t-1}: diag(a_t), or [[Re, -Im], [Im, Re]] of lambda in the real form. (T, S, S)."""
        a = self.diagonal(x)  # (T, H)
        if not self.module.complex_state:
            return torch.diag_embed(a)
        re, im = torch.diag_embed(a.real), torch.diag_embed(a.imag)  # (T, H, H) each
        return torch.cat([torch.cat([re, -im], 2), torch.cat([im, re], 2)], 1)
