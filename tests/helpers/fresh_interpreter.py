"""Running code in a fresh interpreter at the repository root and reporting what torch it loaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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
