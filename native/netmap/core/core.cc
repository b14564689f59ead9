// The core owner: port slots, tx staging and flush, events, the poll set.
// Egress adaptation is core/egress.cc; the loop that drives all of it is
// core/engine.cc.
#include "core/core.h"
#include "core/limits.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "proto/ethernet.h"

namespace vpc {

Core::Core(const CoreOptions& o) : opts_(o), events_(o.event_ring) {
  pool_ = BufferPool::create(o.pool);
  cache_ = std::make_unique<BufferCache>(pool_);
  ports_.resize(o.max_ports);
  engine_ctr_ = std::make_unique<EngineCounterBlock>();
  observer_ = std::make_unique<Observer>(*pool_, *engine_ctr_);
  port_ctr_.reset(new PortCounterBlock[o.max_ports]());
  for (uint32_t i = 0; i < o.max_ports; ++i) ports_[i].counters = &port_ctr_[i];
  waker_.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (waker_.fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  // Without it (netlink refused) every port is polled, as before the watch.
  if (link_watch_.open(&link_watch_why_)) link_watch_why_ = link_watch_.all_namespaces_why();
  engine_ctr_->set(EngineCounter::link_watch, link_watch_mode());
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakerKey;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, waker_.fd, &ev) < 0)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl (waker)");
  if (link_watch_.fd() >= 0) {
    ev.data.u64 = kLinkWatchKey;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, link_watch_.fd(), &ev);
  }
  ready_.resize(2);
}

Core::~Core() {
  // Release every port's buffers, then the cache.
  for (PortId p = 0; p < ports_.size(); ++p) {
    PortState& ps = ports_[p];
    if (!ps.in_use) continue;
    for (uint16_t i = 0; i < ps.txn; ++i) cache_->free(ps.txq[i].buf);
    ps.txn = 0;
    if (ps.tx_counted_by_port) ps.port->count_tx(nullptr);
    ps.port->detach();
    ps.port.reset();
  }
  cache_.reset();
  if (waker_.fd >= 0) close(waker_.fd);
  if (epfd_ >= 0) close(epfd_);
}

bool Core::copy_frame_meta(const Pkt& p, Pkt* q) {
  BufferPool& pool = *pool_;
  uint32_t idx;
  const bool large = p.len > pool.max_frame();
  if (!(large ? cache_->alloc_large(&idx) : cache_->alloc(&idx))) return false;
  *q = Pkt{idx, pool.headroom(), p.len};
  std::memcpy(pool.frame(*q), pool.frame(p), p.len);
  const OffloadMeta& m = pool.meta(p.buf);
  // A small copy of a frame with nothing pending is a plain frame again.
  if (large || m.flags || m.gso()) {
    pool.meta(idx) = m;
    pkt_set_meta(*q, true);
  }
  return true;
}

// ---------------------------------------------------------------- port slots

static std::string mac_str(Mac m) {
  char b[18];
  mac_format(m, b);
  return b;
}

Result Core::check_port_config(const PortConfig& pc, const Port& backend) const {
  const bool large = pool_->max_large_frame() > 0 && backend.rx_large_frames();
  const int64_t max_mtu =
      std::min<int64_t>(limit::mtu.max, (large ? pool_->max_large_frame() : pool_->max_frame()) - kEthHeaderLen - kVlanTagLen);
  if (pc.mtu < limit::mtu.min || pc.mtu > max_mtu)
    return Result::error(Status::kInvalidArgument,
                         "mtu: must be in " + std::to_string(limit::mtu.min) + ".." + std::to_string(max_mtu) +
                             (large ? "" : pool_->max_large_frame() ? std::string(" for this buffer size (a ") + backend.kind() +
                                                                          " port receives each frame into one buffer)"
                                                                    : " for this buffer size (no large buffers)"));
  if (pc.locked_macs.size() > size_t(limit::lockedMacs.max))
    return Result::error(Status::kInvalidArgument, "lockedMacs: at most " + std::to_string(limit::lockedMacs.max) + " addresses");
  if (!limit::portMacLimit.contains(pc.mac_limit))
    return Result::error(Status::kInvalidArgument, range_error(limit::portMacLimit));
  for (Mac m : pc.locked_macs)
    if (mac_is_multicast(m) || m == 0)
      return Result::error(Status::kInvalidArgument, "lockedMacs: " + mac_str(m) + " is not a unicast address");
  return {};
}

