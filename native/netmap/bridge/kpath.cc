// The bridge's side of the kernel fast path (design in bridge/kpath.h).
#include <algorithm>
#include <ctime>

#include "bridge/bridge.h"
#include "bridge/dest.h"
#include "proto/ethernet.h"

namespace vpc {

static uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // bpf_ktime_get_ns()'s clock
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// A port joined its switches: an access port (one untagged member) whose
// backend can hook the programs gets the kernel path. The BPF object is
// loaded with the first such port, so engines without one never load it.
void Bridge::kpath_join(PortId pid) {
  Port& port = *core_.port(pid).port;
  if (!port.kernel_path_wanted()) return;
  const BridgePort& bp = ports_[pid];
  if (bp.untagged == kNoMember || bp.members.size() != 1) {
    port.kernel_path(-1, -1, "off: a VLAN trunk (only an access port takes it)");
    return;
  }
  KpathState& k = kpath_;
  if (!k.tried) {
    k.tried = true;
    k.kp = KernelPath::load(core_.max_ports(), uint32_t(switches_.size()), kKpathMaxEntries, &k.why);
    if (k.kp) {
      k.ports.resize(core_.max_ports());
      k.pushed_on = !core_.observer().on();
      k.kp->set_on(k.pushed_on);
    }
  }
  if (!k.kp) {
    port.kernel_path(-1, -1, "off: " + k.why);
    return;
  }
  if (!port.kernel_path(k.kp->tc_prog(), k.kp->sock_prog(), "")) return;
  KpathState::PortRec& r = k.ports[pid];
  r = KpathState::PortRec{};
  r.attached = true;
  r.member = bp.untagged;
  r.sw = members_[bp.untagged].sw;
  k.kp->clear_stats(pid);
  k.active.push_back(pid);
  ports_[pid].kpath = true;
  kpath_refresh(pid);
}

// Before the port leaves: its last counters, and nothing in the kernel
// points at it any more (its entries die with the generation bump of the
// leave itself).
void Bridge::kpath_leave(PortId pid) {
  KpathState& k = kpath_;
  if (!k.kp || pid >= k.ports.size() || !k.ports[pid].attached) return;
  kpath_collect(pid);
  KpathState::PortRec& r = k.ports[pid];
  k.kp->set_port(pid, KpathPort{});
  if (r.pushed.ifindex) k.kp->clear_ifindex(int(r.pushed.ifindex));
  r = KpathState::PortRec{};
  k.active.erase(std::remove(k.active.begin(), k.active.end(), pid), k.active.end());
  ports_[pid].kpath = false;
}

// What the kernel needs of a port: where to redirect, its switch, the MTU
// both of its sides take, and whether it may take frames now.
void Bridge::kpath_refresh(PortId pid) {
  KpathState& k = kpath_;
  KpathState::PortRec& r = k.ports[pid];
  const PortState& ps = core_.port(pid);
  KpathPort p;
  p.ifindex = uint32_t(ps.port->kernel_ifindex());
  p.sw = r.sw;
  p.mtu = ps.cfg.mtu;
  if (ps.tx_limit && ps.tx_limit - kEthHeaderLen < p.mtu) p.mtu = ps.tx_limit - kEthHeaderLen;
  p.on = ps.up && p.ifindex ? 1 : 0;
  if (p.ifindex != r.pushed.ifindex) {
    if (r.pushed.ifindex) k.kp->clear_ifindex(int(r.pushed.ifindex));
    if (p.ifindex) k.kp->set_ifindex(int(p.ifindex), pid);
  }
  if (p.ifindex != r.pushed.ifindex || p.sw != r.pushed.sw || p.mtu != r.pushed.mtu || p.on != r.pushed.on) {
    k.kp->set_port(pid, p);
    r.pushed = p;
  }
}

void Bridge::kpath_port_changed(PortId pid) {
  if (kpath_.kp && pid < kpath_.ports.size() && kpath_.ports[pid].attached) kpath_refresh(pid);
}

// A burst from a kernel-path port, looked up: each known-unicast frame to
// another kernel-path port (an access port of the same switch) means both
// entries may go to the kernel. Only frames the kernel did not take come
// here, so once a flow's entries are in, its frames no longer do.
void Bridge::kpath_note(const Burst& b) {
  KpathState& k = kpath_;
  for (uint16_t i = 0; i < b.n; ++i) {
    if (b.dest[i] >= kDestFirstSpecial) continue;  // flood or drop
    const MemberId from = b.inm[i], to = b.dest[i];
    const Member& x = members_[from];
    const Member& y = members_[to];
    if (y.remote() || x.vlan || y.vlan || !ports_[y.port].kpath) continue;
    const SwitchId s = x.sw;
    const SwitchState& sw = switches_[s];
    const FdbEntry* se = sw.fdb.find(b.src[i]);
    if (!se || se->member != from) continue;  // not learned here (a limit, learning off)
    auto want = [&](Mac mac, PortId port) {
      auto it = k.installed.find(KpathState::Key{s, mac});
      if (it != k.installed.end() && it->second.port == port && it->second.gen == sw.generation) return;
      k.pending.push_back(KpathState::Pending{KpathState::Key{s, mac}, port, sw.generation});
    };
    want(b.src[i], x.port);
    want(b.dst[i], y.port);
  }
}

// Between iterations: the capture switch, the generations, the noted entries.
void Bridge::kpath_sync() {
  KpathState& k = kpath_;
  const bool on = !core_.observer().on();
  if (on != k.pushed_on && k.kp->set_on(on)) k.pushed_on = on;
  for (auto& [s, gen] : k.gens)
    if (switches_[s].generation != gen && k.kp->set_gen(s, switches_[s].generation)) gen = switches_[s].generation;
  if (k.pending.empty()) return;
  for (const KpathState::Pending& p : k.pending) {
    const SwitchState& sw = switches_[p.key.sw];
    if (!sw.in_use || p.gen != sw.generation) continue;  // changed since: the next frame notes it again
    auto g = k.gens.find(p.key.sw);
    if (g == k.gens.end()) {
      if (!k.kp->set_gen(p.key.sw, sw.generation)) continue;
      k.gens.emplace(p.key.sw, sw.generation);
    }
    auto it = k.installed.find(p.key);
    if (it != k.installed.end() && it->second.port == p.port && it->second.gen == p.gen) continue;
    if (!k.kp->set_entry(p.key.sw, p.key.mac, p.port, p.gen)) {
      core_.engine_counters().add(EngineCounter::kernel_path_full, 1);
      continue;
    }
    k.installed[p.key] = KpathState::Installed{p.port, p.gen, 0};
  }
  k.pending.clear();
  core_.engine_counters().set(EngineCounter::kernel_path_entries, k.installed.size());
}

// The kernel's counters since the last look, added to the port's and its
// switch's.
void Bridge::kpath_collect(PortId pid) {
  KpathState& k = kpath_;
  KpathState::PortRec& r = k.ports[pid];
  const KpathStats now = k.kp->stats(pid);
  PortCounterBlock& pc = *core_.port(pid).counters;
  const uint64_t rx = now.rx_packets - r.seen.rx_packets, tx = now.tx_packets - r.seen.tx_packets;
  if (rx) {
    pc.add(PortCounter::rx_packets, rx);
    pc.add(PortCounter::rx_bytes, now.rx_bytes - r.seen.rx_bytes);
    pc.add(PortCounter::rx_kernel_path, rx);
    if (r.sw != kNoId) switches_[r.sw].counters->add(SwitchCounter::rx_packets, rx);
  }
  if (tx) {
    pc.add(PortCounter::tx_packets, tx);
    pc.add(PortCounter::tx_bytes, now.tx_bytes - r.seen.tx_bytes);
    pc.add(PortCounter::tx_kernel_path, tx);
  }
  r.seen = now;
}

// Housekeeping: ports (link, interface, MTU), counters; then, once a second
// or a quarter of the shortest aging time of these switches if that is
// shorter, the aging stamps and the entries the generation voided. An entry
// is refreshed once it is past half its aging time, so a pass always comes
// before it could age.
void Bridge::kpath_tick() {
  KpathState& k = kpath_;
  if (!k.kp) return;
  for (PortId pid : k.active) {
    kpath_refresh(pid);
    kpath_collect(pid);
  }
  const uint32_t now_ms = core_.now_ms();
  uint32_t period = 1000;
  for (const auto& [s, gen] : k.gens)
    if (switches_[s].in_use) period = std::min(period, switches_[s].cfg.aging_ms / 4);
  if (now_ms - k.last_pass_ms < period) return;
  k.last_pass_ms = now_ms;
  const uint64_t now_ns = monotonic_ns();
  for (auto it = k.installed.begin(); it != k.installed.end();) {
    SwitchState& sw = switches_[it->first.sw];
    if (!sw.in_use || it->second.gen != sw.generation) {
      k.kp->erase_entry(it->first.sw, it->first.mac);
      it = k.installed.erase(it);
      continue;
    }
    FdbEntry* e = sw.fdb.find(it->first.mac);
    if (e && !(e->flags & kFdbStatic) && now_ms - e->last_seen_ms >= sw.cfg.aging_ms / 2) {
      uint64_t last = 0;
      if (k.kp->last_use_ns(it->first.sw, it->first.mac, &last) && last > it->second.last_ns) {
        it->second.last_ns = last;
        const uint64_t ago_ms = now_ns > last ? (now_ns - last) / 1000000 : 0;
        if (ago_ms < sw.cfg.aging_ms / 2) e->last_seen_ms = now_ms - uint32_t(ago_ms);
      }
    }
    ++it;
  }
  for (auto g = k.gens.begin(); g != k.gens.end();)
    g = switches_[g->first].in_use ? std::next(g) : k.gens.erase(g);
  core_.engine_counters().set(EngineCounter::kernel_path_entries, k.installed.size());
}

}  // namespace vpc
