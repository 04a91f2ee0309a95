#!/usr/bin/env bash
# The README's main command: sets up what is missing, then runs the demo agent (examples/demo.ts).
# --auto lets a scripted user complete the takeover in the host's Chromium (installed for it).
set -euo pipefail
cd "$(dirname "$0")/.."
setup_flags=()
for arg in "$@"; do [ "$arg" = "--auto" ] && setup_flags=(--test); done
bash scripts/setup.sh "${setup_flags[@]}"
exec node scripts/run-ts.mjs examples/demo.ts "$@"
