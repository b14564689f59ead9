// TCP receive coalescing (proto/gro.h): segments cut by proto/gso.h come
// back as the super-frame they were cut from, for IPv4, IPv6 and tagged
// frames; every rule that ends a run is checked on its own.
#include "proto/gro.h"

#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "proto/ethernet.h"
#include "proto/gso.h"
#include "proto/inet.h"
#include "proto/test_frames.h"

namespace vpc {
namespace {

using testframes::Bytes;

// The segments of super-frame b at mss, as proto/gso.h cuts them.
std::vector<Bytes> cut(const testframes::Built& b, bool v6, uint16_t mss) {
  FrameLayout L;
  EXPECT_TRUE(frame_layout(b.f.data(), uint32_t(b.f.size()), &L));
  OffloadMeta m;
  m.flags = OffloadMeta::kNeedsCsum;
  m.gso_type = v6 ? OffloadMeta::kGsoTcpv6 : OffloadMeta::kGsoTcpv4;
  m.gso_size = mss;
  const uint32_t n = gso_segments(b.f.data(), uint32_t(b.f.size()), m, L, mss);
  std::vector<Bytes> out;
  for (uint32_t i = 0; i < n; ++i) {
    Bytes s(L.hdr_len + mss);
    s.resize(gso_write_segment(b.f.data(), uint32_t(b.f.size()), L, mss, i, s.data(), uint32_t(s.size())));
    out.push_back(s);
  }
  return out;
}

// Coalesces as many of segs as continue the first; returns how many, and the
// frame (the first's headers, the payloads back to back) with its state.
uint32_t coalesce(const std::vector<Bytes>& segs, Bytes* out, OffloadMeta* m, bool verify = true) {
  TcpRun r;
  if (!tcp_run_start(segs[0].data(), uint32_t(segs[0].size()), verify, &r)) return 0;
  uint32_t n = 1;
  while (n < segs.size() && tcp_run_next(&r, segs[0].data(), segs[n].data(), uint32_t(segs[n].size()), verify)) ++n;
  *out = segs[0];
  for (uint32_t i = 1; i < n; ++i) out->insert(out->end(), segs[i].begin() + r.L.hdr_len, segs[i].end());
  *m = tcp_run_finish(out->data(), r);
  EXPECT_EQ(out->size(), r.L.hdr_len + r.payload);
  EXPECT_EQ(r.segments, n);
  return n;
}

// The coalesced frame is the super-frame the segments were cut from: same
// bytes but for the TCP checksum field (the pseudo-header sum of the whole,
// as a TSO sender seeds it) and, over IPv4, the ID and header checksum of the
// first segment (which are the super-frame's).
void expect_whole(const testframes::Built& b, const Bytes& got, const OffloadMeta& m, bool v6, uint16_t mss) {
  ASSERT_EQ(got.size(), b.f.size());
  const uint32_t csum_at = b.l4_off + 16;
  for (uint32_t i = 0; i < got.size(); ++i) {
    if (i == csum_at || i == csum_at + 1) continue;
    ASSERT_EQ(got[i], b.f[i]) << "byte " << i;
  }
  const uint32_t l4 = uint32_t(got.size()) - b.l4_off;
  EXPECT_EQ(load_be16(got.data() + csum_at), uint16_t(~csum_fold(testframes::ref_pseudo(got.data() + b.l3_off, kIpProtoTcp, l4)) & 0xFFFF));
  if (!v6) {
    EXPECT_TRUE(ipv4_checksum_ok(got.data() + b.l3_off, uint16_t(b.l4_off - b.l3_off)));
  }
  EXPECT_TRUE(m.needs_csum());
  EXPECT_EQ(m.gso_kind(), v6 ? OffloadMeta::kGsoTcpv6 : OffloadMeta::kGsoTcpv4);
  EXPECT_EQ(m.gso_size, mss);
  EXPECT_EQ(m.csum_start, b.l4_off);
  EXPECT_EQ(m.csum_offset, 16u);
  EXPECT_EQ(m.hdr_len, b.hdr_len);
}

TEST(Gro, SegmentsBecomeTheirSuperFrameAgain) {
  struct Case {
    const char* name;
    bool v6;
    std::vector<uint16_t> tags;
    uint32_t tcp_opt;
    uint32_t payload;
    uint16_t mss;
  } cases[] = {
      {"IPv4", false, {}, 0, 20000, 1448},
      {"IPv4, timestamps, odd last segment", false, {}, 12, 9001, 1000},
      {"IPv6", true, {}, 0, 15000, 1428},
      {"IPv4 under two VLAN tags", false, {0x88A8, 0x8100}, 0, 5000, 1400},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    testframes::Spec sp;
    sp.v6 = c.v6;
    sp.tpids = c.tags;
    sp.tcp_opt = c.tcp_opt;
    sp.payload = c.payload;
    testframes::Built b = testframes::build(sp);
    auto segs = cut(b, c.v6, c.mss);
    ASSERT_GE(segs.size(), 2u);
    Bytes got;
    OffloadMeta m;
    ASSERT_EQ(coalesce(segs, &got, &m), segs.size());
    expect_whole(b, got, m, c.v6, c.mss);
  }
}

// Each rule that ends a run, on a run of five segments where the third is
// changed: the run stops before it (or, for PSH and a short segment, with it).
TEST(Gro, RunsEndWhereTheStreamDoesNotContinue) {
  testframes::Spec sp;
  sp.payload = 5 * 1000;
  testframes::Built b = testframes::build(sp);
  const uint32_t tcp = b.l4_off, ip = b.l3_off;
  auto fix = [&](Bytes& s) {  // the segment's checksums made right again after an edit
    store_be16(s.data() + ip + 10, 0);
    store_be16(s.data() + ip + 10, csum_fold(csum_partial(s.data() + ip, 20, 0)));
    store_be16(s.data() + tcp + 16, 0);
    const uint32_t l4 = uint32_t(s.size()) - tcp;
    store_be16(s.data() + tcp + 16, csum_fold(csum_partial(s.data() + tcp, l4, testframes::ref_pseudo(s.data() + ip, kIpProtoTcp, l4))));
  };
  struct Case {
    const char* name;
    std::function<void(Bytes&)> edit;
    uint32_t want;  // segments in the first run
  } cases[] = {
      {"sequence gap", [&](Bytes& s) { store_be32(s.data() + tcp + 4, load_be32(s.data() + tcp + 4) + 1); fix(s); }, 2},
      {"another port", [&](Bytes& s) { s[tcp + 1] ^= 1; fix(s); }, 2},
      {"another TTL", [&](Bytes& s) { s[ip + 8] -= 1; fix(s); }, 2},
      {"SYN", [&](Bytes& s) { s[tcp + 13] |= 0x02; fix(s); }, 2},
      {"RST", [&](Bytes& s) { s[tcp + 13] |= 0x04; fix(s); }, 2},
      {"URG", [&](Bytes& s) { s[tcp + 13] |= 0x20; fix(s); }, 2},
      {"CWR after the first", [&](Bytes& s) { s[tcp + 13] |= 0x80; fix(s); }, 2},
      {"ECE not as the first", [&](Bytes& s) { s[tcp + 13] |= 0x40; fix(s); }, 2},
      {"bad TCP checksum", [&](Bytes& s) { s[s.size() - 1] ^= 0x55; }, 2},
      {"bad IPv4 header checksum", [&](Bytes& s) { s[ip + 10] ^= 0x55; }, 2},
      {"Ethernet padding", [&](Bytes& s) { s.push_back(0); }, 2},
      {"PSH ends the run with it", [&](Bytes& s) { s[tcp + 13] |= 0x08; fix(s); }, 3},
      {"FIN ends the run with it", [&](Bytes& s) { s[tcp + 13] |= 0x01; fix(s); }, 3},
      {"a shorter segment ends the run with it", [&](Bytes& s) {
         s.resize(s.size() - 100);
         store_be16(s.data() + ip + 2, uint16_t(s.size() - ip));
         fix(s);
       }, 3},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto segs = cut(b, false, 1000);
    ASSERT_EQ(segs.size(), 5u);
    // PSH belongs to the last segment only: clear it from the cut.
    for (Bytes& s : segs) {
      s[tcp + 13] &= uint8_t(~0x08);
      fix(s);
    }
    c.edit(segs[2]);
    Bytes got;
    OffloadMeta m;
    EXPECT_EQ(coalesce(segs, &got, &m), c.want);
  }
  // Without verify a wrong TCP checksum does not end the run (a batch built
  // on this host), and a longer segment always does.
  auto segs = cut(b, false, 1000);
  segs[2][segs[2].size() - 1] ^= 0x55;
  Bytes got;
  OffloadMeta m;
  EXPECT_EQ(coalesce(segs, &got, &m, false), 5u);
  TcpRun r;
  auto small = cut(b, false, 500);
  ASSERT_TRUE(tcp_run_start(small[0].data(), uint32_t(small[0].size()), true, &r));
  EXPECT_FALSE(tcp_run_next(&r, small[0].data(), segs[1].data(), uint32_t(segs[1].size()), true)) << "more than the first's payload";
}

TEST(Gro, WhatCannotStartARun) {
  TcpRun r;
  testframes::Spec sp;
  sp.payload = 0;
  testframes::Built ack = testframes::build(sp);
  EXPECT_FALSE(tcp_run_start(ack.f.data(), uint32_t(ack.f.size()), true, &r)) << "no payload";
  sp.payload = 1000;
  sp.proto = kIpProtoUdp;
  testframes::Built udp = testframes::build(sp);
  EXPECT_FALSE(tcp_run_start(udp.f.data(), uint32_t(udp.f.size()), true, &r)) << "UDP";
  sp.proto = kIpProtoTcp;
  sp.frag = 0x2000;  // MF
  testframes::Built frag = testframes::build(sp);
  EXPECT_FALSE(tcp_run_start(frag.f.data(), uint32_t(frag.f.size()), true, &r)) << "a fragment";
  sp.frag = 0x4000;
  sp.tcp_flags = 0x12;  // SYN ACK
  testframes::Built syn = testframes::build(sp);
  EXPECT_FALSE(tcp_run_start(syn.f.data(), uint32_t(syn.f.size()), true, &r)) << "SYN";
  sp.tcp_flags = 0x10;
  testframes::Built ok = testframes::build(sp);
  EXPECT_TRUE(tcp_run_start(ok.f.data(), uint32_t(ok.f.size()), true, &r));
  EXPECT_FALSE(tcp_run_start(ok.f.data(), uint32_t(ok.f.size()) - 1, true, &r)) << "truncated";
}

}  // namespace
}  // namespace vpc
