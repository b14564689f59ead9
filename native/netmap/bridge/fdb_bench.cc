// Microbenchmark for the FDB (bridge/fdb.h): lookups and inserts at 1,000
// and 1,000,000 entries, plus the stall of the largest doubling. Random
// 48-bit MACs, fixed seeds, single thread. Prints figures; asserts nothing
// about time. Each figure is the best of kRuns runs.
//
// Build (from the repo root):
//   g++ -std=c++20 -O2 -I native/netmap native/netmap/bridge/fdb_bench.cc
//       native/netmap/bridge/fdb.cc -o /tmp/fdb_bench && /tmp/fdb_bench
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <unordered_set>
#include <vector>

#include "bridge/fdb.h"

using namespace vpc;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kRuns = 3;
constexpr uint64_t kTableSeed = 0x1234567890ABCDEFull;
constexpr size_t kLookups = 20'000'000;  // per timed lookup run
constexpr size_t kBatch = 32;            // burst size for the prefetching variant

double ns_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
}

// Distinct random MACs; the first n go in the table, the next n are misses.
std::vector<Mac> make_macs(size_t n) {
  std::mt19937_64 rng(2024);
  std::unordered_set<Mac> seen;
  seen.reserve(n * 2);
  std::vector<Mac> out;
  out.reserve(n);
  while (out.size() < n) {
    const Mac m = rng() & kFdbMacMask;
    if (seen.insert(m).second) out.push_back(m);
  }
  return out;
}

// The order lookups are issued in: kLookups keys drawn uniformly from `keys`.
// Precomputed so the timed loop reads it sequentially (hardware-prefetched).
std::vector<Mac> lookup_stream(const Mac* keys, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Mac> s(kLookups);
  for (auto& m : s) m = keys[rng() % n];
  return s;
}

volatile uint64_t g_sink;  // defeats dead-code elimination

// ns per lookup, one find() after another (the CPU may overlap misses of
// independent lookups, as it would within a packet burst).
double bench_find(const Fdb& t, const std::vector<Mac>& stream) {
  double best = 1e30;
  for (int r = 0; r < kRuns; ++r) {
    uint64_t sum = 0;
    const auto t0 = Clock::now();
    for (Mac m : stream) {
      const FdbEntry* e = t.find(m);
      sum += e ? e->member : 1;
    }
    best = std::min(best, ns_since(t0) / double(stream.size()));
    g_sink = sum;
  }
  return best;
}

// ns per lookup when a burst of kBatch keys is prefetched first, the way
// the forwarding stage does it.
double bench_find_prefetch(const Fdb& t, const std::vector<Mac>& stream) {
  double best = 1e30;
  for (int r = 0; r < kRuns; ++r) {
    uint64_t sum = 0;
    const auto t0 = Clock::now();
    for (size_t b = 0; b + kBatch <= stream.size(); b += kBatch) {
      for (size_t k = 0; k < kBatch; ++k) t.prefetch(stream[b + k]);
      for (size_t k = 0; k < kBatch; ++k) {
        const FdbEntry* e = t.find(stream[b + k]);
        sum += e ? e->member : 1;
      }
    }
    best = std::min(best, ns_since(t0) / double(stream.size() / kBatch * kBatch));
    g_sink = sum;
  }
  return best;
}

struct InsertFigures {
  double ns_grow;       // per insert, table starting at the default 1024 slots
  double ns_reserved;   // per insert, table reserved up front (no rehash)
  double largest_doubling_ms;
  uint32_t largest_doubling_from;  // capacity before it
  uint32_t largest_doubling_size;  // entries at the time
};

