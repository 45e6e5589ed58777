#!/usr/bin/env bash
# Install, write the embedded demo landing zone (once) and materialize everything
# through Dagster into ./data/lake, with runs recorded in ./.dagster_home. The demo
# records its last day in the landing zone (demo_manifest.json): materialize stops there
# unless --through says otherwise. Arguments go to `gopro-lake materialize`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export GOPRO_LANDING="${GOPRO_LANDING:-./data/landing}"
if [ ! -d "$GOPRO_LANDING/uploads" ]; then
  .venv/bin/gopro-lake demo --out "$GOPRO_LANDING"
else
  printf '[%s] the landing zone %s is already written (delete it for a fresh demo)\n' "$(date +%H:%M:%S)" "$GOPRO_LANDING"
fi
.venv/bin/gopro-lake materialize "$@"
