// Batched tap I/O through io_uring: one system call per burst, not per frame.
//
//   tap fd ──(reads kept posted, each into a pool buffer)──► CQ ──► rx()
//   tx() ──(one write SQE per frame, one io_uring_enter per call)──► tap fd
//
// - Reads: every queue descriptor has `rx_depth` reads outstanding, each
//   owning one pool buffer. The descriptors are blocking, so a read that
//   finds the device empty is parked by the kernel (poll-armed) instead of
//   failing: a frame that arrives completes it and posts a completion. When
//   nothing arrives, rx() costs a few loads and no system call. A completed
//   read is re-posted with a fresh buffer; all re-posts and writes of one call
//   go to the kernel in one io_uring_enter.
// - Writes: tx() queues one write per frame (tun takes a whole frame per
//   write) and submits them together; tun copies each frame during that call,
//   and the buffer goes back to the pool when its completion is reaped.
// - Completions are reaped in order into a small stash, so rx() and tx() can
//   both make room without losing frames that completed in between.
// - Ownership: a buffer whose read or write is posted belongs to the kernel
//   until its completion is reaped (lent_). close_queue() cancels every read
//   of a descriptor and waits (bounded) until the kernel gives every buffer
//   back, before the descriptor is closed: nothing is freed while the kernel
//   could still write into it.
// - The ring's descriptor is what a sleeping engine polls: it is readable
//   while completions wait. Completions already reaped into the stash do not
//   make it readable, so, as the engine does, call rx() until it returns 0
//   before sleeping on it.
// Only built with liburing (VPC_HAVE_URING); TapUring::open then says why not.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/buffer_pool.h"
#include "core/types.h"
#include "ports/spec.h"

struct io_uring;

namespace vpc {

class TapUring {
 public:
  // Sets up a ring for up to `max_queues` descriptors, each with `rx_depth`
  // reads posted, and at most `tx_depth` writes in flight. Returns nullptr
  // and sets *err (why io_uring cannot be used here) on failure.
  static std::unique_ptr<TapUring> open(uint32_t max_queues, uint32_t rx_depth, uint32_t tx_depth, BufferCache* cache,
                                        PortStatus* status, std::string* err);
  ~TapUring();
  TapUring(const TapUring&) = delete;
  TapUring& operator=(const TapUring&) = delete;

  int ring_fd() const;
  // Starts reading from `fd` as queue q (0 <= q < max_queues).
  void add_queue(uint32_t q, int fd);
  // Cancels queue q's reads and waits until the kernel returned their
  // buffers. The caller closes the descriptor afterwards.
  void close_queue(uint32_t q);
  // Frames that arrived, in order per queue; re-posts reads, one submit.
  uint16_t rx(Pkt* pkts, uint16_t max);
  // Writes pkts[0..k), pkts[i] on queue queues[i] (all on queue 0 when
  // queues is null), in one submit; returns k (the rest did not fit in
  // flight, or their queue is closed, and stay with the caller).
  uint16_t tx(const Pkt* pkts, const uint8_t* queues, uint16_t n);
  // A read said the device is gone (EBADFD, EIO, ENXIO, ENODEV).
  bool dead() const { return dead_; }
  void clear_dead() { dead_ = false; }

 private:
  struct Done {
    uint64_t tag;
    int32_t res;
  };
  TapUring(uint32_t max_queues, uint32_t rx_depth, uint32_t tx_depth, BufferCache* cache, PortStatus* status);
  void reap();       // every waiting completion: writes freed, reads stashed
  void post_reads();  // bring every open queue back to rx_depth reads
  void submit();
  bool wait_returned(uint32_t q, int timeout_ms);

  std::unique_ptr<io_uring> ring_;
  uint32_t max_queues_, rx_depth_, tx_depth_;
  BufferCache* cache_;
  BufferPool* pool_;
  PortStatus* status_;
  std::vector<int> fds_;          // per queue; -1 when closed
  std::vector<uint32_t> posted_;  // reads outstanding per queue
  std::vector<uint8_t> lent_;     // per pool buffer: 0, or 1 + queue of the read/write that holds it
  std::vector<Done> stash_;       // completed reads not yet handed out (ring of stash_mask_ + 1)
  uint32_t stash_head_ = 0, stash_tail_ = 0, stash_mask_ = 0;
  uint32_t tx_inflight_ = 0;
  uint32_t pending_sqes_ = 0;
  bool dead_ = false;
};

}  // namespace vpc
