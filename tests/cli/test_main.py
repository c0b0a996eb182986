"""The command line's entry point (bptt_core/cli/main.py): argparse errors exit 2."""

from __future__ import annotations

import pytest

from bptt_core.cli.main import main


def test_argparse_errors_exit_2():
    with pytest.raises(SystemExit) as e:
        main(["jacobian", "--hidden-size", "abc", "--out", "x"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["jacobian"])  # --out is required
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main([])  # a subcommand is required
    assert e.value.code == 2