void Core::set_port_config(PortState& ps, const PortConfig& pc) {
  ps.cfg = pc;
  std::sort(ps.cfg.locked_macs.begin(), ps.cfg.locked_macs.end());
  ps.max_len = pc.mtu + kEthHeaderLen;
  if (ps.port) ps.port->set_mtu(pc.mtu);
}

bool Core::has_free_port_slot() const {
  for (const PortState& ps : ports_)
    if (!ps.in_use) return true;
  return false;
}

PortId Core::open_port(std::unique_ptr<Port> backend, const PortConfig& pc, bool is_uplink) {
  PortId pid = kNoId;
  for (PortId p = 0; p < ports_.size(); ++p)
    if (!ports_[p].in_use) {
      pid = p;
      break;
    }
  if (pid == kNoId) return kNoId;
  PortState& ps = ports_[pid];
  ps.port = std::move(backend);
  set_port_config(ps, pc);
  ps.is_uplink = is_uplink;
  ps.txn = 0;
  ps.tx_dirty = false;
  ps.up = ps.port->link_state() == LinkState::kUp;
  ps.tx_limit = ps.port->tx_frame_limit();
  ps.link_checked_ms = now_ms_;
  ps.link_dirty = false;
  PortCounterBlock& pcb = *ps.counters;
  std::fill(std::begin(pcb.c), std::end(pcb.c), 0);
  std::fill(std::begin(pcb.drops), std::end(pcb.drops), 0);
  pcb.set(PortCounter::link_up, ps.up ? 1 : 0);
  cnt_set(pcb.generation, pcb.generation + 1);
  cnt_set(pcb.in_use, 1);
  ps.in_use = true;
  ps.tx_counted_by_port = ps.port->count_tx(&pcb);
  ps.port->attach(&waker_);
  ps.tx_offloads = ps.port->tx_offloads();
  ps.tx_max_frame = ps.port->tx_max_frame();
  ps.tx_large = ps.port->tx_large_buffers();
  watch(ps);
  active_ports_.push_back(pid);
  poll_add(pid, ps);
  return pid;
}

std::shared_ptr<Port> Core::close_port(PortId pid) {
  PortState& ps = ports_[pid];
  if (ps.txn) {
    ps.counters->drop_tx(Drop::port_deleted, ps.txn);
    for (uint16_t i = 0; i < ps.txn; ++i) cache_->free(ps.txq[i].buf);
    ps.txn = 0;
  }
  if (ps.tx_dirty) {
    dirty_ports_.erase(std::remove(dirty_ports_.begin(), dirty_ports_.end(), pid), dirty_ports_.end());
    ps.tx_dirty = false;
  }
  poll_del(pid, ps);
  if (ps.tx_counted_by_port) ps.port->count_tx(nullptr);  // what it holds: port_deleted
  ps.tx_counted_by_port = false;
  std::shared_ptr<Port> closed(ps.port.release(), [](Port* b) {
    b->detach();
    delete b;
  });
  if (ps.link_dirty) {
    links_named_.erase(std::remove(links_named_.begin(), links_named_.end(), pid), links_named_.end());
    ps.link_dirty = false;
  }
  ps.watch_ifindex = 0;
  ps.in_use = false;
  ps.is_uplink = false;
  cnt_set(ps.counters->in_use, 0);
  active_ports_.erase(std::remove(active_ports_.begin(), active_ports_.end(), pid), active_ports_.end());
  return closed;
}

