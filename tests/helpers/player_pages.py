"""The training player on Truncated BPTT and Gradient flow in AppTest: the pages' runs and their frames."""

from __future__ import annotations

from tests.helpers.apptest import navigation_mode  # noqa: F401 - the fixture

SMALL = {"m_hidden": "6", "m_seq_len": "12"}

# page -> (its player's URL settings for a small run, the figures' key prefix)
PLAYERS = {
    "truncation": ({**SMALL, "tb_play": "true", "tb_play_steps": "10", "tb_k1": "3", "tb_k2": "4"}, "tb_play"),
    "gradient_flow": ({**SMALL, "gf_play": "true", "gf_play_steps": "10"}, "gf_play"),
}


def frame_titles(spec: dict) -> list[str]:
    return [fr["layout"]["title"]["text"] for fr in spec["frames"]]
