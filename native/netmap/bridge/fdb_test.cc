// Tests for the FDB (bridge/fdb.h). The model test drives the table and a
// std::unordered_map side by side through random operations on keys built to
// collide, so backward-shift deletion and aging across wrapped clusters are
// exercised, and checks the probing invariant as it goes.
#include "bridge/fdb.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace vpc {
namespace {

constexpr uint64_t kSeed = 0x5EED5EED1234ull;

// Distinct random 48-bit MACs.
std::vector<Mac> random_macs(size_t n, uint64_t rng_seed) {
  std::mt19937_64 rng(rng_seed);
  std::unordered_set<Mac> seen;
  std::vector<Mac> out;
  out.reserve(n);
  seen.reserve(n * 2);
  while (out.size() < n) {
    Mac m = rng() & kFdbMacMask;
    if (seen.insert(m).second) out.push_back(m);
  }
  return out;
}

TEST(Fdb, InsertFindErase) {
  Fdb t(16, kSeed);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.find(0x001122334455), nullptr);

  auto r = t.insert(0x001122334455, 7, 0, 1000);
  ASSERT_NE(r.entry, nullptr);
  EXPECT_TRUE(r.inserted);
  EXPECT_EQ(r.entry->mac, 0x001122334455u);
  EXPECT_EQ(r.entry->member, 7);
  EXPECT_EQ(r.entry->flags, 0);
  EXPECT_EQ(r.entry->last_seen_ms, 1000u);
  EXPECT_EQ(t.size(), 1u);

  const Fdb& ct = t;
  const FdbEntry* e = ct.find(0x001122334455);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->member, 7);
  EXPECT_EQ(t.find(0x001122334456), nullptr);

  EXPECT_TRUE(t.erase(0x001122334455));
  EXPECT_FALSE(t.erase(0x001122334455));
  EXPECT_EQ(t.find(0x001122334455), nullptr);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_TRUE(t.validate());
}

TEST(Fdb, SpecialKeysStorable) {
  Fdb t(16, kSeed);
  const Mac keys[] = {0, kMacBroadcast, 1, kMacMulticastBit, 0xFFFFFFFFFFFEull};
  MemberId m = 0;
  for (Mac k : keys) ASSERT_TRUE(t.insert(k, m++, 0, 5).inserted);
  EXPECT_EQ(t.size(), 5u);
  m = 0;
  for (Mac k : keys) {
    const FdbEntry* e = t.find(k);
    ASSERT_NE(e, nullptr) << std::hex << k;
    EXPECT_EQ(e->mac, k);
    EXPECT_EQ(e->member, m++);
  }
  // The empty marker is not a key: looking it up finds the (masked) broadcast
  // entry, never a free slot.
  const FdbEntry* e = t.find(kFdbEmptyMac);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->mac, kMacBroadcast);
  EXPECT_TRUE(t.erase(0));
  EXPECT_EQ(t.find(0), nullptr);
  EXPECT_NE(t.find(kMacBroadcast), nullptr);
  EXPECT_TRUE(t.validate());
}

TEST(Fdb, InsertExistingReturnsItUntouched) {
  Fdb t(16, kSeed);
  auto a = t.insert(0xAABBCCDDEEFF, 3, kFdbStatic, 100);
  ASSERT_TRUE(a.inserted);
  auto b = t.insert(0xAABBCCDDEEFF, 9, 0, 200);
  EXPECT_FALSE(b.inserted);
  EXPECT_EQ(b.entry, a.entry);
  EXPECT_EQ(b.entry->member, 3);
  EXPECT_EQ(b.entry->flags, kFdbStatic);
  EXPECT_EQ(b.entry->last_seen_ms, 100u);
  EXPECT_EQ(t.size(), 1u);
}

TEST(Fdb, FlagsPreserved) {
  Fdb t(16, kSeed);
  t.insert(1, 1, kFdbStatic, 0);
  t.insert(2, 2, kFdbRemote, 0);
  t.insert(3, 3, kFdbStatic | kFdbRemote, 0);
  // Force several doublings; flags must survive the moves.
  for (Mac m = 100; m < 1100; ++m) t.insert(m, 0, 0, 0);
  EXPECT_GE(t.capacity(), 2048u);
  EXPECT_EQ(t.find(1)->flags, kFdbStatic);
  EXPECT_EQ(t.find(2)->flags, kFdbRemote);
  EXPECT_EQ(t.find(3)->flags, kFdbStatic | kFdbRemote);
  EXPECT_EQ(t.find(100)->flags, 0);
}

