// Counter blocks per switch and peer: one per remote member (core/state.h: a
// remote VTEP's membership of one switch, i.e. one VNI's traffic with one
// peer), indexed by MemberId.
//
// Members come and go at run time (up to kMaxMembers), so the store reserves
// one block per possible member id up front as untouched anonymous memory
// (4 MiB of address space); the kernel commits a page (64 blocks) when a
// member in it first counts, so an engine without remote members commits
// nothing. The blocks never move: readers on other threads load them
// lock-free below the high-water mark, like the fixed blocks of
// core/counters.h.
//
// The per-frame path counts a peer's rx/tx only here (one block per frame,
// found by the member id encap and decap already hold); the peer's totals
// over every switch are these blocks summed with what the peer's own block
// holds (frames of memberships that closed, folded in by the engine, and
// frames no membership owned). A fold and a reader's sum are ordered by a
// sequence counter (fold_begin/fold_end, read_begin/read_retry) so a reader
// never sees a closing membership counted twice or not at all.
#pragma once

#include <atomic>
#include <cstdint>

#include "bridge/state.h"  // MemberId, kMaxMembers: the bridge's member ids index the blocks
#include "core/counters.h"
#include "proto/inet.h"

namespace vpc {

// A peer's counters as readers see them: PeerCounter values with rx/tx
// summed over its live (switch, peer) blocks (Overlay::peer_snapshot).
struct PeerSnapshot {
  uint32_t slot;
  IpAddr ip;
  uint64_t c[kPeerCounters];
};

class SwitchPeerBlocks {
 public:
  SwitchPeerBlocks();  // throws std::bad_alloc when the address space is not there
  ~SwitchPeerBlocks();
  SwitchPeerBlocks(const SwitchPeerBlocks&) = delete;
  SwitchPeerBlocks& operator=(const SwitchPeerBlocks&) = delete;

  SwitchPeerCounterBlock& at(MemberId m) const { return base_[m]; }

  // Engine thread: member m now has a block readers must look at.
  void opened(MemberId m) {
    if (m >= hwm_.load(std::memory_order_relaxed)) hwm_.store(m + 1, std::memory_order_release);
  }
  // Any thread: blocks [0, size()) may be in use.
  uint32_t size() const { return hwm_.load(std::memory_order_acquire); }

  // Engine thread, around moving a closing block's counts to its peer.
  void fold_begin() {
    seq_.store(seq_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
  }
  void fold_end() { seq_.store(seq_.load(std::memory_order_relaxed) + 1, std::memory_order_release); }

  // Readers: read_begin() before summing, then read_retry(start) says whether
  // a fold ran meanwhile (sum again).
  uint64_t read_begin() const {
    uint64_t s;
    while ((s = seq_.load(std::memory_order_acquire)) & 1) {
    }
    return s;
  }
  bool read_retry(uint64_t start) const {
    std::atomic_thread_fence(std::memory_order_acquire);
    return seq_.load(std::memory_order_relaxed) != start;
  }

 private:
  SwitchPeerCounterBlock* base_ = nullptr;
  std::atomic<uint32_t> hwm_{0};
  std::atomic<uint64_t> seq_{0};
};

}  // namespace vpc
