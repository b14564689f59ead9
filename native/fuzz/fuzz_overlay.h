// The overlay world shared by the uplink and command fuzz targets: an uplink
// (VTEP) on a pipe port with IPv4 and IPv6 addresses and gateways, two
// switches with local pipe ports, configured peers and a static remote MAC
// behind an off-link VTEP; and structured frame builders for the underlay
// (VXLAN over IPv4/IPv6, ARP, ND, echo) whose fields the input chooses.
// Addresses: 198.18.0.0/15 and 2001:db8::/32, plus the special ones the
// engine must refuse (zero, multicast, broadcast, loopback, its own).
#pragma once

#include "fuzz_common.h"

namespace vpc::fuzz {

constexpr Mac kUpMac = 0x02AA00000001ull;
constexpr Mac kGwMac = 0x02BB000000FEull;
constexpr uint32_t kVniA = 5000, kVniB = 6000;

inline IpAddr ip6(const char* s) {
  IpAddr a;
  if (!ip_parse(s, &a)) fail(std::string("bad address in the harness: ") + s);
  return a;
}
// Index 0 is our own address; 1..4 peers, a stranger and the gateway
// (on-link); 5 off-link; the rest are addresses nobody may use as a VTEP.
inline IpAddr addr4(uint8_t sel) {
  static const uint32_t k[] = {0xC6120001, 0xC6120002, 0xC6120003, 0xC6120009, 0xC61200FE, 0xC6130505,
                               0x00000000, 0xE0000001, 0xFFFFFFFF, 0x7F000001, 0xC61200FF, 0xC6120000};
  return IpAddr::from_v4(k[sel % (sizeof(k) / sizeof(k[0]))]);
}
inline IpAddr addr6(uint8_t sel) {
  static const char* k[] = {"2001:db8::1", "2001:db8::2", "2001:db8::3", "2001:db8::9", "2001:db8::fe",
                            "2001:db8:1::5", "::", "ff02::1", "ff02::1:ff00:1", "::1", "fe80::1", "2001:db8::"};
  return ip6(k[sel % (sizeof(k) / sizeof(k[0]))]);
}
// Hosts: 0..3 behind local ports, 4..5 behind peers, 6 the static remote MAC,
// 7 broadcast.
inline Mac host(uint32_t i) {
  i &= 7;
  return i == 7 ? kMacBroadcast : 0x020000000000ull | (i + 1);
}
inline Mac outer_mac(uint8_t sel) {
  switch (sel % 4) {
    case 0: return kUpMac;
    case 1: return kMacBroadcast;
    case 2: return 0x333300000001ull;  // IPv6 multicast
    default: return 0x02BB00000000ull | (sel >> 2);
  }
}

struct OverlayWorld : World {
  std::vector<PortId> locals;
  PortId uplink = kNoId;
  SwitchId sa = kNoId, sb = kNoId;

  static UplinkConfig uplink_config(uint8_t variant) {
    UplinkConfig u;
    u.ip4 = addr4(0);
    u.prefix4 = 24;
    u.ip6 = addr6(0);
    u.prefix6 = 64;
    u.gateway4 = addr4(4);
    u.gateway6 = addr6(4);
    u.allow_unknown_peers = !(variant & 1);
    u.udp6_zero_checksum = variant & 2;
    u.df = !(variant & 4);
    return u;
  }

  explicit OverlayWorld(uint8_t variant) {
    SwitchConfig a;
    a.vni = kVniA;
    a.mac_limit = 16;
    a.aging_ms = 3000;
    SwitchConfig b;
    b.vni = kVniB;
    b.remote_learning = !(variant & 16);
    sa = try_create_switch(a).id;
    sb = try_create_switch(b).id;
    locals.push_back(try_add_port(sa).id);
    locals.push_back(try_add_port(sa, {}, {{30, sb}}).id);
    locals.push_back(try_add_port(sb).id);
    Result r = try_uplink(uplink_config(variant), kUpMac, (variant & 8) ? 1800 : 1500);
    if (!r.ok()) fail("setup: uplink: " + r.message);
    uplink = r.id;
    for (PortId p : locals)
      if (p == kNoId) fail("setup: a port could not be created");
    bool ok = peer_op(CmdOp::kAddPeer, sa, addr4(1)).ok() && peer_op(CmdOp::kAddPeer, sa, addr6(1)).ok() &&
              peer_op(CmdOp::kAddPeer, sb, addr4(2)).ok();
    auto c = cmd(CmdOp::kAddRemoteMac);
    c->sw = sa;
    c->mac = host(6);
    c->ip = addr4(5);
    ok = ok && run(std::move(c)).ok();
    if (!ok) fail("setup: peers");
    step();
  }

