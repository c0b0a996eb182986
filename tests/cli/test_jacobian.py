"""``python -m bptt_core jacobian`` (bptt_core/cli/jacobian.py): the files it writes hold the engine's
numbers bit for bit, for built and uploaded models; bad settings exit 2."""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bptt_core import ModelConfig, build_model, build_task, jacobian_log_norms
from bptt_core.cli.main import main
from bptt_core.files.model_io import model_bytes
from tests.helpers.uploads import I, cli, module

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "bptt_core", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def read_csv(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    labels = [r[0] for r in body]
    M = np.array([[float(v) if v else np.nan for v in r[1:]] for r in body])
    return header, labels, M


def expected_L(cfg, norm="fro", block="h"):
    """The engine's matrix in float64, as the Gradient flow page computes it."""
    rnn, _ = build_model(cfg)
    return jacobian_log_norms(rnn, build_task(cfg).x[:, 0], norm=norm, block=block, dtype=torch.float64)


def test_jacobian_subcommand_writes_the_engine_matrix(tmp_path):
    out = tmp_path / "res"
    r = run_cli("jacobian", "--hidden-size", 6, "--seq-len", 9, "--init", "gaussian", "--gain", 1.5, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    for word in ("Decay rate", "Memory horizon", "sigma_1", "gamma*sigma_1 = 1 x", "> 1"):
        assert word in r.stdout
    cfg = ModelConfig(hidden_size=6, seq_len=9, init="gaussian", gain=1.5)
    L = np.load(out / "jacobian.npy")
    np.testing.assert_array_equal(L, expected_L(cfg))  # same config, same numbers, bit for bit
    header, labels, M = read_csv(out / "jacobian.csv")
    assert header == ["t\\s", *map(str, range(1, 10))]
    assert labels == [str(t) for t in range(1, 10)]
    np.testing.assert_array_equal(M, L)  # floats round-trip; NaN cells are the empty ones
    assert np.isnan(M[np.triu_indices(9, 1)]).all() and np.isfinite(M[np.tril_indices(9)]).all()
    settings = json.loads((out / "config.json").read_text())
    assert settings.pop("norm") == "fro" and settings.pop("block") == "h" and settings.pop("lag") is False
    assert settings.pop("layer") == -1
    assert ModelConfig.from_dict(settings) == cfg
    html = (out / "heatmap.html").read_text()
    page = re.sub(r"<script>/\*\*\n\* plotly\.js.*?</script>", "", html, flags=re.S)  # all but the bundle
    assert len(html) - len(page) > 1_000_000  # plotly.js itself is inlined ...
    assert "src=" not in page and "http" not in page  # ... and nothing is fetched
    assert "Plotly.newPlot" in page and "Gradient flow" in page and '"displaylogo": false' in page
    assert not (out / "jacobian_lag.csv").exists()


def test_bad_setting_exits_2_with_the_message_and_no_traceback(tmp_path):
    # one process is enough here: main() is checked on every bad setting in-process below
    r = run_cli("jacobian", "--hidden-size", 0, "--out", tmp_path / "bad")
    assert r.returncode == 2
    assert "hidden_size must be in [1, 512]" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "bad").exists()  # nothing half-written


def test_lstm_spectral_c_block_with_lag_view(tmp_path, capsys):
    out = tmp_path / "lstm"
    argv = ["jacobian", "--cell", "lstm", "--hidden-size", "5", "--seq-len", "7", "--norm", "2", "--block", "c"]
    assert main([*argv, "--lag", "--task", "sine", "--seed", "3", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "spectral norm of dc_t/dc_s" in stdout and "W_hg" in stdout
    cfg = ModelConfig(cell="lstm", hidden_size=5, seq_len=7, task="sine", seed=3)
    L = expected_L(cfg, norm=2, block="c")
    np.testing.assert_array_equal(np.load(out / "jacobian.npy"), L)
    header, labels, M = read_csv(out / "jacobian_lag.csv")
    assert header == ["t\\k", *map(str, range(7))]
    for t in range(7):
        for k in range(7):
            assert (M[t, k] == L[t, t - k]) if k <= t else math.isnan(M[t, k])
    settings = json.loads((out / "config.json").read_text())
    assert settings["norm"] == 2 and settings["block"] == "c" and settings["lag"] is True
    assert "by lag" in (out / "heatmap.html").read_text()


def test_exact_zero_is_written_as_minus_inf(tmp_path, capsys):
    """A 2-unit ReLU net whose units all switch off at some step: exact zeros survive the CSV as -inf."""
    out = tmp_path / "z"
    args = ["jacobian", "--activation", "relu", "--init", "kaiming", "--hidden-size", "2", "--seed", "1"]
    assert main([*args, "--seq-len", "6", "--out", str(out)]) == 0
    L = np.load(out / "jacobian.npy")
    assert np.isneginf(L).any()
    _, _, M = read_csv(out / "jacobian.csv")
    np.testing.assert_array_equal(M, L)
    assert "-inf" in (out / "jacobian.csv").read_text()
    capsys.readouterr()


BAD_ARGS = [
    (["--norm", "nuc"], "norm must be 'fro' or 2"),
    (["--block", "x", "--cell", "lstm"], "block must be 'h' or 'c'"),
    (["--activation", "swish"], "activation must be one of"),
    (["--init", "foo"], "init must be one of"),
    (["--cell", "xyz"], "cell must be one of"),
    (["--seq-len", "0"], "seq_len must be in"),
    (["--gain", "0"], "gain must be in (0.0, 100.0]"),
    (["--hidden-size", "1000000"], "hidden_size must be in [1, 512]"),
    (["--hidden-size", "512", "--seq-len", "2000"], "too large for the Jacobian engine"),
    (["--task", "copy", "--seq-len", "2"], "needs a sequence length of at least 3"),
    (["--task", "temporal_order", "--seq-len", "5"], "needs a sequence length of at least 10"),
    (["--task", "adding", "--input-size", "3"], "input_size must be 2 for the adding task"),
    (["--spectral-radius", "-1"], "spectral_radius"),
    (["--cell", "gru", "--num-layers", "2", "--layer", "2"], "layer must be a whole number in [-2, 1]"),
    (["--cell", "lru", "--spectral-radius", "0.9"], "The lru cell has no recurrent matrix to rescale"),
    (["--cell", "mingru", "--num-layers", "2"], "num_layers must be 1 for the mingru cell"),
    (["--cell", "lru", "--r-min", "0.9", "--r-max", "0.5"], "r_min must be below r_max"),
    (["--cell", "lru", "--r-max", "1.5"], "r_max must be in (0.0, 1.0]"),
    (["--num-layers", "9"], "num_layers must be in [1, 8]"),
]


@pytest.mark.parametrize(
    "argv, cfg, layer",
    [
        (["--cell", "lru", "--r-min", "0.9", "--r-max", "0.99"], dict(cell="lru", r_min=0.9, r_max=0.99), -1),
        (["--cell", "minlstm"], dict(cell="minlstm"), -1),
        (["--cell", "ssm", "--init", "xavier_normal"], dict(cell="ssm", init="xavier_normal"), -1),
        (["--cell", "lstm", "--num-layers", "3", "--layer", "1"], dict(cell="lstm", num_layers=3), 1),
        (["--cell", "rnn", "--num-layers", "2", "--activation", "relu"], dict(num_layers=2, activation="relu"), -1),
    ],
)
def test_new_cells_and_stacks_from_the_command_line(tmp_path, capsys, argv, cfg, layer):
    out = tmp_path / "o"
    assert main(["jacobian", *argv, "--hidden-size", "6", "--seq-len", "12", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    config = ModelConfig(**cfg, hidden_size=6, seq_len=12)
    rnn, _ = build_model(config)
    L = jacobian_log_norms(rnn, build_task(config).x[:, 0], layer=layer, dtype=torch.float64)
    np.testing.assert_array_equal(np.load(out / "jacobian.npy"), L)
    settings = json.loads((out / "config.json").read_text())
    assert (
        settings["layer"] == layer and settings["cell"] == config.cell and settings["num_layers"] == config.num_layers
    )
    if config.num_layers > 1:
        assert f"{config.num_layers} layers" in stdout and "top layer's" in stdout
    if config.cell == "lru":
        assert "ring 0.9 <= |lambda| <= 0.99" in stdout and "diag(λ)" in stdout


@pytest.mark.parametrize("args,words", BAD_ARGS, ids=[" ".join(a) for a, _ in BAD_ARGS])
def test_main_refuses_bad_settings(tmp_path, capsys, args, words):
    assert main(["jacobian", *args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err
    assert not (tmp_path / "o").exists()


def test_unwritable_output_is_a_clean_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["jacobian", "--hidden-size", "3", "--seq-len", "3", "--out", str(blocker / "sub")]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_single_step_sequence(tmp_path, capsys):
    out = tmp_path / "one"
    assert main(["jacobian", "--seq-len", "1", "--hidden-size", "4", "--out", str(out)]) == 0
    assert "undefined" in capsys.readouterr().out
    header, labels, M = read_csv(out / "jacobian.csv")
    assert header == ["t\\s", "1"] and labels == ["1"]
    assert M[0, 0] == pytest.approx(0.5 * math.log10(4))  # ||I||_F = sqrt(H)


# == An uploaded model and sequence ==========================================================================


def test_cli_jacobian_of_an_uploaded_model_and_sequence(tmp_path):
    mod = module("lstm", None, seed=1)
    (tmp_path / "m.safetensors").write_bytes(model_bytes(mod, "m.safetensors"))
    seq = np.random.default_rng(1).normal(size=(15, I))
    np.savetxt(tmp_path / "x.csv", seq, delimiter=",")
    r = cli("jacobian", "--model", "m.safetensors", "--sequence", "x.csv", "--out", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "uploaded m.safetensors" in r.stdout
    L = np.load(tmp_path / "out" / "jacobian.npy")
    np.testing.assert_array_equal(
        L, jacobian_log_norms(mod, torch.tensor(seq, dtype=torch.float32), dtype=torch.float64)
    )


def test_bptt_jacobian_prints_the_gradient_flow_pages_matrix_bit_for_bit(tmp_path):
    """The page and the command line take one path from settings to numbers (analyses.numbers.flow_matrix_of):
    the matrix the Gradient flow page draws for these settings is the one `bptt jacobian` writes, bit for bit."""
    from streamlit.testing.v1 import AppTest

    from dashboard import compute
    from dashboard.jobs import default_runner

    query = {"m_cell": "gru", "m_hidden": "7", "m_seq_len": "13", "m_seed": "31337", "gf_norm": "2"}
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/gradient-flow.py")
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    cfg = ModelConfig(cell="gru", hidden_size=7, seq_len=13, seed=31337)
    page = default_runner().result(compute.key_of(compute.FLOW, compute.PageContext(cfg), 2, "h"))
    assert page is not None, "the page did not compute the matrix"
    args = ["--cell", "gru", "--hidden-size", 7, "--seq-len", 13, "--seed", 31337, "--norm", 2, "--out", tmp_path]
    r = run_cli("jacobian", *args)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "jacobian.npy"), page)
