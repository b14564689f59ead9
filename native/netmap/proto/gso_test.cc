// Software offloads (proto/gso.h): layout parsing, checksum completion and
// segmentation, checked against values computed by hand (RFC 1071's example,
// a UDP datagram and an IPv4 header summed in the comments below) and, for
// everything else, against the independent slow checksum of test_frames.h.
// Inputs are copied into heap buffers of exactly their length, so an ASan
// build catches any read past the end.
#include "proto/gso.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "proto/test_frames.h"

namespace vpc {
namespace {

using namespace testframes;

OffloadMeta tso(uint8_t type, uint16_t gso_size, uint16_t csum_start = 0, uint16_t csum_offset = 16) {
  OffloadMeta m;
  m.flags = OffloadMeta::kNeedsCsum;
  m.gso_type = type;
  m.gso_size = gso_size;
  m.csum_start = csum_start;
  m.csum_offset = csum_offset;
  return m;
}

OffloadMeta partial(uint32_t csum_start, uint32_t csum_offset) {
  OffloadMeta m;
  m.flags = OffloadMeta::kNeedsCsum;
  m.csum_start = uint16_t(csum_start);
  m.csum_offset = uint16_t(csum_offset);
  return m;
}

// The stored 16-bit checksum field, as the wire has it.
uint16_t be16_at(const Bytes& f, uint32_t off) { return load_be16(f.data() + off); }

// Layout parse that must succeed.
FrameLayout layout_of(const Bytes& f) {
  FrameLayout L;
  OffloadError e = OffloadError::none;
  EXPECT_TRUE(frame_layout(f.data(), uint32_t(f.size()), &L, &e)) << offload_error_name(e);
  return L;
}

OffloadError layout_error(const Bytes& f) {
  Bytes heap(f);  // exact size: ASan sees any overread
  FrameLayout L;
  OffloadError e = OffloadError::none;
  EXPECT_FALSE(frame_layout(heap.data(), uint32_t(heap.size()), &L, &e));
  return e;
}

// Cuts f into segments and checks every one independently of the code under
// test: IP lengths, IPv4 ID and header checksum, TCP sequence numbers and
// flags or UDP length, the L4 checksum over pseudo-header + segment, every
// segment within hdr + mss, and the payloads concatenating to the original's.
// Returns the segments.
std::vector<Bytes> cut_and_verify(const Spec& s, uint16_t mss, uint8_t gso_type) {
  const Built b = build(s);
  const Bytes f = b.f;
  const FrameLayout L = layout_of(f);
  EXPECT_EQ(L.l3_off, b.l3_off);
  EXPECT_EQ(L.l4_off, b.l4_off);
  EXPECT_EQ(L.hdr_len, b.hdr_len);
  const OffloadMeta m = tso(gso_type, mss);
  OffloadError e = OffloadError::none;
  const uint32_t n = gso_segments(f.data(), uint32_t(f.size()), m, L, mss, &e);
  const uint32_t expect_n = s.payload == 0 ? 1 : (s.payload + mss - 1) / mss;
  EXPECT_EQ(n, expect_n) << offload_error_name(e);
  std::vector<Bytes> segs;
  Bytes joined;
  for (uint32_t i = 0; i < n; ++i) {
    Bytes out(gso_max_segment_len(L, mss));
    const uint32_t k = gso_write_segment(f.data(), uint32_t(f.size()), L, mss, i, out.data(), uint32_t(out.size()), &e);
    EXPECT_GT(k, 0u) << "segment " << i << ": " << offload_error_name(e);
    if (k == 0) break;
    out.resize(k);
    const uint32_t pay = i + 1 < n ? mss : s.payload - i * mss;
    EXPECT_EQ(k, b.hdr_len + pay) << "segment " << i;
    // Everything before the IP header (MACs, VLAN tags) is the original's.
    EXPECT_TRUE(std::equal(out.begin(), out.begin() + b.l3_off, f.begin())) << "segment " << i;
    const uint8_t* ip = out.data() + b.l3_off;
    const uint8_t* t = out.data() + b.l4_off;
    const uint32_t l4_total = k - b.l4_off;
    if (!s.v6) {
      EXPECT_EQ(load_be16(ip + 2), k - b.l3_off) << "segment " << i;
      EXPECT_EQ(load_be16(ip + 4), uint16_t(s.ip_id + i)) << "segment " << i;
      EXPECT_EQ(ref_sum(ip, b.l4_off - b.l3_off), 0xFFFFu) << "IPv4 header checksum, segment " << i;
    } else {
      EXPECT_EQ(load_be16(ip + 4), k - b.l3_off - 40) << "segment " << i;
    }
    EXPECT_EQ(ref_sum(t, l4_total, ref_pseudo(ip, s.proto, l4_total)), 0xFFFFu) << "L4 checksum, segment " << i;
    if (s.proto == kIpProtoTcp) {
      EXPECT_EQ(load_be32(t + 4), s.seq + i * mss) << "segment " << i;
      uint8_t want = s.tcp_flags;
      if (i + 1 < n) want &= uint8_t(~0x09);  // FIN, PSH: last only
      if (i > 0) want &= uint8_t(~0x80);      // CWR: first only
      if ((s.tcp_flags & 0x20) && s.urp <= i * mss) want &= uint8_t(~0x20);
      EXPECT_EQ(t[13], want) << "segment " << i;
    } else {
      EXPECT_EQ(load_be16(t + 4), l4_total) << "segment " << i;
      EXPECT_NE(load_be16(t + 6), 0) << "a computed UDP checksum is never 0";
    }
    joined.insert(joined.end(), out.begin() + b.hdr_len, out.end());
    segs.push_back(std::move(out));
  }
  EXPECT_TRUE(std::equal(joined.begin(), joined.end(), f.begin() + b.hdr_len, f.begin() + b.hdr_len + s.payload) &&
              joined.size() == s.payload)
      << "the payloads concatenate to the original's";
  return segs;
}

// -------------------------------------------------------------- the sum

TEST(GsoChecksum, Rfc1071Example) {
  // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
  const uint8_t b[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  const uint16_t s = csum_native(b, sizeof(b));
  uint8_t wire[2];
  std::memcpy(wire, &s, 2);
  EXPECT_EQ(load_be16(wire), 0xddf2);
}

TEST(GsoChecksum, MatchesReferenceAtEveryLengthAndAlignment) {
  std::mt19937 rng(7);
  Bytes buf(600);
  for (auto& x : buf) x = uint8_t(rng());
  for (uint32_t off = 0; off < 8; ++off)
    for (uint32_t n = 0; n <= 520; ++n) {
      Bytes exact(buf.begin() + off, buf.begin() + off + n);
      const uint16_t s = csum_native(exact.data(), n);
      uint8_t wire[2];
      std::memcpy(wire, &s, 2);
      ASSERT_EQ(load_be16(wire), ref_sum(exact.data(), n)) << "off " << off << " len " << n;
    }
}

TEST(GsoChecksum, CarriesAreNeverLost) {
  // 64 KiB of 0xFF: every 64-bit addition carries.
  Bytes ff(65536, 0xFF);
  uint16_t s = csum_native(ff.data(), uint32_t(ff.size()));
  EXPECT_EQ(s, 0xFFFF);
  ff.back() = 0xFE;  // big-endian word ...fffe, minus 1
  s = csum_native(ff.data(), uint32_t(ff.size()));
  uint8_t wire[2];
  std::memcpy(wire, &s, 2);
  EXPECT_EQ(load_be16(wire), ref_sum(ff.data(), ff.size()));
  EXPECT_EQ(csum_native(ff.data(), 0), 0);
}

// ------------------------------------------------------------------ layout

TEST(GsoLayout, EthernetTags) {
  EthL3 e;
  Spec s;
  Bytes f = build(s).f;
  ASSERT_EQ(eth_l3(f.data(), 14, &e), OffloadError::none);
  EXPECT_EQ(e.off, 14);
  EXPECT_EQ(e.type, kEtherTypeIpv4);
  EXPECT_EQ(e.tags, 0);
  s.tpids = {0x88A8, 0x8100};
  s.v6 = true;
  f = build(s).f;
  ASSERT_EQ(eth_l3(f.data(), 22, &e), OffloadError::none);
  EXPECT_EQ(e.off, 22);
  EXPECT_EQ(e.type, kEtherTypeIpv6);
  EXPECT_EQ(e.tags, 2);
  for (uint32_t n = 0; n < 22; ++n) {
    Bytes cut(f.begin(), f.begin() + n);
    EXPECT_EQ(eth_l3(cut.data(), n, &e), OffloadError::truncated) << n;
  }
  store_be16(f.data() + 20, 0x8100);  // a third tag
  EXPECT_EQ(eth_l3(f.data(), uint32_t(f.size()), &e), OffloadError::not_ip);
}

TEST(GsoLayout, Ipv4Tcp) {
  Spec s;
  s.tcp_opt = 12;
  const FrameLayout L = layout_of(build(s).f);
  EXPECT_EQ(L.l3_off, 14);
  EXPECT_EQ(L.l4_off, 34);
  EXPECT_EQ(L.l4_len, 32);
  EXPECT_EQ(L.hdr_len, 66);
  EXPECT_EQ(L.ip_end, 66u + 100);
  EXPECT_EQ(L.ip_version, 4);
  EXPECT_EQ(L.l4_proto, kIpProtoTcp);
  EXPECT_EQ(L.vlan_tags, 0);
  EXPECT_EQ(L.payload_len(), 100u);
}

TEST(GsoLayout, VlanTagsIpv4OptionsAndPadding) {
  Spec s;
  s.tpids = {0x88A8, 0x8100};
  s.ip_opt = 8;
  s.pad = 6;
  s.payload = 2;
  const Bytes f = build(s).f;
  const FrameLayout L = layout_of(f);
  EXPECT_EQ(L.vlan_tags, 2);
  EXPECT_EQ(L.l3_off, 22);
  EXPECT_EQ(L.l4_off, 22 + 28);
  EXPECT_EQ(L.ip_end, f.size() - 6) << "Ethernet padding is not part of the IP packet";
  s.tpids = {0x8100, 0x8100, 0x8100};
  EXPECT_EQ(layout_error(build(s).f), OffloadError::not_ip) << "at most two tags";
}

TEST(GsoLayout, Ipv6WithExtensionHeaders) {
  Spec s;
  s.v6 = true;
  s.proto = kIpProtoUdp;
  s.ext = {{0, 0}, {60, 1}, {43, 0, 0}};
  const FrameLayout L = layout_of(build(s).f);
  EXPECT_EQ(L.ip_version, 6);
  EXPECT_EQ(L.l4_off, 14 + 40 + 8 + 16 + 8);
  EXPECT_EQ(L.l4_len, 8);
  EXPECT_EQ(L.l4_proto, kIpProtoUdp);
}

TEST(GsoLayout, Ipv6ExtensionHeadersRefused) {
  Spec s;
  s.v6 = true;
  s.ext = {{43, 0, 1}};
  EXPECT_EQ(layout_error(build(s).f), OffloadError::ipv6_ext) << "routing header with segments left";
  s.ext = {{60, 0}, {0, 0}};
  EXPECT_EQ(layout_error(build(s).f), OffloadError::ipv6_ext) << "hop-by-hop not first";
  s.ext = {{44, 0}};
  EXPECT_EQ(layout_error(build(s).f), OffloadError::ip_fragment);
  s.ext = {{51, 1}};
  EXPECT_EQ(layout_error(build(s).f), OffloadError::ipv6_ext) << "AH";
  s.ext = {{60, 0}, {60, 0}, {60, 0}, {60, 0}, {60, 0}, {60, 0}, {60, 0}, {60, 0}};
  EXPECT_TRUE(layout_of(build(s).f).l4_off == 14 + 40 + 64) << "8 headers are fine";
  s.ext.push_back({60, 0});
  EXPECT_EQ(layout_error(build(s).f), OffloadError::ipv6_ext) << "9 are not";
  s.ext = {{60, 200}};
  s.payload = 20;
  Bytes f = build(s).f;
  store_be16(f.data() + 14 + 4, 8 + 20 + 20);  // payload length ends inside the extension header
  f.resize(14 + 40 + 48);
  EXPECT_EQ(layout_error(f), OffloadError::truncated);
}

TEST(GsoLayout, LengthsThatLie) {
  Spec s;
  Bytes f = build(s).f;
  store_be16(f.data() + 16, uint16_t(f.size() - 14 + 1));
  EXPECT_EQ(layout_error(f), OffloadError::bad_ip_length) << "IPv4 total length past the frame";
  store_be16(f.data() + 16, 19);
  EXPECT_EQ(layout_error(f), OffloadError::bad_ip_length) << "total length below the header length";
  f = build(s).f;
  f[14] = 0x44;
  EXPECT_EQ(layout_error(f), OffloadError::bad_ip_header) << "IHL 4";
  f[14] = 0x55;
  EXPECT_EQ(layout_error(f), OffloadError::bad_ip_header) << "version 5";
  f = build(s).f;
  f[14 + 20 + 12] = 0x40;
  EXPECT_EQ(layout_error(f), OffloadError::bad_l4_header) << "TCP data offset 4";
  s.payload = 10;
  f = build(s).f;
  f[14 + 20 + 12] = 0x80;
  EXPECT_EQ(layout_error(f), OffloadError::truncated) << "TCP data offset past the IP packet";
  s.proto = kIpProtoUdp;
  f = build(s).f;
  store_be16(f.data() + 34 + 4, 17);
  EXPECT_EQ(layout_error(f), OffloadError::bad_l4_header) << "UDP length short of the IP payload";
  s.v6 = true;
  f = build(s).f;
  store_be16(f.data() + 18, uint16_t(f.size() - 54 + 1));
  EXPECT_EQ(layout_error(f), OffloadError::bad_ip_length) << "IPv6 payload length past the frame";
  store_be16(f.data() + 18, 0);
  EXPECT_EQ(layout_error(f), OffloadError::bad_ip_length) << "IPv6 jumbogram";
  f = build(s).f;
  f[14] = 0x40;
  EXPECT_EQ(layout_error(f), OffloadError::bad_ip_header) << "IPv6 EtherType, version 4";
}

TEST(GsoLayout, FragmentsAndOtherProtocols) {
  Spec s;
  s.frag = 0x2000;  // MF
  EXPECT_EQ(layout_error(build(s).f), OffloadError::ip_fragment);
  s.frag = 0x0001;  // offset 8
  EXPECT_EQ(layout_error(build(s).f), OffloadError::ip_fragment);
  s.frag = 0x4000;
  s.proto = kIpProtoIcmp;
  Bytes f = build(s).f;
  EXPECT_EQ(layout_error(f), OffloadError::not_tcp_udp);
  store_be16(f.data() + 12, kEtherTypeArp);
  EXPECT_EQ(layout_error(f), OffloadError::not_ip);
}

TEST(GsoLayout, EveryTruncationFailsWithoutOverread) {
  Spec variants[4];
  variants[1].tpids = {0x8100};
  variants[1].ip_opt = 4;
  variants[2].v6 = true;
  variants[2].ext = {{0, 0}, {60, 1}};
  variants[3].v6 = true;
  variants[3].proto = kIpProtoUdp;
  variants[3].tpids = {0x88A8, 0x8100};
  for (Spec& s : variants) {
    s.payload = 3;
    const Bytes f = build(s).f;
    layout_of(f);
    for (size_t n = 0; n < f.size(); ++n) {
      Bytes cut(f.begin(), f.begin() + n);
      FrameLayout L;
      EXPECT_FALSE(frame_layout(cut.data(), uint32_t(n), &L)) << "length " << n;
    }
  }
}

// ------------------------------------------------------ checksum completion

TEST(GsoCsumComplete, HandComputedUdp) {
  // 198.18.0.1:1000 -> 198.18.0.2:2000, UDP length 12, payload "abcd".
  // Pseudo-header: c612 + 0001 + c612 + 0002 + 0011 + 000c = 18c44 -> 8c45,
  // which is what the sender seeds into the field.
  // The checksum in full: c612 + 0001 + c612 + 0002 + 0011 + 000c (pseudo)
  // + 03e8 + 07d0 + 000c + 0000 (header) + 6162 + 6364 ("abcd") = 25cce,
  // folded 5cd0, complemented a32f.
  Spec s;
  s.proto = kIpProtoUdp;
  s.payload = 4;
  s.full_csum = false;
  Built b = build(s);
  uint8_t* u = b.f.data() + b.l4_off;
  store_be16(u, 1000);
  store_be16(u + 2, 2000);
  std::memcpy(u + 8, "abcd", 4);
  EXPECT_EQ(be16_at(b.f, b.l4_off + 6), 0x8c45) << "the builder's seed";
  const OffloadMeta m = partial(b.l4_off, 6);
  ASSERT_TRUE(csum_complete(b.f.data(), uint32_t(b.f.size()), m));
  EXPECT_EQ(be16_at(b.f, b.l4_off + 6), 0xa32f);
  // The IPv4 header of the same datagram, by hand: 4500+0020+0000+4000+4011
  // +c612+0001+c612+0002 = 25158 -> 515a -> aea5. It went through a USO
  // "segmentation" of one segment, which recomputes both checksums.
  Bytes f(b.f);
  store_be16(f.data() + 14 + 4, 0);  // ID 0
  store_be16(f.data() + 14 + 10, 0);
  const FrameLayout L = layout_of(f);
  Bytes out(64);
  ASSERT_EQ(gso_segments(f.data(), uint32_t(f.size()), tso(OffloadMeta::kGsoUdpL4, 1400), L, 1400), 1u);
  ASSERT_EQ(gso_write_segment(f.data(), uint32_t(f.size()), L, 1400, 0, out.data(), uint32_t(out.size())),
            f.size());
  EXPECT_EQ(load_be16(out.data() + 14 + 10), 0xaea5);
  EXPECT_EQ(load_be16(out.data() + 34 + 6), 0xa32f);
}

TEST(GsoCsumComplete, TcpMatchesReference) {
  for (bool v6 : {false, true})
    for (uint32_t payload : {0u, 1u, 2u, 7u, 1448u, 9001u, 65000u}) {
      Spec s;
      s.v6 = v6;
      s.tpids = {0x8100};
      s.payload = v6 ? payload : payload - (payload == 65000u ? 100 : 0);
      s.tcp_opt = 12;
      const Bytes want = build(s).f;
      s.full_csum = false;
      Built b = build(s);
      ASSERT_NE(b.f, want);
      const OffloadMeta m = partial(b.l4_off, 16);
      Bytes heap(b.f);
      ASSERT_TRUE(csum_complete(heap.data(), uint32_t(heap.size()), m));
      EXPECT_EQ(heap, want) << "v6 " << v6 << " payload " << s.payload;
    }
}

TEST(GsoCsumComplete, UdpZeroBecomesFfff) {
  // Choose the last two payload bytes so that the full sum is ffff: the
  // checksum computes to 0, which UDP must send as ffff.
  Spec s;
  s.proto = kIpProtoUdp;
  s.payload = 10;
  s.full_csum = false;
  Built b = build(s);
  uint8_t* u = b.f.data() + b.l4_off;
  store_be16(u + 16, 0);
  const uint32_t l4_total = 18;
  store_be16(u + 6, 0);
  const uint32_t rest = ref_sum(u, l4_total, ref_pseudo(b.f.data() + 14, kIpProtoUdp, l4_total));
  store_be16(u + 16, uint16_t(~rest));
  ASSERT_EQ(ref_sum(u, l4_total, ref_pseudo(b.f.data() + 14, kIpProtoUdp, l4_total)), 0xFFFFu);
  store_be16(u + 6, uint16_t(ref_sum(nullptr, 0, ref_pseudo(b.f.data() + 14, kIpProtoUdp, l4_total))));
  const OffloadMeta m = partial(b.l4_off, 6);
  ASSERT_TRUE(csum_complete(b.f.data(), uint32_t(b.f.size()), m));
  EXPECT_EQ(be16_at(b.f, b.l4_off + 6), 0xFFFF);
}

TEST(GsoCsumComplete, BadOffsetsLeaveTheFrameUnchanged) {
  Spec s;
  s.full_csum = false;
  const Bytes f = build(s).f;
  const uint32_t n = uint32_t(f.size());
  struct {
    uint16_t start, offset;
  } bad[] = {{uint16_t(n), 0}, {uint16_t(n - 1), 0}, {uint16_t(n - 2), 1}, {34, uint16_t(n - 34 - 1)},
             {34, 0xFFFF}, {0xFFFF, 0xFFFF}};
  for (auto c : bad) {
    Bytes heap(f);
    const OffloadMeta m = partial(c.start, c.offset);
    OffloadError e = OffloadError::none;
    EXPECT_FALSE(csum_complete(heap.data(), n, m, &e)) << c.start << "+" << c.offset;
    EXPECT_EQ(e, OffloadError::bad_csum_offsets);
    EXPECT_EQ(heap, f);
  }
  // The last two bytes are a valid place for the field.
  Bytes heap(f);
  OffloadMeta m = partial(n - 2, 0);
  EXPECT_TRUE(csum_complete(heap.data(), n, m));
  // Without kNeedsCsum there is nothing to do.
  m.flags = 0;
  m.csum_start = 0xFFFF;
  heap = f;
  EXPECT_TRUE(csum_complete(heap.data(), n, m));
  EXPECT_EQ(heap, f);
}

// ------------------------------------------------------------ segmentation

TEST(GsoSegment, Tcpv4SixtyFourKilobytes) {
  Spec s;
  s.tcp_opt = 12;  // timestamps, as Linux sends
  s.payload = 65535 - 20 - 32;
  s.tcp_flags = 0x80 | 0x10 | 0x08 | 0x01;  // CWR ACK PSH FIN
  s.seq = 0xFFFFF000;                       // wraps during the frame
  s.ip_id = 0xFFF0;                         // wraps too
  s.full_csum = false;
  const auto segs = cut_and_verify(s, 1448, OffloadMeta::kGsoTcpv4);
  ASSERT_EQ(segs.size(), 46u);  // 65483 = 45 * 1448 + 323
  EXPECT_EQ(segs.back().size(), 14u + 20 + 32 + 323);
  EXPECT_EQ(load_be16(segs[0].data() + 18), 0xFFF0) << "segment 0 keeps the original ID";
  EXPECT_EQ(load_be16(segs[16].data() + 18), 0x0000);
  EXPECT_EQ(segs[0][14 + 20 + 13], 0x90) << "first: CWR ACK";
  EXPECT_EQ(segs[1][14 + 20 + 13], 0x10) << "middle: ACK";
  EXPECT_EQ(segs[45][14 + 20 + 13], 0x19) << "last: ACK PSH FIN";
}

TEST(GsoSegment, Tcpv6WithVlanTagsAndOddSizes) {
  for (uint16_t mss : {1u, 7u, 536u, 1001u, 1440u, 8948u})
    for (uint32_t payload : {1u, 1000u, 1440u, 1441u, 14400u, 65000u}) {
      if ((payload + mss - 1) / mss > kGsoMaxSegments) continue;  // refused (TooManySegmentsAreRefused)
      Spec s;
      s.v6 = true;
      s.tpids = {0x88A8, 0x8100};
      s.payload = payload;
      s.tcp_flags = 0x18;
      s.seed = uint8_t(mss);
      SCOPED_TRACE(testing::Message() << "mss " << mss << " payload " << payload);
      cut_and_verify(s, mss, OffloadMeta::kGsoTcpv6 | OffloadMeta::kGsoEcn);
    }
}

TEST(GsoSegment, Ipv4OptionsAndIpv6ExtensionHeadersAreCopied) {
  Spec s;
  s.ip_opt = 12;
  s.payload = 5000;
  cut_and_verify(s, 1000, OffloadMeta::kGsoTcpv4);
  Spec v6;
  v6.v6 = true;
  v6.ext = {{0, 0}, {60, 2}};
  v6.payload = 5001;
  cut_and_verify(v6, 1000, OffloadMeta::kGsoTcpv6);
}

TEST(GsoSegment, UdpL4BothFamilies) {
  for (bool v6 : {false, true}) {
    Spec s;
    s.v6 = v6;
    s.proto = kIpProtoUdp;
    s.payload = 4 * 1200 + 17;
    s.tpids = {0x8100};
    const auto segs = cut_and_verify(s, 1200, OffloadMeta::kGsoUdpL4);
    EXPECT_EQ(segs.size(), 5u);
  }
}

TEST(GsoSegment, SmallerMssThanGsoSizeForAnOverlay) {
  Spec s;
  s.tcp_opt = 12;
  s.payload = 10 * 1448;
  const Built b = build(s);
  const FrameLayout L = layout_of(b.f);
  const OffloadMeta m = tso(OffloadMeta::kGsoTcpv4, 1448);
  // VXLAN over a 1500-byte uplink: the inner frame's IP packet may be 1450.
  const uint16_t mss = gso_mss_for_mtu(L, 1450);
  EXPECT_EQ(mss, 1450 - 20 - 32);
  EXPECT_EQ(gso_segments(b.f.data(), uint32_t(b.f.size()), m, L, mss), 11u);
  Bytes out(gso_max_segment_len(L, mss));
  const uint32_t k = gso_write_segment(b.f.data(), uint32_t(b.f.size()), L, mss, 0, out.data(), uint32_t(out.size()));
  EXPECT_EQ(k - L.l3_off, 1450u) << "the IP packet is exactly the MTU";
  cut_and_verify(s, mss, OffloadMeta::kGsoTcpv4);
  OffloadError e = OffloadError::none;
  EXPECT_EQ(gso_segments(b.f.data(), uint32_t(b.f.size()), m, L, 1449, &e), 0u) << "above gso_size";
  EXPECT_EQ(e, OffloadError::bad_mss);
  e = OffloadError::none;
  EXPECT_EQ(gso_segments(b.f.data(), uint32_t(b.f.size()), m, L, 0, &e), 0u);
  EXPECT_EQ(e, OffloadError::bad_mss);
}

// A hostile guest's gso_size of 1 (or any size that cuts 64 KiB into more
// than 1,366 pieces) is refused before a single segment is written; 48 bytes,
// Linux's smallest TCP MSS, still cuts 64 KiB.
TEST(GsoSegment, TooManySegmentsAreRefused) {
  Spec s;
  s.payload = 65535 - 40;
  const Built b = build(s);
  const FrameLayout L = layout_of(b.f);
  OffloadError e = OffloadError::none;
  EXPECT_EQ(gso_segments(b.f.data(), uint32_t(b.f.size()), tso(OffloadMeta::kGsoTcpv4, 1), L, 1, &e), 0u);
  EXPECT_EQ(e, OffloadError::too_many_segments);
  e = OffloadError::none;
  EXPECT_EQ(gso_segments(b.f.data(), uint32_t(b.f.size()), tso(OffloadMeta::kGsoTcpv4, 47), L, 47, &e), 0u);
  EXPECT_EQ(e, OffloadError::too_many_segments);
  EXPECT_EQ(gso_segments(b.f.data(), uint32_t(b.f.size()), tso(OffloadMeta::kGsoTcpv4, 48), L, 48), (s.payload + 47) / 48);
  EXPECT_EQ(kGsoMaxSegments, 1366u);
}

TEST(GsoSegment, MssForMtu) {
  Spec s;
  EXPECT_EQ(gso_mss_for_mtu(layout_of(build(s).f), 1500), 1460);
  s.v6 = true;
  s.tpids = {0x8100};
  const FrameLayout L = layout_of(build(s).f);
  EXPECT_EQ(gso_mss_for_mtu(L, 1500), 1440);
  EXPECT_EQ(gso_mss_for_mtu(L, 61), 1);
  EXPECT_EQ(gso_mss_for_mtu(L, 60), 0);
  EXPECT_EQ(gso_mss_for_mtu(L, 0), 0);
  EXPECT_EQ(gso_mss_for_mtu(L, 1u << 20), 0xFFFF);
}

TEST(GsoSegment, OneSegmentIsTheFrameWithItsChecksum) {
  for (uint32_t payload : {0u, 1u, 1448u}) {
    Spec s;
    s.payload = payload;
    s.tcp_flags = 0x19;
    const Bytes want = build(s).f;
    s.full_csum = false;
    s.pad = 10;  // padding is dropped
    const Bytes f = build(s).f;
    const FrameLayout L = layout_of(f);
    ASSERT_EQ(gso_segments(f.data(), uint32_t(f.size()), tso(OffloadMeta::kGsoTcpv4, 1448), L, 1448), 1u);
    Bytes out(2000);
    const uint32_t k = gso_write_segment(f.data(), uint32_t(f.size()), L, 1448, 0, out.data(), uint32_t(out.size()));
    out.resize(k);
    EXPECT_EQ(out, want) << "payload " << payload;
  }
}

TEST(GsoSegment, UrgentPointerMovesThenClears) {
  Spec s;
  s.payload = 3000;
  s.tcp_flags = 0x30;  // URG ACK
  s.urp = 1500;
  const auto segs = cut_and_verify(s, 1000, OffloadMeta::kGsoTcpv4);
  ASSERT_EQ(segs.size(), 3u);
  EXPECT_EQ(load_be16(segs[0].data() + 34 + 18), 1500);
  EXPECT_EQ(load_be16(segs[1].data() + 34 + 18), 500);
  EXPECT_EQ(load_be16(segs[2].data() + 34 + 18), 0);
  EXPECT_EQ(segs[2][34 + 13], 0x10);
}

TEST(GsoSegment, TypeMismatchesAreRefused) {
  Spec s4;
  Spec s6;
  s6.v6 = true;
  Spec u4;
  u4.proto = kIpProtoUdp;
  struct {
    const Spec* s;
    uint8_t type;
    OffloadError e;
  } cases[] = {
      {&s4, OffloadMeta::kGsoTcpv6, OffloadError::gso_mismatch},
      {&s6, OffloadMeta::kGsoTcpv4, OffloadError::gso_mismatch},
      {&u4, OffloadMeta::kGsoTcpv4, OffloadError::gso_mismatch},
      {&s4, OffloadMeta::kGsoUdpL4, OffloadError::gso_mismatch},
      {&u4, OffloadMeta::kGsoUdp, OffloadError::gso_ufo},
      {&s4, 2, OffloadError::gso_unknown},
      {&s4, OffloadMeta::kGsoNone, OffloadError::gso_unknown},
  };
  for (const auto& c : cases) {
    const Bytes f = build(*c.s).f;
    const FrameLayout L = layout_of(f);
    OffloadError e = OffloadError::none;
    EXPECT_EQ(gso_segments(f.data(), uint32_t(f.size()), tso(c.type, 1000), L, 1000, &e), 0u);
    EXPECT_EQ(e, c.e) << "type " << int(c.type) << ": " << offload_error_name(e);
  }
}

TEST(GsoSegment, WriteErrors) {
  Spec s;
  s.payload = 2500;
  const Bytes f = build(s).f;
  const FrameLayout L = layout_of(f);
  const uint32_t n = uint32_t(f.size());
  Bytes out(gso_max_segment_len(L, 1000));
  OffloadError e = OffloadError::none;
  EXPECT_EQ(gso_write_segment(f.data(), n, L, 1000, 3, out.data(), uint32_t(out.size()), &e), 0u);
  EXPECT_EQ(e, OffloadError::bad_segment);
  // The last segment is 500 bytes of payload: it needs only that much room.
  EXPECT_EQ(gso_write_segment(f.data(), n, L, 1000, 2, out.data(), L.hdr_len + 500, &e), L.hdr_len + 500u);
  EXPECT_EQ(gso_write_segment(f.data(), n, L, 1000, 1, out.data(), L.hdr_len + 999, &e), 0u);
  EXPECT_EQ(e, OffloadError::no_room);
  EXPECT_EQ(gso_write_segment(f.data(), n, L, 0, 0, out.data(), uint32_t(out.size()), &e), 0u);
  EXPECT_EQ(e, OffloadError::bad_mss);
  // A layout that does not fit this frame (another frame's, or made up).
  Bytes shorter(f.begin(), f.end() - 1);
  EXPECT_EQ(gso_write_segment(shorter.data(), n - 1, L, 1000, 0, out.data(), uint32_t(out.size()), &e), 0u);
  EXPECT_EQ(e, OffloadError::truncated);
  EXPECT_EQ(gso_segments(shorter.data(), n - 1, tso(OffloadMeta::kGsoTcpv4, 1000), L, 1000, &e), 0u);
  EXPECT_EQ(e, OffloadError::truncated);
  FrameLayout bad = L;
  bad.l4_off = 20;  // IPv4 header shorter than 20 bytes
  bad.hdr_len = uint16_t(bad.l4_off + bad.l4_len);
  EXPECT_EQ(gso_write_segment(f.data(), n, bad, 1000, 0, out.data(), uint32_t(out.size()), &e), 0u);
  bad = L;
  bad.l4_len = 8;  // TCP with a UDP header length
  EXPECT_EQ(gso_write_segment(f.data(), n, bad, 1000, 0, out.data(), uint32_t(out.size()), &e), 0u);
  EXPECT_EQ(e, OffloadError::bad_l4_header);
  bad = L;
  bad.ip_version = 5;
  EXPECT_EQ(gso_write_segment(f.data(), n, bad, 1000, 0, out.data(), uint32_t(out.size()), &e), 0u);
  EXPECT_EQ(e, OffloadError::bad_ip_header);
}

// Random damage to valid frames: whatever frame_layout() accepts segments
// into verified segments, and nothing reads or writes out of bounds.
TEST(GsoSegment, RandomDamageNeverBreaksBounds) {
  std::mt19937 rng(11);
  uint32_t accepted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    Spec s;
    s.v6 = rng() & 1;
    s.proto = rng() % 4 ? kIpProtoTcp : kIpProtoUdp;
    if (rng() & 1) s.tpids = {0x8100};
    if (s.v6 && (rng() & 1)) s.ext = {{60, uint8_t(rng() % 3)}};
    s.payload = rng() % 3000;
    Bytes f = build(s).f;
    const uint32_t hits = rng() % 4;
    for (uint32_t h = 0; h < hits; ++h) f[rng() % std::min<size_t>(f.size(), 90)] = uint8_t(rng());
    if (rng() & 1) f.resize(rng() % (f.size() + 1));
    FrameLayout L;
    if (!frame_layout(f.data(), uint32_t(f.size()), &L)) continue;
    ++accepted;
    const uint16_t mss = uint16_t(1 + rng() % 1500);
    const uint8_t type = L.l4_proto == kIpProtoUdp ? OffloadMeta::kGsoUdpL4
                         : L.ip_version == 4        ? OffloadMeta::kGsoTcpv4
                                                    : OffloadMeta::kGsoTcpv6;
    OffloadError e = OffloadError::none;
    const uint32_t n = gso_segments(f.data(), uint32_t(f.size()), tso(type, mss), L, mss, &e);
    if ((L.payload_len() + mss - 1) / mss > kGsoMaxSegments) {
      EXPECT_EQ(n, 0u);
      EXPECT_EQ(e, OffloadError::too_many_segments);
      continue;
    }
    ASSERT_GT(n, 0u);
    uint32_t total = 0;
    for (uint32_t i = 0; i < n; ++i) {
      Bytes out(gso_max_segment_len(L, mss));
      const uint32_t k = gso_write_segment(f.data(), uint32_t(f.size()), L, mss, i, out.data(), uint32_t(out.size()));
      ASSERT_GT(k, 0u);
      const uint8_t* ip = out.data() + L.l3_off;
      EXPECT_EQ(ref_sum(out.data() + L.l4_off, k - L.l4_off, ref_pseudo(ip, L.l4_proto, k - L.l4_off)), 0xFFFFu);
      total += k - L.hdr_len;
    }
    EXPECT_EQ(total, L.payload_len());
  }
  EXPECT_GT(accepted, 1000u) << "the damage left enough valid frames to mean something";
}

TEST(GsoErrors, EveryReasonHasANameAndHelp) {
  for (uint32_t i = 0; i < kOffloadErrorCount; ++i) {
    EXPECT_STRNE(offload_error_name(OffloadError(i)), "unknown");
    EXPECT_GT(strlen(offload_error_help(OffloadError(i))), 5u);
  }
  EXPECT_STREQ(offload_error_name(OffloadError::bad_mss), "bad_mss");
  EXPECT_STREQ(offload_error_name(OffloadError(kOffloadErrorCount)), "unknown");
}

}  // namespace
}  // namespace vpc
