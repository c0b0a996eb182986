"""Compare mode on Spectrum, Clipping and Truncated BPTT in AppTest: opening it, reading A's and B's
traces and metrics."""

from __future__ import annotations

import numpy as np

from tests.helpers.apptest import (
    chart_keys,
    chart_spec,
    decode,
    navigation_mode,  # noqa: F401 - the fixture
    open_page,
)

SMALL = {"m_hidden": "6", "m_seq_len": "12"}

OTHER_B = {"compare": "true", "b_m_hidden": "5", "b_m_seq_len": "12", "b_m_gain": "2.5", "b_m_init": "gaussian"}
# page -> (its compare charts, extra URL values); the Clipping page trains 10 steps (tests/helpers/apptest.py's FAST_CLIP)
CMP = {
    "spectrum": ({"sp_cmp_eig", "sp_cmp_sv", "sp_cmp_lyap"}, {}),
    "truncation": ({"tb_cmp_a", "tb_cmp_b"}, {"tb_k1": "4", "tb_k2": "3"}),
    "clipping": ({"cl_cmp_gradnorm"}, {"clip_threshold": "0.5"}),
}


def metrics(at):
    (df,) = [d.value for d in at.dataframe if "B − A" in d.value.columns]
    return df


def traces(at, key: str) -> dict[str, dict]:
    """A chart's traces by the side they belong to ("A" or "B"), reference lines left out."""
    out = {}
    for tr in chart_spec(at, key)["data"]:
        name = tr.get("name", "")
        for side in "AB":
            if name == side or name.startswith(f"{side}:"):
                out[side] = tr
    assert set(out) == {"A", "B"}, [t.get("name") for t in chart_spec(at, key)["data"]]
    return out


def ys(tr: dict) -> np.ndarray:
    return decode(tr["y"]).astype(float)


def open_cmp(page: str, query: dict):
    at = open_page(page, {**SMALL, **CMP[page][1], **query})
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert CMP[page][0] <= chart_keys(at), chart_keys(at)
    return at
