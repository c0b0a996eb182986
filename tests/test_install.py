"""The distribution as a user gets it (issue 23): a fresh virtual environment, ``pip install <checkout>``
with the core dependencies only, then ``pip install "<checkout>[dashboard]"``, in that order in one
environment (installing torch takes about a minute here; it is done once).

Core only: pip's plan holds the CPU torch that requirements.txt pins and no CUDA package (checked with
``--dry-run`` before anything is installed); ``bptt --help`` builds its parser without torch;
the monitor example, run from another folder with no checkout beside it, trains and writes its run
folder (no TensorBoard files: the package is not there, and ``tensorboard="auto"`` leaves them out);
a command or a name that needs an optional package says which extra to install, without a traceback.
With the dashboard extra: ``bptt-explorer --port P --address 127.0.0.1``, started from another folder,
serves every page of the table, driven in Chromium, and the Runs page opens the example's run.

Every install uses requirements.txt as pip constraints: the versions the tests pin, and the CPU
torch (without them pip would take the newest torch, with gigabytes of CUDA packages). The checkout is
copied first: pip builds in the source folder, which must stay clean.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import harness as H  # tests/browser, on the path through tests/conftest.py
import pytest
from streamlit.proto.NewSession_pb2 import Config

import bptt_core
from dashboard.page_table import DEFAULT, PAGES

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # a torch install, then a server

ROOT = Path(__file__).resolve().parents[1]
# what pip must never bring in for the core: the GPU build of torch
CUDA_PREFIXES = ("nvidia-", "cuda-", "triton")
OPTIONAL = ("pandas", "plotly", "streamlit", "tensorboard", "pyarrow", "lightning")
# not part of the distribution: left out of the copy pip builds from
SKIP = shutil.ignore_patterns(
    ".git", "artifacts", "__pycache__", "build", "dist", "*.egg-info", "runs", "out", ".*_cache", ".hypothesis"
)
STEPS, EVERY = 5, 2  # the example's run: steps 0, 2, 4 logged
PIP_TIMEOUT = 900  # seconds: torch is a 200 MB wheel to unpack on two shared cores


@dataclass
class Venv:
    root: Path
    src: Path  # the copy of the checkout pip installs from
    work: Path  # another folder: no checkout, no bptt_core beside it
    plan: dict  # pip's --dry-run report for the core install

    def bin(self, name: str) -> str:
        return str(self.root / "bin" / name)

    def run(self, *args, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BPTT_RUNS_DIR")}
        return subprocess.run(list(args), cwd=self.work, capture_output=True, text=True, timeout=timeout, env=env, **kw)

    def pip_install(self, *args) -> None:
        out = self.run(self.bin("python"), "-m", "pip", "install", "--quiet", *args, timeout=PIP_TIMEOUT)
        assert out.returncode == 0, out.stderr[-4000:]

    def has(self, module: str) -> bool:
        code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
        return self.run(self.bin("python"), "-c", code).returncode == 0


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Venv:
    base = tmp_path_factory.mktemp("install")
    src = base / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=SKIP)
    work = base / "elsewhere"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True, timeout=300)
    v = Venv(base / "venv", src, work, {})
    constraints = str(src / "requirements.txt")
    report = base / "plan.json"
    v.pip_install("--dry-run", "--report", str(report), "-c", constraints, str(src))
    v.plan = json.loads(report.read_text())
    planned = {i["metadata"]["name"].lower() for i in v.plan["install"]}
    if "torch" in planned and any(n.startswith(CUDA_PREFIXES) for n in planned):
        pytest.fail(f"pip would install CUDA packages; nothing installed. The plan: {sorted(planned)}")
    v.pip_install("-c", constraints, str(src))
    return v


def planned_versions(v: Venv) -> dict[str, str]:
    return {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in v.plan["install"]}


def pinned(name: str) -> str:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.split("#")[0].strip().lower().startswith(f"{name}=="):
            return line.split("==")[1].split("#")[0].strip()
    raise AssertionError(f"{name} is not pinned in requirements.txt")


# -- core only ---------------------------------------------------------------------------------------


def test_core_install_takes_the_pinned_cpu_torch_and_no_optional_package(venv):
    versions = planned_versions(venv)
    assert versions["bptt-explorer"] == bptt_core.__version__
    assert versions["torch"].split("+")[0] == pinned("torch")  # the local CPU wheel is 2.13.0+cpu
    assert not [n for n in versions if n.startswith(CUDA_PREFIXES)]
    assert {"numpy", "safetensors"} <= set(versions)
    assert [m for m in OPTIONAL if venv.has(m)] == []  # core only, as installed


def test_console_commands_answer_without_torch(venv):
    helped = venv.run(venv.bin("bptt"), "--help")
    assert helped.returncode == 0, helped.stderr
    for command in ("jacobian", "report", "sweep", "runs"):
        assert command in helped.stdout
    version = venv.run(venv.bin("bptt"), "--version")
    assert version.stdout.strip() == f"bptt-explorer {bptt_core.__version__}"
    probe = (
        "import sys\nfrom bptt_core.cli.main import build_parser\nbuild_parser()\n"
        "print(sorted(m for m in ('torch', 'pandas', 'pyarrow', 'plotly') if m in sys.modules))"
    )
    assert venv.run(venv.bin("python"), "-c", probe).stdout.strip() == "[]"
    served = venv.run(venv.bin("bptt-explorer"), "--version")
    assert served.stdout.strip() == f"bptt-explorer {bptt_core.__version__}"


def test_monitor_example_runs_from_the_installed_package(venv):
    example = venv.work / "adding_monitor.py"  # alone: nothing of the checkout beside it
    shutil.copy(ROOT / "examples" / "adding_monitor.py", example)
    out = venv.run(
        venv.bin("python"), str(example), "--steps", str(STEPS), "--every", str(EVERY), "--log-dir", "runs/adding"
    )
    assert out.returncode == 0, out.stderr[-4000:]
    assert "run folder runs/adding" in out.stdout
    run = venv.work / "runs" / "adding"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["format"] == "bptt-explorer-run"
    steps = sorted(p.name for p in (run / "steps").iterdir())
    assert steps == [f"step_{s:08d}.npz" for s in range(0, STEPS, EVERY)]
    assert (run / "history.npz").is_file()
    assert not list(run.glob("events.out.tfevents.*"))  # tensorboard="auto" without the package
    where = venv.run(venv.bin("python"), "-c", "import bptt_core; print(bptt_core.__file__)").stdout
    assert str(venv.root) in where  # the installed copy, not the checkout


def test_the_core_library_works_alone(venv):
    code = (
        "import torch\n"
        "from bptt_core import GradientFlowMonitor, LRU, jacobian_log_norms, tbptt_gradients, estimate\n"
        "rnn = torch.nn.GRU(3, 8)\n"
        "L = jacobian_log_norms(rnn, torch.randn(12, 3))\n"
        "cell = LRU(3, 8)\n"
        "print(tuple(L.shape), type(cell).__name__)\n"
    )
    out = venv.run(venv.bin("python"), "-c", code)
    assert out.returncode == 0, out.stderr[-4000:]
    assert out.stdout.split() == ["(12,", "12)", "LRU"]


def test_a_missing_optional_package_is_named_with_its_extra(venv):
    jac = venv.run(venv.bin("bptt"), "jacobian", "--hidden-size", "8", "--seq-len", "10", "--out", "jac")
    assert jac.returncode == 3, jac.stderr
    assert 'pip install "bptt-explorer[figures]"' in jac.stderr and "Traceback" not in jac.stderr
    served = venv.run(venv.bin("bptt-explorer"), "--port", str(H.free_port()))
    assert served.returncode == 3, served.stderr
    assert 'pip install "bptt-explorer[dashboard]"' in served.stderr
    name = venv.run(venv.bin("python"), "-c", "import bptt_core; bptt_core.edge_of_chaos")
    assert "needs the optional package pandas" in name.stderr and "bptt-explorer[" in name.stderr


# -- with the dashboard extra --------------------------------------------------------------------------

# charts each page draws at these settings; the Runs page opens the example's run (7 charts)
QUERY = {
    "phase_diagram": "?m_init=gaussian&m_hidden=16&m_seq_len=40&pd_points=5&pd_edge=false",
    "runs": "?ru_run=adding",
}
CHARTS = {
    "gradient_flow": 4,
    "spectrum": 3,
    "clipping": 3,
    "truncation": 2,
    "calculator": 1,
    "runs": 7,
    "phase_diagram": 1,
}


@pytest.mark.browser
def test_dashboard_extra_serves_every_page_from_another_folder(venv, chromium):
    venv.pip_install("-c", str(venv.src / "requirements.txt"), f"{venv.src}[dashboard]")
    assert venv.has("streamlit") and venv.has("plotly") and venv.has("pandas")
    port = H.free_port()
    server = H.StreamlitServer(
        port=port,
        command=(venv.bin("bptt-explorer"), "--port", str(port), "--address", "127.0.0.1"),
        cwd=venv.work,  # no .streamlit/ here: the settings come from the installed package
        env={"BPTT_RUNS_DIR": str(venv.work / "runs"), "PYTHONPATH": ""},
        startup_timeout=120,
    )
    with server:
        ctx = chromium.new_context(viewport=H.VIEWPORT)
        ctx.set_default_timeout(120_000)
        page = ctx.new_page()
        page.watcher = H.RerunWatcher(page)
        sessions = new_sessions(page)
        try:
            for info in PAGES:
                path = "" if info.key == DEFAULT else info.url_path
                url = f"{server.url}/{path}{QUERY.get(info.key, '')}"
                H.open_page(page, url, page.watcher, timeout=180)
                H.wait_charts(page, CHARTS.get(info.key, 0), timeout=300)  # training pages: a background job first
                assert H.problems(page) == {"exceptions": [], "errors": []}, url
                assert page.locator("h1").first.inner_text().strip(), url
                menu = page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()
                assert len(menu) == len(PAGES) and all(p.title in m for p, m in zip(PAGES, menu, strict=True)), menu
                if info.key == DEFAULT:  # its one figure is a static SVG image
                    page.wait_for_function("() => document.querySelector('.bptt-figure img')?.complete")
                    assert H.drawn_static_figures(page) >= 1
                    H.screenshot(page, "installed-overview")
        finally:
            ctx.close()
            log = server.log_tail(None)
    assert "Traceback" not in log, log
    # what the server said about itself: the installed router ran, with the packaged settings
    assert sessions, "no new_session message seen"
    script = Path(sessions[0].main_script_path)
    assert script.name == "router.py" and script.is_relative_to(venv.root), script
    settings = tomllib.loads((ROOT / "dashboard" / "streamlit.toml").read_text())
    assert sessions[0].custom_theme.primary_color == settings["theme"]["primaryColor"]
    assert sessions[0].config.toolbar_mode == Config.ToolbarMode.Value(settings["client"]["toolbarMode"].upper())
    assert sessions[0].config.gather_usage_stats is settings["browser"]["gatherUsageStats"]


def new_sessions(page) -> list:
    """The new_session messages the server sends this page (its script, config and theme), as they come."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    seen = []

    def on_frame(payload) -> None:
        msg = H.parse_message(ForwardMsg, payload)
        if msg is not None and msg.WhichOneof("type") == "new_session":
            seen.append(msg.new_session)

    page.on("websocket", lambda ws: ws.on("framereceived", on_frame) if "/_stcore/stream" in ws.url else None)
    return seen
