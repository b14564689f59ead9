#!/usr/bin/env bash
# npm run bench -- SUITE [options]
#
#   core [--seconds S] [--only CASE]   engine throughput over pipe ports (Mpps)
#   core --callgrind [--only CASE]     instructions per frame on the hot path
#   fdb                                FDB lookup/insert micro-benchmark
#   vxlan [--seconds S] [--only CASE]  VXLAN encap/decap over pipe ports (Mpps)
#   vxlan --callgrind [--only CASE]    instructions per frame, encap and decap
#   vhost [--seconds S] [--only CASE]  split-virtqueue copy both ways, no engine (Mpps)
#   vhost --callgrind [--only CASE]    instructions per frame, pipe <-> vhost-user
#                                      through the engine (a guest played in-process)
#   metrics [--ports N] [--scrapes N]  cost of a Prometheus scrape with 1,000 ports
#   e2e [l2|vxlan|ports|frames ...] [--seconds S] [--rounds N] [--only ID,..]
#                                      this switch vs the wire, Linux bridge (veth,
#                                      tap), Linux VXLAN and Open vSwitch, real
#                                      traffic between namespaces (root; see
#                                      docs/benchmarks.md) -> bench/results/e2e.*
#   e2e tcp [--seconds S] [--only ID,..] [--no-jumbo] [--no-latency] [--note T]
#                                      guest-to-guest TCP (iperf3, default guest
#                                      offloads) through the same systems
#                                      -> bench/results/e2e-tcp.{json,md}
#   e2e idle [--taps N,N,..] [--seconds S]
#                                      CPU of an idle engine holding N tap ports
#                                      -> bench/results/e2e-idle.json
#   e2e vhost [--seconds S] [--rounds N] [--only ID,..] [--busy-poll] [--note T]
#                                      vhost-user ports: this switch vs OVS-DPDK
#                                      and the testpmd ceiling, testpmd as the VMs
#                                      -> bench/results/e2e-vhost.{json,md}
#
# Figures are printed and written as JSON under bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
suite="${1:-core}"
[ $# -gt 0 ] && shift
mkdir -p bench/results
# Only the benchmark binaries: a half-written test elsewhere must not stop a run.
[ -f build/CMakeCache.txt ] || npx cmake-js configure --out build >/dev/null
if [ "$suite" = e2e ]; then
  # The generator, the addon (this switch runs in child node processes) and
  # the TypeScript driver.
  cmake --build build --target trafgen taprelay vpc_native >/dev/null
  npx tsc -p . >/dev/null || echo "bench: tsc reported errors (see npx tsc -p .); running what was emitted" >&2
  exec node dist/bench/e2e/main.js "$@"
fi
cmake --build build --target engine_bench fdb_bench vxlan_bench virtio_bench >/dev/null

case "$suite" in
  core)
    if [[ " $* " == *" --callgrind "* ]]; then
      exec node dist/bench/callgrind.js "$@"
    fi
    exec ./build/engine_bench --json bench/results/core.json "$@"
    ;;
  fdb)
    exec ./build/fdb_bench "$@"
    ;;
  vxlan)
    if [[ " $* " == *" --callgrind "* ]]; then
      exec node dist/bench/callgrind.js --suite vxlan "$@"
    fi
    exec ./build/vxlan_bench --json bench/results/vxlan.json "$@"
    ;;
  vhost)
    if [[ " $* " == *" --callgrind "* ]]; then
      exec node dist/bench/callgrind.js --suite vhost "$@"
    fi
    exec ./build/virtio_bench "$@"
    ;;
  metrics)
    exec node dist/bench/metrics.js "$@"
    ;;
  *)
    echo "bench: unknown suite '$suite' (known: core, fdb, vxlan, vhost, metrics, e2e)" >&2
    exit 2
    ;;
esac
