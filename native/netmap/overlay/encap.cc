// The overlay's transmit stage, VXLAN encapsulation (RFC 7348): the bridge
// hands it frames for remote members; outer Ethernet, IPv4 or IPv6, UDP and
// VXLAN headers are written into the buffer's headroom in front of the inner
// frame, so the inner bytes never move, and the result is staged on the
// uplink (the core's tx).
//
//   IPv4: header checksum computed (incrementally, from the template's sum),
//         UDP checksum zero (RFC 7348 5), DF and TTL from the uplink.
//   IPv6: UDP checksum computed over the whole datagram (RFC 8200 8.1); zero
//         only when udp6_zero_checksum is set (RFC 6935/6936).
//   UDP source port: a hash of the inner flow mapped into the configured
//         range, so underlay ECMP spreads flows while keeping each in order.
#include "core/egress.h"
#include "overlay/overlay.h"

namespace vpc {

namespace {

// Hash of the inner flow: MACs and EtherType, plus addresses and ports for
// IPv4/IPv6 TCP and UDP when present.
uint32_t inner_flow_hash(const uint8_t* f, uint16_t len) {
  uint64_t h = 0x9E3779B97F4A7C15ull;
  auto mix = [&h](uint64_t v) {
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0xD6E8FEB86659FD93ull;
  };
  uint64_t a, b;
  std::memcpy(&a, f, 8);
  uint32_t c;
  std::memcpy(&c, f + 8, 4);
  b = c | (uint64_t(load_be16(f + 12)) << 32);
  mix(a);
  mix(b);
  uint16_t et = load_be16(f + 12);
  if (et == kEtherTypeIpv4 && len >= kEthHeaderLen + kIpv4HeaderLen) {
    const uint8_t* ip = f + kEthHeaderLen;
    uint16_t ihl = uint16_t((ip[0] & 0x0F) * 4);
    uint64_t addrs;
    std::memcpy(&addrs, ip + 12, 8);
    mix(addrs ^ ip[9]);
    bool first_fragment = (load_be16(ip + 6) & 0x1FFF) == 0;
    if (first_fragment && (ip[9] == kIpProtoTcp || ip[9] == kIpProtoUdp) && len >= kEthHeaderLen + ihl + 4) {
      uint32_t ports;
      std::memcpy(&ports, ip + ihl, 4);
      mix(ports);
    }
  } else if (et == kEtherTypeIpv6 && len >= kEthHeaderLen + kIpv6HeaderLen) {
    const uint8_t* ip = f + kEthHeaderLen;
    uint64_t w[4];
    std::memcpy(w, ip + 8, 32);
    mix(w[0] ^ w[2]);
    mix(w[1] ^ w[3] ^ ip[6]);
    if ((ip[6] == kIpProtoTcp || ip[6] == kIpProtoUdp) && len >= kEthHeaderLen + kIpv6HeaderLen + 4) {
      uint32_t ports;
      std::memcpy(&ports, ip + kIpv6HeaderLen, 4);
      mix(ports);
    }
  }
  return uint32_t(h >> 32);
}

}  // namespace

// Builds the VTEP's outer-header template for the next hop's current MAC.
void Overlay::build_outer(PeerState& v, const Neighbor& nb) {
  const UplinkConfig& u = uplink_.cfg;
  uint8_t* o = v.outer;
  std::memset(o, 0, sizeof(v.outer));
  mac_store(o, nb.mac);
  mac_store(o + 6, uplink_.mac);
  uint8_t* udp;
  if (v.ip.is_v4()) {
    store_be16(o + 12, kEtherTypeIpv4);
    uint8_t* ip = o + kEthHeaderLen;
    ip[0] = 0x45;
    if (u.df) store_be16(ip + 6, 0x4000);
    ip[8] = u.ttl;
    ip[9] = kIpProtoUdp;
    std::memcpy(ip + 12, u.ip4.b + 12, 4);
    std::memcpy(ip + 16, v.ip.b + 12, 4);
    v.outer_sum = csum_partial(ip, kIpv4HeaderLen, 0);  // length, id, checksum still zero
    udp = ip + kIpv4HeaderLen;
    v.outer_len = kVxlanOverhead4;
  } else {
    store_be16(o + 12, kEtherTypeIpv6);
    uint8_t* ip = o + kEthHeaderLen;
    store_be32(ip, 0x60000000u);
    ip[6] = kIpProtoUdp;
    ip[7] = u.ttl;
    std::memcpy(ip + 8, u.ip6.b, 16);
    std::memcpy(ip + 24, v.ip.b, 16);
    udp = ip + kIpv6HeaderLen;
    v.outer_len = kVxlanOverhead6;
  }
  store_be16(udp + 2, u.udp_port);
  udp[kUdpHeaderLen] = kVxlanFlagI;
  v.outer_mac = nb.mac;
  v.outer_gen = uplink_.generation;
}

// Sends an inner frame to the member's remote VTEP.
void Overlay::encap(uint32_t vt, SwitchState& sw, Pkt p, MemberId from, MemberId via) {
  PeerState& v = peers_[vt];
  if (!uplink_up()) [[unlikely]] {
    peer_drop(v, via);
    core_.drop_frame(p, Drop::no_uplink, nullptr, sw.counters);
    return;
  }
  PortState& up = core_.port(uplink_.port);
  if (!v.reachable) [[unlikely]] {
    peer_drop(v, via);
    core_.drop_frame(p, Drop::neighbor_unresolved, up.counters, sw.counters);
    return;
  }
  Neighbor& nb = neighbors_[v.neighbor];
  if (v.outer_gen != uplink_.generation || v.outer_mac != nb.mac || v.outer_len == 0) [[unlikely]]
    build_outer(v, nb);
  const uint16_t overhead = v.outer_len;
  const uint16_t inner_len = p.len;
  // The uplink's MTU, or its interface's where that is smaller (an uplink
  // configured above its NIC): the path's, which a too-big answer names.
  const uint32_t mtu = up.l3_mtu();
  // A frame with offload state goes through encap_offload first; one it
  // left plain in a large buffer (a jumbo frame, flags cleared) comes back
  // and is encapsulated where it is.
  if (pkt_has_meta(p) && (!core_.pool().is_large(p.buf) || core_.pool().meta(p.buf).flags != 0)) [[unlikely]] {
    encap_offload(vt, sw, p, from, via, mtu > overhead ? mtu - overhead : 0);
    return;
  }
  // The outer IP packet (IP + UDP + VXLAN + inner frame) must fit the uplink
  // MTU; so the inner L3 MTU is the uplink MTU minus 50 (IPv4) or 70 (IPv6).
  if (uint32_t(overhead - kEthHeaderLen) + inner_len > mtu) [[unlikely]] {
    bridge_.answer_too_big(p, mtu > overhead ? mtu - overhead : 0, from);
    peer_drop(v, via);
    core_.drop_frame(p, Drop::vxlan_too_big, up.counters, sw.counters);
    return;
  }
  if (pkt_off(p) < overhead) [[unlikely]] {
    peer_drop(v, via);
    core_.drop_frame(p, Drop::no_headroom, up.counters, sw.counters);
    return;
  }
  const UplinkConfig& u = uplink_.cfg;
  uint8_t* base = core_.pool().data(p.buf);
  const uint32_t span = uint32_t(u.src_port_max - u.src_port_min) + 1;
  const uint16_t sport = uint16_t(u.src_port_min + inner_flow_hash(base + pkt_off(p), inner_len) % span);
  p.off = uint16_t(p.off - overhead);
  p.len = uint16_t(inner_len + overhead);
  uint8_t* o = base + pkt_off(p);
  std::memcpy(o, v.outer, overhead);
  uint8_t* ip = o + kEthHeaderLen;
  const uint16_t udp_len = uint16_t(kUdpHeaderLen + kVxlanHeaderLen + inner_len);
  uint8_t* udp;
  if (overhead == kVxlanOverhead4) {
    const uint16_t total = uint16_t(kIpv4HeaderLen + udp_len);
    uint32_t sum = v.outer_sum + total;
    store_be16(ip + 2, total);
    if (!u.df) {
      uint16_t id = uplink_.ip_id++;
      store_be16(ip + 4, id);
      sum += id;
    }
    store_be16(ip + 10, csum_fold(sum));
    udp = ip + kIpv4HeaderLen;
  } else {
    store_be16(ip + 4, udp_len);
    udp = ip + kIpv6HeaderLen;
  }
  store_be16(udp, sport);
  store_be16(udp + 4, udp_len);
  store_be32(udp + kUdpHeaderLen + 4, sw.cfg.vni << 8);
  if (overhead == kVxlanOverhead6 && !u.udp6_zero_checksum) {
    uint32_t sum = csum_pseudo6(ip + 8, ip + 24, udp_len, kIpProtoUdp);
    uint16_t c = csum_fold(csum_partial(udp, udp_len, sum));
    store_be16(udp + 6, c == 0 ? 0xFFFF : c);  // zero means "no checksum"
  }
  if (nb.state == Neighbor::kReachable || nb.state == Neighbor::kStale) [[likely]] {
    peer_tx(via, inner_len);
    uplink_.counters->add(UplinkCounter::vxlan_tx, 1);
    transmit_uplink(p);
    return;
  }
  // Not resolved yet: hold a few frames (like the kernel's unresolved
  // queue) and make sure a request is on its way.
  constexpr size_t kMaxPending = 16;
  if (nb.pending.size() >= kMaxPending) {
    uplink_.counters->add(UplinkCounter::neighbor_queue_drops, 1);
    peer_drop(v, via);
    core_.drop_frame(p, Drop::neighbor_unresolved, up.counters, sw.counters);
    return;
  }
  nb.pending.push_back({p, vt, via, cnt_read(switch_peer_ctr_.at(via).generation), inner_len});
  const uint32_t now_ms = core_.now_ms();
  if (nb.state == Neighbor::kFailed) {
    nb.state = Neighbor::kIncomplete;
    nb.tries = 0;
    nb.next_try_ms = now_ms;
  }
  if (int32_t(now_ms - nb.next_try_ms) >= 0) neighbor_request(nb);
}

// Encapsulation of a frame with offload state: a super-frame is segmented to
// the overlay's inner MTU (whatever the sender's gso_size) and each segment
// encapsulated; a checksum-partial frame (or a super-frame of one segment) is
// completed first. What leaves
// through the uplink is always plain.
void Overlay::encap_offload(uint32_t vt, SwitchState& swr, Pkt p, MemberId from, MemberId via, uint32_t inner_mtu) {
  BufferPool& pool = core_.pool();
  OffloadMeta& m = pool.meta(p.buf);
  SwitchCounterBlock* sw = swr.counters;
  PeerState& v = peers_[vt];
  PortCounterBlock* pc = core_.port(uplink_.port).counters;
  if (m.gso() && !gso_single_segment(pool.frame(p), p.len, m, inner_mtu)) {
    constexpr uint32_t kUso = kOffUso | kOffCsum;
    if ((core_.port(uplink_.port).tx_offloads & kUso) == kUso && encap_uso(vt, swr, p, via, inner_mtu)) return;
    if (!core_.segment(p, m, inner_mtu, pc, sw, [&](Pkt q) { encap(vt, swr, q, from, via); }))
      peer_drop(v, via);
    return;
  }
  if (m.needs_csum()) {
    OffloadError err = OffloadError::none;
    if (!csum_complete(pool.frame(p), p.len, m, &err)) {
      peer_drop(v, via);
      core_.drop_frame(p, offload_drop(err), pc, sw);
      return;
    }
    pc->add(PortCounter::tx_csum_completed, 1);
  }
  if (pool.is_large(p.buf)) {
    if (p.len > pool.max_frame()) {
      // Larger than a regular buffer: over a jumbo underlay (an inner MTU
      // above a regular buffer) it can still fit. When the uplink takes
      // large buffers, encap() encapsulates it where it is and checks the
      // inner MTU (answering too big); before, every such frame was
      // answered with the inner MTU the sender already had, and TCP
      // between jumbo guests collapsed.
      const PortState& ups = core_.port(uplink_.port);
      if (!ups.tx_large || uint32_t(p.len) + v.outer_len > ups.tx_max_frame) {
        bridge_.answer_too_big(p, std::min<uint32_t>(inner_mtu, pool.max_frame() - kEthHeaderLen), from);
        peer_drop(v, via);
        core_.drop_frame(p, Drop::vxlan_too_big, pc, sw);
        return;
      }
      m.flags = 0;  // plain now; the side-table entry stays (a large buffer always has one)
      encap(vt, swr, p, from, via);
      return;
    }
    if (!core_.to_regular(p, pc, sw)) {
      peer_drop(v, via);
      return;
    }
  }
  pkt_set_meta(p, false);
  encap(vt, swr, p, from, via);
}

uint32_t vxlan_flow_hash(const uint8_t* f, uint16_t len) { return inner_flow_hash(f, len); }

}  // namespace vpc
