"""What to install for a missing optional dependency: the distribution's extras (pyproject.toml's
``[project.optional-dependencies]``, read back from the installed package's metadata), so that a
package left out of a core-only install is named with the command that brings it, not met as a
traceback. Torch-free and quick: the command line uses it on its way out.
"""

from __future__ import annotations

import re

DISTRIBUTION = "bptt-explorer"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a requirement's distribution name
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")
_NOT_FOR_USERS = frozenset({"dev"})  # the tests' and linters' extra: never the one to suggest


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def extras_providing(package: str, requires: list[str] | None = None) -> list[str]:
    """The extras that install ``package``, the one with the fewest packages first; [] where the
    distribution is not installed (a plain checkout). Every optional package of this project is
    imported under its distribution's name. ``requires``: Requires-Dist lines (default: the
    installed distribution's)."""
    if requires is None:
        # Local for start-up time: importlib.metadata takes ~18 ms, paid only when a package is missing.
        from importlib import metadata

        try:
            requires = metadata.requires(DISTRIBUTION) or []
        except metadata.PackageNotFoundError:
            return []
    members: dict[str, set[str]] = {}
    for line in requires:
        extra, name = _EXTRA.search(line), _NAME.match(line)
        if extra and name:
            members.setdefault(extra.group(1), set()).add(_canonical(name.group(0)))
    want = _canonical(package)
    found = [e for e, names in members.items() if want in names and e not in _NOT_FOR_USERS]
    return sorted(found, key=lambda e: (len(members[e]), e))


def missing_package_message(package: str, what: str, requires: list[str] | None = None) -> str:
    """``what`` needs ``package``, which is not installed, and the command that installs it."""
    extras = extras_providing(package, requires)
    if extras:
        how = f'pip install "{DISTRIBUTION}[{extras[0]}]"'
    else:  # a checkout used in place: its requirements.txt pins every package
        how = f"pip install {package} (at the version requirements.txt pins)"
    return f"{what} needs the optional package {package}, which is not installed: {how}"


def missing_package(error: ModuleNotFoundError) -> str | None:
    """The top-level package a ModuleNotFoundError is about, when it is an outside one (None for a
    module of this project, whose absence is a bug to show, not a package to install)."""
    top = (error.name or "").split(".")[0]
    return None if top in ("", "bptt_core", "dashboard") else top
