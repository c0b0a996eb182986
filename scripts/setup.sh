#!/usr/bin/env bash
# Installs what the project needs on a fresh machine. With --test, also Debian's chromium, the
# browser the end-to-end tests drive (never `playwright install`: browser downloads fail here).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -r requirements.txt
if [ "${1:-}" = "--test" ] && [ ! -x /usr/bin/chromium ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi
