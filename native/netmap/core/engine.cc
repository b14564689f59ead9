// Engine lifecycle, poll loop, command application and housekeeping.
// The per-packet stages live in bridge/ (classify, learn, forward) and overlay/.
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

const char* status_code(Status s) {
  switch (s) {
    case Status::kOk: return "OK";
    case Status::kInvalidArgument: return "INVALID_ARGUMENT";
    case Status::kNotFound: return "NOT_FOUND";
    case Status::kAlreadyExists: return "ALREADY_EXISTS";
    case Status::kLimitExceeded: return "LIMIT_EXCEEDED";
    case Status::kInUse: return "IN_USE";
    case Status::kClosed: return "CLOSED";
    case Status::kSystem: return "SYSTEM";
    case Status::kInternal: return "INTERNAL";
  }
  return "INTERNAL";
}

static uint64_t mono_ns() {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}

Engine::Engine(const EngineOptions& o)
    : opts_(o), cmdq_(o.command_queue), events_(o.event_ring) {
  if (o.max_ports < 1 || o.max_ports > 65535)
    throw std::invalid_argument("maxPorts: must be in 1..65535");
  if (o.max_switches < 1 || o.max_switches > (1u << 20))
    throw std::invalid_argument("maxSwitches: must be in 1..1048576");
  if (o.burst < 1 || o.burst > kMaxBurst) throw std::invalid_argument("burst: must be in 1..256");
  if (o.idle_poll_ms < 1 || o.idle_poll_ms > 1000)
    throw std::invalid_argument("idle_poll_ms: must be in 1..1000");
  if (o.idle_spin_us > 100000) throw std::invalid_argument("idleSpinUs: must be in 0..100000");
  if (o.icmp_too_big_per_s > 1000000) throw std::invalid_argument("icmpTooBigPerSecond: must be in 0..1000000");
  too_big_tokens_ = uint64_t(o.icmp_too_big_per_s) * 1000;
  pool_ = BufferPool::create(o.pool);
  cache_ = std::make_unique<BufferCache>(pool_);
  if (o.max_vteps < 1 || o.max_vteps > (1u << 20)) throw std::invalid_argument("maxVteps: must be in 1..1048576");
  if (opts_.max_learned_vteps == EngineOptions::kAutoLearnedVteps) opts_.max_learned_vteps = o.max_vteps / 4;
  if (opts_.max_learned_vteps > o.max_vteps)
    throw std::invalid_argument("maxLearnedVteps: must be in 0..maxVteps");
  switches_.resize(o.max_switches);
  ports_.resize(o.max_ports);
  vteps_.resize(o.max_vteps);
  members_.reserve(1024);
  engine_ctr_ = std::make_unique<EngineCounterBlock>();
  port_ctr_.reset(new PortCounterBlock[o.max_ports]());
  switch_ctr_.reset(new SwitchCounterBlock[o.max_switches]());
  peer_ctr_.reset(new PeerCounterBlock[o.max_vteps]());
  uplink_ctr_ = std::make_unique<UplinkCounterBlock>();
  uplink_.counters = uplink_ctr_.get();
  for (uint32_t i = 0; i < o.max_ports; ++i) ports_[i].counters = &port_ctr_[i];
  for (uint32_t i = 0; i < o.max_switches; ++i) switches_[i].counters = &switch_ctr_[i];
  waker_.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (waker_.fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  epoch_ns_ = mono_ns();
  rebuild_poll_set();
}

Engine::~Engine() {
  stop();
  // Fail whatever is still queued, then release every port's buffers.
  Command* c;
  while (cmdq_.pop(&c)) {
    std::unique_ptr<Command> owned(c);
    if (owned->done) owned->done(Result::error(Status::kClosed, "dataplane closed"));
  }
  for (Neighbor& nb : neighbors_)
    for (Neighbor::Pending& q : nb.pending) cache_->free(q.pkt.buf);
  neighbors_.clear();
  for (PortId p = 0; p < ports_.size(); ++p) {
    PortState& ps = ports_[p];
    if (!ps.in_use) continue;
    for (uint16_t i = 0; i < ps.txn; ++i) cache_->free(ps.txq[i].buf);
    ps.txn = 0;
    ps.port->detach();
    ps.port.reset();
  }
  cache_.reset();
  if (waker_.fd >= 0) close(waker_.fd);
}

// ---------------------------------------------------------------- lifecycle

void Engine::start() {
  std::lock_guard<std::mutex> g(lifecycle_mu_);
  if (running_.load()) return;
  stop_.store(false);
  running_.store(true, std::memory_order_release);
  thread_ = std::thread([this] { run(); });
}

void Engine::stop() {
  std::lock_guard<std::mutex> g(lifecycle_mu_);
  if (!running_.load()) return;
  stop_.store(true);
  waker_.wake();
  thread_.join();
  running_.store(false, std::memory_order_release);
  // Commands that raced with stop are applied here, on this thread.
  apply_commands();
  flush_tx();
  notify_if_needed();
}

bool Engine::submit(std::unique_ptr<Command> cmd) {
  // The mutex only orders submitters against start()/stop() (so no command
  // can slip into the queue after stop() drained it); the engine itself never
  // takes it, and reads the queue lock-free. It is uncontended in practice:
  // commands come from the Node main thread.
  std::unique_lock<std::mutex> g(lifecycle_mu_);
  if (!running_.load(std::memory_order_acquire)) {
    now_ms_ = uint32_t(((manual_clock_ ? manual_now_ns_ : mono_ns()) - epoch_ns_) / 1000000);
    apply(*cmd);
    engine_ctr_->add(EngineCounter::commands, 1);
    notify_if_needed();
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
  if (waker_.sleeping.load(std::memory_order_seq_cst)) waker_.wake();
  return true;
}

Result Engine::execute(std::unique_ptr<Command> cmd) {
  auto prom = std::make_shared<std::promise<Result>>();
  std::future<Result> fut = prom->get_future();
  cmd->done = [prom](Result&& r) { prom->set_value(std::move(r)); };
  submit(std::move(cmd));
  return fut.get();
}

uint32_t Engine::drain_events(Event* out, uint32_t max) {
  // Clear first: an event pushed after this store re-arms the notification.
  notify_pending_.store(false, std::memory_order_seq_cst);
  return events_.pop(out, max);
}

void Engine::emit(const Event& ev) {
  if (!(opts_.event_mask & event_bit(ev.type))) return;
  if (events_.push(&ev, 1) == 1) {
    engine_ctr_->add(EngineCounter::events, 1);
    events_pushed_ = true;
  } else {
    engine_ctr_->add(EngineCounter::events_dropped, 1);
  }
}

void Engine::notify_if_needed() {
  if (!events_pushed_) return;
  events_pushed_ = false;
  if (notify_ && !notify_pending_.exchange(true, std::memory_order_seq_cst)) notify_();
}

// ---------------------------------------------------------------- poll loop

// One pass over everything: commands, every port's rx, the tx flush, and
// housekeeping when due. `now_ns` is read once per iteration by the caller.
uint32_t Engine::iterate(uint64_t now_ns) {
  now_ms_ = uint32_t((now_ns - epoch_ns_) / 1000000);
  if (!cmdq_.maybe_empty()) apply_commands();
  EngineCounterBlock& ec = *engine_ctr_;
  const uint16_t burst = uint16_t(opts_.burst);
  uint32_t work = 0, batches = 0;
  for (size_t k = 0; k < active_ports_.size(); ++k) {
    PortId pid = active_ports_[k];
    uint16_t n = ports_[pid].port->rx_burst(rx_, burst);
    if (n) {
      process(pid, rx_, n);
      work += n;
      ++batches;
    }
  }
  flush_tx();
  if (int32_t(now_ms_ - next_housekeeping_ms_) >= 0) housekeeping();
  notify_if_needed();
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
  engine_ctr_->add(work ? EngineCounter::busy_ns : EngineCounter::idle_ns, d);
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
      last_work_ns_ = t;
      if (sleep_armed_) {
        sleep_armed_ = false;
        waker_.sleeping.store(false, std::memory_order_relaxed);
      }
    } else {
      iteration_idle(t);
    }
    uint64_t t2 = mono_ns();
    engine_ctr_->add(work ? EngineCounter::busy_ns : EngineCounter::idle_ns, t2 - t);
    // The iteration's own cost (a stall shows here), without its sleep.
    uint64_t own = t2 - t - slept_ns_;
    slept_ns_ = 0;
    if (own > iter_max_ns_) iter_max_ns_ = own;
    t = t2;
  }
  waker_.sleeping.store(false);
  cache_->flush();
}