// ---------------------------------------------------------------- tx flush

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
uint16_t Core::drop_too_big_for_egress(PortState& ps, uint16_t n) {
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

void Core::flush_port(PortId p) {
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
    if (observer_->on()) [[unlikely]] observer_->tx(p, ps.txq, n);
    // A backend takes at most kMaxBurst frames per call (ports/port.h); up to
    // kTxQueueLen are staged. Stop at the first call it does not take whole.
    while (sent < n) {
      const uint16_t want = uint16_t(std::min<uint32_t>(n - sent, kMaxBurst));
      const uint16_t took = ps.port->tx_burst(ps.txq + sent, want);
      sent += took;
      if (took < want) break;  // the backend is full: the rest are dropped below
    }
    if (!ps.tx_counted_by_port) [[likely]] {
      uint64_t bytes = 0;
      for (uint16_t i = 0; i < sent; ++i) bytes += ps.txq[i].len;
      pc.add(PortCounter::tx_packets, sent);
      pc.add(PortCounter::tx_bytes, bytes);
    }
  }
  if (sent < n) {
    pc.drop_tx(ps.up ? Drop::tx_ring_full : Drop::link_down, n - sent);
    for (uint16_t i = sent; i < n; ++i) cache_->free(ps.txq[i].buf);
  }
  ps.txn = 0;
}

void Core::flush_tx() {
  for (PortId p : dirty_ports_) {
    flush_port(p);
    ports_[p].tx_dirty = false;
  }
  dirty_ports_.clear();
}

uint32_t Core::frames_staged() const {
  uint32_t n = 0;
  for (PortId p : active_ports_) n += ports_[p].txn;
  return n;
}

// ---------------------------------------------------------------- events

uint32_t Core::drain_events(Event* out, uint32_t max) {
  // Clear first: an event pushed after this store re-arms the notification.
  notify_pending_.store(false, std::memory_order_seq_cst);
  return events_.pop(out, max);
}

void Core::emit(const Event& ev) {
  if (!(opts_.event_mask & event_bit(ev.type))) return;
  if (events_.push(&ev, 1) == 1) {
    engine_ctr_->add(EngineCounter::events, 1);
    events_pushed_ = true;
  } else {
    engine_ctr_->add(EngineCounter::events_dropped, 1);
  }
}

void Core::notify_if_needed() {
  if (!events_pushed_) return;
  events_pushed_ = false;
  if (notify_ && !notify_pending_.exchange(true, std::memory_order_seq_cst)) notify_();
}

// ---------------------------------------------------------------- poll set, housekeeping

// The sleep's epoll set holds every port's descriptor from open to close
// (a port's poll_fd() does not change), so a sleep costs what is ready, not
// what is open: with poll(2) over 300 idle taps, the engine's wake-ups spent
// a third of their time registering and removing 300 waits.
void Core::poll_add(PortId p, PortState& ps) {
  const int fd = ps.port->poll_fd();
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = p;
  ps.polled = fd >= 0 && epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
  // Without a descriptor (pipes, whose producers ring the waker; or one epoll
  // refused) the port is looked at after every wake-up.
  if (!ps.polled) unpolled_.push_back(p);
  ready_.resize(active_ports_.size() + 2);
}

void Core::poll_del(PortId p, PortState& ps) {
  if (ps.polled) epoll_ctl(epfd_, EPOLL_CTL_DEL, ps.port->poll_fd(), nullptr);
  ps.polled = false;
  unpolled_.erase(std::remove(unpolled_.begin(), unpolled_.end(), p), unpolled_.end());
  woken_.erase(std::remove(woken_.begin(), woken_.end(), p), woken_.end());
}

bool Core::sleep_until_work(int timeout_ms) {
  woken_.assign(unpolled_.begin(), unpolled_.end());
  const int r = epoll_wait(epfd_, ready_.data(), int(ready_.size()), timeout_ms);
  if (r < 0) return false;  // a signal: nothing says which ports
  bool rung = false;
  for (int i = 0; i < r; ++i) {
    const uint64_t k = ready_[i].data.u64;
    if (k == kWakerKey) {
      uint64_t v;
      ssize_t n = read(waker_.fd, &v, sizeof(v));
      (void)n;
      rung = true;
    } else if (k == kLinkWatchKey) {
      link_woke_ = true;
    } else {
      woken_.push_back(PortId(k));
    }
  }
  // The waker does not say who rang it, and ports with a descriptor may ring
  // it too (a vhost-user port's connection watcher): look at every port.
  return !rung;
}

