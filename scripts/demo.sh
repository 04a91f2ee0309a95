#!/usr/bin/env bash
# The README's main command: sets up what is missing, then runs the demo agent (examples/demo.ts).
# --auto lets a scripted user complete the takeover in the host's Chromium (installed for it);
# --browser local runs the agent against a Chromium window on this machine's display (installed
# for it too).
set -euo pipefail
cd "$(dirname "$0")/.."
setup_flags=()
previous=""
for arg in "$@"; do
  case "$arg" in
    --auto | --browser=local) setup_flags=(--test) ;;
    local) [ "$previous" = "--browser" ] && setup_flags=(--test) ;;
  esac
  previous="$arg"
done
bash scripts/setup.sh "${setup_flags[@]}"
exec node scripts/run-ts.mjs examples/demo.ts "$@"
