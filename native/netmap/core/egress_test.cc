// Offload state through the engine with pipe ports (core/egress.cc,
// classify, flood): super-frames segmented for ports that cannot take them,
// checksums completed, state kept for ports that can, VLAN tags and IPv6,
// flood copies, ICMP too big with its rate limit, and what is refused.
// Segments are checked independently of proto/gso.cc: checksums with the
// slow reference sum of proto/test_frames.h, sequence numbers, lengths and
// the payload reassembled byte for byte.
#include <gtest/gtest.h>

#include "core/test_util.h"
#include "proto/test_frames.h"
#include "core/offload_test_util.h"

namespace vpc {
namespace {

using testframes::Built;
using testframes::Spec;
using testutil::Bytes;
using testutil::expect_segments;
using testutil::tso_meta;

struct Got {
  Bytes f;
  bool meta = false;
  bool large = false;
  OffloadMeta m;
};

class EgressTest : public testutil::EngineFixture {
 protected:
  PortId add(SwitchId untagged, const PipeOptions& po, PortConfig pc = {}, std::vector<VlanMapping> vlans = {}) {
    return add_port(untagged, pc, std::move(vlans), 1024, po);
  }
  // A switch with a sender that takes everything and a receiver `out` with
  // the given options and MTU, and a super-frame spec (checksum-partial,
  // `payload` bytes) addressed to a static MAC on `out`.
  Spec two_ports(const PipeOptions& out_opts, uint32_t payload, uint32_t out_mtu = 1500) {
    s_ = create_switch(1);
    in_ = add(s_, PipeOptions{});
    PortConfig pcfg;
    pcfg.mtu = out_mtu;
    out_ = add(s_, out_opts, pcfg);
    Spec sp;
    sp.payload = payload;
    sp.full_csum = false;
    sp.dst = testutil::host_mac(2);
    EXPECT_TRUE(add_static(s_, out_, sp.dst).ok());
    return sp;
  }
  SwitchId s_ = kNoId;
  PortId in_ = kNoId, out_ = kNoId;
  // The rate-limit tests: an engine that answers 3 too-big frames a second;
  // per tenant, a switch whose sender's port (MTU 1800) takes frames its
  // receiver's (MTU 1500, no offloads) cannot; oversized() is such a frame,
  // addressed to the receiver's static MAC.
  void three_answers_a_second() {
    EngineOptions o = testutil::small_engine_options();
    o.icmp_too_big_per_s = 3;
    make_engine(o);
  }
  struct Tenant {
    PortId in, out;
  };
  Tenant tenant(uint32_t vni) {
    const SwitchId s = create_switch(vni);
    PortConfig big;
    big.mtu = 1800;
    Tenant t{add(s, PipeOptions{}, big), add(s, none())};
    EXPECT_TRUE(add_static(s, t.out, testutil::host_mac(2)).ok());
    return t;
  }
  static Bytes oversized() {
    Spec sp;
    sp.payload = 1700;
    sp.dst = testutil::host_mac(2);
    return testframes::build(sp).f;
  }
  static PipeOptions none() {
    PipeOptions o;
    o.tx_offloads = 0;
    return o;
  }
  void inject(PortId p, const Bytes& f, const OffloadMeta& m) {
    ASSERT_TRUE(peer(p).send_meta(f.data(), uint32_t(f.size()), m));
    engine().run_once();
  }
  std::vector<Got> take(PortId p) {
    std::vector<Got> out;
    Pkt pk[kMaxBurst];
    for (uint32_t n; (n = peer(p).recv(pk, kMaxBurst)) != 0;)
      for (uint32_t i = 0; i < n; ++i) {
        Got g;
        const uint8_t* f = pool_->frame(pk[i]);
        g.f.assign(f, f + pk[i].len);
        g.meta = pkt_has_meta(pk[i]);
        g.large = pool_->is_large(pk[i].buf);
        if (g.meta) g.m = pool_->meta(pk[i].buf);
        peer(p).cache().free(pk[i].buf);
        out.push_back(std::move(g));
      }
    return out;
  }
  static std::vector<Bytes> frames(const std::vector<Got>& v) {
    std::vector<Bytes> out;
    for (const Got& g : v) out.push_back(g.f);
    return out;
  }
  uint64_t ec(EngineCounter k) { return cnt_read(engine().engine_counters().c[size_t(k)]); }
  // Every buffer back in the pool once the peers drained (no leak on any path).
  void expect_no_leak() {
    for (auto& [id, p] : peers_) {
      take(id);
      p->cache().flush();
    }
    engine_->stop();
    engine_.reset();  // the engine's cache goes back too
    EXPECT_EQ(pool_->available(), pool_->count());
    EXPECT_EQ(pool_->large_available(), pool_->large_count());
  }
};

TEST_F(EgressTest, TsoSuperFrameIsSegmentedForAPortThatTakesNothing) {
  Spec sp = two_ports(none(), 65000);  // a 64 KiB super-frame: 65,054 bytes
  const PortId in = in_, out = out_;
  Built b = testframes::build(sp);
  ASSERT_EQ(b.f.size(), 65054u);
  inject(in, b.f, tso_meta(b, false, 1448));
  auto got = take(out);
  for (const Got& g : got) {
    EXPECT_FALSE(g.meta) << "a port that takes nothing gets plain frames";
    EXPECT_FALSE(g.large);
  }
  expect_segments(frames(got), b, false, 1500, 1448);
  EXPECT_EQ(got.size(), 45u);
  EXPECT_EQ(pc(out, PortCounter::tx_gso_frames), 1u);
  EXPECT_EQ(pc(out, PortCounter::tx_gso_segments), 45u);
  EXPECT_EQ(pc(out, PortCounter::tx_packets), 45u);
  EXPECT_EQ(pc(out, PortCounter::tx_drops), 0u);
  EXPECT_EQ(pc(in, PortCounter::rx_drops), 0u) << "a super-frame is measured by its segments, not its length";
  expect_no_leak();
}

// A 9000-byte MTU over 2 KiB buffers: a port that receives long frames into
// large buffers (every backend but netmap) takes it, and a jumbo frame crosses
// whole; one byte more is an oversize drop at ingress.
TEST_F(EgressTest, JumboMtuOverRegularBuffersCrossesInALargeBuffer) {
  ASSERT_EQ(pool_->buf_size(), 2048u);
  PortConfig jumbo;
  jumbo.mtu = 9000;
  s_ = create_switch(1);
  in_ = add(s_, PipeOptions{}, jumbo);
  out_ = add(s_, PipeOptions{}, jumbo);
  ASSERT_NE(out_, kNoId);
  Spec sp;
  sp.payload = 9000 - 40;  // IPv4 + TCP headers: a 9000-byte IP packet
  sp.dst = testutil::host_mac(2);
  ASSERT_TRUE(add_static(s_, out_, sp.dst).ok());
  Built b = testframes::build(sp);
  ASSERT_EQ(b.f.size(), 9014u);
  inject(in_, b.f, OffloadMeta{});
  auto got = take(out_);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].large);
  EXPECT_EQ(got[0].f, b.f) << "the frame arrives whole and unchanged";
  sp.payload += 1;
  Built over = testframes::build(sp);
  inject(in_, over.f, OffloadMeta{});
  EXPECT_TRUE(take(out_).empty());
  EXPECT_EQ(pc(in_, PortCounter::rx_drops), 1u) << "9001 bytes of IP: over the port's MTU";
  expect_no_leak();
}

