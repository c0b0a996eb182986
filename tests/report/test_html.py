"""The HTML report (bptt_core.report.html): self-contained, every page's sections and figures, compare and
player sections, and refused only when it cannot fit in memory."""

from __future__ import annotations

import pytest

from bptt_core import ModelConfig
from bptt_core.learning.training import TrainConfig, train
from bptt_core.report.html import build_report
from tests.helpers.apptest import navigation_mode  # noqa: F401 - the fixture
from tests.helpers.compare import SMALL
from tests.helpers.player import PLAYER_SMALL


def test_html_report_is_self_contained():
    html = build_report(ModelConfig(hidden_size=6, seq_len=10), k1k2=(3, 3))
    assert html.count("plotly.js v") == 1 or html.count('<script type="text/javascript">/**') == 1
    # The pages' own figures (bptt_core.report.panels): gradient flow 4, spectrum 3, truncation 2.
    assert html.count('class="plotly-graph-div"') == 4 + 3 + 2
    assert "http" not in html.split("<body>")[1].split("plotly")[0]  # nothing fetched before the figures
    assert "hidden_size&quot;: 6" in html
    with pytest.raises(ValueError, match="at least"):
        build_report(ModelConfig(task="copy", seq_len=2))


# == The report from any page holds every page ===============================================================

# (page, what its report button adds for its own section) -- as the pages pass it
REPORT_KW = {
    "gradient_flow": dict(norm="2", block="h", threshold=1e-2),
    "truncation": dict(k1k2=(3, 5)),
    "clipping": dict(train_cfg=TrainConfig(steps=10, batch_size=2, clip_threshold=300.0)),
    "calculator": dict(calculator=dict(batch_size=4, num_layers=2, truncation=4, measure_time=False)),
    "spectrum": {},
}
SECTIONS = {"Gradient flow": 4, "Spectrum": 3, "Truncated BPTT": 2, "Clipping": 2, "Calculator": 1}


@pytest.mark.slow
@pytest.mark.parametrize("page", list(REPORT_KW))
def test_the_report_from_every_page_holds_every_page_and_figure(page):
    html = build_report(ModelConfig(hidden_size=6, seq_len=12), every_page=True, **REPORT_KW[page])
    for title in SECTIONS:
        assert f">{title}<" in html, title
    assert html.count('class="plotly-graph-div"') == sum(SECTIONS.values())


# == Compare mode: the report's section for B ================================================================


def test_report_compare_section_is_zero_for_a_copy_and_names_B():
    from bptt_core.report.html import build_report, compare_sections_of

    cfg = ModelConfig(**SMALL)
    tcfg = TrainConfig(steps=4, batch_size=2, snapshots=0)
    from bptt_core.learning.training import twin_runs

    runs_a = twin_runs(cfg, tcfg)
    figs, tables = compare_sections_of(cfg, None, cfg, None, "fro", "h", 1e-3, (3, 2), tcfg, runs_a, False)
    assert len(tables) == 4 and len(figs) == 3 + 3 + 2 + 3
    for title, t in tables:
        defined = t["A"].notna()
        assert (t.loc[defined, "B − A"] == 0.0).all(), title
        assert t.loc[~defined, "B"].isna().all(), title
    html = build_report(cfg, compare_cfg=ModelConfig(**{**SMALL, "cell": "gru"}))
    assert "Compare: A against B" in html and "&quot;B&quot;: {" in html
    with pytest.raises(ValueError, match="model B"):
        build_report(cfg, compare_cfg=ModelConfig(seq_len=5, task="temporal_order"))
    with pytest.raises(ValueError, match="compare_cfg"):
        build_report(cfg, compare_cfg={"cell": "rnn"})


# == The player's chosen frame in the report =================================================================


def test_report_shows_the_players_chosen_frame():
    from bptt_core.report.html import build_report, player_section_of

    m = ModelConfig(task="gaussian", **PLAYER_SMALL)
    tcfg = TrainConfig(steps=6, batch_size=2, lr=0.01, k1=2, k2=3, snapshots=3)
    run = train(m, tcfg)
    step = run.snapshots[1].step
    title, figs = player_section_of(m, dict(train_cfg=tcfg, source="run", step=step, label="TBPTT run"))
    assert title == f"Play training: TBPTT run, training step {step}"
    assert len(figs) == 5
    for _, fig, _ in figs:
        assert fig.layout.sliders[0].active == 1 and f"training step {step}" in fig.layout.title.text
    html = build_report(m, player=dict(train_cfg=tcfg, source="run", step=step, label="TBPTT run", prefix="tb_play"))
    assert f"Play training: TBPTT run, training step {step}" in html
    assert f"training step {step}, loss" in html
    # a Clipping twin, reusing the report's own twins
    html = build_report(m, train_cfg=tcfg, player=dict(train_cfg=tcfg, source="norm", step=0, label="norm twin"))
    assert "Play training: norm twin, training step 0" in html
    for bad, match in [("nope", "player must be a dict"), (dict(train_cfg=tcfg, source="x"), "player\\['source'\\]")]:
        with pytest.raises(ValueError, match=match):
            build_report(m, player=bad)


# == Refused only when it cannot fit in memory ===============================================================


@pytest.mark.usefixtures("one_thread")
def test_the_report_refuses_only_what_cannot_fit_in_memory(monkeypatch):
    from bptt_core import resources

    cfg = ModelConfig(cell="gru", hidden_size=16, seq_len=20)
    monkeypatch.setattr(resources, "available_bytes", lambda: 2**20)
    with pytest.raises(resources.DoesNotFit, match="The HTML report needs about .* this machine has 1 MiB"):
        build_report(cfg)
