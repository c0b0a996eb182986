"""GradientFlowMonitor (bptt_core.monitor.monitor) against what it claims to equal: clip_grad_norm_'s
return value, autograd's gradient at the watched output, jacobian_log_norms, and TensorBoard's own event
reader; its refusals and warnings, and its background modes."""

import math
import os
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from bptt_core import GradientFlowMonitor, MonitorWarning, jacobian_log_norms
from bptt_core.monitor import diagnostics as MD
from bptt_core.monitor import monitor as M
from tests.helpers.monitor import CELLS, Net, batch, train

# (cell, num_layers, batch_first): every combination the monitor reads differently
GRID = [(c, n, bf) for c in CELLS for n, bf in ((1, False), (1, True), (2, False), (3, True))]


@pytest.mark.parametrize("cell,num_layers,batch_first", GRID)
def test_logged_values_equal_their_definitions(tmp_path, cell, num_layers, batch_first):
    torch.manual_seed(0)
    net = Net(cell, num_layers, batch_first)
    every, steps, clip = 2, 7, 1.0
    seen = []
    with GradientFlowMonitor(net, tmp_path / "run", every=every, clip=clip) as mon:
        returned = train(net, mon, steps, clip, batch_first, retain=seen)
    logged = list(range(0, steps, every))
    assert [r["step"] for r in mon.history] == logged
    for rec in mon.history:
        n = rec["step"]
        assert rec["grad_norm"] == returned[n]  # the same number, not merely close
        assert rec["clip_fired"] == float(clip / (returned[n] + 1e-6) < 1)
        x, out_grad, params = seen[n]
        g_first = out_grad[0] if batch_first else out_grad[:, 0]  # (T, H)
        data = np.load(tmp_path / "run" / "steps" / f"step_{n:08d}.npz")
        np.testing.assert_allclose(data["dl_dh"], g_first.double().norm(dim=-1).numpy(), rtol=1e-12)
        ref = Net(cell, num_layers, batch_first)
        ref.load_state_dict(dict(zip(net.state_dict(), params, strict=True)))  # the weights of step n
        first = x[0] if batch_first else x[:, 0]
        np.testing.assert_array_equal(data["flow"], jacobian_log_norms(ref.rnn, first))


def test_clip_fires_at_some_steps_and_not_others(tmp_path):
    torch.manual_seed(1)
    net = Net("rnn")
    with GradientFlowMonitor(net, tmp_path / "run", every=1, clip=1.0) as mon:
        returned = train(net, mon, 6, 1.0, False, lr=0.0)  # fixed weights: the norms depend on the batch only
    clip = float(np.median(returned))  # a threshold between the norms seen: some steps fire, some do not
    torch.manual_seed(1)
    net = Net("rnn")
    with GradientFlowMonitor(net, tmp_path / "run2", every=1, clip=clip) as mon:
        returned = train(net, mon, 6, clip, False, lr=0.0)
    fired = [r["clip_fired"] for r in mon.history]
    assert fired == [float(clip / (v + 1e-6) < 1) for v in returned]
    assert 0.0 in fired and 1.0 in fired


def test_param_norms_are_each_parameters_gradient_norm(tmp_path):
    torch.manual_seed(2)
    net = Net("gru", 2)
    mon = GradientFlowMonitor(net, tmp_path / "run", every=1, tensorboard=False, background=False)
    x, y = batch(0)
    out, pred = net(x)
    mon.watch(out)
    ((pred - y) ** 2).sum().backward()
    rec = mon.step()
    mon.close()
    assert list(rec["param_grad_norms"]) == [n for n, _ in net.named_parameters()]
    for name, p in net.named_parameters():
        assert rec["param_grad_norms"][name] == float(p.grad.norm())


