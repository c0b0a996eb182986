"""The classic experiments, one click each, declared as data.

Each preset is a set of model settings (the fields of :class:`ModelConfig`; anything left out keeps
its default), the page that shows the effect best, and that page's own settings. The dashboard
writes them into its widgets and switches page; the tests sweep every preset through every check.

- vanishing: Bengio, Simard & Frasconi (1994); Pascanu, Mikolov & Bengio (2013): tanh with a small
  gain puts sigma_1 < 1/gamma, so ||dh_t/dh_s|| must shrink geometrically.
- exploding: ReLU with rho > 1 grows the products ((gamma sigma_1) >= rho > 1).
- edge of chaos: Gaussian W_hh with gain 1 (eigenvalues fill the unit disk; Poole et al. 2016's
  order-to-chaos transition of random tanh networks sits at gain 1).
- orthogonal: Saxe, McClelland & Ganguli (2013): every singular value equals 1.
- IRNN: Le, Jaitly & Hinton (2015): ReLU with W_hh = I on the adding problem.
- sparse: Pascanu et al. (2013) / Sutskever et al. (2013): 15 non-zeros per unit, rho = 0.95.
- LSTM vs RNN: Hochreiter & Schmidhuber (1997): the cell state's additive path against a tanh RNN.
- LRU ring: Orvieto et al. (2023): the linear recurrent unit with |lambda| initialised on the ring
  [0.9, 0.999] keeps ||dh_t/dh_s|| = max |lambda|^(t-s) within 10x of 1 over 300 steps, against a tanh RNN
  (orthogonal, gain 1) at the same T whose products vanish. Zucchet & Orvieto (2024)'s other side
  of |lambda| -> 1 (the sensitivity to lambda itself) is :mod:`bptt_core.sensitivity`'s curve.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import ModelConfig

PAGES = ("overview", "gradient_flow", "spectrum", "clipping", "truncation", "calculator")


@dataclass(frozen=True)
class Preset:
    key: str  # stable id, used in widget keys and URLs
    title: str  # shown on the button
    page: str  # one of PAGES: where the effect shows best
    summary: str  # one sentence: what to look for
    reference: str  # who showed it
    model: dict = field(default_factory=dict)  # ModelConfig fields that differ from the defaults
    page_settings: dict = field(default_factory=dict)  # widget key -> value on the target page

    def config(self) -> ModelConfig:
        return ModelConfig(**self.model)


PRESETS: tuple[Preset, ...] = (
    Preset(
        "vanishing",
        "Vanishing gradients",
        "gradient_flow",
        "tanh with gain 0.5: σ₁ < 1/γ, so ‖∂h(t)/∂h(s)‖ falls geometrically with the lag.",
        "Bengio et al. 1994; Pascanu et al. 2013",
        dict(cell="rnn", activation="tanh", init="gaussian", gain=0.5, spectral_radius=0.0),
    ),
    Preset(
        "exploding",
        "Exploding gradients",
        "gradient_flow",
        "ReLU with ρ = 2: the products grow with the lag instead of shrinking (about 10× every 8 steps).",
        "Pascanu et al. 2013",
        dict(cell="rnn", activation="relu", init="gaussian", gain=1.0, spectral_radius=2.0),
    ),
    Preset(
        "edge_of_chaos",
        "Edge of chaos",
        "spectrum",
        "Gaussian W_hh with gain 1: eigenvalues fill the unit disk, Lyapunov exponents near 0.",
        "Poole et al. 2016; circular law",
        dict(cell="rnn", activation="tanh", init="gaussian", gain=1.0, spectral_radius=0.0),
    ),
    Preset(
        "orthogonal",
        "Orthogonal init",
        "gradient_flow",
        "Every singular value is 1: the norm is kept for many more steps than a Gaussian init.",
        "Saxe, McClelland & Ganguli 2013",
        dict(cell="rnn", activation="tanh", init="orthogonal", gain=1.0, spectral_radius=0.0),
    ),
    Preset(
        "irnn",
        "IRNN",
        "gradient_flow",
        "ReLU with W_hh = I on the adding problem: gradients neither vanish nor explode at first.",
        "Le, Jaitly & Hinton 2015",
        dict(cell="rnn", activation="relu", init="identity", gain=1.0, spectral_radius=0.0, task="adding"),
    ),
    Preset(
        "sparse",
        "Sparse init (Pascanu)",
        "spectrum",
        "15 non-zero weights per unit, rescaled to ρ = 0.95: look at the eigenvalues and σ₁.",
        "Pascanu et al. 2013; Sutskever et al. 2013",
        dict(cell="rnn", activation="tanh", init="sparse", gain=1.0, spectral_radius=0.0),
    ),
    Preset(
        "lstm_vs_rnn",
        "LSTM vs vanilla RNN",
        "gradient_flow",
        "An LSTM (solid) against a tanh RNN with the same settings (dashed): the cell state carries gradient further.",
        "Hochreiter & Schmidhuber 1997",
        dict(cell="lstm", activation="tanh", init="pytorch", gain=1.0, spectral_radius=0.0, seq_len=100),
        {"gf_compare": True},
    ),
    Preset(
        "clipping",
        "Clipping an exploding RNN",
        "clipping",
        "ReLU with ρ = 1.2 trained with SGD: the unclipped twin's gradient norm spikes; clipping caps it.",
        "Pascanu et al. 2013",
        dict(cell="rnn", activation="relu", init="gaussian", gain=1.0, spectral_radius=1.2, task="adding"),
    ),
)

PRESETS += (
    Preset(
        "lru_ring",
        "LRU ring init vs RNN",
        "gradient_flow",
        "An LRU with |λ| on the ring [0.9, 0.999] (solid) against a tanh RNN at the same T (dashed): the "
        "LRU's ‖∂h(300)/∂h(1)‖ stays within 10× of 1 while the RNN's falls more than 1000×.",
        "Orvieto et al. 2023",
        dict(cell="lru", r_min=0.9, r_max=0.999, init="orthogonal", gain=1.0, seq_len=300, hidden_size=32),
        {"gf_compare": True},
    ),
)

BY_KEY = {p.key: p for p in PRESETS}


def get(key: str) -> Preset:
    if key not in BY_KEY:
        raise ValueError(f"preset must be one of {', '.join(BY_KEY)}; got {key!r}")
    return BY_KEY[key]


def settings(preset: Preset) -> dict:
    """Every model setting of the preset (defaults filled in), as plain values."""
    return preset.config().to_dict()
