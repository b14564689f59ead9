// Debug bookkeeping for the buffer pool, compiled in only for sanitizer and
// fuzz builds (CMake -DVPC_SANITIZE=ON / -DVPC_FUZZ=ON define VPC_POOL_AUDIT).
//
// Every buffer is either free (in the pool's list or in a BufferCache) or
// held (by a port ring, an engine queue, a peer). The audit keeps one state
// byte per buffer and checks each transition where it happens:
//   - a free of a buffer that is already free aborts at once, naming the
//     buffer (a double free would otherwise surface much later as two frames
//     sharing bytes);
//   - an alloc of a buffer that is not free aborts (pool corruption);
//   - a freed buffer is filled with kFreedByte, so bytes of an earlier frame
//     cannot reach the wire unnoticed (the fuzzers look for runs of it), and
//     poisoned for AddressSanitizer, so any read or write of it before the
//     next alloc is reported as a use after free.
// held() is the number of buffers out of the free state: a harness compares
// it with what it can account for (Engine::buffers_held(), ring contents).
//
// In a release build none of this exists and the hooks in BufferCache compile
// to nothing (kPoolAudit is false), so the hot path is unchanged.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace vpc {

#ifdef VPC_POOL_AUDIT
constexpr bool kPoolAudit = true;
#else
constexpr bool kPoolAudit = false;
#endif

// What a freed buffer holds in audit builds (see above).
constexpr uint8_t kFreedByte = 0xDB;

class PoolAudit {
 public:
  // All buffers start free, filled and poisoned.
  PoolAudit(uint8_t* base, uint32_t count, uint32_t shift);
  // Unpoisons the memory: it is about to be unmapped, and ASan's shadow would
  // otherwise still mark whatever is mapped there next.
  ~PoolAudit();
  PoolAudit(const PoolAudit&) = delete;
  PoolAudit& operator=(const PoolAudit&) = delete;
  void on_alloc(uint32_t idx);
  void on_free(uint32_t idx);
  bool is_free(uint32_t idx) const { return state_[idx].load(std::memory_order_relaxed) == 0; }
  uint32_t held() const { return held_.load(std::memory_order_relaxed); }

 private:
  [[noreturn]] void fail(const char* what, uint32_t idx) const;
  uint8_t* base_;
  uint32_t count_;
  uint32_t shift_;
  std::unique_ptr<std::atomic<uint8_t>[]> state_;  // 0 free, 1 held
  std::atomic<uint32_t> held_{0};
};

}  // namespace vpc
