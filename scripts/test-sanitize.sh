#!/usr/bin/env bash
# The native unit tests built with AddressSanitizer + UndefinedBehaviorSanitizer
# and the buffer-pool audit (CMake -DVPC_SANITIZE=ON), in build-sanitize/.
# Any report fails the run: UBSan does not recover, ASan aborts, the pool
# audit aborts on a double free.
#   npm run test:sanitize [-- GTEST_FILTER]
set -euo pipefail
cd "$(dirname "$0")/.."
filter="${1:-}"
cmake -S . -B build-sanitize -DVPC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-sanitize -j2 --target netmap_tests
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
echo "== native unit tests (ASan+UBSan, pool audit)"
if [ -n "$filter" ]; then
  build-sanitize/netmap_tests --gtest_filter="$filter"
else
  (cd build-sanitize && ctest --output-on-failure --timeout 600 -j2)
fi
