// The bridge's side of the kernel fast path (design in bridge/kpath.h).
#include <algorithm>
#include <ctime>

#include "bridge/bridge.h"
#include "bridge/dest.h"
#include "overlay/overlay.h"
#include "proto/ethernet.h"

namespace vpc {

static uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // the BPF programs' clock (bpf_ktime_get_coarse_ns: the same, per tick)
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// Loads the BPF object, once, with the first port that gets the path, so
// engines without one never load it. Normally a submitter has loaded it
// already (kpath_preload); this loads it on the engine thread only when no
// command carried it. False, with the reason in kpath_.why, where it cannot
// be had.
bool Bridge::kpath_load() {
  KpathState& k = kpath_;
  if (!k.tried) {
    kpath_claimed_.store(true, std::memory_order_relaxed);
    std::string why;
    std::unique_ptr<KernelPath> kp =
        KernelPath::load(core_.max_ports(), uint32_t(switches_.size()), kKpathMaxEntries, kKpathMaxRemotes, &why);
    kpath_settle(std::move(kp), std::move(why));
  }
  return k.kp != nullptr;
}

void Bridge::kpath_settle(std::unique_ptr<KernelPath> kp, std::string why) {
  KpathState& k = kpath_;
  k.tried = true;
  k.kp = std::move(kp);
  k.why = std::move(why);
  if (k.kp) {
    k.ports.resize(core_.max_ports());
    k.global.on = !core_.observer().on();
    k.global.uplink = kNoId;
    k.kp->set_global(k.global);
    // From now on submitters hook new ports themselves (kpath_preload).
    kpath_sock_fd_.store(k.kp->sock_prog(), std::memory_order_relaxed);
    kpath_xdp_fd_.store(k.kp->xdp_prog(), std::memory_order_relaxed);
    kpath_xdp_refused_.store(k.kp->progs().xdp_refused, std::memory_order_relaxed);
    kpath_tc_fd_.store(k.kp->tc_prog(), std::memory_order_release);
  }
}

// Submitter's thread: reads only what never changes after construction (the
// table sizes) and the claim flag.
//
// It also hooks the programs to the port here, when the port will be an
// access port (or is the uplink) and the programs exist: attaching a TCX
// link takes milliseconds (7 ms here, 24 ms for a host's first, which turns
// the ingress hook on). Hooked early, the programs take nothing until the
// engine writes the port into their maps; if the command fails, the hooks go
// with the port. Where no programs are published yet (the engine has not
// adopted them), the engine hooks the port itself, as before.
void Bridge::kpath_preload(Command& c) {
  if (!c.new_port || !c.new_port->kernel_path_wanted()) return;
  KpathProgs progs;
  progs.tc = kpath_tc_fd_.load(std::memory_order_acquire);
  progs.sock = kpath_sock_fd_.load(std::memory_order_relaxed);
  progs.xdp = kpath_xdp_fd_.load(std::memory_order_relaxed);
  progs.xdp_refused = kpath_xdp_refused_.load(std::memory_order_relaxed);
  if (progs.tc < 0 && !kpath_claimed_.exchange(true, std::memory_order_relaxed)) {
    auto pre = std::make_shared<KpathPreload>();
    pre->kp = KernelPath::load(core_.max_ports(), uint32_t(switches_.size()), kKpathMaxEntries, kKpathMaxRemotes, &pre->why);
    if (pre->kp) progs = pre->kp->progs();
    c.kpath = std::move(pre);
  }
  const bool access = c.op == CmdOp::kCreateUplink || (c.untagged != kNoId && c.vlans.empty());
  if (progs.tc >= 0 && access) c.new_port->kernel_path(progs, "");
}

void Bridge::kpath_adopt(Command& c) {
  if (!c.kpath) return;
  std::shared_ptr<KpathPreload> pre = std::move(c.kpath);
  if (kpath_.tried) return;  // cannot happen (one claim); the spare closes here
  kpath_settle(std::move(pre->kp), std::move(pre->why));
  kpath_.preloaded = true;
}

// Hooks the programs to a port's interface and socket; kpath_refresh then
// tells the kernel about it.
bool Bridge::kpath_hook(PortId pid, bool uplink, SwitchId sw, MemberId member) {
  KpathState& k = kpath_;
  Port& port = *core_.port(pid).port;
  if (!kpath_load()) {
    port.kernel_path(KpathProgs{}, "off: " + k.why);
    return false;
  }
  if (!port.kernel_ifindex()) ++k.engine_hooks;
  if (!port.kernel_path(k.kp->progs(), "")) return false;
  KpathState::PortRec& r = k.ports[pid];
  r = KpathState::PortRec{};
  r.attached = true;
  r.uplink = uplink;
  r.member = member;
  r.sw = sw;
  r.gro_lost = port.kernel_gro_lost();
  k.kp->clear_stats(pid);
  k.active.push_back(pid);
  kpath_show_paused();
  ports_[pid].kpath = true;
  kpath_refresh(pid);
  return true;
}

// A port joined its switches: an access port (one untagged member) whose
// backend can hook the programs gets the kernel path.
void Bridge::kpath_join(PortId pid) {
  Port& port = *core_.port(pid).port;
  if (!port.kernel_path_wanted()) return;
  const BridgePort& bp = ports_[pid];
  if (bp.untagged == kNoMember || bp.members.size() != 1) {
    port.kernel_path(KpathProgs{}, "off: a VLAN trunk (only an access port takes it)");
    return;
  }
  kpath_hook(pid, false, members_[bp.untagged].sw, bp.untagged);
}

// The uplink opened: VXLAN between it and kernel-path ports may be
// encapsulated and decapsulated in the kernel (IPv4 underlay).
void Bridge::kpath_uplink_opened(PortId pid) {
  if (!core_.port(pid).port->kernel_path_wanted()) return;
  if (!kpath_hook(pid, true, kNoId, kNoMember)) return;
  kpath_.uplink = pid;
  kpath_uplink_refresh();
}

// kp_global's VTEP half: our address, UDP port and MAC, from the overlay.
void Bridge::kpath_uplink_refresh() {
  KpathState& k = kpath_;
  KpathGlobal g;
  g.on = k.global.on;
  g.uplink = kNoId;
  if (k.uplink != kNoId) {
    g.uplink = k.uplink;
    overlay_.kpath_uplink(&g);
  }
  if (!(g == k.global) && k.kp->set_global(g)) k.global = g;
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
  if (r.gro_rx) k.kp->clear_ifindex(r.gro_rx);
  r = KpathState::PortRec{};
  k.active.erase(std::remove(k.active.begin(), k.active.end(), pid), k.active.end());
  kpath_show_paused();
  ports_[pid].kpath = false;
  if (pid == k.uplink) {
    // No VXLAN in the kernel without it: the remote members go, with their
    // last counters.
    k.uplink = kNoId;
    kpath_uplink_refresh();
    while (!k.remotes.empty()) kpath_member_closed(k.remotes.begin()->first);
  }
}

// A remote member is about to go (its id may be reused): its last counters,
// and its record leaves the kernel. Its entries went with the FDB's (the
// generation).
void Bridge::kpath_member_closed(MemberId m) {
  KpathState& k = kpath_;
  auto it = k.remotes.find(m);
  if (it == k.remotes.end()) return;
  kpath_collect_remote(m, it->second);
  k.kp->erase_remote(m);
  k.remotes.erase(it);
}

// What the kernel needs of a port: where to redirect, its switch, the MTU
// both of its sides take, and whether it may take frames now.
void Bridge::kpath_refresh(PortId pid) {
  KpathState& k = kpath_;
  KpathState::PortRec& r = k.ports[pid];
  const PortState& ps = core_.port(pid);
  KpathPort p;
  p.ifindex = uint32_t(ps.port->kernel_ifindex());
  p.sw = r.uplink ? 0 : r.sw;
  p.mtu = ps.l3_mtu();
  p.on = ps.up && p.ifindex ? 1 : 0;
  p.uplink = r.uplink ? 1 : 0;
  p.peer = !r.uplink && ps.port->kernel_peer_ingress() ? 1 : 0;
  // The uplink's GRO stage: its receiving end is known as this port before
  // frames are sent into it, and the port stops sending before it is
  // forgotten. Not known (the table is full): no frames into it.
  auto [gro_tx, gro_rx] = r.uplink ? ps.port->kernel_gro_stage() : std::pair<int, int>{0, 0};
  const int old_rx = r.gro_rx;
  if (gro_rx != old_rx && gro_rx) {
    if (k.kp->set_ifindex(gro_rx, pid)) {
      r.gro_rx = gro_rx;
    } else {
      gro_tx = 0;
      r.gro_rx = 0;
    }
  } else if (!gro_rx) {
    r.gro_rx = 0;
  }
  p.merge = uint32_t(gro_tx);
  if (p.ifindex != r.pushed.ifindex) {
    if (r.pushed.ifindex) k.kp->clear_ifindex(int(r.pushed.ifindex));
    if (p.ifindex) k.kp->set_ifindex(int(p.ifindex), pid);
  }
  if (!(p == r.pushed)) {
    k.kp->set_port(pid, p);
    r.pushed = p;
  }
  if (old_rx && old_rx != r.gro_rx) k.kp->clear_ifindex(old_rx);
}

void Bridge::kpath_port_changed(PortId pid) {
  if (kpath_.kp && pid < kpath_.ports.size() && kpath_.ports[pid].attached) kpath_refresh(pid);
}

// A burst from a kernel-path port (or the uplink's, decapsulated), looked
// up: each known-unicast frame between two kernel-path ports of a switch, or
// between one and a remote VTEP while the uplink has the path too, means both
// entries may go to the kernel. Only frames the kernel did not take come
// here, so once a flow's entries are in, its frames no longer do.
void Bridge::kpath_note(const Burst& b) {
  KpathState& k = kpath_;
  const bool vxlan = k.uplink != kNoId;
  for (uint16_t i = 0; i < b.n; ++i) {
    if (b.dest[i] >= kDestFirstSpecial) continue;  // flood or drop
    const MemberId from = b.inm[i], to = b.dest[i];
    const Member& x = members_[from];
    const Member& y = members_[to];
    if (x.vlan || y.vlan) continue;
    uint32_t xc, yc;  // what the kernel's entries hold for each side
    if (x.remote()) {
      if (!vxlan || y.remote() || !overlay_.kpath_vtep(x.vtep)) continue;
      xc = kKpathRemote | from;
    } else {
      xc = x.port;
    }
    if (y.remote()) {
      if (!vxlan || !overlay_.kpath_vtep(y.vtep)) continue;
      yc = kKpathRemote | to;
    } else {
      if (!ports_[y.port].kpath) continue;
      yc = y.port;
    }
    const SwitchId s = x.sw;
    const SwitchState& sw = switches_[s];
    const FdbEntry* se = sw.fdb.find(b.src[i]);
    if (!se || se->member != from) continue;  // not learned here (a limit, learning off)
    auto want = [&](Mac mac, uint32_t port) {
      auto it = k.installed.find(KpathState::Key{s, mac});
      if (it != k.installed.end() && it->second.port == port && it->second.gen == sw.generation) return;
      k.pending.push_back(KpathState::Pending{KpathState::Key{s, mac}, port, sw.generation});
    };
    want(b.src[i], xc);
    want(b.dst[i], yc);
  }
}

// A remote member's record for the kernel, built from its VTEP's outer
// headers; false while the overlay cannot give one (an IPv6 VTEP, a next hop
// not resolved, the uplink down): its frames stay with the engine.
bool Bridge::kpath_remote_record(MemberId m, KpathRemote* r) {
  const Member& mem = members_[m];
  if (!mem.in_use || !mem.remote() || kpath_.uplink == kNoId) return false;
  const SwitchState& sw = switches_[mem.sw];
  if (!overlay_.kpath_remote(mem.vtep, sw.cfg.vni, r)) return false;
  r->sw = mem.sw;
  return true;
}

// Before an entry pointing at a remote member goes in: the member's record
// and its switch's VNI are in the kernel.
bool Bridge::kpath_remote_ready(SwitchId s, uint32_t port) {
  KpathState& k = kpath_;
  const MemberId m = MemberId(port & ~kKpathRemote);
  if (!k.remotes.count(m)) {
    // Refused a moment ago (no next hop yet, the kernel's table full): not
    // asked again before the next tick, so a busy flow costs no system call
    // per burst.
    if (k.refused_tick == k.ticks && k.refused.count(m)) return false;
    KpathRemote r;
    bool ok = kpath_remote_record(m, &r);
    if (ok && !k.kp->set_remote(m, r)) {
      core_.engine_counters().add(EngineCounter::kernel_path_full, 1);
      ok = false;
    }
    if (!ok) {
      if (k.refused_tick != k.ticks) k.refused.clear();
      k.refused_tick = k.ticks;
      k.refused.insert(m);
      return false;
    }
    k.remotes[m] = KpathState::RemoteRec{r, {}};
  }
  const uint32_t vni = switches_[s].cfg.vni;
  auto v = k.vnis.find(vni);
  if (v == k.vnis.end() || v->second != s) {
    if (!k.kp->set_vni(vni, s)) return false;
    k.vnis[vni] = s;
  }
  return true;
}

// The engine gauge kernel_path_paused: 1 while a capture or trace holds
// the path off for ports that have it (a capture already running when the
// path came, or ports leaving during one, included).
void Bridge::kpath_show_paused() {
  const KpathState& k = kpath_;
  core_.engine_counters().set(EngineCounter::kernel_path_paused, !k.active.empty() && !k.global.on ? 1 : 0);
}

// Between iterations: the capture switch, the generations, the noted entries.
void Bridge::kpath_sync() {
  KpathState& k = kpath_;
  const uint32_t on = core_.observer().on() ? 0 : 1;
  if (on != k.global.on) {
    KpathGlobal g = k.global;
    g.on = on;
    if (k.kp->set_global(g)) {
      k.global = g;
      kpath_show_paused();
    }
  }
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
    if ((p.port & kKpathRemote) && !kpath_remote_ready(p.key.sw, p.port)) continue;
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
  if (now.errors != r.seen.errors) {
    pc.drop_rx(Drop::kernel_path_error, now.errors - r.seen.errors);
    if (r.sw != kNoId && !r.uplink) switches_[r.sw].counters->drop(Drop::kernel_path_error, now.errors - r.seen.errors);
  }
  r.seen = now;
  if (r.uplink) {
    const uint64_t lost = core_.port(pid).port->kernel_gro_lost();
    if (lost > r.gro_lost) pc.drop_rx(Drop::kernel_path_error, lost - r.gro_lost);
    r.gro_lost = lost;
  }
}

// A remote member's: the switch's traffic with its VTEP (and the uplink's
// VXLAN counts); what came from it is also the switch's rx.
void Bridge::kpath_collect_remote(MemberId m, KpathState::RemoteRec& rec) {
  const KpathStats now = kpath_.kp->remote_stats(m);
  KpathStats d;
  d.rx_packets = now.rx_packets - rec.seen.rx_packets;
  d.rx_bytes = now.rx_bytes - rec.seen.rx_bytes;
  d.tx_packets = now.tx_packets - rec.seen.tx_packets;
  d.tx_bytes = now.tx_bytes - rec.seen.tx_bytes;
  rec.seen = now;
  if (!d.rx_packets && !d.tx_packets) return;
  overlay_.kpath_count(m, d);
  if (d.rx_packets) switches_[members_[m].sw].counters->add(SwitchCounter::rx_packets, d.rx_packets);
}

// Housekeeping: ports (link, interface, MTU), counters; then, once a second
// or a quarter of the shortest aging time of these switches if that is
// shorter, the aging stamps and the entries the generation voided. An entry
// is refreshed once it is past half its aging time, so a pass always comes
// before it could age.
void Bridge::kpath_tick() {
  KpathState& k = kpath_;
  if (!k.kp) return;
  ++k.ticks;
  for (PortId pid : k.active) {
    kpath_refresh(pid);
    kpath_collect(pid);
  }
  if (k.uplink != kNoId) kpath_uplink_refresh();
  // Remote members: counters, and the outer headers again (the next hop's
  // MAC or reachability may have changed; an unusable record is kept, off).
  for (auto& [m, rec] : k.remotes) {
    kpath_collect_remote(m, rec);
    KpathRemote r;
    if (!kpath_remote_record(m, &r)) {
      r = rec.pushed;
      r.on = 0;
    }
    if (!(r == rec.pushed) && k.kp->set_remote(m, r)) rec.pushed = r;
  }
  for (auto v = k.vnis.begin(); v != k.vnis.end();) {
    const SwitchState& sw = switches_[v->second];
    if (sw.in_use && sw.cfg.vni == v->first) {
      ++v;
      continue;
    }
    k.kp->erase_vni(v->first);  // the switch is gone: the VNI's next switch writes it again
    v = k.vnis.erase(v);
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
