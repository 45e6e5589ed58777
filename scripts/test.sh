#!/usr/bin/env bash
# Install everything the tests need and run the whole suite.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
# System packages the tests use, from Debian, installed quietly when missing (as root):
#   postgresql  tests/test_postgres_instance.py (a real PostgreSQL on loopback)
#   chromium    tests/test_ui_browser.py (the Dagster UI in a real browser)
#   ffmpeg      tests/test_benchmarks.py (the probe benchmark times ffprobe beside our probe)
missing=()
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing+=(postgresql)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v ffprobe >/dev/null || missing+=(ffmpeg)
if [ "${#missing[@]}" -gt 0 ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; } \
    || echo "warning: could not install ${missing[*]}; the tests that need them will fail" >&2
fi
# Lint, format and the architecture's import contracts (pyproject.toml) first: quick, and
# a broken layer is reported before the long suite runs.
lint=0
.venv/bin/ruff check --quiet . || lint=1
.venv/bin/ruff format --check --quiet . || lint=1
.venv/bin/lint-imports --no-cache >/tmp/lint-imports.$$ 2>&1 || { cat /tmp/lint-imports.$$; lint=1; }
rm -f /tmp/lint-imports.$$
[ "$lint" -eq 0 ] && echo "ruff and import-linter: clean"
.venv/bin/python -m pytest "$@"
status=$?
# pytest exit code 5 means "no tests were collected": that is a failure, not a pass.
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
[ "$lint" -ne 0 ] && { echo "ruff or import-linter failed (above)" >&2; exit 1; }
exit "$status"