// A TSO batch of one segment (what an AF_XDP port makes of a jumbo TCP
// frame within its MTU: ports/afxdp.cc, infer_tso) crosses whole to a jumbo
// port, not cut to what a regular buffer holds: a port that takes offloads
// gets it checksum-partial without GSO state, one that takes nothing gets it
// completed. A port with a 1500-byte MTU gets it cut to that MTU.
TEST_F(EgressTest, ABatchOfOneSegmentCrossesWholeWhereItFits) {
  PortConfig jumbo;
  jumbo.mtu = 9000;
  s_ = create_switch(1);
  in_ = add(s_, PipeOptions{}, jumbo);
  const PortId takes = add(s_, PipeOptions{}, jumbo);
  const PortId plain = add(s_, none(), jumbo);
  const PortId narrow = add(s_, none());
  Spec sp;
  sp.payload = 5000;
  sp.full_csum = false;
  sp.dst = testutil::host_mac(9);  // unknown: flooded to all three
  Built b = testframes::build(sp);
  inject(in_, b.f, tso_meta(b, false, 8960));
  auto t = take(takes);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].f, b.f) << "as it is";
  ASSERT_TRUE(t[0].meta);
  EXPECT_FALSE(t[0].m.gso()) << "no GSO state: one segment";
  EXPECT_TRUE(t[0].m.needs_csum());
  auto p = take(plain);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_TRUE(p[0].large);
  EXPECT_FALSE(p[0].meta && p[0].m.pending()) << "nothing left to do";
  expect_segments(frames(p), b, false, 9000, 8960);  // one segment, its checksum verifies
  EXPECT_EQ(pc(plain, PortCounter::tx_gso_frames), 0u);
  auto n = take(narrow);
  expect_segments(frames(n), b, false, 1500, 1460);
  EXPECT_EQ(n.size(), 4u);
  EXPECT_EQ(pc(narrow, PortCounter::tx_gso_frames), 1u);
  expect_no_leak();
}