def test_tensorboard_event_files_hold_every_tag_at_every_logged_step(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    torch.manual_seed(4)
    net = Net("lstm", 2)
    with GradientFlowMonitor(net, tmp_path / "run", every=3, clip=0.5) as mon:
        train(net, mon, 8, 0.5, False)
    acc = EventAccumulator(str(tmp_path / "run"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    want = [*M.SCALAR_TAGS, *(f"grad_norm/{n}" for n, _ in net.named_parameters())]
    logged = [0, 3, 6]
    for tag in want:
        assert tag in tags["scalars"], tag
        assert [e.step for e in acc.Scalars(tag)] == logged, tag
    by_step = {r["step"]: r for r in mon.history}
    for e in acc.Scalars("grad_norm/global"):
        assert e.value == pytest.approx(by_step[e.step]["grad_norm"], rel=1e-6)  # stored as float32
    for e in acc.Scalars("spectrum/rho"):
        assert e.value == pytest.approx(by_step[e.step]["rho"], rel=1e-6)
    assert [e.step for e in acc.Images(M.HEATMAP_TAG)] == logged
    png = acc.Images(M.HEATMAP_TAG)[0].encoded_image_string
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_heatmap_image_colours():
    L = np.array([[0.3, np.nan], [-2.0, 0.3]])
    img = M.heatmap_rgb(L)
    assert img.dtype == np.uint8 and img.shape[0] >= M.IMAGE_MIN_PX and img.shape[2] == 3
    k = img.shape[0] // 2
    assert tuple(img[0, -1]) == (200, 200, 200)  # s > t: grey
    assert tuple(img[k, 0]) == (33, 102, 172)  # the smallest norm: full blue
    r, g, b = img[0, 0]
    assert r > b  # a norm above 1: red side


def test_refuses_a_model_without_a_recurrent_module(tmp_path):
    model = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2), 1, enable_nested_tensor=False)
    with pytest.raises(ValueError, match="no recurrent module.*TransformerEncoder"):
        GradientFlowMonitor(model, tmp_path)
    with pytest.raises(ValueError, match="torch.nn.Module"):
        GradientFlowMonitor("model.pt", tmp_path)


def test_several_recurrent_modules_need_a_name(tmp_path):
    model = nn.ModuleDict({"enc": nn.GRU(3, 4), "dec": nn.LSTM(4, 4)})
    with pytest.raises(ValueError, match="2 recurrent modules.*'enc'.*'dec'.*module=NAME"):
        GradientFlowMonitor(model, tmp_path)
    mon = GradientFlowMonitor(model, tmp_path, module="dec", tensorboard=False)
    assert mon.name == "dec" and mon.kind == "lstm"
    with pytest.raises(ValueError, match="module='nope' is not in the model"):
        GradientFlowMonitor(model, tmp_path, module="nope")


def test_refuses_bidirectional_and_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="bidirectional"):
        GradientFlowMonitor(nn.GRU(3, 4, bidirectional=True), tmp_path)
    for kw, name in [({"every": 0}, "every"), ({"clip": -1.0}, "clip"), ({"clip": float("nan")}, "clip")]:
        with pytest.raises(ValueError, match=name):
            GradientFlowMonitor(nn.RNN(3, 4), tmp_path, **kw)


def test_watch_refuses_a_tensor_that_needs_no_grad(tmp_path):
    net = Net("rnn")
    mon = GradientFlowMonitor(net, tmp_path, tensorboard=False)
    with torch.no_grad():
        out, _ = net(batch(0)[0])
    with pytest.raises(ValueError, match="needs no gradient.*requires_grad=False"):
        mon.watch(out)
    out, _ = net(batch(0)[0])
    with pytest.raises(ValueError, match="output"):
        mon.watch(out[..., :3])
    packed = nn.utils.rnn.pack_sequence([torch.randn(5, 3), torch.randn(4, 3)])
    with pytest.raises(ValueError, match="PackedSequence.*pad_packed_sequence"):
        mon.watch(net.rnn(packed))


def test_unwritable_log_dir_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="log_dir .*file.* cannot be written"):
        GradientFlowMonitor(nn.RNN(3, 4), blocker / "run")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who may write anywhere (root)")
        with pytest.raises(ValueError, match="cannot be written"):
            GradientFlowMonitor(nn.RNN(3, 4), ro / "run")
    finally:
        ro.chmod(0o700)


