#!/usr/bin/env bash
# npm run soak -- --minutes N [--out DIR]
# The switch under mixed traffic, MAC churn, config applies, scrapes and veth
# churn for N minutes; fails if its memory, buffer pool or descriptors grow
# (test/soak/soak.ts; root, like the port integration tests). Writes
# DIR/soak.json and DIR/soak.svg (default bench/results/).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/CMakeCache.txt ] || npx cmake-js configure --out build >/dev/null
cmake --build build --target trafgen vpc_native >/dev/null
npx tsc -p .
exec node dist/test/soak/soak.js "$@"
