#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan, buffer-pool audit) in
# build-fuzz/ and runs one of them, or all, for a fixed time.
#
#   npm run fuzz -- TARGET [--seconds N] [--jobs J]   TARGET: local | uplink | commands | vhost | offload | all
#
# The run starts from the seed corpus in the tree (native/fuzz/corpus/TARGET,
# read-only) plus what earlier runs found (build-fuzz/corpus/TARGET). A
# failing input is saved as build-fuzz/artifacts/TARGET-crash-*; replay it
# with build-fuzz/fuzz_TARGET FILE. Prints executions and coverage at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${1:-}"
shift || true
seconds=60
jobs=1
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    *) echo "fuzz: unknown option $1" >&2; exit 2 ;;
  esac
done
all=(local uplink commands vhost offload)
case "$target" in
  all) targets=("${all[@]}") ;;
  local|uplink|commands|vhost|offload) targets=("$target") ;;
  *) echo "usage: npm run fuzz -- {local|uplink|commands|vhost|offload|all} [--seconds N] [--jobs J]" >&2; exit 2 ;;
esac

command -v clang++ >/dev/null || { echo "fuzz: clang++ not found (Debian: apt-get install clang libclang-rt-14-dev; scripts/setup-deps.sh does it)" >&2; exit 1; }
cmake -S . -B build-fuzz -DVPC_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-fuzz -j2 --target "${targets[@]/#/fuzz_}"

mkdir -p build-fuzz/artifacts
par=()
# With -jobs, libFuzzer runs workers in child processes that log to fuzz-N.log.
[ "$jobs" -gt 1 ] && par=(-jobs="$jobs" -workers="$jobs")
status=0
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t"
  log="build-fuzz/fuzz_$t.log"
  echo "== fuzz $t: ${seconds}s"
  # -rss_limit_mb: ASan's shadow and quarantine, not the engine, dominate.
  set +e
  "build-fuzz/fuzz_$t" -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=4096 -max_len=16384 \
    "${par[@]}" -artifact_prefix="build-fuzz/artifacts/$t-" \
    "build-fuzz/corpus/$t" "native/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  set -e
  [ "$jobs" -gt 1 ] && cat fuzz-*.log >>"$log" 2>/dev/null && rm -f fuzz-*.log
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{s+=$2} END {print s+0}' || true)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  echo "fuzz $t: $execs executions, ${cov:-no coverage line}, corpus $(ls "build-fuzz/corpus/$t" | wc -l) inputs"
  if [ $rc -ne 0 ]; then
    echo "fuzz $t: FAILED (exit $rc); the report:" >&2
    grep -E 'fuzz check failed|buffer pool audit|ERROR: (AddressSanitizer|libFuzzer|UndefinedBehaviorSanitizer)|runtime error|SUMMARY|Test unit written' "$log" >&2 || tail -40 "$log" >&2
    status=1
  fi
done
exit $status
