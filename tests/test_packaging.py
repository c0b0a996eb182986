"""pyproject.toml (the distribution ``bptt-explorer``): one version, the packages it lists are the
folders there are, every import is declared in the core or an extra, each range admits the version
requirements.txt pins, and a real wheel holds every module, the pages (hyphenated names included), the
package data and both console commands. Installing it is tests/test_install.py's."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import bptt_core

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
CORE = {"torch", "numpy", "safetensors"}  # what the numerics need (issue 23)
# import name -> distribution name, where they differ
DISTRIBUTION_OF = {"yaml": "pyyaml"}


def pinned() -> dict[str, str]:
    out = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            out[name.strip().lower()] = version.strip()
    return out


def requirements(group: str | None = None) -> list[Requirement]:
    lines = PROJECT["dependencies"] if group is None else PROJECT["optional-dependencies"][group]
    return [Requirement(r) for r in lines]


def declared() -> set[str]:
    names = {r.name.lower() for r in requirements()}
    for group in PROJECT["optional-dependencies"]:
        names |= {r.name.lower() for r in requirements(group)}
    return names


def third_party_imports(paths) -> dict[str, str]:
    """Top-level package -> a file importing it, for every import (module level or in a function)
    that is neither the standard library nor this project."""
    found = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("bptt_core", "dashboard", "__future__"):
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def shipped_sources() -> list[Path]:
    return [*ROOT.glob("bptt_core/**/*.py"), *ROOT.glob("dashboard/*.py"), *ROOT.glob("pages/*.py"), ROOT / "app.py"]


def test_the_version_is_written_once():
    assert PROJECT["dynamic"] == ["version"] and "version" not in PROJECT
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "bptt_core.__version__"}
    cff = re.search(r'^version:\s*"?([^"\n]+)"?\s*$', (ROOT / "CITATION.cff").read_text(), re.M)
    assert cff and cff.group(1) == bptt_core.__version__
    assert (ROOT / "LICENSE").read_text().startswith("MIT License") and PROJECT["license"] == "MIT"


def test_listed_packages_are_the_folders():
    folders = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in [*ROOT.glob("bptt_core/**/__init__.py"), *ROOT.glob("dashboard/**/__init__.py")]
    }
    assert set(SETUPTOOLS["packages"]) == folders | {"dashboard.pages"}
    assert SETUPTOOLS["package-dir"] == {"dashboard.pages": "pages"}  # the pages ship beside the router


def test_core_dependencies_are_the_numerics_only():
    assert {r.name for r in requirements()} == CORE


@pytest.mark.parametrize("group", [None, *PYPROJECT["project"]["optional-dependencies"]])
def test_every_range_admits_the_pinned_version(group):
    pins = pinned()
    for req in requirements(group):
        if req.name == PROJECT["name"]:  # dev's reference to the other extras
            assert req.extras <= set(PROJECT["optional-dependencies"]) - {"dev"}
            continue
        assert req.name.lower() in pins, f"{req} is not pinned in requirements.txt"
        assert req.specifier.contains(pins[req.name.lower()]), f"{req} refuses the pinned {pins[req.name.lower()]}"


def test_every_pinned_package_is_in_the_core_or_an_extra():
    """requirements.txt is the tests' set; `pip install ".[dev]"` must bring all of it."""
    assert set(pinned()) - declared() == set()


def test_every_import_of_the_distribution_is_declared():
    used = third_party_imports(shipped_sources())
    missing = {top: where for top, where in used.items() if DISTRIBUTION_OF.get(top, top) not in declared()}
    assert missing == {}


def test_the_dashboard_extra_holds_what_the_dashboard_imports():
    """The dashboard's own files and every library module: the dashboard can reach any of them."""
    reachable = {r.name.lower() for r in requirements()} | {r.name.lower() for r in requirements("dashboard")}
    used = third_party_imports(shipped_sources())
    # imported by the library for other extras only: the command line's sweeps and PNGs, the Lightning callback
    elsewhere = {
        "distributed": "sweep",
        "kaleido": "figures",
        "lightning": "lightning",
        "pyarrow": "sweep",
        "tensorboard": "tensorboard",
    }
    for top, extra in elsewhere.items():
        assert top in {r.name for r in requirements(extra)}
    assert {top: f for top, f in used.items() if top not in reachable and top not in elsewhere} == {}