TEST(Fdb, GrowthPreservesMillionEntries) {
  const size_t n = 1000000;
  const std::vector<Mac> macs = random_macs(n, 42);
  Fdb t;  // default capacity, random seed
  for (size_t i = 0; i < n; ++i) {
    auto r = t.insert(macs[i], MemberId(i & 0x7FFF), 0, uint32_t(i));
    ASSERT_TRUE(r.inserted) << i;
    // The load factor bound holds at every step.
    ASSERT_LE(uint64_t(t.size()) * 4, uint64_t(t.capacity()) * 3) << i;
  }
  EXPECT_EQ(t.size(), n);
  EXPECT_EQ(t.capacity(), 1u << 21);
  for (size_t i = 0; i < n; ++i) {
    const FdbEntry* e = t.find(macs[i]);
    ASSERT_NE(e, nullptr) << i;
    ASSERT_EQ(e->member, MemberId(i & 0x7FFF));
    ASSERT_EQ(e->last_seen_ms, uint32_t(i));
  }
  for (size_t i = 0; i < n; i += 2) ASSERT_TRUE(t.erase(macs[i])) << i;
  EXPECT_EQ(t.size(), n / 2);
  for (size_t i = 0; i < n; ++i) {
    if (i % 2 == 0)
      ASSERT_EQ(t.find(macs[i]), nullptr) << i;
    else
      ASSERT_NE(t.find(macs[i]), nullptr) << i;
  }
  EXPECT_TRUE(t.validate());
}

TEST(Fdb, ReserveAvoidsGrowth) {
  Fdb t(16, kSeed);
  ASSERT_TRUE(t.reserve(10000));
  const uint32_t cap = t.capacity();
  EXPECT_GE(uint64_t(cap) * 3 / 4, 10000u);
  EXPECT_EQ(cap, 16384u);
  for (Mac m = 0; m < 10000; ++m) t.insert(m, 1, 0, 0);
  EXPECT_EQ(t.capacity(), cap);
  EXPECT_FALSE(t.reserve(Fdb::kMaxCapacity));
  EXPECT_EQ(t.capacity(), cap);
}

// Keys whose home slot (at the given fixed capacity) falls in the last
// `window` slots, so their clusters wrap from the end of the array to slot 0.
std::vector<Mac> colliding_macs(const Fdb& t, size_t n, uint32_t window, uint64_t rng_seed) {
  std::mt19937_64 rng(rng_seed);
  std::unordered_set<Mac> seen;
  std::vector<Mac> out;
  while (out.size() < n) {
    Mac m = rng() & kFdbMacMask;
    if (t.home_slot(m) >= t.capacity() - window && seen.insert(m).second) out.push_back(m);
  }
  return out;
}

struct ModelEntry {
  MemberId member;
  uint16_t flags;
  uint32_t last_seen_ms;
};

// Compares the table against the model in both directions.
void expect_same(const Fdb& t, const std::unordered_map<Mac, ModelEntry>& model) {
  ASSERT_EQ(t.size(), model.size());
  size_t visited = 0;
  t.for_each([&](const FdbEntry& e) {
    ++visited;
    auto it = model.find(e.mac);
    ASSERT_NE(it, model.end());
    EXPECT_EQ(e.member, it->second.member);
    EXPECT_EQ(e.flags, it->second.flags);
    EXPECT_EQ(e.last_seen_ms, it->second.last_seen_ms);
  });
  EXPECT_EQ(visited, model.size());
  ASSERT_TRUE(t.validate());
}

