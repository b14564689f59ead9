#!/usr/bin/env bash
# The quick-start demo: npm start as root, sudo npm start from a user's shell (on a fresh clone, nothing else first)
#
# 1. Refuses at once if a demo already runs, or another vpcd answers on the
#    socket (a second demo would delete the first one's namespaces).
# 2. Installs the Debian packages the full build and the demo need
#    (scripts/setup-deps.sh run), the npm dependencies if they are missing,
#    and builds the dataplane (AF_XDP and io_uring included) and TypeScript.
# 3. Creates four guests (network namespaces vpcdemo-a1, -a2, -b1, -b2, each
#    with a veth pair whose host end is vpcd-a1 ...), runs vpcd in the
#    foreground with examples/demo.yaml (two tenant switches), and prints how
#    to try it. Ctrl-C stops vpcd and removes everything the demo created.
#
# Only the demo's own namespaces and veths are touched, with addresses from
# 198.18.0.0/15. Environment: VPCD_SOCKET, VPCD_METRICS, and VPC_DEMO_BUILT=1
# to skip step 2 in a tree that is built already (the test of a whole demo
# sets it: it runs beside other tests that use the build). VPC_DEMO_LOCK is
# for the tests of the refusals only: the lock is what tells a demo that
# vpcdemo-* namespaces and /tmp/vpcd-demo.* directories are a killed run's,
# so two demos on different locks would remove each other's.
#
# Sourcing this file (tests do) defines the functions and runs nothing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

GUESTS=(a1:198.18.1.1 a2:198.18.1.2 b1:198.18.1.11 b2:198.18.1.12)
SOCKET="${VPCD_SOCKET:-/run/vpc/vpcd.sock}"
METRICS="${VPCD_METRICS:-127.0.0.1:9273}"
# Held (flock) by the demo and inherited by its vpcd for as long as either runs.
LOCK="${VPC_DEMO_LOCK:-/run/vpc-demo.lock}"

# What to put before a command in the hints so that it works in the shell that
# started the demo: `sudo ` when that was `sudo npm start` from a user's shell,
# nothing in a root shell or where there is no sudo.
root_prefix() {
  if [ -n "${SUDO_USER:-}" ] && [ "${SUDO_USER}" != root ] && command -v sudo >/dev/null 2>&1; then
    printf 'sudo '
  fi
}

# Takes the demo lock on fd 9, or says who holds it and fails.
take_lock() {
  exec 9>>"$LOCK"
  if ! flock -n 9; then
    local holder
    holder="$(cat "$LOCK.pid" 2>/dev/null || true)"
    echo "demo: a demo is already running${holder:+ ($holder)}." >&2
    echo "demo: stop it first (Ctrl-C in its terminal), or use the one that runs." >&2
    return 1
  fi
}

# Does something answer on the control socket?
socket_answers() {
  [ -S "$1" ] || return 1
  node -e "require('net').connect(process.argv[1]).on('connect', () => process.exit(0)).on('error', () => process.exit(1))" "$1"
}

# Refuses (before anything is installed or created) when the demo cannot run.
preflight() {
  if [ "$(id -u)" != 0 ]; then
    echo "demo: needs root to install packages and create network namespaces and veth pairs: sudo npm start" >&2
    return 1
  fi
  take_lock || return 1
  if socket_answers "$SOCKET"; then
    echo "demo: a vpcd already answers on $SOCKET (a vpcd service?); the demo would collide with it." >&2
    echo "demo: stop it (systemctl stop vpcd), or run the demo on another socket and metrics port:" >&2
    echo "demo:   $(root_prefix)env VPCD_SOCKET=/run/vpc-demo.sock VPCD_METRICS=127.0.0.1:9274 npm start" >&2
    return 1
  fi
}

# Runs a step quietly; on failure shows the end of its output and where the rest is.
quietly() {
  local what="$1" log
  shift
  log="$(mktemp /tmp/vpc-demo-build.XXXXXX)"
  if ! "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "demo: $what failed; the whole output is in $log" >&2
    return 1
  fi
  rm -f "$log"
}

# Debian packages, npm dependencies, the full build.
prepare() {
  bash scripts/setup-deps.sh run
  ensure_npm_deps
  echo "demo: building the dataplane, the addon and the TypeScript (a few minutes the first time)"
  # Configure every time: libraries installed since the last build are picked up.
  quietly "cmake configure" npx cmake-js configure --out build
  quietly "the native build" npx cmake-js build --out build
  quietly "tsc" npx tsc -p .
  bash scripts/build-report.sh
}

main() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  preflight || exit 1
  [ "${VPC_DEMO_BUILT:-}" = 1 ] || prepare

  # No other demo runs (we hold the lock): a state directory left in /tmp is
  # from one that was killed (kill -9) before it could remove it.
  local old
  for old in /tmp/vpcd-demo.*; do
    [ -d "$old" ] || continue
    echo "demo: state of an earlier run that was killed found ($old); removing it"
    rm -rf "$old"
  done
  STATE_DIR="$(mktemp -d /tmp/vpcd-demo.XXXXXX)"
  # vpcd makes the socket's directory if it is missing; then the demo removes
  # it at the end (if nothing else was put there).
  SOCKET_DIR="$(dirname "$SOCKET")"
  SOCKET_DIR_MADE=""
  [ -d "$SOCKET_DIR" ] || SOCKET_DIR_MADE=1
  VPCD_PID=""
  cleanup() {
    trap - EXIT INT TERM
    if [ -n "$VPCD_PID" ] && kill -0 "$VPCD_PID" 2>/dev/null; then
      kill -TERM "$VPCD_PID" 2>/dev/null || true
      wait "$VPCD_PID" 2>/dev/null || true
    fi
    for g in "${GUESTS[@]}"; do
      n="${g%%:*}"
      ip netns del "vpcdemo-$n" 2>/dev/null || true   # takes its veth pair with it
      ip link del "vpcd-$n" 2>/dev/null || true
    done
    rm -rf "$STATE_DIR"
    [ -z "$SOCKET_DIR_MADE" ] || rmdir "$SOCKET_DIR" 2>/dev/null || true
    # vpcd, which held the lock with us, has ended: the lock file goes too (a
    # demo starting meanwhile found it held and stopped).
    rm -f "$LOCK.pid" "$LOCK"
    echo "demo: stopped; namespaces, veths, state and lock removed."
  }
  trap cleanup EXIT
  trap 'exit 0' INT TERM

  # No other demo runs (we hold the lock): whatever is left is from one that
  # was killed without cleaning up.
  for g in "${GUESTS[@]}"; do
    n="${g%%:*}"; addr="${g##*:}"
    if ip netns list | grep -qw "vpcdemo-$n" || ip link show "vpcd-$n" >/dev/null 2>&1; then
      echo "demo: leftovers of an earlier run that was killed found (vpcdemo-$n / vpcd-$n); removing them"
      ip netns del "vpcdemo-$n" 2>/dev/null || true
      ip link del "vpcd-$n" 2>/dev/null || true
    fi
    ip netns add "vpcdemo-$n"
    ip link add "vpcd-$n" type veth peer name eth0 netns "vpcdemo-$n"
    ip link set "vpcd-$n" up
    ip -n "vpcdemo-$n" link set lo up
    ip -n "vpcdemo-$n" addr add "$addr/24" dev eth0
    ip -n "vpcdemo-$n" link set eth0 up
  done

  node dist/src/control/vpcd.js --config examples/demo.yaml --state-dir "$STATE_DIR" \
    --socket "$SOCKET" --metrics "$METRICS" "$@" &
  VPCD_PID=$!
  echo "demo pid $$, vpcd pid $VPCD_PID, socket $SOCKET" >"$LOCK.pid"
  for _ in $(seq 1 100); do
    socket_answers "$SOCKET" && break
    kill -0 "$VPCD_PID" 2>/dev/null || { echo "demo: vpcd did not start (see its log above)" >&2; exit 1; }
    sleep 0.1
  done

  local p vpcctl
  p="$(root_prefix)"
  vpcctl="${p}node $(pwd)/dist/src/control/vpcctl.js --socket $SOCKET"
  cat <<MSG


==================================================================== vpc-switch demo
 tenant-a (VNI 1001): a1 198.18.1.1   a2 198.18.1.2
 tenant-b (VNI 1002): b1 198.18.1.11  b2 198.18.1.12     (same subnet, other switch)

 In another terminal:
   ${p}ip netns exec vpcdemo-a1 ping -c 3 198.18.1.2          # a1 -> a2: answers
   ${p}ip netns exec vpcdemo-a1 ping -c 3 -W 1 198.18.1.11    # a1 -> b1: isolated, no answer
   $vpcctl stats --watch     # counters every 2 s
   $vpcctl fdb list tenant-a # learned MACs
   $vpcctl port list
   $vpcctl capture a1 --count 5   # frames a1 sends and gets (-w FILE.pcap for Wireshark)
   curl -s http://$METRICS/metrics | grep vpc_port_rx_packets_total

 Ctrl-C here stops vpcd and removes the namespaces, veths and state it made.
====================================================================================

MSG
  wait "$VPCD_PID"
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] || return 0
main "$@"
