#include "proto/gro.h"

#include <cstring>

#include "proto/ethernet.h"
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

// The checks every segment of a run passes on its own: its IP length covers
// the frame exactly (no padding), its IPv4 header checksum, flags, and (with
// verify) its TCP checksum.
bool segment_ok(const uint8_t* s, uint32_t len, const FrameLayout& L, bool verify) {
  const uint8_t* ip = s + L.l3_off;
  if (L.ip_version == 4) {
    if (load_be16(ip + 2) != len - L.l3_off || !ipv4_checksum_ok(ip, uint16_t(L.l4_off - L.l3_off))) return false;
  } else if (load_be16(ip + 4) != len - L.l3_off - kIpv6HeaderLen) {
    return false;
  }
  if (s[L.l4_off + 13] & (kTcpSyn | kTcpRst | kTcpUrg)) return false;
  return !verify || tcp_csum_ok(s, L, len);
}

void take(TcpRun* r, uint8_t fl, uint32_t pay) {
  r->payload += pay;
  r->next_seq += pay;
  r->segments += 1;
  r->last_flags = fl;
  r->closed = (fl & (kTcpFin | kTcpPsh)) || pay < r->mss;
}

}  // namespace

bool tcp_run_start(const uint8_t* f, uint32_t len, bool verify, TcpRun* r) {
  FrameLayout L;
  if (!frame_layout(f, len, &L) || L.l4_proto != kIpProtoTcp || L.ip_end != len || L.hdr_len >= len) return false;
  if (!segment_ok(f, len, L, verify)) return false;
  *r = TcpRun{};
  r->L = L;
  r->mss = len - L.hdr_len;
  r->flags0 = f[L.l4_off + 13];
  r->next_seq = load_be32(f + L.l4_off + 4);
  take(r, r->flags0, r->mss);
  return true;
}

bool tcp_run_next(TcpRun* r, const uint8_t* f0, const uint8_t* s, uint32_t len, bool verify) {
  const FrameLayout& L = r->L;
  if (r->closed || len <= L.hdr_len || len - L.hdr_len > r->mss) return false;
  if (!same_headers(f0, s, L) || load_be32(s + L.l4_off + 4) != r->next_seq) return false;
  const uint8_t fl = s[L.l4_off + 13];
  if ((fl & kTcpCwr) || ((fl ^ r->flags0) & ~(kTcpFin | kTcpPsh | kTcpCwr))) return false;  // ECE and ACK as the first's
  if (!segment_ok(s, len, L, verify)) return false;
  take(r, fl, len - L.hdr_len);
  return true;
}

OffloadMeta tcp_run_finish(uint8_t* f0, const TcpRun& r) {
  const FrameLayout& L = r.L;
  const uint32_t inner_len = L.hdr_len + r.payload;
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
  tcp[13] = uint8_t(r.flags0 | (r.last_flags & (kTcpFin | kTcpPsh)));
  store_be16(tcp + 16, uint16_t(~csum_fold(pseudo)));  // the pseudo-header sum, as a TSO sender seeds it
  OffloadMeta m;
  m.flags = OffloadMeta::kNeedsCsum;
  m.gso_type = uint8_t((L.ip_version == 4 ? OffloadMeta::kGsoTcpv4 : OffloadMeta::kGsoTcpv6) |
                       ((r.flags0 & kTcpCwr) ? OffloadMeta::kGsoEcn : 0));
  m.hdr_len = L.hdr_len;
  m.gso_size = uint16_t(r.mss);
  m.csum_start = L.l4_off;
  m.csum_offset = 16;
  return m;
}

}  // namespace vpc
