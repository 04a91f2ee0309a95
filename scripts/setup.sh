#!/usr/bin/env bash
# Brings a machine from a fresh clone to ready: Debian packages, npm packages, the bundle, the
# Docker engine and the images (`grexal doctor --fix`), and with --test what the tests drive:
# Debian's Chromium, websockify and gVisor (runsc). Idempotent, quick when everything is there,
# and it recovers from a run that was interrupted half-way (each step checks what is really there).
# A step that fails stops the setup with its name, the last lines of its log and the fix.
# scripts/reset-machine.sh undoes all of it.
set -euo pipefail
cd "$(dirname "$0")/.."

with_test_tools=false
[ "${1:-}" = "--test" ] && with_test_tools=true

LOG_DIR=/var/log
[ -w "$LOG_DIR" ] || LOG_DIR=${TMPDIR:-/tmp}
started=$SECONDS
say() { printf 'setup [%3ds]: %s\n' "$((SECONDS - started))" "$*" >&2; }

# fail STEP LOG FIX: the step's name, the tail of its log, the fix; exit non-zero.
fail() {
  local step=$1 log=$2 fix=$3
  {
    printf '\nsetup: step "%s" failed.\n' "$step"
    if [ -s "$log" ]; then
      printf 'Last lines of %s:\n' "$log"
      tail -n 15 "$log" | sed 's/^/  | /'
    fi
    printf 'Fix: %s\n' "$fix"
  } >&2
  exit 1
}

# Debian packages the runner and the tests need on the host. The engine itself comes through
# `grexal doctor --fix`, which the CLI offers to everyone, not only to this script. nftables and
# iproute2: every sandbox's network is wired with them (runner/network, docs/network.md).
apt_packages=(debootstrap nftables iproute2)
# xvfb and xdotool: test/dev-browser.test.ts runs `grexal dev`'s local Chromium window under an Xvfb
# of its own and types into it as the developer would.
$with_test_tools && apt_packages+=(chromium xvfb xdotool websockify runsc)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    fail "Debian packages" /dev/null "install ${missing[*]} (apt-get install ${missing[*]}) as root, then run again."
  fi
  apt_log=$LOG_DIR/grexal-setup-apt.log
  : >"$apt_log"
  say "installing Debian packages: ${missing[*]} (apt-get; log: $apt_log)…"
  # `dpkg --configure -a` finishes what an interrupted earlier install left half-configured.
  { DEBIAN_FRONTEND=noninteractive dpkg --configure -a &&
    apt-get update -q &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
    >>"$apt_log" 2>&1 ||
    fail "Debian packages (${missing[*]})" "$apt_log" \
      "check that this machine reaches its Debian mirror (apt-get update), then run again."
  say "Debian packages installed"
fi

if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] ||
  [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # `npm install --no-save` installs the locked versions. Not `npm ci`: with this machine's npm
  # settings (omit-lockfile-registry-resolved) npm 11 records only this platform's optional
  # packages (Biome's, esbuild's) in the lock, and `npm ci` then refuses the lock as out of sync.
  npm_log=$LOG_DIR/grexal-setup-npm.log
  say "installing npm packages (npm install, locked versions; log: $npm_log)…"
  npm install --no-save --no-audit --no-fund --loglevel=error >"$npm_log" 2>&1 ||
    fail "npm packages" "$npm_log" "check that the npm registry answers (npm ping), then run again."
  say "npm packages installed"
fi

build_log=$LOG_DIR/grexal-setup-build.log
say "bundling the CLI and the in-sandbox code (npm run build)…"
npm run --silent build >"$build_log" 2>&1 ||
  fail "bundle (npm run build)" "$build_log" "fix the build error above, then run again."

# The engine (docker.io installed, dockerd started, runsc registered) and the images: doctor --fix
# prints its own progress and, on failure, its own step, log tail and fix.
say "engine and images (grexal doctor --fix)…"
node bin/grexal.mjs doctor --fix || {
  printf '\nsetup: step "engine and images (grexal doctor --fix)" failed; its message above names the cause and the fix.\n' >&2
  exit 1
}
say "ready"
