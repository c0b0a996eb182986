"""The classic experiments, one click each, declared as data.

Each preset is a set of model settings (the fields of :class:`ModelConfig`; anything left out keeps
its default), the page that shows the effect best, and that page's own settings. The dashboard
writes them into its widgets and switches page; the tests sweep every preset through every check.

- vanishing: Bengio, Simard & Frasconi (1994); Pascanu, Mikolov & Bengio (2013): tanh with a small
  gain puts sigma_1 < 1/gamma, so ||dh_t/dh_s|| must shrink geometrically.
- exploding: ReLU with rho > 1 grows the products ((gamma sigma_1) >= rho > 1).
- edge of chaos: Gaussian W_hh at the gain where the top Lyapunov exponent of the driven network
  crosses 0 (Poole et al. 2016's order-to-chaos transition), found by bisection for the preset's
  cell, input and seed (bptt_core.sweeps.boundary.edge_of_chaos), not assumed to be 1.
- orthogonal: Saxe, McClelland & Ganguli (2013): every singular value equals 1, so a linear RNN
  keeps every norm exactly.
- IRNN: Le, Jaitly & Hinton (2015): ReLU with W_hh = I on the adding problem.
- sparse: Pascanu et al. (2013) / Sutskever et al. (2013): 15 non-zeros per unit, rho = 0.95.
- LSTM vs RNN: Hochreiter & Schmidhuber (1997): the cell state's additive path against a tanh RNN,
  with the forget-gate bias of 1 that Gers et al. (2000) and Jozefowicz et al. (2015) recommend.
- clipping: Pascanu et al. (2013): the Clipping page's own story (bptt_core.learning.training.CLIPPING_STORY).
- LRU ring: Orvieto et al. (2023): the linear recurrent unit with |lambda| initialised on the ring
  [0.9, 0.999] keeps ||dh_300/dh_1|| within 100x of its lag-0 value (the spectral norm, max |lambda|^299,
  within 10x), against a tanh RNN
  (orthogonal, gain 1) at the same T whose products vanish. Zucchet & Orvieto (2024)'s other side
  of |lambda| -> 1 (the sensitivity to lambda itself) is :mod:`bptt_core.flow.sensitivity`'s curve.

Each preset states the claims it demonstrates (bptt_core.report.claims): the target page shows each claim
with its measured value, and tests/dashboard/test_presets.py asserts every one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

from bptt_core.config import CLIPPING_STORY_SETTINGS as STORY
from bptt_core.config import ModelConfig
from bptt_core.report.claims import Checked, Claim, check


@dataclass(frozen=True)
class Preset:
    key: str  # stable id, used in widget keys and URLs
    title: str  # shown on the button
    page: str  # the dashboard page (a key of dashboard/page_table.py) where the effect shows best
    summary: str  # one sentence: what to look for
    reference: str  # who showed it
    model: dict = field(default_factory=dict)  # ModelConfig fields that differ from the defaults
    page_settings: dict = field(default_factory=dict)  # widget key -> value on the target page
    claims: tuple[Claim, ...] = ()  # what the preset demonstrates, measurably
    find: str = ""  # a setting found, not assumed: "edge_of_chaos_gain"

    def config(self) -> ModelConfig:
        """The model settings, with any found setting located (cached: the search is exact but not free)."""
        return _resolved(self.key) if self.find else ModelConfig(**self.model)

    def train_config(self):
        """The Clipping page's training settings this preset sets (its page settings read as the page
        reads them), or None for a preset of another page."""
        if self.page != "clipping":
            return None
        from bptt_core.learning.training import TrainConfig  # torch: only when a clipping claim is measured

        ps = self.page_settings
        return TrainConfig(
            steps=int(ps.get("cl_steps", STORY["steps"])), optimizer=str(ps.get("cl_optimizer", STORY["optimizer"])),
            lr=float(ps.get("cl_lr", STORY["lr"])), batch_size=int(ps.get("cl_batch", STORY["batch_size"])),
            clip="none", clip_threshold=float(ps.get("clip_threshold", STORY["clip_threshold"])),
        )  # fmt: skip

    def check(self, **numbers) -> list[Checked]:
        """Every claim measured on the preset's own settings (``numbers``: see bptt_core.report.claims.check)."""
        return check(self.claims, self.config(), self.train_config(), **numbers)


