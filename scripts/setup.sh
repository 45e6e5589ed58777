#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install the project with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install --quiet -e '.[test]' 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import gopro_assets, dagster, deltalake, duckdb, av" # fail loudly if the install did not work
