#!/usr/bin/env bash
# Install, write the embedded demo landing zone (once) and materialize everything
# through Dagster into ./data/lake, with runs recorded in ./.dagster_home.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export GOPRO_LANDING="${GOPRO_LANDING:-./data/landing}"
if [ ! -d "$GOPRO_LANDING/uploads" ]; then
  .venv/bin/gopro-lake demo --out "$GOPRO_LANDING"
fi
.venv/bin/gopro-lake materialize "$@"