// A guest's TSO frame whose IP length covers one segment but which carries
// 40 KB past its IP packet: a port without offloads gets the one segment,
// not the whole frame (it used to cross whole, 40 KB to a port of MTU 1500;
// found by fuzz_offload).
TEST_F(EgressTest, ABatchOfOneSegmentWithBytesPastItsIpPacketIsCutToIt) {
  Spec sp = two_ports(none(), 60);
  Built b = testframes::build(sp);
  Bytes f = b.f;
  f.resize(f.size() + 40000, 0x5A);
  inject(in_, f, tso_meta(b, false, 1448));
  auto got = take(out_);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].f.size(), b.f.size()) << "the IP packet, not the bytes after it";
  EXPECT_FALSE(got[0].meta && got[0].m.pending());
  expect_segments(frames(got), b, false, 1500, 1448);  // its checksums verify
  EXPECT_EQ(pc(out_, PortCounter::tx_gso_frames), 1u);
  expect_no_leak();
}

TEST_F(EgressTest, SegmentsFollowTheEgressMtuAndOddSegmentSizes) {
  Spec sp = two_ports(none(), 10001, 1280);
  const PortId in = in_, out = out_;
  sp.tcp_opt = 12;  // timestamps-sized options, copied into every segment
  Built b = testframes::build(sp);
  inject(in, b.f, tso_meta(b, false, 1448));
  // 1280 - 20 (IP) - 32 (TCP) = 1228 bytes a segment, not the sender's 1448.
  expect_segments(frames(take(out)), b, false, 1280, 1228);
  // An odd gso_size below the MTU's is kept.
  inject(in, b.f, tso_meta(b, false, 999));
  expect_segments(frames(take(out)), b, false, 1280, 999);
  expect_no_leak();
}

TEST_F(EgressTest, Ipv6SuperFrameFromATaggedTrunkToATaggedTrunk) {
  SwitchId s = create_switch(1);
  PortId in = add(kNoId, PipeOptions{}, {}, {{100, s}});
  PortId out = add(kNoId, none(), {}, {{200, s}});
  Spec sp;
  sp.v6 = true;
  sp.tpids = {kEtherTypeVlan};  // tagged 100 (the builder tags 100)
  sp.payload = 30000;
  sp.full_csum = false;
  sp.dst = testutil::host_mac(2);
  Built b = testframes::build(sp);
  ASSERT_EQ(load_be16(b.f.data() + 14) & 0xFFF, 100);
  ASSERT_TRUE(add_static(s, out, sp.dst).ok());
  inject(in, b.f, tso_meta(b, true, 1440));
  auto got = take(out);
  // The egress pushes tag 200: the expected segments are of the same frame
  // re-tagged with 200.
  Built re = b;
  store_be16(re.f.data() + 14, 200);
  expect_segments(frames(got), re, true, 1500, 1440);
  EXPECT_EQ(got.size(), (30000u + 1439) / 1440);
  expect_no_leak();
}