TEST(Fdb, ModelCheckUnderHeavyCollisions) {
  // Fixed capacity 4096 (grow_at 3072): the key pool is 2900, so the table
  // never grows and the colliding keys pile into one long wrapped cluster.
  Fdb t(4096, kSeed);
  std::vector<Mac> pool = colliding_macs(t, 1400, 16, 7);
  std::vector<Mac> spread = random_macs(1500, 8);
  pool.insert(pool.end(), spread.begin(), spread.end());

  std::unordered_map<Mac, ModelEntry> model;
  std::mt19937_64 rng(99);
  uint32_t now = 0xFFFF0000u;  // wraps past 2^32 during the run
  const uint32_t max_age = 5000;
  uint64_t aged_total = 0;

  for (int op = 0; op < 200000; ++op) {
    now += uint32_t(rng() % 3);
    const Mac m = pool[rng() % pool.size()];
    const unsigned kind = rng() % 100;
    if (kind < 45) {  // insert (learning)
      const uint16_t flags = (rng() % 10 == 0) ? kFdbStatic : 0;
      const MemberId member = MemberId(rng() % 64);
      auto r = t.insert(m, member, flags, now);
      ASSERT_NE(r.entry, nullptr);
      auto it = model.find(m);
      ASSERT_EQ(r.inserted, it == model.end()) << op;
      if (r.inserted) {
        model[m] = ModelEntry{member, flags, now};
      } else {
        // Refresh like the learning stage does.
        r.entry->last_seen_ms = now;
        it->second.last_seen_ms = now;
      }
      ASSERT_EQ(r.entry->mac, m);
    } else if (kind < 70) {  // erase
      ASSERT_EQ(t.erase(m), model.erase(m) == 1) << op;
    } else if (kind < 97) {  // find
      const FdbEntry* e = t.find(m);
      auto it = model.find(m);
      ASSERT_EQ(e != nullptr, it != model.end()) << op;
      if (e) {
        ASSERT_EQ(e->member, it->second.member);
        ASSERT_EQ(e->last_seen_ms, it->second.last_seen_ms);
      }
    } else {  // a step of incremental aging
      std::unordered_set<Mac> reported;
      const uint32_t n = t.age(now, max_age, 1 + uint32_t(rng() % 600), [&](const FdbEntry& e) {
        ASSERT_TRUE(reported.insert(e.mac).second);
        auto it = model.find(e.mac);
        ASSERT_NE(it, model.end());
        ASSERT_FALSE(it->second.flags & kFdbStatic);
        ASSERT_GE(uint32_t(now - it->second.last_seen_ms), max_age);
      });
      ASSERT_EQ(n, reported.size());
      for (Mac k : reported) model.erase(k);
      aged_total += n;
    }
    if (op % 5000 == 0) {
      ASSERT_NO_FATAL_FAILURE(expect_same(t, model));
    }
  }
  EXPECT_GT(aged_total, 0u);
  EXPECT_LT(now, 0xFFFF0000u);  // the clock did wrap

  // A final full sweep (budget >= capacity + removals) leaves no stale entry.
  t.age(now, max_age, 2 * t.capacity(), [&](const FdbEntry& e) { model.erase(e.mac); });
  for (auto& [mac, me] : model) {
    if (!(me.flags & kFdbStatic)) {
      EXPECT_LT(uint32_t(now - me.last_seen_ms), max_age);
    }
  }
  expect_same(t, model);
}

TEST(Fdb, ModelCheckWithGrowth) {
  // Same model check, starting tiny so the table doubles many times mid-run.
  Fdb t(16, kSeed);
  const std::vector<Mac> pool = random_macs(20000, 11);
  std::unordered_map<Mac, ModelEntry> model;
  std::mt19937_64 rng(5);
  for (int op = 0; op < 200000; ++op) {
    const Mac m = pool[rng() % std::min<size_t>(pool.size(), 100 + op / 8)];
    const unsigned kind = rng() % 10;
    if (kind < 6) {
      auto r = t.insert(m, MemberId(op & 0xFF), 0, uint32_t(op));
      ASSERT_EQ(r.inserted, model.count(m) == 0);
      if (r.inserted) model[m] = ModelEntry{MemberId(op & 0xFF), 0, uint32_t(op)};
    } else if (kind < 8) {
      ASSERT_EQ(t.erase(m), model.erase(m) == 1);
    } else {
      ASSERT_EQ(t.find(m) != nullptr, model.count(m) == 1);
    }
  }
  EXPECT_GE(t.capacity(), 16384u);
  expect_same(t, model);
}