PRESETS: tuple[Preset, ...] = (
    Preset(
        "vanishing",
        "Vanishing gradients",
        "gradient_flow",
        "tanh with gain 0.5: γσ₁ < 1, so ‖∂h(t)/∂h(s)‖ falls geometrically with the lag.",
        "Bengio et al. 1994; Pascanu et al. 2013",
        dict(cell="rnn", activation="tanh", init="gaussian", gain=0.5, spectral_radius=0.0),
        claims=(Claim("decay_rate", "<", -0.1, "the norm falls by more than 10^0.1 (×0.79) per step back"),),
    ),
    Preset(
        "exploding",
        "Exploding gradients",
        "gradient_flow",
        "ReLU with ρ = 2: the products grow with the lag instead of shrinking.",
        "Pascanu et al. 2013",
        dict(cell="rnn", activation="relu", init="gaussian", gain=1.0, spectral_radius=2.0),
        claims=(Claim("decay_rate", ">", 0.05, "the norm grows by more than 10^0.05 (×1.12) per step back"),),
    ),
    Preset(
        "edge_of_chaos",
        "Edge of chaos",
        "spectrum",
        "Gaussian W_hh at the gain where the top Lyapunov exponent crosses 0 (found by bisection).",
        "Poole et al. 2016",
        dict(cell="rnn", activation="tanh", init="gaussian", spectral_radius=0.0),
        claims=(Claim("lyapunov_top", "≈", 0.0, "the top Lyapunov exponent is within ±0.01 log10/step of 0", 0.01),),
        find="edge_of_chaos_gain",
    ),
    Preset(
        "orthogonal",
        "Orthogonal, linear",
        "gradient_flow",
        "A linear RNN with orthogonal W_hh: every singular value is 1, so no norm shrinks or grows, at any lag.",
        "Saxe, McClelland & Ganguli 2013",
        dict(cell="rnn", activation="linear", init="orthogonal", gain=1.0, spectral_radius=0.0, seq_len=100),
        claims=(
            Claim("sigma_spread", "<=", 1e-5, "every singular value of W_hh is 1 (within float32 rounding)"),
            Claim("decay_rate", "≈", 0.0, "the norm is the same at every lag (decay rate 0 within 1e-6)", 1e-6),
        ),
    ),
    Preset(
        "irnn",
        "IRNN",
        "gradient_flow",
        "ReLU with W_hh = I on the adding problem: gradients neither vanish nor explode at first.",
        "Le, Jaitly & Hinton 2015",
        dict(cell="rnn", activation="relu", init="identity", gain=1.0, spectral_radius=0.0, task="adding"),
        claims=(Claim("decay_rate", "≈", 0.0, "the decay rate is within ±0.02 log10/step of 0", 0.02),),
    ),
    Preset(
        "sparse",
        "Sparse init (Pascanu)",
        "spectrum",
        "15 non-zero weights per unit, rescaled to ρ = 0.95: look at the eigenvalues and σ₁.",
        "Pascanu et al. 2013; Sutskever et al. 2013",
        dict(cell="rnn", activation="tanh", init="sparse", gain=1.0, spectral_radius=0.0),
        claims=(Claim("rho", "≈", 0.95, "the spectral radius is 0.95", 1e-4),),
    ),
    Preset(
        "lstm_vs_rnn",
        "LSTM vs vanilla RNN",
        "gradient_flow",
        "An LSTM with forget-gate bias 1: its cell state (c → c, shown) carries gradient much further back than "
        "a tanh RNN with the same settings (dashed).",
        "Hochreiter & Schmidhuber 1997; Jozefowicz et al. 2015",
        dict(
            cell="lstm", activation="tanh", init="pytorch", gain=1.0, spectral_radius=0.0, seq_len=100, forget_bias=1.0
        ),
        {"gf_compare": True, "gf_block": "c"},
        claims=(
            Claim("lstm_c_over_rnn_horizon", ">=", 3.0, "the LSTM's c-block memory horizon is at least 3× the RNN's"),
        ),
    ),
    Preset(
        "clipping",
        "Clipping an exploding RNN",
        "clipping",
        "SGD too fast for this tanh RNN: the unclipped twin blows up, while clipping, once it starts to act, "
        "keeps both clipped twins finite.",
        "Pascanu et al. 2013",
        dict(cell="rnn", activation="tanh", init="orthogonal", gain=1.0, spectral_radius=0.0, task="gaussian"),
        {
            "cl_steps": STORY["steps"],
            "cl_lr": STORY["lr"],
            "cl_batch": STORY["batch_size"],
            "cl_optimizer": STORY["optimizer"],
            "clip_threshold": STORY["clip_threshold"],
        },  # fmt: skip
        claims=(
            Claim("first_clip", ">=", 1, "clipping acts at some step, but not at step 0"),
            Claim("unclipped_diverged", ">=", 1, "the unclipped twin diverges"),
            Claim("clipped_finished", ">=", 2, "both clipped twins finish"),
        ),
    ),
)

PRESETS += (
    Preset(
        "lru_ring",
        "LRU ring init vs RNN",
        "gradient_flow",
        "An LRU with |λ| on the ring [0.9, 0.999] (solid) against a tanh RNN at the same T (dashed): the "
        "LRU's ‖∂h(300)/∂h(1)‖ stays within 100× of its lag-0 value while the RNN's falls more than 1000×.",
        "Orvieto et al. 2023",
        dict(cell="lru", r_min=0.9, r_max=0.999, init="orthogonal", gain=1.0, seq_len=300, hidden_size=32),
        {"gf_compare": True},
        claims=(
            Claim("end_to_end", ">", -2.0, "the LRU's ‖∂h(300)/∂h(1)‖ stays within 100× of its lag-0 value"),
            Claim("rnn_end_to_end", "<", -3.0, "the tanh RNN's falls more than 1000× over the same 300 steps"),
        ),
    ),
)

BY_KEY = {p.key: p for p in PRESETS}


def get(key: str) -> Preset:
    if key not in BY_KEY:
        raise ValueError(f"preset must be one of {', '.join(BY_KEY)}; got {key!r}")
    return BY_KEY[key]


@functools.cache
def _resolved(key: str) -> ModelConfig:
    p = get(key)
    cfg = ModelConfig(**p.model)
    if p.find == "edge_of_chaos_gain":
        from bptt_core.sweeps.boundary import edge_of_chaos
        from bptt_core.sweeps.grid import Network

        return replace(cfg, gain=edge_of_chaos(Network(cfg), tol=1e-3).gain)
    raise ValueError(f"find must be 'edge_of_chaos_gain' or empty; got {p.find!r}")


def active(cfg: ModelConfig, page: str, page_settings: dict) -> Preset | None:
    """The preset whose settings the view shows now (its model and its page's settings), else None.

    Derived, not remembered: a view that still matches a preset shows that preset's claims; one
    setting changed and it no longer claims anything."""
    for p in PRESETS:
        if p.page == page and all(page_settings.get(k) == v for k, v in p.page_settings.items()):
            if p.config() == cfg:
                return p
    return None


def settings(preset: Preset) -> dict:
    """Every model setting of the preset (defaults filled in), as plain values."""
    return preset.config().to_dict()