TEST_F(EgressTest, StateIsKeptForAPortThatTakesItAndTagOffsetsMove) {
  SwitchId s = create_switch(1);
  PortId in = add(kNoId, PipeOptions{}, {}, {{100, s}});
  PortId out = add(s, PipeOptions{});  // access port, takes everything
  PortId out2 = add(kNoId, PipeOptions{}, {}, {{300, s}});
  Spec sp;
  sp.tpids = {kEtherTypeVlan};
  sp.payload = 20000;
  sp.full_csum = false;
  sp.dst = testutil::host_mac(2);
  Built b = testframes::build(sp);
  ASSERT_TRUE(add_static(s, out, sp.dst).ok());
  OffloadMeta m = tso_meta(b, false, 1448);
  inject(in, b.f, m);
  auto got = take(out);
  ASSERT_EQ(got.size(), 1u) << "passed on as one super-frame";
  EXPECT_TRUE(got[0].meta);
  EXPECT_TRUE(got[0].large);
  EXPECT_EQ(got[0].f.size(), b.f.size() - 4) << "tag removed";
  EXPECT_EQ(got[0].m.csum_start, m.csum_start - 4) << "offsets follow the removed tag";
  EXPECT_EQ(got[0].m.hdr_len, m.hdr_len - 4);
  EXPECT_EQ(got[0].m.gso_size, 1448);
  EXPECT_EQ(got[0].m.gso_type, OffloadMeta::kGsoTcpv4);
  EXPECT_EQ(pc(out, PortCounter::tx_gso_frames), 0u);
  // To another trunk: re-tagged, offsets back where a tagged frame has them.
  ASSERT_TRUE(add_static(s, out2, testutil::host_mac(3)).ok());
  Spec sp3 = sp;
  sp3.dst = testutil::host_mac(3);
  Built b3 = testframes::build(sp3);
  inject(in, b3.f, tso_meta(b3, false, 1448));
  auto got2 = take(out2);
  ASSERT_EQ(got2.size(), 1u);
  EXPECT_EQ(load_be16(got2[0].f.data() + 14) & 0xFFF, 300);
  EXPECT_EQ(got2[0].m.csum_start, m.csum_start);
  expect_no_leak();
}

TEST_F(EgressTest, UdpSegmentationOffloadGivesCompleteDatagrams) {
  Spec sp = two_ports(none(), 4500);
  const PortId in = in_, out = out_;
  sp.proto = kIpProtoUdp;
  sp.v6 = true;
  Built b = testframes::build(sp);
  OffloadMeta m = tso_meta(b, true, 1200);
  m.gso_type = OffloadMeta::kGsoUdpL4;
  m.csum_offset = 6;
  inject(in, b.f, m);
  auto got = take(out);
  ASSERT_EQ(got.size(), 4u) << "4500 bytes in datagrams of 1200";
  uint32_t off = 0;
  for (const Got& g : got) {
    const uint8_t* ip = g.f.data() + b.l3_off;
    const uint8_t* u = g.f.data() + b.l4_off;
    const uint32_t l4_len = uint32_t(g.f.size()) - b.l4_off;
    EXPECT_FALSE(g.meta);
    EXPECT_EQ(load_be16(u + 4), l4_len) << "UDP length";
    EXPECT_EQ(load_be16(ip + 4), l4_len) << "IPv6 payload length";
    EXPECT_EQ(testframes::ref_sum(u, l4_len, testframes::ref_pseudo(ip, kIpProtoUdp, l4_len)), 0xFFFFu) << "UDP checksum";
    EXPECT_TRUE(std::equal(g.f.begin() + b.hdr_len, g.f.end(), b.f.begin() + b.hdr_len + off));
    off += l4_len - 8;
  }
  EXPECT_EQ(off, 4500u);
  EXPECT_EQ(pc(out, PortCounter::tx_gso_segments), 4u);
  expect_no_leak();
}

