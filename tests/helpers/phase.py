"""Reading the Phase diagram page's figures in AppTest."""

from __future__ import annotations

from tests.helpers.apptest import navigation_mode  # noqa: F401 - the fixture


def trace(spec: dict, name: str) -> dict:
    for d in spec["data"]:
        if d.get("name", "").startswith(name):
            return d
    raise AssertionError(f"no trace {name!r}: {[d.get('name') for d in spec['data']]}")
