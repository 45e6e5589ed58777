#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install the project with its test extras, one progress
# line per step. pip's full output goes to .venv/install.log (printed when pip fails).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
say() { printf '[%s] setup: %s\n' "$(date +%H:%M:%S)" "$*"; }

if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv .venv
fi
LOG=.venv/install.log
: >"$LOG"

# pip's lines reduced to a progress count: "Collecting x" (from an index) or "Processing
# x" (a local wheel) per package, then what was installed.
progress() {
  local n=0 line
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      Collecting\ * | Processing\ *)
        n=$((n + 1))
        if [ $((n % 20)) -eq 1 ]; then
          pkg=${line#* } && pkg=${pkg%% *} && pkg=${pkg##*/} && pkg=${pkg%%[<>=!~;[]*} && pkg=${pkg%%-[0-9]*}
          say "  ${n} package(s) resolved so far (${pkg}, ...)"
        fi
        ;;
      Installing\ collected\ packages:*)
        say "  installing $(($(tr -cd , <<<"$line" | wc -c) + 1)) package(s) ..."
        ;;
      Successfully\ installed\ *)
        set -- $line
        say "  installed $(($# - 2)) package(s)"
        ;;
    esac
  done
}

# PYTHONWARNINGS: setuptools prints a boxed "Editable installation" warning (a folder
# named like the package in the working directory may shadow it) on every editable
# install; it is about this very checkout, so it is hidden.
# pip is silent while it unpacks and installs: a line every 20 s says it is still going.
pip_install() {
  local start=$SECONDS status=0 ticker
  (while sleep 20 </dev/null >/dev/null 2>&1; do say "  ... still working ($((SECONDS - start)) s)"; done) &
  ticker=$!
  PYTHONWARNINGS="ignore:Editable installation" .venv/bin/python -m pip install --progress-bar off "$@" 2>&1 \
    | tee -a "$LOG" | progress || status=$?
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  if [ "$status" -ne 0 ]; then
    grep -v "^WARNING: Location" "$LOG" | tail -n 25 >&2
    echo "setup: pip install $* failed; the full log is in $LOG" >&2
    exit 1
  fi
}

say "upgrading pip"
pip_install --upgrade pip
say "installing gopro-assets and its dependencies into .venv (a few minutes the first time) ..."
pip_install -e '.[test]'
say "checking the install"
.venv/bin/python -c "import gopro_assets, dagster, deltalake, duckdb, av" # fail loudly if the install did not work
say "done: .venv is ready"
