#!/usr/bin/env bash
# Installs what the project needs on a fresh machine. With --test, also Debian's chromium, the
# browser the end-to-end tests drive (never `playwright install`: browser downloads fail here), and
# Debian's nginx, the proxy deploy/replicas.py puts in front of several Streamlit replicas.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -r requirements.txt
if [ "${1:-}" = "--test" ]; then
  missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium fonts-dejavu-core)
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi
