// The engine: one dataplane thread running the poll loop over every port.
//
// Threading contract
// - The engine thread owns every table (switches, ports, members, FDBs). No
//   other thread touches them while the engine runs.
// - Any thread submits commands through a lock-free queue; the engine applies
//   them between iterations and calls Command::done. While the engine is
//   stopped, submit() applies the command on the caller's thread instead, under
//   the lifecycle mutex, so there is always exactly one writer.
// - Counters live in blocks allocated once at construction and never moved, so
//   stats readers on any thread load them lock-free at any time.
// - Events leave through a single-consumer ring; `notify` is called (from the
//   engine thread) when the ring goes from drained to non-empty.
#pragma once

#include <poll.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/buffer_pool.h"
#include "core/command.h"
#include "core/counters.h"
#include "core/spsc_ring.h"
#include "core/state.h"
#include "ports/pipe.h"

namespace vpc {

struct EngineOptions {
  BufferPoolOptions pool;
  uint32_t max_ports = 1024;     // <= 65535
  uint32_t max_switches = 4096;
  uint32_t max_vteps = 4096;     // remote VTEPs (configured and learned)
  // VTEPs learned from traffic (switches with allow_unknown_peers) hold at
  // most this many of the max_vteps slots, so configured peers and static
  // remote MACs always have the rest. kAutoLearnedVteps: a quarter of max_vteps.
  static constexpr uint32_t kAutoLearnedVteps = 0xFFFFFFFFu;
  uint32_t max_learned_vteps = kAutoLearnedVteps;
  bool busy_poll = false;        // true: never sleep (spin on every core it has)
  // Adaptive polling (when !busy_poll): after the last frame, keep polling for
  // this long before sleeping in poll(2), so that a frame arriving within
  // the window is seen without a wake-up (see docs/design/engine.md). 0:
  // sleep as soon as the rings are empty. An idle engine sleeps either way.
  uint32_t idle_spin_us = 200;   // 0..100000
  int cpu = -1;                  // pin the engine thread; -1: no pinning
  uint32_t burst = kMaxBurst;    // 1..256
  uint32_t event_ring = 65536;   // power of two
  uint32_t event_mask = kAllEvents;
  uint32_t command_queue = 1024;  // power of two
  uint32_t idle_poll_ms = 100;   // longest sleep; also the housekeeping period
  // ICMP Fragmentation Needed / Packet Too Big answers per second (and burst),
  // for the whole engine; 0: never answer (the frames are still dropped and
  // counted). 100/s is what one busy path needs to learn its MTU, and small
  // enough that a flood of oversized frames cannot turn the switch into an
  // amplifier.
  uint32_t icmp_too_big_per_s = 100;
};

class Engine {
 public:
  // Throws std::invalid_argument (bad options) or std::system_error.
  explicit Engine(const EngineOptions& opts);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  void start();
  void stop();  // joins the thread; commands already queued are still applied
  bool running() const { return running_.load(std::memory_order_acquire); }
  // Runs one poll-loop iteration on the caller's thread while the engine is
  // stopped (deterministic tests, callgrind). Returns frames received; 0 and
  // no effect while the thread runs.
  uint32_t run_once();

  // Test seams (core/engine_seams.cc), for deterministic tests and the
  // fuzzers; none of them is on the hot path.
  // run_once() on a clock the caller controls: the iteration runs as if
  // `elapsed_ns` had passed since the engine was created, so aging and the
  // neighbour timers can be driven without waiting. From the first call on,
  // commands applied while stopped use the last time given, too.
  uint32_t run_once_at(uint64_t elapsed_ns);
  // Buffers the engine holds between iterations (staged tx frames, frames
  // waiting for a neighbour), not counting the free ones in its cache.
  uint32_t buffers_held() const;
  uint32_t buffers_cached() const { return cache_->cached(); }
  // Checks the tables' cross-references and counts (ports, members,
  // switches, FDBs, VTEPs, neighbours). Returns "" when they hold, else a
  // description of the first violation. Only while the engine is stopped.
  std::string check_invariants() const;

  // Submits a command; done is called exactly once. Returns false (and calls
  // done with kClosed, or kLimitExceeded when the queue is full) if it could
  // not be queued.
  bool submit(std::unique_ptr<Command> cmd);
  // Submits and waits for the result (native tests and benchmarks).
  Result execute(std::unique_ptr<Command> cmd);

  // Creates the outside end of a pipe port for a CreatePort command. The
  // PipePeer stays valid after the port is deleted (it then accepts nothing).
  PipePair new_pipe(uint32_t ring_size, const PipeOptions& o = {}) { return make_pipe(pool_, ring_size, o); }

  std::shared_ptr<BufferPool> pool() const { return pool_; }
  const EngineOptions& options() const { return opts_; }

