#include "proto/tunnel_gso.h"

#include <cstring>

#include "proto/ethernet.h"
#include "proto/gso.h"
#include "proto/inet.h"

namespace vpc {

namespace {

constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpPsh = 0x08, kTcpUrg = 0x20, kTcpCwr = 0x80;

// The TCP checksum of one segment (pseudo-header, header, payload) is right.
bool tcp_csum_ok(const uint8_t* f, const FrameLayout& L, uint32_t seg_end) {
  const uint8_t* ip = f + L.l3_off;
  const uint32_t l4 = seg_end - L.l4_off;
  const uint32_t pseudo = L.ip_version == 4 ? csum_pseudo4(ip + 12, ip + 16, uint16_t(l4), kIpProtoTcp)
                                            : csum_pseudo6(ip + 8, ip + 24, l4, kIpProtoTcp);
  return csum_fold(csum_partial(f + L.l4_off, l4, pseudo)) == 0;
}

// Segment `s` has segment `f0`'s headers (hdr_len bytes) but for the fields a
// segmenter changes: IPv4 total length, ID and header checksum, IPv6 payload
// length, TCP sequence number, flags and checksum.
bool same_headers(const uint8_t* f0, const uint8_t* s, const FrameLayout& L) {
  const uint32_t ip = L.l3_off, tcp = L.l4_off;
  struct Span {
    uint32_t from, to;
  };
  Span keep[6];
  uint32_t n = 0;
  uint32_t at = 0;
  auto skip = [&](uint32_t a, uint32_t b) {
    keep[n++] = {at, a};
    at = b;
  };
  if (L.ip_version == 4) {
    skip(ip + 2, ip + 6);    // total length, ID
    skip(ip + 10, ip + 12);  // header checksum
  } else {
    skip(ip + 4, ip + 6);  // payload length
  }
  skip(tcp + 4, tcp + 8);    // sequence number
  skip(tcp + 13, tcp + 14);  // flags
  skip(tcp + 16, tcp + 18);  // checksum
  keep[n++] = {at, L.hdr_len};
  for (uint32_t i = 0; i < n; ++i)
    if (keep[i].to > keep[i].from && std::memcmp(f0 + keep[i].from, s + keep[i].from, keep[i].to - keep[i].from) != 0)
      return false;
  return true;
}

}  // namespace

bool uso_coalesce(uint8_t* p, uint32_t len, uint32_t chunk, UsoCoalesced* out) {
  if (chunk <= kVxlanHeaderLen + kEthHeaderLen || len <= chunk) return false;
  const uint32_t n = (len + chunk - 1) / chunk;
  uint8_t* f0 = p + kVxlanHeaderLen;
  const uint32_t len0 = chunk - kVxlanHeaderLen;
  FrameLayout L;
  if (!frame_layout(f0, len0, &L) || L.l4_proto != kIpProtoTcp || L.ip_end != len0 || L.hdr_len >= len0)
    return false;
  const uint32_t mss = len0 - L.hdr_len;
  const uint32_t seq0 = load_be32(f0 + L.l4_off + 4);
  const uint8_t flags0 = f0[L.l4_off + 13];
  uint8_t last_flags = flags0;
  uint32_t total = 0;  // payload bytes
  for (uint32_t i = 0; i < n; ++i) {
    const uint8_t* c = p + size_t(i) * chunk;
    const uint32_t clen = i + 1 < n ? chunk : len - i * chunk;
    if (clen <= uint32_t(kVxlanHeaderLen + L.hdr_len)) return false;
    if (i && std::memcmp(c, p, kVxlanHeaderLen) != 0) return false;
    const uint8_t* s = c + kVxlanHeaderLen;
    const uint32_t slen = clen - kVxlanHeaderLen;
    const uint32_t pay = slen - L.hdr_len;
    if (i && !same_headers(f0, s, L)) return false;
    const uint8_t* ip = s + L.l3_off;
    if (L.ip_version == 4) {
      if (load_be16(ip + 2) != slen - L.l3_off || !ipv4_checksum_ok(ip, uint16_t(L.l4_off - L.l3_off))) return false;
    } else if (load_be16(ip + 4) != slen - L.l3_off - kIpv6HeaderLen) {
      return false;
    }
    const uint8_t* tcp = s + L.l4_off;
    if (load_be32(tcp + 4) != seq0 + total) return false;
    const uint8_t fl = tcp[13];
    if (fl & (kTcpSyn | kTcpRst | kTcpUrg)) return false;
    if (i + 1 < n && (fl & (kTcpFin | kTcpPsh))) return false;
    if (i && (fl & kTcpCwr)) return false;
    if (i && ((fl ^ flags0) & ~(kTcpFin | kTcpPsh | kTcpCwr))) return false;  // ECE and ACK as the first's
    if (i + 1 < n ? pay != mss : pay > mss) return false;
    if (!tcp_csum_ok(s, L, slen)) return false;
    last_flags = fl;
    total += pay;
  }
  // Checked: now rewrite. The payloads move down over the headers in between.
  uint8_t* w = f0 + len0;
  for (uint32_t i = 1; i < n; ++i) {
    const uint8_t* c = p + size_t(i) * chunk;
    const uint32_t clen = i + 1 < n ? chunk : len - i * chunk;
    const uint32_t pay = clen - kVxlanHeaderLen - L.hdr_len;
    std::memmove(w, c + kVxlanHeaderLen + L.hdr_len, pay);
    w += pay;
  }
  const uint32_t inner_len = L.hdr_len + total;
  uint8_t* ip = f0 + L.l3_off;
  uint8_t* tcp = f0 + L.l4_off;
  const uint32_t l4_len = inner_len - L.l4_off;
  uint32_t pseudo;
  if (L.ip_version == 4) {
    const uint16_t ihl = uint16_t(L.l4_off - L.l3_off);
    store_be16(ip + 2, uint16_t(inner_len - L.l3_off));
    store_be16(ip + 10, 0);
    store_be16(ip + 10, csum_fold(csum_partial(ip, ihl, 0)));
    pseudo = csum_pseudo4(ip + 12, ip + 16, uint16_t(l4_len), kIpProtoTcp);
  } else {
    store_be16(ip + 4, uint16_t(inner_len - L.l3_off - kIpv6HeaderLen));
    pseudo = csum_pseudo6(ip + 8, ip + 24, l4_len, kIpProtoTcp);
  }
  tcp[13] = uint8_t(flags0 | (last_flags & (kTcpFin | kTcpPsh)));
  store_be16(tcp + 16, uint16_t(~csum_fold(pseudo)));  // the pseudo-header sum, as a TSO sender seeds it
  out->inner_len = inner_len;
  out->segments = n;
  OffloadMeta m;
  m.flags = OffloadMeta::kNeedsCsum;
  m.gso_type = uint8_t((L.ip_version == 4 ? OffloadMeta::kGsoTcpv4 : OffloadMeta::kGsoTcpv6) |
                       ((flags0 & kTcpCwr) ? OffloadMeta::kGsoEcn : 0));
  m.hdr_len = L.hdr_len;
  m.gso_size = uint16_t(mss);
  m.csum_start = L.l4_off;
  m.csum_offset = 16;
  out->meta = m;
  return true;
}

}  // namespace vpc
