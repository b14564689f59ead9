// The uplink's receive path: outer checks, ARP/ND/echo for the VTEP address,
// VXLAN decapsulation (RFC 7348), then the ordinary switching passes with the
// remote VTEP as the frame's source.
//
// Checks, in order, each with its own drop reason:
//   frame within the uplink's MTU                           oversize
//   outer destination MAC is ours (or broadcast/multicast)  outer_dst_mac
//   IP version and header length                            outer_ip_header
//   IPv4 header checksum                                    outer_ip_checksum
//   IP total/payload length against the frame               outer_ip_length
//   not a fragment                                          outer_ip_fragment
//   destination is our VTEP address                         (else to_host)
//   UDP (anything else: ARP/ND/echo, or to_host)            (else to_host)
//   UDP length                                              outer_udp_length
//   UDP destination port is the VXLAN port                  (else to_host)
//   UDP checksum (when non-zero; IPv6 zero only if allowed) outer_udp_checksum
//     (not checked when the backend says the kernel verified it)
//   VXLAN I flag set (other flag bits ignored, RFC 7348 5)  vxlan_flags
//   VNI belongs to a switch                                 vxlan_vni_unknown
//   a new source VTEP is a unicast address, not ours        vxlan_peer_invalid
//   source VTEP is a peer of the switch, or the switch      vxlan_peer_denied
//     allows unknown peers
//   a learned VTEP slot is free (maxLearnedVteps)           vxlan_vtep_table_full
//   inner frame at least an Ethernet header                 vxlan_inner_runt
// Frames that are not the switch's business (other EtherTypes, other
// destinations, other protocols or UDP ports) are host traffic, not drops:
// they count as the uplink's to_host, and backends such as AF_PACKET see only
// a copy of traffic the kernel keeps receiving (docs/design/overlay.md).
#include "core/engine.h"

