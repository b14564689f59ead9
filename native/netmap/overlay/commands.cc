// Commands for the VXLAN overlay: the uplink (VTEP), peers (flood lists) and
// static remote MACs. Same rules as bridge/commands.cc: validate everything,
// then change; a failed command leaves the tables as they were.
#include <algorithm>
#include <string>

#include "core/engine.h"

namespace vpc {

static bool unicast_ip(const IpAddr& a) {
  if (a.is_zero()) return false;
  if (a.is_v4()) {
    uint32_t x = a.v4();
    return (x >> 28) != 0xE && x != 0xFFFFFFFFu && (x >> 24) != 0 && (x >> 24) != 127;
  }
  return a.b[0] != 0xff && !(std::all_of(a.b, a.b + 15, [](uint8_t b) { return b == 0; }) && a.b[15] == 1);
}

// Whether `ip` may be a remote VTEP: a unicast address that is not our own.
// The one check for configured peers and static remote MACs (commands) and
// for VTEPs learned from traffic (decapsulation), so traffic cannot create a
// VTEP the API would refuse. Returns the reason, or nullptr when it may.
const char* Engine::vtep_ip_refused(const IpAddr& ip) const {
  if (!unicast_ip(ip)) return "must be a unicast IP address";
  if (uplink_.active && (ip.is_v4() ? uplink_.cfg.ip4 : uplink_.cfg.ip6) == ip) return "is this host's own VTEP address";
  return nullptr;
}

Result Engine::check_uplink_config(const UplinkConfig& u) const {
  const bool has4 = !u.ip4.is_zero(), has6 = !u.ip6.is_zero();
  if (!has4 && !has6) return Result::error(Status::kInvalidArgument, "uplink: needs a local IPv4 or IPv6 VTEP address");
  if (has4 && (!u.ip4.is_v4() || !unicast_ip(u.ip4)))
    return Result::error(Status::kInvalidArgument, "localIp4: must be a unicast IPv4 address");
  if (has6 && (u.ip6.is_v4() || !unicast_ip(u.ip6)))
    return Result::error(Status::kInvalidArgument, "localIp6: must be a unicast IPv6 address");
  if (u.prefix4 < 1 || u.prefix4 > 32) return Result::error(Status::kInvalidArgument, "prefix4: must be in 1..32");
  if (u.prefix6 < 1 || u.prefix6 > 128) return Result::error(Status::kInvalidArgument, "prefix6: must be in 1..128");
  if (!u.gateway4.is_zero()) {
    if (!has4 || !u.gateway4.is_v4()) return Result::error(Status::kInvalidArgument, "gateway4: needs an IPv4 VTEP address and an IPv4 gateway");
    if (!ip_same_prefix(u.ip4, u.gateway4, u.prefix4))
      return Result::error(Status::kInvalidArgument, "gateway4: is not on the uplink's IPv4 subnet");
  }
  if (!u.gateway6.is_zero()) {
    if (!has6 || u.gateway6.is_v4()) return Result::error(Status::kInvalidArgument, "gateway6: needs an IPv6 VTEP address and an IPv6 gateway");
    if (!ip_same_prefix(u.ip6, u.gateway6, u.prefix6))
      return Result::error(Status::kInvalidArgument, "gateway6: is not on the uplink's IPv6 subnet");
  }
  if (u.udp_port == 0) return Result::error(Status::kInvalidArgument, "udpPort: must be in 1..65535");
  if (u.src_port_min == 0 || u.src_port_min > u.src_port_max)
    return Result::error(Status::kInvalidArgument, "srcPortRange: must be 1..65535 with min <= max");
  if (u.ttl == 0) return Result::error(Status::kInvalidArgument, "ttl: must be in 1..255");
  if (u.neighbor_reachable_ms < 1000 || u.neighbor_retry_ms < 100)
    return Result::error(Status::kInvalidArgument, "neighbor timers: reachable >= 1000 ms, retry >= 100 ms");
  if (pool_->headroom() < kVxlanOverhead6 + kVlanTagLen)
    return Result::error(Status::kInvalidArgument, "headroom: VXLAN needs at least 74 bytes of buffer headroom");
  return {};
}

Result Engine::do_create_uplink(Command& c) {
  if (uplink_.active) return Result::error(Status::kAlreadyExists, "uplink: this engine already has an uplink");
  if (!c.new_port) return Result::error(Status::kInvalidArgument, "uplink: no port backend given");
  Result bad = check_uplink_config(c.uplink_cfg);
  if (!bad.ok()) return bad;
  bad = check_port_config(c.port_cfg);
  if (!bad.ok()) return bad;
  Mac mac = c.new_port->hw_mac() ? c.new_port->hw_mac() : c.port_cfg.mac;
  if (mac == 0 || mac_is_multicast(mac)) return Result::error(Status::kInvalidArgument, "mac: the uplink needs a unicast MAC");
  PortId pid = free_port_slot();
  if (pid == kNoId) return Result::error(Status::kLimitExceeded, "ports: maxPorts reached");

  PortState& ps = ports_[pid];
  ps.port = std::move(c.new_port);
  ps.learn = LearnSource{};
  apply_port_config(ps, c.port_cfg);
  ps.cfg.mac = mac;
  ps.untagged = kNoMember;
  ps.vlan_map.reset();
  ps.members.clear();
  ps.is_uplink = true;
  ps.txn = 0;
  ps.tx_dirty = false;
  ps.up = ps.port->link_state() == LinkState::kUp;
  ps.tx_limit = ps.port->tx_frame_limit();
  activate_port_slot(pid);

  uplink_.active = true;
  uplink_.generation++;
  uplink_.port = pid;
  uplink_.cfg = c.uplink_cfg;
  uplink_.mac = mac;
  UplinkCounterBlock& uc = *uplink_.counters;
  std::fill(std::begin(uc.c), std::end(uc.c), 0);
  for (VtepState& v : vteps_)
    if (v.in_use) vtep_route(v);
  Result r;
  r.id = pid;
  r.mac = mac;
  return r;
}

Result Engine::do_delete_uplink(Command& c) {
  (void)c;
  if (!uplink_.active) return Result::error(Status::kNotFound, "uplink: there is none");
  for (const SwitchState& sw : switches_)
    if (sw.in_use && sw.peers)
      return Result::error(Status::kInUse, "uplink: switches still have peers; delete them first");
  // Learned remote entries go; static remote entries stay (they point at
  // VTEPs, not at the uplink) and start working again with a new uplink.
  for (SwitchState& sw : switches_) {
    if (!sw.in_use) continue;
    sw.fdb.erase_if([&](const FdbEntry& e) { return members_[e.member].remote() && !(e.flags & kFdbStatic); },
                    [&](const FdbEntry& e) { remove_entry_effects(sw, e); });
    sw.counters->set(SwitchCounter::fdb_entries, sw.fdb.size());
  }
  for (Neighbor& nb : neighbors_)
    for (Neighbor::Pending& q : nb.pending) cache_->free(q.pkt.buf);
  neighbors_.clear();
  for (VtepState& v : vteps_) v.reachable = false;
  PortId pid = uplink_.port;
  uplink_.active = false;
  uplink_.port = kNoId;
  release_port_slot(pid);
  return {};
}

Result Engine::do_add_peer(Command& c) {
  if (c.sw >= switches_.size() || !switches_[c.sw].in_use) return Result::error(Status::kNotFound, "switch: no such switch");
  if (const char* why = vtep_ip_refused(c.ip)) return Result::error(Status::kInvalidArgument, std::string("peer: ") + why);
  uint32_t vt = vtep_get(c.ip);
  if (vt == kNoVtep) return Result::error(Status::kLimitExceeded, "peers: maxVteps reached");
  MemberId mid = remote_member(c.sw, vt, true);
  if (mid == kNoMember) return Result::error(Status::kLimitExceeded, "peers: too many switch memberships");
  Member& m = members_[mid];
  if (m.in_flood) return {};  // already a peer: idempotent
  m.in_flood = true;
  vtep_configure(vteps_[vt]);
  vteps_[vt].configured++;
  switches_[c.sw].peers++;
  return {};
}

Result Engine::do_delete_peer(Command& c) {
  if (c.sw >= switches_.size() || !switches_[c.sw].in_use) return Result::error(Status::kNotFound, "switch: no such switch");
  uint32_t vt = vtep_find(c.ip);
  MemberId mid = vt == kNoVtep ? kNoMember : remote_member(c.sw, vt, false);
  if (mid == kNoMember || !members_[mid].in_flood)
    return Result::error(Status::kNotFound, "peer: " + ip_format(c.ip) + " is not a peer of this switch");
  // MACs learned behind it stay until they age: the VTEP may still send.
  members_[mid].in_flood = false;
  vteps_[vt].configured--;
  switches_[c.sw].peers--;
  release_unreferenced_vteps();
  return {};
}

// Frees every VTEP nothing refers to any more (see VtepState::unreferenced),
// with its per-switch members: VTEPs learned from traffic would otherwise
// pile up until maxVteps. Cheap enough for every housekeeping tick.
void Engine::release_unreferenced_vteps() {
  for (uint32_t vt = 0; vt < vteps_.size(); ++vt) {
    VtepState& v = vteps_[vt];
    if (!v.in_use || !v.unreferenced()) continue;
    for (auto& [s, mid] : v.members) {
      std::vector<MemberId>& list = switches_[s].members;
      list.erase(std::remove(list.begin(), list.end(), mid), list.end());
      members_[mid] = Member{};
    }
    if (v.reachable && v.neighbor < neighbors_.size() && neighbors_[v.neighbor].users) neighbors_[v.neighbor].users--;
    vtep_index_.erase(v.ip);
    if (last_vtep_ == vt) last_vtep_ = kNoVtep;
    cnt_set(v.counters->in_use, 0);
    vtep_configure(v);  // gives back its learned slot, if it held one
    v = VtepState{};
  }
}

Result Engine::do_add_remote_mac(Command& c) {
  if (c.sw >= switches_.size() || !switches_[c.sw].in_use) return Result::error(Status::kNotFound, "switch: no such switch");
  if (mac_is_multicast(c.mac) || c.mac == 0)
    return Result::error(Status::kInvalidArgument, "mac: a static entry needs a unicast address");
  if (const char* why = vtep_ip_refused(c.ip)) return Result::error(Status::kInvalidArgument, std::string("vtep: ") + why);
  uint32_t vt = vtep_get(c.ip);
  if (vt == kNoVtep) return Result::error(Status::kLimitExceeded, "peers: maxVteps reached");
  MemberId mid = remote_member(c.sw, vt, true);
  if (mid == kNoMember) return Result::error(Status::kLimitExceeded, "peers: too many switch memberships");
  return insert_static(switches_[c.sw], c.mac, mid, c.evpn ? kFdbStatic | kFdbEvpn : kFdbStatic);
}

Result Engine::do_dump_neighbors(Command& c) {
  (void)c;
  static const char* kStates[] = {"incomplete", "reachable", "stale", "failed"};
  Result r;
  for (const Neighbor& nb : neighbors_)
    r.neighbors.push_back({nb.ip, nb.mac, kStates[nb.state], uint32_t(now_ms_ - nb.updated_ms)});
  return r;
}

}  // namespace vpc
