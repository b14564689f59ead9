#!/usr/bin/env bash
# The whole test suite (sudo npm test, on a fresh clone too): the Debian
# packages the tests use, the npm dependencies if missing, the full build,
# then the native unit tests (ctest) and the TypeScript tests (node --test),
# which include the integration tests through the addon.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-deps.sh test
source scripts/common.sh
ensure_npm_deps
# Configure every time: a library installed since the last build (GoogleTest,
# libxdp, liburing) is then picked up.
npx cmake-js configure --out build >/dev/null
npx cmake-js build --out build
npx tsc -p .
bash scripts/build-report.sh

echo "== native unit tests"
(cd build && ctest --output-on-failure --timeout 300 -j2)

echo "== TypeScript tests"
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
node --test --test-concurrency=1 "${files[@]}"
