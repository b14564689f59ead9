// The underlay side of the VTEP: answering ARP (RFC 826), Neighbor Discovery
// (RFC 4861) and echo (RFC 792, 4443) for the VTEP address, resolving next
// hops, and keeping the remote VTEP table.
//
// Neighbour states: INCOMPLETE (request sent, frames wait in a short queue),
// REACHABLE (confirmed within neighbor_reachable_ms), STALE (still used while
// a refresh request is out), FAILED (gave up after 3 tries; pending frames
// dropped and counted; the next frame for it starts over).
#include <algorithm>

#include "overlay/overlay.h"

namespace vpc {

namespace {
constexpr uint16_t kArpLen = 28;
constexpr uint8_t kIcmpEchoRequest = 8, kIcmpEchoReply = 0;
constexpr uint8_t kIcmp6EchoRequest = 128, kIcmp6EchoReply = 129;
constexpr uint8_t kNdNeighborSolicit = 135, kNdNeighborAdvert = 136;
constexpr uint8_t kNdOptSourceLl = 1, kNdOptTargetLl = 2;
constexpr uint32_t kNdFlagSolicited = 0x40000000u, kNdFlagOverride = 0x20000000u;
constexpr uint8_t kAllNodes6[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
constexpr Mac kAllNodesMac = 0x333300000001ull;
constexpr uint8_t kMaxTries = 3;

// Finds the link-layer address option of an ND message (options start after
// the 24-byte NS/NA body).
bool nd_ll_option(const uint8_t* icmp, uint32_t len, uint8_t type, Mac* mac) {
  for (uint32_t o = 24; o + 8 <= len;) {
    uint32_t olen = uint32_t(icmp[o + 1]) * 8;
    if (olen == 0 || o + olen > len) return false;
    if (icmp[o] == type && olen >= 8) {
      *mac = mac_load(icmp + o + 2);
      return true;
    }
    o += olen;
  }
  return false;
}

void icmp6_checksum(uint8_t* ip6, uint16_t icmp_len) {
  uint8_t* icmp = ip6 + kIpv6HeaderLen;
  store_be16(icmp + 2, 0);
  uint32_t sum = csum_pseudo6(ip6 + 8, ip6 + 24, icmp_len, kIpProtoIcmpv6);
  store_be16(icmp + 2, csum_fold(csum_partial(icmp, icmp_len, sum)));
}
}  // namespace

// ---------------------------------------------------------------- responders

bool Overlay::handle_arp(Pkt& p, uint8_t* f) {
  if (p.len < kEthHeaderLen + kArpLen) return false;
  uint8_t* a = f + kEthHeaderLen;
  if (load_be16(a) != 1 || load_be16(a + 2) != kEtherTypeIpv4 || a[4] != 6 || a[5] != 4) return false;
  uint16_t op = load_be16(a + 6);
  Mac sender_mac = mac_load(a + 8);
  IpAddr sender_ip = IpAddr::from_v4(load_be32(a + 14));
  const uint8_t* target_ip = a + 24;
  // RFC 826: refresh what we already track from any ARP we see.
  if (!mac_is_multicast(sender_mac) && sender_mac != 0) neighbor_learn(sender_ip, sender_mac, op == 2);
  if (op != 1 || std::memcmp(target_ip, uplink_.cfg.ip4.b + 12, 4) != 0) return false;
  // Answer in place.
  store_be16(a + 6, 2);
  std::memcpy(a + 18, a + 8, 10);  // target <- sender (MAC and IP)
  mac_store(a + 8, uplink_.mac);
  std::memcpy(a + 14, uplink_.cfg.ip4.b + 12, 4);
  mac_store(f, sender_mac);
  mac_store(f + 6, uplink_.mac);
  if (p.len < kEthMinFrame) {
    // Pad to the Ethernet minimum with zeros: the buffer's tail still holds
    // whatever frame it carried before (possibly another tenant's).
    std::memset(f + p.len, 0, kEthMinFrame - p.len);
    p.len = kEthMinFrame;
  }
  uplink_.counters->add(UplinkCounter::arp_replies_sent, 1);
  transmit_uplink(p);
  return true;
}

// ICMP to our IPv4 address: echo requests get a reply, the rest is not ours.
// Returns 1 when the buffer was consumed.
int Overlay::handle_ipv4_local(Pkt& p, uint8_t* f, uint16_t ihl) {
  uint8_t* ip = f + kEthHeaderLen;
  uint16_t tot = load_be16(ip + 2);
  if (tot < ihl + 8) return 0;
  uint8_t* icmp = ip + ihl;
  if (icmp[0] != kIcmpEchoRequest || icmp[1] != 0) return 0;
  uint16_t icmp_len = uint16_t(tot - ihl);
  if (csum_fold(csum_partial(icmp, icmp_len, 0)) != 0) return 0;
  icmp[0] = kIcmpEchoReply;
  store_be16(icmp + 2, 0);
  store_be16(icmp + 2, csum_fold(csum_partial(icmp, icmp_len, 0)));
  uint8_t tmp[4];
  std::memcpy(tmp, ip + 12, 4);
  std::memcpy(ip + 12, ip + 16, 4);
  std::memcpy(ip + 16, tmp, 4);
  ip[8] = uplink_.cfg.ttl;
  store_be16(ip + 10, 0);
  store_be16(ip + 10, csum_fold(csum_partial(ip, ihl, 0)));
  Mac requester = eth_src(f);
  mac_store(f, requester);
  mac_store(f + 6, uplink_.mac);
  uplink_.counters->add(UplinkCounter::echo_replies_sent, 1);
  transmit_uplink(p);
  return 1;
}

// ICMPv6 for us: Neighbor Solicitations for our address, Advertisements for
// next hops we track, and echo requests. Returns 1 when the buffer was
// consumed.
int Overlay::handle_ipv6_local(Pkt& p, uint8_t* f) {
  uint8_t* ip = f + kEthHeaderLen;
  const IpAddr& me = uplink_.cfg.ip6;
  uint32_t plen = load_be16(ip + 4);
  if (plen < 8) return 0;
  uint8_t* icmp = ip + kIpv6HeaderLen;
  uint8_t type = icmp[0];
  if (csum_fold(csum_partial(icmp, plen, csum_pseudo6(ip + 8, ip + 24, plen, kIpProtoIcmpv6))) != 0) return 0;
  bool to_me = std::memcmp(ip + 24, me.b, 16) == 0;
  if (type == kNdNeighborSolicit || type == kNdNeighborAdvert) {
    if (ip[7] != 255 || plen < 24) return 0;  // ND must not have crossed a router
    IpAddr target = IpAddr::from_v6(icmp + 8);
    if (type == kNdNeighborAdvert) {
      Mac mac;
      if (!nd_ll_option(icmp, plen, kNdOptTargetLl, &mac)) mac = eth_src(f);
      neighbor_learn(target, mac, (icmp[4] & 0x40) != 0);
      return 0;
    }
    IpAddr src = IpAddr::from_v6(ip + 8);
    Mac src_ll;
    bool dad = src.is_zero();
    if (!dad && nd_ll_option(icmp, plen, kNdOptSourceLl, &src_ll)) neighbor_learn(src, src_ll, false);
    if (target != me) return 0;
    // Neighbor Advertisement: solicited (unless answering DAD), override.
    if (dad) {
      p.len = nd_advert_frame(f, kAllNodes6, kAllNodesMac, kNdFlagOverride);
    } else {
      uint8_t asker[16];
      std::memcpy(asker, ip + 8, 16);
      p.len = nd_advert_frame(f, asker, eth_src(f), kNdFlagSolicited | kNdFlagOverride);
    }
    uplink_.counters->add(UplinkCounter::nd_adverts_sent, 1);
    transmit_uplink(p);
    return 1;
  }
  if (type == kIcmp6EchoRequest && to_me) {
    icmp[0] = kIcmp6EchoReply;
    std::memcpy(ip + 24, ip + 8, 16);
    std::memcpy(ip + 8, me.b, 16);
    ip[7] = uplink_.cfg.ttl;
    icmp6_checksum(ip, uint16_t(plen));
    Mac requester = eth_src(f);
    mac_store(f, requester);
    mac_store(f + 6, uplink_.mac);
    p.len = uint16_t(kEthHeaderLen + kIpv6HeaderLen + plen);
    uplink_.counters->add(UplinkCounter::echo_replies_sent, 1);
    transmit_uplink(p);
    return 1;
  }
  return 0;
}

// ---------------------------------------------------------------- neighbours

uint32_t Overlay::neighbor_for(const IpAddr& ip) {
  for (uint32_t i = 0; i < neighbors_.size(); ++i)
    if (neighbors_[i].ip == ip) return i;
  Neighbor nb;
  nb.ip = ip;
  nb.state = Neighbor::kIncomplete;
  nb.next_try_ms = core_.now_ms();
  nb.updated_ms = core_.now_ms();  // its age: since it was made, until it resolves
  neighbors_.push_back(std::move(nb));
  uint32_t idx = uint32_t(neighbors_.size() - 1);
  // Resolve right away, so the first frame rarely has to wait.
  if (uplink_.active) neighbor_request(neighbors_[idx]);
  return idx;
}

void Overlay::neighbor_learn(const IpAddr& ip, Mac mac, bool solicited) {
  (void)solicited;
  for (Neighbor& nb : neighbors_) {
    if (nb.ip != ip) continue;
    nb.mac = mac;
    nb.state = Neighbor::kReachable;
    nb.updated_ms = core_.now_ms();
    nb.tries = 0;
    uplink_.counters->add(UplinkCounter::neighbors_resolved, 1);
    neighbor_flush_pending(nb);
    return;
  }
}

void Overlay::neighbor_flush_pending(Neighbor& nb) {
  for (Neighbor::Pending& q : nb.pending) {
    mac_store(core_.pool().frame(q.pkt), nb.mac);
    count_pending(q, true);
    uplink_.counters->add(UplinkCounter::vxlan_tx, 1);
    transmit_uplink(q.pkt);
  }
  nb.pending.clear();
}

// A broadcast ARP request from our VTEP for `target` (4 bytes), in a frame
// whose first 86 bytes are zero. Returns its length.
uint16_t Overlay::arp_request_frame(uint8_t* f, const uint8_t* target) const {
  mac_store(f, kMacBroadcast);
  mac_store(f + 6, uplink_.mac);
  store_be16(f + 12, kEtherTypeArp);
  uint8_t* a = f + kEthHeaderLen;
  store_be16(a, 1);
  store_be16(a + 2, kEtherTypeIpv4);
  a[4] = 6;
  a[5] = 4;
  store_be16(a + 6, 1);
  mac_store(a + 8, uplink_.mac);
  std::memcpy(a + 14, uplink_.cfg.ip4.b + 12, 4);
  std::memcpy(a + 24, target, 4);
  return kEthMinFrame;
}

// A Neighbor Advertisement for our VTEP address (RFC 4861 4.4) to `dst`
// (16 bytes) at `dst_mac`, with our link-layer address. Returns its length.
uint16_t Overlay::nd_advert_frame(uint8_t* f, const uint8_t* dst, Mac dst_mac, uint32_t flags) const {
  constexpr uint16_t kNaLen = 32;
  const IpAddr& me = uplink_.cfg.ip6;
  mac_store(f, dst_mac);
  mac_store(f + 6, uplink_.mac);
  store_be16(f + 12, kEtherTypeIpv6);
  uint8_t* ip = f + kEthHeaderLen;
  store_be32(ip, 0x60000000u);
  store_be16(ip + 4, kNaLen);
  ip[6] = kIpProtoIcmpv6;
  ip[7] = 255;
  std::memcpy(ip + 8, me.b, 16);
  std::memcpy(ip + 24, dst, 16);
  uint8_t* icmp = ip + kIpv6HeaderLen;
  icmp[0] = kNdNeighborAdvert;
  icmp[1] = 0;
  store_be32(icmp + 4, flags);
  std::memcpy(icmp + 8, me.b, 16);
  icmp[24] = kNdOptTargetLl;
  icmp[25] = 1;
  mac_store(icmp + 26, uplink_.mac);
  icmp6_checksum(ip, kNaLen);
  return uint16_t(kEthHeaderLen + kIpv6HeaderLen + kNaLen);
}

// Our MAC changed (and the link is up): tell the underlay, as a host does
// when its address moves to another NIC (RFC 5227 2.3's ARP announcement,
// an unsolicited Neighbor Advertisement with the override flag, RFC 4861
// 7.2.6). Neighbours that hold our address update it, those that do not
// ignore it; tell_new_mac() then asks the next hops in use again.
void Overlay::announce_mac() {
  if (!uplink_.active || !core_.port(uplink_.port).up) return;
  const UplinkConfig& u = uplink_.cfg;
  for (int v6 = 0; v6 < 2; ++v6) {
    if ((v6 ? u.ip6 : u.ip4).is_zero()) continue;
    uint32_t idx;
    if (!core_.cache().alloc(&idx)) return;
    Pkt p{idx, core_.pool().headroom(), 0};
    uint8_t* f = core_.pool().frame(p);
    std::memset(f, 0, 86);
    if (v6) {
      p.len = nd_advert_frame(f, kAllNodes6, kAllNodesMac, kNdFlagOverride);
      uplink_.counters->add(UplinkCounter::nd_adverts_sent, 1);
    } else {
      p.len = arp_request_frame(f, u.ip4.b + 12);  // sender and target: our address
      uplink_.counters->add(UplinkCounter::arp_requests_sent, 1);
    }
    transmit_uplink(p);
  }
}

void Overlay::neighbor_request(Neighbor& nb) {
  nb.next_try_ms = core_.now_ms() + uplink_.cfg.neighbor_retry_ms;
  nb.tries++;
  if (!uplink_.active || !core_.port(uplink_.port).up) return;
  const UplinkConfig& u = uplink_.cfg;
  uint32_t idx;
  if (!core_.cache().alloc(&idx)) return;
  Pkt p{idx, core_.pool().headroom(), 0};
  uint8_t* f = core_.pool().frame(p);
  std::memset(f, 0, 86);
  mac_store(f + 6, uplink_.mac);
  if (nb.ip.is_v4()) {
    if (u.ip4.is_zero()) {
      core_.cache().free(idx);
      return;
    }
    p.len = arp_request_frame(f, nb.ip.b + 12);
    uplink_.counters->add(UplinkCounter::arp_requests_sent, 1);
  } else {
    if (u.ip6.is_zero()) {
      core_.cache().free(idx);
      return;
    }
    IpAddr group = ipv6_solicited_node(nb.ip);
    mac_store(f, ipv6_multicast_mac(group));
    store_be16(f + 12, kEtherTypeIpv6);
    uint8_t* ip = f + kEthHeaderLen;
    store_be32(ip, 0x60000000u);
    store_be16(ip + 4, 32);
    ip[6] = kIpProtoIcmpv6;
    ip[7] = 255;
    std::memcpy(ip + 8, u.ip6.b, 16);
    std::memcpy(ip + 24, group.b, 16);
    uint8_t* icmp = ip + kIpv6HeaderLen;
    icmp[0] = kNdNeighborSolicit;
    std::memcpy(icmp + 8, nb.ip.b, 16);
    icmp[24] = kNdOptSourceLl;
    icmp[25] = 1;
    mac_store(icmp + 26, uplink_.mac);
    icmp6_checksum(ip, 32);
    p.len = kEthHeaderLen + kIpv6HeaderLen + 32;
    uplink_.counters->add(UplinkCounter::nd_solicits_sent, 1);
  }
  transmit_uplink(p);
}

void Overlay::neighbor_tick() {
  const UplinkConfig& u = uplink_.cfg;
  for (Neighbor& nb : neighbors_) {
    switch (nb.state) {
      case Neighbor::kReachable:
        if (core_.now_ms() - nb.updated_ms >= u.neighbor_reachable_ms) {
          nb.state = Neighbor::kStale;
          nb.tries = 0;
          if (nb.users) neighbor_request(nb);  // nobody routes through it: let it rest
        }
        break;
      case Neighbor::kIncomplete:
      case Neighbor::kStale:
        if (int32_t(core_.now_ms() - nb.next_try_ms) < 0) break;
        if (nb.tries >= kMaxTries || nb.users == 0) {
          nb.state = Neighbor::kFailed;
          nb.updated_ms = core_.now_ms();  // its age: since it failed
          uplink_.counters->add(UplinkCounter::neighbors_failed, 1);
          for (Neighbor::Pending& q : nb.pending) {
            uplink_.counters->add(UplinkCounter::neighbor_queue_drops, 1);
            core_.port(uplink_.port).counters->drop_tx(Drop::neighbor_unresolved);
            count_pending(q, false);
            core_.cache().free(q.pkt.buf);
          }
          nb.pending.clear();
        } else {
          neighbor_request(nb);
        }
        break;
      case Neighbor::kFailed:
        break;
    }
  }
}

// ---------------------------------------------------------------- VTEPs

uint32_t Overlay::peer_find(const IpAddr& ip) {
  if (last_peer_ != kNoPeer && peers_[last_peer_].in_use && peers_[last_peer_].ip == ip) return last_peer_;
  auto it = peer_index_.find(ip);
  if (it == peer_index_.end()) return kNoPeer;
  set_last_peer(it->second);
  return it->second;
}

uint32_t Overlay::peer_get(const IpAddr& ip) {
  uint32_t v = peer_find(ip);
  if (v != kNoPeer) return v;
  for (uint32_t i = 0; i < peers_.size(); ++i) {
    if (peers_[i].in_use) continue;
    PeerState& s = peers_[i];
    s = PeerState{};
    s.reachable = false;  // no route yet: peer_route must not release neighbour 0's use
    s.in_use = true;
    s.ip = ip;
    s.counters = &peer_ctr_[i];
    PeerCounterBlock& pc = *s.counters;
    std::fill(std::begin(pc.c), std::end(pc.c), 0);
    std::memcpy(pc.ip, ip.b, 16);
    cnt_set(pc.generation, pc.generation + 1);
    cnt_set(pc.in_use, 1);
    bridge_.peer_created(i, &pc.c[size_t(PeerCounter::fdb_learned)]);
    peer_index_[ip] = i;
    peer_route(s);
    return i;
  }
  return kNoPeer;
}

uint32_t Overlay::peer_learn(const IpAddr& ip) {
  if (learned_peers_ >= max_learned_vteps_) return kNoPeer;
  uint32_t v = peer_get(ip);
  if (v == kNoPeer) return kNoPeer;
  peers_[v].learned_only = true;
  learned_peers_++;
  return v;
}

void Overlay::peer_configure(PeerState& v) {
  if (!v.learned_only) return;
  v.learned_only = false;
  learned_peers_--;
}

// Chooses the next hop: the VTEP itself when it is on-link, else the gateway.
void Overlay::peer_route(PeerState& v) {
  const UplinkConfig& u = uplink_.cfg;
  if (v.reachable && v.neighbor < neighbors_.size() && neighbors_[v.neighbor].users) neighbors_[v.neighbor].users--;
  v.reachable = false;
  if (!uplink_.active) return;
  const bool v4 = v.ip.is_v4();
  const IpAddr& local = v4 ? u.ip4 : u.ip6;
  const IpAddr& gw = v4 ? u.gateway4 : u.gateway6;
  if (local.is_zero()) return;
  IpAddr hop;
  if (ip_same_prefix(local, v.ip, v4 ? u.prefix4 : u.prefix6)) hop = v.ip;
  else if (!gw.is_zero()) hop = gw;
  else return;
  v.neighbor = neighbor_for(hop);
  neighbors_[v.neighbor].users++;
  v.reachable = true;
}

}  // namespace vpc
