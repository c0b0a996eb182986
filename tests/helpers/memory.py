"""Garbage collection until nothing more is freed, for the tests that count what reruns leave behind."""

from __future__ import annotations

import gc

from pandas._libs.internals import BlockValuesRefs

from tests.helpers.apptest import navigation_mode  # noqa: F401 - the fixture


def settle() -> None:
    """Full collections until one frees nothing (a cycle reached through a weakref callback or a
    finaliser takes a second pass), and pandas' copy-on-write lists of views without their dead
    weakrefs: pandas prunes a list itself only once it holds 500 (bounded, so not counted here)."""
    while gc.collect():
        pass
    for obj in gc.get_objects():
        if type(obj) is BlockValuesRefs:
            obj.referenced_blocks[:] = [ref for ref in obj.referenced_blocks if ref() is not None]
