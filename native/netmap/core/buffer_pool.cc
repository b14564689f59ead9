#include "core/buffer_pool.h"

#include <sys/mman.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace vpc {

std::shared_ptr<BufferPool> BufferPool::create(const BufferPoolOptions& o) {
  if (o.count < 2 * BufferCache::kBatch || o.count > (1u << 24))
    throw std::invalid_argument("bufferCount: must be in 512..16777216");
  if (o.buf_size < 2048 || o.buf_size > 65536 || (o.buf_size & (o.buf_size - 1)) != 0)
    throw std::invalid_argument("bufferSize: must be a power of two in 2048..65536");
  // headroom <= 65536 / 4 also keeps every frame offset below 32768, so bit 15
  // of Pkt::off stays free for kPktMeta.
  if (o.headroom < 64 || o.headroom > o.buf_size / 4)
    throw std::invalid_argument("headroom: must be in 64..bufferSize/4");
  static_assert(65536 / 4 < kPktMeta, "the largest headroom leaves bit 15 of Pkt::off free");
  if (o.large_count > 65536) throw std::invalid_argument("largeBufferCount: must be in 0..65536");
  std::shared_ptr<BufferPool> p(new BufferPool());
  p->count_ = o.count;
  p->shift_ = uint32_t(__builtin_ctz(o.buf_size));
  p->headroom_ = o.headroom;
  p->large_count_ = o.large_count;
  p->large_span_ = (o.headroom + kMaxLargeFrame + o.buf_size - 1) / o.buf_size;
  const size_t huge = 2u << 20;
  p->bytes_ = (size_t(p->index_limit()) * o.buf_size + huge - 1) & ~(huge - 1);
  void* mem = MAP_FAILED;
  if (o.hugepages) {
    mem = mmap(nullptr, p->bytes_, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
    p->huge_ = mem != MAP_FAILED;
  }
  if (mem == MAP_FAILED) {
    mem = mmap(nullptr, p->bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap buffer pool");
    // Transparent huge pages are the next best thing to hugetlbfs.
    madvise(mem, p->bytes_, MADV_HUGEPAGE);
  }
  p->base_ = static_cast<uint8_t*>(mem);
  p->meta_.reset(new OffloadMeta[p->index_limit()]());
  p->free_.reserve(o.count);
  // Hand out low indices first: they are the first pages touched.
  for (uint32_t i = o.count; i-- > 0;) p->free_.push_back(i);
  if constexpr (kPoolAudit) p->audit_ = std::make_unique<PoolAudit>(p->base_, p->count_, p->shift_);
  p->large_free_.reserve(o.large_count);
  for (uint32_t k = o.large_count; k-- > 0;) p->large_free_.push_back(o.count + k * p->large_span_);
  return p;
}

BufferPool::~BufferPool() {
  audit_.reset();  // before the memory goes (see ~PoolAudit)
  if (base_) munmap(base_, bytes_);
}

uint32_t BufferPool::take(std::vector<uint32_t>& list, uint32_t* out, uint32_t n) {
  std::lock_guard<std::mutex> g(mu_);
  uint32_t k = n < list.size() ? n : uint32_t(list.size());
  for (uint32_t i = 0; i < k; ++i) {
    out[i] = list.back();
    list.pop_back();
  }
  return k;
}

void BufferPool::give(std::vector<uint32_t>& list, const uint32_t* in, uint32_t n) {
  std::lock_guard<std::mutex> g(mu_);
  list.insert(list.end(), in, in + n);
}

void BufferPool::put_mixed(const uint32_t* in, uint32_t n) {
  std::lock_guard<std::mutex> g(mu_);
  for (uint32_t i = 0; i < n; ++i) (is_large(in[i]) ? large_free_ : free_).push_back(in[i]);
}

uint32_t BufferPool::available() const {
  std::lock_guard<std::mutex> g(mu_);
  return uint32_t(free_.size());
}

uint32_t BufferPool::large_available() const {
  std::lock_guard<std::mutex> g(mu_);
  return uint32_t(large_free_.size());
}

BufferCache::BufferCache(std::shared_ptr<BufferPool> pool) : pool_(std::move(pool)), regular_(pool_->count()) {}

BufferCache::~BufferCache() { flush(); }

void BufferCache::flush() {
  if (n_) pool_->put_bulk(stack_, n_);
  n_ = 0;
  if (ln_) pool_->put_bulk_large(lstack_, ln_);
  ln_ = 0;
}

bool BufferCache::refill_large() {
  ln_ = pool_->get_bulk_large(lstack_, kLargeBatch);
  return ln_ != 0;
}

void BufferCache::free_large(uint32_t idx) {
  if (ln_ == kLargeCap) {
    pool_->put_bulk_large(lstack_, kLargeBatch);
    for (uint32_t i = 0; i < ln_ - kLargeBatch; ++i) lstack_[i] = lstack_[i + kLargeBatch];
    ln_ -= kLargeBatch;
  }
  lstack_[ln_++] = idx;
}

bool BufferCache::refill() {
  n_ = pool_->get_bulk(stack_, kBatch);
  return n_ != 0;
}

void BufferCache::spill() {
  // Give the bottom (coldest) half back and keep the most recently freed
  // buffers, whose cache lines are still warm.
  pool_->put_bulk(stack_, kBatch);
  for (uint32_t i = 0; i < n_ - kBatch; ++i) stack_[i] = stack_[i + kBatch];
  n_ -= kBatch;
}

}  // namespace vpc
