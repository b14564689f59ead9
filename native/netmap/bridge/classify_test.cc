// Tests for bridge/classify.h on hand-built ports (memberships and MTU): every drop reason of
// the classify stage, member selection on access and trunk ports, tag removal
// and the MTU boundary.
#include "bridge/classify.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/test_util.h"

namespace vpc {
namespace {

using testutil::Bytes;
using testutil::make_frame;

constexpr Mac kDst = 0x0A0B0C0D0E0Full;
constexpr Mac kSrc = 0x020000000001ull;
constexpr uint16_t kOff = 128;

// What classify reads of a port: the bridge's memberships and the core's
// largest untagged frame.
struct TestPort {
  BridgePort bp;
  uint32_t max_len = 0;
};

// An access port: untagged frames go to member 7.
void make_access(TestPort& ps, MemberId untagged = 7, uint32_t mtu = 1500) {
  ps.max_len = mtu + kEthHeaderLen;
  ps.bp.untagged = untagged;
}

// A trunk: VLAN 10 -> member 3, VLAN 20 -> member 4, native (untagged) optional.
void make_trunk(TestPort& ps, MemberId native = kNoMember, uint32_t mtu = 1500) {
  make_access(ps, native, mtu);
  ps.bp.vlan_map.reset(new MemberId[4096]);
  std::fill(ps.bp.vlan_map.get(), ps.bp.vlan_map.get() + 4096, kNoMember);
  ps.bp.vlan_map[10] = 3;
  ps.bp.vlan_map[20] = 4;
}

struct Outcome {
  bool ok;
  MemberId member;
  Drop why;
  Pkt p;
  Bytes bytes;  // frame bytes after classify (only when ok)
};

Outcome run(const TestPort& ps, const Bytes& frame) {
  static uint8_t buf[4096];
  memset(buf, 0xEE, sizeof(buf));
  if (!frame.empty()) memcpy(buf + kOff, frame.data(), frame.size());  // data() may be null
  Outcome o{};
  o.p = Pkt{0, kOff, uint16_t(frame.size())};
  o.member = 0x1234;
  o.why = Drop::kCount;
  o.ok = classify(ps.bp, ps.max_len, buf, o.p, &o.member, &o.why);
  if (o.ok) o.bytes.assign(buf + o.p.off, buf + o.p.off + o.p.len);
  return o;
}

TEST(Classify, RuntBelowEthernetHeader) {
  TestPort ps;
  make_access(ps);
  Bytes full = make_frame(kDst, kSrc, 64);
  for (uint16_t len : {0, 1, 6, 12, 13}) {
    Bytes f(full.begin(), full.begin() + len);
    Outcome o = run(ps, f);
    EXPECT_FALSE(o.ok) << "len " << len;
    EXPECT_EQ(o.why, Drop::runt) << "len " << len;
    EXPECT_EQ(o.member, 0x1234) << "member must not be written on a drop";
  }
}

TEST(Classify, FourteenByteFrameAccepted) {
  TestPort ps;
  make_access(ps);
  Bytes f = make_frame(kDst, kSrc, 14);
  Outcome o = run(ps, f);
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.member, 7);
  EXPECT_EQ(o.p.off, kOff);
  EXPECT_EQ(o.p.len, 14);
  EXPECT_EQ(o.bytes, f);
}

TEST(Classify, TaggedShorterThan18IsTruncated) {
  TestPort ps;
  make_trunk(ps);
  Bytes full = make_frame(kDst, kSrc, 64, 10);
  for (uint16_t len : {14, 15, 16, 17}) {
    Bytes f(full.begin(), full.begin() + len);
    Outcome o = run(ps, f);
    EXPECT_FALSE(o.ok) << "len " << len;
    EXPECT_EQ(o.why, Drop::vlan_truncated) << "len " << len;
  }
  // 18 bytes is a complete tagged header.
  Bytes f18(full.begin(), full.begin() + 18);
  Outcome o = run(ps, f18);
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.member, 3);
  EXPECT_EQ(o.p.len, 14);
}

TEST(Classify, Vid4095Reserved) {
  TestPort ps;
  make_trunk(ps, 9);
  Outcome o = run(ps, make_frame(kDst, kSrc, 64, 4095));
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.why, Drop::vlan_reserved);
  // Also on an access port (checked before membership).
  TestPort acc;
  make_access(acc);
  o = run(acc, make_frame(kDst, kSrc, 64, 4095));
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.why, Drop::vlan_reserved);
}

TEST(Classify, PriorityTagGoesToUntaggedMemberWithTagStripped) {
  TestPort ps;
  make_access(ps);
  Bytes f = make_frame(kDst, kSrc, 64, 0, kEtherTypeIpv4, /*pcp=*/5);
  Outcome o = run(ps, f);
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.member, 7);
  EXPECT_EQ(o.p.off, kOff + 4);
  EXPECT_EQ(o.p.len, 60);
  EXPECT_EQ(o.bytes, testutil::strip_tag(f));
  EXPECT_EQ(load_be16(o.bytes.data() + 12), kEtherTypeIpv4);

  // On a trunk with a native member too.
  TestPort tr;
  make_trunk(tr, 11);
  o = run(tr, f);
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.member, 11);
  EXPECT_EQ(o.bytes, testutil::strip_tag(f));

  // Trunk without native: a priority-tagged frame has nowhere to go.
  TestPort tr2;
  make_trunk(tr2);
  o = run(tr2, f);
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.why, Drop::vlan_not_member);
}