  Result peer_op(CmdOp op, SwitchId s, const IpAddr& ip) {
    auto c = cmd(op);
    c->sw = s;
    c->ip = ip;
    return run(std::move(c));
  }
};

// ---------------------------------------------------------------- frames

// An inner (or local) frame: MACs from the host set when hdr bit 7 is set,
// the rest from the input.
inline Bytes host_frame(Input& in, size_t max_len = 1600) {
  uint8_t hdr = in.u8();
  Bytes f = in.bytes(in.u16() % max_len);
  if ((hdr & 0x80) && f.size() >= 12) {
    mac_store(f.data(), host(hdr));
    mac_store(f.data() + 6, host(hdr >> 3));
    if ((hdr & 0x40) && f.size() >= 16) {
      store_be16(f.data() + 12, kEtherTypeVlan);
      store_be16(f.data() + 14, 30);
    }
  }
  return f;
}

inline uint32_t vni_of(Input& in) {
  uint8_t s = in.u8();
  switch (s % 4) {
    case 0: return kVniA;
    case 1: return kVniB;
    case 2: return 7000;  // no such switch
    default: return in.u32() & 0xFFFFFF;
  }
}

// VXLAN over IPv4 or IPv6 towards (usually) us.
inline Bytes vxlan_frame(Input& in, bool v6) {
  uint8_t sel = in.u8(), flags = in.u8();
  IpAddr src = v6 ? addr6(sel & 15) : addr4(sel & 15);
  IpAddr dst = (flags & 1) ? (v6 ? addr6(sel >> 4) : addr4(sel >> 4)) : (v6 ? addr6(0) : addr4(0));
  uint16_t sport = in.u16();
  uint16_t dport = (flags & 2) ? in.u16() : 4789;
  uint8_t vx_flags = (flags & 4) ? in.u8() : 0x08;
  uint32_t vni = vni_of(in);
  Mac odst = outer_mac(in.u8());
  Bytes inner = host_frame(in);
  Bytes l4;
  put16(l4, sport);
  put16(l4, dport);
  put16(l4, uint16_t(8 + 8 + inner.size()));
  put16(l4, 0);
  l4.push_back(vx_flags);
  l4.insert(l4.end(), 3, 0);
  put32(l4, vni << 8);
  l4.insert(l4.end(), inner.begin(), inner.end());
  if (flags & 8) {
    l4_checksum(l4, 6, src, dst, kIpProtoUdp);
    if (flags & 16) l4[7] ^= 0x5A;  // a wrong one
  }
  if (flags & 32) store_be16(l4.data() + 4, in.u16());  // a lying UDP length
  Bytes ip = v6 ? ipv6(src, dst, kIpProtoUdp, (flags & 64) ? in.u8() : 64, l4)
                : ipv4(src, dst, kIpProtoUdp, l4, (flags & 64) ? in.u16() : 0x4000, 64);
  return eth(odst, 0x02BB00000000ull | sel, v6 ? kEtherTypeIpv6 : kEtherTypeIpv4, ip);
}

inline Bytes arp_frame(Input& in) {
  uint8_t sel = in.u8(), op = in.u8();
  Bytes a;
  put16(a, 1);
  put16(a, kEtherTypeIpv4);
  a.push_back(6);
  a.push_back(4);
  put16(a, (op & 3) == 3 ? in.u16() : (op & 1) + 1);
  Mac sha = (op & 4) ? Mac(in.u32()) << 16 | in.u16() : 0x02BB00000000ull | (sel & 15);
  put_mac(a, sha);
  IpAddr sip = addr4(sel & 15);
  a.insert(a.end(), sip.b + 12, sip.b + 16);
  put_mac(a, (op & 8) ? kUpMac : 0);
  IpAddr tip = (op & 16) ? addr4(sel >> 4) : addr4(0);
  a.insert(a.end(), tip.b + 12, tip.b + 16);
  if (op & 32) {  // padding as a real NIC would deliver it, or trailing junk
    Bytes pad = in.bytes(in.u8() % 64);
    a.insert(a.end(), pad.begin(), pad.end());
  }
  if (op & 64) a.resize(in.u8() % a.size());  // truncated
  return eth((op & 128) ? kUpMac : kMacBroadcast, sha, kEtherTypeArp, a);
}

inline Bytes nd_frame(Input& in) {
  uint8_t sel = in.u8(), kind = in.u8();
  IpAddr src = addr6(sel & 15);
  IpAddr target = (kind & 4) ? addr6(sel >> 4) : addr6(0);
  IpAddr dst = (kind & 8) ? addr6(8) : (kind & 16) ? addr6(sel >> 4) : addr6(0);
  Bytes m;
  m.push_back((kind & 1) ? 136 : 135);  // NA : NS
  m.push_back(0);
  put16(m, 0);
  put32(m, (kind & 1) ? (uint32_t(in.u8()) << 24) : 0);
  m.insert(m.end(), target.b, target.b + 16);
  if (kind & 2) {
    m.push_back((kind & 1) ? 2 : 1);
    m.push_back((kind & 32) ? in.u8() : 1);  // option length in 8-byte units
    put_mac(m, 0x02BB00000000ull | (sel & 15));
  }
  if (kind & 64) {
    Bytes extra = in.bytes(in.u8() % 48);
    m.insert(m.end(), extra.begin(), extra.end());
  }
  l4_checksum(m, 2, src, dst, kIpProtoIcmpv6);
  uint8_t hop = (kind & 128) ? in.u8() : 255;
  return eth(outer_mac(in.u8()), 0x02BB00000000ull | (sel & 15), kEtherTypeIpv6,
             ipv6(src, dst, kIpProtoIcmpv6, hop, m));
}

inline Bytes echo_frame(Input& in) {
  uint8_t sel = in.u8(), kind = in.u8();
  bool v6 = kind & 1;
  IpAddr src = v6 ? addr6(sel & 15) : addr4(sel & 15);
  IpAddr dst = (kind & 2) ? (v6 ? addr6(sel >> 4) : addr4(sel >> 4)) : (v6 ? addr6(0) : addr4(0));
  Bytes m;
  m.push_back((kind & 4) ? in.u8() : (v6 ? 128 : 8));
  m.push_back(0);
  put16(m, 0);
  put32(m, in.u32());
  Bytes payload = in.bytes(in.u16() % 1500);
  m.insert(m.end(), payload.begin(), payload.end());
  if (v6) {
    l4_checksum(m, 2, src, dst, kIpProtoIcmpv6);
  } else {
    store_be16(m.data() + 2, csum_fold(csum_partial(m.data(), m.size(), 0)));
  }
  if (kind & 8) m[3] ^= 1;
  Bytes ip = v6 ? ipv6(src, dst, kIpProtoIcmpv6, 64, m) : ipv4(src, dst, kIpProtoIcmp, m);
  return eth(kUpMac, 0x02BB00000000ull | (sel & 15), v6 ? kEtherTypeIpv6 : kEtherTypeIpv4, ip);
}

// One underlay frame of any of the kinds above, or raw bytes.
inline Bytes underlay_frame(Input& in) {
  switch (in.u8() % 6) {
    case 0: return in.bytes(in.u16() % 1700);
    case 1: return vxlan_frame(in, false);
    case 2: return vxlan_frame(in, true);
    case 3: return arp_frame(in);
    case 4: return nd_frame(in);
    default: return echo_frame(in);
  }
}

}  // namespace vpc::fuzz
