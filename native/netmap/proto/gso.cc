#include "proto/gso.h"

#include <bit>
#include <cstring>

#include "proto/csum_words.h"
#include "proto/ethernet.h"
#include "proto/inet.h"

namespace vpc {

namespace {

using csum_detail::fold64;
using csum_detail::sum_words;

constexpr uint16_t kEtherTypeQinQ = 0x88A8;
constexpr uint8_t kIpv6Hbh = 0, kIpv6Routing = 43, kIpv6Fragment = 44, kIpv6Esp = 50, kIpv6Ah = 51,
                  kIpv6DestOpts = 60;
constexpr uint32_t kMaxIpv6ExtHeaders = 8;
constexpr uint8_t kTcpFin = 0x01, kTcpPsh = 0x08, kTcpUrg = 0x20, kTcpCwr = 0x80;
constexpr uint16_t kTcpMinHeader = 20;

const ReasonInfo kErrorInfo[] = {VPC_OFFLOAD_ERRORS(VPC_REASON_INFO_ROW)};
const ReasonInfo kUnknownError = {"unknown", "unknown offload error"};

inline bool fail(OffloadError* err, OffloadError e) {
  if (err) *err = e;
  return false;
}

// Folds an accumulator of 16-bit native sums, complements it, and stores it
// at p (network order, by RFC 1071's byte-order independence).
inline void store_csum(uint8_t* p, uint64_t sum, bool zero_is_ffff) {
  uint16_t c = uint16_t(~fold64(sum));
  if (zero_is_ffff && c == 0) c = 0xFFFF;
  std::memcpy(p, &c, 2);
}

// The layout invariants every segmentation function relies on for bounds
// (see FrameLayout). Cheap, so checked on every call.
bool layout_fits(const FrameLayout& L, uint32_t len, OffloadError* err) {
  uint32_t min_l3;
  if (L.ip_version == 4) min_l3 = kIpv4HeaderLen;
  else if (L.ip_version == 6) min_l3 = kIpv6HeaderLen;
  else return fail(err, OffloadError::bad_ip_header);
  if (L.l4_proto == kIpProtoTcp) {
    if (L.l4_len < kTcpMinHeader || L.l4_len > 60 || L.l4_len % 4) return fail(err, OffloadError::bad_l4_header);
  } else if (L.l4_proto == kIpProtoUdp) {
    if (L.l4_len != kUdpHeaderLen) return fail(err, OffloadError::bad_l4_header);
  } else {
    return fail(err, OffloadError::not_tcp_udp);
  }
  if (L.l3_off < kEthHeaderLen || uint32_t(L.l3_off) + min_l3 > L.l4_off) return fail(err, OffloadError::truncated);
  if (L.ip_version == 4 && (L.l4_off - L.l3_off > 60 || (L.l4_off - L.l3_off) % 4))
    return fail(err, OffloadError::bad_ip_header);
  if (uint32_t(L.l4_off) + L.l4_len != L.hdr_len || L.hdr_len > L.ip_end || L.ip_end > len)
    return fail(err, OffloadError::truncated);
  return true;
}

// Header sums for a segment are taken from the super-frame's bytes, with the
// fields that change added as values, rather than summed from the segment
// after its fields were stored: loading bytes just stored by narrower stores
// stalls store forwarding, which cost a third of the segmentation time.
// All in native order: ld16/ld32 load native words, nat16/nat32 give the
// native word whose bytes are v in network order.
inline uint64_t ld16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint64_t ld32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t nat16(uint16_t v) {
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap16(v);
  return v;
}
inline uint64_t nat32(uint32_t v) {
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap32(v);
  return v;
}
// Words [p, p + n), n a multiple of 4 (IPv4 and TCP options).
inline uint64_t sum32(const uint8_t* p, uint32_t n) {
  uint64_t s = 0;
  for (uint32_t k = 0; k < n; k += 4) s += ld32(p + k);
  return s;
}

// Pseudo-header sum (RFC 768 / RFC 8200 8.1) from the IP header at ip, for an
// upper-layer packet of l4_total bytes.
inline uint64_t pseudo_sum(const uint8_t* ip, uint8_t version, uint8_t proto, uint32_t l4_total) {
  if (version == 4) return ld32(ip + 12) + ld32(ip + 16) + nat16(proto) + nat16(uint16_t(l4_total));
  return sum32(ip + 8, 32) + nat32(l4_total) + nat16(proto);
}

}  // namespace

const char* offload_error_name(OffloadError e) { return reason_info(kErrorInfo, e, kUnknownError).name; }
const char* offload_error_help(OffloadError e) { return reason_info(kErrorInfo, e, kUnknownError).help; }

uint16_t csum_native(const uint8_t* p, uint32_t n) { return uint16_t(sum_words<false>(nullptr, p, n)); }

// ------------------------------------------------------------------ layout

OffloadError eth_l3(const uint8_t* f, uint32_t len, EthL3* out) {
  if (len < kEthHeaderLen) return OffloadError::truncated;
  uint32_t off = 12;
  uint8_t tags = 0;
  uint16_t type = load_be16(f + off);
  while (type == kEtherTypeVlan || type == kEtherTypeQinQ) {
    if (tags == 2) return OffloadError::not_ip;
    off += kVlanTagLen;
    if (off + 2 > len) return OffloadError::truncated;
    ++tags;
    type = load_be16(f + off);
  }
  out->off = uint16_t(off + 2);
  out->type = type;
  out->tags = tags;
  return OffloadError::none;
}

bool frame_layout(const uint8_t* f, uint32_t len, FrameLayout* out, OffloadError* err) {
  FrameLayout L;
  EthL3 eth;
  if (const OffloadError e = eth_l3(f, len, &eth); e != OffloadError::none) return fail(err, e);
  const uint32_t off = eth.off;
  const uint16_t type = eth.type;
  L.vlan_tags = eth.tags;
  L.l3_off = eth.off;
  const uint8_t* ip = f + off;
  uint32_t l4_off;
  uint8_t proto;
  if (type == kEtherTypeIpv4) {
    if (off + kIpv4HeaderLen > len) return fail(err, OffloadError::truncated);
    const uint32_t ihl = uint32_t(ip[0] & 0x0F) * 4;
    if ((ip[0] >> 4) != 4 || ihl < kIpv4HeaderLen) return fail(err, OffloadError::bad_ip_header);
    if (off + ihl > len) return fail(err, OffloadError::truncated);
    const uint32_t total = load_be16(ip + 2);
    if (total < ihl || off + total > len) return fail(err, OffloadError::bad_ip_length);
    if (load_be16(ip + 6) & 0x3FFF) return fail(err, OffloadError::ip_fragment);  // MF or an offset
    L.ip_version = 4;
    L.ip_end = off + total;
    l4_off = off + ihl;
    proto = ip[9];
  } else if (type == kEtherTypeIpv6) {
    if (off + kIpv6HeaderLen > len) return fail(err, OffloadError::truncated);
    if ((ip[0] >> 4) != 6) return fail(err, OffloadError::bad_ip_header);
    const uint32_t payload = load_be16(ip + 4);
    // 0 is either a jumbogram (RFC 2675, never a GSO frame here) or no payload at all.
    if (payload == 0 || off + kIpv6HeaderLen + payload > len) return fail(err, OffloadError::bad_ip_length);
    L.ip_version = 6;
    L.ip_end = off + kIpv6HeaderLen + payload;
    l4_off = off + kIpv6HeaderLen;
    proto = ip[6];
    for (uint32_t n = 0; proto == kIpv6Hbh || proto == kIpv6Routing || proto == kIpv6DestOpts; ++n) {
      // Hop-by-hop is only allowed right after the fixed header (RFC 8200 4.3).
      if (n == kMaxIpv6ExtHeaders || (proto == kIpv6Hbh && n != 0)) return fail(err, OffloadError::ipv6_ext);
      if (l4_off + 8 > L.ip_end) return fail(err, OffloadError::truncated);
      const uint8_t* h = f + l4_off;
      // Segments left != 0: the pseudo-header's destination is inside the
      // routing header (RFC 8200 8.1), not in the fixed header.
      if (proto == kIpv6Routing && h[3] != 0) return fail(err, OffloadError::ipv6_ext);
      proto = h[0];
      l4_off += (uint32_t(h[1]) + 1) * 8;
    }
    if (proto == kIpv6Fragment) return fail(err, OffloadError::ip_fragment);
    if (proto == kIpv6Ah || proto == kIpv6Esp) return fail(err, OffloadError::ipv6_ext);
  } else {
    return fail(err, OffloadError::not_ip);
  }
  if (proto == kIpProtoTcp) {
    if (l4_off + kTcpMinHeader > L.ip_end) return fail(err, OffloadError::truncated);
    const uint32_t doff = uint32_t(f[l4_off + 12] >> 4) * 4;
    if (doff < kTcpMinHeader) return fail(err, OffloadError::bad_l4_header);
    if (l4_off + doff > L.ip_end) return fail(err, OffloadError::truncated);
    L.l4_len = uint16_t(doff);
  } else if (proto == kIpProtoUdp) {
    if (l4_off + kUdpHeaderLen > L.ip_end) return fail(err, OffloadError::truncated);
    if (load_be16(f + l4_off + 4) != L.ip_end - l4_off) return fail(err, OffloadError::bad_l4_header);
    L.l4_len = kUdpHeaderLen;
  } else {
    return fail(err, OffloadError::not_tcp_udp);
  }
  L.l4_off = uint16_t(l4_off);  // < 22 + 40 + 8 * 2048: fits
  L.l4_proto = proto;
  L.hdr_len = uint16_t(l4_off + L.l4_len);
  *out = L;
  return true;
}

// ------------------------------------------------------ checksum completion

bool csum_complete(uint8_t* f, uint32_t len, const OffloadMeta& m, OffloadError* err) {
  if (!m.needs_csum()) return true;
  const uint32_t start = m.csum_start, field = start + m.csum_offset;
  if (start >= len || field + 2 > len) return fail(err, OffloadError::bad_csum_offsets);
  // The field's seeded value is part of the sum (it is inside [start, len)).
  store_csum(f + field, sum_words<false>(nullptr, f + start, len - start), true);
  return true;
}

// ------------------------------------------------------------ segmentation

uint32_t gso_segments(const uint8_t* f, uint32_t len, const OffloadMeta& m, const FrameLayout& L, uint16_t mss,
                      OffloadError* err) {
  switch (m.gso_kind()) {
    case OffloadMeta::kGsoTcpv4:
      if (L.ip_version != 4 || L.l4_proto != kIpProtoTcp) return fail(err, OffloadError::gso_mismatch);
      break;
    case OffloadMeta::kGsoTcpv6:
      if (L.ip_version != 6 || L.l4_proto != kIpProtoTcp) return fail(err, OffloadError::gso_mismatch);
      break;
    case OffloadMeta::kGsoUdpL4:
      if (L.l4_proto != kIpProtoUdp) return fail(err, OffloadError::gso_mismatch);
      break;
    case OffloadMeta::kGsoUdp:
      return fail(err, OffloadError::gso_ufo);
    default:
      return fail(err, OffloadError::gso_unknown);
  }
  if (mss == 0 || mss > m.gso_size) return fail(err, OffloadError::bad_mss);
  if (!layout_fits(L, len, err)) return 0;
  const uint32_t payload = L.payload_len();
  const uint32_t n = payload == 0 ? 1 : (payload + mss - 1) / mss;
  if (n > kGsoMaxSegments) return fail(err, OffloadError::too_many_segments);
  return n;
}

uint32_t gso_write_segment(const uint8_t* f, uint32_t len, const FrameLayout& L, uint16_t mss, uint32_t i,
                           uint8_t* out, uint32_t cap, OffloadError* err) {
  if (mss == 0) return fail(err, OffloadError::bad_mss);
  if (!layout_fits(L, len, err)) return 0;
  const uint32_t payload = L.payload_len();
  const uint32_t n = payload == 0 ? 1 : (payload + mss - 1) / mss;
  if (i >= n) return fail(err, OffloadError::bad_segment);
  const uint32_t done = i * mss;  // i < n <= 65535 and mss <= 65535: no overflow
  const uint32_t seg_payload = payload - done < mss ? payload - done : mss;
  const uint32_t seg_len = uint32_t(L.hdr_len) + seg_payload;
  if (seg_len > cap) return fail(err, OffloadError::no_room);

  const uint8_t* sip = f + L.l3_off;  // the super-frame's headers: summed from here
  const uint8_t* sl4 = f + L.l4_off;
  uint8_t* ip = out + L.l3_off;
  uint8_t* l4 = out + L.l4_off;
  std::memcpy(out, f, L.hdr_len);
  const uint32_t l4_total = seg_len - L.l4_off;
  if (L.ip_version == 4) {
    const uint32_t ihl = uint32_t(L.l4_off - L.l3_off);
    const uint16_t total = uint16_t(seg_len - L.l3_off);  // <= the original's total length
    const uint16_t id = uint16_t(load_be16(sip + 4) + i);
    store_be16(ip + 2, total);
    store_be16(ip + 4, id);
    // Version/IHL/TOS, then flags/fragment/TTL/protocol, addresses, options;
    // the checksum field counts as 0.
    store_csum(ip + 10, ld16(sip) + nat16(total) + nat16(id) + ld32(sip + 6) + sum32(sip + 12, ihl - 12), false);
  } else {
    store_be16(ip + 4, uint16_t(seg_len - L.l3_off - kIpv6HeaderLen));
  }
  uint64_t sum = pseudo_sum(sip, L.ip_version, L.l4_proto, l4_total);
  uint8_t* check;
  if (L.l4_proto == kIpProtoTcp) {
    const uint32_t seq = load_be32(sl4 + 4) + done;
    uint8_t flags = sl4[13];
    if (i + 1 != n) flags &= uint8_t(~(kTcpFin | kTcpPsh));
    if (i != 0) flags &= uint8_t(~kTcpCwr);
    uint16_t urp = load_be16(sl4 + 18);
    if (flags & kTcpUrg) {
      // The urgent pointer is an offset from the segment's own sequence
      // number: move it, or clear URG once the urgent data is behind us.
      if (urp > done) {
        urp = uint16_t(urp - done);
      } else {
        flags &= uint8_t(~kTcpUrg);
        urp = 0;
      }
    }
    store_be32(l4 + 4, seq);
    l4[13] = flags;
    store_be16(l4 + 18, urp);
    check = l4 + 16;
    // Ports, seq, ack, data offset + flags, window, (checksum 0), urgent
    // pointer, options.
    sum += ld32(sl4) + nat32(seq) + ld32(sl4 + 8) + nat16(uint16_t(sl4[12] << 8 | flags)) + ld16(sl4 + 14) +
           nat16(urp) + sum32(sl4 + 20, L.l4_len - kTcpMinHeader);
  } else {
    store_be16(l4 + 4, uint16_t(l4_total));
    check = l4 + 6;
    sum += ld32(sl4) + nat16(uint16_t(l4_total));  // ports, length, (checksum 0)
  }
  sum += sum_words<true>(out + L.hdr_len, f + L.hdr_len + done, seg_payload);
  store_csum(check, sum, L.l4_proto == kIpProtoUdp);
  return seg_len;
}

}  // namespace vpc