void Engine::iteration_idle(uint64_t now_ns) {
  if (opts_.busy_poll || ++idle_iters_ < 32) return;
  // Within the spin window after the last frame, keep looking: a frame that
  // arrives now costs no wake-up (the poll(2) path adds tens of microseconds
  // and a scheduler round trip to every frame of a light load). The pause
  // lets a hyper-threaded sibling run while we spin.
  if (now_ns - last_work_ns_ < uint64_t(opts_.idle_spin_us) * 1000) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    return;
  }
  if (!sleep_armed_) {
    // Announce the sleep, then take one more full look at the rings and the
    // command queue (the next iteration) before really sleeping.
    waker_.sleeping.store(true, std::memory_order_seq_cst);
    // Orders the store before the next iteration's (acquire/relaxed) looks at
    // the rings and the queue; producers fence between publish and check.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    sleep_armed_ = true;
    return;
  }
  sleep_until_work();
  sleep_armed_ = false;
  waker_.sleeping.store(false, std::memory_order_relaxed);
  idle_iters_ = 0;
  engine_ctr_->add(EngineCounter::sleeps, 1);
}

void Engine::rebuild_poll_set() {
  pollfds_.clear();
  pollfds_.push_back({waker_.fd, POLLIN, 0});
  for (PortId p : active_ports_) {
    int fd = ports_[p].port->poll_fd();
    if (fd >= 0) pollfds_.push_back({fd, POLLIN, 0});
  }
}

