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
#include <thread>
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
  bool busy_poll = false;        // false: sleep in poll(2) when idle
  int cpu = -1;                  // pin the engine thread; -1: no pinning
  uint32_t burst = kMaxBurst;    // 1..256
  uint32_t event_ring = 65536;   // power of two
  uint32_t event_mask = kAllEvents;
  uint32_t command_queue = 1024;  // power of two
  uint32_t idle_poll_ms = 100;   // longest sleep; also the housekeeping period
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

  // Submits a command; done is called exactly once. Returns false (and calls
  // done with kClosed, or kLimitExceeded when the queue is full) if it could
  // not be queued.
  bool submit(std::unique_ptr<Command> cmd);
  // Submits and waits for the result (native tests and benchmarks).
  Result execute(std::unique_ptr<Command> cmd);

  // Creates the outside end of a pipe port for a CreatePort command. The
  // PipePeer stays valid after the port is deleted (it then accepts nothing).
  PipePair new_pipe(uint32_t ring_size) { return make_pipe(pool_, ring_size); }

  std::shared_ptr<BufferPool> pool() const { return pool_; }
  const EngineOptions& options() const { return opts_; }

  // Counter blocks (read with cnt_read()).
  const EngineCounterBlock& engine_counters() const { return *engine_ctr_; }
  const PortCounterBlock& port_counters(PortId p) const { return port_ctr_[p]; }
  const SwitchCounterBlock& switch_counters(SwitchId s) const { return switch_ctr_[s]; }

  // Event consumer side (one consumer thread).
  void set_notify(std::function<void()> fn) { notify_ = std::move(fn); }
  uint32_t drain_events(Event* out, uint32_t max);

 private:
  void run();
  uint32_t iterate(uint64_t now_ns);
  void iteration_idle();
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
  Result check_port_config(const PortConfig& pc) const;
  void apply_port_config(PortState& ps, const PortConfig& pc);

  // Hot path.
  void process(PortId in_port, Pkt* pkts, uint16_t n);
  bool learn(PortState& in, MemberId m, Mac src, Drop* why);
  void enqueue(PortId out, const Member& mem, Pkt p);
  void flood(SwitchState& sw, MemberId in_member, Pkt p, bool is_bcast);
  void flush_port(PortId p);
  void flush_tx();

  // Housekeeping.
  void housekeeping();
  void age_switch(SwitchId s, SwitchState& sw);
  void remove_entry_effects(SwitchState& sw, const FdbEntry& e);
  void emit(const Event& ev);
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
  std::vector<PortId> active_ports_;
  std::vector<PortId> dirty_ports_;
  std::vector<pollfd> pollfds_;

  std::unique_ptr<EngineCounterBlock> engine_ctr_;
  std::unique_ptr<PortCounterBlock[]> port_ctr_;
  std::unique_ptr<SwitchCounterBlock[]> switch_ctr_;

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
  bool sleep_armed_ = false;
};

}  // namespace vpc
