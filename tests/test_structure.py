"""The library's shape (docs/design.md, "Layout"): no import circle among bptt_core's modules, counting
the imports inside functions too (so none can dodge a circle); bptt_core never imports streamlit or
the dashboard; the numerics never import a job queue."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "bptt_core"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(LIBRARY.rglob("*.py"))}


def imported(path: Path, name: str) -> set[str]:
    """Every module ``name``'s file imports, wherever in the file (top level or inside a function).

    ``from package import module`` counts as importing that module, not the package's ``__init__``."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    known = modules()
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            submodules = {f"{module}.{alias.name}" for alias in node.names} & set(known)
            out.update(submodules or {module})
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    edges = {}
    for name, path in mods.items():
        targets = set()
        for m in imported(path, name):
            while m and m not in mods:  # `from a.b import name`: the module is a.b
                m = m.rpartition(".")[0]
            if m and m != name and m in mods:
                targets.add(m)
        edges[name] = targets
    return edges


def find_circle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(edges[n]):
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(edges):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_no_import_circle_in_the_library_counting_imports_inside_functions():
    circle = find_circle(graph())
    assert circle is None, "import circle: " + " -> ".join(circle)


def test_the_circle_finder_finds_a_circle():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("name", sorted(modules()))
def test_the_library_never_imports_streamlit_or_the_dashboard(name):
    bad = {m for m in imported(modules()[name], name) if m.split(".")[0] in ("streamlit", "dashboard")}
    assert not bad, f"{name} imports {sorted(bad)}"


NUMERICS = ("bptt_core.flow", "bptt_core.learning", "bptt_core.models", "bptt_core.data", "bptt_core.sweeps")


def test_the_numerics_report_progress_through_the_library_protocol_not_a_job_queue():
    for name, path in modules().items():
        if name.startswith(NUMERICS):
            names = imported(path, name)
            assert not any("jobs" in m.split(".") for m in names), f"{name} imports a job queue"
    assert "bptt_core.progress" in imported(LIBRARY / "flow" / "jacobians.py", "bptt_core.flow.jacobians")


def test_a_norm_and_a_block_are_converted_once_from_any_spelling():
    from bptt_core.config import Block, Norm

    assert Norm.of("fro") is Norm.of(Norm.FRO) is Norm.FRO
    assert Norm.of(2) is Norm.of("2") is Norm.of("spectral") is Norm.SPECTRAL
    for bad in ("nuc", 1, True, None, 2.0, "two"):
        with pytest.raises(ValueError, match="norm must be 'fro' or 2"):
            Norm.of(bad)
    assert Block.shown("lstm", "c") is Block.C and Block.shown("gru", "c") is Block.H
    with pytest.raises(ValueError, match="block must be 'h' or 'c'"):
        Block.of("x")