void Engine::sleep_until_work() {
  int32_t until_hk = int32_t(next_housekeeping_ms_ - now_ms_);
  int timeout = std::clamp<int32_t>(until_hk, 1, int32_t(opts_.idle_poll_ms));
  uint64_t t0 = mono_ns();
  int r = poll(pollfds_.data(), pollfds_.size(), timeout);
  slept_ns_ += mono_ns() - t0;
  if (r > 0 && (pollfds_[0].revents & POLLIN)) {
    uint64_t v;
    ssize_t n = read(waker_.fd, &v, sizeof(v));
    (void)n;
  }
}

void Engine::apply_commands() {
  Command* c;
  // Bounded so that a command storm cannot starve the ports.
  for (int i = 0; i < 64 && cmdq_.pop(&c); ++i) {
    std::unique_ptr<Command> owned(c);
    apply(*owned);
    engine_ctr_->add(EngineCounter::commands, 1);
  }
}

// Whether the egress interface takes a frame of this length (Port::
// tx_frame_limit(): an 802.1Q-tagged frame may be 4 bytes longer). A GSO
// super-frame staged here is one the port takes as it is (egress adaptation,
// core/egress.cc): the kernel checks its segments, not its length.
static inline bool fits_egress(const BufferPool& pool, const Pkt& p, uint32_t limit) {
  if (p.len <= limit) return true;
  if (pkt_has_meta(p) && pool.meta(p.buf).gso()) return true;
  return p.len <= limit + kVlanTagLen && load_be16(pool.frame(p) + 12) == kEtherTypeVlan;
}

// Drops the staged frames the egress interface would refuse, keeping the
// order of the rest. Returns how many remain.
uint16_t Engine::drop_too_big_for_egress(PortState& ps, uint16_t n) {
  uint16_t k = 0;
  for (uint16_t i = 0; i < n; ++i) {
    if (fits_egress(*pool_, ps.txq[i], ps.tx_limit)) [[likely]] {
      ps.txq[k++] = ps.txq[i];
    } else {
      ps.counters->drop_tx(Drop::egress_too_big);
      cache_->free(ps.txq[i].buf);
    }
  }
  return k;
}

