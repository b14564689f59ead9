#include "ports/pipe.h"

#include <unistd.h>

#include <algorithm>

namespace vpc {

void Waker::wake() {
  if (fd < 0) return;
  uint64_t one = 1;
  ssize_t r = ::write(fd, &one, sizeof(one));
  (void)r;  // EAGAIN means the counter is already non-zero: the engine will wake.
}

PipeShared::~PipeShared() {
  // Through a cache, like every other free, so audit builds see it.
  Pkt tmp[kMaxBurst];
  BufferCache cache(pool);
  for (SpscRing<Pkt>* r : {&to_engine, &to_peer})
    for (uint32_t n; (n = r->pop(tmp, kMaxBurst)) != 0;)
      for (uint32_t i = 0; i < n; ++i) cache.free(tmp[i].buf);
}

PipePort::~PipePort() { s_->port_gone.store(true, std::memory_order_release); }

void PipePort::detach() {
  // Frames the outside sent that the engine never read: give their buffers
  // back. to_peer is drained by the peer (or by its destructor).
  Pkt tmp[kMaxBurst];
  BufferCache cache(s_->pool);
  for (uint32_t n; (n = s_->to_engine.pop(tmp, kMaxBurst)) != 0;)
    for (uint32_t i = 0; i < n; ++i) cache.free(tmp[i].buf);
  s_->waker.store(nullptr, std::memory_order_release);
  s_->port_gone.store(true, std::memory_order_release);
}

PipePeer::PipePeer(std::shared_ptr<PipeShared> s) : s_(std::move(s)), cache_(s_->pool) {}

PipePeer::~PipePeer() {
  s_->peer_gone.store(true, std::memory_order_release);
  Pkt tmp[kMaxBurst];
  for (uint32_t n; (n = s_->to_peer.pop(tmp, kMaxBurst)) != 0;)
    for (uint32_t i = 0; i < n; ++i) cache_.free(tmp[i].buf);
}

uint32_t PipePeer::send(const Pkt* pkts, uint32_t n) {
  if (port_gone()) return 0;
  uint32_t k = s_->to_engine.push(pkts, n);
  // Publish-then-check, paired with the engine's set-sleeping-then-check.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (k) {
    Waker* w = s_->waker.load(std::memory_order_acquire);
    if (w && w->sleeping.load(std::memory_order_seq_cst)) w->wake();
  }
  return k;
}

uint32_t PipePeer::send_copy(const uint8_t* const* frames, const uint16_t* lens, uint32_t n) {
  BufferPool& pool = *s_->pool;
  Pkt batch[kMaxBurst];
  uint32_t sent = 0;
  while (sent < n) {
    uint32_t m = std::min<uint32_t>(n - sent, kMaxBurst), k = 0;
    for (; k < m; ++k) {
      uint32_t idx;
      uint16_t len = lens[sent + k];
      if (len > pool.max_frame() || !cache_.alloc(&idx)) break;
      batch[k] = Pkt{idx, pool.headroom(), len};
      if (len) std::memcpy(pool.frame(batch[k]), frames[sent + k], len);  // frames[i] may be null when empty
    }
    uint32_t acc = send(batch, k);
    for (uint32_t i = acc; i < k; ++i) cache_.free(batch[i].buf);
    sent += acc;
    if (acc < m) break;
  }
  return sent;
}

bool PipePeer::send_meta(const uint8_t* frame, uint32_t len, const OffloadMeta& meta) {
  BufferPool& pool = *s_->pool;
  uint32_t idx;
  const bool large = len > pool.max_frame();
  if (len > kMaxLargeFrame || (large && len > pool.max_large_frame())) return false;
  if (!(large ? cache_.alloc_large(&idx) : cache_.alloc(&idx))) return false;
  Pkt p{idx, pool.headroom(), uint16_t(len)};
  std::memcpy(pool.frame(p), frame, len);
  pool.meta(idx) = meta;
  pkt_set_meta(p, true);
  if (send(&p, 1) == 1) return true;
  cache_.free(idx);
  return false;
}

PipePair make_pipe(std::shared_ptr<BufferPool> pool, uint32_t ring_size, const PipeOptions& opts) {
  auto s = std::make_shared<PipeShared>(std::move(pool), ring_size, opts);
  return PipePair{std::make_unique<PipePort>(s), std::make_unique<PipePeer>(s)};
}

}  // namespace vpc
