"""Bring-your-own-model: loading state_dicts and sequences, round trips, and every documented error.

Round trips are checked by behaviour (the loaded module's outputs equal the original's), not by
the loader's own reading of the keys. Error cases are declared as data and swept: each names
the state_dict that triggers it and words the message must contain (what is wrong and what is
expected).
"""

from __future__ import annotations

import io
from collections import OrderedDict

import numpy as np
import pytest
import torch
from safetensors.torch import save as st_save
from torch import nn

from bptt_core import LRU, MinGRU, MinLSTM, SelectiveSSM, jacobian_log_norms
from bptt_core.config import MAX_HIDDEN, MAX_INPUT, MAX_SEQ_LEN
from bptt_core.files.model_io import (
    MAX_UPLOAD_BYTES,
    LoadedModel,
    ModelFileError,
    SequenceFileError,
    load_model,
    load_sequence,
    model_bytes,
    model_fingerprint,
    save_model,
)
from bptt_core.models.recurrent import ElmanRNN

I, H, O, T = 3, 5, 2, 7

# (name, factory, expected cell, expected nonlinearity once told)
MODELS = {
    "nn.RNN-tanh": (lambda: nn.RNN(I, H), "rnn", "tanh"),
    "nn.RNN-relu": (lambda: nn.RNN(I, H, nonlinearity="relu"), "rnn", "relu"),
    "nn.RNN-nobias": (lambda: nn.RNN(I, H, bias=False), "rnn", "tanh"),
    "elman-sigmoid": (lambda: ElmanRNN(I, H, "sigmoid"), "rnn", "sigmoid"),
    "elman-linear": (lambda: ElmanRNN(I, H, "linear"), "rnn", "linear"),
    "nn.LSTM": (lambda: nn.LSTM(I, H), "lstm", "tanh"),
    "nn.LSTM-nobias": (lambda: nn.LSTM(I, H, bias=False), "lstm", "tanh"),
    "nn.GRU": (lambda: nn.GRU(I, H), "gru", "tanh"),
}
FORMATS = ("m.pt", "m.pth", "m.safetensors")


def pt_bytes(obj, **kw) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kw)
    return buf.getvalue()