TEST(Fdb, AgingRemovesOnlyStaleNonStaticAcrossClockWrap) {
  Fdb t(64, kSeed);
  const uint32_t now = 0x00000100u;  // just after the 32-bit wrap
  const uint32_t max_age = 300;
  t.insert(1, 1, 0, 0xFFFFFF00u);          // age 512: stale
  t.insert(2, 2, 0, 0x000000F0u);          // age 16: fresh
  t.insert(3, 3, kFdbStatic, 0xFFFF0000u);  // very old but static
  t.insert(4, 4, 0, 0xFFFFFFC4u);          // age exactly 316: stale
  t.insert(5, 5, 0, now - max_age);        // age == max_age: stale (>=)
  t.insert(6, 6, 0, now - max_age + 1);    // age max_age-1: fresh
  t.insert(7, 7, 0, now);                  // age 0
  std::vector<Mac> aged;
  const uint32_t n = t.age(now, max_age, 1000, [&](const FdbEntry& e) {
    aged.push_back(e.mac);
    // Called before removal: the entry is still in the table.
    EXPECT_NE(t.find(e.mac), nullptr);
  });
  std::sort(aged.begin(), aged.end());
  EXPECT_EQ(n, 3u);
  EXPECT_EQ(aged, (std::vector<Mac>{1, 4, 5}));
  EXPECT_EQ(t.size(), 4u);
  for (Mac m : {2, 3, 6, 7}) EXPECT_NE(t.find(m), nullptr) << m;
  // Nothing else is stale: a second sweep removes nothing.
  EXPECT_EQ(t.age(now, max_age, 1000, [](const FdbEntry&) {}), 0u);
}

TEST(Fdb, IncrementalSweepRemovesEachStaleEntryExactlyOnce) {
  Fdb t(1024, kSeed);
  t.reserve(60000);
  const uint32_t cap = t.capacity();
  // Colliding keys make long wrapped clusters, where backward shifts cross
  // the cursor's path; plus ordinary keys.
  std::vector<Mac> macs = colliding_macs(t, 3000, 64, 3);
  std::vector<Mac> more = random_macs(50000, 4);
  macs.insert(macs.end(), more.begin(), more.end());
  std::unordered_set<Mac> keys(macs.begin(), macs.end());
  ASSERT_EQ(keys.size(), macs.size());  // colliding and random sets could overlap in theory

  const uint32_t now = 0x80000000u;
  std::unordered_set<Mac> expected_stale;
  std::mt19937_64 rng(1);
  for (Mac m : macs) {
    const bool stale = rng() % 2;
    const bool is_static = rng() % 8 == 0;
    t.insert(m, 1, is_static ? kFdbStatic : 0, stale ? now - 10000 : now - 10);
    if (stale && !is_static) expected_stale.insert(m);
  }
  ASSERT_EQ(t.capacity(), cap);

  std::unordered_set<Mac> reported;
  uint64_t calls = 0, removed = 0, examined = 0;
  // Small budgets, many calls: a full sweep needs capacity + removals slot
  // examinations.
  while (examined < uint64_t(cap) + expected_stale.size()) {
    const uint32_t budget = 1 + uint32_t(rng() % 97);
    removed += t.age(now, 1000, budget, [&](const FdbEntry& e) {
      EXPECT_TRUE(reported.insert(e.mac).second) << "reported twice: " << std::hex << e.mac;
    });
    examined += budget;
    ++calls;
  }
  EXPECT_GT(calls, 1000u);
  EXPECT_EQ(removed, expected_stale.size());
  EXPECT_EQ(reported, expected_stale);
  EXPECT_EQ(t.size(), macs.size() - expected_stale.size());
  EXPECT_TRUE(t.validate());
  // Another full sweep finds nothing more.
  EXPECT_EQ(t.age(now, 1000, 2 * cap, [](const FdbEntry&) {}), 0u);
}

TEST(Fdb, EraseIf) {
  Fdb t(16, kSeed);
  const std::vector<Mac> macs = random_macs(5000, 12);
  for (size_t i = 0; i < macs.size(); ++i) t.insert(macs[i], MemberId(i % 5), 0, 0);
  std::unordered_set<Mac> removed;
  const uint32_t n = t.erase_if([](const FdbEntry& e) { return e.member == 2; },
                                [&](const FdbEntry& e) {
                                  EXPECT_EQ(e.member, 2);
                                  EXPECT_TRUE(removed.insert(e.mac).second);
                                });
  EXPECT_EQ(n, 1000u);
  EXPECT_EQ(removed.size(), 1000u);
  EXPECT_EQ(t.size(), 4000u);
  for (size_t i = 0; i < macs.size(); ++i) {
    EXPECT_EQ(t.find(macs[i]) == nullptr, i % 5 == 2) << i;
  }
  EXPECT_TRUE(t.validate());
}

