#include "proto/tunnel_gso.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proto/ethernet.h"
#include "proto/gso.h"
#include "proto/inet.h"
#include "proto/test_frames.h"

namespace vpc {
namespace {

using testframes::Bytes;

// The chunks of a USO batch as the sending switch lays them out: VXLAN
// header, then segment i of `b` cut at `mss` (proto/gso.h).
struct Batch {
  Bytes bytes;
  uint32_t chunk = 0;
  std::vector<uint32_t> at;  // where each chunk starts
};

Batch batch_of(const testframes::Built& b, uint16_t mss, uint32_t vni = 100) {
  FrameLayout L;
  EXPECT_TRUE(frame_layout(b.f.data(), uint32_t(b.f.size()), &L));
  OffloadMeta m;
  m.flags = OffloadMeta::kNeedsCsum;
  m.gso_type = L.ip_version == 4 ? OffloadMeta::kGsoTcpv4 : OffloadMeta::kGsoTcpv6;
  m.gso_size = mss;
  m.csum_start = L.l4_off;
  m.csum_offset = 16;
  const uint32_t n = gso_segments(b.f.data(), uint32_t(b.f.size()), m, L, mss);
  EXPECT_GT(n, 1u);
  Batch out;
  out.chunk = kVxlanHeaderLen + L.hdr_len + mss;
  for (uint32_t i = 0; i < n; ++i) {
    out.at.push_back(uint32_t(out.bytes.size()));
    uint8_t vx[8] = {0x08, 0, 0, 0, uint8_t(vni >> 16), uint8_t(vni >> 8), uint8_t(vni), 0};
    out.bytes.insert(out.bytes.end(), vx, vx + 8);
    Bytes seg(L.hdr_len + mss);
    const uint32_t k = gso_write_segment(b.f.data(), uint32_t(b.f.size()), L, mss, i, seg.data(), uint32_t(seg.size()));
    EXPECT_GT(k, 0u);
    seg.resize(k);
    out.bytes.insert(out.bytes.end(), seg.begin(), seg.end());
  }
  return out;
}

testframes::Built super(bool v6, uint32_t payload, uint8_t flags = 0x18) {
  testframes::Spec sp;
  sp.v6 = v6;
  sp.payload = payload;
  sp.tcp_opt = 12;  // timestamps, as Linux sends them: the same in every segment
  sp.tcp_flags = flags;
  sp.full_csum = false;
  return testframes::build(sp);
}

// The rebuilt frame is the original super-frame: same headers (but the
// checksum field, which holds the pseudo-header seed), same payload; its
// state says TSO at the segment size with a partial checksum.
void expect_rebuilt(const Bytes& got, const UsoCoalesced& c, const testframes::Built& b, bool v6, uint16_t mss,
                    uint32_t segments) {
  ASSERT_EQ(c.inner_len, b.f.size());
  EXPECT_EQ(c.segments, segments);
  const uint8_t* f = got.data() + kVxlanHeaderLen;
  EXPECT_TRUE(std::equal(b.f.begin() + b.hdr_len, b.f.end(), f + b.hdr_len)) << "payload in order";
  EXPECT_TRUE(std::equal(b.f.begin(), b.f.begin() + b.l4_off + 16, f)) << "headers up to the TCP checksum";
  EXPECT_TRUE(std::equal(b.f.begin() + b.l4_off + 18, b.f.begin() + b.hdr_len, f + b.l4_off + 18));
  if (!v6) {
    EXPECT_EQ(testframes::ref_sum(f + b.l3_off, b.l4_off - b.l3_off), 0xFFFFu) << "IPv4 header checksum";
  }
  EXPECT_EQ(c.meta.gso_kind(), v6 ? OffloadMeta::kGsoTcpv6 : OffloadMeta::kGsoTcpv4);
  EXPECT_EQ(c.meta.gso_size, mss);
  EXPECT_TRUE(c.meta.needs_csum());
  EXPECT_EQ(c.meta.csum_start, b.l4_off);
  EXPECT_EQ(c.meta.csum_offset, 16u);
  EXPECT_EQ(c.meta.hdr_len, b.hdr_len);
  // The seed completes to the right checksum.
  Bytes done(f, f + c.inner_len);
  ASSERT_TRUE(csum_complete(done.data(), uint32_t(done.size()), c.meta));
  const uint32_t l4_len = uint32_t(done.size()) - b.l4_off;
  EXPECT_EQ(testframes::ref_sum(done.data() + b.l4_off, l4_len,
                                testframes::ref_pseudo(done.data() + b.l3_off, kIpProtoTcp, l4_len)),
            0xFFFFu);
}

TEST(UsoCoalesce, RebuildsTheSuperFrameOverIpv4AndIpv6) {
  for (bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
    for (uint32_t payload : {2u * 1398, 30000u, 63000u}) {
      SCOPED_TRACE("payload " + std::to_string(payload));
      testframes::Built b = super(v6, payload);
      Batch bt = batch_of(b, 1398);
      Bytes got = bt.bytes;
      UsoCoalesced c;
      ASSERT_TRUE(uso_coalesce(got.data(), uint32_t(got.size()), bt.chunk, true, &c));
      expect_rebuilt(got, c, b, v6, 1398, uint32_t(bt.at.size()));
      EXPECT_TRUE(std::equal(got.begin(), got.begin() + 8, bt.bytes.begin())) << "VXLAN header kept";
    }
  }
}

TEST(UsoCoalesce, KeepsFinAndPshOfTheLastSegmentAndCwrOfTheFirst) {
  testframes::Built b = super(false, 5000, 0x80 | 0x10 | 0x08 | 0x01);  // CWR ACK PSH FIN
  Batch bt = batch_of(b, 1000);
  Bytes got = bt.bytes;
  UsoCoalesced c;
  ASSERT_TRUE(uso_coalesce(got.data(), uint32_t(got.size()), bt.chunk, true, &c));
  expect_rebuilt(got, c, b, false, 1000, 5);
  EXPECT_EQ(got[8 + b.l4_off + 13], 0x80 | 0x10 | 0x08 | 0x01);
  EXPECT_NE(c.meta.gso_type & OffloadMeta::kGsoEcn, 0) << "CWR: the ECN flag of the GSO type";
}

// Anything that is not the next segment of the same connection is left alone.
TEST(UsoCoalesce, RefusesWhatIsNotOneConnectionsSegments) {
  testframes::Built b = super(false, 6000);
  const Batch bt = batch_of(b, 1000);
  FrameLayout L;
  ASSERT_TRUE(frame_layout(b.f.data(), uint32_t(b.f.size()), &L));
  auto refused = [&](const char* what, auto&& change, uint32_t chunk = 0) {
    SCOPED_TRACE(what);
    Bytes got = bt.bytes;
    change(got);
    const Bytes before = got;
    UsoCoalesced c;
    EXPECT_FALSE(uso_coalesce(got.data(), uint32_t(got.size()), chunk ? chunk : bt.chunk, true, &c));
    EXPECT_EQ(got, before) << "unchanged when refused";
  };
  const uint32_t s2 = bt.at[2] + 8;  // third segment's Ethernet header
  refused("another VNI", [&](Bytes& g) { g[bt.at[3] + 6] ^= 1; });
  refused("a sequence gap", [&](Bytes& g) { store_be32(g.data() + s2 + L.l4_off + 4, load_be32(g.data() + s2 + L.l4_off + 4) + 1); });
  refused("a bad TCP checksum", [&](Bytes& g) { g[s2 + L.hdr_len + 7] ^= 0x40; });
  refused("another source port", [&](Bytes& g) { g[s2 + L.l4_off] ^= 1; });
  refused("another destination MAC", [&](Bytes& g) { g[s2] ^= 1; });
  refused("a bad IPv4 header checksum", [&](Bytes& g) { g[s2 + L.l3_off + 10] ^= 1; });
  refused("PSH in the middle", [&](Bytes& g) {
    g[s2 + L.l4_off + 13] |= 0x08;
    store_be16(g.data() + s2 + L.l4_off + 16, uint16_t(load_be16(g.data() + s2 + L.l4_off + 16) - 0x08));
  });
  refused("SYN", [&](Bytes& g) {
    g[bt.at[0] + 8 + L.l4_off + 13] |= 0x02;
    store_be16(g.data() + bt.at[0] + 8 + L.l4_off + 16, uint16_t(load_be16(g.data() + bt.at[0] + 8 + L.l4_off + 16) - 0x02));
  });
  refused("a chunk size that cuts segments", [](Bytes&) {}, bt.chunk - 4);
  refused("one chunk only", [&](Bytes& g) { g.resize(bt.chunk); });
  refused("a runt chunk", [](Bytes&) {}, 20);
  refused("truncated IPv4 length", [&](Bytes& g) { g.resize(g.size() - 3); });
}

// A checksum-partial batch (built on this host) is not checked a second
// time: only the TCP checksum may be off; every other rule still holds.
TEST(UsoCoalesce, TrustsTheTcpChecksumsOfAHostBuiltBatchOnly) {
  testframes::Built b = super(false, 6000);
  const Batch bt = batch_of(b, 1000);
  FrameLayout L;
  ASSERT_TRUE(frame_layout(b.f.data(), uint32_t(b.f.size()), &L));
  const uint32_t s2 = bt.at[2] + 8;
  Bytes got = bt.bytes;
  got[s2 + L.hdr_len + 7] ^= 0x40;  // a payload bit: that segment's TCP checksum no longer adds up
  UsoCoalesced c;
  EXPECT_FALSE(uso_coalesce(got.data(), uint32_t(got.size()), bt.chunk, true, &c)) << "verified: refused";
  ASSERT_TRUE(uso_coalesce(got.data(), uint32_t(got.size()), bt.chunk, false, &c)) << "trusted: coalesced";
  EXPECT_EQ(c.segments, 6u);
  EXPECT_EQ(c.inner_len, L.hdr_len + 6000u);
  Bytes seq = bt.bytes;
  store_be32(seq.data() + s2 + L.l4_off + 4, load_be32(seq.data() + s2 + L.l4_off + 4) + 1);
  EXPECT_FALSE(uso_coalesce(seq.data(), uint32_t(seq.size()), bt.chunk, false, &c)) << "a sequence gap, trusted or not";
  Bytes iph = bt.bytes;
  iph[s2 + L.l3_off + 10] ^= 1;
  EXPECT_FALSE(uso_coalesce(iph.data(), uint32_t(iph.size()), bt.chunk, false, &c)) << "a bad IPv4 header checksum";
}

TEST(UsoCoalesce, RefusesUdpInside) {
  testframes::Spec sp;
  sp.proto = kIpProtoUdp;
  sp.payload = 3000;
  testframes::Built b = testframes::build(sp);
  // Three datagrams laid out as chunks.
  Bytes g;
  const uint32_t chunk = 8 + uint32_t(b.f.size());
  for (int i = 0; i < 3; ++i) {
    uint8_t vx[8] = {0x08, 0, 0, 0, 0, 0, 100, 0};
    g.insert(g.end(), vx, vx + 8);
    g.insert(g.end(), b.f.begin(), b.f.end());
  }
  UsoCoalesced c;
  EXPECT_FALSE(uso_coalesce(g.data(), uint32_t(g.size()), chunk, true, &c));
}

// Every truncation and random damage: never reads or writes outside the
// bytes given (checked under AddressSanitizer in exact-size buffers).
TEST(UsoCoalesce, DamagedInputStaysInBounds) {
  testframes::Built b = super(true, 9000);
  const Batch bt = batch_of(b, 1200);
  for (uint32_t cut = 0; cut <= bt.bytes.size(); cut += 97) {
    std::vector<uint8_t> g(bt.bytes.begin(), bt.bytes.begin() + cut);
    UsoCoalesced c;
    if (uso_coalesce(g.data(), uint32_t(g.size()), bt.chunk, cut % 2 == 0, &c)) {
      EXPECT_LE(c.inner_len, g.size());
    }
  }
  uint32_t seed = 12345;
  auto rnd = [&seed] { return seed = seed * 1103515245u + 12345u, seed >> 8; };
  for (int t = 0; t < 3000; ++t) {
    std::vector<uint8_t> g = bt.bytes;
    for (int k = 0; k < 3; ++k) g[rnd() % g.size()] = uint8_t(rnd());
    UsoCoalesced c;
    const uint32_t chunk = (t % 5 == 0) ? rnd() % 3000 : bt.chunk;
    if (uso_coalesce(g.data(), uint32_t(g.size()), chunk, t % 2 == 0, &c)) {
      EXPECT_LE(c.inner_len, g.size());
    }
  }
}

}  // namespace
}  // namespace vpc