def test_a_failing_diagnostic_warns_and_training_goes_on(tmp_path, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("engine broke")

    monkeypatch.setattr(MD, "jacobian_log_norms", broken)
    net = Net("rnn")
    mon = GradientFlowMonitor(net, tmp_path / "run", every=1, clip=1.0, tensorboard=False, background=False)
    with pytest.warns(MonitorWarning, match="flow: engine broke"):
        train(net, mon, 2, 1.0, False)
    assert len(mon.history) == 2 and all(math.isnan(r["decay_rate"]) for r in mon.history)
    assert all(math.isfinite(r["grad_norm"]) and math.isfinite(r["rho"]) for r in mon.history)  # the rest logged
    strict = GradientFlowMonitor(net, tmp_path / "strict", every=1, strict=True, tensorboard=False, background=False)
    with pytest.raises(RuntimeError, match="engine broke"):
        train(net, strict, 1, 1.0, False)


def test_missing_watch_is_reported_not_raised(tmp_path):
    net = Net("rnn")
    mon = GradientFlowMonitor(net, tmp_path / "run", every=1, tensorboard=False, background=False)
    x, y = batch(0)
    _, pred = net(x)
    ((pred - y) ** 2).sum().backward()
    with pytest.warns(MonitorWarning, match="watch"):
        rec = mon.step()
    assert "dl_dh" not in rec and "flow" in rec


def test_unlogged_steps_do_no_heavy_work(tmp_path, monkeypatch):
    calls = []
    real = MD.jacobian_log_norms
    monkeypatch.setattr(MD, "jacobian_log_norms", lambda *a, **k: calls.append(1) or real(*a, **k))
    net = Net("rnn")
    with GradientFlowMonitor(net, tmp_path / "run", every=4, tensorboard=False, background="thread") as mon:
        with warnings.catch_warnings():
            warnings.simplefilter("error", MonitorWarning)
            train(net, mon, 9, 1.0, False)
    assert len(calls) == 3  # steps 0, 4, 8


def same(a: dict, b: dict) -> bool:
    """Equal records, NaN equal to NaN (a record that crossed a process holds its own NaN objects)."""
    return a.keys() == b.keys() and all(a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]) for k in a)


def test_background_mode_logs_the_same_values(tmp_path):
    """The heavy diagnostics in the worker process or a thread, on a copy of the weights of the logged
    step: the same numbers as the synchronous monitor, though the loop has moved on (and changed the
    weights)."""
    runs = {}
    for background in (False, "thread", "process"):
        torch.manual_seed(6)
        net = Net("lstm", 2)
        mon = GradientFlowMonitor(net, tmp_path / f"bg{background}", every=2, clip=1.0, background=background)
        train(net, mon, 5, 1.0, False)
        mon.close()
        runs[background] = mon
    a = runs[False]
    for mode in ("thread", "process"):
        b = runs[mode]
        assert [r["step"] for r in b.history] == [0, 2, 4]
        for ra, rb in zip(a.history, b.history, strict=True):
            assert same(ra, rb), mode
        for s in (0, 2, 4):
            fa = np.load(tmp_path / "bgFalse" / "steps" / f"step_{s:08d}.npz")
            fb = np.load(tmp_path / f"bg{mode}" / "steps" / f"step_{s:08d}.npz")
            assert sorted(fa.files) == sorted(fb.files)
            for k in fa.files:
                np.testing.assert_array_equal(fa[k], fb[k])


def test_background_failure_is_raised_when_strict(tmp_path, monkeypatch):
    monkeypatch.setattr(MD, "jacobian_log_norms", lambda *a, **k: 1 / 0)
    net = Net("rnn")
    mon = GradientFlowMonitor(net, tmp_path / "run", every=1, strict=True, background="thread", tensorboard=False)
    with pytest.raises(ZeroDivisionError):
        train(net, mon, 3, 1.0, False)
        mon.close()
    lax = GradientFlowMonitor(net, tmp_path / "lax", every=1, background="thread", tensorboard=False)
    with pytest.warns(MonitorWarning, match="flow"):
        train(net, lax, 2, 1.0, False)
        lax.close()
    assert len(lax.history) == 2


