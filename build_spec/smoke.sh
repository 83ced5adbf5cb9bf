#!/usr/bin/env bash
# Build the bundle, then run the frozen binaries offscreen (tests/test_packaging.py):
# --bundle-check, --smoke-test (both executables, normal and demo), a demo-server started by
# the frozen binary with a frozen `collect` against it, a frozen in-process `collect --demo`,
# a frozen login whose token goes to the encrypted fallback and is used by a later collect,
# and frozen exports (CSV, Parquet) read back and compared with the database.
# Usage: build_spec/smoke.sh [--no-build]   (--no-build: test the existing build/dist bundle)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != "--no-build" ]; then
  bash build_spec/build.sh
fi
# `pwd -W` (Git Bash on Windows) gives the folder as Windows programs spell it
root=$(pwd -W 2>/dev/null || pwd)
export EXPIRYTRACK_BUNDLE="$root/build/dist/expirytrack"
exec "${PYTHON:-.venv/bin/python}" -m pytest -m packaging tests/test_packaging.py -q -p no:cacheprovider
