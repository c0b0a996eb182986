"""Run folders (bptt_core.monitor.runs): what the monitor writes reads back equal, a tampered folder is
refused naming the file, the runs directory cannot be left, loading never unpickles."""

import json
import os

import numpy as np
import pytest

from bptt_core.monitor import runs as R
from tests.helpers.runs import _flip_byte, make_run


def test_run_reads_back_what_was_logged(run_dir):
    path, mon = run_dir
    run = R.load_run(path)
    assert run.steps == [0, 2, 4]
    for i, rec in enumerate(mon.history):
        for k in ("grad_norm", "clip_fired", "decay_rate", "lyapunov_top", "rho", "sigma1"):
            assert run.history[k][i] == rec[k]
    d = run.step_data(2)
    assert d.flow.shape == (8, 8) and d.dl_dh.shape == (8,) and len(d.eigenvalues) == 2
    df = run.history_frame()
    assert list(df["step"]) == [0, 2, 4] and "grad_norm/rnn.weight_hh_l1" in df.columns
    with pytest.raises(R.RunError, match="step 3 was not logged"):
        run.step_data(3)


TAMPERS = {
    "a changed step file": (lambda p: _flip_byte(p / "steps" / "step_00000002.npz"), "step_00000002.npz does not match its SHA-256"),
    "a changed history": (lambda p: _flip_byte(p / "history.npz"), "history.npz does not match its SHA-256"),
    "a deleted step file": (lambda p: (p / "steps" / "step_00000004.npz").unlink(), "listed in the manifest but missing"),
    "an extra step file": (lambda p: (p / "steps" / "step_00000009.npz").write_bytes(b"x"), "step_00000009.npz is not in the manifest"),
    "a manifest that is not JSON": (lambda p: (p / "manifest.json").write_text("{"), "not valid JSON"),
    "a manifest hash edited": (lambda p: _edit_manifest(p, lambda m: m["files"].update({"history.npz": "0" * 64})), "history.npz does not match"),
    "a step dropped from the manifest": (lambda p: _edit_manifest(p, lambda m: m["steps"].pop()), "steps do not match"),
    "a path escaping the folder": (lambda p: _edit_manifest(p, lambda m: m["files"].update({"../x.npz": "0" * 64})), "unexpected file entry"),
}  # fmt: skip


def _edit_manifest(p, change):
    m = json.loads((p / "manifest.json").read_text())
    change(m)
    (p / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize("what", list(TAMPERS))
def test_tampered_run_is_refused_naming_what_is_wrong(run_dir, what):
    path, _ = run_dir
    tamper, message = TAMPERS[what]
    tamper(path)
    with pytest.raises(R.RunError, match=message):
        R.load_run(path)


def test_step_file_changed_after_opening_is_refused(run_dir):
    path, _ = run_dir
    run = R.load_run(path)
    _flip_byte(path / "steps" / "step_00000000.npz")
    with pytest.raises(R.RunError, match="does not match"):
        run.step_data(0)


@pytest.mark.parametrize(
    "name,message",
    [
        ("../outside", "contains '..'"),
        ("exp1/../../outside", "contains '..'"),
        ("/etc", "absolute path"),
        ("", "no run chosen"),
        ("exp1\x00", "characters"),
        ("nope", "not a folder"),
        ("escape", "outside the runs directory"),
    ],
)
def test_resolve_run_never_leaves_the_runs_directory(run_dir, tmp_path, name, message):
    root = tmp_path / "runs"
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", root / "escape")
    with pytest.raises(R.RunError, match=message):
        R.resolve_run(root, name)
    assert R.resolve_run(root, "exp1") == (root / "exp1").resolve()


def test_list_runs_finds_run_folders_only(run_dir, tmp_path):
    root = tmp_path / "runs"
    (root / "empty").mkdir()
    make_run(root / "group" / "exp2", steps=1)
    assert sorted(R.list_runs(root)) == ["exp1", "group/exp2"]
    assert R.list_runs(tmp_path / "missing") == []


def test_loading_never_unpickles(run_dir):
    path, _ = run_dir
    f = path / "steps" / "step_00000000.npz"
    np.savez(f, flow=np.array([object()], dtype=object))
    _edit_manifest(
        path,
        lambda m: m["files"].update(
            {"steps/step_00000000.npz": __import__("hashlib").sha256(f.read_bytes()).hexdigest()}
        ),
    )
    run = R.load_run(path)
    with pytest.raises(R.RunError, match="cannot be read as arrays"):
        run.step_data(0)
