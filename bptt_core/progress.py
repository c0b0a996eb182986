"""Progress and cancellation for long numerics: a small protocol of the library's own.

A caller that wants to hear how far a long computation has got, or to stop it, runs the call inside
:func:`reporting`; the numerics call :func:`checkpoint` at their natural steps (a step of the
Jacobian chain, a level of the Frobenius split, a snapshot of the training player). Outside
:func:`reporting` a checkpoint does nothing, so a plain call pays one attribute lookup. The library
never imports whoever listens: the dashboard's job queue is one listener, a command-line progress
bar could be another.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Progress = Callable[[float, str], None]  # progress(fraction in [0, 1], message)
IsCancelled = Callable[[], bool]


class Cancelled(Exception):
    """The computation stopped because its listener asked it to (raised from :func:`checkpoint`)."""


_listener = threading.local()  # (progress, cancelled) of the computation running in this thread


@contextmanager
def reporting(progress: Progress | None = None, cancelled: IsCancelled | None = None) -> Iterator[None]:
    """Within this block, this thread's checkpoints report to ``progress`` and raise :class:`Cancelled`
    once ``cancelled()`` is True. Blocks nest: the innermost listener hears."""
    outer = getattr(_listener, "current", None)
    _listener.current = (progress, cancelled)
    try:
        yield
    finally:
        _listener.current = outer


def checkpoint(fraction: float | None = None, message: str = "") -> None:
    """A long loop's check, cheap anywhere: report ``fraction`` (when given) to this thread's listener
    and raise :class:`Cancelled` once it asks to stop; with no listener, nothing."""
    current = getattr(_listener, "current", None)
    if current is None:
        return
    progress, cancelled = current
    if fraction is not None and progress is not None:
        progress(fraction, message)
    if cancelled is not None and cancelled():
        raise Cancelled("the computation was cancelled")
