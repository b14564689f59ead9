// Engine lifecycle, the poll loop, housekeeping and the stage graph. The
// stages themselves belong to their owners: bridge/ (classify, learn,
// forward), overlay/ (decap, encap, the underlay responder), core/ (tx
// staging, egress adaptation).
#include "core/engine.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <future>
#include <stdexcept>
#include <system_error>

namespace vpc {

static uint64_t mono_ns() {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}

// Checks the options before any owner is built from them.
static EngineOptions checked(const EngineOptions& o) {
  if (o.max_ports < 1 || o.max_ports > 65535)
    throw std::invalid_argument("maxPorts: must be in 1..65535");
  if (o.max_switches < 1 || o.max_switches > (1u << 20))
    throw std::invalid_argument("maxSwitches: must be in 1..1048576");
  if (o.burst < 1 || o.burst > kMaxBurst) throw std::invalid_argument("burst: must be in 1..256");
  if (o.idle_poll_ms < 1 || o.idle_poll_ms > 1000)
    throw std::invalid_argument("idle_poll_ms: must be in 1..1000");
  if (o.idle_spin_us > 100000) throw std::invalid_argument("idleSpinUs: must be in 0..100000");
  if (o.icmp_too_big_per_s > 1000000) throw std::invalid_argument("icmpTooBigPerSecond: must be in 0..1000000");
  if (o.max_vteps < 1 || o.max_vteps > (1u << 20)) throw std::invalid_argument("maxVteps: must be in 1..1048576");
  EngineOptions r = o;
  if (r.max_learned_vteps == EngineOptions::kAutoLearnedVteps) r.max_learned_vteps = o.max_vteps / 4;
  if (r.max_learned_vteps > o.max_vteps)
    throw std::invalid_argument("maxLearnedVteps: must be in 0..maxVteps");
  return r;
}

static CoreOptions core_options(const EngineOptions& o) {
  CoreOptions c;
  c.pool = o.pool;
  c.max_ports = o.max_ports;
  c.event_ring = o.event_ring;
  c.event_mask = o.event_mask;
  c.icmp_too_big_per_s = o.icmp_too_big_per_s;
  c.housekeeping_ms = o.idle_poll_ms;
  return c;
}

Engine::Engine(const EngineOptions& o)
    : opts_(checked(o)),
      core_(core_options(opts_)),
      bridge_(core_, overlay_, opts_.max_switches, opts_.max_vteps),
      overlay_(core_, bridge_, opts_.max_vteps, opts_.max_learned_vteps),
      cmdq_(o.command_queue) {
  epoch_ns_ = mono_ns();
  core_.observer().set_switch_match(
      [this](SwitchId s, PortId p, const uint8_t* f, uint32_t len) { return capture_carries(s, p, f, len); });
}

Engine::~Engine() {
  stop();
  // Fail whatever is still queued; the owners release their buffers as they
  // go (overlay, bridge, core: the reverse of their construction).
  Command* c;
  while (cmdq_.pop(&c)) {
    std::unique_ptr<Command> owned(c);
    if (owned->done) owned->done(Result::error(Status::kClosed, "dataplane closed"));
  }
}

// ---------------------------------------------------------------- lifecycle

void Engine::start() {
  std::lock_guard<std::mutex> g(lifecycle_mu_);
  if (running_.load()) return;
  stop_.store(false);
  woken_look_ = false;
  running_.store(true, std::memory_order_release);
  thread_ = std::thread([this] { run(); });
}

void Engine::stop() {
  std::lock_guard<std::mutex> g(lifecycle_mu_);
  if (!running_.load()) return;
  stop_.store(true);
  core_.waker().wake();
  thread_.join();
  running_.store(false, std::memory_order_release);
  // Commands that raced with stop are applied here, on this thread.
  apply_commands();
  core_.flush_tx();
  core_.notify_if_needed();
}

bool Engine::submit(std::unique_ptr<Command> cmd) {
  // The kernel path's BPF object is loaded here, on the submitter's thread,
  // by the first command that wants it (tens of ms in the verifier).
  if (cmd->op == CmdOp::kCreatePort || cmd->op == CmdOp::kCreateUplink) bridge_.kpath_preload(*cmd);
  // The mutex only orders submitters against start()/stop() (so no command
  // can slip into the queue after stop() drained it); the engine itself never
  // takes it, and reads the queue lock-free. It is uncontended in practice:
  // commands come from the addon's one submitter thread.
  std::unique_lock<std::mutex> g(lifecycle_mu_);
  if (!running_.load(std::memory_order_acquire)) {
    core_.set_now_ms(uint32_t(((manual_clock_ ? manual_now_ns_ : mono_ns()) - epoch_ns_) / 1000000));
    apply(*cmd);
    core_.engine_counters().add(EngineCounter::commands, 1);
    core_.notify_if_needed();
    return true;
  }
  Command* raw = cmd.release();
  if (!cmdq_.push(raw)) {
    std::unique_ptr<Command> back(raw);
    if (back->done) back->done(Result::error(Status::kLimitExceeded, "command queue full, retry"));
    return false;
  }
  g.unlock();
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (core_.waker().sleeping.load(std::memory_order_seq_cst)) core_.waker().wake();
  return true;
}

Result Engine::execute(std::unique_ptr<Command> cmd) {
  auto prom = std::make_shared<std::promise<Result>>();
  std::future<Result> fut = prom->get_future();
  cmd->done = [prom](Result&& r) { prom->set_value(std::move(r)); };
  submit(std::move(cmd));
  return fut.get();
}

// ---------------------------------------------------------------- poll loop

// One pass over everything: commands, every port's rx, the tx flush, and
// housekeeping when due. `now_ns` is read once per iteration by the caller.
uint32_t Engine::iterate(uint64_t now_ns) {
  const uint32_t now_ms = uint32_t((now_ns - epoch_ns_) / 1000000);
  core_.set_now_ms(now_ms);
  if (!cmdq_.maybe_empty()) apply_commands();
  EngineCounterBlock& ec = core_.engine_counters();
  // After a wake-up that found nothing yet, only the ports it named (their
  // descriptors were ready, or they have none): a descriptor that becomes
  // ready later ends the next sleep at once. Otherwise every port.
  const std::vector<PortId>& active = woken_look_ ? core_.woken_ports() : core_.active_ports();
  const uint16_t burst = uint16_t(opts_.burst);
  uint32_t work = 0, batches = 0;
  for (size_t k = 0; k < active.size(); ++k) {
    PortId pid = active[k];
    uint16_t n = core_.port(pid).port->rx_burst(rx_, burst);
    if (n) {
      if (core_.observer().on()) [[unlikely]] core_.observer().rx(pid, rx_, n);
      process(pid, rx_, n);
      work += n;
      ++batches;
    }
  }
  flush_tx();
  if (core_.observer().tracing()) [[unlikely]] core_.observer().end_iteration();
  core_.tick_links(opts_.idle_poll_ms);
  if (int32_t(now_ms - next_housekeeping_ms_) >= 0) housekeeping();
  // After housekeeping, so that what its aging removed is void in the kernel
  // before the engine sleeps.
  if (bridge_.kpath_active()) [[unlikely]] bridge_.kpath_sync();
  core_.notify_if_needed();
  ec.add(EngineCounter::iterations, 1);
  if (work) {
    ec.add(EngineCounter::packets, work);
    ec.add(EngineCounter::batches, batches);
    ec.add(EngineCounter::busy_iterations, 1);
  }
  return work;
}

uint32_t Engine::run_once() {
  std::lock_guard<std::mutex> g(lifecycle_mu_);
  if (running_.load()) return 0;
  uint64_t t0 = mono_ns();
  uint32_t work = iterate(t0);
  uint64_t d = mono_ns() - t0;
  core_.engine_counters().add(work ? EngineCounter::busy_ns : EngineCounter::idle_ns, d);
  if (d > iter_max_ns_) iter_max_ns_ = d;
  return work;
}

void Engine::run() {
  if (opts_.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(opts_.cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);  // best effort
  }
  pthread_setname_np(pthread_self(), "vpc-engine");
  // One clock read per iteration: it stamps this iteration and closes the
  // previous one, whose time goes to busy or idle by whether it moved frames.
  uint64_t t = mono_ns();
  while (!stop_.load(std::memory_order_relaxed)) {
    uint32_t work = iterate(t);
    if (work) {
      idle_iters_ = 0;
      quiet_wake_ = false;
      woken_look_ = false;
      last_work_ns_ = t;
      if (sleep_armed_) {
        sleep_armed_ = false;
        core_.waker().sleeping.store(false, std::memory_order_relaxed);
      }
    } else {
      iteration_idle(t);
    }
    uint64_t t2 = mono_ns();
    core_.engine_counters().add(work ? EngineCounter::busy_ns : EngineCounter::idle_ns, t2 - t);
    // The iteration's own cost (a stall shows here), without its sleep.
    uint64_t own = t2 - t - slept_ns_;
    slept_ns_ = 0;
    if (own > iter_max_ns_) iter_max_ns_ = own;
    t = t2;
  }
  core_.waker().sleeping.store(false);
  core_.cache().flush();
}

void Engine::iteration_idle(uint64_t now_ns) {
  if (opts_.busy_poll) return;
  // A few idle iterations before the spin window's test, unless the engine
  // woke and found nothing (a housekeeping tick): then it sleeps again after
  // one look and the look that arms the sleep, both at only the ports the
  // wake-up named (woken_look_). An idle switch with 300 taps spent 1% of a
  // core on 33 iterations per tick, each at every port.
  if (!quiet_wake_ && ++idle_iters_ < 32) return;
  // Within the spin window after the last frame, keep looking: a frame that
  // arrives now costs no wake-up (the poll(2) path adds tens of microseconds
  // and a scheduler round trip to every frame of a light load). The pause
  // lets a hyper-threaded sibling run while we spin; the yield lets a thread
  // that shares our CPU run (another engine on the same core, the next hop
  // of the frame we just sent): without it that thread waited for the end of
  // our window or our time slice, and two engines pinned to one CPU
  // answered each other's frames hundreds of microseconds late. With nothing
  // else runnable it returns at once.
  if (now_ns - last_work_ns_ < uint64_t(opts_.idle_spin_us) * 1000) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    sched_yield();
    return;
  }
  if (!sleep_armed_) {
    // Announce the sleep, then take one more look at the rings and the
    // command queue (the next iteration) before really sleeping: at every
    // port after traffic; after a quiet wake-up at the ports it named (the
    // others' descriptors were quiet, and one that is ready now ends the
    // sleep at once).
    core_.waker().sleeping.store(true, std::memory_order_seq_cst);
    // Orders the store before the next iteration's (acquire/relaxed) looks at
    // the rings and the queue; producers fence between publish and check.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    sleep_armed_ = true;
    return;
  }
  const int32_t until_hk = int32_t(next_housekeeping_ms_ - core_.now_ms());
  const uint64_t s0 = mono_ns();
  woken_look_ = core_.sleep_until_work(std::clamp<int32_t>(until_hk, 1, int32_t(opts_.idle_poll_ms)));
  slept_ns_ += mono_ns() - s0;
  sleep_armed_ = false;
  core_.waker().sleeping.store(false, std::memory_order_relaxed);
  idle_iters_ = 0;
  quiet_wake_ = true;
  core_.engine_counters().add(EngineCounter::sleeps, 1);
}

