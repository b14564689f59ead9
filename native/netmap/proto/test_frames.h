// Test helpers for proto/gso_test.cc and proto/too_big_test.cc: a builder of
// Ethernet/IP/TCP-or-UDP frames, and an RFC 1071 checksum written the slow,
// obvious way (big-endian 16-bit words, carry folded after every addition),
// independent of the code under test.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "core/types.h"
#include "proto/ethernet.h"
#include "proto/inet.h"

namespace vpc::testframes {

using Bytes = std::vector<uint8_t>;

inline uint32_t ref_sum(const uint8_t* p, size_t n, uint32_t s = 0) {
  while (s >> 16) s = (s & 0xFFFF) + (s >> 16);
  for (size_t i = 0; i < n; i += 2) {
    const uint32_t w = uint32_t(p[i]) << 8 | (i + 1 < n ? p[i + 1] : 0);
    s += w;
    s = (s & 0xFFFF) + (s >> 16);
  }
  return s;
}

// Pseudo-header sum of the IP header at ip (version from its first nibble).
inline uint32_t ref_pseudo(const uint8_t* ip, uint8_t proto, uint32_t l4_len) {
  uint8_t t[8] = {};
  if ((ip[0] >> 4) == 4) {
    t[1] = proto;
    store_be16(t + 2, uint16_t(l4_len));
    return ref_sum(t, 4, ref_sum(ip + 12, 8));
  }
  store_be32(t, l4_len);
  t[7] = proto;
  return ref_sum(t, 8, ref_sum(ip + 8, 32));
}

constexpr Mac kSrcMac = 0x020000000001ull, kDstMac = 0x020000000002ull;
constexpr uint32_t kSrc4 = 0xC6120001, kDst4 = 0xC6120002;  // 198.18.0.1, .2
inline const uint8_t kSrc6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};  // 2001:db8::1
inline const uint8_t kDst6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};  // 2001:db8::2

// An IPv6 extension header to put between the fixed header and L4.
struct Ext {
  uint8_t type;           // 0 hop-by-hop, 43 routing, 60 destination options, 44 fragment, 51 AH...
  uint8_t len_units = 0;  // Hdr Ext Len (8-octet units beyond the first 8)
  uint8_t seg_left = 0;   // routing: Segments Left
};

struct Spec {
  Mac dst = kDstMac, src = kSrcMac;
  std::vector<uint16_t> tpids;  // one VLAN tag per entry (0x8100 or 0x88A8)
  bool v6 = false;
  uint8_t proto = kIpProtoTcp;
  uint32_t ip_opt = 0;          // IPv4 option bytes (multiple of 4)
  std::vector<Ext> ext;         // IPv6 extension headers
  uint32_t tcp_opt = 0;         // TCP option bytes (multiple of 4)
  uint32_t payload = 100;
  uint8_t tcp_flags = 0x18;     // ACK|PSH
  uint32_t seq = 1000;
  uint16_t urp = 0;
  uint16_t ip_id = 0x1234;
  uint16_t frag = 0x4000;       // DF
  uint8_t ttl = 64;
  uint32_t pad = 0;             // bytes after the IP packet (Ethernet padding)
  uint8_t seed = 0;             // payload pattern
  bool full_csum = true;        // L4 checksum complete; false: pseudo-header seed (checksum-partial)
};

struct Built {
  Bytes f;
  uint32_t l3_off, l4_off, hdr_len;
};

