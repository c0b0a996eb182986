"""``python -m bptt_core``: the command line, as ``bptt`` (:mod:`bptt_core.cli`)."""

from bptt_core.cli.main import main

raise SystemExit(main())