@pytest.mark.slow
def test_the_wheel_holds_every_module_the_pages_and_the_package_data(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(".git", "artifacts", "__pycache__"))
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("bptt_explorer-*.whl")
    assert wheel.name.startswith(f"bptt_explorer-{bptt_core.__version__}-py3-none-any")
    names = set(zipfile.ZipFile(wheel).namelist())
    want = {p.relative_to(ROOT).as_posix() for p in [*ROOT.glob("bptt_core/**/*.py"), *ROOT.glob("dashboard/*.py")]}
    want |= {f"dashboard/pages/{p.name}" for p in ROOT.glob("pages/*.py")}  # gradient-flow.py, phase-diagram.py
    want |= {"bptt_core/py.typed", "bptt_core/analyses/cost_constants.json", "dashboard/streamlit.toml"}
    assert want - names == set()
    dist_info = f"bptt_explorer-{bptt_core.__version__}.dist-info"
    assert f"{dist_info}/licenses/LICENSE" in names
    shipped = {n.split("/")[0] for n in names}
    assert shipped == {"bptt_core", "dashboard", dist_info}  # no tests, bench, deploy or pages/ at the top
    zf = zipfile.ZipFile(wheel)
    entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()
    assert "bptt = bptt_core.cli:main" in entry_points and "bptt-explorer = dashboard.serve:main" in entry_points
    metadata = zf.read(f"{dist_info}/METADATA").decode()
    core = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert {Requirement(line.split(":", 1)[1]).name for line in core} == CORE
    assert zf.read("dashboard/streamlit.toml") == (ROOT / ".streamlit" / "config.toml").read_bytes()


# the optional packages, made unimportable in a fresh interpreter (None in sys.modules: `import` fails with
# ModuleNotFoundError and importlib.util.find_spec says "not installed"), as in a core-only install
CORE_ONLY = (
    "import sys\n"
    "for m in ('pandas', 'plotly', 'streamlit', 'pyarrow', 'tensorboard', 'lightning', 'dask', 'distributed',"
    " 'kaleido', 'orjson'):\n"
    "    sys.modules[m] = None\n"
)
NEEDS_AN_EXTRA = {"edge_of_chaos"}  # the sweeps' tables: pandas (it says so: tests/test_extras.py)


def test_the_public_names_and_a_monitored_loop_need_the_core_dependencies_only(tmp_path):
    """What tests/test_install.py checks in a real core-only environment, on every run: every public
    name but the sweeps' imports, and the monitor runs (without TensorBoard files), with no optional package."""
    code = CORE_ONLY + (
        "import json, torch\n"
        "import bptt_core\n"
        "from bptt_core import GradientFlowMonitor, jacobian_log_norms, tbptt_gradients\n"
        "failed = []\n"
        "for name in bptt_core.__all__:\n"
        "    try:\n"
        "        getattr(bptt_core, name)\n"
        "    except ModuleNotFoundError as e:\n"
        "        failed.append(name)\n"
        "rnn = torch.nn.GRU(3, 8)\n"
        f"with GradientFlowMonitor(rnn, {str(tmp_path / 'run')!r}, every=1, background=False) as mon:\n"
        "    for _ in range(2):\n"
        "        out, _ = rnn(torch.randn(6, 2, 3))\n"
        "        mon.watch(out)\n"
        "        out.sum().backward()\n"
        "        mon.step()\n"
        "print(json.dumps({'failed': failed, 'logged': len(mon.history), 'writer': mon.writer is not None}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"failed": sorted(NEEDS_AN_EXTRA), "logged": 2, "writer": False}
    assert not list((tmp_path / "run").glob("events.out.tfevents.*"))
