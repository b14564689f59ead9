#include "proto/inet.h"

#include <arpa/inet.h>

#include <bit>

#include "proto/csum_words.h"

namespace vpc {

bool ip_parse(const char* s, IpAddr* out) {
  if (!s) return false;
  uint8_t buf[16];
  if (inet_pton(AF_INET, s, buf) == 1) {
    *out = IpAddr::from_v4(load_be32(buf));
    return true;
  }
  if (inet_pton(AF_INET6, s, buf) == 1) {
    *out = IpAddr::from_v6(buf);
    return true;
  }
  return false;
}

std::string ip_format(const IpAddr& a) {
  char buf[INET6_ADDRSTRLEN];
  if (a.is_v4()) inet_ntop(AF_INET, a.b + 12, buf, sizeof(buf));
  else inet_ntop(AF_INET6, a.b, buf, sizeof(buf));
  return buf;
}

bool ip_same_prefix(const IpAddr& a, const IpAddr& b, uint8_t prefix) {
  if (a.is_v4() != b.is_v4()) return false;
  unsigned start = a.is_v4() ? 96 : 0;
  unsigned bits = start + prefix;
  if (bits > 128) bits = 128;
  for (unsigned i = 0; i < bits; ++i) {
    unsigned byte = i / 8, bit = 7 - i % 8;
    if (((a.b[byte] >> bit) & 1) != ((b.b[byte] >> bit) & 1)) return false;
  }
  return true;
}

uint32_t csum_partial(const uint8_t* p, size_t len, uint32_t sum) {
  uint64_t acc = sum;
  if (len >= 128) {
    // Long runs (a datagram, a TCP segment): the vectorised native-order sum,
    // folded and byte-swapped into network order (RFC 1071 byte-order
    // independence). Callers pass at most a frame (< 2^32 bytes).
    uint32_t s = csum_detail::sum_words<false>(nullptr, p, uint32_t(len));
    if constexpr (std::endian::native == std::endian::little) s = __builtin_bswap16(uint16_t(s));
    acc += s;
  } else {
    // Short ones (addresses, headers, small frames): a plain loop costs less
    // than the vector setup and folds.
    while (len >= 8) {
      acc += load_be32(p);
      acc += load_be32(p + 4);
      p += 8;
      len -= 8;
    }
    while (len >= 2) {
      acc += uint32_t(p[0] << 8 | p[1]);
      p += 2;
      len -= 2;
    }
    if (len) acc += uint32_t(p[0] << 8);
  }
  while (acc >> 32) acc = (acc & 0xFFFFFFFFull) + (acc >> 32);
  // Reduce to 32 bits without losing carries.
  acc = (acc & 0xFFFF) + ((acc >> 16) & 0xFFFF) + (acc >> 32);
  return uint32_t(acc);
}

uint32_t csum_pseudo6(const uint8_t* src, const uint8_t* dst, uint32_t len, uint8_t proto) {
  uint32_t s = csum_partial(src, 16, 0);
  s = csum_partial(dst, 16, s);
  s += (len >> 16) + (len & 0xFFFF);
  s += proto;
  return s;
}

uint32_t csum_pseudo4(const uint8_t* src, const uint8_t* dst, uint16_t len, uint8_t proto) {
  uint32_t s = csum_partial(src, 4, 0);
  s = csum_partial(dst, 4, s);
  s += len;
  s += proto;
  return s;
}

IpAddr ipv6_solicited_node(const IpAddr& a) {
  IpAddr r;
  static const uint8_t kPrefix[13] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff};
  std::memcpy(r.b, kPrefix, 13);
  r.b[13] = a.b[13];
  r.b[14] = a.b[14];
  r.b[15] = a.b[15];
  return r;
}

Mac ipv6_multicast_mac(const IpAddr& g) {
  return (Mac(0x33) << 40) | (Mac(0x33) << 32) | (Mac(g.b[12]) << 24) | (Mac(g.b[13]) << 16) | (Mac(g.b[14]) << 8) |
         Mac(g.b[15]);
}

}  // namespace vpc
