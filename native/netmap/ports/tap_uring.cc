// Batched tap I/O through io_uring (design in tap_uring.h).
#include "ports/tap_uring.h"

#include <cstring>

#include "ports/vnet.h"

namespace vpc {

namespace {
// Where every read's spare byte goes (see TapRead); never read.
uint8_t g_spill[64];
}  // namespace

TapRead tap_read_layout(const BufferPool& pool, uint32_t buf, uint32_t large, uint8_t* scratch) {
  TapRead r;
  const uint32_t head = pool.headroom(), room = pool.max_frame();
  uint8_t* b = pool.data(buf);
  r.iov[0] = iovec{b + head - kVnetHdrLen, kVnetHdrLen};
  r.iov[1] = iovec{b + head, room};
  r.iovcnt = 2;
  if (large != kNoId) {
    r.iov[2] = iovec{pool.data(large) + head + room, pool.capacity(large) - head - room};
    r.iovcnt = 3;
  } else if (scratch) {
    r.iov[2] = iovec{scratch, kTapScratch};
    r.iovcnt = 3;
  }
  r.iov[r.iovcnt++] = iovec{g_spill, 1};
  return r;
}

TapVerdict tap_read_done(BufferCache& cache, uint32_t buf, uint32_t large, const uint8_t* scratch, uint32_t r,
                         Pkt* p, PortStatus* st) {
  BufferPool& pool = cache.pool();
  const uint32_t head = pool.headroom(), room = pool.max_frame();
  const uint32_t tail = large != kNoId ? pool.capacity(large) - head - room : scratch ? kTapScratch : 0;
  if (r < kVnetHdrLen + 14 || r - kVnetHdrLen > room + tail || r - kVnetHdrLen > kMaxLargeFrame) {
    // Runt, or cut: the frame reached the spare byte. Without a place for a
    // super-frame's rest (no large buffer was free) that is a pool shortage.
    st->add(r >= kVnetHdrLen + 14 && tail == 0 ? PortStatus::rx_no_buffer : PortStatus::rx_too_big);
    return TapVerdict::kDropped;
  }
  const uint32_t len = r - kVnetHdrLen;
  OffloadMeta meta;
  const VnetVerdict v = vnet_read(pool.data(buf) + head - kVnetHdrLen, len, &meta);
  if (v == VnetVerdict::kInvalid) {
    st->add(PortStatus::rx_bad_vnet);
    return TapVerdict::kDropped;
  }
  if (len <= room) {
    *p = Pkt{buf, uint16_t(head), uint16_t(len)};
    if (v == VnetVerdict::kOffload) {
      pool.meta(buf) = meta;
      pkt_set_meta(*p, true);
      st->add(PortStatus::rx_offload);
    }
    return TapVerdict::kRegular;
  }
  // A super-frame: its head is in `buf`, the rest in `large` or the scratch.
  uint32_t at = large;
  if (at == kNoId) {
    if (!cache.alloc_large(&at)) {
      st->add(PortStatus::rx_no_buffer);
      return TapVerdict::kDropped;
    }
    std::memcpy(pool.data(at) + head + room, scratch, len - room);
  }
  std::memcpy(pool.data(at) + head, pool.data(buf) + head, room);
  *p = Pkt{at, uint16_t(head), uint16_t(len)};
  // A frame in a large buffer always has a side-table entry (core/types.h).
  pool.meta(at) = v == VnetVerdict::kOffload ? meta : OffloadMeta{};
  pkt_set_meta(*p, true);
  if (v == VnetVerdict::kOffload) st->add(PortStatus::rx_offload);
  st->add(PortStatus::rx_super);
  return TapVerdict::kLarge;
}

}  // namespace vpc

#ifndef VPC_HAVE_URING

struct io_uring {};

namespace vpc {

std::unique_ptr<TapUring> TapUring::open(uint32_t, uint32_t, uint32_t, BufferCache*, PortStatus*, std::string* err) {
  *err = "this build has no io_uring support (liburing was not found at build time: on Debian "
         "`apt-get install liburing-dev` and rebuild)";
  return nullptr;
}
TapUring::~TapUring() = default;
int TapUring::ring_fd() const { return -1; }
void TapUring::add_queue(uint32_t, int) {}
void TapUring::close_queue(uint32_t) {}
uint16_t TapUring::rx(Pkt*, uint16_t) { return 0; }
uint16_t TapUring::tx(const Pkt*, const uint8_t*, uint16_t) { return 0; }

}  // namespace vpc

