// Commands: how the control plane's requests change the engine's tables.
// Runs on the engine thread between iterations (or on the caller's thread
// while the engine is stopped). Each command validates everything before it
// changes anything, so a failed command leaves the tables as they were.
#include <algorithm>
#include <string>

#include "core/engine.h"
#include "proto/ethernet.h"
#include "bridge/learn.h"

namespace vpc {

static std::string mac_str(Mac m) {
  char b[18];
  mac_format(m, b);
  return b;
}

void Engine::apply(Command& c) {
  Result r;
  switch (c.op) {
    case CmdOp::kCreateSwitch: r = do_create_switch(c); break;
    case CmdOp::kSetSwitch: r = do_set_switch(c); break;
    case CmdOp::kDeleteSwitch: r = do_delete_switch(c); break;
    case CmdOp::kCreatePort: r = do_create_port(c); break;
    case CmdOp::kSetPort: r = do_set_port(c); break;
    case CmdOp::kDeletePort: r = do_delete_port(c); break;
    case CmdOp::kAddStaticMac: r = do_add_static(c); break;
    case CmdOp::kDeleteStaticMac: r = do_delete_static(c); break;
    case CmdOp::kDumpFdb: r = do_dump_fdb(c); break;
    case CmdOp::kFlushFdb: r = do_flush_fdb(c); break;
    case CmdOp::kCreateUplink: r = do_create_uplink(c); break;
    case CmdOp::kDeleteUplink: r = do_delete_uplink(c); break;
    case CmdOp::kAddPeer: r = do_add_peer(c); break;
    case CmdOp::kDeletePeer: r = do_delete_peer(c); break;
    case CmdOp::kAddRemoteMac: r = do_add_remote_mac(c); break;
    case CmdOp::kDumpNeighbors: r = do_dump_neighbors(c); break;
    case CmdOp::kBarrier: break;
  }
  if (c.done) c.done(std::move(r));
}

static bool switch_ok(const std::vector<SwitchState>& v, SwitchId s) {
  return s < v.size() && v[s].in_use;
}

Result Engine::do_create_switch(Command& c) {
  const SwitchConfig& cfg = c.switch_cfg;
  if (cfg.vni < 1 || cfg.vni > 16777215)
    return Result::error(Status::kInvalidArgument, "vni: must be in 1..16777215");
  if (cfg.mac_limit < 1 || cfg.mac_limit > 16777216)
    return Result::error(Status::kInvalidArgument, "macLimit: must be in 1..16777216");
  if (cfg.aging_ms < 1000)
    return Result::error(Status::kInvalidArgument, "agingMs: must be at least 1000");
  SwitchId free_id = kNoId;
  for (SwitchId s = 0; s < switches_.size(); ++s) {
    if (switches_[s].in_use) {
      if (switches_[s].cfg.vni == cfg.vni)
        return Result::error(Status::kAlreadyExists, "vni: " + std::to_string(cfg.vni) + " is already used by another switch");
    } else if (free_id == kNoId) {
      free_id = s;
    }
  }
  if (free_id == kNoId) return Result::error(Status::kLimitExceeded, "switches: maxSwitches reached");
  SwitchState& sw = switches_[free_id];
  sw.cfg = cfg;
  sw.refresh_ms = learn_refresh_ms(cfg.aging_ms);
  sw.fdb = Fdb(std::clamp<uint32_t>(cfg.fdb_capacity, 16, 1u << 22));
  sw.members.clear();
  sw.local_members = 0;
  sw.peers = 0;
  sw.static_entries = 0;
  sw.generation++;
  sw.full_reported = false;
  SwitchCounterBlock& sc = *sw.counters;
  std::fill(std::begin(sc.c), std::end(sc.c), 0);
  std::fill(std::begin(sc.drops), std::end(sc.drops), 0);
  cnt_set(sc.generation, sc.generation + 1);
  cnt_set(sc.in_use, 1);
  sw.in_use = true;
  vni_map_[cfg.vni] = free_id;
  last_vni_sw_ = kNoId;
  Result r;
  r.id = free_id;
  return r;
}

Result Engine::do_set_switch(Command& c) {
  if (!switch_ok(switches_, c.sw)) return Result::error(Status::kNotFound, "switch: no such switch");
  const SwitchConfig& n = c.switch_cfg;
  if (n.mac_limit < 1 || n.mac_limit > 16777216)
    return Result::error(Status::kInvalidArgument, "macLimit: must be in 1..16777216");
  if (n.aging_ms < 1000) return Result::error(Status::kInvalidArgument, "agingMs: must be at least 1000");
  SwitchState& sw = switches_[c.sw];
  sw.cfg.mac_limit = n.mac_limit;
  sw.cfg.aging_ms = n.aging_ms;
  sw.refresh_ms = learn_refresh_ms(n.aging_ms);
  sw.cfg.learning = n.learning;
  sw.cfg.remote_learning = n.remote_learning;
  sw.cfg.allow_unknown_peers = n.allow_unknown_peers;
  if (sw.fdb.size() < sw.cfg.mac_limit) sw.full_reported = false;
  sw.generation++;
  return {};
}

Result Engine::do_delete_switch(Command& c) {
  if (!switch_ok(switches_, c.sw)) return Result::error(Status::kNotFound, "switch: no such switch");
  SwitchState& sw = switches_[c.sw];
  if (sw.local_members)
    return Result::error(Status::kInUse, "switch: still has " + std::to_string(sw.local_members) +
                                             " port(s); delete or move them first");
  if (sw.peers)
    return Result::error(Status::kInUse, "switch: still has " + std::to_string(sw.peers) + " peer(s); delete them first");
  // Entries still point at remote members (local ports are gone): give
  // their sources back the learned count, and their VTEPs the static count,
  // before the members disappear; otherwise the VTEP is never released.
  sw.fdb.for_each([&](const FdbEntry& e) { remove_entry_effects(sw, e); });
  // Remote members (VTEPs learned or holding static entries) go with it.
  for (MemberId mid : sw.members) {
    Member& m = members_[mid];
    if (m.remote()) {
      VtepState& v = vteps_[m.vtep];
      v.members.erase(std::remove_if(v.members.begin(), v.members.end(),
                                     [&](const std::pair<SwitchId, MemberId>& x) { return x.second == mid; }),
                      v.members.end());
      v.cache_sw = kNoId;
    }
    m = Member{};
  }
  sw.members.clear();
  sw.in_use = false;
  sw.fdb = Fdb(16);
  vni_map_.erase(sw.cfg.vni);
  last_vni_sw_ = kNoId;
  cnt_set(sw.counters->in_use, 0);
  release_unreferenced_vteps();
  return {};
}

Result Engine::check_port_config(const PortConfig& pc) const {
  uint32_t max_mtu = pool_->max_frame() - kEthHeaderLen - kVlanTagLen;
  if (pc.mtu < 68 || pc.mtu > max_mtu)
    return Result::error(Status::kInvalidArgument,
                         "mtu: must be in 68.." + std::to_string(max_mtu) + " for this buffer size");
  if (pc.locked_macs.size() > 256)
    return Result::error(Status::kInvalidArgument, "lockedMacs: at most 256 addresses");
  for (Mac m : pc.locked_macs)
    if (mac_is_multicast(m) || m == 0)
      return Result::error(Status::kInvalidArgument, "lockedMacs: " + mac_str(m) + " is not a unicast address");
  return {};
}

void Engine::apply_port_config(PortState& ps, const PortConfig& pc) {
  ps.cfg = pc;
  std::sort(ps.cfg.locked_macs.begin(), ps.cfg.locked_macs.end());
  ps.max_len = pc.mtu + kEthHeaderLen;
  ps.learn.learning = pc.learning;
  ps.learn.mac_limit = pc.mac_limit;
  ps.learn.cache_member = kNoMember;  // security or learning may have changed
  if (pc.mac_limit == 0 || ps.learn.learned < pc.mac_limit) ps.learn.limit_reported = false;
}

Result Engine::do_create_port(Command& c) {
  if (!c.new_port) return Result::error(Status::kInvalidArgument, "port: no backend given");
  Result bad = check_port_config(c.port_cfg);
  if (!bad.ok()) return bad;
  // Validate every mapping before touching anything.
  std::vector<std::pair<uint16_t, SwitchId>> maps;
  if (c.untagged != kNoId) maps.push_back({0, c.untagged});
  for (const VlanMapping& v : c.vlans) {
    if (v.vlan < 1 || v.vlan > 4094) return Result::error(Status::kInvalidArgument, "vlans: VLAN ID must be in 1..4094");
    maps.push_back({v.vlan, v.sw});
  }
  if (maps.empty()) return Result::error(Status::kInvalidArgument, "port: needs a switch (access) or VLAN mappings (trunk)");
  for (size_t i = 0; i < maps.size(); ++i) {
    if (!switch_ok(switches_, maps[i].second)) return Result::error(Status::kNotFound, "switch: no such switch");
    for (size_t j = 0; j < i; ++j) {
      if (maps[j].first == maps[i].first)
        return Result::error(Status::kInvalidArgument, "vlans: VLAN " + std::to_string(maps[i].first) + " mapped twice");
      if (maps[j].second == maps[i].second)
        return Result::error(Status::kInvalidArgument, "vlans: a port joins a switch at most once");
    }
  }
  PortId pid = free_port_slot();
  if (pid == kNoId) return Result::error(Status::kLimitExceeded, "ports: maxPorts reached");
  size_t free_members = 0;
  for (const Member& m : members_) free_members += !m.in_use;
  if (members_.size() - free_members + maps.size() > kMaxMembers)
    return Result::error(Status::kLimitExceeded, "ports: too many switch memberships");

  PortState& ps = ports_[pid];
  ps.port = std::move(c.new_port);
  ps.learn = LearnSource{};
  ps.learn.learned_gauge = &ps.counters->c[size_t(PortCounter::fdb_learned)];
  apply_port_config(ps, c.port_cfg);
  ps.untagged = kNoMember;
  ps.vlan_map.reset();
  ps.members.clear();
  ps.is_uplink = false;
  ps.txn = 0;
  ps.tx_dirty = false;
  ps.up = ps.port->link_state() == LinkState::kUp;
  ps.tx_limit = ps.port->tx_frame_limit();
  if (!c.vlans.empty()) {
    ps.vlan_map.reset(new MemberId[4096]);
    std::fill(ps.vlan_map.get(), ps.vlan_map.get() + 4096, kNoMember);
  }
  for (auto& [vlan, sw] : maps) {
    MemberId mid = kNoMember;
    for (size_t i = 0; i < members_.size(); ++i)
      if (!members_[i].in_use) {
        mid = MemberId(i);
        break;
      }
    if (mid == kNoMember) {
      mid = MemberId(members_.size());
      members_.push_back({});
    }
    members_[mid] = Member{};
    members_[mid].port = pid;
    members_[mid].sw = sw;
    members_[mid].vlan = vlan;
    members_[mid].in_use = true;
    switches_[sw].members.push_back(mid);
    switches_[sw].local_members++;
    ps.members.push_back(mid);
    if (vlan == 0) ps.untagged = mid;
    else ps.vlan_map[vlan] = mid;
  }
  activate_port_slot(pid);
  Result r;
  r.id = pid;
  return r;
}

void Engine::activate_port_slot(PortId pid) {
  PortState& ps = ports_[pid];
  PortCounterBlock& pc = *ps.counters;
  std::fill(std::begin(pc.c), std::end(pc.c), 0);
  std::fill(std::begin(pc.drops), std::end(pc.drops), 0);
  pc.set(PortCounter::link_up, ps.up ? 1 : 0);
  cnt_set(pc.generation, pc.generation + 1);
  cnt_set(pc.in_use, 1);
  ps.in_use = true;
  ps.port->attach(&waker_);
  ps.tx_offloads = ps.port->tx_offloads();
  ps.tx_max_frame = ps.port->tx_max_frame();
  ps.tx_large = ps.port->tx_large_buffers();
  active_ports_.push_back(pid);
  rebuild_poll_set();
}

PortId Engine::free_port_slot() const {
  for (PortId p = 0; p < ports_.size(); ++p)
    if (!ports_[p].in_use) return p;
  return kNoId;
}

Result Engine::do_set_port(Command& c) {
  if (c.port >= ports_.size() || !ports_[c.port].in_use) return Result::error(Status::kNotFound, "port: no such port");
  Result bad = check_port_config(c.port_cfg);
  if (!bad.ok()) return bad;
  PortState& ps = ports_[c.port];
  Mac own = ps.cfg.mac;
  apply_port_config(ps, c.port_cfg);
  ps.cfg.mac = own;
  return {};
}

Result Engine::do_delete_port(Command& c) {
  if (c.port >= ports_.size() || !ports_[c.port].in_use) return Result::error(Status::kNotFound, "port: no such port");
  if (ports_[c.port].is_uplink)
    return Result::error(Status::kInUse, "port: is the uplink; delete the uplink instead");
  PortId pid = c.port;
  PortState& ps = ports_[pid];
  // Forget every FDB entry that points at it, learned or static.
  for (MemberId mid : ps.members) {
    Member& m = members_[mid];
    SwitchState& sw = switches_[m.sw];
    sw.fdb.erase_if([mid](const FdbEntry& e) { return e.member == mid; },
                    [&](const FdbEntry& e) { remove_entry_effects(sw, e); });
    sw.counters->set(SwitchCounter::fdb_entries, sw.fdb.size());
    sw.counters->set(SwitchCounter::fdb_static, sw.static_entries);
    if (sw.fdb.size() < sw.cfg.mac_limit) sw.full_reported = false;
    sw.members.erase(std::remove(sw.members.begin(), sw.members.end(), mid), sw.members.end());
    sw.local_members--;
    m = Member{};
  }
  ps.members.clear();
  release_port_slot(pid);
  return {};
}

// Frees a port slot whose members are already gone: flushes its staged
// frames, detaches the backend, stops polling it.
void Engine::release_port_slot(PortId pid) {
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
  ps.port->detach();
  ps.port.reset();
  ps.vlan_map.reset();
  ps.in_use = false;
  ps.is_uplink = false;
  cnt_set(ps.counters->in_use, 0);
  active_ports_.erase(std::remove(active_ports_.begin(), active_ports_.end(), pid), active_ports_.end());
  rebuild_poll_set();
}

// Finds the member through which port `p` belongs to switch `s`.
static MemberId member_of(const std::vector<PortState>& ports, const std::vector<Member>& members,
                          PortId p, SwitchId s) {
  if (p >= ports.size() || !ports[p].in_use) return kNoMember;
  for (MemberId mid : ports[p].members)
    if (members[mid].sw == s) return mid;
  return kNoMember;
}

Result Engine::do_add_static(Command& c) {
  if (!switch_ok(switches_, c.sw)) return Result::error(Status::kNotFound, "switch: no such switch");
  if (c.port >= ports_.size() || !ports_[c.port].in_use) return Result::error(Status::kNotFound, "port: no such port");
  if (mac_is_multicast(c.mac) || c.mac == 0)
    return Result::error(Status::kInvalidArgument, "mac: a static entry needs a unicast address");
  MemberId mid = member_of(ports_, members_, c.port, c.sw);
  if (mid == kNoMember) return Result::error(Status::kInvalidArgument, "port: is not a member of this switch");
  return insert_static(switches_[c.sw], c.mac, mid);
}

// Static entries never age and learning never overwrites them. They count in
// the table but are accepted beyond macLimit: the limit guards against
// learning floods, not against the operator.
// `flags` is kFdbStatic, or kFdbStatic | kFdbEvpn for an entry of the EVPN
// control plane: it replaces a learned or EVPN entry (the MAC moved), never
// a configured static one, and a configured static entry replaces it.
Result Engine::insert_static(SwitchState& sw, Mac mac, MemberId mid, uint16_t flags) {
  FdbEntry* e = sw.fdb.find(mac);
  if (e) {
    if (e->member == mid && e->flags == flags) return {};  // same entry: idempotent
    if ((e->flags & kFdbStatic) && !(e->flags & kFdbEvpn))
      return Result::error(Status::kAlreadyExists, "mac: " + mac_str(mac) + " is already a static entry elsewhere");
    // A learned (or EVPN) entry is replaced.
    remove_entry_effects(sw, *e);
    e->member = mid;
    e->flags = flags;
    e->last_seen_ms = now_ms_;
  } else {
    auto ins = sw.fdb.insert(mac, mid, flags, now_ms_);
    if (!ins.entry) return Result::error(Status::kLimitExceeded, "fdb: out of memory growing the table");
  }
  sw.static_entries++;
  if (members_[mid].remote()) {
    vteps_[members_[mid].vtep].statics++;
    vtep_configure(vteps_[members_[mid].vtep]);
  }
  sw.generation++;
  sw.counters->set(SwitchCounter::fdb_entries, sw.fdb.size());
  sw.counters->set(SwitchCounter::fdb_static, sw.static_entries);
  return {};
}

Result Engine::do_delete_static(Command& c) {
  if (!switch_ok(switches_, c.sw)) return Result::error(Status::kNotFound, "switch: no such switch");
  SwitchState& sw = switches_[c.sw];
  FdbEntry* e = sw.fdb.find(c.mac);
  if (!e || !(e->flags & kFdbStatic) || bool(e->flags & kFdbEvpn) != c.evpn)
    return Result::error(Status::kNotFound, "mac: " + mac_str(c.mac) + " has no " + (c.evpn ? "EVPN" : "static") + " entry in this switch");
  remove_entry_effects(sw, *e);
  sw.fdb.erase(c.mac);
  sw.counters->set(SwitchCounter::fdb_entries, sw.fdb.size());
  sw.counters->set(SwitchCounter::fdb_static, sw.static_entries);
  release_unreferenced_vteps();
  return {};
}

Result Engine::do_dump_fdb(Command& c) {
  if (!switch_ok(switches_, c.sw)) return Result::error(Status::kNotFound, "switch: no such switch");
  Result r;
  r.entries.reserve(switches_[c.sw].fdb.size());
  switches_[c.sw].fdb.for_each([&](const FdbEntry& e) {
    const Member& m = members_[e.member];
    bool st = e.flags & kFdbStatic;
    FdbDumpEntry d;
    d.mac = e.mac;
    d.port = m.port;
    d.vlan = m.vlan;
    d.is_static = st;
    d.evpn = e.flags & kFdbEvpn;
    d.age_ms = st ? 0u : uint32_t(now_ms_ - e.last_seen_ms);
    if (m.remote()) {
      d.remote = true;
      d.vtep = vteps_[m.vtep].ip;
      d.port = uplink_.active ? uplink_.port : kNoId;
    }
    r.entries.push_back(d);
  });
  return r;
}

Result Engine::do_flush_fdb(Command& c) {
  if (!switch_ok(switches_, c.sw)) return Result::error(Status::kNotFound, "switch: no such switch");
  MemberId only = kNoMember;
  if (c.port != kNoId) {
    only = member_of(ports_, members_, c.port, c.sw);
    if (only == kNoMember) return Result::error(Status::kNotFound, "port: is not a member of this switch");
  }
  SwitchState& sw = switches_[c.sw];
  Result r;
  r.removed = sw.fdb.erase_if(
      [only](const FdbEntry& e) { return !(e.flags & kFdbStatic) && (only == kNoMember || e.member == only); },
      [&](const FdbEntry& e) { remove_entry_effects(sw, e); });
  sw.counters->set(SwitchCounter::fdb_entries, sw.fdb.size());
  if (sw.fdb.size() < sw.cfg.mac_limit) sw.full_reported = false;
  return r;
}

}  // namespace vpc
