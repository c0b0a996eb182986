"""Fixtures for the real-browser tests: one Streamlit server per session, and the one headless Chromium
(``chromium``, in tests/conftest.py: tests/test_install.py drives it too).

Every test gets a fresh browser context (its own Streamlit session) with a RerunWatcher attached,
so tests never see each other's widget state.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as H  # noqa: E402


def pytest_collection_modifyitems(items):
    here = Path(__file__).resolve().parent
    for item in items:
        path = Path(str(item.fspath)).resolve()
        if path.parent == here and path.name.startswith("test_browser_"):  # test_wire.py tests a helper
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def server():
    if not os.access(H.CHROMIUM, os.X_OK):
        pytest.skip(f"{H.CHROMIUM} not installed (bash scripts/setup.sh --test installs it)")
    with H.StreamlitServer() as srv:
        yield srv
        log = srv.log_tail(None)
    # A traceback in the server log is a failure even if no page showed it.
    assert "Traceback" not in log, f"the server logged a traceback:\n{log}"


@pytest.fixture(scope="session")
def browser(server, chromium):
    return chromium


@pytest.fixture()
def page(browser):
    """A fresh context (a new Streamlit session) 1400 px wide; ``page.watcher`` counts reruns."""
    ctx = browser.new_context(viewport=H.VIEWPORT)
    ctx.set_default_timeout(30_000)
    pg = ctx.new_page()
    pg.watcher = H.RerunWatcher(pg)
    yield pg
    ctx.close()
