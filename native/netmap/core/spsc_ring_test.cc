// Tests for core/spsc_ring.h: the SPSC ring (bulk, wraparound, full/empty,
// a two-thread stress) and the MPMC command queue under concurrent use.
#include "core/spsc_ring.h"

#include <gtest/gtest.h>

#include "core/test_util.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <vector>

namespace vpc {
namespace {

TEST(SpscRing, RejectsBadCapacity) {
  EXPECT_THROW(SpscRing<int>(0), std::invalid_argument);
  EXPECT_THROW(SpscRing<int>(1), std::invalid_argument);
  EXPECT_THROW(SpscRing<int>(6), std::invalid_argument);
  EXPECT_NO_THROW(SpscRing<int>(2));
  EXPECT_EQ(SpscRing<int>(64).capacity(), 64u);
}

TEST(SpscRing, EmptyAndFull) {
  SpscRing<uint32_t> r(8);
  uint32_t out[16];
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.pop(out, 16), 0u);
  uint32_t in[16];
  std::iota(in, in + 16, 100);
  EXPECT_EQ(r.push(in, 5), 5u);
  EXPECT_EQ(r.size(), 5u);
  EXPECT_EQ(r.push(in + 5, 11), 3u);  // only 3 slots left
  EXPECT_EQ(r.size(), 8u);
  EXPECT_EQ(r.push(in + 8, 1), 0u);   // full
  EXPECT_EQ(r.pop(out, 16), 8u);
  for (uint32_t i = 0; i < 8; ++i) EXPECT_EQ(out[i], 100 + i);
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.pop(out, 16), 0u);
  EXPECT_EQ(r.push(in, 0), 0u);
  EXPECT_EQ(r.pop(out, 0), 0u);
}

TEST(SpscRing, BulkWraparoundKeepsOrder) {
  SpscRing<uint32_t> r(16);
  uint32_t next_in = 0, next_out = 0;
  uint32_t buf[32], out[32];
  // Odd burst sizes so head/tail cross the end of the slot array at every offset.
  for (int round = 0; round < 1000; ++round) {
    uint32_t want = uint32_t(round % 7) + 1;
    for (uint32_t i = 0; i < want; ++i) buf[i] = next_in + i;
    uint32_t pushed = r.push(buf, want);
    next_in += pushed;
    uint32_t take = uint32_t(round % 5) + 1;
    uint32_t got = r.pop(out, take);
    for (uint32_t i = 0; i < got; ++i) ASSERT_EQ(out[i], next_out + i) << "round " << round;
    next_out += got;
    ASSERT_EQ(r.size(), next_in - next_out);
    ASSERT_LE(r.size(), 16u);
  }
  uint32_t got = r.pop(out, 32);
  for (uint32_t i = 0; i < got; ++i) ASSERT_EQ(out[i], next_out + i);
  next_out += got;
  EXPECT_EQ(next_in, next_out);
  EXPECT_GT(next_in, 16u * 50) << "the ring wrapped many times";
}

TEST(SpscRing, ManyBurstsThroughTinyRing) {
  // Bursts larger than the free space through a 4-slot ring: exercises the
  // cached-index refresh paths on both sides.
  SpscRing<uint64_t> r(4);
  uint64_t v = 0, expect = 0, out[4];
  for (int i = 0; i < 100000; ++i) {
    uint64_t in[3] = {v, v + 1, v + 2};
    v += r.push(in, 3);
    uint32_t n = r.pop(out, 4);
    for (uint32_t k = 0; k < n; ++k) ASSERT_EQ(out[k], expect++);
  }
  EXPECT_EQ(v, expect + r.size());
}

TEST(SpscRing, TwoThreadStressOrderAndNoLoss) {
  constexpr uint64_t kItems = 5'000'000;
  SpscRing<uint64_t> r(16384);
  std::thread prod([&] {
    uint64_t next = 0, buf[64];
    testutil::Backoff bo;
    while (next < kItems) {
      uint32_t n = uint32_t(std::min<uint64_t>(1 + (next % 61), kItems - next));
      for (uint32_t i = 0; i < n; ++i) buf[i] = next + i;
      uint32_t k = r.push(buf, n);
      next += k;
      if (k == 0) bo.pause();
      else bo.reset();
    }
  });
  uint64_t expect = 0, sum = 0, out[64];
  bool order_ok = true;
  testutil::Backoff bo;
  while (expect < kItems) {
    uint32_t n = r.pop(out, uint32_t(1 + expect % 63));
    for (uint32_t i = 0; i < n; ++i) {
      if (out[i] != expect) order_ok = false;
      sum += out[i];
      ++expect;
    }
    if (n == 0) bo.pause();
    else bo.reset();
  }
  prod.join();
  EXPECT_TRUE(order_ok);
  EXPECT_EQ(expect, kItems);
  EXPECT_EQ(sum, kItems * (kItems - 1) / 2);
  EXPECT_TRUE(r.empty());
}