InsertFigures bench_insert(const std::vector<Mac>& keys, size_t n) {
  InsertFigures f{1e30, 1e30, 0, 0, 0};
  // Small tables are built many times over to get a measurable interval.
  const size_t reps = std::max<size_t>(1, 2'000'000 / n);
  for (int r = 0; r < kRuns; ++r) {
    double total = 0;
    for (size_t rep = 0; rep < reps; ++rep) {
      Fdb t(1024, kTableSeed);
      const auto t0 = Clock::now();
      for (size_t i = 0; i < n; ++i) t.insert(keys[i], MemberId(i), 0, 0);
      total += ns_since(t0);
      g_sink = t.size();
    }
    f.ns_grow = std::min(f.ns_grow, total / double(n * reps));

    total = 0;
    for (size_t rep = 0; rep < reps; ++rep) {
      Fdb t(1024, kTableSeed);
      t.reserve(uint32_t(n));
      const auto t0 = Clock::now();
      for (size_t i = 0; i < n; ++i) t.insert(keys[i], MemberId(i), 0, 0);
      total += ns_since(t0);
      g_sink = t.size();
    }
    f.ns_reserved = std::min(f.ns_reserved, total / double(n * reps));
  }
  // The doubling stall: time exactly the inserts that trigger a rehash.
  for (int r = 0; r < kRuns; ++r) {
    Fdb t(1024, kTableSeed);
    double worst = 0;
    uint32_t from = 0, at = 0;
    for (size_t i = 0; i < n; ++i) {
      if (uint64_t(t.size() + 1) * 4 > uint64_t(t.capacity()) * 3) {
        const uint32_t cap = t.capacity(), sz = t.size();
        const auto t0 = Clock::now();
        t.insert(keys[i], MemberId(i), 0, 0);
        const double ms = ns_since(t0) / 1e6;
        if (cap >= from) worst = ms, from = cap, at = sz;  // keep the largest capacity's
      } else {
        t.insert(keys[i], MemberId(i), 0, 0);
      }
    }
    if (r == 0 || worst < f.largest_doubling_ms) f.largest_doubling_ms = worst;
    f.largest_doubling_from = from;
    f.largest_doubling_size = at;
  }
  return f;
}

void run(size_t n, const std::vector<Mac>& all) {
  const Mac* present = all.data();
  const Mac* absent = all.data() + n;

  const InsertFigures ins = bench_insert(all, n);

  Fdb t(1024, kTableSeed);
  for (size_t i = 0; i < n; ++i) t.insert(present[i], MemberId(i), 0, 0);
  const Fdb::ProbeStats ps = t.probe_stats();

  const std::vector<Mac> hits = lookup_stream(present, n, 1);
  const std::vector<Mac> misses = lookup_stream(absent, n, 2);
  const double hit = bench_find(t, hits);
  const double miss = bench_find(t, misses);
  const double hit_pf = bench_find_prefetch(t, hits);
  const double miss_pf = bench_find_prefetch(t, misses);

  std::printf("== %zu entries: capacity %u slots, %.1f MiB, load %.3f, %.1f B/entry, "
              "mean probes/hit %.2f, max %u\n",
              n, t.capacity(), double(t.memory_bytes()) / (1 << 20),
              double(t.size()) / t.capacity(), double(t.memory_bytes()) / double(t.size()),
              ps.mean_hit_probes, ps.max_hit_probes);
  std::printf("lookup hit              %7.2f ns  (%6.1f M/s)\n", hit, 1e3 / hit);
  std::printf("lookup miss             %7.2f ns  (%6.1f M/s)\n", miss, 1e3 / miss);
  std::printf("lookup hit,  prefetch%zu %7.2f ns  (%6.1f M/s)\n", kBatch, hit_pf, 1e3 / hit_pf);
  std::printf("lookup miss, prefetch%zu %7.2f ns  (%6.1f M/s)\n", kBatch, miss_pf, 1e3 / miss_pf);
  std::printf("insert, growing from 1024  %7.2f ns  (%6.1f M/s)\n", ins.ns_grow, 1e3 / ins.ns_grow);
  std::printf("insert, reserved           %7.2f ns  (%6.1f M/s)\n", ins.ns_reserved,
              1e3 / ins.ns_reserved);
  std::printf("largest doubling: %u -> %u slots at %u entries: %.3f ms\n",
              ins.largest_doubling_from, ins.largest_doubling_from * 2, ins.largest_doubling_size,
              ins.largest_doubling_ms);
}

}  // namespace

int main() {
  const std::vector<Mac> all = make_macs(2'000'000);  // 1M present + 1M absent
  std::printf("fdb_bench: %zu lookups per run, best of %d runs, %zu-byte slots\n", kLookups,
              kRuns, sizeof(FdbEntry));
  run(1000, all);
  run(1'000'000, all);
  return 0;
}