void Engine::flush_port(PortId p) {
  PortState& ps = ports_[p];
  uint16_t n = ps.txn;
  if (!n) return;
  if (ps.tx_limit) [[unlikely]] {
    n = drop_too_big_for_egress(ps, n);
    ps.txn = n;
    if (!n) return;
  }
  PortCounterBlock& pc = *ps.counters;
  uint16_t sent = 0;
  if (ps.up) {
    sent = ps.port->tx_burst(ps.txq, n);
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < sent; ++i) bytes += ps.txq[i].len;
    pc.add(PortCounter::tx_packets, sent);
    pc.add(PortCounter::tx_bytes, bytes);
  }
  if (sent < n) {
    pc.drop_tx(ps.up ? Drop::tx_ring_full : Drop::link_down, n - sent);
    for (uint16_t i = sent; i < n; ++i) cache_->free(ps.txq[i].buf);
  }
  ps.txn = 0;
}

void Engine::flush_tx() {
  for (PortId p : dirty_ports_) {
    flush_port(p);
    ports_[p].tx_dirty = false;
  }
  dirty_ports_.clear();
}

// ---------------------------------------------------------------- housekeeping

void Engine::housekeeping() {
  next_housekeeping_ms_ = now_ms_ + opts_.idle_poll_ms;
  for (SwitchId s = 0; s < switches_.size(); ++s)
    if (switches_[s].in_use) age_switch(s, switches_[s]);
  if (uplink_.active) neighbor_tick();
  release_unreferenced_vteps();
  for (PortId p : active_ports_) {
    PortState& ps = ports_[p];
    bool up = ps.port->link_state() == LinkState::kUp;
    ps.tx_limit = ps.port->tx_frame_limit();
    if (up == ps.up) continue;
    ps.up = up;
    ps.counters->add(PortCounter::link_changes, 1);
    ps.counters->set(PortCounter::link_up, up ? 1 : 0);
    Event ev{};
    ev.type = EventType::kLink;
    ev.up = up;
    ev.sw = kNoId;
    ev.port = p;
    ev.old_port = kNoId;
    emit(ev);
  }
  engine_ctr_->set(EngineCounter::buffers_free, pool_->available());
  engine_ctr_->set(EngineCounter::large_buffers_free, pool_->large_available());
  engine_ctr_->set(EngineCounter::iteration_max_ns, iter_max_ns_);
  iter_max_ns_ = 0;
}

void Engine::remove_entry_effects(SwitchState& sw, const FdbEntry& e) {
  if (e.flags & kFdbStatic) {
    sw.static_entries--;
    const Member& m = members_[e.member];
    if (m.remote() && vteps_[m.vtep].statics) vteps_[m.vtep].statics--;
  } else if (e.member < members_.size()) {
    LearnSource& ls = source_of(e.member);
    if (ls.learned) ls.learned--;
    if (ls.learned_gauge) cnt_set(*ls.learned_gauge, ls.learned);
    if (ls.mac_limit == 0 || ls.learned < ls.mac_limit) ls.limit_reported = false;
  }
  if (sw.fdb.size() <= sw.cfg.mac_limit) sw.full_reported = false;
  sw.generation++;
}

void Engine::age_switch(SwitchId s, SwitchState& sw) {
  if (sw.fdb.size() == sw.static_entries) return;
  // Sweep the whole table once per `period`: a tenth of the aging time,
  // between one housekeeping tick and ten seconds. A stale entry therefore
  // disappears at most aging + period + one tick after its last frame.
  uint32_t period = std::clamp<uint32_t>(sw.cfg.aging_ms / 10, opts_.idle_poll_ms, 10000);
  uint64_t budget = uint64_t(sw.fdb.capacity()) * opts_.idle_poll_ms / period + 1;
  uint32_t aged = sw.fdb.age(now_ms_, sw.cfg.aging_ms, uint32_t(std::min<uint64_t>(budget, sw.fdb.capacity())),
                             [&](const FdbEntry& e) {
                               emit(mac_event(EventType::kAged, s, members_[e.member], e.mac));
                               remove_entry_effects(sw, e);
                             });
  engine_ctr_->add(EngineCounter::aging_scanned, std::min<uint64_t>(budget, sw.fdb.capacity()));
  if (aged) {
    sw.counters->add(SwitchCounter::aged, aged);
    sw.counters->set(SwitchCounter::fdb_entries, sw.fdb.size());
    if (sw.fdb.size() < sw.cfg.mac_limit) sw.full_reported = false;
  }
}

}  // namespace vpc
