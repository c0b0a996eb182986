"""Fixtures shared across the suite's folders: the one headless Chromium of a test session, which
tests/browser and tests/test_install.py (the installed dashboard) both drive."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "browser"))

import harness as H  # noqa: E402


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the whole session: Playwright's sync API allows one driver per thread,
    so every browser test (with its own server or the shared one) takes its pages from this."""
    if not os.access(H.CHROMIUM, os.X_OK):
        pytest.skip(f"{H.CHROMIUM} not installed (bash scripts/setup.sh --test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = H.launch_chromium(pw)
        yield b
        b.close()
