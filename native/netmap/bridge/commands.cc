// The bridge's commands: switches, port memberships, static MACs, FDB dumps
// and flushes, and the bridge's side of peers and remote MACs. Called by the
// engine's command dispatch (core/engine_commands.cc) on the engine thread
// between iterations (or on the caller's thread while the engine is stopped).
// Each command validates everything before it changes anything, so a failed
// command leaves the tables as they were.
#include <algorithm>
#include <string>

#include "bridge/bridge.h"
#include "bridge/learn.h"
#include "core/limits.h"
#include "overlay/overlay.h"
#include "proto/ethernet.h"

namespace vpc {

static std::string mac_str(Mac m) {
  char b[18];
  mac_format(m, b);
  return b;
}

static bool switch_ok(const std::vector<SwitchState>& v, SwitchId s) {
  return s < v.size() && v[s].in_use;
}

Bridge::Bridge(Core& core, Overlay& overlay, uint32_t max_switches, uint32_t max_vteps)
    : core_(core), overlay_(overlay), tx_ports_(&core.port(0)) {
  switches_.resize(max_switches);
  ports_.resize(core.max_ports());
  peers_.resize(max_vteps);
  members_.reserve(1024);
  switch_ctr_.reset(new SwitchCounterBlock[max_switches]());
  for (uint32_t i = 0; i < max_switches; ++i) switches_[i].counters = &switch_ctr_[i];
}

// The ranges a switch's mutable settings share with the control plane
// (core/limits.h; agingMs is agingSeconds in milliseconds).
static Result check_switch_limits(const SwitchConfig& cfg) {
  if (!limit::switchMacLimit.contains(cfg.mac_limit))
    return Result::error(Status::kInvalidArgument, range_error(limit::switchMacLimit));
  const Limit aging_ms{"agingMs", "agingMs", 1000 * limit::agingSeconds.min, 1000 * limit::agingSeconds.max};
  if (!aging_ms.contains(cfg.aging_ms)) return Result::error(Status::kInvalidArgument, range_error(aging_ms));
  return {};
}

Result Bridge::create_switch(const SwitchConfig& cfg) {
  if (!limit::vni.contains(cfg.vni)) return Result::error(Status::kInvalidArgument, range_error(limit::vni));
  if (Result r = check_switch_limits(cfg); !r.ok()) return r;
  if (vni_map_.count(cfg.vni))
    return Result::error(Status::kAlreadyExists, "vni: " + std::to_string(cfg.vni) + " is already used by another switch");
  SwitchId free_id = kNoId;
  for (SwitchId s = 0; s < switches_.size() && free_id == kNoId; ++s)
    if (!switches_[s].in_use) free_id = s;
  if (free_id == kNoId) return Result::error(Status::kLimitExceeded, "switches: maxSwitches reached");
  SwitchState& sw = switches_[free_id];
  sw.cfg = cfg;
  sw.refresh_ms = learn_refresh_ms(cfg.aging_ms);
  sw.fdb = Fdb(std::clamp<uint32_t>(cfg.fdb_capacity, 16, uint32_t(limit::fdbCapacity.max)));
  sw.members.clear();
  sw.local_members = 0;
  sw.peers = 0;
  sw.static_entries = 0;
  sw.generation++;
  sw.full_reported = false;
  sw.too_big = TooBigBucket{};
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

Result Bridge::set_switch(SwitchId id, const SwitchConfig& n) {
  if (!switch_ok(switches_, id)) return Result::error(Status::kNotFound, "switch: no such switch");
  if (Result r = check_switch_limits(n); !r.ok()) return r;
  SwitchState& sw = switches_[id];
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

Result Bridge::delete_switch(SwitchId id) {
  if (!switch_ok(switches_, id)) return Result::error(Status::kNotFound, "switch: no such switch");
  SwitchState& sw = switches_[id];
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
      BridgePeer& v = peers_[m.vtep];
      v.members.erase(std::remove_if(v.members.begin(), v.members.end(),
                                     [&](const std::pair<SwitchId, MemberId>& x) { return x.second == mid; }),
                      v.members.end());
      v.cache_sw = kNoId;
      kpath_member_closed(mid);
      overlay_.member_closed(mid, m.vtep);
    }
    m = Member{};
  }
  sw.members.clear();
  sw.in_use = false;
  sw.fdb = Fdb(16);
  vni_map_.erase(sw.cfg.vni);
  last_vni_sw_ = kNoId;
  cnt_set(sw.counters->in_use, 0);
  return {};
}

// ---------------------------------------------------------------- ports

// The (VLAN, switch) mappings of a new port, all checked before anything
// changes: VLAN IDs, existing switches, no VLAN or switch twice.
Result Bridge::check_join(const Command& c, std::vector<std::pair<uint16_t, SwitchId>>* out) const {
  std::vector<std::pair<uint16_t, SwitchId>>& maps = *out;
  maps.clear();
  if (c.untagged != kNoId) maps.push_back({0, c.untagged});
  for (const VlanMapping& v : c.vlans) {
    if (!limit::vlan.contains(v.vlan)) return Result::error(Status::kInvalidArgument, range_error(limit::vlan, "vlans: VLAN ID"));
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
  return {};
}

Result Bridge::check_members_free(size_t wanted) const {
  size_t free_members = 0;
  for (const Member& m : members_) free_members += !m.in_use;
  if (members_.size() - free_members + wanted > kMaxMembers)
    return Result::error(Status::kLimitExceeded, "ports: too many switch memberships");
  return {};
}

void Bridge::set_port_learning(PortId pid, const PortConfig& pc) {
  LearnSource& ls = ports_[pid].learn;
  ls.learning = pc.learning;
  ls.mac_limit = pc.mac_limit;
  ls.cache_member = kNoMember;  // security or learning may have changed
  if (pc.mac_limit == 0 || ls.learned < pc.mac_limit) ls.limit_reported = false;
}

// The port's lockedMacs changed (pc holds the new, sorted list): what it
// learned from a MAC the list no longer allows is forgotten, and every
// switch it is in gets a new generation, so the kernel path's entries for
// its flows are void and their next frames meet learn()'s check.
void Bridge::port_security_changed(PortId pid, const std::vector<Mac>& locked) {
  for (MemberId mid : ports_[pid].members) {
    SwitchState& sw = switches_[members_[mid].sw];
    if (!locked.empty()) {
      sw.fdb.erase_if(
          [&](const FdbEntry& e) {
            return e.member == mid && !(e.flags & kFdbStatic) && !std::binary_search(locked.begin(), locked.end(), e.mac);
          },
          [&](const FdbEntry& e) { remove_entry_effects(sw, e); });
      sw.counters->set(SwitchCounter::fdb_entries, sw.fdb.size());
    }
    sw.generation++;
  }
}

// A port the core just opened joins its switches: one member per mapping.
void Bridge::join(PortId pid, const std::vector<std::pair<uint16_t, SwitchId>>& maps, const PortConfig& pc,
                  bool trunk) {
  BridgePort& bp = ports_[pid];
  bp.learn = LearnSource{};
  bp.learn.learned_gauge = &core_.port_counters(pid).c[size_t(PortCounter::fdb_learned)];
  set_port_learning(pid, pc);
  bp.untagged = kNoMember;
  bp.vlan_map.reset();
  bp.members.clear();
  if (trunk) {
    bp.vlan_map.reset(new MemberId[4096]);
    std::fill(bp.vlan_map.get(), bp.vlan_map.get() + 4096, kNoMember);
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
    bp.members.push_back(mid);
    if (vlan == 0) bp.untagged = mid;
    else bp.vlan_map[vlan] = mid;
  }
  kpath_join(pid);
}

// The uplink's port is in no switch; it learns nothing itself (remote MACs
// are learned per VTEP).
void Bridge::uplink_opened(PortId pid) {
  BridgePort& bp = ports_[pid];
  bp.learn = LearnSource{};
  bp.untagged = kNoMember;
  bp.vlan_map.reset();
  bp.members.clear();
  kpath_uplink_opened(pid);
}

// A port leaves every switch: every FDB entry that points at it goes,
// learned or static.
void Bridge::leave(PortId pid) {
  kpath_leave(pid);
  BridgePort& bp = ports_[pid];
  for (MemberId mid : bp.members) {
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
  bp.members.clear();
  bp.vlan_map.reset();
}

// Finds the member through which port `p` belongs to switch `s`.
MemberId Bridge::member_of(PortId p, SwitchId s) const {
  if (p >= ports_.size() || !core_.port(p).in_use) return kNoMember;
  for (MemberId mid : ports_[p].members)
    if (members_[mid].sw == s) return mid;
  return kNoMember;
}

// ---------------------------------------------------------------- FDB

Result Bridge::add_static(SwitchId s, PortId port, Mac mac) {
  if (!switch_ok(switches_, s)) return Result::error(Status::kNotFound, "switch: no such switch");
  if (port >= ports_.size() || !core_.port(port).in_use) return Result::error(Status::kNotFound, "port: no such port");
  if (mac_is_multicast(mac) || mac == 0)
    return Result::error(Status::kInvalidArgument, "mac: a static entry needs a unicast address");
  MemberId mid = member_of(port, s);
  if (mid == kNoMember) return Result::error(Status::kInvalidArgument, "port: is not a member of this switch");
  return insert_static(switches_[s], mac, mid);
}

// Static entries never age and learning never overwrites them. They count in
// the table but are accepted beyond macLimit: the limit guards against
// learning floods, not against the operator.
// `flags` is kFdbStatic, or kFdbStatic | kFdbEvpn for an entry of the EVPN
// control plane: it replaces a learned or EVPN entry (the MAC moved), never
// a configured static one, and a configured static entry replaces it.
Result Bridge::insert_static(SwitchState& sw, Mac mac, MemberId mid, uint16_t flags) {
  FdbEntry* e = sw.fdb.find(mac);
  if (e) {
    if (e->member == mid && e->flags == flags) return {};  // same entry: idempotent
    if ((e->flags & kFdbStatic) && !(e->flags & kFdbEvpn))
      return Result::error(Status::kAlreadyExists, "mac: " + mac_str(mac) + " is already a static entry elsewhere");
    // A learned (or EVPN) entry is replaced.
    remove_entry_effects(sw, *e);
    e->member = mid;
    e->flags = flags;
    e->last_seen_ms = core_.now_ms();
  } else {
    auto ins = sw.fdb.insert(mac, mid, flags, core_.now_ms());
    if (!ins.entry) return Result::error(Status::kLimitExceeded, "fdb: out of memory growing the table");
  }
  sw.static_entries++;
  if (members_[mid].remote()) peers_[members_[mid].vtep].statics++;
  sw.generation++;
  sw.counters->set(SwitchCounter::fdb_entries, sw.fdb.size());
  sw.counters->set(SwitchCounter::fdb_static, sw.static_entries);
  return {};
}

Result Bridge::delete_static(SwitchId s, Mac mac, bool evpn) {
  if (!switch_ok(switches_, s)) return Result::error(Status::kNotFound, "switch: no such switch");
  SwitchState& sw = switches_[s];
  FdbEntry* e = sw.fdb.find(mac);
  if (!e || !(e->flags & kFdbStatic) || bool(e->flags & kFdbEvpn) != evpn)
    return Result::error(Status::kNotFound, "mac: " + mac_str(mac) + " has no " + (evpn ? "EVPN" : "static") + " entry in this switch");
  remove_entry_effects(sw, *e);
  sw.fdb.erase(mac);
  sw.counters->set(SwitchCounter::fdb_entries, sw.fdb.size());
  sw.counters->set(SwitchCounter::fdb_static, sw.static_entries);
  return {};
}

Result Bridge::dump_fdb(SwitchId s) const {
  if (!switch_ok(switches_, s)) return Result::error(Status::kNotFound, "switch: no such switch");
  Result r;
  const uint32_t now_ms = core_.now_ms();
  r.entries.reserve(switches_[s].fdb.size());
  switches_[s].fdb.for_each([&](const FdbEntry& e) {
    const Member& m = members_[e.member];
    bool st = e.flags & kFdbStatic;
    FdbDumpEntry d;
    d.mac = e.mac;
    d.port = m.port;
    d.vlan = m.vlan;
    d.is_static = st;
    d.evpn = e.flags & kFdbEvpn;
    d.age_ms = st ? 0u : uint32_t(now_ms - e.last_seen_ms);
    if (m.remote()) {
      d.remote = true;
      d.vtep = overlay_.peer_ip(m.vtep);
      d.port = overlay_.uplink_port();
    }
    r.entries.push_back(d);
  });
  return r;
}

Result Bridge::flush_fdb(SwitchId s, PortId port) {
  if (!switch_ok(switches_, s)) return Result::error(Status::kNotFound, "switch: no such switch");
  MemberId only = kNoMember;
  if (port != kNoId) {
    only = member_of(port, s);
    if (only == kNoMember) return Result::error(Status::kNotFound, "port: is not a member of this switch");
  }
  SwitchState& sw = switches_[s];
  Result r;
  r.removed = sw.fdb.erase_if(
      [only](const FdbEntry& e) { return !(e.flags & kFdbStatic) && (only == kNoMember || e.member == only); },
      [&](const FdbEntry& e) { remove_entry_effects(sw, e); });
  sw.counters->set(SwitchCounter::fdb_entries, sw.fdb.size());
  if (sw.fdb.size() < sw.cfg.mac_limit) sw.full_reported = false;
  return r;
}

// ---------------------------------------------------------------- remote members

SwitchId Bridge::switch_by_vni_slow(uint32_t vni) {
  auto it = vni_map_.find(vni);
  if (it == vni_map_.end()) return kNoId;
  last_vni_ = vni;
  last_vni_sw_ = it->second;
  return it->second;
}

MemberId Bridge::remote_member_slow(SwitchId s, uint32_t vt, bool create) {
  BridgePeer& v = peers_[vt];
  for (auto& [sw, m] : v.members)
    if (sw == s) {
      v.cache_sw = s;
      v.cache_member = m;
      return m;
    }
  if (!create) return kNoMember;
  size_t used = 0;
  MemberId mid = kNoMember;
  for (size_t i = 0; i < members_.size(); ++i) {
    if (members_[i].in_use) ++used;
    else if (mid == kNoMember) mid = MemberId(i);
  }
  if (used >= kMaxMembers) return kNoMember;
  if (mid == kNoMember) {
    mid = MemberId(members_.size());
    members_.push_back({});
  }
  Member& m = members_[mid];
  m = Member{};
  m.sw = s;
  m.in_use = true;
  m.in_flood = false;
  m.vtep = vt;
  v.members.push_back({s, mid});
  switches_[s].members.push_back(mid);
  overlay_.member_opened(mid, s, vt);
  return mid;
}


void Bridge::peer_created(uint32_t vt, uint64_t* learned_gauge) {
  peers_[vt] = BridgePeer{};
  peers_[vt].learn.learned_gauge = learned_gauge;
}

void Bridge::peer_released(uint32_t vt) {
  BridgePeer& v = peers_[vt];
  for (auto& [s, mid] : v.members) {
    std::vector<MemberId>& list = switches_[s].members;
    list.erase(std::remove(list.begin(), list.end(), mid), list.end());
    kpath_member_closed(mid);
    overlay_.member_closed(mid, vt);
    members_[mid] = Member{};
  }
  v = BridgePeer{};
}

// VTEP `vt` becomes a peer of switch `s`: it joins the switch's flood list.
Result Bridge::add_peer(SwitchId s, uint32_t vt) {
  MemberId mid = remote_member(s, vt, true);
  if (mid == kNoMember) return Result::error(Status::kLimitExceeded, "peers: too many switch memberships");
  Member& m = members_[mid];
  if (m.in_flood) return {};  // already a peer: idempotent
  m.in_flood = true;
  peers_[vt].configured++;
  switches_[s].peers++;
  return {};
}

// `forget_learned`: the MACs learned behind it go (static and EVPN entries
// stay: they name the VTEP themselves); otherwise they stay until they age.
bool Bridge::delete_peer(SwitchId s, uint32_t vt, bool forget_learned) {
  MemberId mid = vt == kNoPeer ? kNoMember : remote_member(s, vt, false);
  if (mid == kNoMember || !members_[mid].in_flood) return false;
  members_[mid].in_flood = false;
  peers_[vt].configured--;
  SwitchState& sw = switches_[s];
  sw.peers--;
  if (forget_learned) {
    sw.fdb.erase_if([&](const FdbEntry& e) { return e.member == mid && !(e.flags & kFdbStatic); },
                    [&](const FdbEntry& e) { remove_entry_effects(sw, e); });
    sw.counters->set(SwitchCounter::fdb_entries, sw.fdb.size());
  }
  return true;
}

Result Bridge::add_remote_mac(SwitchId s, Mac mac, uint32_t vt, bool evpn) {
  MemberId mid = remote_member(s, vt, true);
  if (mid == kNoMember) return Result::error(Status::kLimitExceeded, "peers: too many switch memberships");
  return insert_static(switches_[s], mac, mid, evpn ? kFdbStatic | kFdbEvpn : kFdbStatic);
}

bool Bridge::any_peers() const {
  for (const auto& [vni, s] : vni_map_)
    if (switches_[s].peers) return true;
  return false;
}

// Learned remote entries go; static remote entries stay (they point at
// VTEPs, not at the uplink) and start working again with a new uplink.
void Bridge::forget_learned_remote() {
  for (const auto& [vni, s] : vni_map_) {
    SwitchState& sw = switches_[s];
    sw.fdb.erase_if([&](const FdbEntry& e) { return members_[e.member].remote() && !(e.flags & kFdbStatic); },
                    [&](const FdbEntry& e) { remove_entry_effects(sw, e); });
    sw.counters->set(SwitchCounter::fdb_entries, sw.fdb.size());
  }
}

}  // namespace vpc
