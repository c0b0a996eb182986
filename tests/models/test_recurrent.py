"""The recurrent modules and views (bptt_core.models.recurrent): ElmanRNN equals torch's RNN with the same
weights, its activations and their gamma, and cell_view's refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from bptt_core import ElmanRNN
from bptt_core.config import ACTIVATIONS
from bptt_core.models.recurrent import ACTIVATION_GAMMA, cell_view, make_rnn


def test_cell_view_refuses_bidirectional_and_says_why():
    for cls in (nn.RNN, nn.LSTM, nn.GRU):
        for layers in (1, 2):
            with pytest.raises(ValueError, match="bidirectional must be False.*reversed time"):
                cell_view(cls(2, 3, num_layers=layers, bidirectional=True))


def test_cell_view_takes_stacked_and_batch_first_modules():
    from bptt_core.models.recurrent import StackedView

    v = cell_view(nn.LSTM(2, 3, num_layers=3, batch_first=True))
    assert isinstance(v, StackedView) and v.num_layers == 3 and v.state_size == 3 * 6
    assert [v.layer_slice(k) for k in range(3)] == [slice(0, 6), slice(6, 12), slice(12, 18)]
    assert cell_view(nn.GRU(2, 3, batch_first=True)).state_size == 3


def test_elman_rejects_unknown_activation_and_make_rnn_unknown_cell():
    with pytest.raises(ValueError, match="activation must be one of"):
        ElmanRNN(2, 3, "swish")
    with pytest.raises(ValueError, match="cell must be one of"):
        make_rnn("xyz", 2, 3)


# -- models ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_elman_rnn_equals_torch_rnn_with_the_same_weights(act):
    torch.manual_seed(0)
    ref = nn.RNN(3, 5, nonlinearity=act).double()
    mine = ElmanRNN(3, 5, act).double()
    mine.load_state_dict(ref.state_dict())  # same parameter names: state_dicts interchangeable
    x = torch.randn(7, 2, 3, dtype=torch.float64)
    h0 = torch.randn(1, 2, 5, dtype=torch.float64)
    out_r, hn_r = ref(x, h0)
    out_m, hn_m = mine(x, h0)
    torch.testing.assert_close(out_m, out_r)
    torch.testing.assert_close(hn_m, hn_r)
    out_u, _ = mine(x[:, 0])  # unbatched (T, I) call
    torch.testing.assert_close(out_u, ref(x[:, 0])[0])


@pytest.mark.parametrize("act,phi", [("sigmoid", torch.sigmoid), ("linear", lambda a: a)])
def test_elman_extra_activations(act, phi):
    torch.manual_seed(0)
    m = ElmanRNN(2, 3, act).double()
    x = torch.randn(4, 2, dtype=torch.float64)
    h = torch.zeros(3, dtype=torch.float64)
    for t in range(4):
        h = phi(m.weight_ih_l0 @ x[t] + m.bias_ih_l0 + m.weight_hh_l0 @ h + m.bias_hh_l0)
    torch.testing.assert_close(m(x)[0][-1], h)


def test_activation_gamma_is_the_sup_of_the_derivative():
    from bptt_core.models.recurrent import activation_derivative

    a = torch.linspace(-20, 20, 40001, dtype=torch.float64)
    for act in ACTIVATIONS:
        assert activation_derivative(act, a).max().item() == pytest.approx(ACTIVATION_GAMMA[act], rel=1e-6)


def test_tanh_derivative_keeps_tiny_slopes_of_saturated_units():
    from bptt_core.models.recurrent import activation_derivative

    d = activation_derivative("tanh", torch.tensor([25.0, -40.0], dtype=torch.float64))
    assert (d > 0).all()  # 1 - tanh^2 would be exactly 0 here
    np.testing.assert_allclose(torch.log(d).numpy(), [math.log(4) - 50, math.log(4) - 80], rtol=1e-10)
