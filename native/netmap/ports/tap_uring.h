// Batched tap I/O through io_uring: one system call per burst, not per frame.
//
//   tap fd ──frame──► the queue's waiting read completes ──► rx(): a burst of
//                     nonblocking reads + a new waiting read, one io_uring_enter
//   tx() ──(one write SQE per frame, one io_uring_enter per call)──► tap fd
//
// Every read is a readv (tap_read_layout: virtio-net header, regular buffer,
// large buffer for a super-frame); every write starts at the virtio-net
// header the port put in front of the frame.
//
// - Waiting: each queue descriptor (blocking) has exactly one read posted
//   that the kernel parks until a frame arrives. While the tap is empty that
//   is all, so an idle port costs no system call: rx() only looks at the
//   completion ring.
// - Reads: once the waiting read has completed (with a frame), the next rx()
//   submits up to a burst of reads flagged RWF_NOWAIT, each into a fresh pool
//   buffer, and a new waiting read behind them, in one io_uring_enter. The
//   kernel runs them inline and in order: each takes a frame or fails with
//   EAGAIN once the tap is empty, and the waiting read completes at once if
//   frames are left, or waits. A burst has as many reads as the last one
//   could fill (at least 1), doubling while bursts come back full (up to
//   rx_depth): a lone frame costs one failed read, a flood full bursts.
//   At light load (bursts down to one read) rx() hands the waiting read's
//   frame over at once and leaves the posting to the next rx(), so no
//   io_uring_enter lies between a lone frame's arrival and its forwarding.
// - Why not simpler: many reads parked on one tap all wake for one frame, and
//   io_uring hands each one that then finds nothing to a blocking worker
//   thread (hundreds of iou-wrk threads, a millisecond of latency); a poll
//   request instead of the waiting read completed about a millisecond late
//   here (kernel 6.18). One parked read per queue avoids both.
// - Writes: tx() queues one write per frame (tun takes a whole frame per
//   write) and submits them together; tun copies each frame during that call,
//   and the buffer goes back to the pool when its completion is reaped.
// - Completions are reaped in order into a small stash, so rx() and tx() can
//   both make room without losing frames that completed in between.
// - Ownership: a buffer whose read or write is posted belongs to the kernel
//   until its completion is reaped. Each request in flight has a slot of its
//   own (slots_: its buffers and queue; the slot's index is in the
//   request's tag), as many as requests can be in flight: per-pool-buffer arrays
//   cost 410 KB a tap with the default pool (82K buffer indices), 120 MB
//   for 300 taps. close_queue() cancels the queue's requests and waits
//   (bounded) until the kernel gives every buffer back, before the
//   descriptor is closed.
// - The ring's descriptor is what a sleeping engine polls: it is readable
//   while completions wait. Completions already reaped into the stash do not
//   make it readable, so, as the engine does, call rx() until it returns 0
//   before sleeping on it.
// Only built with liburing (VPC_HAVE_URING); TapUring::open then says why not.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/buffer_pool.h"
#include "core/types.h"
#include "ports/spec.h"

struct io_uring;

namespace vpc {

// How one tap read lands (readv, for io_uring and the read() fallback alike):
// the virtio-net header in the regular buffer's headroom right in front of
// the frame, the frame in the regular buffer, and what does not fit there
// (a TSO super-frame) where it continues: in a large buffer, at the offset
// that makes the frame contiguous there, or in a scratch area of
// kTapScratch bytes, from which it is copied into a large buffer. A last
// iovec of one spare byte tells a frame that did not fit from one that just
// filled the room: a tap read returns at most the room it was given, cutting
// the frame without a word (tun_chr_read_iter), so a read that reaches the
// spare byte is a frame that was cut.
struct TapRead {
  iovec iov[4];
  uint32_t iovcnt;
};
constexpr uint32_t kTapScratch = 65536;
// `large` (kNoId: none) or `scratch` (null: none) takes a super-frame's rest;
// with neither, the read takes regular frames only (a super-frame is a
// counted drop: rx_no_buffer, as no large buffer was free for it).
TapRead tap_read_layout(const BufferPool& pool, uint32_t buf, uint32_t large, uint8_t* scratch);
enum class TapVerdict : uint8_t {
  kRegular,  // *p is in `buf`; `large` was not used
  kLarge,    // *p is in `large` (or one taken from `cache` for the scratch); `buf` is free to reuse
  kDropped,  // counted in *st; neither buffer holds anything
};
// After a read of `r` bytes (header included) laid out by tap_read_layout().
TapVerdict tap_read_done(BufferCache& cache, uint32_t buf, uint32_t large, const uint8_t* scratch, uint32_t r,
                         Pkt* p, PortStatus* st);

class TapUring {
 public:
  // Sets up a ring for up to `max_queues` blocking descriptors, at most
  // `rx_depth` reads per queue and burst, and at most `tx_depth` writes in
  // flight. Returns nullptr
  // and sets *err (why io_uring cannot be used here) on failure.
  static std::unique_ptr<TapUring> open(uint32_t max_queues, uint32_t rx_depth, uint32_t tx_depth, BufferCache* cache,
                                        PortStatus* status, std::string* err);
  ~TapUring();
  TapUring(const TapUring&) = delete;
  TapUring& operator=(const TapUring&) = delete;