TEST_F(EgressTest, GsoSizeLoweredForATsoPortWithASmallerMtu) {
  Spec sp = two_ports(PipeOptions{}, 5000, 1000);
  const PortId in = in_, out = out_;
  Built b = testframes::build(sp);
  inject(in, b.f, tso_meta(b, false, 1448));
  auto got = take(out);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].m.gso_size, 1000 - 40) << "the port segments to its own MTU";
  expect_no_leak();
}

TEST_F(EgressTest, ChecksumCompletedOnlyForPortsWithoutChecksumOffload) {
  SwitchId s = create_switch(1);
  PortId in = add(s, PipeOptions{});
  PortId plain = add(s, none());
  PipeOptions csum_only = none();
  csum_only.tx_offloads = kOffCsum;
  PortId csum = add(s, csum_only);
  for (bool v6 : {false, true}) {
    Spec sp;
    sp.v6 = v6;
    sp.payload = 777;  // odd: the sum ends on a single byte
    sp.full_csum = false;
    sp.dst = kMacBroadcast;  // flooded to both
    Built b = testframes::build(sp);
    OffloadMeta m = tso_meta(b, v6, 0);
    m.gso_type = OffloadMeta::kGsoNone;
    inject(in, b.f, m);
    auto p = take(plain);
    ASSERT_EQ(p.size(), 1u);
    EXPECT_FALSE(p[0].meta);
    const uint8_t* ip = p[0].f.data() + b.l3_off;
    const uint32_t l4_len = uint32_t(p[0].f.size()) - b.l4_off;
    EXPECT_EQ(testframes::ref_sum(p[0].f.data() + b.l4_off, l4_len, testframes::ref_pseudo(ip, kIpProtoTcp, l4_len)),
              0xFFFFu)
        << "completed checksum verifies (v6 " << v6 << ")";
    auto c = take(csum);
    ASSERT_EQ(c.size(), 1u);
    EXPECT_TRUE(c[0].meta) << "a port with checksum offload gets the partial frame";
    EXPECT_EQ(c[0].f, b.f) << "untouched";
    EXPECT_EQ(c[0].m.csum_start, b.l4_off);
  }
  EXPECT_EQ(pc(plain, PortCounter::tx_csum_completed), 2u);
  EXPECT_EQ(pc(csum, PortCounter::tx_csum_completed), 0u);
  expect_no_leak();
}

TEST_F(EgressTest, FloodCopiesCarryTheStateAndEachEgressAdaptsItsOwn) {
  SwitchId s = create_switch(1);
  PortId in = add(s, PipeOptions{});
  PortId all1 = add(s, PipeOptions{});
  PortId nothing = add(s, none());
  PortId all2 = add(s, PipeOptions{});
  Spec sp;
  sp.payload = 40000;
  sp.full_csum = false;
  sp.dst = testutil::host_mac(9);  // unknown: flooded
  Built b = testframes::build(sp);
  OffloadMeta m = tso_meta(b, false, 1448);
  inject(in, b.f, m);
  for (PortId p : {all1, all2}) {
    auto g = take(p);
    ASSERT_EQ(g.size(), 1u) << "port " << p;
    EXPECT_TRUE(g[0].meta);
    EXPECT_TRUE(g[0].large) << "a super-frame's copy is in a large buffer";
    EXPECT_EQ(g[0].f, b.f);
    EXPECT_EQ(g[0].m.gso_size, 1448);
    EXPECT_EQ(g[0].m.csum_start, m.csum_start);
    EXPECT_EQ(g[0].m.flags, m.flags);
  }
  expect_segments(frames(take(nothing)), b, false, 1500, 1448);
  EXPECT_EQ(sc(s, SwitchCounter::flood_copies), 2u);
  expect_no_leak();
}