def outputs(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return module(x)[0]


def same_behaviour(a: nn.Module, b: nn.Module) -> None:
    x = torch.randn(T, I, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(outputs(a, x), outputs(b, x), rtol=1e-6, atol=1e-6)


def rnn_sd(G: int = 1, h: int = H, i: int = I, bias: bool = True, prefix: str = "") -> dict:
    g = torch.Generator().manual_seed(0)
    sd = {"weight_ih_l0": torch.randn(G * h, i, generator=g), "weight_hh_l0": torch.randn(G * h, h, generator=g)}
    if bias:
        sd |= {"bias_ih_l0": torch.randn(G * h, generator=g), "bias_hh_l0": torch.randn(G * h, generator=g)}
    return {prefix + k: v for k, v in sd.items()}


# -- round trips -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", MODELS)
def test_round_trip_preserves_behaviour(name, fmt):
    factory, cell, act = MODELS[name]
    torch.manual_seed(0)
    original = factory()
    loaded = load_model(model_bytes(original, fmt), fmt, nonlinearity=act if cell == "rnn" else None)
    assert isinstance(loaded, LoadedModel)
    assert (loaded.cell, loaded.input_size, loaded.hidden_size, loaded.nonlinearity) == (cell, I, H, act)
    assert not loaded.module.training
    assert all(p.dtype == torch.float32 for p in loaded.module.parameters())
    assert loaded.readout is None
    same_behaviour(original, loaded.module)


@pytest.mark.parametrize("fmt", ["m.pt", "m.safetensors"])
@pytest.mark.parametrize("name", ["nn.RNN-relu", "nn.LSTM", "nn.GRU"])
def test_round_trip_with_readout(name, fmt, tmp_path):
    factory, cell, act = MODELS[name]
    torch.manual_seed(3)
    original, readout = factory(), nn.Linear(H, O)
    path = save_model(original, tmp_path / fmt, readout=readout)
    loaded = load_model(path.read_bytes(), path.name, nonlinearity=act if fmt.endswith(".pt") else None)
    assert loaded.prefix == "rnn." and loaded.nonlinearity == act
    assert any("'rnn.'" in n for n in loaded.notes)
    same_behaviour(original, loaded.module)
    torch.testing.assert_close(loaded.readout.weight, readout.weight)
    torch.testing.assert_close(loaded.readout.bias, readout.bias)


def test_loaded_model_feeds_the_jacobian_engine():
    torch.manual_seed(0)
    original = nn.GRU(I, H)
    loaded = load_model(model_bytes(original, "m.pt"), "m.pt")
    x = torch.randn(T, I)
    np.testing.assert_allclose(jacobian_log_norms(loaded.module, x), jacobian_log_norms(original, x), equal_nan=True)


UPLOADABLE = {
    "2-layer LSTM": lambda: nn.LSTM(I, H, num_layers=2),
    "3-layer GRU, batch_first": lambda: nn.GRU(I, H, num_layers=3, batch_first=True),
    "2-layer RNN relu": lambda: nn.RNN(I, H, num_layers=2, nonlinearity="relu"),
    "LRU": lambda: LRU(I, H, r_min=0.9, r_max=0.99),
    "MinGRU": lambda: MinGRU(I, H),
    "MinLSTM": lambda: MinLSTM(I, H),
    "SelectiveSSM": lambda: SelectiveSSM(I, H),
}


@pytest.mark.parametrize("fmt", ["m.pt", "m.safetensors"])
@pytest.mark.parametrize("name", list(UPLOADABLE))
def test_stacked_and_diagonal_models_are_accepted_and_analysed(name, fmt):
    torch.manual_seed(4)
    original, readout = UPLOADABLE[name](), nn.Linear(H, O)
    act = "relu" if "relu" in name else None
    loaded = load_model(model_bytes(original, fmt, readout), fmt, act)
    assert loaded.num_layers == getattr(original, "num_layers", 1)
    assert loaded.hidden_size == H and loaded.input_size == I and loaded.readout is not None
    for k, v in original.state_dict().items():
        torch.testing.assert_close(loaded.module.state_dict()[k], v)
    x = torch.randn(T, I)
    for layer in range(loaded.num_layers):
        np.testing.assert_array_equal(
            jacobian_log_norms(loaded.module, x, layer=layer), jacobian_log_norms(original, x, layer=layer)
        )
    if loaded.num_layers > 1:
        assert f"num_layers={loaded.num_layers}" in loaded.summary()


def test_stacked_vanilla_rnn_with_an_activation_torch_cannot_stack_is_refused():
    with pytest.raises(ModelFileError, match="stacked vanilla RNN is torch's nn.RNN, expected tanh or relu"):
        load_model(pt_bytes(nn.RNN(I, H, num_layers=2).state_dict()), "m.pt", "sigmoid")


def test_vanilla_nonlinearity_defaults_to_tanh_and_says_so():
    loaded = load_model(pt_bytes(rnn_sd()), "m.pt")
    assert loaded.nonlinearity == "tanh" and loaded.module.nonlinearity == "tanh"
    assert any("not stored" in n and "assuming tanh" in n for n in loaded.notes)


def test_safetensors_metadata_names_the_nonlinearity_and_the_argument_wins():
    data = model_bytes(ElmanRNN(I, H, "relu"), "m.safetensors")
    assert load_model(data, "m.safetensors").nonlinearity == "relu"
    assert load_model(data, "m.safetensors", nonlinearity="sigmoid").nonlinearity == "sigmoid"


@pytest.mark.parametrize("prefix", ["module.", "rnn.", "encoder.rnn.", "model.module.lstm."])
def test_common_prefix_is_stripped_and_reported(prefix):
    loaded = load_model(pt_bytes(rnn_sd(4, prefix=prefix)), "m.pt")
    assert loaded.cell == "lstm" and loaded.prefix == prefix
    assert any(repr(prefix) in n for n in loaded.notes)


class Tagger(nn.Module):
    """A bigger model with exactly one recurrent layer: embedding -> LSTM -> fc."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(11, I)
        self.lstm = nn.LSTM(I, H)
        self.norm = nn.LayerNorm(H)
        self.fc = nn.Linear(H, O)


def test_full_model_state_dict_picks_the_recurrent_layer_and_the_readout():
    torch.manual_seed(0)
    model = Tagger()
    loaded = load_model(pt_bytes(model.state_dict()), "tagger.pt")
    assert (loaded.cell, loaded.prefix, loaded.readout.out_features) == ("lstm", "lstm.", O)
    same_behaviour(model.lstm, loaded.module)
    torch.testing.assert_close(loaded.readout.weight, model.fc.weight)
    assert any("other entries" in n for n in loaded.notes)  # embed.weight, norm.weight, norm.bias


def test_training_checkpoint_uses_the_inner_state_dict():
    torch.manual_seed(0)
    rnn = nn.GRU(I, H)
    ckpt = {"epoch": 3, "model_state_dict": rnn.state_dict(), "optimizer": {"lr": 0.1}}
    loaded = load_model(pt_bytes(ckpt), "ckpt.pt")
    assert loaded.cell == "gru" and any("model_state_dict" in n for n in loaded.notes)
    same_behaviour(rnn, loaded.module)


@pytest.mark.parametrize("cell_cls", [nn.RNNCell, nn.LSTMCell, nn.GRUCell])
def test_cell_style_keys_are_read_as_one_layer(cell_cls):
    torch.manual_seed(0)
    cell = cell_cls(I, H)
    loaded = load_model(pt_bytes(cell.state_dict()), "cell.pt")
    x = torch.randn(T, I)
    view = loaded.module
    h = torch.zeros(1, H) if cell_cls is not nn.LSTMCell else (torch.zeros(1, H), torch.zeros(1, H))
    for t in range(T):  # step the cell by hand; the loaded layer's output at t must match
        h = cell(x[t : t + 1], h)
    last = h[0] if cell_cls is nn.LSTMCell else h
    torch.testing.assert_close(outputs(view, x)[-1], last[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_dtypes_are_converted_with_a_note(dtype):
    sd = {k: v.to(dtype) for k, v in rnn_sd(3).items()}
    loaded = load_model(pt_bytes(sd), "m.pt")
    assert loaded.cell == "gru" and next(loaded.module.parameters()).dtype == torch.float32
    assert any("converted from" in n and str(dtype).removeprefix("torch.") in n for n in loaded.notes)


def test_parameters_saved_as_nn_parameter_load():
    sd = OrderedDict((k, nn.Parameter(v)) for k, v in rnn_sd().items())
    assert load_model(pt_bytes(sd), "m.pt").cell == "rnn"


def test_legacy_torch_save_format_is_refused_by_name():
    """Legacy files are a chain of pickles whose storages torch sizes from the pickle itself: refused
    (and said so, with how to re-save) rather than read outside the zip checks (issue 11, finding 5)."""
    data = pt_bytes(rnn_sd(4), _use_new_zipfile_serialization=False)
    with pytest.raises(ModelFileError, match=r"legacy .*re-save it with torch.save"):
        load_model(data, "old.pt")


@pytest.mark.parametrize("ext", ["M.PT", "m.Safetensors"])
def test_extension_is_case_insensitive(ext):
    fmt = "m.pt" if ext.lower().endswith(".pt") else "m.safetensors"
    assert load_model(model_bytes(nn.GRU(I, H), fmt), ext).cell == "gru"


# -- documented errors -----------------------------------------------------------------------------


def sd_with(**changes) -> dict:
    sd = rnn_sd()
    for k, v in changes.items():
        if v is None:
            sd.pop(k)
        else:
            sd[k] = v
    return sd


# (case, state_dict, words the message must contain). Each says what is wrong and what is expected.
BAD_STATE_DICTS = {
    "stacked: tampered layer-1 W_hh": (
        {**nn.LSTM(I, H, num_layers=2).state_dict(), "weight_hh_l1": torch.zeros(4 * H, H + 1)},
        ["weight_hh_l1 has shape (20, 6)", "expected (20, 5)", "layer 1 of a 2-layer lstm"],
    ),
    "stacked: layer-1 W_ih not H wide": (
        {**nn.GRU(I, H, num_layers=3).state_dict(), "weight_ih_l2": torch.zeros(3 * H, I)},
        ["weight_ih_l2 has shape (15, 3)", "expected (15, 5)"],
    ),
    "stacked: a layer missing": (
        {k: v for k, v in nn.RNN(I, H, num_layers=3).state_dict().items() if not k.endswith("_l1")},
        ["missing weight_ih_l1", "3-layer model"],
    ),
    "stacked: a bias missing": (
        {k: v for k, v in nn.LSTM(I, H, num_layers=2).state_dict().items() if k != "bias_hh_l1"},
        ["missing bias_hh_l1", "expected shape (20,)"],
    ),
    "lru: tampered C_im": (
        {**LRU(I, H).state_dict(), "C_im": torch.zeros(H, H + 2)},
        ["C_im has shape (5, 7)", "expected (5, 5)", "lru with input_size=3, hidden_size=5"],
    ),
    "lru: gamma_log missing": (
        {k: v for k, v in LRU(I, H).state_dict().items() if k != "gamma_log"},
        ["missing gamma_log", "nu_log, theta_log, gamma_log"],
    ),
    "mingru: bias shape": (
        {**MinGRU(I, H).state_dict(), "bias_h": torch.zeros(H + 1)},
        ["bias_h has shape (6,)", "expected (5,)"],
    ),
    "ssm: A_log 2-D": (
        {**SelectiveSSM(I, H).state_dict(), "A_log": torch.zeros(H, 1)},
        ["A_log has shape (5, 1)", "expected (5,)"],
    ),
    "bidirectional": (nn.GRU(I, H, bidirectional=True).state_dict(), ["bidirectional", "expected bidirectional=False"]),
    "proj_size": (nn.LSTM(I, H, proj_size=2).state_dict(), ["proj_size=0", "weight_hr_l0"]),
    "no recurrent keys": (nn.Linear(I, H).state_dict(), ["no recurrent layer", "expected keys weight_ih_l0"]),
    "weight_hh missing": (sd_with(weight_hh_l0=None), ["no weight_hh_l0", "expected both"]),
    "lone bias": (sd_with(bias_hh_l0=None), ["bias_ih_l0 alone", "or neither"]),
    "W_hh not G*H rows": (sd_with(weight_hh_l0=torch.zeros(2 * H, H)), ["(10, 5)", "G = 1 (RNN), 3 (GRU) or 4 (LSTM)"]),
    "W_hh 1-D": (sd_with(weight_hh_l0=torch.zeros(H)), ["weight_hh_l0 has shape (5,)", "2-D"]),
    "W_ih rows mismatch": (
        sd_with(weight_ih_l0=torch.zeros(H + 1, I)),
        ["weight_ih_l0 has shape (6, 3)", "expected (5, input_size)"],
    ),
    "bias shape": (sd_with(bias_ih_l0=torch.zeros(H + 2)), ["bias_ih_l0 has shape (7,)", "expected (5,)"]),
    "hidden too large": (
        rnn_sd(h=MAX_HIDDEN + 1, bias=False),
        [f"hidden_size={MAX_HIDDEN + 1}", f"in [1, {MAX_HIDDEN}]"],
    ),
    "input too large": (rnn_sd(i=MAX_INPUT + 1), [f"input_size={MAX_INPUT + 1}", f"[1, {MAX_INPUT}]"]),
    "input zero": (rnn_sd(i=0), ["input_size=0", "[1, "]),
    "NaN weight": (sd_with(weight_hh_l0=torch.full((H, H), float("nan"))), ["25 non-finite", "expected finite"]),
    "inf bias": (sd_with(bias_hh_l0=torch.tensor([float("inf")] + [0.0] * (H - 1))), ["bias_hh_l0", "non-finite"]),
    "int weights": (sd_with(weight_hh_l0=torch.zeros(H, H, dtype=torch.int64)), ["torch.int64", "expected floating"]),
    "complex weights": (
        sd_with(weight_ih_l0=torch.zeros(H, I, dtype=torch.complex64)),
        ["complex64", "expected floating"],
    ),
    "bool weights": (sd_with(weight_ih_l0=torch.zeros(H, I, dtype=torch.bool)), ["torch.bool", "expected floating"]),
    "non-tensor weight": (sd_with(weight_hh_l0=[[0.0] * H] * H), ["weight_hh_l0 is a list", "expected a tensor"]),
    "no tensors at all": ({"epoch": 3, "lr": 0.1}, ["not tensors", "dict of parameter names to tensors"]),
    "two checkpoints": ({"a": rnn_sd(), "b": rnn_sd()}, ["ambiguous checkpoint", "expected one"]),
    "two recurrent layers": (
        {**rnn_sd(prefix="enc."), **rnn_sd(prefix="dec.")},
        ["ambiguous", "'enc.weight_ih_l0'", "expected exactly one"],
    ),
    "empty dict": ({}, ["empty", "expected weight_ih_l0"]),
    "a bare tensor": (torch.zeros(3), ["not a state_dict", "holds a Tensor"]),
    "a list": ([torch.zeros(3)], ["not a state_dict", "holds a list"]),
    "non-string keys": ({1: torch.zeros(1), "weight_ih_l0": torch.zeros(1)}, ["keys must be strings"]),
}


def safetensors_can_hold(obj) -> bool:
    return (
        isinstance(obj, dict)
        and bool(obj)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


BAD_CASES = [(c, "m.pt") for c in BAD_STATE_DICTS] + [
    (c, "m.safetensors") for c, (obj, _) in BAD_STATE_DICTS.items() if safetensors_can_hold(obj)
]


@pytest.mark.parametrize("case, fmt", BAD_CASES)
def test_bad_state_dicts_get_a_clear_message(case, fmt):
    obj, words = BAD_STATE_DICTS[case]
    if fmt.endswith(".safetensors"):
        data = st_save({k: v.contiguous() for k, v in obj.items()})
    else:
        data = pt_bytes(obj)
    with pytest.raises(ModelFileError) as err:
        load_model(data, fmt)
    for w in words:
        assert w in str(err.value), f"{case}: {w!r} not in {str(err.value)!r}"


@pytest.mark.parametrize(
    "filename, words",
    [
        ("m.onnx", ["'.onnx'", ".pt, .pth, .safetensors"]),
        ("model", ["(no extension)", "expected one of"]),
        ("m.pt.zip", ["'.zip'"]),
    ],
)
def test_unknown_extension(filename, words):
    with pytest.raises(ModelFileError) as err:
        load_model(model_bytes(nn.RNN(I, H), "m.pt"), filename)
    assert all(w in str(err.value) for w in words)


def test_upload_over_the_size_limit_is_refused_before_parsing(monkeypatch):
    def never(*a, **k):
        raise AssertionError("torch.load must not see an oversized upload")

    monkeypatch.setattr(torch, "load", never)
    data = bytes(MAX_UPLOAD_BYTES + 1)
    with pytest.raises(ModelFileError, match=r"50\.0 MiB: the upload limit is 50 MiB"):
        load_model(data, "big.pt")
    with pytest.raises(SequenceFileError, match="upload limit"):
        load_sequence(data, "big.npy", 2)


@pytest.mark.parametrize(
    "meta, words",
    [
        ({"nonlinearity": "swish"}, ["nonlinearity='swish'", "expected one of tanh, relu, sigmoid, linear"]),
        ({"cell": "lstm"}, ["cell='lstm'", "shapes are those of a rnn"]),
    ],
)
def test_safetensors_metadata_that_contradicts_the_weights(meta, words):
    data = st_save(rnn_sd(), metadata=meta)
    with pytest.raises(ModelFileError) as err:
        load_model(data, "m.safetensors")
    assert all(w in str(err.value) for w in words)


@pytest.mark.parametrize("bad", ["gelu", "", None.__class__.__name__, 3])
def test_bad_nonlinearity_argument(bad):
    with pytest.raises(ValueError, match="nonlinearity must be one of tanh, relu, sigmoid, linear"):
        load_model(pt_bytes(rnn_sd()), "m.pt", nonlinearity=bad)


def test_nonlinearity_for_a_gated_cell_is_ignored_with_a_note():
    loaded = load_model(pt_bytes(rnn_sd(3)), "m.pt", nonlinearity="relu")
    assert loaded.nonlinearity == "tanh" and any("ignored" in n for n in loaded.notes)


def test_ambiguous_readout_is_left_out_with_a_note():
    sd = {**rnn_sd(prefix="rnn."), "a.weight": torch.zeros(2, H), "b.weight": torch.zeros(3, H)}
    loaded = load_model(pt_bytes(sd), "m.pt")
    assert loaded.readout is None and any("no readout used" in n for n in loaded.notes)


# -- fingerprint -----------------------------------------------------------------------------------


def test_fingerprint_is_a_stable_sha256_of_the_bytes():
    data = model_bytes(nn.GRU(I, H), "m.pt")
    fp = model_fingerprint(data)
    assert fp == model_fingerprint(bytes(data)) and len(fp) == 64 and int(fp, 16) >= 0
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 1
    assert model_fingerprint(bytes(flipped)) != fp
    assert model_fingerprint(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


# -- sequences -------------------------------------------------------------------------------------

SEQ = np.arange(12, dtype=np.float64).reshape(4, 3) / 4 - 1


def npy_bytes(arr, allow_pickle=False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def csv_of(arr, sep=",", header=None) -> bytes:
    rows = ([sep.join(header)] if header else []) + [sep.join(repr(float(v)) for v in row) for row in arr]
    return ("\n".join(rows) + "\n").encode()


GOOD_SEQUENCES = {
    "csv": (csv_of(SEQ), "x.csv", 3),
    "csv header": (csv_of(SEQ, header=["a", "b", "c"]), "x.csv", 3),
    "csv semicolons": (csv_of(SEQ, sep=";"), "x.csv", 3),
    "csv tabs + header": (csv_of(SEQ, sep="\t", header=["u", "v", "w"]), "x.CSV", 3),
    "csv spaces": (csv_of(SEQ, sep=" "), "x.csv", 3),
    "csv BOM + CRLF + blank lines": (b"\xef\xbb\xbf" + csv_of(SEQ).replace(b"\n", b"\r\n\r\n"), "x.csv", 3),
    "npy float64": (npy_bytes(SEQ), "x.npy", 3),
    "npy float16": (npy_bytes(SEQ.astype(np.float16)), "x.npy", 3),
    "npy int": (npy_bytes((SEQ * 4).astype(np.int32)), "x.npy", 3),
    "npy fortran order": (npy_bytes(np.asfortranarray(SEQ)), "x.npy", 3),
}


@pytest.mark.parametrize("case", GOOD_SEQUENCES)
def test_good_sequences(case):
    data, name, width = GOOD_SEQUENCES[case]
    x = load_sequence(data, name, width)
    assert x.dtype == torch.float32 and x.shape == SEQ.shape
    expect = SEQ * 4 if "int" in case else SEQ
    np.testing.assert_allclose(x.numpy(), expect, rtol=1e-3 if "16" in case else 1e-7)


def test_one_column_sequences_for_input_size_one():
    col = SEQ[:, :1]
    for data, name in [(csv_of(col), "x.csv"), (npy_bytes(col[:, 0]), "x.npy"), (npy_bytes(col), "x.npy")]:
        np.testing.assert_allclose(load_sequence(data, name, 1).numpy(), col, rtol=1e-7)


def test_sequence_of_max_length_loads():
    arr = np.zeros((MAX_SEQ_LEN, 1))
    assert load_sequence(npy_bytes(arr), "x.npy", 1).shape == (MAX_SEQ_LEN, 1)


# (case, bytes, filename, input_size, words the message must contain)
BAD_SEQUENCES = {
    "width": (csv_of(SEQ), "x.csv", 2, ["the model expects input_size=2 columns, got 3"]),
    "width npy": (npy_bytes(SEQ), "x.npy", 4, ["the model expects input_size=4 columns, got 3"]),
    "1-D for wide model": (npy_bytes(SEQ[:, 0]), "x.npy", 3, ["1-D array", "(T, 3)"]),
    "non-number": (b"1,2,3\n4,five,6\n", "x.csv", 3, ["row 2, column 2 is 'five'", "expected a number"]),
    "mixed header": (b"a,2,3\n4,5,6\n", "x.csv", 3, ["row 1, column 1 is 'a'"]),
    "empty cell": (b"1,2,3\n4,,6\n", "x.csv", 3, ["row 2, column 2", "expected a number"]),
    "ragged": (b"1,2,3\n4,5\n", "x.csv", 3, ["row 2 has 2 values, expected 3"]),
    "nan csv": (b"1,2,3\n4,nan,6\n", "x.csv", 3, ["non-finite value (nan) at row 2, column 2"]),
    "float32 overflow": (b"1,2\n3,1e39\n", "x.csv", 2, ["too large for float32 (1e+39) at row 2, column 2"]),
    "inf npy": (npy_bytes(np.array([[1.0, np.inf]])), "x.npy", 2, ["non-finite value (inf) at row 1, column 2"]),
    "empty file": (b"", "x.csv", 3, ["empty (0 bytes)"]),
    "blank csv": (b"\n \n", "x.csv", 3, ["no data"]),
    "header only": (b"a,b,c\n", "x.csv", 3, ["no rows", "at least 1 time step"]),
    "empty npy": (npy_bytes(np.zeros((0, 3))), "x.npy", 3, ["no rows"]),
    "too long": (
        npy_bytes(np.zeros((MAX_SEQ_LEN + 1, 1))),
        "x.npy",
        1,
        [f"{MAX_SEQ_LEN + 1} time steps", f"seq_len <= {MAX_SEQ_LEN}"],
    ),
    "3-D npy": (npy_bytes(np.zeros((4, 1, 3))), "x.npy", 3, ["3-D array of shape (4, 1, 3)", "expected a 2-D"]),
    "0-D npy": (npy_bytes(np.float64(2.0)), "x.npy", 1, ["0-D array", "expected a 2-D"]),
    "complex npy": (npy_bytes(np.zeros((2, 3), np.complex64)), "x.npy", 3, ["complex64", "expected real numbers"]),
    "string npy": (npy_bytes(np.array([["a", "b"]])), "x.npy", 2, ["<U1", "expected real numbers"]),
    "object npy": (
        npy_bytes(np.array([[1, "a"]], dtype=object), allow_pickle=True),
        "x.npy",
        2,
        ["refused", "pickled object array"],
    ),
    "npz": (b"PK\x03\x04" + bytes(60), "x.npy", 2, ["not a readable .npy"]),
    "not utf-8": (b"1,2\n\xff\xfe,3\n", "x.csv", 2, ["not UTF-8 text"]),
    "NUL": (b"1,2\x00\n", "x.csv", 2, ["NUL bytes"]),
    "underscore digits": (b"1_000,2\n", "x.csv", 2, ["'1_000'", "expected a number"]),
    "extension": (csv_of(SEQ), "x.txt", 3, ["'.txt'", ".csv, .npy"]),
    "truncated npy": (npy_bytes(SEQ)[:-5], "x.npy", 3, ["not a readable .npy"]),
}


@pytest.mark.parametrize("case", BAD_SEQUENCES)
def test_bad_sequences_get_a_clear_message(case):
    data, name, width, words = BAD_SEQUENCES[case]
    with pytest.raises(SequenceFileError) as err:
        load_sequence(data, name, width)
    for w in words:
        assert w in str(err.value), f"{case}: {w!r} not in {str(err.value)!r}"


def test_real_npz_archive_is_refused():
    buf = io.BytesIO()
    np.savez(buf, x=SEQ)
    with pytest.raises(SequenceFileError, match=r"\.npz archive"):
        load_sequence(buf.getvalue(), "x.npy", 3)


@pytest.mark.parametrize("bad", [0, -1, MAX_INPUT + 1, 2.0, True, "3", None])
def test_bad_input_size_argument(bad):
    with pytest.raises(ValueError, match=r"input_size must be a whole number in \[1, "):
        load_sequence(csv_of(SEQ), "x.csv", bad)


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("name", ["nn.LSTM", "nn.RNN-nobias"])
def test_checkpoint_with_plain_values_loads(name, protocol):
    """Ints, strings, bytes (``_codecs.encode`` in protocol 2; torch's reader refuses protocol 3's
    BINBYTES) and nested dicts beside the weights."""
    factory, cell, _ = MODELS[name]
    original = factory()
    sd = {**original.state_dict(), "epoch": 3, "name": "tagger"} | ({"note": b"bytes"} if protocol == 2 else {})
    loaded = load_model(pt_bytes({"model_state_dict": sd, "meta": {"lr": 0.1}}, pickle_protocol=protocol), "m.pt")
    assert loaded.cell == cell
    same_behaviour(original, loaded.module)


@pytest.mark.parametrize("protocol", [4, 5])
def test_pickle_protocol_4_gets_a_resave_hint(protocol):
    """torch.load(weights_only=True) cannot read protocol 4+ (FRAME); say so instead of a riddle."""
    with pytest.raises(ModelFileError, match=f"pickle protocol {protocol}.*expected torch.save's default"):
        load_model(pt_bytes(nn.GRU(I, H).state_dict(), pickle_protocol=protocol), "m.pt")


def test_wrong_width_csv_is_refused_before_its_numbers_are_parsed():
    wide = ",".join(["x"] * 5000) + "\n"  # not numbers, but the width is what is wrong first
    with pytest.raises(SequenceFileError, match="the model expects input_size=3 columns, got 5000"):
        load_sequence((wide * 3).encode(), "x.csv", 3)
