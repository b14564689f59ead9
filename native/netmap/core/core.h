// The core owner: ports, tx staging, egress adaptation, the buffer pool, the
// engine's counters, events and clock. The poll loop that drives it is
// Engine's (core/engine.cc); the bridge and the overlay reach ports only
// through it: stage() is the tx node every path ends in.
//
// Owns: the port table (PortState: backend, config, link state, staged tx
// queue), the active and dirty port lists, the poll set, its waker and the
// link watch (ports/link_watch.h), the pool and the engine thread's buffer
// cache, the engine and port counter blocks, the event ring. (The ICMP
// too-big buckets are per switch: bridge/state.h, TooBigBucket in
// core/state.h.)
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/buffer_pool.h"
#include "core/command.h"
#include "core/counters.h"
#include "core/observe.h"
#include "core/spsc_ring.h"
#include "core/state.h"
#include "ports/link_watch.h"

namespace vpc {

struct CoreOptions {
  BufferPoolOptions pool;
  uint32_t max_ports = 1024;
  uint32_t event_ring = 65536;
  uint32_t event_mask = kAllEvents;
  uint32_t icmp_too_big_per_s = 100;
  uint32_t housekeeping_ms = 100;  // EngineOptions::idle_poll_ms
};

class Core {
 public:
  // Throws std::system_error (eventfd) or what BufferPool::create throws.
  explicit Core(const CoreOptions& o);
  ~Core();
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  // ---- clock (set by the poll loop once per iteration)
  uint32_t now_ms() const { return now_ms_; }
  void set_now_ms(uint32_t ms) { now_ms_ = ms; }
  // The housekeeping period (aging sweeps are sized by it).
  uint32_t housekeeping_ms() const { return opts_.housekeeping_ms; }

  // ---- link watch: 0 off, 1 this namespace only, 2 every namespace with an
  // id here (the link_watch gauge); why it is less than 2 (empty when 2).
  uint32_t link_watch_mode() const { return link_watch_.fd() < 0 ? 0 : link_watch_.all_namespaces() ? 2 : 1; }
  const std::string& link_watch_why() const { return link_watch_why_; }

  // ---- buffers
  BufferPool& pool() const { return *pool_; }
  const std::shared_ptr<BufferPool>& pool_ptr() const { return pool_; }
  BufferCache& cache() { return *cache_; }
  const BufferCache& cache() const { return *cache_; }
  // A copy of p in a fresh buffer, at the headroom offset. A frame with
  // offload state keeps it (and gets a large buffer when it needs one).
  bool copy_frame(const Pkt& p, Pkt* q);
  // Frees p and counts it on the port and the switch (either may be null).
  void drop_frame(Pkt p, Drop why, PortCounterBlock* port, SwitchCounterBlock* sw) {
    drop_frame_count(why, port, sw);
    if (observer_->tracing()) [[unlikely]] observer_->drop(p.buf, why);
    cache_->free(p.buf);
  }
  static void drop_frame_count(Drop why, PortCounterBlock* port, SwitchCounterBlock* sw) {
    if (port) port->drop_tx(why);
    if (sw) sw->drop(why);
  }

  // ---- ports
  PortState& port(PortId p) { return ports_[p]; }
  const PortState& port(PortId p) const { return ports_[p]; }
  uint32_t max_ports() const { return uint32_t(ports_.size()); }
  const std::vector<PortId>& active_ports() const { return active_ports_; }
  PortCounterBlock& port_counters(PortId p) const { return port_ctr_[p]; }
  // `backend`: the port the config is for (its MTU may exceed a regular
  // buffer when it receives long frames into large buffers).
  Result check_port_config(const PortConfig& pc, const Port& backend) const;
  // Opens a free slot for a backend (config already checked); kNoId when
  // every slot is taken. The port is polled from the next iteration on.
  PortId open_port(std::unique_ptr<Port> backend, const PortConfig& pc, bool is_uplink);
  void set_port_config(PortState& ps, const PortConfig& pc);
  // Frees a port slot: drops its staged frames and stops polling it. Returns
  // the backend, which the engine no longer touches; it is detached and
  // destroyed where the last reference goes (Result::closed_port), so that
  // closing it (a tap's last close unregisters its device: about 18 ms)
  // does not stall the engine thread.
  std::shared_ptr<Port> close_port(PortId pid);
  bool has_free_port_slot() const;

  // ---- tx (the last node of every path)
  // Puts a frame on the port's staged queue (flushed once per iteration).
  void stage(PortId out, PortState& ps, Pkt p) {
    ps.txq[ps.txn++] = p;
    if (!ps.tx_dirty) [[unlikely]] mark_dirty(out);
    if (ps.txn == kTxQueueLen) [[unlikely]] flush_port(out);
  }
  void stage(PortId out, Pkt p) { stage(out, ports_[out], p); }
  void flush_tx();
  // Egress adaptation of a frame with offload state (core/egress.cc):
  // segmentation, checksum completion, large to regular buffers, as the
  // port needs; stages what comes out. `sw`: whose drops these are (or null).
  void egress_offload(PortId out, PortState& ps, Pkt p, SwitchCounterBlock* sw);
  // Cuts a super-frame into segments that fit `l3_mtu` and hands each to
  // emit (core/egress.h). Returns true when every segment was emitted.
  template <class Emit>
  bool segment(Pkt p, const OffloadMeta& m, uint32_t l3_mtu, PortCounterBlock* pc, SwitchCounterBlock* sw,
               Emit&& emit);
  // Moves a frame out of a large buffer into a regular one. False: dropped.
  bool to_regular(Pkt& p, PortCounterBlock* pc, SwitchCounterBlock* sw);
  // Builds an ICMP Fragmentation Needed / Packet Too Big answer to p in *q
  // (rate-limited by the bucket of p's switch, counted); false when none is
  // to be sent. The caller delivers it to where p came from.
  bool too_big_reply(Pkt p, uint32_t l3_mtu, TooBigBucket& bucket, Pkt* q);

