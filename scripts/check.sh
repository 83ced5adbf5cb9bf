#!/usr/bin/env bash
# The house rules, checked by machine (README "House rules"); .ci/run runs this before the tests
# and .pre-commit-config.yaml runs the same commands (but the workflow lint) on each commit.
# Runs every check, prints what each found and how long it took, and exits 1 if any failed.
# About 30 s on a fresh clone (mypy without its cache), 10 s after.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}  # lint-imports is taken from beside it
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's package, whatever is installed

failed=()
check() {  # check NAME COMMAND...
  local name=$1 start=$SECONDS; shift
  echo "== $name: $*"
  "$@" || failed+=("$name")
  echo "   ($name: $((SECONDS - start)) s)"
}
check "ruff check" "$PY" -m ruff check .
check "ruff format" "$PY" -m ruff format --check .
check "mypy" "$PY" -m mypy                                 # [tool.mypy] in pyproject.toml
check "import contracts" "$(dirname "$PY")/lint-imports" --no-cache --no-logo  # [tool.importlinter]
check "structure" "$PY" scripts/check_structure.py         # 600-line limit, import cycles
check "constraints" "$PY" scripts/check_constraints.py     # constraints.txt covers pyproject
check "workflows" bash scripts/check_workflows.sh          # actionlint over .github/workflows

if [ ${#failed[@]} -gt 0 ]; then
  echo "house rules broken: ${failed[*]}"
  exit 1
fi
echo "house rules: all kept"
