#!/usr/bin/env bash
# Time the shipped MIROCALS run side by side with an older commit, alternating, so that both
# see the same host load (this machine is shared: only ratios from one sitting compare).
#
# Usage: bash experiments/time_against.sh OLD_COMMIT [ROUNDS] [OVERRIDE ...]
#   e.g. bash experiments/time_against.sh cfad33b 2
# The old code runs from a temporary git worktree through PYTHONPATH, with the same venv
# (.venv, made by `make test`) and experiments/time_run.py from this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: time_against.sh OLD_COMMIT [ROUNDS] [OVERRIDE ...]}
rounds=${2:-2}
shift $(( $# >= 2 ? 2 : 1 ))
python=${PYTHON:-.venv/bin/python}
tree=$(mktemp -d)
trap 'git worktree remove --force "$tree" >/dev/null 2>&1 || true' EXIT
git worktree add --detach -q "$tree" "$old"
for i in $(seq "$rounds"); do
  echo "== new (HEAD $(git rev-parse --short HEAD)), round $i"
  "$python" experiments/time_run.py --repeats 1 configs/mirocals.yaml "$@" | tail -2
  echo "== old ($old), round $i"
  PYTHONPATH="$tree/src" "$python" experiments/time_run.py --repeats 1 \
    "$tree/configs/mirocals.yaml" "$@" | tail -2
done
