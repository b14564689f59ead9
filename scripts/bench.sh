#!/usr/bin/env bash
# npm run bench -- SUITE [options]
#
#   core [--seconds S] [--only CASE]   engine throughput over pipe ports (Mpps)
#   core --callgrind [--only CASE]     instructions per frame on the hot path
#   fdb                                FDB lookup/insert micro-benchmark
#   vxlan [--seconds S] [--only CASE]  VXLAN encap/decap over pipe ports (Mpps)
#   vxlan --callgrind [--only CASE]    instructions per frame, encap and decap
#   metrics [--ports N] [--scrapes N]  cost of a Prometheus scrape with 1,000 ports
#
# Figures are printed and written as JSON under bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
suite="${1:-core}"
[ $# -gt 0 ] && shift
mkdir -p bench/results
# Only the benchmark binaries: a half-written test elsewhere must not stop a run.
[ -f build/CMakeCache.txt ] || npx cmake-js configure --out build >/dev/null
cmake --build build --target engine_bench fdb_bench vxlan_bench >/dev/null

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
  metrics)
    exec node dist/bench/metrics.js "$@"
    ;;
  *)
    echo "bench: unknown suite '$suite' (known: core, fdb, vxlan, metrics)" >&2
    exit 2
    ;;
esac