TEST_F(EgressTest, LargeBufferFrameIsCopiedForAPortWithoutLargeBuffers) {
  PipeOptions xdp_like = none();
  xdp_like.tx_large_buffers = false;
  Spec sp = two_ports(xdp_like, 1000);
  const PortId in = in_, out = out_;
  sp.full_csum = true;
  Built b = testframes::build(sp);
  // A complete frame in a large buffer (as a backend receiving into one would
  // hand it over): flag set, nothing pending.
  uint32_t idx;
  ASSERT_TRUE(peer(in).cache().alloc_large(&idx));
  Pkt p{idx, pool_->headroom(), uint16_t(b.f.size())};
  std::memcpy(pool_->frame(p), b.f.data(), b.f.size());
  pool_->meta(idx) = OffloadMeta{};
  pkt_set_meta(p, true);
  ASSERT_EQ(peer(in).send(&p, 1), 1u);
  engine().run_once();
  auto got = take(out);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(got[0].large);
  EXPECT_FALSE(got[0].meta);
  EXPECT_EQ(got[0].f, b.f);
  expect_no_leak();
}

TEST_F(EgressTest, WhatCannotBeSegmentedIsACountedDrop) {
  Spec sp = two_ports(none(), 5000);
  const SwitchId s = s_;
  const PortId in = in_, out = out_;
  Built b = testframes::build(sp);
  OffloadMeta wrong = tso_meta(b, true, 1448);  // TCPv6 state on an IPv4 frame
  inject(in, b.f, wrong);
  OffloadMeta ufo = tso_meta(b, false, 1448);
  ufo.gso_type = OffloadMeta::kGsoUdp;
  inject(in, b.f, ufo);
  Spec u = sp;
  u.proto = kIpProtoUdp;
  Built bu = testframes::build(u);
  inject(in, bu.f, tso_meta(bu, false, 1448));  // TCPv4 state on UDP
  Spec small = sp;
  small.payload = 500;
  Built bs = testframes::build(small);
  OffloadMeta off = tso_meta(bs, false, 0);
  off.gso_type = OffloadMeta::kGsoNone;
  off.csum_start = 60000;  // outside the frame
  inject(in, bs.f, off);
  EXPECT_TRUE(take(out).empty());
  EXPECT_EQ(pdrop(out, Drop::gso_malformed), 3u);
  EXPECT_EQ(pdrop(out, Drop::gso_unsupported), 1u);
  EXPECT_EQ(sdrop(s, Drop::gso_malformed), 3u);
  EXPECT_EQ(pc(out, PortCounter::tx_drops), 4u);
  expect_no_leak();
}

TEST_F(EgressTest, IngressMtuCheckMeasuresSegmentsOfASuperFrame) {
  Spec sp = two_ports(PipeOptions{}, 8000);
  const PortId in = in_, out = out_;
  Built b = testframes::build(sp);
  inject(in, b.f, tso_meta(b, false, 1460));  // 1460 + 40 = 1500: fits
  EXPECT_EQ(take(out).size(), 1u);
  inject(in, b.f, tso_meta(b, false, 1461));  // segments of 1501 bytes
  EXPECT_TRUE(take(out).empty());
  EXPECT_EQ(pdrop(in, Drop::oversize), 1u);
  OffloadMeta plain;  // no GSO: its length counts
  inject(in, b.f, plain);
  EXPECT_EQ(pdrop(in, Drop::oversize), 2u);
  expect_no_leak();
}

