// Tests for core/buffer_pool.h: option checks, allocation of every buffer,
// exhaustion, and the per-thread caches keeping the count consistent when
// buffers cross threads.
#include "core/buffer_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/spsc_ring.h"
#include "core/test_util.h"

namespace vpc {
namespace {

BufferPoolOptions small(uint32_t count = 1024) {
  BufferPoolOptions o;
  o.count = count;
  o.hugepages = false;
  return o;
}

TEST(BufferPool, RejectsBadOptions) {
  auto o = small();
  o.count = 511;
  EXPECT_THROW(BufferPool::create(o), std::invalid_argument);
  o = small();
  o.buf_size = 3000;
  EXPECT_THROW(BufferPool::create(o), std::invalid_argument);
  o = small();
  o.buf_size = 1024;
  EXPECT_THROW(BufferPool::create(o), std::invalid_argument);
  o = small();
  o.headroom = 32;
  EXPECT_THROW(BufferPool::create(o), std::invalid_argument);
  o = small();
  o.headroom = 513;  // > 2048 / 4
  EXPECT_THROW(BufferPool::create(o), std::invalid_argument);
  o = small();
  o.large_count = 65537;
  EXPECT_THROW(BufferPool::create(o), std::invalid_argument);
}

TEST(BufferPool, LargeBufferGeometry) {
  auto o = small(512);
  o.large_count = 3;
  auto p = BufferPool::create(o);
  // 128 + 65535 bytes in 2 KiB buffers: 33 of them (67,584 bytes).
  EXPECT_EQ(p->large_span(), 33u);
  EXPECT_EQ(p->large_count(), 3u);
  EXPECT_EQ(p->count(), 512u) << "count() is regular buffers only";
  EXPECT_EQ(p->index_limit(), 512u + 3 * 33);
  EXPECT_GE(p->bytes(), size_t(p->index_limit()) * 2048);
  EXPECT_EQ(p->max_large_frame(), 65535u);
  EXPECT_EQ(p->large_available(), 3u);
  EXPECT_FALSE(p->is_large(511));
  EXPECT_TRUE(p->is_large(512));
  EXPECT_EQ(p->capacity(5), 2048u);
  EXPECT_EQ(p->capacity(512 + 33), 33u * 2048);
  EXPECT_GE(p->capacity(512) - p->headroom(), p->max_large_frame());

  o.buf_size = 65536;
  o.headroom = 16384;  // the largest allowed: offsets stay below bit 15
  auto q = BufferPool::create(o);
  EXPECT_EQ(q->large_span(), 2u);
  EXPECT_LT(q->headroom(), kPktMeta);

  o = small(512);
  o.large_count = 0;
  auto none = BufferPool::create(o);
  EXPECT_EQ(none->max_large_frame(), 0u);
  EXPECT_EQ(none->index_limit(), 512u);
  BufferCache c(none);
  uint32_t idx;
  EXPECT_FALSE(c.alloc_large(&idx));
}

TEST(BufferPool, LargeBuffersAllocFreeAndAccounting) {
  auto o = small(512);
  o.large_count = 20;
  auto pool = BufferPool::create(o);
  std::vector<uint32_t> got;
  {
    BufferCache c(pool);
    uint32_t idx;
    while (c.alloc_large(&idx)) got.push_back(idx);
    ASSERT_EQ(got.size(), 20u);
    EXPECT_EQ(pool->large_available(), 0u);
    EXPECT_EQ(pool->available(), 512u) << "large allocations leave regular buffers alone";
    std::set<uint32_t> uniq(got.begin(), got.end());
    EXPECT_EQ(uniq.size(), 20u);
    for (uint32_t i : got) {
      ASSERT_TRUE(pool->is_large(i));
      ASSERT_EQ((i - 512) % pool->large_span(), 0u) << "named by the first regular buffer of its run";
    }
    // Large buffers never overlap each other or the regular ones: fill each
    // completely and check every stamp survives.
    for (uint32_t i : got) memset(pool->data(i), int(i & 0xFF), pool->capacity(i));
    for (uint32_t i : got) {
      ASSERT_EQ(pool->data(i)[0], uint8_t(i & 0xFF));
      ASSERT_EQ(pool->data(i)[pool->capacity(i) - 1], uint8_t(i & 0xFF));
    }
    ASSERT_LE(pool->data(got.front()) + pool->capacity(got.front()), pool->base() + pool->bytes());
    // Regular allocations never return a large buffer, even when large ones are free.
    for (uint32_t i : got) c.free(i);  // routed to the large cache by index
    EXPECT_EQ(c.cached(), 0u);
    EXPECT_EQ(c.cached_large() + pool->large_available(), 20u);
    std::vector<uint32_t> regular;
    while (c.alloc(&idx)) {
      ASSERT_FALSE(pool->is_large(idx));
      regular.push_back(idx);
    }
    EXPECT_EQ(regular.size(), 512u);
    c.free_bulk(regular.data(), uint32_t(regular.size()));
    EXPECT_LE(c.cached_large(), 2 * BufferCache::kLargeBatch);
  }
  EXPECT_EQ(pool->large_available(), 20u) << "cache destructor returns the large buffers too";
  EXPECT_EQ(pool->available(), 512u);
  // put_mixed sorts by kind.
  BufferCache c(pool);
  uint32_t a, b;
  ASSERT_TRUE(c.alloc(&a));
  ASSERT_TRUE(c.alloc_large(&b));
  c.flush();
  uint32_t both[2] = {a, b};
  uint32_t reg_before = pool->available(), large_before = pool->large_available();
  // Take them back out of the free lists as if a ring held them, then return them mixed.
  std::vector<uint32_t> all(reg_before), alll(large_before);
  ASSERT_EQ(pool->get_bulk(all.data(), reg_before), reg_before);
  ASSERT_EQ(pool->get_bulk_large(alll.data(), large_before), large_before);
  pool->put_mixed(both, 2);
  EXPECT_EQ(pool->available(), 1u);
  EXPECT_EQ(pool->large_available(), 1u);
  pool->put_bulk(all.data(), reg_before);
  pool->put_bulk_large(alll.data(), large_before);
}

TEST(BufferPool, MetaSideTableAndDescriptorFlag) {
  auto pool = BufferPool::create(small(512));
  Pkt p{7, 128, 60};
  EXPECT_FALSE(pkt_has_meta(p));
  pkt_set_meta(p, true);
  EXPECT_TRUE(pkt_has_meta(p));
  EXPECT_EQ(pkt_off(p), 128);
  EXPECT_EQ(pool->frame(p), pool->data(7) + 128) << "frame() ignores the flag";
  // Offset arithmetic (tag push/pop, encap/decap) keeps the flag.
  p.off = uint16_t(p.off - 50);
  EXPECT_TRUE(pkt_has_meta(p));
  EXPECT_EQ(pkt_off(p), 78);
  p.off = uint16_t(p.off + 54);
  EXPECT_EQ(pkt_off(p), 132);
  pkt_set_meta(p, false);
  EXPECT_FALSE(pkt_has_meta(p));
  EXPECT_EQ(p.off, 132);
  OffloadMeta& m = pool->meta(7);
  EXPECT_EQ(m.flags, 0) << "the side table starts zeroed";
  m.gso_type = OffloadMeta::kGsoTcpv4;
  m.gso_size = 1448;
  EXPECT_EQ(pool->meta(7).gso_size, 1448);
  uint32_t large_idx = pool->count();  // first large buffer
  pool->meta(large_idx).csum_start = 34;
  EXPECT_EQ(pool->meta(large_idx).csum_start, 34);
}

TEST(BufferPool, Geometry) {
  auto o = small(512);
  o.buf_size = 4096;
  o.headroom = 256;
  auto p = BufferPool::create(o);
  EXPECT_EQ(p->count(), 512u);
  EXPECT_EQ(p->buf_size(), 4096u);
  EXPECT_EQ(p->headroom(), 256);
  EXPECT_EQ(p->max_frame(), 4096u - 256u);
  EXPECT_EQ(p->available(), 512u);
  EXPECT_EQ(p->data(3) - p->data(0), 3 * 4096);
  EXPECT_GE(p->bytes(), size_t(512) * 4096);
  Pkt pk{2, 100, 60};
  EXPECT_EQ(p->frame(pk), p->base() + 2 * 4096 + 100);
}

TEST(BufferPool, AllocEveryBufferThenExhaustedThenFreeAll) {
  auto pool = BufferPool::create(small(1024));
  std::vector<uint32_t> got;
  {
    BufferCache c(pool);
    uint32_t idx;
    while (c.alloc(&idx)) got.push_back(idx);
    EXPECT_EQ(got.size(), 1024u);
    EXPECT_EQ(pool->available(), 0u);
    EXPECT_EQ(c.cached(), 0u);
    EXPECT_FALSE(c.alloc(&idx)) << "exhausted stays exhausted";
    std::set<uint32_t> uniq(got.begin(), got.end());
    EXPECT_EQ(uniq.size(), 1024u) << "no buffer handed out twice";
    EXPECT_EQ(*uniq.begin(), 0u);
    EXPECT_EQ(*uniq.rbegin(), 1023u);
    // Every buffer is writable across its whole size.
    for (uint32_t i : got) memset(pool->data(i), int(i & 0xFF), pool->buf_size());
    for (uint32_t i : got) ASSERT_EQ(pool->data(i)[pool->buf_size() - 1], uint8_t(i & 0xFF));
    c.free_bulk(got.data(), uint32_t(got.size()));
    EXPECT_EQ(pool->available() + c.cached(), 1024u);
    EXPECT_LE(c.cached(), 2 * BufferCache::kBatch);
  }
  EXPECT_EQ(pool->available(), 1024u) << "cache destructor returns everything";
}

TEST(BufferPool, CacheSpillAndRefillBoundaries) {
  auto pool = BufferPool::create(small(2048));
  BufferCache c(pool);
  uint32_t idx;
  ASSERT_TRUE(c.alloc(&idx));
  // One refill takes a whole batch from the pool.
  EXPECT_EQ(c.cached(), BufferCache::kBatch - 1);
  EXPECT_EQ(pool->available(), 2048u - BufferCache::kBatch);
  c.free(idx);
  EXPECT_EQ(c.cached(), BufferCache::kBatch);
  // Fill the cache to its capacity (2 batches) with buffers from another cache.
  BufferCache other(pool);
  std::vector<uint32_t> v(BufferCache::kBatch + 1);
  for (auto& x : v) ASSERT_TRUE(other.alloc(&x));
  other.flush();
  for (uint32_t i = 0; i < BufferCache::kBatch; ++i) c.free(v[i]);
  EXPECT_EQ(c.cached(), 2 * BufferCache::kBatch);
  uint32_t before = pool->available();
  c.free(v[BufferCache::kBatch]);  // overflows: spills one batch
  EXPECT_EQ(c.cached(), BufferCache::kBatch + 1);
  EXPECT_EQ(pool->available(), before + BufferCache::kBatch);
  c.flush();
  EXPECT_EQ(c.cached(), 0u);
  EXPECT_EQ(pool->available(), 2048u);
}

TEST(BufferPool, TwoThreadsExchangingBuffersKeepTheCount) {
  constexpr uint32_t kCount = 4096;
  constexpr uint64_t kRounds = 200'000;
  auto pool = BufferPool::create(small(kCount));
  SpscRing<uint32_t> a_to_b(1024), b_to_a(512);
  std::atomic<bool> a_done{false};
  std::atomic<uint64_t> bad{0};

  // A allocates, stamps and sends to B; B checks the stamp, frees some into
  // its own cache (so its cache spills to the pool) and sends some back to A,
  // which frees them into A's cache (so A's refills come from what B spilled).
  std::thread ta([&] {
    BufferCache c(pool);
    uint64_t sent = 0;
    uint32_t buf[64], back[64];
    testutil::Backoff bo;
    while (sent < kRounds) {
      uint32_t n = 0;
      for (; n < 64 && sent + n < kRounds; ++n)
        if (!c.alloc(&buf[n])) break;
      for (uint32_t i = 0; i < n; ++i) *reinterpret_cast<uint64_t*>(pool->data(buf[i])) = buf[i];
      uint32_t k = 0;
      while (k < n) {
        uint32_t pushed = a_to_b.push(buf + k, n - k);
        k += pushed;
        uint32_t r = b_to_a.pop(back, 64);
        c.free_bulk(back, r);
        if (pushed == 0 && r == 0) bo.pause();
        else bo.reset();
      }
      sent += n;
      if (n == 0) {
        uint32_t r = b_to_a.pop(back, 64);
        c.free_bulk(back, r);
        bo.pause();
      }
    }
    a_done.store(true);
    // Take back whatever B still returns until B is done.
    // (B stops returning after it sees a_done and an empty ring.)
  });
  std::thread tb([&] {
    BufferCache c(pool);
    uint32_t in[64];
    uint64_t got = 0;
    testutil::Backoff bo;
    for (;;) {
      uint32_t n = a_to_b.pop(in, 64);
      if (n == 0) {
        if (a_done.load() && a_to_b.empty()) break;
        bo.pause();
        continue;
      }
      bo.reset();
      for (uint32_t i = 0; i < n; ++i) {
        if (*reinterpret_cast<uint64_t*>(pool->data(in[i])) != in[i]) bad.fetch_add(1);
        if ((got + i) % 3 == 0) {
          // Return to A; if A's ring is full, free locally instead.
          if (b_to_a.push(&in[i], 1) == 0) c.free(in[i]);
        } else {
          c.free(in[i]);
        }
      }
      got += n;
    }
  });
  ta.join();
  tb.join();
  // Whatever is left in b_to_a after A quit goes back through a fresh cache.
  {
    BufferCache c(pool);
    uint32_t rest[64];
    for (uint32_t n; (n = b_to_a.pop(rest, 64)) != 0;) c.free_bulk(rest, n);
  }
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(pool->available(), kCount) << "every buffer is back after both caches were destroyed";
}

TEST(BufferPool, ManyThreadsAllocFreeConcurrently) {
  constexpr uint32_t kCount = 4096;
  auto pool = BufferPool::create(small(kCount));
  std::atomic<uint64_t> dup{0};
  std::vector<std::atomic<uint8_t>> owner(kCount);
  std::vector<std::thread> th;
  for (int t = 0; t < 4; ++t)
    th.emplace_back([&] {
      BufferCache c(pool);
      std::vector<uint32_t> held;
      for (int round = 0; round < 200; ++round) {
        uint32_t idx;
        for (int i = 0; i < 700 && c.alloc(&idx); ++i) {
          if (owner[idx].exchange(1) != 0) dup.fetch_add(1);
          held.push_back(idx);
        }
        for (uint32_t x : held) owner[x].store(0);
        c.free_bulk(held.data(), uint32_t(held.size()));
        held.clear();
      }
    });
  for (auto& t : th) t.join();
  EXPECT_EQ(dup.load(), 0u) << "a buffer was owned by two threads at once";
  EXPECT_EQ(pool->available(), kCount);
}

}  // namespace
}  // namespace vpc
