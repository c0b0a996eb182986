#!/usr/bin/env bash
# The whole test suite on a fresh machine: install, lint, then every test (browser ones included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
python3 -m ruff check .
python3 -m ruff format --check .
python3 -m pytest "$@"
