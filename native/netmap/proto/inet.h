// IPv4, IPv6, UDP, ICMP/ICMPv6, ARP and VXLAN wire formats, and the Internet
// checksum (RFC 791, 8200, 768, 792, 4443, 826, 4861, 7348, 1071).
//
// Addresses are kept as IpAddr: 16 bytes, IPv4 stored as an IPv4-mapped IPv6
// address (::ffff:a.b.c.d), so one type and one comparison serve both
// families.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "proto/ethernet.h"

namespace vpc {

constexpr uint8_t kIpProtoIcmp = 1;
constexpr uint8_t kIpProtoTcp = 6;
constexpr uint8_t kIpProtoUdp = 17;
constexpr uint8_t kIpProtoIcmpv6 = 58;

constexpr uint16_t kIpv4HeaderLen = 20;
constexpr uint16_t kIpv6HeaderLen = 40;
constexpr uint16_t kUdpHeaderLen = 8;
constexpr uint16_t kVxlanHeaderLen = 8;
constexpr uint16_t kVxlanDefaultPort = 4789;
// Bytes VXLAN adds in front of an inner frame: outer Ethernet + IP + UDP + VXLAN.
constexpr uint16_t kVxlanOverhead4 = kEthHeaderLen + kIpv4HeaderLen + kUdpHeaderLen + kVxlanHeaderLen;  // 50
constexpr uint16_t kVxlanOverhead6 = kEthHeaderLen + kIpv6HeaderLen + kUdpHeaderLen + kVxlanHeaderLen;  // 70
constexpr uint8_t kVxlanFlagI = 0x08;  // "VNI valid"; every other flag bit is reserved

struct IpAddr {
  uint8_t b[16] = {};
  bool is_v4() const {
    static const uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(b, kPrefix, 12) == 0;
  }
  uint32_t v4() const { return (uint32_t(b[12]) << 24) | (uint32_t(b[13]) << 16) | (uint32_t(b[14]) << 8) | b[15]; }
  static IpAddr from_v4(uint32_t a) {
    IpAddr r;
    r.b[10] = r.b[11] = 0xff;
    r.b[12] = uint8_t(a >> 24);
    r.b[13] = uint8_t(a >> 16);
    r.b[14] = uint8_t(a >> 8);
    r.b[15] = uint8_t(a);
    return r;
  }
  static IpAddr from_v6(const uint8_t* p) {
    IpAddr r;
    std::memcpy(r.b, p, 16);
    return r;
  }
  bool is_zero() const {
    for (uint8_t x : b)
      if (x) return false;
    return true;
  }
  bool operator==(const IpAddr& o) const { return std::memcmp(b, o.b, 16) == 0; }
  bool operator!=(const IpAddr& o) const { return !(*this == o); }
};

// Parses dotted IPv4 or RFC 4291 text IPv6. Returns false on bad input.
bool ip_parse(const char* s, IpAddr* out);
std::string ip_format(const IpAddr& a);
// True when a and b share the first `prefix` bits (prefix counts in the
// address's own family: 0..32 for IPv4, 0..128 for IPv6).
bool ip_same_prefix(const IpAddr& a, const IpAddr& b, uint8_t prefix);

inline uint32_t load_be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}
inline void store_be32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}

// Internet checksum: one's-complement sum of 16-bit big-endian words.
// csum_partial accumulates (carry folded at the end); csum_fold finishes.
uint32_t csum_partial(const uint8_t* p, size_t len, uint32_t sum);
inline uint16_t csum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return uint16_t(~sum);
}
// Pseudo-header sum for UDP/TCP/ICMPv6 over IPv6 (RFC 8200 section 8.1).
uint32_t csum_pseudo6(const uint8_t* src, const uint8_t* dst, uint32_t len, uint8_t proto);
// Pseudo-header sum over IPv4 (RFC 768).
uint32_t csum_pseudo4(const uint8_t* src, const uint8_t* dst, uint16_t len, uint8_t proto);

// IPv4 header checksum over `ihl_bytes` (checksum field included: a valid
// header sums to 0). The common 20-byte header is summed as five 32-bit
// words, without the generic loop.
inline bool ipv4_checksum_ok(const uint8_t* ip, uint16_t ihl_bytes) {
  if (ihl_bytes != kIpv4HeaderLen) return csum_fold(csum_partial(ip, ihl_bytes, 0)) == 0;
  uint64_t sum = 0;
  for (int i = 0; i < 5; ++i) {
    uint32_t w;
    std::memcpy(&w, ip + 4 * i, 4);
    sum += __builtin_bswap32(w);
  }
  sum = (sum & 0xFFFFFFFFull) + (sum >> 32);
  return csum_fold(uint32_t((sum & 0xFFFF) + (sum >> 16))) == 0;
}

// The solicited-node multicast address of an IPv6 address (RFC 4291 2.7.1)
// and its Ethernet multicast MAC (RFC 2464 7).
IpAddr ipv6_solicited_node(const IpAddr& a);
Mac ipv6_multicast_mac(const IpAddr& group);

}  // namespace vpc