#else  // VPC_HAVE_URING

#include <liburing.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "ports/ifutil.h"

namespace vpc {

namespace {

// A completion's tag: bit 63 set for a write, bit 62 for a queue's waiting
// read, the queue in bits 32..39, the request's slot in bits 0..31.
constexpr uint64_t kTxBit = uint64_t(1) << 63;
constexpr uint64_t kWaitBit = uint64_t(1) << 62;
constexpr uint64_t kCancelTag = ~uint64_t(0);  // cancellation requests themselves
uint64_t tag_of(bool tx, uint32_t q, uint32_t slot) { return (tx ? kTxBit : 0) | (uint64_t(q) << 32) | slot; }
bool tag_tx(uint64_t t) { return t & kTxBit; }
bool tag_waiting(uint64_t t) { return t & kWaitBit; }
uint32_t tag_queue(uint64_t t) { return uint32_t(t >> 32) & 0xFF; }
uint32_t tag_slot(uint64_t t) { return uint32_t(t); }

bool gone(int res) { return res == -EBADFD || res == -EIO || res == -ENXIO || res == -ENODEV; }

uint32_t pow2_at_least(uint32_t v) {
  uint32_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

constexpr uint32_t kMinBatch = 1;  // reads per burst after a quiet spell

}  // namespace

TapUring::TapUring(uint32_t max_queues, uint32_t rx_depth, uint32_t tx_depth, BufferCache* cache, PortStatus* status)
    : ring_(new io_uring{}),
      max_queues_(max_queues),
      rx_depth_(rx_depth),
      tx_depth_(tx_depth),
      cache_(cache),
      pool_(&cache->pool()),
      status_(status),
      fds_(max_queues, -1),
      posted_(max_queues, 0),
      waiting_(max_queues, 0),
      batch_(max_queues, kMinBatch),
      filled_(max_queues, 0),
      empty_(max_queues, 0),
      slots_(pow2_at_least(max_queues * (rx_depth + 1) + tx_depth)),
      scratch_(max_queues),
      iov_(4 * max_queues * (rx_depth + 1)) {
  for (auto& sc : scratch_) sc.reset(new uint8_t[kTapScratch]);
  free_slots_.reserve(slots_.size());
  for (uint32_t i = uint32_t(slots_.size()); i-- > 0;) free_slots_.push_back(i);
  stash_mask_ = pow2_at_least(max_queues * (rx_depth + 1)) - 1;
  stash_.resize(stash_mask_ + 1);
}

std::unique_ptr<TapUring> TapUring::open(uint32_t max_queues, uint32_t rx_depth, uint32_t tx_depth, BufferCache* cache,
                                         PortStatus* status, std::string* err) {
  if (max_queues == 0 || max_queues > PortStatus::kMaxQueues) {  // slots and tags keep the queue in 8 bits
    *err = "io_uring: 1.." + std::to_string(PortStatus::kMaxQueues) + " queues";
    return nullptr;
  }
  std::unique_ptr<TapUring> u(new TapUring(max_queues, rx_depth, tx_depth, cache, status));
  // Every operation in flight (a burst of reads and the waiting read per
  // queue, the writes) has a completion slot of its own, twice over (a
  // cancellation at close and the request it cancels), so the completion
  // ring cannot overflow. The submission ring only holds what one call
  // prepares before its submit: a receive call's reads (at most rx_depth + 1
  // per queue) or a transmit call's writes (at most kMaxBurst); close_queue
  // submits when it is full. Sized for every request in flight instead, it
  // cost 32 KB more resident memory per tap (SQEs are 64 bytes).
  const uint32_t in_flight = pow2_at_least(max_queues * (rx_depth + 1) + tx_depth);
  const uint32_t entries = pow2_at_least(std::max(max_queues * (rx_depth + 1), std::min<uint32_t>(tx_depth, kMaxBurst)));
  // COOP_TASKRUN: a completion that needs the engine's thread (a read whose
  // poll fired) does not interrupt it with an IPI; TASKRUN_FLAG marks the
  // ring instead, and reap() enters the kernel only then (Linux 5.19; older
  // kernels refuse the flags and get the default).
  io_uring_params p{};
  p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  p.cq_entries = in_flight * 2;
  int r = io_uring_queue_init_params(entries, u->ring_.get(), &p);
  if (r == -EINVAL) {
    p = io_uring_params{};
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = in_flight * 2;
    r = io_uring_queue_init_params(entries, u->ring_.get(), &p);
  }
  if (r < 0) {
    u->ring_.reset();
    *err = std::string("io_uring_setup failed: ") + strerror(-r) +
           (r == -EPERM ? " (io_uring is forbidden here: the kernel.io_uring_disabled sysctl, or a container's "
                          "seccomp profile)"
            : r == -ENOSYS ? " (the kernel has no io_uring)"
            : r == -ENOMEM ? " (RLIMIT_MEMLOCK too low for the ring)"
                           : "");
    return nullptr;
  }
  return u;
}

TapUring::~TapUring() {
  if (!ring_) return;
  for (uint32_t q = 0; q < max_queues_; ++q)
    if (fds_[q] >= 0) close_queue(q);
  io_uring_queue_exit(ring_.get());
}

int TapUring::ring_fd() const { return ring_ ? ring_->ring_fd : -1; }

void TapUring::add_queue(uint32_t q, int fd) {
  fds_[q] = fd;
  posted_[q] = 0;
  waiting_[q] = 0;
  dead_ = false;
  post_read(q, true);
  submit();
}

uint32_t TapUring::alloc_slot() {
  if (free_slots_.empty()) return kNoId;
  const uint32_t s = free_slots_.back();
  free_slots_.pop_back();
  return s;
}

bool TapUring::post_read(uint32_t q, bool waiting) {
  uint32_t b;
  if (!cache_->alloc(&b)) {
    status_->add(PortStatus::rx_no_buffer);  // frames wait in the tap until buffers return
    return false;
  }
  io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
  const uint32_t slot = sqe && iov_used_ + 4 <= iov_.size() ? alloc_slot() : kNoId;
  if (slot == kNoId) {  // cannot happen (a ring entry and a slot per request); the next rx() retries
    cache_->free(b);
    return false;
  }
  // A burst's read continues into a large buffer (given back at once if the
  // frame fits the regular one). The waiting read, which may stay posted for
  // as long as the port is idle, continues into the queue's scratch instead,
  // so idle ports hold no large buffer.
  uint32_t large = kNoId;
  if (!waiting && !cache_->alloc_large(&large)) large = kNoId;  // then this read takes regular frames only
  const TapRead rd = tap_read_layout(*pool_, b, large, waiting ? scratch_[q].get() : nullptr);
  iovec* iov = &iov_[iov_used_];
  iov_used_ += rd.iovcnt;
  for (uint32_t i = 0; i < rd.iovcnt; ++i) iov[i] = rd.iov[i];
  io_uring_prep_readv(sqe, fds_[q], iov, rd.iovcnt, 0);
  // The waiting read may block (the kernel parks it until a frame comes);
  // the burst's reads must not: an empty tap fails them with EAGAIN.
  if (!waiting) sqe->rw_flags = RWF_NOWAIT;
  io_uring_sqe_set_data64(sqe, tag_of(false, q, slot) | (waiting ? kWaitBit : 0));
  slots_[slot] = Slot{b, large, uint8_t(1 + q)};
  ++posted_[q];
  ++pending_sqes_;
  if (waiting) waiting_[q] = 1;
  return true;
}

// A read that carried no frame gives its buffers back.
void TapUring::drop_read(uint32_t s) {
  cache_->free(slots_[s].buf);
  if (slots_[s].large != kNoId) cache_->free(slots_[s].large);
  slots_[s] = Slot{};
  free_slot(s);
}

void TapUring::submit() {
  iov_used_ = 0;  // the kernel has copied them once the submit returns (IORING_FEAT_SUBMIT_STABLE)
  if (!pending_sqes_) return;
  pending_sqes_ = 0;
  status_->add(PortStatus::kicks);
  int r = io_uring_submit(ring_.get());
  if (r < 0 && r != -EAGAIN && r != -EBUSY && r != -EINTR) status_->add(PortStatus::tx_errors);
}

void TapUring::reap() {
  if (IO_URING_READ_ONCE(*ring_->sq.kflags) & IORING_SQ_TASKRUN) {
    status_->add(PortStatus::kicks);
    io_uring_get_events(ring_.get());
  }
  io_uring_cqe* cqe;
  unsigned head, seen = 0;
  io_uring_for_each_cqe(ring_.get(), head, cqe) {
    ++seen;
    const uint64_t t = cqe->user_data;
    if (t == kCancelTag) continue;
    const uint32_t s = tag_slot(t);
    if (slots_[s].orphan) [[unlikely]] {  // the kernel gave its buffers back after close_queue() gave up
      if (tag_tx(t)) --tx_inflight_;
      drop_read(s);
      continue;
    }
    if (tag_tx(t)) {
      --tx_inflight_;
      cache_->free(slots_[s].buf);
      slots_[s] = Slot{};
      free_slot(s);
      // A tap that is down (e.g. while it moves to another namespace) fails
      // writes with EIO: counted, not a lost device. check_link() notices a
      // deleted tap by itself.
      if (cqe->res < 0) status_->add(PortStatus::tx_errors);
      continue;
    }
    slots_[s].held = 0;  // the read's buffers are back; the slot goes with the stashed read
    const uint32_t q = tag_queue(t);
    --posted_[q];
    if (tag_waiting(t)) {
      waiting_[q] = 0;  // a frame came (or an error): read a burst next
    } else if (cqe->res == -EAGAIN) {
      ++empty_[q];
    } else {
      ++filled_[q];
    }
    stash_[stash_tail_++ & stash_mask_] = Done{t, cqe->res};
  }
  if (seen) io_uring_cq_advance(ring_.get(), seen);
}

uint16_t TapUring::take(Pkt* pkts, uint16_t n, uint16_t max) {
  uint64_t per_queue[PortStatus::kMaxQueues] = {};
  while (n < max && stash_head_ != stash_tail_) {
    const Done d = stash_[stash_head_++ & stash_mask_];
    const uint32_t s = tag_slot(d.tag);
    if (d.res > 0) {
      const uint32_t b = slots_[s].buf, large = slots_[s].large;
      slots_[s] = Slot{};
      free_slot(s);
      const uint8_t* scratch = tag_waiting(d.tag) ? scratch_[tag_queue(d.tag)].get() : nullptr;
      const TapVerdict v = tap_read_done(*cache_, b, large, scratch, uint32_t(d.res), &pkts[n], status_);
      if (v == TapVerdict::kDropped) {
        cache_->free(b);
        if (large != kNoId) cache_->free(large);
        continue;
      }
      if (v == TapVerdict::kLarge) cache_->free(b);
      else if (large != kNoId) cache_->free(large);
      ++n;
      const uint32_t q = tag_queue(d.tag);
      if (q < PortStatus::kMaxQueues) ++per_queue[q];
      continue;
    }
    drop_read(s);
    if (d.res == -EINVAL || d.res == -EFAULT || d.res == -EMSGSIZE) {
      status_->add(PortStatus::rx_too_big);  // did not fit: consumed, not truncated
    } else if (gone(d.res)) {
      dead_ = true;
    }
    // -EAGAIN: the tap is empty (the poll behind the reads is posted);
    // 0, -EINTR, -ECANCELED: nothing either.
  }
  for (uint32_t q = 0; q < max_queues_ && q < PortStatus::kMaxQueues; ++q)
    if (per_queue[q]) status_->queue_rx[q].fetch_add(per_queue[q], std::memory_order_relaxed);
  return n;
}

// As many reads as the last burst could fill, doubling while bursts come
// back full: a lone frame costs a few failed reads, not rx_depth.
uint32_t TapUring::next_batch(uint32_t q) const {
  if (empty_[q] == 0 && filled_[q] > 0) return std::min(batch_[q] * 2, rx_depth_);
  if (empty_[q] > 0) return std::clamp(filled_[q] * 2, kMinBatch, rx_depth_);
  return batch_[q];
}

bool TapUring::light() const {
  for (uint32_t q = 0; q < max_queues_; ++q)
    if (fds_[q] >= 0 && !waiting_[q] && next_batch(q) > kMinBatch) return false;
  return true;
}

uint16_t TapUring::rx(Pkt* pkts, uint16_t max) {
  reap();
  uint16_t n = take(pkts, 0, max);
  if (n == max || dead_) return n;
  // At light load (every queue that has frames came back from a one-read
  // burst) a frame its waiting read brought goes on at once: the burst and
  // the new waiting read are posted by the next rx(), after this frame has
  // been forwarded, so their io_uring_enter is not on its path. Under load
  // the burst grows past one read and the frames wait for it, in one call.
  if (n && light()) return n;
  // A queue whose waiting read completed has frames: a burst of nonblocking
  // reads, then a new waiting read, all in one submit. The reads run inline,
  // so their frames are in the completion ring when io_uring_enter returns.
  uint32_t want = max - n;
  for (uint32_t k = 0; k < max_queues_ && want; ++k) {
    const uint32_t q = (next_q_ + k) % max_queues_;
    if (fds_[q] < 0 || waiting_[q]) continue;
    batch_[q] = next_batch(q);
    filled_[q] = empty_[q] = 0;
    const uint32_t reads = std::min(want, batch_[q]);
    uint32_t posted = 0;
    while (posted < reads && post_read(q, false)) ++posted;
    post_read(q, true);  // completes at once if frames are left, else waits
    want -= posted;
  }
  next_q_ = next_q_ + 1 >= max_queues_ ? 0 : next_q_ + 1;
  if (!pending_sqes_) return n;
  submit();
  reap();
  return take(pkts, n, max);
}

uint16_t TapUring::tx(const Pkt* pkts, const uint8_t* queues, uint16_t n) {
  if (dead_) return 0;
  if (tx_inflight_ + n > tx_depth_) reap();
  uint16_t k = uint16_t(std::min<uint32_t>(n, tx_depth_ - tx_inflight_));
  for (uint16_t i = 0; i < k; ++i) {
    const uint32_t q = queues ? queues[i] : 0;
    if (q >= max_queues_ || fds_[q] < 0) {
      k = i;
      break;
    }
    io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
    const uint32_t slot = sqe ? alloc_slot() : kNoId;
    if (slot == kNoId) {  // cannot happen (tx_inflight_ <= tx_depth_): the rest stay with the caller
      k = i;
      break;
    }
    // The port put the virtio-net header right in front of the frame.
    io_uring_prep_write(sqe, fds_[q], pool_->data(pkts[i].buf) + pkt_off(pkts[i]) - kVnetHdrLen,
                        pkts[i].len + kVnetHdrLen, 0);
    io_uring_sqe_set_data64(sqe, tag_of(true, q, slot));
    slots_[slot] = Slot{pkts[i].buf, kNoId, uint8_t(1 + q)};
    ++pending_sqes_;
  }
  tx_inflight_ += k;
  submit();
  return k;
}

bool TapUring::wait_returned(uint32_t q, int timeout_ms) {
  const uint64_t deadline = mono_ms() + uint64_t(timeout_ms);
  for (;;) {
    reap();
    bool held = posted_[q] != 0;
    for (uint32_t s = 0; !held && s < slots_.size(); ++s) held = slots_[s].held == 1 + q;
    if (!held) return true;
    if (mono_ms() >= deadline) return false;
    io_uring_cqe* cqe;
    __kernel_timespec ts{0, 10 * 1000 * 1000};
    io_uring_wait_cqe_timeout(ring_.get(), &cqe, &ts);
  }
}

void TapUring::close_queue(uint32_t q) {
  if (!ring_ || fds_[q] < 0) return;
  // Cancel each read the queue has posted (by tag: works on every kernel
  // with io_uring, unlike cancelling by descriptor).
  for (uint32_t s = 0; s < slots_.size(); ++s) {
    if (slots_[s].held != 1 + q) continue;
    for (uint64_t tag : {tag_of(false, q, s), tag_of(false, q, s) | kWaitBit}) {
      io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
      if (!sqe) {
        io_uring_submit(ring_.get());
        reap();
        sqe = io_uring_get_sqe(ring_.get());
        if (!sqe) break;
      }
      io_uring_prep_cancel64(sqe, tag, 0);
      io_uring_sqe_set_data64(sqe, kCancelTag);
    }
  }
  io_uring_submit(ring_.get());
  pending_sqes_ = 0;
  const bool all_back = wait_returned(q, 2000);
  // Reads that completed with data before the cancel are dropped with the queue.
  uint32_t kept = stash_head_;
  for (uint32_t i = stash_head_; i != stash_tail_; ++i) {
    const Done d = stash_[i & stash_mask_];
    if (tag_queue(d.tag) == q) {
      drop_read(tag_slot(d.tag));
    } else {
      stash_[kept++ & stash_mask_] = d;
    }
  }
  stash_tail_ = kept;
  if (!all_back) {
    // The kernel still holds some buffers: leaving them out of the pool is
    // safe; freeing them is not.
    uint32_t held = 0;
    for (uint32_t s = 0; s < slots_.size(); ++s)
      if (slots_[s].held == 1 + q) {
        slots_[s].held = 0;  // its buffers stay out of the pool until the kernel gives them back (reap)
        slots_[s].orphan = true;
        ++held;
      }
    status_->set_error("tap: " + std::to_string(held) + " buffers were not returned by the kernel at close (left unused)");
  }
  posted_[q] = 0;
  waiting_[q] = 0;
  fds_[q] = -1;
}

}  // namespace vpc

#endif  // VPC_HAVE_URING