@pytest.mark.parametrize("cell", ["MinGRU", "MinLSTM", "LRU"])
def test_bptt_core_cells_are_monitored(tmp_path, cell):
    import bptt_core

    torch.manual_seed(7)
    rnn = getattr(bptt_core, cell)(3, 6)
    head = nn.Linear(6, 1)
    model = nn.ModuleDict({"rnn": rnn, "head": head})
    with GradientFlowMonitor(model, tmp_path / "run", every=1, clip=0.1) as mon:
        x, y = batch(0)
        out, _ = rnn(x)
        mon.watch(out)
        loss = ((head(out).sum(-1) - y) ** 2).sum()
        loss.backward()
        with warnings.catch_warnings():
            warnings.simplefilter("error", MonitorWarning)
            mon.step()  # the heavy part wherever "auto" put it: read back from the run folder
    rec = {**mon.history[0], **np.load(tmp_path / "run" / "steps" / "step_00000000.npz")}
    np.testing.assert_array_equal(rec["flow"], jacobian_log_norms(rnn, x[:, 0]))
    assert rec["grad_norm"] == float(torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1))
    assert math.isfinite(rec["rho"]) and math.isfinite(rec["lyapunov_top"])
    assert ("dl_dh_total" in rec) == (cell != "LRU")  # the LRU's output is C h + D x, not h


def test_a_folder_holding_a_run_is_refused_unless_overwrite(tmp_path):
    from bptt_core.monitor.runs import load_run

    net = Net("rnn")
    with GradientFlowMonitor(net, tmp_path / "run", every=1) as mon:
        train(net, mon, 3, 1.0, False)
    with pytest.raises(ValueError, match="already holds a run.*overwrite=True"):
        GradientFlowMonitor(net, tmp_path / "run")
    with GradientFlowMonitor(net, tmp_path / "run", every=2, overwrite=True) as mon:
        train(net, mon, 1, 1.0, False)
    run = load_run(tmp_path / "run")  # the old steps 1 and 2 are gone, not left unlisted
    assert run.steps == [0] and len(list((tmp_path / "run").glob("events.out.tfevents.*"))) == 1


@pytest.mark.parametrize("bad", ["yes", 1, None, "processes"])
def test_background_must_be_a_known_mode(tmp_path, bad):
    with pytest.raises(ValueError, match="background must be"):
        GradientFlowMonitor(nn.RNN(3, 4), tmp_path / "run", background=bad)


def test_auto_background_uses_the_worker_only_where_the_loop_leaves_it_a_core(tmp_path, monkeypatch):
    cores = 4
    monkeypatch.setattr(M.os, "sched_getaffinity", lambda pid: set(range(cores)))
    for threads, want in ((cores, False), (cores + 2, False), (1, "process"), (cores - 1, "process")):
        monkeypatch.setattr(M.torch, "get_num_threads", lambda threads=threads: threads)
        assert M.background_mode(nn.RNN(3, 4)) == want, threads
    monkeypatch.setattr(M.torch, "get_num_threads", lambda: cores)
    mon = GradientFlowMonitor(nn.RNN(3, 4), tmp_path / "busy", tensorboard=False)  # every core taken: the loop
    assert mon.background is None and mon._worker is None and mon._pool is None
    mon.close()


# -- TensorBoard is optional: "auto" writes event files only where the package is installed ---------------


def _tensorboard_installed(monkeypatch, installed: bool) -> None:
    real = M.importlib.util.find_spec
    monkeypatch.setattr(
        M.importlib.util, "find_spec", lambda name, *a: real(name, *a) if installed or name != "tensorboard" else None
    )


@pytest.mark.parametrize("installed", [True, False])
def test_tensorboard_auto_follows_the_package(tmp_path, monkeypatch, installed):
    _tensorboard_installed(monkeypatch, installed)
    torch.manual_seed(5)
    net = Net("gru")
    with GradientFlowMonitor(net, tmp_path / "run", every=2, background=False) as mon:
        train(net, mon, 3, 1.0, False)
    assert (mon.writer is not None) is installed
    assert bool(list((tmp_path / "run").glob("events.out.tfevents.*"))) is installed
    assert [r["step"] for r in mon.history] == [0, 2]  # the run folder either way
    assert (tmp_path / "run" / M.MANIFEST).is_file()


def test_tensorboard_true_without_the_package_says_what_to_install_before_writing(tmp_path, monkeypatch):
    _tensorboard_installed(monkeypatch, False)
    with pytest.raises(ImportError, match=r'pip install "bptt-explorer\[tensorboard\]"'):
        GradientFlowMonitor(Net(), tmp_path / "run", tensorboard=True)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("bad", ["yes", 1, None, "true"])
def test_tensorboard_must_be_auto_or_a_bool(tmp_path, bad):
    with pytest.raises(ValueError, match="tensorboard must be 'auto', True or False"):
        GradientFlowMonitor(Net(), tmp_path / "run", tensorboard=bad)
