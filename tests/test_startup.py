"""What the first page costs: the Overview page and the shared sidebar must open without importing
torch (about 2 s of the 5 s the first page may take), and the analysis pages must still get torch set
up for serving (one thread per computation). Each case runs in a fresh interpreter, because this
test process has long since imported torch.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# what is run -> whether torch may be imported by then
CASES = {
    "the library's package and its torch-free modules": (
        "import bptt_core\nfrom bptt_core import config, units\nfrom bptt_core.figures import style, labels\n"
        "from bptt_core.flow import plan\nfrom bptt_core.analyses import cost\nfrom bptt_core.sweeps import grid\n"
        "from bptt_core.cli.main import build_parser\nbuild_parser()\nfrom dashboard import presets",
        False,
    ),
    "the dashboard's shared modules": (
        "import dashboard.page_table, dashboard.settings, dashboard.uploads, dashboard.compute, dashboard.layout",
        False,
    ),
    "the Overview page, as the first visitor opens it": (
        "from streamlit.testing.v1 import AppTest\n"
        "at = AppTest.from_file('app.py', default_timeout=60).run()\n"
        "assert not at.exception, at.exception\n"
        "assert any('data-key=\"ov_diagram\"' in h.proto.body for h in at.get('html')), 'the diagram was not drawn'",
        False,
    ),
    "a public name of the library": ("from bptt_core import jacobian_log_norms", True),
}


def run_fresh(code: str) -> dict:
    """Run ``code`` in a new interpreter at the repository root; report whether torch got imported and,
    if so, its thread count."""
    report = (
        "\nimport json, sys\n"
        "torch = sys.modules.get('torch')\n"
        "print(json.dumps({'torch': torch is not None, 'threads': torch.get_num_threads() if torch else None}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code + report], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", list(CASES))
def test_torch_is_imported_only_when_needed(case):
    code, torch_expected = CASES[case]
    assert run_fresh(code)["torch"] is torch_expected


def test_analysis_pages_run_torch_single_threaded():
    """The first computation sets one thread: sessions run in the server's threads on a small machine."""
    got = run_fresh(
        "from streamlit.testing.v1 import AppTest\n"
        "at = AppTest.from_file('pages/spectrum.py', default_timeout=120).run()\n"
        "assert not at.exception, at.exception\n"
        "assert len(at.get('plotly_chart')) == 3"
    )
    assert got == {"torch": True, "threads": 1}


def test_public_names_resolve_and_unknown_ones_fail():
    import bptt_core

    for name in bptt_core.__all__:
        assert getattr(bptt_core, name).__name__ == name
    with pytest.raises(AttributeError, match="no attribute 'jacobian_norms'"):
        bptt_core.jacobian_norms  # noqa: B018 - the lookup is the test
