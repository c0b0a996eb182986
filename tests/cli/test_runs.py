"""``python -m bptt_core runs show`` / ``runs report`` (bptt_core/cli/runs.py): the logged numbers, the HTML
report, and a tampered run refused."""

from bptt_core.cli.main import main
from tests.helpers.runs import _flip_byte


def test_cli_runs_show_prints_the_logged_numbers(run_dir, capsys):
    path, mon = run_dir
    assert main(["runs", "show", str(path)]) == 0
    out = capsys.readouterr().out
    last = mon.history[-1]
    assert "3 logged steps: 0, 2, 4" in out
    assert f"rho {last['rho']:.4g}" in out and f"decay rate {last['decay_rate']:+.4g}" in out
    fired = int(sum(r["clip_fired"] for r in mon.history))
    assert f"clipping fired at {fired} of 3 logged steps" in out


def test_cli_runs_report_writes_html_and_refuses_tampering(run_dir, tmp_path, capsys):
    path, _ = run_dir
    out = tmp_path / "r.html"
    assert main(["runs", "report", str(path), "--out", str(out), "--step", "2"]) == 0
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "Step 2" in page and "Gradient flow" in page
    assert page.count("plotly.js v") <= 2  # plotly.js inlined once
    _flip_byte(path / "history.npz")
    assert main(["runs", "show", str(path)]) == 2
    assert "history.npz does not match its SHA-256" in capsys.readouterr().err