  // Counter blocks (read with cnt_read()).
  const EngineCounterBlock& engine_counters() const { return *engine_ctr_; }
  const PortCounterBlock& port_counters(PortId p) const { return port_ctr_[p]; }
  const SwitchCounterBlock& switch_counters(SwitchId s) const { return switch_ctr_[s]; }
  const PeerCounterBlock& peer_counters(uint32_t v) const { return peer_ctr_[v]; }
  const UplinkCounterBlock& uplink_counters() const { return *uplink_ctr_; }

  // Event consumer side (one consumer thread).
  void set_notify(std::function<void()> fn) { notify_ = std::move(fn); }
  uint32_t drain_events(Event* out, uint32_t max);

 private:
  void run();
  uint32_t iterate(uint64_t now_ns);
  void iteration_idle(uint64_t now_ns);
  void apply_commands();
  void apply(Command& cmd);
  Result do_create_switch(Command& c);
  Result do_set_switch(Command& c);
  Result do_delete_switch(Command& c);
  Result do_create_port(Command& c);
  Result do_set_port(Command& c);
  Result do_delete_port(Command& c);
  Result do_add_static(Command& c);
  Result do_delete_static(Command& c);
  Result do_dump_fdb(Command& c);
  Result do_flush_fdb(Command& c);
  Result do_create_uplink(Command& c);
  Result do_delete_uplink(Command& c);
  Result do_add_peer(Command& c);
  Result do_delete_peer(Command& c);
  Result do_add_remote_mac(Command& c);
  Result do_dump_neighbors(Command& c);
  Result check_uplink_config(const UplinkConfig& u) const;
  Result insert_static(SwitchState& sw, Mac mac, MemberId mid, uint16_t flags = kFdbStatic);
  void release_port_slot(PortId pid);
  void activate_port_slot(PortId pid);
  PortId free_port_slot() const;
  Result check_port_config(const PortConfig& pc) const;
  void apply_port_config(PortState& ps, const PortConfig& pc);

  // Hot path (bridge/forward.cc, learn.cc).
  void process(PortId in_port, Pkt* pkts, uint16_t n);
  void switch_frames(PortCounterBlock* in_ctr, LearnSource* port_ls, Pkt* pkts, uint16_t n, MemberId* inm, Mac* src,
                     Mac* dst, uint16_t* dest);
  LearnSource& source_of(MemberId m) {
    const Member& mem = members_[m];
    return mem.remote() ? vteps_[mem.vtep].learn : ports_[mem.port].learn;
  }
  bool learn(LearnSource& ls, const std::vector<Mac>* locked, MemberId m, Mac src, Drop* why);
  void learn_over_evpn(SwitchState& sw, FdbEntry& e, LearnSource& ls, MemberId mid);
  bool evict_for(SwitchState& sw, SwitchId s, const LearnSource& ls);
  void enqueue(PortId out, const Member& mem, Pkt p, MemberId from);
  // Puts a frame on the port's staged queue (flushed once per iteration).
  void stage(PortId out, PortState& ps, Pkt p) {
    ps.txq[ps.txn++] = p;
    if (!ps.tx_dirty) [[unlikely]] mark_dirty(out);
    if (ps.txn == kTxQueueLen) [[unlikely]] flush_port(out);
  }
  [[gnu::noinline]] void mark_dirty(PortId out) {
    ports_[out].tx_dirty = true;
    dirty_ports_.push_back(out);
  }
  bool copy_frame(const Pkt& p, Pkt* q);
  [[gnu::noinline]] bool copy_frame_meta(const Pkt& p, Pkt* q);
  // Egress adaptation (core/egress.cc).
  [[gnu::noinline]] void egress_slow(PortId out, const Member& mem, Pkt p, MemberId from);
  void egress_offload(PortId out, PortState& ps, Pkt p, SwitchState* sw);
  template <class Emit>
  bool segment(Pkt p, const OffloadMeta& m, uint32_t l3_mtu, PortCounterBlock* pc, SwitchState* sw, Emit&& emit);
  bool to_regular(Pkt& p, PortCounterBlock* pc, SwitchState* sw);
  void answer_too_big(Pkt p, uint32_t l3_mtu, MemberId from);
  void deliver_to(MemberId m, Pkt p);
  void flood(SwitchState& sw, MemberId in_member, Pkt p, bool is_bcast);
  void flush_port(PortId p);
  uint16_t drop_too_big_for_egress(PortState& ps, uint16_t n);
  void flush_tx();
  void drop_frame(Pkt p, Drop why, PortCounterBlock* port, SwitchState* sw);
  void drop_frame_count(Drop why, PortCounterBlock* port, SwitchState* sw);