TEST(Fdb, EraseIfTestsEachEntryOnceInWrappedClusters) {
  Fdb t(2048, kSeed);
  std::vector<Mac> macs = colliding_macs(t, 1200, 8, 21);
  for (Mac m : macs) t.insert(m, 0, 0, 0);
  ASSERT_EQ(t.capacity(), 2048u);
  std::unordered_map<Mac, int> tested;
  uint32_t n = t.erase_if(
      [&](const FdbEntry& e) {
        ++tested[e.mac];
        return e.mac & 1;
      },
      [](const FdbEntry&) {});
  EXPECT_EQ(tested.size(), macs.size());
  for (auto& [mac, count] : tested) EXPECT_EQ(count, 1) << std::hex << mac;
  uint32_t odd = 0;
  for (Mac m : macs) odd += (m & 1);
  EXPECT_EQ(n, odd);
  for (Mac m : macs) EXPECT_EQ(t.find(m) == nullptr, (m & 1) != 0);
  EXPECT_TRUE(t.validate());
}

TEST(Fdb, ForEachVisitsEachEntryOnce) {
  Fdb t(16, kSeed);
  const std::vector<Mac> macs = random_macs(3000, 13);
  for (Mac m : macs) t.insert(m, 0, 0, 0);
  for (size_t i = 0; i < 1000; ++i) t.erase(macs[i]);
  std::unordered_map<Mac, int> seen;
  t.for_each([&](const FdbEntry& e) { ++seen[e.mac]; });
  EXPECT_EQ(seen.size(), 2000u);
  for (size_t i = 1000; i < macs.size(); ++i) EXPECT_EQ(seen[macs[i]], 1);
}

TEST(Fdb, ClearAndMemory) {
  Fdb t(16, kSeed);
  EXPECT_EQ(t.capacity(), 16u);
  EXPECT_GE(t.memory_bytes(), 16 * sizeof(FdbEntry));
  EXPECT_LT(t.memory_bytes(), 16 * sizeof(FdbEntry) + 256);
  for (Mac m = 0; m < 1000; ++m) t.insert(m, 0, 0, 0);
  EXPECT_EQ(t.capacity(), 2048u);
  EXPECT_GE(t.memory_bytes(), 2048 * sizeof(FdbEntry));
  EXPECT_LT(t.memory_bytes(), 2048 * sizeof(FdbEntry) + 256);
  t.clear();
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.capacity(), 2048u);
  EXPECT_EQ(t.find(5), nullptr);
  EXPECT_TRUE(t.insert(5, 0, 0, 0).inserted);
  EXPECT_TRUE(t.validate());
}

TEST(Fdb, SeedsDifferAndMoveWorks) {
  Fdb a, b;
  EXPECT_NE(a.seed(), 0u);
  EXPECT_NE(a.seed(), b.seed());
  a.insert(42, 4, 0, 0);
  Fdb c(std::move(a));
  ASSERT_NE(c.find(42), nullptr);
  EXPECT_EQ(c.find(42)->member, 4);
  b = std::move(c);
  ASSERT_NE(b.find(42), nullptr);
  EXPECT_EQ(b.size(), 1u);
}

TEST(Fdb, HashSpreadsSequentialMacs) {
  // Sequential MACs (one vendor's block) must not pile into long clusters.
  // Knuth: at load a, linear probing with a uniform hash averages
  // (1 + 1/(1-a))/2 probes per hit, 2.5 at a = 3/4.
  Fdb t(1 << 16, kSeed);
  for (Mac m = 0; m < 49152; ++m) t.insert(0x005056000000ull + m, 0, 0, 0);
  ASSERT_EQ(t.capacity(), 1u << 16);
  const Fdb::ProbeStats ps = t.probe_stats();
  EXPECT_LT(ps.mean_hit_probes, 3.0);
  EXPECT_GT(ps.mean_hit_probes, 1.0);
  EXPECT_LT(ps.max_hit_probes, 200u);
}

TEST(Fdb, ProbeStatsSeeCollisions) {
  // The stats must notice a flood aimed at one home slot.
  Fdb t(4096, kSeed);
  for (Mac m : colliding_macs(t, 500, 1, 17)) t.insert(m, 0, 0, 0);
  const Fdb::ProbeStats ps = t.probe_stats();
  EXPECT_EQ(ps.max_hit_probes, 500u);
  EXPECT_DOUBLE_EQ(ps.mean_hit_probes, 250.5);
}

}  // namespace
}  // namespace vpc
