#!/usr/bin/env bash
# The quick-start demo: sudo npm start
#
# Creates four guests (network namespaces vpcdemo-a1, -a2, -b1, -b2, each with
# a veth pair whose host end is vpcd-a1 ...), runs vpcd in the foreground with
# examples/demo.yaml (two tenant switches), and prints how to try it. Ctrl-C
# stops vpcd and removes everything the demo created. Only the demo's own
# namespaces and veths are touched, with addresses from 198.18.0.0/15.
set -euo pipefail
cd "$(dirname "$0")/.."

GUESTS=(a1:198.18.1.1 a2:198.18.1.2 b1:198.18.1.11 b2:198.18.1.12)
SOCKET="${VPCD_SOCKET:-/run/vpc/vpcd.sock}"
METRICS="${VPCD_METRICS:-127.0.0.1:9273}"

if [ "$(id -u)" != 0 ]; then
  echo "demo: needs root to create network namespaces and veth pairs: sudo npm start" >&2
  exit 1
fi
command -v ip >/dev/null || { echo "demo: 'ip' (iproute2) is missing: apt-get install iproute2" >&2; exit 1; }
[ -f dist/src/control/vpcd.js ] || npm run build:ts >/dev/null

STATE_DIR="$(mktemp -d /tmp/vpcd-demo.XXXXXX)"
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
  echo "demo: stopped; namespaces, veths and state removed."
}
trap cleanup EXIT
trap 'exit 0' INT TERM

for g in "${GUESTS[@]}"; do
  n="${g%%:*}"; addr="${g##*:}"
  if ip netns list | grep -qw "vpcdemo-$n" || ip link show "vpcd-$n" >/dev/null 2>&1; then
    echo "demo: leftovers of an earlier run found (vpcdemo-$n / vpcd-$n); removing them"
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
for _ in $(seq 1 100); do
  [ -S "$SOCKET" ] && break
  kill -0 "$VPCD_PID" 2>/dev/null || { echo "demo: vpcd did not start (see its log above)" >&2; exit 1; }
  sleep 0.1
done

VPCCTL="node $(pwd)/dist/src/control/vpcctl.js --socket $SOCKET"
ping_hint="ping"
command -v ping >/dev/null || ping_hint="ping   (install it first: apt-get install iputils-ping)"
cat <<MSG

==================================================================== vpc-switch demo
 tenant-a (VNI 1001): a1 198.18.1.1   a2 198.18.1.2
 tenant-b (VNI 1002): b1 198.18.1.11  b2 198.18.1.12     (same subnet, other switch)

 In another terminal:
   sudo ip netns exec vpcdemo-a1 $ping_hint -c 3 198.18.1.2     # a1 -> a2: answers
   sudo ip netns exec vpcdemo-a1 ping -c 3 -W 1 198.18.1.11     # a1 -> b1: isolated, no answer
   sudo $VPCCTL stats --watch                     # counters, refreshed every 2 s
   sudo $VPCCTL fdb list tenant-a                 # learned MACs
   sudo $VPCCTL port list
   curl -s http://$METRICS/metrics | grep vpc_port_rx_packets_total

 Ctrl-C here stops vpcd and removes the namespaces, veths and state it made.
====================================================================================

MSG
wait "$VPCD_PID"
