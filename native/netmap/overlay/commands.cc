// The overlay's commands: the uplink (VTEP), peers (flood lists) and static
// remote MACs; the VTEPs they name are the overlay's, the memberships and FDB
// entries the bridge's (bridge/commands.cc). Same rules as there: validate
// everything, then change; a failed command leaves the tables as they were.
#include <algorithm>
#include <string>

#include "overlay/overlay.h"

namespace vpc {

static bool unicast_ip(const IpAddr& a) {
  if (a.is_zero()) return false;
  if (a.is_v4()) {
    uint32_t x = a.v4();
    return (x >> 28) < 0xE && (x >> 24) != 0 && (x >> 24) != 127;  // not multicast, 240/4 (broadcast too), 0/8, 127/8
  }
  return a.b[0] != 0xff && !(std::all_of(a.b, a.b + 15, [](uint8_t b) { return b == 0; }) && a.b[15] == 1);
}

// Whether `ip` may be a remote VTEP: a unicast address that is not our own.
// The one check for configured peers and static remote MACs (commands) and
// for VTEPs learned from traffic (decapsulation), so traffic cannot create a
// VTEP the API would refuse. Returns the reason, or nullptr when it may.
const char* Overlay::peer_ip_refused(const IpAddr& ip) const {
  if (!unicast_ip(ip)) return "must be a unicast IP address";
  if (uplink_.active && (ip.is_v4() ? uplink_.cfg.ip4 : uplink_.cfg.ip6) == ip) return "is this host's own VTEP address";
  // The network and broadcast addresses of the uplink's own IPv4 subnet
  // (where it has such: /30 and shorter) are no host's.
  if (uplink_.active && ip.is_v4() && !uplink_.cfg.ip4.is_zero() && uplink_.cfg.prefix4 <= 30) {
    const uint32_t mask = ~0u << (32 - uplink_.cfg.prefix4);
    const uint32_t x = ip.v4();
    if ((x & mask) == (uplink_.cfg.ip4.v4() & mask)) {
      if ((x & ~mask) == ~mask) return "is the broadcast address of the uplink's subnet";
      if ((x & ~mask) == 0) return "is the network address of the uplink's subnet";
    }
  }
  return nullptr;
}

Result Overlay::check_uplink_config(const UplinkConfig& u) const {
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
  if (core_.pool().headroom() < kVxlanOverhead6 + kVlanTagLen)
    return Result::error(Status::kInvalidArgument, "headroom: VXLAN needs at least 74 bytes of buffer headroom");
  return {};
}

Result Overlay::create_uplink(Command& c) {
  if (uplink_.active) return Result::error(Status::kAlreadyExists, "uplink: this engine already has an uplink");
  if (!c.new_port) return Result::error(Status::kInvalidArgument, "uplink: no port backend given");
  Result bad = check_uplink_config(c.uplink_cfg);
  if (!bad.ok()) return bad;
  bad = core_.check_port_config(c.port_cfg, *c.new_port);
  if (!bad.ok()) return bad;
  const bool stand_in = c.new_port->hw_mac() == 0;  // its interface is missing (a pipe's never appears)
  Mac mac = stand_in ? c.port_cfg.mac : c.new_port->hw_mac();
  if (mac == 0 || mac_is_multicast(mac)) return Result::error(Status::kInvalidArgument, "mac: the uplink needs a unicast MAC");
  if (!core_.has_free_port_slot()) return Result::error(Status::kLimitExceeded, "ports: maxPorts reached");

  PortConfig pc = c.port_cfg;
  pc.mac = mac;
  PortId pid = core_.open_port(std::move(c.new_port), pc, true);

  uplink_.active = true;
  uplink_.generation++;
  uplink_.port = pid;
  uplink_.cfg = c.uplink_cfg;
  uplink_.mac = mac;
  uplink_.mac_stand_in = stand_in;
  uplink_.mac_untold = false;
  bridge_.uplink_opened(pid);  // after the above: the kernel path reads our VTEP from it
  UplinkCounterBlock& uc = *uplink_.counters;
  std::fill(std::begin(uc.c), std::end(uc.c), 0);
  for (PeerState& v : peers_)
    if (v.in_use) peer_route(v);
  Result r;
  r.id = pid;
  r.mac = mac;
  return r;
}

Result Overlay::delete_uplink() {
  if (!uplink_.active) return Result::error(Status::kNotFound, "uplink: there is none");
  if (bridge_.any_peers()) return Result::error(Status::kInUse, "uplink: switches still have peers; delete them first");
  bridge_.forget_learned_remote();
  drop_pending();
  neighbors_.clear();
  for (PeerState& v : peers_) v.reachable = false;
  PortId pid = uplink_.port;
  uplink_.active = false;
  uplink_.port = kNoId;
  bridge_.leave(pid);
  Result r;
  r.closed_port = core_.close_port(pid);
  return r;
}

// Frees the frames waiting for a next hop (the uplink goes, or the engine).
void Overlay::drop_pending() {
  for (Neighbor& nb : neighbors_)
    for (Neighbor::Pending& q : nb.pending) core_.cache().free(q.pkt.buf);
}

Result Overlay::add_peer(SwitchId s, const IpAddr& ip) {
  if (!bridge_.switch_exists(s)) return Result::error(Status::kNotFound, "switch: no such switch");
  if (const char* why = peer_ip_refused(ip)) return Result::error(Status::kInvalidArgument, std::string("peer: ") + why);
  uint32_t vt = peer_get(ip);
  if (vt == kNoPeer) return Result::error(Status::kLimitExceeded, "peers: maxVteps reached");
  Result r = bridge_.add_peer(s, vt);
  if (r.ok()) peer_configure(peers_[vt]);
  return r;
}

Result Overlay::delete_peer(SwitchId s, const IpAddr& ip) {
  if (!bridge_.switch_exists(s)) return Result::error(Status::kNotFound, "switch: no such switch");
  uint32_t vt = peer_find(ip);
  // A switch that takes VXLAN only from its peers hears no more from this
  // VTEP: the MACs learned behind it go now, so that their frames flood to
  // the peers left (the guest may have moved to one, or the VTEP changed its
  // address) instead of going to it until they age. With unknown peers
  // allowed the VTEP may still send, and its MACs stay.
  const bool forget = !(bridge_.allows_unknown_peers(s) && uplink_.cfg.allow_unknown_peers);
  if (!bridge_.delete_peer(s, vt, forget))
    return Result::error(Status::kNotFound, "peer: " + ip_format(ip) + " is not a peer of this switch");
  release_unreferenced_peers();
  return {};
}

// Frees every VTEP nothing refers to any more (BridgePeer::referenced),
// with its per-switch members: VTEPs learned from traffic would otherwise
// pile up until maxVteps. Cheap enough for every housekeeping tick.
void Overlay::release_unreferenced_peers() {
  // The VTEPs in use are the index's values: walking peers_ instead (maxVteps
  // slots) took 40 us of every housekeeping tick. A release erases its own
  // entry, which `it` has already left (other iterators stay valid).
  for (auto it = peer_index_.begin(); it != peer_index_.end();) {
    const uint32_t vt = it->second;
    ++it;
    PeerState& v = peers_[vt];
    if (bridge_.peer_referenced(vt)) continue;
    bridge_.peer_released(vt);
    if (v.reachable && v.neighbor < neighbors_.size() && neighbors_[v.neighbor].users) neighbors_[v.neighbor].users--;
    peer_index_.erase(v.ip);
    if (last_peer_ == vt) set_last_peer(kNoPeer);
    cnt_set(v.counters->in_use, 0);
    peer_configure(v);  // gives back its learned slot, if it held one
    v = PeerState{};
  }
}

Result Overlay::add_remote_mac(SwitchId s, Mac mac, const IpAddr& ip, bool evpn) {
  if (!bridge_.switch_exists(s)) return Result::error(Status::kNotFound, "switch: no such switch");
  if (mac_is_multicast(mac) || mac == 0)
    return Result::error(Status::kInvalidArgument, "mac: a static entry needs a unicast address");
  if (const char* why = peer_ip_refused(ip)) return Result::error(Status::kInvalidArgument, std::string("vtep: ") + why);
  uint32_t vt = peer_get(ip);
  if (vt == kNoPeer) return Result::error(Status::kLimitExceeded, "peers: maxVteps reached");
  Result r = bridge_.add_remote_mac(s, mac, vt, evpn);
  if (r.ok()) peer_configure(peers_[vt]);
  return r;
}

Result Overlay::dump_neighbors() const {
  static const char* kStates[] = {"incomplete", "reachable", "stale", "failed"};
  Result r;
  for (const Neighbor& nb : neighbors_) {
    // A failed next hop no VTEP routes through any more (its peer was
    // removed) is history: the table keeps its slot, the listing does not.
    if (nb.users == 0 && nb.state == Neighbor::kFailed) continue;
    r.neighbors.push_back({nb.ip, nb.mac, kStates[nb.state], uint32_t(core_.now_ms() - nb.updated_ms)});
  }
  return r;
}

// ---------------------------------------------------------------- lifetime

Overlay::Overlay(Core& core, Bridge& bridge, uint32_t max_vteps, uint32_t max_learned_vteps)
    : core_(core), bridge_(bridge), max_learned_vteps_(max_learned_vteps) {
  peers_.resize(max_vteps);
  peer_ctr_.reset(new PeerCounterBlock[max_vteps]());
  uplink_ctr_ = std::make_unique<UplinkCounterBlock>();
  uplink_.counters = uplink_ctr_.get();
}

Overlay::~Overlay() { drop_pending(); }

void Overlay::tick() {
  if (uplink_.active) {
    adopt_interface_mac();
    if (uplink_.mac_untold && core_.port(uplink_.port).up) tell_new_mac();
    neighbor_tick();
  }
  release_unreferenced_peers();
}

// The uplink's MAC is its interface's (a pipe's has none: it keeps the
// configured one). An uplink created before its interface existed takes it
// when it appears, as one created after would have; an interface given
// another MAC (ip link set ... address, or deleted and made again) passes it
// on too, so that frames stop leaving with a source MAC the host no longer
// has, and a non-promiscuous NIC keeps receiving what is sent to us. The
// VTEPs' outer headers rebuild (generation), the kernel path reads the MAC
// at its next refresh. After a change (not the stand-in's first adoption:
// nothing was sent with it) the underlay is told, once the link is up (a
// NIC's MAC is often changed while it is down): tell_new_mac().
void Overlay::adopt_interface_mac() {
  const Mac hw = core_.port(uplink_.port).port->hw_mac();
  if (hw == 0 || hw == uplink_.mac) {
    if (hw != 0) uplink_.mac_stand_in = false;
    return;
  }
  const bool announce = !uplink_.mac_stand_in;
  uplink_.mac_stand_in = false;
  uplink_.mac = hw;
  uplink_.generation++;
  core_.port(uplink_.port).cfg.mac = hw;
  if (announce) uplink_.mac_untold = true;
}

// The new MAC is announced (announce_mac: an ARP announcement and an
// unsolicited Neighbor Advertisement), and every next hop in use is asked
// again, a request from the new MAC updating its neighbour cache too
// (RFC 826, RFC 4861 7.2.3).
void Overlay::tell_new_mac() {
  uplink_.mac_untold = false;
  announce_mac();
  for (Neighbor& nb : neighbors_) {
    if (nb.users == 0 || (nb.state != Neighbor::kReachable && nb.state != Neighbor::kStale)) continue;
    nb.state = Neighbor::kStale;  // still used while the request is out
    nb.tries = 0;
    neighbor_request(nb);
  }
}

uint32_t Overlay::frames_pending() const {
  uint32_t n = 0;
  for (const Neighbor& nb : neighbors_) n += uint32_t(nb.pending.size());
  return n;
}

}  // namespace vpc
