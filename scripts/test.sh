#!/usr/bin/env bash
# Install everything the tests need and run the whole suite.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
# PostgreSQL for tests/test_postgres_instance.py: Debian's package, installed quietly when missing.
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq postgresql >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq postgresql >/dev/null 2>&1; } \
    || echo "warning: could not install postgresql; tests/test_postgres_instance.py will fail" >&2
fi
# Headless Chromium for tests/test_ui_browser.py (the Dagster UI): Debian's package, installed quietly when missing.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq chromium >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; } \
    || echo "warning: could not install chromium; tests/test_ui_browser.py will fail" >&2
fi
.venv/bin/python -m pytest "$@"
status=$?
# pytest exit code 5 means "no tests were collected": that is a failure, not a pass.
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$status"
