#include "core/pool_audit.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__SANITIZE_ADDRESS__)
#define VPC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VPC_ASAN 1
#endif
#endif
#ifdef VPC_ASAN
#include <sanitizer/asan_interface.h>
#define VPC_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define VPC_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define VPC_POISON(p, n) ((void)(p), (void)(n))
#define VPC_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace vpc {

PoolAudit::PoolAudit(uint8_t* base, uint32_t count, uint32_t shift)
    : base_(base), count_(count), shift_(shift), state_(new std::atomic<uint8_t>[count]) {
  for (uint32_t i = 0; i < count; ++i) state_[i].store(0, std::memory_order_relaxed);
  VPC_UNPOISON(base, size_t(count) << shift);
  std::memset(base, kFreedByte, size_t(count) << shift);
  VPC_POISON(base, size_t(count) << shift);
}

PoolAudit::~PoolAudit() { VPC_UNPOISON(base_, size_t(count_) << shift_); }

void PoolAudit::fail(const char* what, uint32_t idx) const {
  std::fprintf(stderr, "buffer pool audit: %s of buffer %u (pool of %u)\n", what, idx, count_);
  std::abort();
}

void PoolAudit::on_alloc(uint32_t idx) {
  if (idx >= count_) fail("alloc out of range", idx);
  if (state_[idx].exchange(1, std::memory_order_acq_rel) != 0) fail("alloc of a buffer that is not free", idx);
  held_.fetch_add(1, std::memory_order_relaxed);
  VPC_UNPOISON(base_ + (size_t(idx) << shift_), size_t(1) << shift_);
}

void PoolAudit::on_free(uint32_t idx) {
  if (idx >= count_) fail("free out of range", idx);
  if (state_[idx].exchange(0, std::memory_order_acq_rel) != 1) fail("double free", idx);
  held_.fetch_sub(1, std::memory_order_relaxed);
  uint8_t* p = base_ + (size_t(idx) << shift_);
  std::memset(p, kFreedByte, size_t(1) << shift_);
  VPC_POISON(p, size_t(1) << shift_);
}

}  // namespace vpc