TEST(MpmcQueue, RejectsBadCapacity) {
  EXPECT_THROW(MpmcQueue<int>(1), std::invalid_argument);
  EXPECT_THROW(MpmcQueue<int>(12), std::invalid_argument);
}

TEST(MpmcQueue, FullReturnsFalseAndFifoOrder) {
  MpmcQueue<int> q(4);
  int out = -1;
  EXPECT_TRUE(q.maybe_empty());
  EXPECT_FALSE(q.pop(&out));
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(q.push(i));
  EXPECT_FALSE(q.push(99));
  EXPECT_FALSE(q.maybe_empty());
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(q.pop(&out));
    EXPECT_EQ(out, i);
  }
  EXPECT_FALSE(q.pop(&out));
  // Laps: the sequence numbers keep working after many wraps.
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(q.push(i));
    ASSERT_TRUE(q.push(i + 1));
    ASSERT_TRUE(q.pop(&out));
    ASSERT_EQ(out, i);
    ASSERT_TRUE(q.pop(&out));
    ASSERT_EQ(out, i + 1);
  }
  EXPECT_TRUE(q.maybe_empty());
}

TEST(MpmcQueue, MoveOnlyValues) {
  MpmcQueue<std::unique_ptr<int>> q(2);
  EXPECT_TRUE(q.push(std::make_unique<int>(5)));
  std::unique_ptr<int> out;
  ASSERT_TRUE(q.pop(&out));
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(*out, 5);
}

// The command queue under concurrent use: 4 producers x 200k items, one
// consumer; every item arrives exactly once and each producer's items in order.
TEST(MpmcQueue, CommandQueueUnderConcurrentUse) {
  constexpr uint32_t kProducers = 4, kPer = 200'000;
  MpmcQueue<uint32_t> q(4096);
  std::atomic<uint32_t> full_seen{0};
  std::vector<std::thread> th;
  for (uint32_t p = 0; p < kProducers; ++p) {
    th.emplace_back([&, p] {
      for (uint32_t i = 0; i < kPer; ++i) {
        uint32_t v = (p << 24) | i;
        testutil::Backoff bo;
        while (!q.push(v)) {
          full_seen.fetch_add(1, std::memory_order_relaxed);
          bo.pause();
        }
      }
    });
  }
  std::vector<uint8_t> seen(size_t(kProducers) * kPer, 0);
  std::vector<int64_t> last(kProducers, -1);
  uint64_t got = 0, dup = 0, reorder = 0;
  testutil::Backoff bo;
  while (got < uint64_t(kProducers) * kPer) {
    uint32_t v;
    if (!q.pop(&v)) {
      bo.pause();
      continue;
    }
    bo.reset();
    uint32_t p = v >> 24, i = v & 0xFFFFFF;
    ASSERT_LT(p, kProducers);
    ASSERT_LT(i, kPer);
    if (seen[size_t(p) * kPer + i]++) ++dup;
    if (int64_t(i) <= last[p]) ++reorder;
    last[p] = i;
    ++got;
  }
  for (auto& t : th) t.join();
  uint32_t extra;
  EXPECT_FALSE(q.pop(&extra)) << "nothing beyond what was pushed";
  EXPECT_EQ(dup, 0u);
  EXPECT_EQ(reorder, 0u);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), std::ptrdiff_t(kProducers) * kPer);
}

TEST(MpmcQueue, ConcurrentConsumersTakeEachItemOnce) {
  constexpr uint32_t kProducers = 2, kConsumers = 2, kPer = 100'000;
  MpmcQueue<uint32_t> q(256);
  std::vector<std::atomic<uint8_t>> seen(size_t(kProducers) * kPer);
  std::atomic<uint64_t> taken{0};
  std::vector<std::thread> th;
  for (uint32_t p = 0; p < kProducers; ++p)
    th.emplace_back([&, p] {
      testutil::Backoff bo;
      for (uint32_t i = 0; i < kPer; ++i)
        while (!q.push(p * kPer + i)) bo.pause();
    });
  for (uint32_t c = 0; c < kConsumers; ++c)
    th.emplace_back([&] {
      uint32_t v;
      testutil::Backoff bo;
      while (taken.load() < uint64_t(kProducers) * kPer) {
        if (q.pop(&v)) {
          seen[v].fetch_add(1);
          taken.fetch_add(1);
          bo.reset();
        } else {
          bo.pause();
        }
      }
    });
  for (auto& t : th) t.join();
  uint64_t ones = 0;
  for (auto& s : seen) ones += s.load() == 1;
  EXPECT_EQ(ones, uint64_t(kProducers) * kPer);
  EXPECT_EQ(taken.load(), uint64_t(kProducers) * kPer);
}

}  // namespace
}  // namespace vpc
