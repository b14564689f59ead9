// The engine: one dataplane thread running the poll loop over every port,
// and the three owners it drives (docs/design/engine.md):
//   core (core/core.h):        ports, tx staging, the buffer pool, events
//   bridge (bridge/bridge.h):  switches, members, the FDB, learning, forwarding
//   overlay (overlay/overlay.h): the uplink, VTEPs, neighbours, encap/decap
// Engine itself holds the lifecycle, the command queue and its dispatch, and
// the stage graph (process(): which owner's stage a burst goes through next).
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

#include "bridge/bridge.h"
#include "core/buffer_pool.h"
#include "core/command.h"
#include "core/core.h"
#include "core/counters.h"
#include "core/spsc_ring.h"
#include "overlay/overlay.h"
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
  // this long before sleeping (epoll_wait(2)), so that a frame arriving within
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
  // for each switch (one tenant's flood cannot use up another's); 0: never answer (the frames are still dropped and
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
  uint32_t buffers_cached() const { return core_.cache().cached(); }
  // Checks the tables' cross-references and counts (ports, members,
  // switches, FDBs, VTEPs, neighbours). Returns "" when they hold, else a
  // description of the first violation. Only while the engine is stopped.
  std::string check_invariants() const;
  // Whether the kernel path's BPF object came loaded with a command, from
  // its submitter's thread, rather than being loaded by the engine.
  bool kernel_path_preloaded() const { return bridge_.kpath_preloaded(); }
  // Ports the engine thread hooked to the kernel path itself (the others were
  // hooked by their submitters).
  uint32_t kernel_path_engine_hooks() const { return bridge_.kpath_engine_hooks(); }

  // Submits a command; done is called exactly once. Returns false (and calls
  // done with kClosed, or kLimitExceeded when the queue is full) if it could
  // not be queued.
  bool submit(std::unique_ptr<Command> cmd);
  // Submits and waits for the result (native tests and benchmarks).
  Result execute(std::unique_ptr<Command> cmd);

  // Creates the outside end of a pipe port for a CreatePort command. The
  // PipePeer stays valid after the port is deleted (it then accepts nothing).
  PipePair new_pipe(uint32_t ring_size, const PipeOptions& o = {}) { return make_pipe(core_.pool_ptr(), ring_size, o); }

  std::shared_ptr<BufferPool> pool() const { return core_.pool_ptr(); }
  // How the engine follows link changes (0 off, 1 its namespace, 2 every
  // namespace) and why not every namespace (core/core.h).
  uint32_t link_watch_mode() const { return core_.link_watch_mode(); }
  const std::string& link_watch_why() const { return core_.link_watch_why(); }
  const EngineOptions& options() const { return opts_; }

  // Counter blocks (read with cnt_read()).
  const EngineCounterBlock& engine_counters() const { return core_.engine_counters(); }
  const PortCounterBlock& port_counters(PortId p) const { return core_.port_counters(p); }
  const SwitchCounterBlock& switch_counters(SwitchId s) const { return bridge_.switch_counters(s); }
  const PeerCounterBlock& peer_counters(uint32_t v) const { return overlay_.peer_counters(v); }
  // Per switch and peer, and the peers' totals (overlay/switch_peer_counters.h).
  const SwitchPeerBlocks& switch_peer_counters() const { return overlay_.switch_peer_counters(); }
  std::vector<PeerSnapshot> peer_snapshot() const { return overlay_.peer_snapshot(); }
  const UplinkCounterBlock& uplink_counters() const { return overlay_.uplink_counters(); }

  // Event consumer side (one consumer thread).
  void set_notify(std::function<void()> fn) { core_.set_notify(std::move(fn)); }
  uint32_t drain_events(Event* out, uint32_t max) { return core_.drain_events(out, max); }

 private:
  // ---- the poll loop (core/engine.cc)
  void run();
  uint32_t iterate(uint64_t now_ns);
  void iteration_idle(uint64_t now_ns);
  void housekeeping();
  // The stage graph for one received burst (core/engine.cc).
  [[gnu::noinline]] void process(PortId in_port, Pkt* pkts, uint16_t n);
  [[gnu::noinline]] void flush_tx() { core_.flush_tx(); }

  // ---- commands (core/engine_commands.cc): the dispatch, and the commands
  // that change more than one owner's tables.
  void apply_commands();
  void apply(Command& cmd);
  // One handler per row of VPC_COMMAND_OPS (core/command.h).
#define VPC_COMMAND_HANDLER_DECL(e, op, handler) Result handler(Command& c);
  VPC_COMMAND_OPS(VPC_COMMAND_HANDLER_DECL)
#undef VPC_COMMAND_HANDLER_DECL
  Result do_observe(Command& c);  // capture and trace (core/engine_observe.cc)
  bool capture_carries(SwitchId s, PortId port, const uint8_t* frame, uint32_t len);

  EngineOptions opts_;
  // The owners. Declared in this order: the bridge and the overlay hold
  // references to the core and to each other; the overlay is destroyed first
  // (its pending frames go back to the core's cache).
  Core core_;
  Bridge bridge_;
  Overlay overlay_;

  MpmcQueue<Command*> cmdq_;
  std::mutex lifecycle_mu_;
  std::atomic<bool> running_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;

  Pkt rx_[kMaxBurst];
  uint64_t epoch_ns_ = 0;
  uint32_t next_housekeeping_ms_ = 0;
  uint32_t idle_iters_ = 0;
  uint64_t last_work_ns_ = 0;  // start of the last iteration that moved frames
  uint64_t slept_ns_ = 0;      // time the current iteration spent asleep (epoll_wait)
  uint64_t iter_max_ns_ = 0;   // longest iteration since housekeeping published it
  bool sleep_armed_ = false;
  bool quiet_wake_ = false;    // woke from a sleep and found no work since
  bool woken_look_ = false;    // ... and looks only at the ports the wake-up named
  bool manual_clock_ = false;   // run_once_at() was used
  uint64_t manual_now_ns_ = 0;
};

}  // namespace vpc
