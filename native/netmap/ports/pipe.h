// In-process pipe port: a connected pair of endpoints that move descriptors
// of one shared buffer pool without copying a byte.
//
//   outside thread            engine thread
//   PipePeer::send ──► ring ──► PipePort::rx_burst
//   PipePeer::recv ◄── ring ◄── PipePort::tx_burst
//
// The engine drives PipePort. PipePeer is used by one outside thread at a time
// (a test, a benchmark generator or sink, the addon); it allocates buffers for
// what it sends from its own BufferCache and frees what it receives into it.
// Tests and benchmarks use pipes; they are also the model every other backend
// follows.
//
// Offload state crosses a pipe both ways for free: the descriptor's kPktMeta
// flag travels in the ring and the state itself sits in the shared pool's side
// table (BufferPool::meta). send_meta() and recv() are the peer's side of it.
#pragma once

#include <atomic>
#include <memory>

#include "core/buffer_pool.h"
#include "core/spsc_ring.h"
#include "ports/port.h"

namespace vpc {

// What the engine end of a pipe announces on transmit (ports/port.h). By
// default it takes everything as it is, like a virtio-net guest with every
// offload on; tests set fewer to exercise the engine's egress adaptation.
struct PipeOptions {
  uint32_t tx_offloads = kOffAll;
  uint32_t tx_max_frame = 65535;
  bool tx_large_buffers = true;
  bool rx_large_frames = true;  // false: acts like a backend whose frames fit one buffer (netmap)
};

struct PipeShared {
  PipeShared(std::shared_ptr<BufferPool> p, uint32_t ring_size, const PipeOptions& o = {})
      : pool(std::move(p)), opts(o), to_engine(ring_size), to_peer(ring_size) {}
  // The last owner (port or peer) frees whatever is still in the rings: by
  // then no thread can touch them, so this is the one place without races.
  ~PipeShared();
  std::shared_ptr<BufferPool> pool;
  PipeOptions opts;
  SpscRing<Pkt> to_engine;
  SpscRing<Pkt> to_peer;
  std::atomic<Waker*> waker{nullptr};
  std::atomic<bool> link_up{true};     // the outside end's "cable"
  std::atomic<bool> port_gone{false};  // the engine side was destroyed
  std::atomic<bool> peer_gone{false};  // the outside end was destroyed
};

class PipePort final : public Port {
 public:
  explicit PipePort(std::shared_ptr<PipeShared> s) : s_(std::move(s)) {}
  ~PipePort() override;
  const char* kind() const override { return "pipe"; }
  uint16_t rx_burst(Pkt* pkts, uint16_t max) override {
    return uint16_t(s_->to_engine.pop(pkts, max));
  }
  uint16_t tx_burst(Pkt* pkts, uint16_t n) override {
    // Nobody would ever read them: the engine counts and frees them instead.
    if (s_->peer_gone.load(std::memory_order_relaxed)) return 0;
    return uint16_t(s_->to_peer.push(pkts, n));
  }
  LinkState link_state() const override {
    return s_->link_up.load(std::memory_order_relaxed) ? LinkState::kUp : LinkState::kDown;
  }
  void attach(Waker* w) override { s_->waker.store(w, std::memory_order_release); }
  void detach() override;
  uint32_t tx_offloads() const override { return s_->opts.tx_offloads; }
  uint32_t tx_max_frame() const override { return s_->opts.tx_max_frame; }
  bool tx_large_buffers() const override { return s_->opts.tx_large_buffers; }
  bool rx_large_frames() const override { return s_->opts.rx_large_frames; }

 private:
  std::shared_ptr<PipeShared> s_;
};

class PipePeer {
 public:
  explicit PipePeer(std::shared_ptr<PipeShared> s);
  ~PipePeer();
  PipePeer(const PipePeer&) = delete;
  PipePeer& operator=(const PipePeer&) = delete;

  BufferCache& cache() { return cache_; }
  BufferPool& pool() { return *s_->pool; }
  // Sends descriptors whose buffers the caller allocated from cache(). Returns
  // how many were accepted; the rest stay the caller's. Wakes the engine if it
  // sleeps.
  uint32_t send(const Pkt* pkts, uint32_t n);
  // Copies frames into fresh buffers and sends them. Returns frames accepted.
  uint32_t send_copy(const uint8_t* const* frames, const uint16_t* lens, uint32_t n);
  // Copies one frame with offload state into a fresh buffer (a large one when
  // it does not fit a regular buffer) and sends it with kPktMeta set. Returns
  // false when no buffer was free or the ring was full (nothing sent).
  bool send_meta(const uint8_t* frame, uint32_t len, const OffloadMeta& meta);
  // Receives descriptors; the caller owns the buffers and frees them into cache().
  uint32_t recv(Pkt* out, uint32_t max) { return s_->to_peer.pop(out, max); }
  void set_link(bool up) { s_->link_up.store(up, std::memory_order_relaxed); }
  bool port_gone() const { return s_->port_gone.load(std::memory_order_acquire); }

 private:
  std::shared_ptr<PipeShared> s_;
  BufferCache cache_;
};

struct PipePair {
  std::unique_ptr<PipePort> port;
  std::unique_ptr<PipePeer> peer;
};
PipePair make_pipe(std::shared_ptr<BufferPool> pool, uint32_t ring_size, const PipeOptions& opts = {});

}  // namespace vpc
