// ICMP Fragmentation Needed / ICMPv6 Packet Too Big answers (proto/too_big.h),
// checked field by field, with a header checksum computed by hand and the
// ICMP checksums by the independent slow sum of test_frames.h; every reason
// not to answer; truncated and damaged frames in exact-size heap buffers.
#include "proto/too_big.h"

#include <gtest/gtest.h>

#include <random>

#include "proto/test_frames.h"

namespace vpc {
namespace {

using namespace testframes;

struct Answer {
  Bytes out;
  TooBigSkip why = TooBigSkip::none;
};

Answer answer(const Bytes& f, uint32_t mtu, uint32_t cap = kTooBigMaxFrame) {
  Bytes heap(f);  // exact size: ASan sees any overread
  Answer a;
  a.out.resize(cap);
  a.why = TooBigSkip::truncated;
  const uint32_t n = icmp_too_big(heap.data(), uint32_t(heap.size()), mtu, a.out.data(), cap, &a.why);
  a.out.resize(n);
  return a;
}

TooBigSkip skipped(const Bytes& f, uint32_t mtu) {
  const Answer a = answer(f, mtu);
  EXPECT_TRUE(a.out.empty());
  return a.why;
}

// The answer's IP header and ICMP checksums, and its size limit.
bool checksums_ok(const Bytes& out) {
  uint32_t l3 = 14;
  while (load_be16(out.data() + l3 - 2) != kEtherTypeIpv4 && load_be16(out.data() + l3 - 2) != kEtherTypeIpv6) l3 += 4;
  const uint8_t* ip = out.data() + l3;
  const uint32_t ip_len = uint32_t(out.size()) - l3;
  if ((ip[0] >> 4) == 4)
    return ip_len <= 576 && load_be16(ip + 2) == ip_len && ref_sum(ip, 20) == 0xFFFF &&
           ref_sum(ip + 20, ip_len - 20) == 0xFFFF;
  return ip_len <= 1280 && load_be16(ip + 4) == ip_len - 40 &&
         ref_sum(ip + 40, ip_len - 40, ref_pseudo(ip, kIpProtoIcmpv6, ip_len - 40)) == 0xFFFF;
}

// An IPv4 DF TCP frame whose IP packet is ip_len bytes.
Spec tcp4(uint32_t ip_len) {
  Spec s;
  s.payload = ip_len - 40;
  return s;
}
Spec tcp6(uint32_t ip_len) {
  Spec s;
  s.v6 = true;
  s.payload = ip_len - 60;
  return s;
}

TEST(TooBig, Ipv4FragmentationNeeded) {
  const Bytes f = build(tcp4(1500)).f;
  const Answer a = answer(f, 1450);
  ASSERT_EQ(a.why, TooBigSkip::none) << too_big_skip_name(a.why);
  ASSERT_EQ(a.out.size(), 14u + 576);
  const uint8_t* e = a.out.data();
  EXPECT_EQ(mac_load(e), kSrcMac);
  EXPECT_EQ(mac_load(e + 6), kDstMac);
  EXPECT_EQ(load_be16(e + 12), kEtherTypeIpv4);
  const uint8_t* ip = e + 14;
  EXPECT_EQ(ip[0], 0x45);
  EXPECT_EQ(ip[1], 0xC0);
  EXPECT_EQ(load_be16(ip + 2), 576);
  EXPECT_EQ(load_be16(ip + 4), 0x1234) << "the original's ID";
  EXPECT_EQ(load_be16(ip + 6), 0) << "no DF";
  EXPECT_EQ(ip[8], 64);
  EXPECT_EQ(ip[9], kIpProtoIcmp);
  EXPECT_EQ(load_be32(ip + 12), kDst4);
  EXPECT_EQ(load_be32(ip + 16), kSrc4);
  // By hand: 45c0 + 0240 + 1234 + 0000 + 4001 + c612 + 0002 + c612 + 0001
  // = 2265c, folded 265e, complemented d9a1.
  EXPECT_EQ(load_be16(ip + 10), 0xd9a1);
  const uint8_t* icmp = ip + 20;
  EXPECT_EQ(icmp[0], 3);
  EXPECT_EQ(icmp[1], 4);
  EXPECT_EQ(load_be16(icmp + 4), 0);
  EXPECT_EQ(load_be16(icmp + 6), 1450);
  EXPECT_EQ(ref_sum(icmp, 556), 0xFFFFu) << "ICMP checksum";
  EXPECT_TRUE(checksums_ok(a.out));
  EXPECT_TRUE(std::equal(icmp + 8, icmp + 556, f.begin() + 14)) << "the original's first 548 bytes";
}

TEST(TooBig, Ipv4SmallOriginalIsQuotedWhole) {
  Spec s = tcp4(300);
  s.tpids = {0x88A8, 0x8100};
  s.pad = 4;  // Ethernet padding is not quoted
  const Bytes f = build(s).f;
  const Answer a = answer(f, 200);
  ASSERT_EQ(a.out.size(), 22u + 20 + 8 + 300);
  EXPECT_TRUE(std::equal(a.out.begin() + 12, a.out.begin() + 22, f.begin() + 12)) << "tags and EtherType kept";
  EXPECT_EQ(load_be16(a.out.data() + 22 + 2), 328);
  EXPECT_EQ(ref_sum(a.out.data() + 22, 20), 0xFFFFu);
  EXPECT_EQ(ref_sum(a.out.data() + 42, 308), 0xFFFFu);
  EXPECT_EQ(load_be16(a.out.data() + 42 + 6), 200);
  EXPECT_TRUE(std::equal(a.out.begin() + 50, a.out.end(), f.begin() + 22));
}

TEST(TooBig, Ipv6PacketTooBig) {
  Spec s = tcp6(1500);
  s.tpids = {0x8100};
  const Bytes f = build(s).f;
  const Answer a = answer(f, 1450);
  ASSERT_EQ(a.why, TooBigSkip::none) << too_big_skip_name(a.why);
  ASSERT_EQ(a.out.size(), 18u + 1280);
  const uint8_t* ip = a.out.data() + 18;
  EXPECT_EQ(mac_load(a.out.data()), kSrcMac);
  EXPECT_EQ(load_be16(a.out.data() + 16), kEtherTypeIpv6);
  EXPECT_EQ(load_be32(ip), 0x60000000u);
  EXPECT_EQ(load_be16(ip + 4), 1240);
  EXPECT_EQ(ip[6], kIpProtoIcmpv6);
  EXPECT_EQ(ip[7], 64);
  EXPECT_EQ(std::memcmp(ip + 8, kDst6, 16), 0);
  EXPECT_EQ(std::memcmp(ip + 24, kSrc6, 16), 0);
  const uint8_t* icmp = ip + 40;
  EXPECT_EQ(icmp[0], 2);
  EXPECT_EQ(icmp[1], 0);
  EXPECT_EQ(load_be32(icmp + 4), 1450u);
  EXPECT_EQ(ref_sum(icmp, 1240, ref_pseudo(ip, kIpProtoIcmpv6, 1240)), 0xFFFFu) << "ICMPv6 checksum";
  EXPECT_TRUE(checksums_ok(a.out));
  EXPECT_TRUE(std::equal(icmp + 8, icmp + 1240, f.begin() + 18)) << "the original's first 1232 bytes";
}

TEST(TooBig, Ipv6FirstFragmentAndEchoAreAnswered) {
  Spec s = tcp6(1500);
  s.ext = {{0, 0}, {44, 0}};
  Bytes f = build(s).f;
  store_be16(f.data() + 14 + 48 + 2, 0x0001);  // offset 0, M = 1
  EXPECT_EQ(answer(f, 1280).why, TooBigSkip::none);
  store_be16(f.data() + 14 + 48 + 2, 0x0008);  // offset 8
  EXPECT_EQ(skipped(f, 1280), TooBigSkip::fragment);
  s = tcp6(1500);
  s.proto = kIpProtoIcmpv6;
  s.payload += 12;
  f = build(s).f;
  f[54] = 128;  // echo request
  EXPECT_EQ(answer(f, 1280).why, TooBigSkip::none);
  f[54] = 1;  // destination unreachable
  EXPECT_EQ(skipped(f, 1280), TooBigSkip::icmp_error);
  s.ext = {{0, 0}, {60, 1}};
  f = build(s).f;
  f[14 + 40 + 8 + 16] = 3;  // time exceeded, behind two extension headers
  EXPECT_EQ(skipped(f, 1280), TooBigSkip::icmp_error);
}

TEST(TooBig, Ipv4Skips) {
  Bytes f = build(tcp4(1500)).f;
  EXPECT_EQ(skipped(f, 1500), TooBigSkip::fits);
  EXPECT_EQ(skipped(f, 67), TooBigSkip::mtu_below_minimum);
  EXPECT_EQ(answer(f, 68).why, TooBigSkip::none);
  Spec s = tcp4(1500);
  s.frag = 0;
  EXPECT_EQ(skipped(build(s).f, 1400), TooBigSkip::not_df);
  s.frag = 0x4000 | 0x0010;
  EXPECT_EQ(skipped(build(s).f, 1400), TooBigSkip::fragment);
  s.frag = 0x4000 | 0x2000;  // first fragment (DF with MF is odd, but it is first)
  EXPECT_EQ(answer(build(s).f, 1400).why, TooBigSkip::none);
  s = tcp4(1500);
  s.proto = kIpProtoIcmp;
  s.payload += 12;
  for (uint8_t type : {3, 4, 5, 11, 12}) {
    f = build(s).f;
    f[34] = type;
    EXPECT_EQ(skipped(f, 1400), TooBigSkip::icmp_error) << int(type);
  }
  f[34] = 8;  // echo request
  EXPECT_EQ(answer(f, 1400).why, TooBigSkip::none);

  const struct {
    uint32_t off;  // into the frame
    uint32_t value;
    TooBigSkip why;
  } addr[] = {
      {30, 0xE0000001, TooBigSkip::multicast_dst},  // 224.0.0.1
      {30, 0xFFFFFFFF, TooBigSkip::multicast_dst},
      {26, 0x00000000, TooBigSkip::bad_src},
      {26, 0x7F000001, TooBigSkip::bad_src},
      {26, 0xE0000001, TooBigSkip::bad_src},
      {26, 0xFFFFFFFF, TooBigSkip::bad_src},
  };
  for (const auto& c : addr) {
    f = build(tcp4(1500)).f;
    store_be32(f.data() + c.off, c.value);
    EXPECT_EQ(skipped(f, 1400), c.why) << std::hex << c.value;
  }
  Spec m = tcp4(1500);
  m.dst = 0x01005E000001ull;
  EXPECT_EQ(skipped(build(m).f, 1400), TooBigSkip::multicast_dst);
  m.dst = kMacBroadcast;
  EXPECT_EQ(skipped(build(m).f, 1400), TooBigSkip::multicast_dst);
  m = tcp4(1500);
  m.src = 0x01005E000001ull;
  EXPECT_EQ(skipped(build(m).f, 1400), TooBigSkip::bad_src);
}

TEST(TooBig, Ipv6Skips) {
  const Bytes base = build(tcp6(1500)).f;
  EXPECT_EQ(skipped(base, 1500), TooBigSkip::fits);
  EXPECT_EQ(skipped(base, 1279), TooBigSkip::mtu_below_minimum);
  Bytes f = base;
  f[14 + 24] = 0xFF;  // ff..::2 destination
  EXPECT_EQ(skipped(f, 1280), TooBigSkip::multicast_dst);
  f = base;
  f[14 + 8] = 0xFF;
  EXPECT_EQ(skipped(f, 1280), TooBigSkip::bad_src);
  f = base;
  std::memset(f.data() + 14 + 8, 0, 16);
  EXPECT_EQ(skipped(f, 1280), TooBigSkip::bad_src) << "::";
  f[14 + 8 + 15] = 1;
  EXPECT_EQ(skipped(f, 1280), TooBigSkip::bad_src) << "::1";
  f = base;
  store_be16(f.data() + 18, 0);
  EXPECT_EQ(skipped(f, 1280), TooBigSkip::truncated) << "jumbogram";
  f = base;
  store_be16(f.data() + 18, uint16_t(f.size() - 54 + 1));
  EXPECT_EQ(skipped(f, 1280), TooBigSkip::truncated) << "payload length past the frame";
}

TEST(TooBig, OtherFramesAndRoom) {
  Bytes f = build(tcp4(1500)).f;
  store_be16(f.data() + 12, kEtherTypeArp);
  EXPECT_EQ(skipped(f, 1400), TooBigSkip::not_ip);
  f = build(tcp4(1500)).f;
  EXPECT_EQ(answer(f, 1400, 14 + 576 - 1).why, TooBigSkip::no_room);
  EXPECT_EQ(answer(f, 1400, 14 + 576).out.size(), 14u + 576);
  f[14] = 0x44;
  EXPECT_EQ(skipped(f, 1400), TooBigSkip::truncated) << "IHL 4";
}

TEST(TooBig, TruncatedAndDamagedFramesStayInBounds) {
  for (bool v6 : {false, true}) {
    Spec s = v6 ? tcp6(1400) : tcp4(1400);
    s.tpids = {0x8100};
    if (v6) s.ext = {{0, 0}, {44, 0}};
    const Bytes f = build(s).f;
    EXPECT_GT(answer(f, 1280).out.size(), 0u);
    for (size_t n = 0; n < f.size(); ++n) EXPECT_EQ(answer(Bytes(f.begin(), f.begin() + n), 1280).out.size(), 0u) << n;
  }
  std::mt19937 rng(5);
  uint32_t answered = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    Spec s = (rng() & 1) ? tcp6(1281 + rng() % 2000) : tcp4(600 + rng() % 2000);
    if (rng() & 1) s.proto = (rng() & 1) ? kIpProtoIcmp : kIpProtoIcmpv6;
    if (s.v6 && (rng() & 1)) s.ext = {{0, uint8_t(rng() % 3)}, {44, 0}};
    Bytes f = build(s).f;
    for (uint32_t h = rng() % 4; h > 0; --h) f[rng() % 80] = uint8_t(rng());
    if (rng() & 1) f.resize(rng() % (f.size() + 1));
    const Answer a = answer(f, 576 + rng() % 800);
    if (a.out.empty()) continue;
    ++answered;
    EXPECT_TRUE(checksums_ok(a.out));
  }
  EXPECT_GT(answered, 1000u);
}

TEST(TooBig, EveryReasonHasANameAndHelp) {
  for (uint32_t i = 0; i < kTooBigSkipCount; ++i) {
    EXPECT_STRNE(too_big_skip_name(TooBigSkip(i)), "unknown");
    EXPECT_GT(strlen(too_big_skip_help(TooBigSkip(i))), 5u);
  }
  EXPECT_STREQ(too_big_skip_name(TooBigSkip::not_df), "not_df");
}

}  // namespace
}  // namespace vpc
