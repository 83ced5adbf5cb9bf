#!/usr/bin/env bash
# Re-resolves constraints.txt: every package that the app and all its extras install (`bootstrap.sh
# --test`, the PyInstaller build, ...), transitively, and pip itself, pinned for CI's platform
# (Linux x86-64, glibc 2.36 as on Debian 12, Python 3.11) from any machine. Pins already in the
# file are kept while pyproject.toml allows them; to move them:
#   bash scripts/update-constraints.sh --upgrade                   # everything to the newest
#   bash scripts/update-constraints.sh --upgrade-package httpx     # one package
# Then `bash scripts/bootstrap.sh --test`, run `bash .ci/run`, and commit the file.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
echo pip | "$UV" pip compile pyproject.toml - --all-extras \
  --python-version 3.11 --python-platform x86_64-manylinux_2_36 \
  --custom-compile-command "bash scripts/update-constraints.sh" \
  --quiet -o constraints.txt "$@"
