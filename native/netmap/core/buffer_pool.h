// Fixed-size packet buffers named by index, netmap style.
//
// One pool per engine. Every port that can share it (pipes, and AF_XDP, which
// registers the whole pool as its UMEM) forwards by handing over indices,
// never bytes.
// Buffers are allocated through a per-thread BufferCache; the pool's own free
// list is touched only when a cache over- or underflows, a whole batch at a
// time, so the mutex below costs one lock per few hundred packets.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/pool_audit.h"
#include "core/offload.h"
#include "core/types.h"

namespace vpc {

struct BufferPoolOptions {
  uint32_t count = 65536;      // number of buffers
  uint32_t buf_size = 2048;    // bytes per buffer, power of two in [2048, 65536]
  uint16_t headroom = 128;     // bytes left free in front of a received frame
  bool hugepages = true;       // try MAP_HUGETLB first, fall back to plain pages
  // Large buffers (64 KiB frames + headroom each, about 66 KiB with 2 KiB
  // buffers). 512 is 33 MiB next to the 128 MiB of the default 65,536 regular
  // buffers: two full bursts of super-frames (2 x 256) in flight, which at 64
  // KiB per frame is 32 MiB of TCP data in the switch at once, far more than a
  // 10 Gbit/s flow keeps in flight across one hop. 0..65536.
  uint32_t large_count = 512;
};

// Largest frame a descriptor can describe (Pkt::len is 16 bits); a large
// buffer holds one at the headroom offset.
constexpr uint32_t kMaxLargeFrame = 65535;

class BufferPool {
 public:
  // Throws std::invalid_argument for bad options, std::system_error when the
  // memory cannot be mapped.
  static std::shared_ptr<BufferPool> create(const BufferPoolOptions& opts);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  uint8_t* data(uint32_t idx) const { return base_ + (size_t(idx) << shift_); }
  uint8_t* frame(const Pkt& p) const { return data(p.buf) + pkt_off(p); }
  // The offload state of the frame in buffer idx (see the file comment).
  OffloadMeta& meta(uint32_t idx) const { return meta_[idx]; }
  OffloadMeta* meta_table() const { return meta_.get(); }
  uint32_t buf_size() const { return 1u << shift_; }
  uint16_t headroom() const { return headroom_; }
  uint32_t count() const { return count_; }  // regular buffers
  uint32_t large_count() const { return large_count_; }
  uint32_t large_span() const { return large_span_; }  // regular buffers per large one
  // One past the highest buffer index (size per-index tables with this).
  uint32_t index_limit() const { return count_ + large_count_ * large_span_; }
  bool is_large(uint32_t idx) const { return idx >= count_; }
  // Bytes from data(idx) to the end of the buffer.
  uint32_t capacity(uint32_t idx) const { return is_large(idx) ? large_span_ << shift_ : 1u << shift_; }
  bool hugepages() const { return huge_; }
  uint8_t* base() const { return base_; }
  size_t bytes() const { return bytes_; }
  // Largest frame a buffer can hold when received at the headroom offset.
  uint32_t max_frame() const { return buf_size() - headroom_; }
  // Largest frame a large buffer holds at the headroom offset (0 without any).
  uint32_t max_large_frame() const { return large_count_ ? kMaxLargeFrame : 0; }

  // Bulk exchange with the shared free lists; used by BufferCache. put_bulk
  // takes regular buffers only, put_bulk_large large ones only.
  uint32_t get_bulk(uint32_t* out, uint32_t n) { return take(free_, out, n); }
  void put_bulk(const uint32_t* in, uint32_t n) { give(free_, in, n); }
  uint32_t get_bulk_large(uint32_t* out, uint32_t n) { return take(large_free_, out, n); }
  void put_bulk_large(const uint32_t* in, uint32_t n) { give(large_free_, in, n); }
  // Puts back any mix of regular and large buffers (ring cleanup paths).
  void put_mixed(const uint32_t* in, uint32_t n);
  uint32_t available() const;        // regular buffers in the shared free list (not in caches)
  uint32_t large_available() const;  // large buffers in the shared free list (not in caches)
  // Audit builds (VPC_POOL_AUDIT): per-buffer state checks of the regular
  // buffers (large ones are not audited); nullptr otherwise.
  PoolAudit* audit() const { return audit_.get(); }

 private:
  BufferPool() = default;
  uint32_t take(std::vector<uint32_t>& list, uint32_t* out, uint32_t n);
  void give(std::vector<uint32_t>& list, const uint32_t* in, uint32_t n);
  uint8_t* base_ = nullptr;
  size_t bytes_ = 0;
  uint32_t count_ = 0;
  uint32_t large_count_ = 0;
  uint32_t large_span_ = 0;
  uint32_t shift_ = 11;
  uint16_t headroom_ = 0;
  bool huge_ = false;
  std::unique_ptr<OffloadMeta[]> meta_;  // index_limit() entries
  mutable std::mutex mu_;
  std::vector<uint32_t> free_;
  std::unique_ptr<PoolAudit> audit_;
  std::vector<uint32_t> large_free_;
};

// A per-thread stack of free buffer indices in front of the pool. Not
// thread-safe: each thread (the engine, a pipe's outside user) owns one.
class BufferCache {
 public:
  static constexpr uint32_t kBatch = 256;
  ~BufferCache();  // returns everything it holds to the pool
  BufferCache(const BufferCache&) = delete;
  BufferCache& operator=(const BufferCache&) = delete;

  // Large buffers move between a cache and the pool this many at a time.
  static constexpr uint32_t kLargeBatch = 8;
  explicit BufferCache(std::shared_ptr<BufferPool> pool);
  BufferPool& pool() const { return *pool_; }
  // A regular buffer. Returns false when the pool has none left.
  bool alloc(uint32_t* idx) {
    if (n_ == 0 && !refill()) return false;
    *idx = stack_[--n_];
    if constexpr (kPoolAudit) pool_->audit()->on_alloc(*idx);
    return true;
  }
  // A large buffer. Returns false when the pool has none left.
  bool alloc_large(uint32_t* idx) {
    if (ln_ == 0 && !refill_large()) return false;
    *idx = lstack_[--ln_];
    return true;
  }
  // Either kind: routed by index (one compare).
  void free(uint32_t idx) {
    if (idx >= regular_) [[unlikely]] {
      free_large(idx);
      return;
    }
    if constexpr (kPoolAudit) pool_->audit()->on_free(idx);
    if (n_ == kCap) spill();
    stack_[n_++] = idx;
  }
  void free_bulk(const uint32_t* idx, uint32_t n) {
    for (uint32_t i = 0; i < n; ++i) free(idx[i]);
  }
  uint32_t cached() const { return n_; }
  uint32_t cached_large() const { return ln_; }
  void flush();  // give every cached buffer back to the pool

 private:
  static constexpr uint32_t kCap = 2 * kBatch;
  static constexpr uint32_t kLargeCap = 2 * kLargeBatch;
  bool refill();
  void spill();
  bool refill_large();
  void free_large(uint32_t idx);
  std::shared_ptr<BufferPool> pool_;
  uint32_t regular_;  // pool_->count(): indices at or above are large buffers
  uint32_t n_ = 0;
  uint32_t ln_ = 0;
  uint32_t stack_[kCap];
  uint32_t lstack_[kLargeCap];
};

}  // namespace vpc