// ---------------------------------------------------------------- housekeeping

void Engine::housekeeping() {
  next_housekeeping_ms_ = core_.now_ms() + opts_.idle_poll_ms;
  bridge_.age_all();
  overlay_.tick();
  core_.pool_gauges();
  bridge_.kpath_tick();
  core_.engine_counters().set(EngineCounter::iteration_max_ns, iter_max_ns_);
  iter_max_ns_ = 0;
}

// ---------------------------------------------------------------- the stage graph

// One received burst, top to bottom (docs/design/engine.md, "The stage
// graph"):
//
//   rx (core) --local port--> classify (bridge) --.
//            \                                    +--> learn, lookup, deliver (bridge)
//             `--uplink--> outer checks, decap ---'        |            |
//                (overlay; ARP/ND/echo answers            local      remote
//                 and host traffic end here)                |            |
//                                                           |     encap (overlay)
//                                                           v            v
//                                                      tx staging (core), flushed
//                                                      once per iteration (flush_tx)
//
// Each stage fills the Burst the next one reads; none calls back into the
// one before it.
void Engine::process(PortId pid, Pkt* pkts, uint16_t n) {
  Burst b;
  PortState& in = core_.port(pid);
  if (in.is_uplink) [[unlikely]] {
    overlay_.decap(pkts, n, b);
    if (b.n) bridge_.forward(b, in.counters, nullptr);
    return;
  }
  bridge_.classify(pid, pkts, n, b);
  bridge_.forward(b, in.counters, bridge_.port_learn(pid));
}

}  // namespace vpc