TEST(Classify, TaggedOnAccessPortIsNotMember) {
  TestPort ps;
  make_access(ps);
  Outcome o = run(ps, make_frame(kDst, kSrc, 64, 10));
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.why, Drop::vlan_not_member);
}

TEST(Classify, UntaggedOnTrunkWithoutNativeIsNotMember) {
  TestPort ps;
  make_trunk(ps);
  Outcome o = run(ps, make_frame(kDst, kSrc, 64));
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.why, Drop::vlan_not_member);
  // With a native member the same frame is accepted untouched.
  TestPort nat;
  make_trunk(nat, 12);
  Bytes f = make_frame(kDst, kSrc, 64);
  o = run(nat, f);
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.member, 12);
  EXPECT_EQ(o.bytes, f);
}

TEST(Classify, TrunkUnmappedVidIsNotMember) {
  TestPort ps;
  make_trunk(ps, 12);
  for (int vid : {1, 11, 19, 21, 4094}) {
    Outcome o = run(ps, make_frame(kDst, kSrc, 64, vid));
    EXPECT_FALSE(o.ok) << vid;
    EXPECT_EQ(o.why, Drop::vlan_not_member) << vid;
  }
}

TEST(Classify, TrunkVidPicksMemberAndStripsTag) {
  TestPort ps;
  make_trunk(ps);
  Bytes f10 = make_frame(kDst, kSrc, 100, 10, kEtherTypeIpv6, 3, 1);
  Outcome o = run(ps, f10);
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.member, 3);
  EXPECT_EQ(o.p.off, kOff + 4);
  EXPECT_EQ(o.p.len, 96);
  ASSERT_EQ(o.bytes.size(), 96u);
  EXPECT_EQ(mac_load(o.bytes.data()), kDst);
  EXPECT_EQ(mac_load(o.bytes.data() + 6), kSrc);
  EXPECT_EQ(load_be16(o.bytes.data() + 12), kEtherTypeIpv6);
  EXPECT_EQ(o.bytes, testutil::strip_tag(f10));

  Bytes f20 = make_frame(kDst, kSrc, 64, 20, kEtherTypeArp, 0, 2);
  o = run(ps, f20);
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.member, 4);
  EXPECT_EQ(o.bytes, testutil::strip_tag(f20));
}

TEST(Classify, OversizeBoundaryUntagged) {
  TestPort ps;
  make_access(ps, 7, 1500);
  Outcome o = run(ps, make_frame(kDst, kSrc, 1514));
  EXPECT_TRUE(o.ok);
  EXPECT_EQ(o.p.len, 1514);
  o = run(ps, make_frame(kDst, kSrc, 1515));
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.why, Drop::oversize);

  TestPort small;
  make_access(small, 7, 68);
  EXPECT_TRUE(run(small, make_frame(kDst, kSrc, 82)).ok);
  o = run(small, make_frame(kDst, kSrc, 83));
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.why, Drop::oversize);
}

// A TSO frame is measured by its segments: headers (to the end of the TCP
// header, read in the frame) plus gso_size. hdr_len as Linux fills it from a
// tap (the skb's linear length, payload included) is not trusted.
TEST(Classify, TsoFrameFitsByItsSegmentsNotByHdrLen) {
  std::vector<uint8_t> f(14 + 20 + 32 + 4000, 0);
  f[14 + 20 + 12] = 8 << 4;  // TCP data offset: 32 bytes (timestamps)
  OffloadMeta m;
  m.flags = OffloadMeta::kNeedsCsum;
  m.csum_start = 14 + 20;
  m.csum_offset = 16;
  m.gso_type = OffloadMeta::kGsoTcpv4;
  m.gso_size = 1448;   // 66 + 1448 = 1514: a full-size segment
  m.hdr_len = 200;     // the linear length, 134 bytes of payload included
  EXPECT_TRUE(offload_fits_mtu(m, uint32_t(f.size()), 1514, f.data()));
  EXPECT_FALSE(offload_fits_mtu(m, uint32_t(f.size()), 1514)) << "without the frame, hdr_len is all there is";
  m.gso_size = 1449;
  EXPECT_FALSE(offload_fits_mtu(m, uint32_t(f.size()), 1514, f.data())) << "one byte over the MTU";
  m.gso_type = OffloadMeta::kGsoNone;
  EXPECT_FALSE(offload_fits_mtu(m, uint32_t(f.size()), 1514, f.data())) << "no GSO: the length counts";
}

TEST(Classify, OversizeBoundaryTaggedDoesNotCountTheTag) {
  TestPort ps;
  make_trunk(ps, kNoMember, 1500);
  Outcome o = run(ps, make_frame(kDst, kSrc, 1518, 10));
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.member, 3);
  EXPECT_EQ(o.p.len, 1514);
  o = run(ps, make_frame(kDst, kSrc, 1519, 10));
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.why, Drop::oversize);
}

}  // namespace
}  // namespace vpc
