// The overlay's receive stage: outer checks, ARP/ND/echo for the VTEP
// address (overlay/underlay.cc), VXLAN decapsulation (RFC 7348). What it
// produces is a Burst of inner frames for the bridge's forward(), with the
// remote VTEP's member as each frame's source; the engine's graph
// (core/engine.cc) passes it on.
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
//     (not checked when the backend says the kernel verified it; one that
//     verifies once a hidden partial inner checksum is completed is right:
//     complete_hidden_inner_checksum)
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
#include "core/trace.h"
#include "overlay/overlay.h"
#include "proto/gso.h"

namespace vpc {

namespace {

// A packet from a VTEP on this host whose inner TCP or UDP checksum was left
// partial, that state lost on the way (AF_XDP carries none; on a veth a
// CHECKSUM_PARTIAL frame arrives as plain bytes): Linux's vxlan device sums
// the outer UDP checksum for the packet as it will be once the inner one is
// completed (local checksum offload), while the inner field holds only its
// pseudo-header sum. Such an inner checksum is completed, and kept only if
// the outer one then verifies; otherwise the field is put back and the
// packet stays a counted outer_udp_checksum drop. A packet whose inner field
// is anything else is not touched.
[[gnu::cold, gnu::noinline]] bool complete_hidden_inner_checksum(uint8_t* udp, uint32_t udp_len, uint32_t outer_pseudo) {
  constexpr uint32_t kInner = kUdpHeaderLen + kVxlanHeaderLen;
  if (udp_len < kInner + kEthHeaderLen) return false;
  uint8_t* f = udp + kInner;
  const uint32_t len = udp_len - kInner;
  FrameLayout L;
  if (!frame_layout(f, len, &L) || L.ip_end != len) return false;
  const uint8_t* ip = f + L.l3_off;
  const uint32_t l4_bytes = L.ip_end - L.l4_off;
  const uint32_t pseudo = L.ip_version == 4 ? csum_pseudo4(ip + 12, ip + 16, uint16_t(l4_bytes), L.l4_proto)
                                            : csum_pseudo6(ip + 8, ip + 24, l4_bytes, L.l4_proto);
  const uint32_t field = L.l4_off + (L.l4_proto == kIpProtoTcp ? 16 : 6);
  const uint16_t was = load_be16(f + field);
  if (was != uint16_t(~csum_fold(pseudo))) return false;  // not a partial checksum
  uint16_t sum = csum_fold(csum_partial(f + L.l4_off, l4_bytes, 0));  // the field holds the pseudo sum
  if (L.l4_proto == kIpProtoUdp && sum == 0) sum = 0xFFFF;
  store_be16(f + field, sum);
  if (csum_fold(csum_partial(udp, udp_len, outer_pseudo)) == 0) return true;
  store_be16(f + field, was);
  return false;
}

}  // namespace

// What rx_* decided about a frame on the uplink.
enum class Overlay::Rx : uint8_t {
  kTunnel,    // VXLAN for us: decapsulate
  kHost,      // not the switch's business: counted as to_host, freed
  kConsumed,  // answered by the underlay responder (the buffer went to tx)
  kDrop,      // malformed or refused: counted drop (*why), freed
};

// One frame's outer headers, as the checks go.
struct Overlay::Outer {
  uint8_t* f;                // the outer Ethernet header
  const uint8_t* ip;         // the outer IP header
  const uint8_t* udp;        // the UDP header (kTunnel)
  uint32_t l4_len;           // IP payload length
  uint16_t udp_len;
  bool v4;
  bool csum_trusted;         // the backend says the kernel verified (or built) it
  uint32_t src_ip4;          // IPv4 source, host order (IPv4 only)
  IpAddr src_ip;             // IPv6 source (IPv4: filled when needed)
  SwitchId sw;               // the VNI's switch
  uint32_t vt;               // the source VTEP
  OffloadMeta inner_csum;    // an inner checksum the sender left partial
};

// What decap() reads once per burst: the uplink's largest frame and which
// address families it has.
struct Overlay::RxSetup {
  uint32_t max_len;
  bool have4, have6;
};

// The Ethernet and IP layers: length, offload state, destination MAC, then
// ARP, IPv4 or IPv6.
[[gnu::always_inline]] inline Overlay::Rx Overlay::rx_outer(const RxSetup& rs, Pkt& p, Outer& o, Drop* why) {
  const BufferPool& pool = core_.pool();
  if (p.len < kEthHeaderLen) {
    *why = Drop::runt;
    return Rx::kDrop;
  }
  if (p.len > rs.max_len && !super_fits(p, rs.max_len)) [[unlikely]] {
    // Longer than the uplink's configured MTU allows (a peer on a larger
    // underlay MTU): it could not be answered or forwarded consistently.
    *why = Drop::oversize;
    return Rx::kDrop;
  }
  // Offload state on the underlay: a checksum the kernel verified
  // (DATA_VALID) or will not need (partial: built on this host) is trusted;
  // an outer super-frame (checksum-partial) is taken apart after the outer
  // checks (take_super, overlay/uso.cc). What is decapsulated is
  // plain (a large buffer keeps the flag, with nothing pending), except an
  // inner L4 checksum the sender left partial (strip below).
  o.csum_trusted = false;
  o.inner_csum = OffloadMeta{};
  if (pkt_has_meta(p)) [[unlikely]] {
    OffloadMeta& m = pool.meta(p.buf);
    if (m.gso() && !m.needs_csum()) {
      *why = Drop::gso_unsupported;
      return Rx::kDrop;
    }
    o.csum_trusted = m.flags != 0;
    if (m.needs_csum()) o.inner_csum = m;
    if (pool.is_large(p.buf)) m = OffloadMeta{};
    else pkt_set_meta(p, false);
  }
  uint8_t* f = pool.frame(p);
  o.f = f;
  Mac outer_dst = eth_dst(f);
  if (outer_dst != uplink_.mac && !mac_is_multicast(outer_dst)) {
    *why = Drop::outer_dst_mac;
    return Rx::kDrop;
  }
  uint16_t et = load_be16(f + 12);
  if (et == kEtherTypeArp) return rs.have4 && handle_arp(p, f) ? Rx::kConsumed : Rx::kHost;
  o.ip = f + kEthHeaderLen;
  if (et == kEtherTypeIpv4 && rs.have4) return rx_ipv4(p, o, why);
  if (et == kEtherTypeIpv6 && rs.have6) return rx_ipv6(p, o, why);
  return Rx::kHost;
}

[[gnu::always_inline]] inline Overlay::Rx Overlay::rx_ipv4(Pkt& p, Outer& o, Drop* why) {
  const uint8_t* ip = o.ip;
  const uint32_t avail = p.len - kEthHeaderLen;
  o.v4 = true;
  if (avail < kIpv4HeaderLen || (ip[0] >> 4) != 4) {
    *why = Drop::outer_ip_header;
    return Rx::kDrop;
  }
  uint16_t ihl = uint16_t((ip[0] & 0x0F) * 4);
  if (ihl < kIpv4HeaderLen || ihl > avail) {
    *why = Drop::outer_ip_header;
    return Rx::kDrop;
  }
  if (!ipv4_checksum_ok(ip, ihl)) {
    *why = Drop::outer_ip_checksum;
    return Rx::kDrop;
  }
  uint16_t tot = load_be16(ip + 2);
  if (tot < ihl || tot > avail) {
    *why = Drop::outer_ip_length;
    return Rx::kDrop;
  }
  if (load_be16(ip + 6) & 0x3FFF) {  // MF set or a non-zero offset
    *why = Drop::outer_ip_fragment;
    return Rx::kDrop;
  }
  if (std::memcmp(ip + 16, uplink_.cfg.ip4.b + 12, 4) != 0) return Rx::kHost;  // another of the host's addresses (or multicast)
  if (ip[9] != kIpProtoUdp)
    return ip[9] == kIpProtoIcmp && handle_ipv4_local(p, o.f, ihl) ? Rx::kConsumed : Rx::kHost;
  o.src_ip4 = load_be32(ip + 12);
  o.udp = ip + ihl;
  o.l4_len = tot - ihl;
  return Rx::kTunnel;
}

[[gnu::always_inline]] inline Overlay::Rx Overlay::rx_ipv6(Pkt& p, Outer& o, Drop* why) {
  const uint8_t* ip = o.ip;
  const uint32_t avail = p.len - kEthHeaderLen;
  o.v4 = false;
  if (avail < kIpv6HeaderLen || (ip[0] >> 4) != 6) {
    *why = Drop::outer_ip_header;
    return Rx::kDrop;
  }
  uint32_t plen = load_be16(ip + 4);
  if (kIpv6HeaderLen + plen > avail) {
    *why = Drop::outer_ip_length;
    return Rx::kDrop;
  }
  if (ip[6] == 44) {  // Fragment header
    *why = Drop::outer_ip_fragment;
    return Rx::kDrop;
  }
  if (ip[6] == kIpProtoIcmpv6) {
    // ND for our address (often sent to its solicited-node group) and
    // echo requests; handle_ipv6_local checks the destination itself.
    return handle_ipv6_local(p, o.f) ? Rx::kConsumed : Rx::kHost;
  }
  if (std::memcmp(ip + 24, uplink_.cfg.ip6.b, 16) != 0 || ip[6] != kIpProtoUdp) {
    // Another of the host's addresses, multicast on the segment (MLD
    // behind a Hop-by-Hop header, ...) or another protocol.
    return Rx::kHost;
  }
  o.src_ip = IpAddr::from_v6(ip + 8);
  o.udp = ip + kIpv6HeaderLen;
  o.l4_len = plen;
  return Rx::kTunnel;
}

// UDP and VXLAN: length, port, checksum, flags.
[[gnu::always_inline]] inline Overlay::Rx Overlay::rx_vxlan(Outer& o, Drop* why) {
  const UplinkConfig& u = uplink_.cfg;
  const uint8_t* udp = o.udp;
  const uint8_t* ip = o.ip;
  uint16_t udp_len = o.l4_len >= kUdpHeaderLen ? load_be16(udp + 4) : 0;
  if (udp_len < kUdpHeaderLen || udp_len > o.l4_len) {
    *why = Drop::outer_udp_length;
    return Rx::kDrop;
  }
  if (load_be16(udp + 2) != u.udp_port) return Rx::kHost;  // the host's own UDP (DNS, NTP, another tunnel, ...)
  uint16_t csum = load_be16(udp + 6);
  if ((csum != 0 || (!o.v4 && !u.udp6_zero_checksum)) && !o.csum_trusted) {
    uint32_t sum = o.v4 ? csum_pseudo4(ip + 12, ip + 16, udp_len, kIpProtoUdp)
                        : csum_pseudo6(ip + 8, ip + 24, udp_len, kIpProtoUdp);
    if (csum == 0 || csum_fold(csum_partial(udp, udp_len, sum)) != 0) {
      if (csum == 0 || !complete_hidden_inner_checksum(o.f + (udp - o.f), udp_len, sum)) {
        *why = Drop::outer_udp_checksum;
        return Rx::kDrop;
      }
    }
  }
  if (udp_len < kUdpHeaderLen + kVxlanHeaderLen) {
    *why = Drop::outer_udp_length;
    return Rx::kDrop;
  }
  if (!(udp[kUdpHeaderLen] & kVxlanFlagI)) {
    *why = Drop::vxlan_flags;
    return Rx::kDrop;
  }
  o.udp_len = udp_len;
  return Rx::kTunnel;
}

// Admission: the VNI's switch, the source VTEP (learned when the switch takes
// unknown peers), and the VTEP's member of the switch.
[[gnu::always_inline]] inline bool Overlay::admit(Outer& o, MemberId* member, Drop* why) {
  const uint8_t* vx = o.udp + kUdpHeaderLen;
  uint32_t vni = load_be32(vx + 4) >> 8;
  SwitchId s = bridge_.switch_by_vni(vni);
  if (s == kNoId) {
    *why = Drop::vxlan_vni_unknown;
    return false;
  }
  // The source VTEP may send into this VNI when it is one of the switch's
  // configured peers, or when the switch accepts unknown peers (and the
  // uplink does not forbid them). Most packets come from the VTEP the
  // previous one came from.
  const bool open = bridge_.allows_unknown_peers(s) && uplink_.cfg.allow_unknown_peers;
  const bool v4 = o.v4;
  uint32_t vt;
  if (v4 && last_peer_is_v4_ && last_peer_ip4_ == o.src_ip4 && peers_[last_peer_].in_use) {
    vt = last_peer_;
  } else {
    if (v4) o.src_ip = IpAddr::from_v4(o.src_ip4);
    vt = peer_find(o.src_ip);
    if (vt == kNoPeer || (!v4 && o.src_ip.is_v4())) [[unlikely]] {
      // A new VTEP: only from an address addPeer would accept (and never an
      // IPv4-mapped source over IPv6, which would pose as an IPv4 VTEP).
      if (peer_ip_refused(o.src_ip) || (!v4 && o.src_ip.is_v4())) {
        *why = Drop::vxlan_peer_invalid;
        return false;
      }
      if (!open) {
        *why = Drop::vxlan_peer_denied;
        return false;
      }
      vt = peer_learn(o.src_ip);
      if (vt == kNoPeer) {
        *why = Drop::vxlan_vtep_table_full;
        return false;
      }
    }
  }
  PeerState& v = peers_[vt];
  MemberId m = bridge_.remote_member(s, vt, false);
  if ((m == kNoMember || !bridge_.is_peer(m)) && !open) [[unlikely]] {
    peer_drop(v, m);
    *why = Drop::vxlan_peer_denied;
    return false;
  }
  if (o.udp_len - kUdpHeaderLen - kVxlanHeaderLen < kEthHeaderLen) {
    peer_drop(v, m);
    *why = Drop::vxlan_inner_runt;
    return false;
  }
  if (m == kNoMember) m = bridge_.remote_member(s, vt, true);
  if (m == kNoMember) {
    peer_drop(v, m);
    *why = Drop::member_table_full;
    return false;
  }
  o.sw = s;
  o.vt = vt;
  *member = m;
  return true;
}

// The reasons admit() gives: the packet's headers were whole and read.
static bool refused_by_admit(Drop why) {
  switch (why) {
    case Drop::vxlan_vni_unknown:
    case Drop::vxlan_peer_invalid:
    case Drop::vxlan_peer_denied:
    case Drop::vxlan_vtep_table_full:
    case Drop::vxlan_inner_runt:
    case Drop::member_table_full:
      return true;
    default:
      return false;
  }
}

// A traced frame's drop. One refused by admit (its outer headers passed
// every check: read again from the frame, so the loop keeps nothing for it)
// first gets a decap line naming its VNI and sending VTEP.
[[gnu::cold, gnu::noinline]] void Overlay::trace_drop(Pkt p, Drop why) {
  TraceRecord* r = core_.observer().traced(p.buf);
  if (r && refused_by_admit(why)) {
    const uint8_t* ip = core_.pool().frame(p) + kEthHeaderLen;
    const bool v4 = (ip[0] >> 4) == 4;
    const uint8_t* udp = v4 ? ip + (ip[0] & 0xF) * 4 : ip + kIpv6HeaderLen;
    const IpAddr src = v4 ? IpAddr::from_v4(load_be32(ip + 12)) : IpAddr::from_v6(ip + 8);
    const uint32_t vni = load_be32(udp + kUdpHeaderLen + 4) >> 8;
    const SwitchId s = bridge_.switch_by_vni(vni);
    char sw[24] = "no switch";
    if (s != kNoId) std::snprintf(sw, sizeof sw, "switch#%u", s);
    TraceSession::add(*r, Observer::mono_ns(), TraceStage::decap, "vni %u from vtep %s (%s), refused", vni, ip_format(src).c_str(), sw);
  }
  core_.observer().drop(p.buf, why);
}

// The uplink's burst: each frame is checked layer by layer (rx_outer,
// rx_ipv4/rx_ipv6, rx_vxlan), admitted into a switch (admit), and its outer
// headers stripped; what comes out is a Burst of inner frames for the
// bridge, each mapped to its VTEP's member. Frames are compacted in place in
// pkts; runs of one connection's TCP segments are coalesced (gro.cc).
void Overlay::decap(Pkt* pkts, uint16_t n, Burst& b) {
  const PortState& up = core_.port(uplink_.port);
  PortCounterBlock* pc = up.counters;
  const BufferPool& pool = core_.pool();
  const RxSetup rs{up.max_len, !uplink_.cfg.ip4.is_zero(), !uplink_.cfg.ip6.is_zero()};
  b.kpath = bridge_.kpath_uplink();  // the kernel may take this traffic once the bridge notes it
  uint16_t k = 0;
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < n; ++i) {
    Pkt p = pkts[i];
    bytes += p.len;
    Outer o;
    Drop why;
    Rx r = rx_outer(rs, p, o, &why);
    if (r == Rx::kTunnel) r = rx_vxlan(o, &why);
    MemberId m = kNoMember;
    if (r == Rx::kTunnel && !admit(o, &m, &why)) r = Rx::kDrop;
    if (r != Rx::kTunnel) [[unlikely]] {
      if (r == Rx::kDrop) {
        pc->drop_rx(why);
        if (core_.observer().tracing()) [[unlikely]] trace_drop(p, why);
        core_.cache().free(p.buf);
      } else if (r == Rx::kHost) {
        uplink_.counters->add(UplinkCounter::to_host, 1);
        core_.cache().free(p.buf);
      }
      continue;
    }
    // Strip the outer headers: the inner frame enters the switch.
    const uint16_t inner_len = uint16_t(o.udp_len - kUdpHeaderLen - kVxlanHeaderLen);
    peer_rx(m, inner_len);
    uplink_.counters->add(UplinkCounter::vxlan_rx, 1);
    const uint8_t* in_f = o.udp + kUdpHeaderLen + kVxlanHeaderLen;
    const uint16_t outer_len = uint16_t(in_f - o.f);
    p.off = uint16_t(p.off + outer_len);
    p.len = inner_len;
    if (o.inner_csum.gso()) [[unlikely]] {
      // An outer super-frame (its state is in inner_csum). The frames so far
      // go to the bridge first, so that chunks switched one by one keep
      // their place in the order.
      if (k) {
        b.pkts = pkts;
        b.n = gro_worth(bytes, i) ? gro(pkts, k, b) : k;
        bridge_.forward(b, pc, nullptr);
        k = 0;
      }
      if (!take_super(p, o.inner_csum, uint16_t(o.udp - o.f), outer_len, m, o.vt)) continue;
    }
    if (o.inner_csum.csum_start >= outer_len + kEthHeaderLen) [[unlikely]] {
      // A VTEP on this host over a veth underlay (Linux's vxlan device with
      // tx checksumming on) leaves the *inner* TCP/UDP checksum partial: it
      // travels with the inner frame, and egress completes it for a port that
      // does not take partial checksums (core/egress.cc). A partial outer
      // checksum (csum_start in the outer headers) needs nothing.
      o.inner_csum.hdr_len = 0;
      offload_shift(o.inner_csum, -int(outer_len));
      pool.meta(p.buf) = o.inner_csum;
      pkt_set_meta(p, true);
    }
    pkts[k] = p;
    b.inm[k] = m;
    b.dst[k] = eth_dst(in_f);
    b.src[k] = eth_src(in_f);
    b.dest[k] = 0;
    ++k;
  }
  pc->add(PortCounter::rx_packets, n);
  pc->add(PortCounter::rx_bytes, bytes);
  b.pkts = pkts;
  b.n = gro_worth(bytes, n) ? gro(pkts, k, b) : k;
}

}  // namespace vpc
