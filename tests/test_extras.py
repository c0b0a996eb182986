"""bptt_core.extras: a missing optional package is named with the extra that installs it, read from the
distribution's own requirements (here: pyproject.toml's, as pip writes them into the metadata); the
library's lazy names and the command line say it instead of showing a traceback."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import bptt_core
from bptt_core import extras
from bptt_core.cli.main import main as bptt
from bptt_core.cli.options import EXIT_MISSING_PACKAGE

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# Requires-Dist lines as in the installed METADATA
REQUIRES = [*PROJECT["dependencies"]] + [
    f'{req}; extra == "{extra}"' for extra, reqs in PROJECT["optional-dependencies"].items() for req in reqs
]


def smallest_extra_with(package: str) -> str:
    groups = {e: [r.split(";")[0] for r in reqs] for e, reqs in PROJECT["optional-dependencies"].items() if e != "dev"}
    having = [e for e, reqs in groups.items() if any(r.startswith(package) for r in reqs)]
    return min(having, key=lambda e: (len(groups[e]), e))


@pytest.mark.parametrize("package", ["pandas", "plotly", "streamlit", "pyarrow", "tensorboard", "lightning"])
def test_the_suggested_extra_is_the_smallest_that_installs_the_package(package):
    found = extras.extras_providing(package, REQUIRES)
    assert found[0] == smallest_extra_with(package)
    assert all(package in " ".join(PROJECT["optional-dependencies"][e]) for e in found)


def test_core_and_test_only_packages_have_no_extra_to_suggest():
    assert extras.extras_providing("torch", REQUIRES) == []  # a core dependency
    assert extras.extras_providing("pytest", REQUIRES) == []  # only in dev: never suggested
    assert extras.extras_providing("Pandas", REQUIRES) == extras.extras_providing("pandas", REQUIRES)


def test_the_message_names_the_command(monkeypatch):
    msg = extras.missing_package_message("plotly", "bptt report", REQUIRES)
    assert msg == (
        'bptt report needs the optional package plotly, which is not installed: pip install "bptt-explorer[figures]"'
    )


def test_a_checkout_that_is_not_installed_points_at_requirements_txt(monkeypatch):
    from importlib import metadata

    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "requires", not_installed)
    assert extras.extras_providing("pandas") == []
    assert "pip install pandas (at the version requirements.txt pins)" in extras.missing_package_message("pandas", "x")


@pytest.mark.parametrize(
    ("name", "package"),
    [
        ("pandas", "pandas"),
        ("plotly.graph_objects", "plotly"),
        ("bptt_core.flow.nothing", None),
        ("dashboard.x", None),
        (None, None),
    ],
)
def test_only_outside_packages_count_as_missing(name, package):
    assert extras.missing_package(ModuleNotFoundError("no", name=name)) == package


def _fail_with(name):
    def fake_import(*args, **kw):
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    return fake_import


def test_a_lazy_name_says_which_package_it_needs(monkeypatch):
    monkeypatch.delitem(bptt_core.__dict__, "edge_of_chaos", raising=False)  # not cached: __getattr__ runs
    monkeypatch.setattr(bptt_core, "import_module", _fail_with("pandas"))
    with pytest.raises(ModuleNotFoundError, match="bptt_core.edge_of_chaos needs the optional package pandas") as e:
        bptt_core.edge_of_chaos  # noqa: B018 - the lookup is the test
    assert e.value.name == "pandas"


def test_a_missing_module_of_the_project_itself_is_not_disguised(monkeypatch):
    monkeypatch.delitem(bptt_core.__dict__, "edge_of_chaos", raising=False)
    monkeypatch.setattr(bptt_core, "import_module", _fail_with("bptt_core.sweeps.gone"))
    with pytest.raises(ModuleNotFoundError, match="No module named 'bptt_core.sweeps.gone'"):
        bptt_core.edge_of_chaos  # noqa: B018


def test_the_command_line_exits_3_with_the_extra_to_install(monkeypatch, capsys, tmp_path):
    from bptt_core.cli import jacobian

    monkeypatch.setattr(jacobian, "run", lambda args: _fail_with("plotly")())
    monkeypatch.setattr(extras, "extras_providing", lambda package, requires=None: ["figures"])
    assert bptt(["jacobian", "--out", str(tmp_path)]) == EXIT_MISSING_PACKAGE
    err = capsys.readouterr().err
    assert (
        err
        == 'error: bptt jacobian needs the optional package plotly, which is not installed: pip install "bptt-explorer[figures]"\n'
    )


def test_the_command_line_shows_a_missing_module_of_its_own(monkeypatch, tmp_path):
    from bptt_core.cli import jacobian

    monkeypatch.setattr(jacobian, "run", lambda args: _fail_with("bptt_core.gone")())
    with pytest.raises(ModuleNotFoundError):
        bptt(["jacobian", "--out", str(tmp_path)])
