"""``python -m bptt_core report`` (bptt_core/cli/report.py): long training is refused only over the user's
own --budget, after the estimate."""

import pytest

from bptt_core.cli.main import main


@pytest.mark.usefixtures("one_thread")
def test_cli_report_refuses_long_training_only_over_the_users_budget(tmp_path, capsys):
    args = ["report", "--hidden-size", "256", "--seq-len", "400", "--cell", "gru", "--train-steps", "3000",
            "--budget", "60", "--out", str(tmp_path / "r.html")]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("estimate: The HTML report: about ") and "over --budget" in err
