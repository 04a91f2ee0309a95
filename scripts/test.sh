#!/usr/bin/env bash
# The README's test command: sets up what is missing, then runs every check and test.
# Nothing is skipped for lack of Docker or Chromium: setup installs them or fails saying why.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
npm run --silent typecheck
npm run --silent lint
npx vitest run