  int ring_fd() const;
  // Starts reading from `fd` (blocking) as queue q (0 <= q < max_queues).
  void add_queue(uint32_t q, int fd);
  // Cancels queue q's reads and waits until the kernel returned their
  // buffers. The caller closes the descriptor afterwards.
  void close_queue(uint32_t q);
  // Frames that arrived, in order per queue: at most one submit.
  uint16_t rx(Pkt* pkts, uint16_t max);
  // Writes pkts[0..k), pkts[i] on queue queues[i] (all on queue 0 when
  // queues is null), in one submit; returns k (the rest did not fit in
  // flight, or their queue is closed, and stay with the caller).
  uint16_t tx(const Pkt* pkts, const uint8_t* queues, uint16_t n);
  // A read said the device is gone (EBADFD, EIO, ENXIO, ENODEV).
  bool dead() const { return dead_; }

 private:
  struct Done {
    uint64_t tag;
    int32_t res;
  };
  TapUring(uint32_t max_queues, uint32_t rx_depth, uint32_t tx_depth, BufferCache* cache, PortStatus* status);
  // A request in flight, or a read completed and stashed: its slot.
  struct Slot {
    uint32_t buf = kNoId;
    uint32_t large = kNoId;  // a read's large buffer behind `buf`, or kNoId
    uint8_t held = 0;        // 1 + queue while the kernel holds the buffers, else 0
    bool orphan = false;     // close_queue() gave up waiting for it: freed when it completes after all
  };
  uint32_t alloc_slot();  // kNoId: none free (cannot happen: one per ring entry)
  void free_slot(uint32_t s) { free_slots_.push_back(s); }
  void reap();       // every waiting completion: writes freed, reads stashed
  bool post_read(uint32_t q, bool waiting);  // false: no buffer or no slot
  void drop_read(uint32_t s);  // a read that carried no frame: its buffers and slot go back
  uint16_t take(Pkt* pkts, uint16_t n, uint16_t max);  // hands out stashed reads
  void submit();
  uint32_t next_batch(uint32_t q) const;  // reads q's next burst posts, from the last one's results
  bool light() const;  // every queue with frames would post a one-read burst next
  bool wait_returned(uint32_t q, int timeout_ms);

  std::unique_ptr<io_uring> ring_;
  uint32_t max_queues_, rx_depth_, tx_depth_;
  BufferCache* cache_;
  BufferPool* pool_;
  PortStatus* status_;
  std::vector<int> fds_;          // per queue; -1 when closed
  std::vector<uint32_t> posted_;  // reads outstanding per queue
  std::vector<uint8_t> waiting_;  // the queue's waiting read is posted
  std::vector<uint32_t> batch_;   // reads the next burst posts (adapts to the load)
  std::vector<uint32_t> filled_, empty_;  // the last burst's reads: with a frame, EAGAIN
  uint32_t next_q_ = 0;           // first queue read by the next rx()
  std::vector<Slot> slots_;       // one per ring entry
  std::vector<uint32_t> free_slots_;
  std::vector<std::unique_ptr<uint8_t[]>> scratch_;  // per queue: where the waiting read puts a super-frame's rest
  std::vector<iovec> iov_;        // iovecs of the reads prepared since the last submit (the kernel copies them at submit)
  uint32_t iov_used_ = 0;
  std::vector<Done> stash_;       // completed reads not yet handed out (ring of stash_mask_ + 1)
  uint32_t stash_head_ = 0, stash_tail_ = 0, stash_mask_ = 0;
  uint32_t tx_inflight_ = 0;
  uint32_t pending_sqes_ = 0;
  bool dead_ = false;
};

}  // namespace vpc