// A DF packet larger than the egress port's MTU is answered to its sender
// (out the port it came from, with its VLAN tag) and counted.
TEST_F(EgressTest, IcmpFragmentationNeededForAnEgressWithASmallerMtu) {
  SwitchId s = create_switch(1);
  PortConfig big;
  big.mtu = 1800;
  PortId in = add(kNoId, PipeOptions{}, big, {{100, s}});
  PortId out = add(s, none());
  Spec sp;
  sp.tpids = {kEtherTypeVlan};
  sp.payload = 1700;  // IP 1740 > 1500
  sp.dst = testutil::host_mac(2);
  sp.src = testutil::host_mac(1);
  Built b = testframes::build(sp);
  ASSERT_TRUE(add_static(s, out, sp.dst).ok());
  testutil::EngineFixture::send(in, {b.f});
  engine().run_once();
  EXPECT_TRUE(take(out).empty());
  EXPECT_EQ(pdrop(out, Drop::mtu_exceeded), 1u);
  auto back = take(in);
  ASSERT_EQ(back.size(), 1u);
  const Bytes& a = back[0].f;
  EXPECT_EQ(mac_load(a.data()), sp.src) << "to the sender";
  EXPECT_EQ(load_be16(a.data() + 12), kEtherTypeVlan);
  EXPECT_EQ(load_be16(a.data() + 14) & 0xFFF, 100) << "on the sender's VLAN";
  const uint8_t* ip = a.data() + 18;
  EXPECT_EQ(ip[9], kIpProtoIcmp);
  EXPECT_EQ(load_be32(ip + 16), testframes::kSrc4);
  const uint8_t* icmp = ip + 20;
  EXPECT_EQ(icmp[0], 3);
  EXPECT_EQ(icmp[1], 4);
  EXPECT_EQ(load_be16(icmp + 6), 1500) << "next-hop MTU";
  EXPECT_EQ(ec(EngineCounter::icmp_too_big_sent), 1u);

  // Without DF: dropped and counted, not answered.
  Spec nodf = sp;
  nodf.frag = 0;
  testutil::EngineFixture::send(in, {testframes::build(nodf).f});
  engine().run_once();
  EXPECT_TRUE(take(in).empty());
  EXPECT_EQ(pdrop(out, Drop::mtu_exceeded), 2u);
  EXPECT_EQ(ec(EngineCounter::icmp_too_big_skipped), 1u);

  // IPv6 always: Packet Too Big.
  Spec v6 = sp;
  v6.v6 = true;
  testutil::EngineFixture::send(in, {testframes::build(v6).f});
  engine().run_once();
  back = take(in);
  ASSERT_EQ(back.size(), 1u);
  const uint8_t* ip6 = back[0].f.data() + 18;
  EXPECT_EQ(ip6[6], kIpProtoIcmpv6);
  EXPECT_EQ(ip6[40], 2) << "Packet Too Big";
  EXPECT_EQ(load_be32(ip6 + 44), 1500u);
  expect_no_leak();
}

// A frame longer than the MTU of the port it comes in on (a guest whose
// interface MTU is larger than its port's) is an oversize drop at ingress,
// and is answered like one too big for its egress: without the answer, the
// sender's TCP lost every full-sized segment and a transfer stood still
// (0.00 Gbit/s between two guests with MTU 9000 on ports of MTU 1500).
// A TSO super-frame whose segments are too long is answered the same way.
TEST_F(EgressTest, IcmpFragmentationNeededForAFrameOverItsIngressPortMtu) {
  SwitchId s = create_switch(1);
  PortId in = add(kNoId, PipeOptions{}, {}, {{100, s}});  // MTU 1500, tagged 100
  PortConfig big;
  big.mtu = 9000;
  PortId out = add(s, PipeOptions{}, big);
  Spec sp;
  sp.tpids = {kEtherTypeVlan};
  sp.payload = 8000;  // IP 8040 > 1500
  sp.dst = testutil::host_mac(2);
  sp.src = testutil::host_mac(1);
  ASSERT_TRUE(add_static(s, out, sp.dst).ok());
  inject(in, testframes::build(sp).f, OffloadMeta{});  // a large buffer, no offload state
  EXPECT_TRUE(take(out).empty());
  EXPECT_EQ(pc(in, PortCounter::rx_drops), 1u);
  auto back = take(in);
  ASSERT_EQ(back.size(), 1u);
  const Bytes& a = back[0].f;
  EXPECT_EQ(mac_load(a.data()), sp.src) << "to the sender";
  EXPECT_EQ(load_be16(a.data() + 14) & 0xFFF, 100) << "on the sender's VLAN";
  const uint8_t* ip = a.data() + 18;
  EXPECT_EQ(ip[9], kIpProtoIcmp);
  EXPECT_EQ(load_be32(ip + 16), testframes::kSrc4);
  EXPECT_EQ(ip[20], 3);
  EXPECT_EQ(ip[21], 4);
  EXPECT_EQ(load_be16(ip + 20 + 6), 1500) << "the ingress port's MTU";
  EXPECT_EQ(ec(EngineCounter::icmp_too_big_sent), 1u);

  // A super-frame cut into 8000-byte segments: answered too.
  sp.payload = 30000;
  sp.full_csum = false;
  Built b = testframes::build(sp);
  inject(in, b.f, tso_meta(b, false, 8000));
  EXPECT_TRUE(take(out).empty());
  back = take(in);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(load_be16(back[0].f.data() + 18 + 20 + 6), 1500);
  EXPECT_EQ(pc(in, PortCounter::rx_drops), 2u);

  // Without DF: dropped and counted, not answered.
  Spec nodf = sp;
  nodf.payload = 8000;
  nodf.full_csum = true;
  nodf.frag = 0;
  inject(in, testframes::build(nodf).f, OffloadMeta{});
  EXPECT_TRUE(take(in).empty());
  EXPECT_EQ(pc(in, PortCounter::rx_drops), 3u);
  EXPECT_EQ(ec(EngineCounter::icmp_too_big_sent), 2u);
  expect_no_leak();
}

