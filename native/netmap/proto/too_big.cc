#include "proto/too_big.h"

#include <cstring>

#include "proto/ethernet.h"
#include "proto/gso.h"
#include "proto/inet.h"

namespace vpc {

namespace {

constexpr uint8_t kIcmpUnreachable = 3, kIcmpFragNeeded = 4;
constexpr uint8_t kIcmpv6PacketTooBig = 2;
constexpr uint8_t kIcmpv6FirstInfo = 128;  // types below are errors (RFC 4443 2.1)
constexpr uint8_t kIpv6Hbh = 0, kIpv6Routing = 43, kIpv6Fragment = 44, kIpv6DestOpts = 60;
constexpr uint32_t kMaxIpv6ExtHeaders = 8;
constexpr uint8_t kReplyTtl = 64;
constexpr uint8_t kReplyTos4 = 0xC0;
constexpr uint32_t kMinMtu4 = 68, kMinMtu6 = 1280;
constexpr uint16_t kIcmpHeaderLen = 8;

const ReasonInfo kSkipInfo[] = {VPC_TOO_BIG_SKIPS(VPC_REASON_INFO_ROW)};
const ReasonInfo kUnknownSkip = {"unknown", "unknown reason"};

inline uint32_t skip(TooBigSkip* why, TooBigSkip s) {
  if (why) *why = s;
  return 0;
}

// One's-complement addition of 16-bit native sums, then the complement.
inline uint16_t finish(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return uint16_t(~sum);
}
inline void put_csum(uint8_t* p, uint32_t sum) {
  const uint16_t c = finish(sum);
  std::memcpy(p, &c, 2);
}

// Source addresses an error must never be sent to (RFC 1812 4.3.2.7):
// 0/8 (this network), 127/8, 224/4 multicast and 240/4 (reserved and the
// limited broadcast).
inline bool bad_src4(uint32_t a) {
  const uint32_t top = a >> 24;
  return top == 0 || top == 127 || top >= 224;
}
inline bool multicast_dst4(uint32_t a) { return (a >> 28) == 0xE || a == 0xFFFFFFFFu; }

inline bool is_zero16(const uint8_t* a) {
  for (int i = 0; i < 16; ++i)
    if (a[i]) return false;
  return true;
}
inline bool is_loopback6(const uint8_t* a) {
  for (int i = 0; i < 15; ++i)
    if (a[i]) return false;
  return a[15] == 1;
}

// Ethernet header of the answer: MACs swapped, the frame's tags kept.
void write_l2(const uint8_t* f, uint32_t l3_off, uint8_t* out) {
  std::memcpy(out, f + 6, 6);
  std::memcpy(out + 6, f, 6);
  std::memcpy(out + 12, f + 12, l3_off - 12);
}

}  // namespace

const char* too_big_skip_name(TooBigSkip s) { return reason_info(kSkipInfo, s, kUnknownSkip).name; }
const char* too_big_skip_help(TooBigSkip s) { return reason_info(kSkipInfo, s, kUnknownSkip).help; }

uint32_t icmp_too_big(const uint8_t* f, uint32_t len, uint32_t mtu, uint8_t* out, uint32_t cap, TooBigSkip* why) {
  EthL3 eth;
  switch (eth_l3(f, len, &eth)) {
    case OffloadError::none:
      break;
    case OffloadError::truncated:
      return skip(why, TooBigSkip::truncated);
    default:
      return skip(why, TooBigSkip::not_ip);
  }
  const Mac dst_mac = mac_load(f), src_mac = mac_load(f + 6);
  if (mac_is_multicast(dst_mac)) return skip(why, TooBigSkip::multicast_dst);
  if (mac_is_multicast(src_mac)) return skip(why, TooBigSkip::bad_src);
  const uint32_t l3 = eth.off;
  const uint8_t* ip = f + l3;

  if (eth.type == kEtherTypeIpv4) {
    if (l3 + kIpv4HeaderLen > len) return skip(why, TooBigSkip::truncated);
    const uint32_t ihl = uint32_t(ip[0] & 0x0F) * 4;
    const uint32_t total = load_be16(ip + 2);
    if ((ip[0] >> 4) != 4 || ihl < kIpv4HeaderLen || total < ihl || l3 + total > len)
      return skip(why, TooBigSkip::truncated);
    if (mtu < kMinMtu4) return skip(why, TooBigSkip::mtu_below_minimum);
    if (total <= mtu) return skip(why, TooBigSkip::fits);
    const uint16_t frag = load_be16(ip + 6);
    if (frag & 0x1FFF) return skip(why, TooBigSkip::fragment);
    if (!(frag & 0x4000)) return skip(why, TooBigSkip::not_df);
    const uint32_t src = load_be32(ip + 12), dst = load_be32(ip + 16);
    if (multicast_dst4(dst)) return skip(why, TooBigSkip::multicast_dst);
    if (bad_src4(src)) return skip(why, TooBigSkip::bad_src);
    if (ip[9] == kIpProtoIcmp) {
      if (ihl + 1 > total) return skip(why, TooBigSkip::truncated);
      const uint8_t type = ip[ihl];
      if (type == 3 || type == 4 || type == 5 || type == 11 || type == 12) return skip(why, TooBigSkip::icmp_error);
    }
    const uint32_t quote = total < kTooBigMax4 - kIpv4HeaderLen - kIcmpHeaderLen
                               ? total
                               : kTooBigMax4 - kIpv4HeaderLen - kIcmpHeaderLen;
    const uint32_t ip_len = kIpv4HeaderLen + kIcmpHeaderLen + quote;
    if (l3 + ip_len > cap) return skip(why, TooBigSkip::no_room);
    write_l2(f, l3, out);
    uint8_t* r = out + l3;
    r[0] = 0x45;
    r[1] = kReplyTos4;
    store_be16(r + 2, uint16_t(ip_len));
    std::memcpy(r + 4, ip + 4, 2);  // ID
    store_be16(r + 6, 0);           // no DF, no fragment
    r[8] = kReplyTtl;
    r[9] = kIpProtoIcmp;
    r[10] = r[11] = 0;
    std::memcpy(r + 12, ip + 16, 4);
    std::memcpy(r + 16, ip + 12, 4);
    put_csum(r + 10, csum_native(r, kIpv4HeaderLen));
    uint8_t* icmp = r + kIpv4HeaderLen;
    icmp[0] = kIcmpUnreachable;
    icmp[1] = kIcmpFragNeeded;
    icmp[2] = icmp[3] = 0;
    store_be16(icmp + 4, 0);
    store_be16(icmp + 6, uint16_t(mtu));  // mtu < total <= 65535
    std::memcpy(icmp + kIcmpHeaderLen, ip, quote);
    put_csum(icmp + 2, csum_native(icmp, kIcmpHeaderLen + quote));
    if (why) *why = TooBigSkip::none;
    return l3 + ip_len;
  }

  if (eth.type != kEtherTypeIpv6) return skip(why, TooBigSkip::not_ip);
  if (l3 + kIpv6HeaderLen > len || (ip[0] >> 4) != 6) return skip(why, TooBigSkip::truncated);
  const uint32_t total = kIpv6HeaderLen + load_be16(ip + 4);
  // A payload length of 0 (a jumbogram) is not answered either: the frame
  // would have to be longer than 64 KiB, and the length is not checkable.
  if (total == kIpv6HeaderLen || l3 + total > len) return skip(why, TooBigSkip::truncated);
  if (mtu < kMinMtu6) return skip(why, TooBigSkip::mtu_below_minimum);
  if (total <= mtu) return skip(why, TooBigSkip::fits);
  const uint8_t* src = ip + 8;
  const uint8_t* dst = ip + 24;
  if (dst[0] == 0xFF) return skip(why, TooBigSkip::multicast_dst);
  if (src[0] == 0xFF || is_zero16(src) || is_loopback6(src)) return skip(why, TooBigSkip::bad_src);
  // Walk the extension headers to the upper layer: a non-first fragment or
  // an ICMPv6 error is not answered; a chain that runs out of the packet is
  // not answered either (it cannot be told apart from an error).
  uint8_t next = ip[6];
  uint32_t off = kIpv6HeaderLen;
  for (uint32_t n = 0; next == kIpv6Hbh || next == kIpv6Routing || next == kIpv6DestOpts || next == kIpv6Fragment;
       ++n) {
    if (n == kMaxIpv6ExtHeaders || off + 8 > total) return skip(why, TooBigSkip::truncated);
    const uint8_t* h = ip + off;
    if (next == kIpv6Fragment) {
      if (load_be16(h + 2) & 0xFFF8) return skip(why, TooBigSkip::fragment);
      off += 8;
    } else {
      off += (uint32_t(h[1]) + 1) * 8;
    }
    next = h[0];
  }
  if (next == kIpProtoIcmpv6) {
    if (off + 1 > total) return skip(why, TooBigSkip::truncated);
    if (ip[off] < kIcmpv6FirstInfo) return skip(why, TooBigSkip::icmp_error);
  }
  const uint32_t room = kTooBigMax6 - kIpv6HeaderLen - kIcmpHeaderLen;
  const uint32_t quote = total < room ? total : room;
  const uint32_t icmp_len = kIcmpHeaderLen + quote;
  if (l3 + kIpv6HeaderLen + icmp_len > cap) return skip(why, TooBigSkip::no_room);
  write_l2(f, l3, out);
  uint8_t* r = out + l3;
  store_be32(r, 0x60000000);  // version 6, traffic class 0, flow label 0
  store_be16(r + 4, uint16_t(icmp_len));
  r[6] = kIpProtoIcmpv6;
  r[7] = kReplyTtl;
  std::memcpy(r + 8, dst, 16);
  std::memcpy(r + 24, src, 16);
  uint8_t* icmp = r + kIpv6HeaderLen;
  icmp[0] = kIcmpv6PacketTooBig;
  icmp[1] = 0;
  icmp[2] = icmp[3] = 0;
  store_be32(icmp + 4, mtu);
  std::memcpy(icmp + kIcmpHeaderLen, ip, quote);
  uint8_t pseudo[8] = {};
  store_be32(pseudo, icmp_len);
  pseudo[7] = kIpProtoIcmpv6;
  put_csum(icmp + 2, uint32_t(csum_native(r + 8, 32)) + csum_native(pseudo, 8) + csum_native(icmp, icmp_len));
  if (why) *why = TooBigSkip::none;
  return l3 + kIpv6HeaderLen + icmp_len;
}

}  // namespace vpc
