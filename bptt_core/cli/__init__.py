"""The command line, ``bptt`` (``python -m bptt_core``): one module per command, ``main`` the entry point."""

from .main import main

__all__ = ["main"]