void Core::link_slices(uint32_t period_ms) {
  link_woke_ = false;
  read_link_messages();
  // Ports a message named, first, a slice's worth at a time (a burst of
  // messages goes on at the next slices).
  const size_t slice_max = kLinkChecksPerTick / kLinkSlices;
  size_t named = 0, k = 0;
  for (; k < links_named_.size() && named < slice_max; ++k) {
    const PortId p = links_named_[k];
    PortState& ps = ports_[p];
    if (!ps.in_use || !ps.link_dirty) continue;
    check_link(p, ps);
    ++named;
  }
  links_named_.erase(links_named_.begin(), links_named_.begin() + k);
  if (int32_t(now_ms_ - next_link_ms_) < 0) return;  // woken by a message between slices
  // The round robin: at most kLinkChecksPerTick ports a period, so idle
  // ports cost a bounded number of system calls a second (a tap's link
  // check is five). A slice takes its share; slices missed while the engine
  // slept are made up now, up to one period (so an idle engine, waking once
  // a period, reads as many as before slices, and a busy one holds its
  // ports for a quarter as long at a time). A port the link watch covers is
  // passed over until its recheck_ms (Port::WatchKey) have gone by.
  const uint32_t slice_ms = std::max<uint32_t>(1, period_ms / kLinkSlices);
  const uint32_t late_ms = now_ms_ - next_link_ms_;
  const size_t slices = std::min<size_t>(kLinkSlices, 1 + late_ms / slice_ms);
  next_link_ms_ = now_ms_ + slice_ms;
  const size_t n = active_ports_.size();
  const size_t per_slice = (std::min<size_t>(n, kLinkChecksPerTick) + kLinkSlices - 1) / kLinkSlices;
  const size_t budget = std::min<size_t>(n, per_slice * slices);
  size_t done = 0;
  for (size_t visited = 0; visited < n && done < budget; ++visited) {
    if (link_cursor_ >= n) link_cursor_ = 0;
    const PortId p = active_ports_[link_cursor_++];
    PortState& ps = ports_[p];
    if (ps.watch_ifindex && now_ms_ - ps.link_checked_ms < ps.watch_recheck_ms) continue;
    check_link(p, ps);
    ++done;
  }
}

void Core::watch(PortState& ps) {
  const Port::WatchKey key = ps.port->link_watch_key();
  const bool ours = key.ifindex > 0 && key.netns && key.netns == link_watch_.netns() &&
                    (key.nsid == LinkName::kOwnNamespace || (key.nsid >= 0 && link_watch_.all_namespaces()));
  ps.watch_ifindex = ours ? key.ifindex : 0;
  ps.watch_nsid = key.nsid;
  ps.watch_recheck_ms = key.recheck_ms;
}

void Core::check_link(PortId p, PortState& ps) {
  const bool up = ps.port->link_state() == LinkState::kUp;
  ps.tx_limit = ps.port->tx_frame_limit();
  // What a port takes can change with its peer (a vhost-user guest
  // negotiates its offloads); read with the link, before it is reported up.
  ps.tx_offloads = ps.port->tx_offloads();
  watch(ps);
  ps.link_checked_ms = now_ms_;
  ps.link_dirty = false;
  engine_ctr_->add(EngineCounter::link_checks, 1);
  if (up == ps.up) return;
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

// One recv(2) that finds nothing while no interface changes.
void Core::read_link_messages() {
  if (link_watch_.fd() < 0) return;
  link_msgs_.clear();
  const bool whole = link_watch_.drain(&link_msgs_);
  if (!link_msgs_.empty()) engine_ctr_->add(EngineCounter::link_messages, link_msgs_.size());
  if (!whole) engine_ctr_->add(EngineCounter::link_messages_lost, 1);
  if (link_msgs_.empty() && whole) return;
  for (PortId p : active_ports_) {
    PortState& ps = ports_[p];
    if (!ps.watch_ifindex || ps.link_dirty) continue;
    bool named = !whole;
    for (size_t i = 0; i < link_msgs_.size() && !named; ++i) {
      const LinkName& m = link_msgs_[i];
      named = m.nsid == ps.watch_nsid && (m.ifindex == ps.watch_ifindex || m.ifindex == 0);
    }
    if (!named) continue;
    ps.link_dirty = true;
    links_named_.push_back(p);
  }
}

void Core::pool_gauges() {
  engine_ctr_->set(EngineCounter::buffers_free, pool_->available());
  engine_ctr_->set(EngineCounter::large_buffers_free, pool_->large_available());
}

}  // namespace vpc