inline Built build(const Spec& s) {
  Built b;
  const uint32_t l3 = kEthHeaderLen + kVlanTagLen * uint32_t(s.tpids.size());
  uint32_t ext_len = 0;
  for (const Ext& e : s.ext) ext_len += (uint32_t(e.len_units) + 1) * 8;
  const uint32_t iphl = s.v6 ? kIpv6HeaderLen + ext_len : kIpv4HeaderLen + s.ip_opt;
  const uint32_t l4hl = s.proto == kIpProtoTcp ? 20 + s.tcp_opt : 8;
  const uint32_t l4 = l3 + iphl;
  const uint32_t ip_len = iphl + l4hl + s.payload;
  Bytes& f = b.f;
  f.assign(l3 + ip_len + s.pad, 0);
  mac_store(f.data(), s.dst);
  mac_store(f.data() + 6, s.src);
  uint32_t o = 12;
  for (size_t i = 0; i < s.tpids.size(); ++i, o += 4) {
    store_be16(f.data() + o, s.tpids[i]);
    store_be16(f.data() + o + 2, uint16_t(100 + i));
  }
  store_be16(f.data() + o, s.v6 ? kEtherTypeIpv6 : kEtherTypeIpv4);
  uint8_t* ip = f.data() + l3;
  if (!s.v6) {
    ip[0] = uint8_t(0x40 | (iphl / 4));
    store_be16(ip + 2, uint16_t(ip_len));
    store_be16(ip + 4, s.ip_id);
    store_be16(ip + 6, s.frag);
    ip[8] = s.ttl;
    ip[9] = s.proto;
    store_be32(ip + 12, kSrc4);
    store_be32(ip + 16, kDst4);
    for (uint32_t i = 0; i < s.ip_opt; ++i) ip[20 + i] = 1;  // NOP options
    store_be16(ip + 10, uint16_t(~ref_sum(ip, iphl)));
  } else {
    ip[0] = 0x60;
    store_be16(ip + 4, uint16_t(ip_len - kIpv6HeaderLen));
    ip[6] = s.ext.empty() ? s.proto : s.ext[0].type;
    ip[7] = s.ttl;
    std::memcpy(ip + 8, kSrc6, 16);
    std::memcpy(ip + 24, kDst6, 16);
    uint8_t* h = ip + kIpv6HeaderLen;
    for (size_t i = 0; i < s.ext.size(); ++i) {
      h[0] = i + 1 < s.ext.size() ? s.ext[i + 1].type : s.proto;
      h[1] = s.ext[i].len_units;
      if (s.ext[i].type == 43) h[3] = s.ext[i].seg_left;
      if (s.ext[i].type == 0 || s.ext[i].type == 60) h[2] = 1, h[3] = uint8_t(s.ext[i].len_units * 8 + 4);  // PadN
      h += (uint32_t(s.ext[i].len_units) + 1) * 8;
    }
  }
  uint8_t* t = f.data() + l4;
  for (uint32_t i = 0; i < s.payload; ++i) t[l4hl + i] = uint8_t((i * 131 + (i >> 8) * 7 + s.seed) & 0xFF);
  const uint32_t l4_total = l4hl + s.payload;
  uint8_t* check;
  if (s.proto == kIpProtoTcp) {
    store_be16(t, 40000);
    store_be16(t + 2, 5201);
    store_be32(t + 4, s.seq);
    store_be32(t + 8, 0xA0B0C0D0);
    t[12] = uint8_t((l4hl / 4) << 4);
    t[13] = s.tcp_flags;
    store_be16(t + 14, 64240);
    store_be16(t + 18, s.urp);
    for (uint32_t i = 0; i < s.tcp_opt; ++i) t[20 + i] = 1;  // NOP
    check = t + 16;
  } else {
    store_be16(t, 40000);
    store_be16(t + 2, 9000);
    store_be16(t + 4, uint16_t(l4_total));
    check = t + 6;
  }
  const uint32_t pseudo = ref_pseudo(ip, s.proto, l4_total);
  if (s.full_csum) {
    uint16_t c = uint16_t(~ref_sum(t, l4_total, pseudo));
    if (c == 0 && s.proto == kIpProtoUdp) c = 0xFFFF;
    store_be16(check, c);
  } else {
    store_be16(check, uint16_t(ref_sum(nullptr, 0, pseudo)));  // folded, not complemented: what senders seed
  }
  b.l3_off = l3;
  b.l4_off = l4;
  b.hdr_len = l4 + l4hl;
  return b;
}

}  // namespace vpc::testframes