  // ---- events and counters
  void emit(const Event& ev);
  void notify_if_needed();
  void set_notify(std::function<void()> fn) { notify_ = std::move(fn); }
  uint32_t drain_events(Event* out, uint32_t max);
  EngineCounterBlock& engine_counters() const { return *engine_ctr_; }

  // ---- poll set and housekeeping
  // Capture and trace (core/observe.h).
  Observer& observer() { return *observer_; }
  Waker& waker() { return waker_; }
  // Sleeps in epoll_wait(2) on every port's fd, the waker and the link
  // watch, at most timeout_ms. Then woken_ports() lists the ports to look
  // at: those whose descriptor is ready and those without one (pipes: their
  // producers ring the waker). False when the wake cannot say which (the
  // waker rang: a command, a pipe, a vhost-user port's connection watcher;
  // or a signal): look at every port.
  bool sleep_until_work(int timeout_ms);
  const std::vector<PortId>& woken_ports() const { return woken_; }
  // Link state and tx limits (events on changes). A check costs a port's
  // backend system calls (five for an afpacket port or a tap, about 8 us
  // here), and every port waits while one runs, so they come in slices:
  // - ports whose interface a kernel link message named (ports/link_watch.h),
  //   at most kLinkChecksPerTick / kLinkSlices at a time: when the engine
  //   wakes for the message, or at the next slice (25 ms) while it is busy;
  // - the others round robin, up to kLinkChecksPerTick ports per
  //   housekeeping period (`period_ms`) in kLinkSlices slices spread over
  //   it; a port the link watch covers only as often as it asks
  //   (Port::WatchKey::recheck_ms: 1 s for an AF_XDP port's kernel drop
  //   counters, 10 s for an afpacket port or a tap).
  // Called every iteration; an engine that slept through slices catches up
  // on waking (at most one period's worth).
  static constexpr size_t kLinkChecksPerTick = 32;
  static constexpr uint32_t kLinkSlices = 4;
  void tick_links(uint32_t period_ms) {
    if (link_woke_ || int32_t(now_ms_ - next_link_ms_) >= 0) [[unlikely]] link_slices(period_ms);
  }
  // The buffer pool's gauges (housekeeping).
  void pool_gauges();
  // Frames staged on ports' tx queues.
  uint32_t frames_staged() const;
  // Ports, the active and dirty lists; "" when they hold.
  std::string check_invariants(PortId uplink) const;

 private:
  [[gnu::noinline]] void mark_dirty(PortId out) {
    ports_[out].tx_dirty = true;
    dirty_ports_.push_back(out);
  }
  [[gnu::noinline]] bool copy_frame_meta(const Pkt& p, Pkt* q);
  void flush_port(PortId p);
  uint16_t drop_too_big_for_egress(PortState& ps, uint16_t n);
  void poll_add(PortId p, PortState& ps);
  void poll_del(PortId p, PortState& ps);

  CoreOptions opts_;
  std::shared_ptr<BufferPool> pool_;
  std::unique_ptr<BufferCache> cache_;  // the engine thread's (or stopped caller's)
  std::vector<PortState> ports_;
  std::vector<PortId> active_ports_;
  void link_slices(uint32_t period_ms);
  void check_link(PortId p, PortState& ps);
  void watch(PortState& ps);  // PortState::watch_* from the backend's WatchKey
  void read_link_messages();
  size_t link_cursor_ = 0;      // link_slices' place in active_ports_
  uint32_t next_link_ms_ = 0;   // when the next slice is due
  LinkWatch link_watch_;        // the kernel's link messages (may be closed)
  std::string link_watch_why_;  // why it is closed, or watches this namespace only
  std::vector<LinkName> link_msgs_;  // interfaces the last read named
  std::vector<PortId> links_named_;  // ports a message named, to check (PortState::link_dirty)
  bool link_woke_ = false;      // the engine woke for a link message
  std::vector<PortId> dirty_ports_;
  // The sleep's epoll set (poll_add/poll_del), what one wait returned, the
  // ports it cannot cover, and the ports the last wake-up named.
  static constexpr uint64_t kWakerKey = ~uint64_t(0), kLinkWatchKey = ~uint64_t(0) - 1;
  int epfd_ = -1;
  std::vector<epoll_event> ready_;
  std::vector<PortId> unpolled_;
  std::vector<PortId> woken_;
  Waker waker_;

  std::unique_ptr<EngineCounterBlock> engine_ctr_;
  std::unique_ptr<PortCounterBlock[]> port_ctr_;
  std::unique_ptr<Observer> observer_;

  SpscRing<Event> events_;
  std::atomic<bool> notify_pending_{false};
  bool events_pushed_ = false;
  std::function<void()> notify_;

  uint32_t now_ms_ = 0;
};

// Inlined into the delivery loops: plain frames cost one alloc and a copy.
[[gnu::always_inline]] inline bool Core::copy_frame(const Pkt& p, Pkt* q) {
  if (pkt_has_meta(p)) [[unlikely]]
    return copy_frame_meta(p, q);
  BufferPool& pool = *pool_;
  uint32_t idx;
  if (!cache_->alloc(&idx)) [[unlikely]]
    return false;
  *q = Pkt{idx, pool.headroom(), p.len};
  std::memcpy(pool.frame(*q), pool.frame(p), p.len);
  return true;
}

}  // namespace vpc
