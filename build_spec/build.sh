#!/usr/bin/env bash
# Build the onedir bundle: build/dist/expirytrack/{expirytrack,expirytrack-desktop}
# (plus build/dist/ExpiryTrack.app on macOS). Extra arguments go to PyInstaller (e.g. --clean).
# Same as the one-liner in build_spec/README.md; PyInstaller comes from the venv's [build] extra.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
# PyInstaller's caches (bincache, ...) stay inside build/, not in the user's home folder.
# (`pwd -W`: Git Bash on Windows gives the folder as Windows programs spell it)
root=$(pwd -W 2>/dev/null || pwd)
export PYINSTALLER_CONFIG_DIR=${PYINSTALLER_CONFIG_DIR:-$root/build/pyinstaller-cache}
"$PY" -m PyInstaller --version >/dev/null 2>&1 || "$PY" -m pip install -q -c constraints.txt -e ".[build]"
exec "$PY" -m PyInstaller build_spec/expirytrack.spec --noconfirm --log-level WARN \
  --distpath build/dist --workpath build/work "$@"
