#!/usr/bin/env bash
# Returns this machine to fresh for everything the project's setup installs or creates, so that the
# README's two commands are proven from nothing (CI runs this first). It removes Docker: the
# dockerd that setup started, Debian's docker.io and what came with it, Docker's data root and
# the runsc registration in daemon.json, plus debootstrap, chromium, xvfb, xdotool, websockify,
# runsc, the runner's state, cache and logs, and node_modules/ and dist/ of this checkout.
#
# Refuses to run unless CI=true or --yes is given. Safe to run twice, and on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${CI:-}" != true ] && [ "${1:-}" != --yes ]; then
  cat >&2 <<'EOF'
reset-machine: this removes Docker (the engine, every image and container, its data root) and the
Debian packages the project's setup installs. Run it with --yes (or CI=true) if that is what you want.
EOF
  exit 2
fi
if [ "$(id -u)" != 0 ]; then
  echo 'reset-machine: needs root (it stops dockerd and purges Debian packages).' >&2
  exit 1
fi

started=$SECONDS
say() { printf 'reset [%3ds]: %s\n' "$((SECONDS - started))" "$*" >&2; }

# 1. The dockerd that setup started (doctor --fix records nothing else: Docker's own pid file).
pid=$(cat /var/run/docker.pid 2>/dev/null || true)
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
  say "stopping dockerd (pid $pid)"
  # Containers first, so that nothing the engine ran outlives it in a half-removed state.
  if command -v docker >/dev/null; then
    ids=$(timeout 20 docker ps -aq 2>/dev/null || true)
    [ -n "$ids" ] && timeout 60 docker rm -f $ids >/dev/null 2>&1 || true
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    say "dockerd did not stop within 30 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
fi
# Its containerd and shims are its children; a SIGKILLed dockerd leaves them behind.
pkill -KILL -x containerd 2>/dev/null || true
pkill -KILL -f containerd-shim 2>/dev/null || true

# 2. What dockerd left in the kernel: its bridge and its iptables rules (the iptables package is
# about to go with docker.io, the rules would not).
for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^(docker0|br-[0-9a-f]{12}|veth)' || true); do
  ip link delete "$link" 2>/dev/null || true
done
for save in iptables-save ip6tables-save; do
  command -v "$save" >/dev/null || continue
  restore=${save%-save}-restore
  rules=$("$save" 2>/dev/null || true)
  if grep -qE 'DOCKER|docker0' <<<"$rules"; then
    say "removing Docker's rules ($save)"
    grep -vE 'DOCKER|docker0' <<<"$rules" | "$restore" || say "warning: $restore failed; Docker's rules may remain"
  fi
done
if command -v nft >/dev/null; then
  nft list tables 2>/dev/null | awk '$3 ~ /^grexal/ {print $2, $3}' | while read -r family table; do
    nft delete table "$family" "$table" || true
  done
fi
# Host ends of sandbox links (they go with their containers' namespaces; a stray one would not).
# gxv<slot> is a sandbox's host end; gxh/gxs<slot> a slot's placeholder pair (runner/network/veth.ts).
ip -o link show type veth 2>/dev/null | awk -F': ' '$2 ~ /^gx[hsv][0-9]+@/ {sub(/@.*/, "", $2); print $2}' | while read -r link; do
  ip link del "$link" 2>/dev/null || true
done
echo 0 >/proc/sys/net/ipv4/ip_forward 2>/dev/null || true
# The network's fast path turns on conntrack's byte counters (the kernel's default is off).
echo 0 >/proc/sys/net/netfilter/nf_conntrack_acct 2>/dev/null || true

# 3. The Debian packages, with what came with them (autoremove purges the dependencies that
# nothing else needs any more).
packages=()
for pkg in docker.io containerd runc tini debootstrap nftables chromium chromium-common chromium-sandbox xvfb xdotool websockify runsc; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'installed' && packages+=("$pkg")
done
if [ "${#packages[@]}" -gt 0 ]; then
  say "purging ${packages[*]} (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${packages[@]}" >/dev/null
fi
if [ -n "$(apt-get -s autoremove 2>/dev/null | grep '^Remv' || true)" ]; then
  say "purging the packages that came with them (apt-get autoremove)"
  DEBIAN_FRONTEND=noninteractive apt-get autoremove --purge -y -q >/dev/null
fi

# 4. Docker's data root and runtime files, the runsc registration. A killed engine can leave
# mounts below them (overlay layers, network namespaces): those go first, deepest first. A
# directory that is itself a mount point (some machines give the data root a volume of its own)
# is emptied and kept: removing it fails with "Device or resource busy".
for dir in /var/lib/docker /var/lib/containerd /run/docker /run/containerd; do
  [ -e "$dir" ] || continue
  findmnt -rn -o TARGET | awk -v under="$dir/" 'index($0, under) == 1' | sort -r | while read -r target; do
    umount -l "$target" 2>/dev/null || say "warning: could not unmount $target"
  done
  if mountpoint -q "$dir"; then
    find "$dir" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
  else
    rm -rf "$dir"
  fi
done
rm -f /var/run/docker.sock /var/run/docker.pid
if [ -f /etc/docker/daemon.json ]; then
  # Drop the runtime `grexal doctor --fix` registered; keep anything else an operator put there.
  left=$(python3 - <<'EOF'
import json
path = '/etc/docker/daemon.json'
with open(path) as f:
    config = json.load(f)
runtimes = config.get('runtimes') or {}
runtimes.pop('runsc', None)
if runtimes:
    config['runtimes'] = runtimes
else:
    config.pop('runtimes', None)
with open(path, 'w') as f:
    f.write(json.dumps(config, indent=2) + '\n' if config else '')
print(len(config))
EOF
  )
  [ "$left" = 0 ] && rm -f /etc/docker/daemon.json
fi
rmdir /etc/docker 2>/dev/null || true

# 5. The runner's state, cache and logs; the bootstrap's temporary root filesystems.
rm -rf /run/grexal-runner /var/cache/grexal /tmp/grexal-rootfs-* /var/log/grexal-*.log

# 6. This checkout's installed and built files.
rm -rf node_modules dist

say "done: the machine is fresh for this project"
