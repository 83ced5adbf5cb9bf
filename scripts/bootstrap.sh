#!/usr/bin/env bash
# Sets up ExpiryTrack Desktop from this checkout: system Qt libraries (Debian/Ubuntu, when
# run as root or with sudo), a virtual environment in .venv, and the package with its
# dependencies. `--test` adds the test and check tools. Safe to run again; it only adds what is
# missing. Every Python package is installed at its pin in constraints.txt (the versions CI runs;
# scripts/update-constraints.sh re-resolves them).
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

QT_LIBS="libegl1 libgl1 libx11-6 libdbus-1-3 libfontconfig1 libfreetype6 libglib2.0-0 libxkbcommon0 \
libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0 libxcb-render0 \
libxcb-shape0 libxcb-util1 libxcb-xkb1 libxkbcommon-x11-0"
# The tests also open a real window on a virtual X server (screenshots, packaging smoke test).
[ -n "$extras" ] && QT_LIBS="$QT_LIBS xvfb xauth"

if command -v dpkg-query >/dev/null 2>&1; then
  missing=$(for p in $QT_LIBS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"; done)
  if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "Installing Qt system libraries: $missing"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq $missing >/dev/null
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q -c constraints.txt --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e ".${extras}"
