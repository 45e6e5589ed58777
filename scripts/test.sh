#!/usr/bin/env bash
# Install everything the tests need and run the whole suite.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
.venv/bin/python -m pytest "$@"
status=$?
# pytest exit code 5 means "no tests were collected": that is a failure, not a pass.
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$status"