  // Overlay (overlay/encap.cc, overlay/decap.cc, underlay.cc).
  void process_uplink(Pkt* pkts, uint16_t n);
  void encap(const Member& mem, Pkt p, MemberId from);
  void encap_offload(const Member& mem, Pkt p, MemberId from, uint32_t inner_mtu);
  void build_outer(VtepState& v, const Neighbor& nb);
  void transmit_uplink(Pkt p);
  bool handle_arp(Pkt& p, uint8_t* f);
  int handle_ipv4_local(Pkt& p, uint8_t* f, uint16_t ihl);
  int handle_ipv6_local(Pkt& p, uint8_t* f);
  void neighbor_learn(const IpAddr& ip, Mac mac, bool solicited);
  uint32_t neighbor_for(const IpAddr& next_hop);
  void neighbor_request(Neighbor& nb);
  void neighbor_tick();
  void neighbor_flush_pending(Neighbor& nb);
  uint32_t vtep_find(const IpAddr& ip);
  uint32_t vtep_get(const IpAddr& ip);  // finds or creates; kNoVtep when full
  uint32_t vtep_learn(const IpAddr& ip);  // creates a learned VTEP; kNoVtep at the learned limit
  void vtep_configure(VtepState& v);  // a learned VTEP is now the operator's (peer, static MAC)
  const char* vtep_ip_refused(const IpAddr& ip) const;  // nullptr: may be a VTEP
  void vtep_route(VtepState& v);
  MemberId remote_member(SwitchId s, uint32_t vtep, bool create);
  void release_unreferenced_vteps();
  SwitchId switch_by_vni(uint32_t vni);

  // Housekeeping.
  void housekeeping();
  void age_switch(SwitchId s, SwitchState& sw);
  void remove_entry_effects(SwitchState& sw, const FdbEntry& e);
  void emit(const Event& ev);
  Event mac_event(EventType t, SwitchId sw, const Member& m, Mac mac) const;
  Event moved_event(const Member& now, const Member& old, Mac mac) const;
  void notify_if_needed();
  void rebuild_poll_set();
  void sleep_until_work();
  uint32_t now_ms() const { return now_ms_; }

  EngineOptions opts_;
  std::shared_ptr<BufferPool> pool_;
  std::unique_ptr<BufferCache> cache_;  // the engine thread's (or stopped caller's)

  std::vector<SwitchState> switches_;
  std::vector<PortState> ports_;
  std::vector<Member> members_;
  std::vector<VtepState> vteps_;
  std::vector<Neighbor> neighbors_;
  UplinkState uplink_;
  // VNI -> switch for decapsulation, with a one-entry cache in front.
  std::unordered_map<uint32_t, SwitchId> vni_map_;
  uint32_t last_vni_ = 0;
  SwitchId last_vni_sw_ = kNoId;
  uint32_t last_vtep_ = kNoVtep;
  uint32_t learned_vteps_ = 0;  // VTEPs in use with VtepState::learned_only
  struct IpHash {
    size_t operator()(const IpAddr& a) const {
      uint64_t x, y;
      std::memcpy(&x, a.b, 8);
      std::memcpy(&y, a.b + 8, 8);
      return size_t((x * 0x9E3779B97F4A7C15ull) ^ (y * 0xD6E8FEB86659FD93ull));
    }
  };
  std::unordered_map<IpAddr, uint32_t, IpHash> vtep_index_;
  std::vector<PortId> active_ports_;
  std::vector<PortId> dirty_ports_;
  std::vector<pollfd> pollfds_;

  std::unique_ptr<EngineCounterBlock> engine_ctr_;
  std::unique_ptr<PortCounterBlock[]> port_ctr_;
  std::unique_ptr<SwitchCounterBlock[]> switch_ctr_;
  std::unique_ptr<PeerCounterBlock[]> peer_ctr_;
  std::unique_ptr<UplinkCounterBlock> uplink_ctr_;

  MpmcQueue<Command*> cmdq_;
  SpscRing<Event> events_;
  std::atomic<bool> notify_pending_{false};
  bool events_pushed_ = false;
  std::function<void()> notify_;

  Waker waker_;
  std::mutex lifecycle_mu_;
  std::atomic<bool> running_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;

  Pkt rx_[kMaxBurst];
  uint64_t epoch_ns_ = 0;
  uint32_t now_ms_ = 0;
  uint32_t next_housekeeping_ms_ = 0;
  uint32_t idle_iters_ = 0;
  uint64_t last_work_ns_ = 0;  // start of the last iteration that moved frames
  uint64_t slept_ns_ = 0;      // time the current iteration spent in poll(2)
  uint64_t iter_max_ns_ = 0;   // longest iteration since housekeeping published it
  bool sleep_armed_ = false;
  bool manual_clock_ = false;   // run_once_at() was used
  uint64_t manual_now_ns_ = 0;
  // ICMP too-big token bucket, in thousandths of a token (core/egress.cc).
  uint64_t too_big_tokens_ = 0;  // starts full (constructor)
  uint32_t too_big_ms_ = 0;
};

}  // namespace vpc
