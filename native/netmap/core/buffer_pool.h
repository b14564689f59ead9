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
#include "core/types.h"

namespace vpc {

struct BufferPoolOptions {
  uint32_t count = 65536;      // number of buffers
  uint32_t buf_size = 2048;    // bytes per buffer, power of two in [2048, 65536]
  uint16_t headroom = 128;     // bytes left free in front of a received frame
  bool hugepages = true;       // try MAP_HUGETLB first, fall back to plain pages
};

class BufferPool {
 public:
  // Throws std::invalid_argument for bad options, std::system_error when the
  // memory cannot be mapped.
  static std::shared_ptr<BufferPool> create(const BufferPoolOptions& opts);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  uint8_t* data(uint32_t idx) const { return base_ + (size_t(idx) << shift_); }
  uint8_t* frame(const Pkt& p) const { return data(p.buf) + p.off; }
  uint32_t buf_size() const { return 1u << shift_; }
  uint16_t headroom() const { return headroom_; }
  uint32_t count() const { return count_; }
  bool hugepages() const { return huge_; }
  uint8_t* base() const { return base_; }
  size_t bytes() const { return bytes_; }
  // Largest frame a buffer can hold when received at the headroom offset.
  uint32_t max_frame() const { return buf_size() - headroom_; }

  // Bulk exchange with the shared free list; used by BufferCache.
  uint32_t get_bulk(uint32_t* out, uint32_t n);
  void put_bulk(const uint32_t* in, uint32_t n);
  uint32_t available() const;  // buffers in the shared free list (not in caches)
  // Audit builds (VPC_POOL_AUDIT): per-buffer state checks; nullptr otherwise.
  PoolAudit* audit() const { return audit_.get(); }

 private:
  BufferPool() = default;
  uint8_t* base_ = nullptr;
  size_t bytes_ = 0;
  uint32_t count_ = 0;
  uint32_t shift_ = 11;
  uint16_t headroom_ = 0;
  bool huge_ = false;
  mutable std::mutex mu_;
  std::vector<uint32_t> free_;
  std::unique_ptr<PoolAudit> audit_;
};

// A per-thread stack of free buffer indices in front of the pool. Not
// thread-safe: each thread (the engine, a pipe's outside user) owns one.
class BufferCache {
 public:
  static constexpr uint32_t kBatch = 256;
  explicit BufferCache(std::shared_ptr<BufferPool> pool);
  ~BufferCache();  // returns everything it holds to the pool
  BufferCache(const BufferCache&) = delete;
  BufferCache& operator=(const BufferCache&) = delete;

  BufferPool& pool() const { return *pool_; }
  // Returns false when the pool is exhausted.
  bool alloc(uint32_t* idx) {
    if (n_ == 0 && !refill()) return false;
    *idx = stack_[--n_];
    if constexpr (kPoolAudit) pool_->audit()->on_alloc(*idx);
    return true;
  }
  void free(uint32_t idx) {
    if constexpr (kPoolAudit) pool_->audit()->on_free(idx);
    if (n_ == kCap) spill();
    stack_[n_++] = idx;
  }
  void free_bulk(const uint32_t* idx, uint32_t n) {
    for (uint32_t i = 0; i < n; ++i) free(idx[i]);
  }
  uint32_t cached() const { return n_; }
  void flush();  // give every cached buffer back to the pool

 private:
  static constexpr uint32_t kCap = 2 * kBatch;
  bool refill();
  void spill();
  std::shared_ptr<BufferPool> pool_;
  uint32_t n_ = 0;
  uint32_t stack_[kCap];
};

}  // namespace vpc
