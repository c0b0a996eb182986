"""The Overview page (pages/overview.py, app.py's default) in AppTest: its row of presets."""

from __future__ import annotations

from dashboard.settings import PRESET_PICK
from tests.helpers.apptest import (
    PAGES,
    navigation_mode,  # noqa: F401 - the fixture
    open_page,
    pick_preset,
)


def test_the_row_of_presets_forgets_its_pick():
    """A pick applies the preset and clears the row, so the same preset can be picked again later."""
    at = open_page("overview")
    pick_preset(at, "vanishing").run()
    assert at.title[0].value == "Gradient flow" and at.session_state["m_gain"] == 0.5
    at.session_state["m_gain"] = 2.0
    at.switch_page(PAGES["overview"][0]).run()
    assert at.button_group(key=PRESET_PICK).value is None
    pick_preset(at, "vanishing").run()
    assert at.title[0].value == "Gradient flow" and at.session_state["m_gain"] == 0.5
