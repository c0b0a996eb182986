"""The library's public names (bptt_core/__init__.py): each resolves to itself, an unknown one fails."""

from __future__ import annotations

import pytest


def test_public_names_resolve_and_unknown_ones_fail():
    import bptt_core

    for name in bptt_core.__all__:
        assert getattr(bptt_core, name).__name__ == name
    with pytest.raises(AttributeError, match="no attribute 'jacobian_norms'"):
        bptt_core.jacobian_norms  # noqa: B018 - the lookup is the test
