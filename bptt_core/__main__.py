"""``python -m bptt_core jacobian ...``: see :mod:`bptt_core.cli`."""

from .cli import main

raise SystemExit(main())
