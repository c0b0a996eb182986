"""Full BPTT, TBPTT(k1, k2), RTRL and the per-step contributions dl_t/dW (bptt_core.learning.truncation)
against autograd references written from the definitions (float64).

The references step the module one time step at a time and detach by hand, so they share no code with
bptt_core.learning.truncation beyond the module being differentiated. The contributions have three
independent checks: the terms sum to autograd's gradient of l_t; for the vanilla cell every term equals
its hand-derived form outer(delta_i, input_i); the last term is the one-step gradient with h_{t-1} held
constant."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from bptt_core.learning.truncation import (
    bptt_gradients,
    compare_variants,
    contribution_norms,
    contributions,
    held_for_backward_bytes,
    rtrl_gradients,
    rtrl_memory_bytes,
    tbptt_backward_steps,
    tbptt_gradients,
    tbptt_kept_mask,
    tbptt_schedule,
)
from bptt_core.models.recurrent import ElmanRNN
from tests.helpers.cells import diagonal_cells, recurrent_cells, stacked_cells
from tests.helpers.strategies import PROFILE, WILD, only_value_errors

I, H, O = 3, 5, 2
TOL = dict(rtol=1e-10, atol=1e-12)

# (name, factory): every cell the library supports
CELLS = {
    **recurrent_cells(I, H),
    "nn.RNN-nobias": lambda: nn.RNN(I, H, bias=False),
    **stacked_cells(I, H),
    **diagonal_cells(I, H),
}
GATED_AND_VANILLA = ["elman-tanh", "nn.RNN-relu", "nn.LSTM", "nn.GRU", "nn.LSTM-2layer-bf", "LRU", "MinGRU-parallel"]
STACKED = list(stacked_cells(I, H))


def make(cell: str, n: int, seed: int = 0, gain: float = 1.5):
    """A float64 model and data; gain > 1 keeps the recurrence far from trivially contracting."""
    torch.manual_seed(seed)
    rnn = CELLS[cell]().double()
    with torch.no_grad():
        for name, p in rnn.named_parameters():
            if name.startswith("weight_hh_l"):  # every layer of a stack; the diagonal cells have none
                p.mul_(gain)
    readout = nn.Linear(H, O).double()
    x = torch.randn(n, I, dtype=torch.float64)
    y = torch.randn(n, O, dtype=torch.float64)
    return rnn, readout, x, y


def params(rnn, readout):
    return [*rnn.parameters(), *readout.parameters()]


def detach(state):
    if state is None:
        return None
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def assert_grads_equal(got, want, **tol):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        torch.testing.assert_close(g, w, **(tol or TOL))


def autograd_loss_grads(rnn, readout, x, y, mask=None):
    """dL/dtheta with the module stepped one step at a time, the whole graph kept."""
    mask = torch.ones(len(x), dtype=torch.bool) if mask is None else torch.as_tensor(mask)
    state, loss = None, 0.0
    for t in range(len(x)):
        out, state = rnn(x[t : t + 1, None], state)
        if mask[t]:
            loss = loss + ((readout(out[0, 0]) - y[t]) ** 2).sum()
    return list(torch.autograd.grad(loss, params(rnn, readout), allow_unused=True, materialize_grads=True))


def reference_tbptt(rnn, readout, x, y, k1, k2, mask=None):
    """TBPTT(k1, k2) written from docs/design.md, one autograd call per update, detaching at tau - k2."""
    n = len(x)
    mask = torch.ones(n, dtype=torch.bool) if mask is None else torch.as_tensor(mask)
    taus = list(range(k1, n + 1, k1)) + ([n] if n % k1 else [])
    total = [torch.zeros_like(p) for p in params(rnn, readout)]
    prev = 0
    for tau in taus:  # 1-indexed
        state, hs = None, {}
        for t in range(1, tau + 1):
            if t - 1 == tau - k2:  # h_{tau-k2} is a constant
                state = detach(state)
            out, state = rnn(x[t - 1 : t, None], state)
            hs[t] = out[0, 0] if t > tau - k2 else out[0, 0].detach()  # earlier states: constants too
        loss = sum(((readout(hs[t]) - y[t - 1]) ** 2).sum() for t in range(prev + 1, tau + 1) if mask[t - 1])
        if torch.is_tensor(loss):
            grads = torch.autograd.grad(loss, params(rnn, readout), allow_unused=True, materialize_grads=True)
            for acc, g in zip(total, grads, strict=True):
                acc += g
        prev = tau
    return total


def chunk_and_detach(rnn, readout, x, y, k):
    """The usual TBPTT loop: detach the state every k steps, backward per chunk, grads accumulate."""
    for p in params(rnn, readout):
        p.grad = None
    state = None
    for c in range(0, len(x), k):
        out, state = rnn(x[c : c + k, None], detach(state))
        ((readout(out[:, 0]) - y[c : c + k]) ** 2).sum().backward()
    return [p.grad.clone() for p in params(rnn, readout)]


# -- full BPTT, TBPTT(n, n), RTRL ----------------------------------------------------------------


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("last_only", [False, True])
def test_full_bptt_and_tbptt_nn_equal_autograd(cell, last_only):
    n = 11
    rnn, readout, x, y = make(cell, n)
    mask = np.arange(n) == n - 1 if last_only else None
    want = autograd_loss_grads(rnn, readout, x, y, mask)
    assert_grads_equal(bptt_gradients(rnn, readout, x, y, loss_mask=mask), want)
    assert_grads_equal(tbptt_gradients(rnn, readout, x, y, n, n, loss_mask=mask), want)


@pytest.mark.parametrize("cell", [c for c in CELLS if "layer" not in c])
def test_rtrl_equals_full_bptt(cell):
    n = 13
    rnn, readout, x, y = make(cell, n, seed=1)
    mask = np.arange(n) % 3 == 0
    assert_grads_equal(
        rtrl_gradients(rnn, readout, x, y, loss_mask=mask), autograd_loss_grads(rnn, readout, x, y, mask)
    )


@pytest.mark.parametrize("cell", ["elman-tanh", "nn.LSTM"])
def test_rtrl_memory_does_not_grow_with_n(cell):
    from bptt_core.learning.truncation import _rtrl

    held = set()
    for n in (4, 40):
        rnn, readout, x, y = make(cell, n)
        held.add(_rtrl(rnn, readout, x, y, None)[1])
    assert held == {rtrl_memory_bytes(rnn)}


# -- TBPTT(k1, k2) against its definitions ---------------------------------------------------------


@pytest.mark.parametrize("cell", ["elman-tanh", "elman-sigmoid", "nn.LSTM", "nn.GRU"])
@pytest.mark.parametrize("k", [1, 3, 4, 6, 12])
def test_k1_eq_k2_dividing_n_is_chunk_and_detach(cell, k):
    n = 12
    rnn, readout, x, y = make(cell, n, seed=2)
    assert_grads_equal(tbptt_gradients(rnn, readout, x, y, k, k), chunk_and_detach(rnn, readout, x, y, k))


# (n, k1, k2): every Williams & Peng configuration, partial final updates, k2 < k1 and k2 > k1
CONFIGS = [
    (10, 10, 10),  # full BPTT
    (10, 1, 10),  # real-time BPTT(n; 1)
    (10, 4, 1),  # (k1, 1)
    (10, 3, 5),  # k1 < k2 < n, partial final update
    (10, 3, 3),  # k1 = k2 not dividing n
    (10, 4, 2),  # k2 < k1, partial final update: early losses reach only the readout
    (9, 9, 4),  # one update, short look-back
    (7, 2, 7),  # k2 = n > k1
    (8, 3, 8),
]


@pytest.mark.parametrize("cell", GATED_AND_VANILLA)
@pytest.mark.parametrize("n,k1,k2", CONFIGS)
def test_tbptt_matches_definition(cell, n, k1, k2):
    rnn, readout, x, y = make(cell, n, seed=3)
    assert_grads_equal(tbptt_gradients(rnn, readout, x, y, k1, k2), reference_tbptt(rnn, readout, x, y, k1, k2))


@pytest.mark.parametrize("cell", ["elman-tanh", "nn.LSTM"])
def test_tbptt_with_loss_mask_matches_definition(cell):
    n = 10
    rnn, readout, x, y = make(cell, n, seed=4)
    mask = np.array([0, 1, 1, 0, 0, 1, 0, 0, 1, 1], dtype=bool)
    for k1, k2 in [(4, 2), (3, 5), (1, 10)]:
        assert_grads_equal(
            tbptt_gradients(rnn, readout, x, y, k1, k2, loss_mask=mask),
            reference_tbptt(rnn, readout, x, y, k1, k2, mask),
        )


@pytest.mark.parametrize("cell", ["elman-tanh", "nn.LSTM", "nn.GRU"])
def test_loss_before_window_reaches_only_the_readout(cell):
    n, k1, k2 = 8, 8, 3  # one update at tau = 8, window h_6 .. h_8 (1-indexed)
    rnn, readout, x, y = make(cell, n, seed=5)
    early = np.arange(n) == 2  # step 3: before the window
    n_rnn = len(list(rnn.parameters()))
    got = tbptt_gradients(rnn, readout, x, y, k1, k2, loss_mask=early)
    full = bptt_gradients(rnn, readout, x, y, loss_mask=early)
    for g in got[:n_rnn]:
        assert torch.count_nonzero(g) == 0  # exactly: no path into the recurrence
    assert_grads_equal(got[n_rnn:], full[n_rnn:])  # the readout sees the same h_3
    assert any(g.abs().max() > 1e-6 for g in full[:n_rnn])  # ... which full BPTT does propagate
    # with a loss in the window too, the recurrent part is exactly that loss's own
    both = early | (np.arange(n) == n - 1)
    got = tbptt_gradients(rnn, readout, x, y, k1, k2, loss_mask=both)
    late_only = tbptt_gradients(rnn, readout, x, y, k1, k2, loss_mask=np.arange(n) == n - 1)
    assert_grads_equal(got[:n_rnn], late_only[:n_rnn])
    assert_grads_equal(got[n_rnn:], bptt_gradients(rnn, readout, x, y, loss_mask=both)[n_rnn:])


def test_batched_input_is_the_sum_over_sequences():
    n, B = 9, 3
    rnn, readout, _, _ = make("nn.LSTM", n, seed=6)
    x = torch.randn(n, B, I, dtype=torch.float64)
    y = torch.randn(n, B, O, dtype=torch.float64)
    for k1, k2 in [(9, 9), (2, 5), (4, 2)]:
        want = [
            sum(gs)
            for gs in zip(*(reference_tbptt(rnn, readout, x[:, b], y[:, b], k1, k2) for b in range(B)), strict=True)
        ]
        assert_grads_equal(tbptt_gradients(rnn, readout, x, y, k1, k2), want)


# -- schedule and kept mask ------------------------------------------------------------------------


def test_schedule_from_the_definition():
    # n = 10, k1 = 4, k2 = 6: updates at 4, 8 and the partial 10; each looks back 6 steps (or to h_0)
    s = tbptt_schedule(10, 4, 6)
    assert [u.tau for u in s] == [4, 8, 10]
    assert [u.loss_steps for u in s] == [range(0, 4), range(4, 8), range(8, 10)]
    assert [u.window for u in s] == [range(0, 4), range(2, 8), range(4, 10)]
    # the Williams & Peng corners
    assert [(u.tau, u.window) for u in tbptt_schedule(5, 5, 5)] == [(5, range(0, 5))]
    assert [u.window for u in tbptt_schedule(4, 1, 4)] == [range(0, t) for t in range(1, 5)]
    assert [u.window for u in tbptt_schedule(6, 3, 1)] == [range(2, 3), range(5, 6)]
    assert tbptt_backward_steps(10, 4, 6) == 4 + 6 + 6
    assert tbptt_backward_steps(10, 5, 5) == 10 and tbptt_backward_steps(10, 1, 10) == 55


@pytest.mark.parametrize("n,k1,k2", CONFIGS)
def test_kept_mask_structure(n, k1, k2):
    keep = tbptt_kept_mask(n, k1, k2)
    assert keep.shape == (n, n) and keep.dtype == bool
    assert not np.triu(keep, 1).any()  # s > t is never a dependency
    s, t = np.meshgrid(np.arange(n), np.arange(n))
    assert not keep[t - s >= k2].any()  # the window of the update that injects l_t ends at or after t
    for u in tbptt_schedule(n, k1, k2):  # the last loss of an update sees its whole window
        assert keep[u.tau - 1, u.window].all()
    if k1 == n and k2 == n:
        assert keep[s <= t].all()


@pytest.mark.parametrize("cell", ["elman-tanh", "nn.LSTM"])
@pytest.mark.parametrize("n,k1,k2", [(7, 3, 2), (7, 2, 4), (7, 1, 7), (7, 7, 3), (7, 3, 1)])
def test_kept_mask_agrees_with_tbptt_gradients(cell, n, k1, k2):
    """For a loss at step t alone, the TBPTT gradient of W_ih is the sum of exactly the kept terms.

    W_ih, not W_hh: with h_0 = 0 the step-1 term of W_hh is zero, so dropping it could not be seen.
    """
    rnn, readout, x, y = make(cell, n, seed=7)
    keep = tbptt_kept_mask(n, k1, k2)
    for t in range(n):
        terms = contributions(rnn, readout, x, y, t, param="weight_ih_l0")  # (t + 1, *W_ih.shape)
        assert (terms.reshape(t + 1, -1).norm(dim=1) > 1e-10).all()  # every dropped term could be seen
        got = tbptt_gradients(rnn, readout, x, y, k1, k2, loss_mask=np.arange(n) == t)[0]  # weight_ih_l0
        torch.testing.assert_close(got, terms[keep[t, : t + 1]].sum(0), **TOL)


# -- the variants compared ---------------------------------------------------------------------


def test_compare_variants_measures_every_variant():
    torch.manual_seed(0)
    n = 100
    rnn, readout = ElmanRNN(4, 16), nn.Linear(16, 2)
    x, y = torch.randn(n, 4), torch.randn(n, 2)
    df = compare_variants(rnn, readout, x, y, ks=(10, 20, 200), k1k2=(5, 15), repeats=2)
    cols = {"variant", "k1", "k2", "memory_bytes", "memory_how", "time_per_update_s", "cosine", "relative_norm"}
    assert cols <= set(df.columns) and {"updates", "note"} <= set(df.columns)
    by = df.set_index("variant")
    assert list(by.index) == ["full BPTT", "TBPTT(10, 10)", "TBPTT(20, 20)", "TBPTT(200, 200)", "TBPTT(5, 15)", "RTRL"]
    ran = by.drop(index="TBPTT(200, 200)")
    for c in ["memory_bytes", "time_per_update_s", "cosine", "relative_norm"]:
        assert np.isfinite(ran[c].astype(float)).all(), c
    assert (ran["memory_bytes"] > 0).all() and (ran["time_per_update_s"] > 0).all()
    assert by.loc["full BPTT", "cosine"] == pytest.approx(1, abs=1e-6)
    assert by.loc["full BPTT", "relative_norm"] == pytest.approx(1, abs=1e-6)
    assert by.loc["RTRL", "cosine"] == pytest.approx(1, abs=1e-4)  # float32, different summation order
    assert by.loc["RTRL", "relative_norm"] == pytest.approx(1, abs=1e-4)
    assert by.loc["TBPTT(10, 10)", "memory_bytes"] < by.loc["TBPTT(20, 20)", "memory_bytes"]
    assert by.loc["TBPTT(20, 20)", "memory_bytes"] < by.loc["full BPTT", "memory_bytes"]
    assert by.loc["TBPTT(10, 10)", "updates"] == 10 and by.loc["TBPTT(5, 15)", "updates"] == 20
    assert by.loc["RTRL", "memory_how"] == "sensitivity matrices"
    assert by.loc["full BPTT", "memory_how"].startswith("measured")
    assert "skipped" in by.loc["TBPTT(200, 200)", "note"] and math.isnan(by.loc["TBPTT(200, 200)", "cosine"])


def test_compare_variants_explains_its_rows_and_never_repeats_full_bptt():
    torch.manual_seed(0)
    n = 30
    rnn, readout = ElmanRNN(3, 8), nn.Linear(8, 2)
    x, y = torch.randn(n, 3), torch.randn(n, 2)
    df = compare_variants(rnn, readout, x, y, ks=(10, n), k1k2=(n, n), repeats=3).set_index("variant")
    assert f"TBPTT({n}, {n})" not in df.index  # it is full BPTT
    assert f"TBPTT({n}, {n})" in df.loc["full BPTT", "note"]
    assert "reference" in df.loc["TBPTT(10, 10)", "note"]
    chosen = compare_variants(rnn, readout, x, y, ks=(10,), k1k2=(5, 10), repeats=1).set_index("variant")
    assert chosen.loc["TBPTT(5, 10)", "note"] == "the chosen truncation"
    lo, mid, hi = (df[c].astype(float) for c in ("time_per_update_min_s", "time_per_update_s", "time_per_update_max_s"))
    assert ((lo <= mid) & (mid <= hi)).all()


def test_held_for_backward_grows_with_the_window():
    rnn, readout, x, y = make("nn.GRU", 40)
    full = held_for_backward_bytes(rnn, readout, x, y)
    assert held_for_backward_bytes(rnn, readout, x, y, 40, 40) == full
    small = [held_for_backward_bytes(rnn, readout, x, y, k, k) for k in (5, 10, 20)]
    assert small[0] < small[1] < small[2] < full


# -- bad input ---------------------------------------------------------------------------------

BAD_TRUNCATION = [
    (dict(k1=0, k2=3), "k1"),
    (dict(k1=3, k2=0), "k2"),
    (dict(k1=-2, k2=3), "k1"),
    (dict(k1=9, k2=3), "k1"),  # n = 8
    (dict(k1=3, k2=9), "k2"),
    (dict(k1=2.5, k2=3), "k1"),
    (dict(k1="4", k2=3), "k1"),
    (dict(k1=True, k2=3), "k1"),
]


@pytest.mark.parametrize("kw,name", BAD_TRUNCATION)
def test_bad_truncation_names_the_setting_and_range(kw, name):
    rnn, readout, x, y = make("elman-tanh", 8)
    for fn in (
        lambda: tbptt_gradients(rnn, readout, x, y, **kw),
        lambda: tbptt_schedule(8, **kw),
        lambda: tbptt_kept_mask(8, **kw),
    ):
        with pytest.raises(ValueError, match=rf"{name} must be .*\[1, 8\]"):
            fn()


@pytest.mark.parametrize(
    "change,name",
    [
        (lambda x, y: (x[:, :2], y), "x"),
        (lambda x, y: (x[0], y), "x"),
        (lambda x, y: (x[None, None], y), "x"),
        (lambda x, y: (x, y[:, :1]), "y"),
        (lambda x, y: (x, y[:-1]), "y"),
        (lambda x, y: (x * math.nan, y), "x"),
    ],
)
def test_bad_shapes_name_the_setting(change, name):
    rnn, readout, x, y = make("nn.LSTM", 8)
    x, y = change(x, y)
    for fn in (bptt_gradients, rtrl_gradients, lambda *a: tbptt_gradients(*a, 2, 2)):
        with pytest.raises(ValueError, match=rf"^{name} must"):
            fn(rnn, readout, x, y)


def test_bad_loss_mask_and_models():
    rnn, readout, x, y = make("elman-tanh", 8)
    with pytest.raises(ValueError, match="loss_mask must have shape"):
        tbptt_gradients(rnn, readout, x, y, 2, 2, loss_mask=np.ones(7, bool))
    with pytest.raises(ValueError, match="loss_mask must select"):
        bptt_gradients(rnn, readout, x, y, loss_mask=np.zeros(8, bool))
    with pytest.raises(ValueError, match="in_features"):
        bptt_gradients(rnn, nn.Linear(H + 1, O).double(), x, y)
    with pytest.raises(ValueError, match="num_layers"):
        rtrl_gradients(nn.RNN(I, H, num_layers=2).double(), readout, x, y)
    with pytest.raises(ValueError, match="k1k2"):
        compare_variants(rnn, readout, x, y, k1k2=(2,))
    with pytest.raises(ValueError, match=r"k2 must be in \[1, 8\]"):
        compare_variants(rnn, readout, x, y, k1k2=(2, 9))
    with pytest.raises(ValueError, match="ks"):
        compare_variants(rnn, readout, x, y, ks=(0,))


def test_compare_variants_options_and_no_side_effects():
    rnn, readout, x, y = make("nn.GRU", 12)
    df = compare_variants(rnn, readout, x, y, ks=5, repeats=1, rtrl_max_flops=1.0)
    assert list(df["variant"]) == ["full BPTT", "TBPTT(5, 5)", "RTRL"]
    assert "skipped" in df["note"].iloc[-1] and df["updates"].iloc[1] == 3  # 5, 10 and the partial 12
    assert all(p.grad is None for p in params(rnn, readout))  # .grad untouched: safe inside a training loop


def test_held_for_backward_picks_an_update_with_a_loss_in_its_window():
    n = 12
    rnn, readout, x, y = make("elman-tanh", n)
    mask = np.arange(n) == 3  # only the first update (tau = 4) has a loss
    assert held_for_backward_bytes(rnn, readout, x, y, 4, 4, loss_mask=mask) == held_for_backward_bytes(
        rnn, readout, x[:4], y[:4], 4, 4, loss_mask=mask[:4]
    )


@pytest.mark.parametrize("cell", ["nn.LSTM-2layer-bf", "LRU", "SelectiveSSM"])
def test_compare_variants_on_stacks_and_diagonal_cells(cell):
    rnn, readout, x, y = make(cell, 30, seed=7)
    by = compare_variants(rnn, readout, x, y, ks=(10,), repeats=1).set_index("variant")
    assert by.loc["full BPTT", "cosine"] == pytest.approx(1, abs=1e-9)
    assert np.isfinite(float(by.loc["TBPTT(10, 10)", "cosine"]))
    if "layer" in cell:  # RTRL is refused for a stack, and said so
        assert "single-layer" in by.loc["RTRL", "note"] and math.isnan(by.loc["RTRL", "cosine"])
    else:  # RTRL runs on the diagonal cells and equals full BPTT
        assert by.loc["RTRL", "cosine"] == pytest.approx(1, abs=1e-9)


# == Per-step contributions dl_t/dW, checked in float64 ======================================================

I_C, H_C, O_C, N = 3, 4, 2, 9
CONTRIB_TOL = dict(rtol=1e-10, atol=1e-13)

CONTRIB_CELLS = {**recurrent_cells(I_C, H_C), **{k: v for k, v in stacked_cells(I_C, H_C).items() if "relu" not in k}}
VANILLA = [
    c for c in CONTRIB_CELLS if ("RNN" in c or "elman" in c) and "layer" not in c
]  # single layer: the hand formula
PARAMS = ["weight_hh_l0", "weight_ih_l0", "bias_hh_l0", "bias_ih_l0"]
TIMES = [0, 1, 4, N - 1]

# phi'(a), written out here rather than borrowed from the library
DERIVATIVE = {
    "tanh": lambda a: 1 - torch.tanh(a) ** 2,
    "relu": lambda a: (a > 0).double(),
    "sigmoid": lambda a: torch.sigmoid(a) * (1 - torch.sigmoid(a)),
    "linear": torch.ones_like,
}
PHI = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "linear": lambda a: a}


def make_contrib(cell: str, seed: int = 0):
    torch.manual_seed(seed)
    rnn = CONTRIB_CELLS[cell]().double()
    with torch.no_grad():
        rnn.weight_hh_l0.mul_(1.7)  # long-range terms well away from zero
    readout = nn.Linear(H_C, O_C).double()
    return rnn, readout, torch.randn(N, I_C, dtype=torch.float64), torch.randn(N, O_C, dtype=torch.float64)


def run(rnn, x, state=None):
    """The module on one sequence x (n, I): time-major output (n, H) whatever batch_first says."""
    if getattr(rnn, "batch_first", False):
        out, state = rnn(x[None], state)
        return out[0], state
    out, state = rnn(x[:, None], state)
    return out[:, 0], state


def loss_at(rnn, readout, x, y, t):
    out, _ = run(rnn, x[: t + 1])
    return ((readout(out[t]) - y[t]) ** 2).sum()


@pytest.mark.parametrize("cell", list(CONTRIB_CELLS))
@pytest.mark.parametrize("param", PARAMS)
@pytest.mark.parametrize("t", TIMES)
def test_terms_sum_to_autograd(cell, param, t):
    rnn, readout, x, y = make_contrib(cell)
    terms = contributions(rnn, readout, x, y, t, param)
    W = dict(rnn.named_parameters())[param]
    assert terms.shape == (t + 1, *W.shape)
    want = torch.autograd.grad(loss_at(rnn, readout, x, y, t), W)[0]
    torch.testing.assert_close(terms.sum(0), want, **CONTRIB_TOL)
    if t >= 2 and param in ("weight_hh_l0", "weight_ih_l0") and "relu" not in cell:  # ReLU units may all be off
        assert (terms[1:].reshape(t, -1).norm(dim=1) > 0).all()  # a real decomposition, not one lump


@pytest.mark.parametrize("cell", VANILLA)
@pytest.mark.parametrize("t", [3, N - 1])
def test_vanilla_terms_are_the_hand_derived_ones(cell, t):
    """term_i(W_hh) = outer(delta_i, h_{i-1}), term_i(W_ih) = outer(delta_i, x_i), term_i(b) = delta_i,
    with delta_i = dl_t/dh_i * phi'(a_i) and dl_t/dh_{i-1} = (dl_t/dh_i * phi'(a_i)) W_hh."""
    rnn, readout, x, y = make_contrib(cell, seed=1)
    act = getattr(rnn, "nonlinearity", "tanh")
    W_ih, W_hh = rnn.weight_ih_l0.detach(), rnn.weight_hh_l0.detach()
    b = (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach()
    Wy, by = readout.weight.detach(), readout.bias.detach()
    hs, pre = [torch.zeros(H_C, dtype=torch.float64)], []
    for i in range(t + 1):
        pre.append(W_ih @ x[i] + W_hh @ hs[-1] + b)
        hs.append(PHI[act](pre[-1]))
    g = 2 * (Wy @ hs[t + 1] + by - y[t]) @ Wy  # dl_t/dh_t
    want_hh, want_ih, want_b = [], [], []
    for i in range(t, -1, -1):
        delta = g * DERIVATIVE[act](pre[i])
        want_hh.insert(0, torch.outer(delta, hs[i]))  # hs[i] is h_{i-1} in the step numbering of x
        want_ih.insert(0, torch.outer(delta, x[i]))
        want_b.insert(0, delta)
        g = delta @ W_hh
    for param, want in [("weight_hh_l0", want_hh), ("weight_ih_l0", want_ih), ("bias_hh_l0", want_b)]:
        torch.testing.assert_close(contributions(rnn, readout, x, y, t, param), torch.stack(want), **CONTRIB_TOL)


@pytest.mark.parametrize("cell", list(CONTRIB_CELLS))
def test_last_term_is_the_one_step_gradient(cell):
    rnn, readout, x, y = make_contrib(cell, seed=2)
    t = 5
    with torch.no_grad():
        _, state = run(rnn, x[:t])  # the state before step t, held constant
    out, _ = run(rnn, x[t : t + 1], state)
    one_step = torch.autograd.grad(((readout(out[0]) - y[t]) ** 2).sum(), rnn.weight_hh_l0)[0]
    torch.testing.assert_close(contributions(rnn, readout, x, y, t)[-1], one_step, **CONTRIB_TOL)


def test_norms_for_the_bar_chart():
    rnn, readout, x, y = make_contrib("elman-tanh")
    terms = contributions(rnn, readout, x, y, N - 1)
    norms = contribution_norms(rnn, readout, x, y, N - 1)
    assert norms.shape == (N,) and norms.dtype == np.float64
    np.testing.assert_allclose(norms, [torch.linalg.norm(m).item() for m in terms], rtol=1e-12)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(t=-1), r"t must be in \[0, 8\]"),
        (dict(t=N), r"t must be in \[0, 8\]"),
        (dict(t=1.5), r"t must be a whole number"),
        (dict(t=2, param="weight_hy"), r"param must be one of weight_ih_l0"),
    ],
)
def test_bad_input_names_the_setting(kw, match):
    rnn, readout, x, y = make_contrib("nn.GRU")
    with pytest.raises(ValueError, match=match):
        contributions(rnn, readout, x, y, **kw)


def test_one_sequence_only():
    rnn, readout, x, y = make_contrib("elman-tanh")
    with pytest.raises(ValueError, match="one sequence"):
        contributions(rnn, readout, x[:, None].expand(N, 2, I_C), y[:, None].expand(N, 2, O_C), 3)


# == Hypothesis: any k1, k2 ==================================================================================


@settings(PROFILE, max_examples=120)
@given(
    st.sampled_from(["rnn", "lstm", "gru"]),
    st.integers(1, 9),
    st.one_of(st.integers(-2, 12), WILD),
    st.one_of(st.integers(-2, 12), WILD),
)
def test_tbptt_gradients_bad_k1_k2(cell, n, k1, k2):
    """Any k1, k2: a ValueError, or one finite gradient per parameter; TBPTT(n, n) is full BPTT."""
    from bptt_core import bptt_gradients, tbptt_gradients

    torch.manual_seed(0)
    rnn = {"rnn": lambda: ElmanRNN(2, 3), "lstm": lambda: nn.LSTM(2, 3), "gru": lambda: nn.GRU(2, 3)}[cell]().double()
    readout = nn.Linear(3, 1).double()
    x, y = torch.randn(n, 2, dtype=torch.float64), torch.randn(n, 1, dtype=torch.float64)
    grads = only_value_errors(tbptt_gradients, rnn, readout, x, y, k1, k2)
    if grads is None:
        return
    params = [*rnn.parameters(), *readout.parameters()]
    assert len(grads) == len(params)
    assert all(g.shape == p.shape and torch.isfinite(g).all() for g, p in zip(grads, params, strict=True))
    if int(k1) == int(k2) == n:
        for g, r in zip(grads, bptt_gradients(rnn, readout, x, y), strict=True):
            torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)
