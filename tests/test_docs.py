"""The README and the guides under docs/ name what exists: every relative link leads to a file, every
file path in backticks is in the repository, every dotted ``bptt_core.``/``dashboard.`` name resolves,
and the README stays short enough to be read to the end (issue 23: at most ~150 lines)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# docs/design.md is the design document, checked by its readers; these are the guides
GUIDES = [ROOT / "README.md", *(ROOT / "docs" / n for n in ("library.md", "command-line.md", "serving.md"))]
GUIDES += [ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "testing.md"]
README_MAX_LINES = 150

LINK = re.compile(r"\]\(([^)\s]+)\)|<img src=\"([^\"]+)\"")
PATH = re.compile(r"`([\w.-]+(?:/[\w.*-]+)+/?)(?:[.:]\w+)*`")  # `dashboard/jobs.py`, `bptt_core/monitor/worker.py`
DOTTED = re.compile(r"`((?:bptt_core|dashboard)(?:\.\w+)+)(\*?)")  # `bptt_core.flow.plan.default_method`
INSTALLED_ONLY = {"dashboard/pages/"}  # where the wheel puts pages/: not in the checkout


def _text(path: Path) -> str:
    return path.read_text()


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.name)
def test_links_lead_to_files(guide):
    missing = []
    for m in LINK.finditer(_text(guide)):
        target = (m.group(1) or m.group(2)).split("#")[0]
        if target and not re.match(r"[a-z]+:", target) and not (guide.parent / target).exists():
            missing.append(target)
    assert missing == []


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.name)
def test_paths_in_backticks_exist(guide):
    missing = []
    for m in PATH.finditer(_text(guide)):
        path = m.group(1)
        if "*" in path or path in INSTALLED_ONLY or path.startswith(("runs/", "results/", "sweep/", "DIR/")):
            continue  # a pattern, the installed layout, or an output the reader's command writes
        if path.split("/")[0] in ("bptt_core", "dashboard", "pages", "tests", "bench", "deploy", "docs", "scripts"):
            if not _exists(path):
                missing.append(path)
    assert missing == []


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.name)
def test_dotted_names_resolve(guide):
    missing = []
    for m in DOTTED.finditer(_text(guide)):
        if m.group(2):  # a family: `bptt_core.figures.player.player_*_figure`
            continue
        if not _resolves(m.group(1)):
            missing.append(m.group(1))
    assert missing == []


def _exists(path: str) -> bool:
    """A file or folder, ``tests/x.py::test_name``, or ``pkg/module.name`` (a name in pkg/module.py)."""
    path = path.split("::")[0]
    if (ROOT / path).exists():
        return True
    folder, _, last = path.rpartition("/")
    module, _, name = last.partition(".")
    return (
        bool(name)
        and (ROOT / folder / f"{module}.py").exists()
        and _resolves(f"{folder}/{module}".replace("/", ".") + f".{name}")
    )


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def test_the_readme_is_short_and_opens_with_the_two_commands():
    lines = _text(ROOT / "README.md").splitlines()
    assert len(lines) <= README_MAX_LINES
    head = "\n".join(lines[:6])
    assert "bash scripts/setup.sh && streamlit run app.py" in head and "bash scripts/test.sh" in head
    for command in ("pip install .", 'pip install ".[dashboard]"', "bptt-explorer", "bptt "):
        assert command in "\n".join(lines)


def test_a_path_that_moved_is_caught():
    """The checks above can fail: the old flat paths of before the reorganisation do not exist."""
    assert not (ROOT / "bptt_core" / "cost.py").exists() and not _resolves("bptt_core.cost.flow_cost")
    assert _resolves("bptt_core.analyses.cost.flow_cost")
