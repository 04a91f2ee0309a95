#!/usr/bin/env bash
# Brings a machine from a fresh clone to ready: npm packages, the bundle, the Docker engine, the
# images, and (with --test) what the tests drive: Debian's Chromium, websockify, and gVisor (runsc).
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }

with_test_tools=false
[ "${1:-}" = "--test" ] && with_test_tools=true

# Debian packages the runner and the tests need on the host. The engine itself comes through
# `grexal doctor --fix`, which the CLI offers to everyone, not only to this script.
apt_packages=(debootstrap)
$with_test_tools && apt_packages+=(chromium websockify runsc)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "missing Debian packages: ${missing[*]}; install them (apt-get install ${missing[*]}) and run again"
    exit 1
  fi
  say "installing ${missing[*]} (apt-get)…"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # `npm install --no-save` installs the locked versions. Not `npm ci`: with this machine's npm
  # settings (omit-lockfile-registry-resolved) npm 11 records only this platform's optional
  # packages (Biome's, esbuild's) in the lock, and `npm ci` then refuses the lock as out of sync.
  say "installing npm packages (npm install, locked versions)…"
  npm install --no-save --no-audit --no-fund --loglevel=error
fi

say "bundling (npm run build)…"
npm run --silent build

node bin/grexal.mjs doctor --fix
node bin/grexal.mjs images build
