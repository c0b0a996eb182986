"""Click to unroll: one cell L[t, s] of the gradient-flow matrix opened up factor by factor.

d h_t / d h_s = J_t J_{t-1} ... J_{s+1} (Pascanu, Mikolov & Bengio 2013, eq. 5-7): :func:`unroll`
returns every factor's norm and singular values, the running product's log10 norm after each factor
(computed with the same log-space renormalisation as :mod:`bptt_core.flow.jacobians`, so it ends at the
heatmap's value), which units are saturated or off at each step, the term of dl_t/dW_hh that flows
through h_s (added by :func:`bptt_core.learning.truncation.attach_contribution`), and the non-normality of the recurrent
matrix: ||W^k||_2 against rho^k (Trefethen & Embree 2005, "Spectra and Pseudospectra": a non-normal
W can grow transiently for many steps although rho < 1, which the spectral radius alone hides).

Indexing: ``t`` and ``s`` are 0-indexed, the row and column of the (T, T) array that
:func:`bptt_core.jacobian_log_norms` returns, 0 <= s <= t < T. The heatmap
(:func:`bptt_core.figures.heatmaps.gradient_flow_heatmap`) labels that cell with the 1-indexed steps t + 1 and
s + 1 (axis "target step t" and "source step s"); :func:`heatmap_cell` converts a clicked point. The
factors are J_i = d h_i / d h_{i-1} for 0-indexed i = s + 1 .. t (``factor_steps``), t - s of them;
shown 1-indexed they are J_{s+2} .. J_{t+1}, the chain J_{t'} ... J_{s'+1} of the clicked t' = t + 1,
s' = s + 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from bptt_core.config import Norm, check_int
from bptt_core.models.recurrent import ACTIVATION_GAMMA, activation_derivative, cell_view, recurrent_matrix

from .jacobians import RENORM_BELOW, block_slice, check_norm, check_sequence

if TYPE_CHECKING:  # pandas is optional (the dashboard and figures extras): Unroll.table imports it
    import pandas as pd

MATRIX_LABEL = {"rnn": "W_hh", "lstm": "W_hg (LSTM cell-candidate block)", "gru": "W_hn (GRU candidate block)"}

# A unit counts as saturated (or, for ReLU, off) at a step when its slope is below this fraction of
# the largest slope its function can have: phi'(a) < 0.01 * max phi' (tanh: |a| > 3.0; sigmoid:
# |a| > 4.6; ReLU: a <= 0; the linear unit never).
SATURATION_THRESHOLD = 0.01

# The largest slope of each function whose derivative is reported ("decay": a diagonal cell's |a_t|,
# at most 1 for every stable diagonal recurrence here).
MAX_SLOPE = {"tanh": 1.0, "sigmoid": 0.25, "relu": 1.0, "linear": 1.0, "decay": 1.0}
DIAGONAL_NOTE = (
    "Diagonal cell: J_t = diag(a_t) (for the LRU a rotation and scaling of each complex unit), so the chain "
    "is a product per unit and its norm the units' products combined. A unit with |a_t| near 0 is shut at "
    "that step: it forgets its state, and no gradient passes back through it."
)

GATED_NOTE = {
    "lstm": (
        "LSTM: d h_t/d h_(t-1) mixes the gates' slopes (sigmoid' of i, f, o; tanh' of g and of c_t) with "
        "their weight blocks, and the cell state adds the path c_(t-1) -> c_t scaled by the forget gate f "
        "itself (not its slope). A saturated gate is one that is firmly open or shut: a shut-open forget "
        "gate (f near 1) carries the gradient although its slope is near 0."
    ),
    "gru": (
        "GRU: d h_t/d h_(t-1) = diag(z_t) + terms through the slopes of r, z (sigmoid') and n (tanh'). "
        "An update gate z near 1 is saturated yet passes the gradient through the diag(z_t) path."
    ),
}


@dataclass
class Unroll:
    """The chain J_t ... J_{s+1} behind one cell L[t, s] (0-indexed, see the module docstring)."""

    t: int  # 0-indexed target step (row of L); the heatmap shows t + 1
    s: int  # 0-indexed source step (column of L); the heatmap shows s + 1
    norm: Norm
    block: str  # "h" (or "c" for an LSTM)
    kind: str  # rnn | lstm | gru | lru | mingru | minlstm | ssm
    factor_steps: np.ndarray  # (n,) 0-indexed i = s+1 .. t of the factors J_i, n = t - s
    factor_log10_norms: np.ndarray  # (n,) log10 ||J_i|| of the full state Jacobian (S x S), in ``norm``
    factor_singular_values: np.ndarray  # (n, S) singular values of each J_i, descending
    running_log10: np.ndarray  # (n + 1,) log10 ||(J_{s+k} ... J_{s+1})[block, block]||, k = 0 .. n
    bound_log10: np.ndarray  # (n,) sum of the first k factors' log10 norms, k = 1 .. n: >= running_log10[k]
    derivatives: dict[str, np.ndarray]  # name -> (n, H) slopes at the factor steps (phi', each gate's, |a_t|)
    saturated: dict[str, np.ndarray]  # name -> (n, H) bool: slope < SATURATION_THRESHOLD * MAX_SLOPE[function]
    functions: dict[str, str]  # name -> the function whose slope it is (tanh, sigmoid, relu, linear)
    note: str  # what saturation means for this cell (gated cells), or ""
    power_log10: np.ndarray  # (n + 1,) log10 ||W^k||_2 of the recurrent matrix, k = 0 .. n; (0,): none
    rho: float  # spectral radius of the recurrent matrix (NaN: the cell has no fixed one)
    departure: float  # Henrici's departure from normality sqrt(||W||_F^2 - sum |lambda|^2) / ||W||_F
    matrix: str  # which matrix W is (W_hh, a gated cell's candidate block, the LRU's diag(lambda)), or ""
    contribution: np.ndarray | None = None  # the term of dl_t/dW_hh through h_s (W_hh's shape), if asked
    contribution_norms: np.ndarray | None = field(default=None)  # (t + 1,) ||term i||_F for every i <= t

    @property
    def value(self) -> float:
        """log10 ||d h_t / d h_s||: the heatmap's value at this cell."""
        return float(self.running_log10[-1])

    @property
    def rho_log10_powers(self) -> np.ndarray:
        """(n + 1,) k log10 rho: the rho^k that ||W^k||_2 is compared with (>= by Gelfand's bound)."""
        k = np.arange(len(self.power_log10), dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = k * math.log10(self.rho) if self.rho > 0 else np.where(k == 0, 0.0, -np.inf)
        return np.where(k == 0, 0.0, out)

    @property
    def transient_gap(self) -> np.ndarray:
        """(n + 1,) log10(||W^k||_2 / rho^k) >= 0: zero for a normal W, large where non-normality
        makes powers grow transiently although rho < 1."""
        return self.power_log10 - self.rho_log10_powers

    def table(self) -> pd.DataFrame:
        """One row per factor, for the CSV beside the chain: its 1-indexed step, log10 norm, largest and
        smallest singular value, the running product and the bound after it, and the saturated units."""
        import pandas as pd  # optional dependency (the table): the chain itself needs only torch

        sv = self.factor_singular_values
        out = pd.DataFrame(
            {
                "factor_step": self.factor_steps + 1,  # J_i shown 1-indexed, as on the heatmap
                "log10_norm": self.factor_log10_norms,
                "sigma_max": sv[:, 0] if sv.size else np.zeros(0),
                "sigma_min": sv[:, -1] if sv.size else np.zeros(0),
                "running_log10": self.running_log10[1:],
                "bound_log10": self.bound_log10,
            }
        )
        for k, n in self.saturated_counts.items():
            out[f"saturated_{k}"] = n
        return out

    def slope_fraction(self, name: str) -> np.ndarray:
        """(n, H) the slope ``name`` of every unit at every factor step, as a fraction of its function's
        largest slope (MAX_SLOPE): 1 where the unit is fully open, near 0 where it saturates."""
        return self.derivatives[name] / MAX_SLOPE[self.functions[name]]

    @property
    def saturated_counts(self) -> dict[str, np.ndarray]:
        """name -> (n,) how many units are saturated at each factor step."""
        return {k: v.sum(1) for k, v in self.saturated.items()}


def unroll(
    rnn: nn.Module,
    x,
    t: int,
    s: int,
    h0=None,
    block: str = "h",
    norm="fro",
) -> Unroll:
    """Open up L[t, s] (0-indexed, 0 <= s <= t < T) into the chain J_t ... J_{s+1}, in float64.

    ``rnn``, ``x`` (T, I), ``h0``, ``block`` and ``norm`` as in :func:`bptt_core.jacobian_log_norms`.
    The term of dl_t/dW_hh through h_s is added by
    :func:`bptt_core.learning.truncation.attach_contribution` (the gradient engines live there).
    """
    norm = check_norm(norm)
    view = cell_view(rnn)
    sl = block_slice(view, block)
    x = check_sequence(x, view.input_size).to(torch.float64)
    T = x.shape[0]
    t = check_int("t", t, 0, T - 1)
    s = check_int("s", s, 0, T - 1)
    if s > t:
        raise ValueError(f"s must not exceed t (d h_t/d h_s is defined for s <= t), got t={t}, s={s}")
    states = view.run(x[: t + 1], h0)  # (t + 2, S): row i is the state before x[i]
    steps = np.arange(s + 1, t + 1)
    J = view.step_jacobians(x[s + 1 : t + 1], states[s + 1 : t + 1])  # (n, S, S): J_i = d state_i / d state_{i-1}
    running = running_log10_norms(J, norm, sl)
    f_norms = _log10(_norms(J, norm))  # (n,)
    derivs, funcs = unit_slopes(view, x[s + 1 : t + 1], states[: t + 2], s)
    W, matrix = fixed_recurrent_matrix(view, x)  # (H, H) or (2H, 2H) for the LRU; None: input-dependent
    rho, departure, power = math.nan, 0.0, np.zeros(0)
    if W is not None:
        eig = torch.linalg.eigvals(W)
        rho = float(eig.abs().max())
        fro2 = float(torch.linalg.matrix_norm(W) ** 2)
        departure = math.sqrt(max(0.0, fro2 - float((eig.abs() ** 2).sum()))) / math.sqrt(fro2) if fro2 > 0 else 0.0
        power = power_log10_norms(W, t - s)
    out = Unroll(
        t=t,
        s=s,
        norm=norm,
        block=block,
        kind=view.kind,
        factor_steps=steps,
        factor_log10_norms=f_norms,
        factor_singular_values=torch.linalg.svdvals(J).numpy() if len(J) else np.zeros((0, view.state_size)),
        running_log10=running,
        bound_log10=np.cumsum(f_norms),
        derivatives=derivs,
        saturated={k: v < SATURATION_THRESHOLD * MAX_SLOPE[funcs[k]] for k, v in derivs.items()},
        functions=funcs,
        note=DIAGONAL_NOTE if hasattr(view, "diagonal") else GATED_NOTE.get(view.kind, ""),
        power_log10=power,
        rho=rho,
        departure=departure,
        matrix=matrix,
    )
    return out


def _log10(v: torch.Tensor) -> np.ndarray:
    v = v.numpy()
    with np.errstate(divide="ignore"):
        return np.log10(v)


def _norms(M: torch.Tensor, norm) -> torch.Tensor:
    """Frobenius or spectral norm of each matrix of (n, a, b)."""
    norm = Norm.of(norm)
    if len(M) == 0:
        return M.new_zeros(0)
    return torch.linalg.matrix_norm(M) if norm is Norm.FRO else torch.linalg.matrix_norm(M, ord=2)


def running_log10_norms(J: torch.Tensor, norm, block: slice) -> np.ndarray:
    """log10 ||(J_k ... J_1)[block, block]|| for k = 0 .. n of an (n, S, S) float64 chain.

    The renormalisation of :mod:`bptt_core.flow.jacobians`: every J is divided by its Frobenius norm (whose
    log10 is summed), and the running product is divided by its own norm, the log carried apart, once
    it sinks below RENORM_BELOW, so no value under- or overflows. An exactly-zero factor gives -inf.
    """
    norm = Norm.of(norm)
    n, S, _ = J.shape
    P = torch.eye(S, dtype=torch.float64)  # (S, S)
    acc = 0.0  # log10 of the scale taken out of P
    out = [float(_log10(_norms(P[block, block][None], norm))[0])]
    zero = False
    for k in range(n):
        nk = float(torch.linalg.matrix_norm(J[k]))
        if nk == 0 or zero:
            zero = True
            out.append(-math.inf)
            continue
        P = (J[k] / nk) @ P  # (S, S): the new factor multiplies on the left
        acc += math.log10(nk)
        full = float(torch.linalg.matrix_norm(P))
        if full == 0:
            zero = True
            out.append(-math.inf)
            continue
        if full < RENORM_BELOW:
            P = P / full
            acc += math.log10(full)
        part = float(_norms(P[block, block][None], norm)[0])
        out.append(math.log10(part) + acc if part > 0 else -math.inf)
    return np.asarray(out)


def power_log10_norms(W: torch.Tensor, k_max: int) -> np.ndarray:
    """log10 ||W^k||_2 for k = 0 .. k_max, renormalised like the chain (exact at any magnitude)."""
    H = W.shape[0]
    P = torch.eye(H, dtype=torch.float64)
    acc, out = 0.0, [0.0]
    for _ in range(k_max):
        P = W @ P
        full = float(torch.linalg.matrix_norm(P))
        if full == 0:
            out.append(-math.inf)
            P = P  # stays zero: every later power is zero too
            continue
        P = P / full
        acc += math.log10(full)
        out.append(math.log10(float(torch.linalg.matrix_norm(P, ord=2))) + acc)
    return np.asarray(out)


def unit_slopes(view, x: torch.Tensor, states: torch.Tensor, s: int) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The slopes of every unit at the factor steps i = s+1 .. t, whatever the model: x (n, I) the inputs
    of those steps, states (t + 2, S) the run's states (row i: before step i). A one-layer vanilla,
    LSTM or GRU cell: :func:`slopes`. A stack: each layer's, named "L<l> <name>" (layer l reads layer
    l-1's new h). A diagonal cell: |a_t| of each unit ("decay")."""
    prev = states[s + 1 : s + 1 + len(x)]  # (n, S)
    if hasattr(view, "diagonal"):
        a = view.diagonal(x).abs() if len(x) else torch.zeros(0, view.hidden_size, dtype=torch.float64)
        return {"|a|": a.numpy()}, {"|a|": "decay"}
    if getattr(view, "num_layers", 1) == 1:
        return slopes(view, x, prev)
    derivs, funcs, below = {}, {}, x
    for layer, one in enumerate(view.layers):
        part = view.layer_slice(layer)
        d, f = slopes(one, below, prev[:, part])
        derivs |= {f"L{layer} {k}": v for k, v in d.items()}
        funcs |= {f"L{layer} {k}": v for k, v in f.items()}
        below = states[s + 2 : s + 2 + len(x), part][:, : one.hidden_size]  # this layer's new h: the next one's input
    return derivs, funcs


def fixed_recurrent_matrix(view, x: torch.Tensor) -> tuple[torch.Tensor | None, str]:
    """(W, its name) for the non-normality panel: W_hh or a gated cell's candidate block (a stack's top
    layer's), the LRU's diag(lambda) in the real form; (None, "") for the diagonal cells whose a_t
    depends on the input (MinGRU, MinLSTM, the selective SSM): no fixed matrix whose powers to take."""
    if hasattr(view, "diagonal"):
        if view.kind != "lru" or len(x) == 0:
            return None, ""
        return view.step_jacobians(x[:1])[0], "diag(λ) of the LRU (real form)"
    top = " of the top layer" if getattr(view, "num_layers", 1) > 1 else ""
    return recurrent_matrix(view), MATRIX_LABEL[view.kind] + top


def slopes(view, x: torch.Tensor, prev: torch.Tensor) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The slopes that enter each step Jacobian, per unit: x (n, I), prev (n, S) the states before.

    Vanilla: {"phi'": phi'(a_t)}. LSTM: sigmoid' of the gates i, f, o; tanh' of the candidate g and of
    the new cell state c_t. GRU: sigmoid' of r and z; tanh' of the candidate n. Each (n, H).
    """
    H = view.hidden_size
    if len(x) == 0:
        names = {
            "rnn": {"phi'": view.activation},
            "lstm": dict.fromkeys(("i", "f", "o"), "sigmoid") | {"g": "tanh", "tanh(c)": "tanh"},
            "gru": {"r": "sigmoid", "z": "sigmoid", "n": "tanh"},
        }[view.kind]
        return {k: np.zeros((0, H)) for k in names}, names
    h = prev[:, :H]
    gi = x @ view.W_ih.T + view.b_ih  # (n, G*H)
    gh = h @ view.W_hh.T + view.b_hh  # (n, G*H)
    sig = lambda a: activation_derivative("sigmoid", a)  # noqa: E731
    tanh = lambda a: activation_derivative("tanh", a)  # noqa: E731
    if view.kind == "rnn":
        d = {"phi'": activation_derivative(view.activation, gi + gh)}
        funcs = {"phi'": view.activation}
    elif view.kind == "gru":
        a_r, a_z = gi[:, :H] + gh[:, :H], gi[:, H : 2 * H] + gh[:, H : 2 * H]
        a_n = gi[:, 2 * H :] + torch.sigmoid(a_r) * gh[:, 2 * H :]
        d = {"r": sig(a_r), "z": sig(a_z), "n": tanh(a_n)}
        funcs = {"r": "sigmoid", "z": "sigmoid", "n": "tanh"}
    else:
        a = gi + gh
        i, f, g = torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H : 2 * H]), torch.tanh(a[:, 2 * H : 3 * H])
        c_new = f * prev[:, H:] + i * g
        d = {
            "i": sig(a[:, :H]),
            "f": sig(a[:, H : 2 * H]),
            "o": sig(a[:, 3 * H :]),
            "g": tanh(a[:, 2 * H : 3 * H]),
            "tanh(c)": tanh(c_new),
        }
        funcs = {"i": "sigmoid", "f": "sigmoid", "o": "sigmoid", "g": "tanh", "tanh(c)": "tanh"}
    assert set(ACTIVATION_GAMMA) >= set(funcs.values()), "every slope's function has a known maximum"
    return {k: v.numpy() for k, v in d.items()}, funcs
