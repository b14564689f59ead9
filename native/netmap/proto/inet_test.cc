// IPv4/IPv6 address helpers and the Internet checksum (RFC 1071), checked
// against values computed by hand (and, for the sweeps, against a naive
// word-at-a-time reference that folds the carry after every addition).
#include "proto/inet.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace vpc {
namespace {

IpAddr v6(const char* s) {
  IpAddr a;
  EXPECT_TRUE(ip_parse(s, &a)) << s;
  EXPECT_FALSE(a.is_v4()) << s;
  return a;
}

// RFC 1071 done the slow, obvious way: 16-bit big-endian words, odd byte
// padded with zero on the right, end-around carry folded at every step.
uint32_t ref_sum(const uint8_t* p, size_t n, uint32_t s = 0) {
  while (s >> 16) s = (s & 0xFFFF) + (s >> 16);
  for (size_t i = 0; i < n; i += 2) {
    uint32_t w = uint32_t(p[i]) << 8 | (i + 1 < n ? p[i + 1] : 0);
    s += w;
    s = (s & 0xFFFF) + (s >> 16);
  }
  return s;
}
uint16_t ref_csum(const uint8_t* p, size_t n, uint32_t s = 0) { return uint16_t(~ref_sum(p, n, s) & 0xFFFF); }

// ------------------------------------------------------------ parse / format

TEST(InetTest, ParsesIpv4AsMappedAddress) {
  IpAddr a;
  ASSERT_TRUE(ip_parse("198.18.0.1", &a));
  EXPECT_TRUE(a.is_v4());
  EXPECT_EQ(a.v4(), 0xC6120001u);
  const uint8_t want[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 1};
  EXPECT_EQ(std::memcmp(a.b, want, 16), 0);
  EXPECT_EQ(a, IpAddr::from_v4(0xC6120001u));
  EXPECT_EQ(ip_format(a), "198.18.0.1");
  ASSERT_TRUE(ip_parse("198.19.255.254", &a));
  EXPECT_EQ(a.v4(), 0xC613FFFEu);
  EXPECT_EQ(ip_format(a), "198.19.255.254");
}

TEST(InetTest, ParsesIpv6) {
  IpAddr a = v6("2001:db8::1");
  const uint8_t want[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  EXPECT_EQ(std::memcmp(a.b, want, 16), 0);
  EXPECT_EQ(ip_format(a), "2001:db8::1");
  EXPECT_EQ(ip_format(v6("2001:0DB8:0000:0000:0001:0000:0000:0001")), "2001:db8::1:0:0:1");
  EXPECT_EQ(ip_format(v6("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2:3:4:5:6");
  EXPECT_EQ(ip_format(v6("2001:db8::")), "2001:db8::");
  // IPv4-mapped text is an IPv4 address in this representation.
  IpAddr m;
  ASSERT_TRUE(ip_parse("::ffff:198.18.0.7", &m));
  EXPECT_TRUE(m.is_v4());
  EXPECT_EQ(m.v4(), 0xC6120007u);
  EXPECT_EQ(ip_format(m), "198.18.0.7");
}

TEST(InetTest, RejectsBadText) {
  IpAddr a = IpAddr::from_v4(0xC6120001u), keep = a;
  for (const char* bad : {"", "198.18.0.256", "198.18.0", "198.18.0.1.1", "198.18.0.1/24", " 198.18.0.1",
                          "2001:db8:::1", "2001:db8::1::2", "2001:db8::g", "2001:db8:1:2:3:4:5:6:7", "host",
                          "198.18.0.-1"}) {
    EXPECT_FALSE(ip_parse(bad, &a)) << "'" << bad << "'";
    EXPECT_EQ(a, keep) << "output untouched on failure: '" << bad << "'";
  }
  EXPECT_FALSE(ip_parse(nullptr, &a));
}

TEST(InetTest, ZeroAndEquality) {
  EXPECT_TRUE(IpAddr{}.is_zero());
  EXPECT_FALSE(IpAddr{}.is_v4());
  EXPECT_FALSE(IpAddr::from_v4(0).is_zero()) << "0.0.0.0 is ::ffff:0.0.0.0";
  EXPECT_NE(IpAddr::from_v4(0xC6120001u), IpAddr::from_v4(0xC6120002u));
  EXPECT_NE(v6("2001:db8::1"), v6("2001:db8::2"));
}

// ------------------------------------------------------------ prefixes

TEST(InetTest, SamePrefixIpv4) {
  IpAddr a = IpAddr::from_v4(0xC6120001u);  // 198.18.0.1
  EXPECT_TRUE(ip_same_prefix(a, IpAddr::from_v4(0xC61200FEu), 24));
  EXPECT_FALSE(ip_same_prefix(a, IpAddr::from_v4(0xC6120101u), 24));  // 198.18.1.1
  EXPECT_TRUE(ip_same_prefix(a, IpAddr::from_v4(0xC6120101u), 23));
  EXPECT_TRUE(ip_same_prefix(a, IpAddr::from_v4(0xC613FFFFu), 15));   // 198.19.255.255
  EXPECT_FALSE(ip_same_prefix(a, IpAddr::from_v4(0xC613FFFFu), 16));
  EXPECT_TRUE(ip_same_prefix(a, a, 32));
  EXPECT_FALSE(ip_same_prefix(a, IpAddr::from_v4(0xC6120000u), 32));
  EXPECT_TRUE(ip_same_prefix(a, IpAddr::from_v4(0xC6120000u), 31));
  EXPECT_TRUE(ip_same_prefix(a, IpAddr::from_v4(0x0A000001u), 0)) << "/0 matches every IPv4 address";
  EXPECT_TRUE(ip_same_prefix(a, IpAddr::from_v4(0xC6120001u), 40)) << "prefixes beyond 32 clamp";
  // Bit boundaries inside a byte: /25 splits 198.18.0.127 from .128.
  EXPECT_TRUE(ip_same_prefix(a, IpAddr::from_v4(0xC612007Fu), 25));
  EXPECT_FALSE(ip_same_prefix(a, IpAddr::from_v4(0xC6120080u), 25));
}

TEST(InetTest, SamePrefixIpv6AndMixedFamilies) {
  IpAddr a = v6("2001:db8::1");
  EXPECT_TRUE(ip_same_prefix(a, v6("2001:db8::ffff:ffff:ffff:ffff"), 64));
  EXPECT_FALSE(ip_same_prefix(a, v6("2001:db8:0:1::1"), 64));
  EXPECT_TRUE(ip_same_prefix(a, v6("2001:db8:0:1::1"), 63));
  EXPECT_TRUE(ip_same_prefix(a, v6("2001:db8::"), 127));
  EXPECT_FALSE(ip_same_prefix(a, v6("2001:db8::"), 128));
  EXPECT_TRUE(ip_same_prefix(a, v6("2001:db8:ffff::1"), 32));
  EXPECT_FALSE(ip_same_prefix(a, v6("2001:db9::1"), 32));
  EXPECT_TRUE(ip_same_prefix(a, v6("2001:db8:1::"), 0));
  EXPECT_FALSE(ip_same_prefix(a, IpAddr::from_v4(0xC6120001u), 0)) << "never across families";
  EXPECT_FALSE(ip_same_prefix(IpAddr::from_v4(0xC6120001u), a, 0));
}

// ------------------------------------------------------------ checksum

TEST(InetTest, ChecksumRfc1071Example) {
  // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2, checksum 220d.
  const uint8_t d[8] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  uint32_t s = csum_partial(d, 8, 0);
  uint32_t folded = s;
  while (folded >> 16) folded = (folded & 0xFFFF) + (folded >> 16);
  EXPECT_EQ(folded, 0xddf2u);
  EXPECT_EQ(csum_fold(s), 0x220d);
  // Any split at an even offset gives the same sum.
  EXPECT_EQ(csum_fold(csum_partial(d + 4, 4, csum_partial(d, 4, 0))), 0x220d);
  EXPECT_EQ(csum_fold(csum_partial(d + 2, 6, csum_partial(d, 2, 0))), 0x220d);
}

TEST(InetTest, ChecksumOddLengthsPadOnTheRight) {
  const uint8_t one[1] = {0x01};
  EXPECT_EQ(csum_fold(csum_partial(one, 1, 0)), 0xFEFF);  // word 0x0100
  const uint8_t three[3] = {0xab, 0xcd, 0xef};
  // abcd + ef00 = 19acd -> 9ace -> ~ = 6531
  EXPECT_EQ(csum_fold(csum_partial(three, 3, 0)), 0x6531);
  const uint8_t nine[9] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7, 0x80};
  // ddf2 + 8000 = 15df2 -> 5df3 -> a20c
  EXPECT_EQ(csum_fold(csum_partial(nine, 9, 0)), 0xa20c);
  EXPECT_EQ(csum_fold(csum_partial(nine, 0, 0)), 0xFFFF) << "empty buffer sums to zero";
}

TEST(InetTest, ChecksumCarriesAreNeverLost) {
  // 0xFFFF words: the one's-complement sum stays 0xFFFF, the checksum 0.
  std::vector<uint8_t> ff(65535 + 1, 0xFF);
  for (size_t n : {2u, 8u, 10u, 1000u, 65534u, 65536u}) EXPECT_EQ(csum_fold(csum_partial(ff.data(), n, 0)), 0) << n;
  // Odd: 0xFF00 added to a pile of 0xFFFFs -> ff00 -> checksum 00ff.
  EXPECT_EQ(csum_fold(csum_partial(ff.data(), 65535, 0)), 0x00FF);
  // 0x8000 + 0x8000 = 0x10000 -> 0x0001: the carry wraps around.
  const uint8_t h[4] = {0x80, 0x00, 0x80, 0x00};
  EXPECT_EQ(csum_fold(csum_partial(h, 4, 0)), 0xFFFE);
  // A large incoming partial sum is folded in, not truncated.
  EXPECT_EQ(csum_fold(csum_partial(h, 4, 0xFFFF0000u)), csum_fold(0xFFFF0000u + 1u));
  EXPECT_EQ(csum_fold(csum_partial(h, 0, 0x0001FFFFu)), uint16_t(~0x0001u & 0xFFFF));
}

TEST(InetTest, ChecksumMatchesReferenceAtEveryLengthAndAlignment) {
  std::mt19937 rng(7);
  std::vector<uint8_t> buf(600);
  for (auto& b : buf) b = uint8_t(rng());
  for (size_t off = 0; off < 8; ++off)
    for (size_t n = 0; n <= 300; ++n) {
      uint32_t init = rng() & 0x3FFFF;
      ASSERT_EQ(csum_fold(csum_partial(buf.data() + off, n, init)), ref_csum(buf.data() + off, n, init))
          << "off " << off << " len " << n << " init " << init;
    }
}

TEST(InetTest, Ipv4HeaderChecksum) {
  // 198.18.0.1 -> 198.18.0.2, ICMP, TTL 64, DF, total length 84; by hand:
  // 4500+0054+0000+4000+4001+c612+0001+c612+0002 = 2517c -> 517e -> ae81.
  uint8_t h[20] = {0x45, 0x00, 0x00, 0x54, 0x00, 0x00, 0x40, 0x00, 0x40, 0x01,
                   0x00, 0x00, 198,  18,   0,    1,    198,  18,   0,    2};
  EXPECT_EQ(csum_fold(csum_partial(h, 20, 0)), 0xae81);
  EXPECT_FALSE(ipv4_checksum_ok(h, 20));
  h[10] = 0xae;
  h[11] = 0x81;
  EXPECT_TRUE(ipv4_checksum_ok(h, 20));
  h[8] = 0x3f;  // TTL changed, checksum not updated
  EXPECT_FALSE(ipv4_checksum_ok(h, 20));
}

// UDP 198.18.0.1:0x1234 -> 198.18.0.2:4789, 5 payload bytes "abcde"
// (length 13, odd). Pseudo-header c612 0001 c612 0002 0011 000d sums to 8c46;
// the whole datagram's checksum is 24fc.
TEST(InetTest, PseudoHeaderIpv4) {
  const uint8_t src[4] = {198, 18, 0, 1}, dst[4] = {198, 18, 0, 2};
  uint32_t ph = csum_pseudo4(src, dst, 13, kIpProtoUdp);
  EXPECT_EQ(csum_fold(ph), uint16_t(~0x8c46 & 0xFFFF));
  uint8_t udp[13] = {0x12, 0x34, 0x12, 0xb5, 0x00, 0x0d, 0x00, 0x00, 'a', 'b', 'c', 'd', 'e'};
  uint16_t c = csum_fold(csum_partial(udp, 13, ph));
  EXPECT_EQ(c, 0x24fc);
  udp[6] = uint8_t(c >> 8);
  udp[7] = uint8_t(c);
  EXPECT_EQ(csum_fold(csum_partial(udp, 13, csum_pseudo4(src, dst, 13, kIpProtoUdp))), 0)
      << "a datagram with its checksum in place verifies to zero";
}

// The same datagram over IPv6, 2001:db8::1 -> 2001:db8::2 (RFC 8200 8.1
// pseudo-header: addresses, 32-bit length, 24 zero bits, next header):
// pseudo-header sums to 5b93, checksum 55af.
TEST(InetTest, PseudoHeaderIpv6) {
  IpAddr s = v6("2001:db8::1"), d = v6("2001:db8::2");
  uint32_t ph = csum_pseudo6(s.b, d.b, 13, kIpProtoUdp);
  EXPECT_EQ(csum_fold(ph), uint16_t(~0x5b93 & 0xFFFF));
  uint8_t udp[13] = {0x12, 0x34, 0x12, 0xb5, 0x00, 0x0d, 0x00, 0x00, 'a', 'b', 'c', 'd', 'e'};
  EXPECT_EQ(csum_fold(csum_partial(udp, 13, ph)), 0x55af);
  // The upper 16 bits of the 32-bit length count (jumbograms).
  uint8_t pseudo[40];
  std::memcpy(pseudo, s.b, 16);
  std::memcpy(pseudo + 16, d.b, 16);
  const uint32_t big = 0x00012345;
  pseudo[32] = uint8_t(big >> 24), pseudo[33] = uint8_t(big >> 16), pseudo[34] = uint8_t(big >> 8),
  pseudo[35] = uint8_t(big);
  pseudo[36] = pseudo[37] = pseudo[38] = 0;
  pseudo[39] = kIpProtoUdp;
  EXPECT_EQ(csum_fold(csum_pseudo6(s.b, d.b, big, kIpProtoUdp)), ref_csum(pseudo, 40));
  // Addresses with every bit set: plenty of carries.
  IpAddr f = v6("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff");
  std::memcpy(pseudo, f.b, 16);
  std::memcpy(pseudo + 16, f.b, 16);
  pseudo[32] = 0, pseudo[33] = 0, pseudo[34] = 0xff, pseudo[35] = 0xff;
  pseudo[39] = kIpProtoIcmpv6;
  EXPECT_EQ(csum_fold(csum_pseudo6(f.b, f.b, 0xFFFF, kIpProtoIcmpv6)), ref_csum(pseudo, 40));
}

// ------------------------------------------------------------ solicited-node

TEST(InetTest, SolicitedNodeAddressAndMac) {
  IpAddr sn = ipv6_solicited_node(v6("2001:db8::1:2345:6789"));
  EXPECT_EQ(sn, v6("ff02::1:ff45:6789"));
  EXPECT_EQ(ipv6_multicast_mac(sn), 0x3333FF456789ull);
  EXPECT_EQ(ipv6_solicited_node(v6("2001:db8::1")), v6("ff02::1:ff00:1"));
  EXPECT_EQ(ipv6_multicast_mac(ipv6_solicited_node(v6("2001:db8::1"))), 0x3333FF000001ull);
  // Only the low 24 bits of the address matter.
  EXPECT_EQ(ipv6_solicited_node(v6("2001:db8:aaaa::ab:cdef")), ipv6_solicited_node(v6("2001:db8::ab:cdef")));
  EXPECT_EQ(ipv6_multicast_mac(v6("ff02::1")), 0x333300000001ull);
  EXPECT_EQ(ipv6_multicast_mac(v6("ff02::1:ff00:2")), 0x3333FF000002ull);
  EXPECT_TRUE(mac_is_multicast(ipv6_multicast_mac(sn)));
}

}  // namespace
}  // namespace vpc