// A hostile guest's TSO frame with a gso_size of 1, bound for a port that
// takes no offloads: one gso_malformed drop, not 60,000 one-byte segments.
TEST_F(EgressTest, ATinySegmentSizeIsADropNotThousandsOfSegments) {
  Spec sp = two_ports(none(), 60000);
  const PortId in = in_, out = out_;
  Built b = testframes::build(sp);
  inject(in, b.f, tso_meta(b, false, 1));
  EXPECT_TRUE(take(out).empty());
  EXPECT_EQ(pdrop(out, Drop::gso_malformed), 1u);
  EXPECT_EQ(pc(out, PortCounter::tx_gso_segments), 0u);
  // The same frame at a sender's real segment size is cut as usual.
  inject(in, b.f, tso_meta(b, false, 1448));
  EXPECT_EQ(take(out).size(), (60000u + 1447) / 1448);
  expect_no_leak();
}

TEST_F(EgressTest, TooBigAnswersAreRateLimited) {
  three_answers_a_second();
  const Tenant t = tenant(1);
  testutil::EngineFixture::send(t.in, std::vector<Bytes>(10, oversized()));
  engine().run_once();
  EXPECT_EQ(take(t.in).size(), 3u) << "a burst of the per-second rate, then nothing";
  EXPECT_EQ(ec(EngineCounter::icmp_too_big_sent), 3u);
  EXPECT_EQ(ec(EngineCounter::icmp_too_big_limited), 7u);
  EXPECT_EQ(pdrop(t.out, Drop::mtu_exceeded), 10u);
  expect_no_leak();
}

// Each switch has its own bucket: a tenant flooding oversized frames uses up
// its own answers, and another tenant's guest still learns its path MTU.
TEST_F(EgressTest, TooBigAnswersAreLimitedPerSwitch) {
  three_answers_a_second();
  const Tenant flooding = tenant(1), other = tenant(2);
  testutil::EngineFixture::send(flooding.in, std::vector<Bytes>(10, oversized()));
  engine().run_once();
  EXPECT_EQ(take(flooding.in).size(), 3u) << "the flooding tenant: its burst, then nothing";
  testutil::EngineFixture::send(other.in, std::vector<Bytes>(2, oversized()));
  engine().run_once();
  EXPECT_EQ(take(other.in).size(), 2u) << "the other tenant is answered";
  EXPECT_EQ(ec(EngineCounter::icmp_too_big_sent), 5u);
  EXPECT_EQ(ec(EngineCounter::icmp_too_big_limited), 7u);
  expect_no_leak();
}

}  // namespace
}  // namespace vpc