namespace vpc {

SwitchId Engine::switch_by_vni(uint32_t vni) {
  if (vni == last_vni_ && last_vni_sw_ != kNoId) return last_vni_sw_;
  auto it = vni_map_.find(vni);
  if (it == vni_map_.end()) return kNoId;
  last_vni_ = vni;
  last_vni_sw_ = it->second;
  return it->second;
}

void Engine::process_uplink(Pkt* pkts, uint16_t n) {
  PortState& up = ports_[uplink_.port];
  PortCounterBlock* pc = up.counters;
  const UplinkConfig& u = uplink_.cfg;
  const BufferPool& pool = *pool_;
  Pkt inner[kMaxBurst];
  MemberId inm[kMaxBurst];
  uint16_t dest[kMaxBurst];
  Mac src[kMaxBurst];
  Mac dst[kMaxBurst];
  uint16_t k = 0;
  uint64_t bytes = 0;
  const bool have4 = !u.ip4.is_zero(), have6 = !u.ip6.is_zero();

  for (uint16_t i = 0; i < n; ++i) {
    Pkt p = pkts[i];
    bytes += p.len;
    auto drop = [&](Drop why) {
      pc->drop_rx(why);
      cache_->free(p.buf);
    };
    auto to_host = [&]() {
      uplink_.counters->add(UplinkCounter::to_host, 1);
      cache_->free(p.buf);
    };
    if (p.len < kEthHeaderLen) {
      drop(Drop::runt);
      continue;
    }
    if (p.len > up.max_len) [[unlikely]] {
      // Longer than the uplink's configured MTU allows (a peer on a larger
      // underlay MTU): it could not be answered or forwarded consistently.
      drop(Drop::oversize);
      continue;
    }
    // Offload state on the underlay: a checksum the kernel verified
    // (DATA_VALID) or will not need (partial: built on this host) is trusted;
    // an outer super-frame is not taken apart here. What is decapsulated is
    // plain (a large buffer keeps the flag, with nothing pending), except an
    // inner L4 checksum the sender left partial (below).
    bool csum_trusted = false;
    OffloadMeta inner_csum{};
    if (pkt_has_meta(p)) [[unlikely]] {
      OffloadMeta& m = pool.meta(p.buf);
      if (m.gso()) {
        drop(Drop::gso_unsupported);
        continue;
      }
      csum_trusted = m.flags != 0;
      if (m.needs_csum()) inner_csum = m;
      if (pool.is_large(p.buf)) m = OffloadMeta{};
      else pkt_set_meta(p, false);
    }
    uint8_t* f = pool.frame(p);
    Mac outer_dst = eth_dst(f);
    if (outer_dst != uplink_.mac && !mac_is_multicast(outer_dst)) {
      drop(Drop::outer_dst_mac);
      continue;
    }
    uint16_t et = load_be16(f + 12);
    if (et == kEtherTypeArp) {
      if (!have4 || !handle_arp(p, f)) to_host();
      continue;
    }
    const uint8_t* ip = f + kEthHeaderLen;
    const uint32_t avail = p.len - kEthHeaderLen;
    IpAddr src_ip;
    uint32_t src_ip4 = 0;
    const uint8_t* udp;
    uint32_t l4_len;
    bool v4 = true;
    if (et == kEtherTypeIpv4 && have4) {
      if (avail < kIpv4HeaderLen || (ip[0] >> 4) != 4) {
        drop(Drop::outer_ip_header);
        continue;
      }
      uint16_t ihl = uint16_t((ip[0] & 0x0F) * 4);
      if (ihl < kIpv4HeaderLen || ihl > avail) {
        drop(Drop::outer_ip_header);
        continue;
      }
      if (!ipv4_checksum_ok(ip, ihl)) {
        drop(Drop::outer_ip_checksum);
        continue;
      }
      uint16_t tot = load_be16(ip + 2);
      if (tot < ihl || tot > avail) {
        drop(Drop::outer_ip_length);
        continue;
      }
      if (load_be16(ip + 6) & 0x3FFF) {  // MF set or a non-zero offset
        drop(Drop::outer_ip_fragment);
        continue;
      }
      if (std::memcmp(ip + 16, u.ip4.b + 12, 4) != 0) {
        // Another of the host's addresses (or multicast on the segment).
        to_host();
        continue;
      }
      if (ip[9] != kIpProtoUdp) {
        int r = ip[9] == kIpProtoIcmp ? handle_ipv4_local(p, f, ihl) : 0;
        if (r == 0) to_host();
        continue;
      }
      src_ip4 = load_be32(ip + 12);
      udp = ip + ihl;
      l4_len = tot - ihl;
    } else if (et == kEtherTypeIpv6 && have6) {
      v4 = false;
      if (avail < kIpv6HeaderLen || (ip[0] >> 4) != 6) {
        drop(Drop::outer_ip_header);
        continue;
      }
      uint32_t plen = load_be16(ip + 4);
      if (kIpv6HeaderLen + plen > avail) {
        drop(Drop::outer_ip_length);
        continue;
      }
      if (ip[6] == 44) {  // Fragment header
        drop(Drop::outer_ip_fragment);
        continue;
      }
      if (ip[6] == kIpProtoIcmpv6) {
        // ND for our address (often sent to its solicited-node group) and
        // echo requests; handle_ipv6_local checks the destination itself.
        if (handle_ipv6_local(p, f) == 0) to_host();
        continue;
      }
      if (std::memcmp(ip + 24, u.ip6.b, 16) != 0 || ip[6] != kIpProtoUdp) {
        // Another of the host's addresses, multicast on the segment (MLD
        // behind a Hop-by-Hop header, ...) or another protocol.
        to_host();
        continue;
      }
      src_ip = IpAddr::from_v6(ip + 8);
      udp = ip + kIpv6HeaderLen;
      l4_len = plen;
    } else {
      to_host();
      continue;
    }

    // UDP and VXLAN.
    uint16_t udp_len = l4_len >= kUdpHeaderLen ? load_be16(udp + 4) : 0;
    if (udp_len < kUdpHeaderLen || udp_len > l4_len) {
      drop(Drop::outer_udp_length);
      continue;
    }
    if (load_be16(udp + 2) != u.udp_port) {
      to_host();  // the host's own UDP (DNS, NTP, another tunnel, ...)
      continue;
    }
    uint16_t csum = load_be16(udp + 6);
    if ((csum != 0 || (!v4 && !u.udp6_zero_checksum)) && !csum_trusted) {
      uint32_t sum = v4 ? csum_pseudo4(ip + 12, ip + 16, udp_len, kIpProtoUdp)
                        : csum_pseudo6(ip + 8, ip + 24, udp_len, kIpProtoUdp);
      if (csum == 0 || csum_fold(csum_partial(udp, udp_len, sum)) != 0) {
        drop(Drop::outer_udp_checksum);
        continue;
      }
    }
    if (udp_len < kUdpHeaderLen + kVxlanHeaderLen) {
      drop(Drop::outer_udp_length);
      continue;
    }
    const uint8_t* vx = udp + kUdpHeaderLen;
    if (!(vx[0] & kVxlanFlagI)) {
      drop(Drop::vxlan_flags);
      continue;
    }
    uint32_t vni = load_be32(vx + 4) >> 8;
    SwitchId s = switch_by_vni(vni);
    if (s == kNoId) {
      drop(Drop::vxlan_vni_unknown);
      continue;
    }
    // The source VTEP may send into this VNI when it is one of the switch's
    // configured peers, or when the switch accepts unknown peers (and the
    // uplink does not forbid them). Most packets come from the VTEP the
    // previous one came from.
    const bool open = switches_[s].cfg.allow_unknown_peers && u.allow_unknown_peers;
    uint32_t vt;
    if (v4 && last_vtep_ != kNoVtep && vteps_[last_vtep_].in_use && vteps_[last_vtep_].ip.is_v4() &&
        vteps_[last_vtep_].ip.v4() == src_ip4) {
      vt = last_vtep_;
    } else {
      if (v4) src_ip = IpAddr::from_v4(src_ip4);
      vt = vtep_find(src_ip);
      if (vt == kNoVtep || (!v4 && src_ip.is_v4())) [[unlikely]] {
        // A new VTEP: only from an address addPeer would accept (and never an
        // IPv4-mapped source over IPv6, which would pose as an IPv4 VTEP).
        if (vtep_ip_refused(src_ip) || (!v4 && src_ip.is_v4())) {
          drop(Drop::vxlan_peer_invalid);
          continue;
        }
        if (!open) {
          drop(Drop::vxlan_peer_denied);
          continue;
        }
        vt = vtep_learn(src_ip);
        if (vt == kNoVtep) {
          drop(Drop::vxlan_vtep_table_full);
          continue;
        }
      }
    }
    VtepState& v = vteps_[vt];
    MemberId m = v.cache_sw == s ? v.cache_member : remote_member(s, vt, false);
    if ((m == kNoMember || !members_[m].in_flood) && !open) [[unlikely]] {
      v.counters->add(PeerCounter::drops, 1);
      drop(Drop::vxlan_peer_denied);
      continue;
    }
    uint16_t inner_len = uint16_t(udp_len - kUdpHeaderLen - kVxlanHeaderLen);
    if (inner_len < kEthHeaderLen) {
      v.counters->add(PeerCounter::drops, 1);
      drop(Drop::vxlan_inner_runt);
      continue;
    }
    if (m == kNoMember) m = remote_member(s, vt, true);
    if (m == kNoMember) {
      v.counters->add(PeerCounter::drops, 1);
      drop(Drop::member_table_full);
      continue;
    }
    v.counters->add(PeerCounter::rx_packets, 1);
    v.counters->add(PeerCounter::rx_bytes, inner_len);
    uplink_.counters->add(UplinkCounter::vxlan_rx, 1);
    const uint16_t outer_len = uint16_t(vx + kVxlanHeaderLen - f);
    p.off = uint16_t(p.off + outer_len);
    p.len = inner_len;
    if (inner_csum.csum_start >= outer_len + kEthHeaderLen) [[unlikely]] {
      // A VTEP on this host over a veth underlay (Linux's vxlan device with
      // tx checksumming on) leaves the *inner* TCP/UDP checksum partial: it
      // travels with the inner frame, and egress completes it for a port that
      // does not take partial checksums (core/egress.cc). A partial outer
      // checksum (csum_start in the outer headers) needs nothing.
      inner_csum.hdr_len = 0;
      offload_shift(inner_csum, -int(outer_len));
      pool.meta(p.buf) = inner_csum;
      pkt_set_meta(p, true);
    }
    const uint8_t* in_f = f + (vx + kVxlanHeaderLen - f);
    inner[k] = p;
    inm[k] = m;
    dst[k] = eth_dst(in_f);
    src[k] = eth_src(in_f);
    dest[k] = 0;
    ++k;
  }
  pc->add(PortCounter::rx_packets, n);
  pc->add(PortCounter::rx_bytes, bytes);
  if (k) switch_frames(pc, nullptr, inner, k, inm, src, dst, dest);
}

}  // namespace vpc
