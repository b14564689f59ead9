// Tests for proto/ethernet.h (802.1Q push/pop, big-endian helpers) and the
// MAC helpers of core/types.h.
#include "proto/ethernet.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/test_util.h"
#include "core/types.h"

namespace vpc {
namespace {

using testutil::Bytes;
using testutil::make_frame;

TEST(Ethernet, Be16LoadStore) {
  uint8_t b[2];
  store_be16(b, 0x8100);
  EXPECT_EQ(b[0], 0x81);
  EXPECT_EQ(b[1], 0x00);
  EXPECT_EQ(load_be16(b), 0x8100);
  store_be16(b, 0xABCD);
  EXPECT_EQ(load_be16(b), 0xABCD);
}

TEST(Ethernet, MacLoadStoreAndMulticastBit) {
  uint8_t b[6] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB};
  EXPECT_EQ(mac_load(b), 0x0123456789ABull);
  uint8_t o[6];
  mac_store(o, 0xFEDCBA987654ull);
  const uint8_t want[6] = {0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54};
  EXPECT_EQ(0, memcmp(o, want, 6));
  EXPECT_TRUE(mac_is_multicast(0x010000000000ull));
  EXPECT_TRUE(mac_is_multicast(kMacBroadcast));
  EXPECT_TRUE(mac_is_multicast(testutil::kMcastMac));
  EXPECT_FALSE(mac_is_multicast(0x020000000001ull));
  EXPECT_FALSE(mac_is_multicast(0xFEFFFFFFFFFFull));
}

TEST(Ethernet, VlanPushThenPopRoundTrip) {
  Bytes orig = make_frame(0x0A0B0C0D0E0Full, 0x020000000001ull, 100);
  uint8_t buf[512] = {};
  Pkt p{0, 128, uint16_t(orig.size())};
  memcpy(buf + p.off, orig.data(), orig.size());

  vlan_push(buf, p, 10);
  EXPECT_EQ(p.off, 124);
  EXPECT_EQ(p.len, 104);
  Bytes tagged(buf + p.off, buf + p.off + p.len);
  EXPECT_EQ(tagged, testutil::add_tag(orig, 10));
  EXPECT_EQ(tagged[12], 0x81);
  EXPECT_EQ(tagged[13], 0x00);
  EXPECT_EQ(tagged[14], 0x00);
  EXPECT_EQ(tagged[15], 0x0A);

  vlan_pop(buf + p.off, p);
  EXPECT_EQ(p.off, 128);
  EXPECT_EQ(p.len, 100);
  EXPECT_EQ(Bytes(buf + p.off, buf + p.off + p.len), orig);
}

TEST(Ethernet, VlanPushLargestVid) {
  Bytes orig = make_frame(kMacBroadcast, 0x020000000001ull, 60);
  uint8_t buf[256] = {};
  Pkt p{0, 64, uint16_t(orig.size())};
  memcpy(buf + p.off, orig.data(), orig.size());
  vlan_push(buf, p, 4094);
  EXPECT_EQ(load_be16(buf + p.off + 14), 4094);
  EXPECT_EQ(load_be16(buf + p.off + 16), kEtherTypeIpv4);
}

TEST(Ethernet, VlanPopKeepsPayload) {
  Bytes tagged = make_frame(0x0A0B0C0D0E0Full, 0x020000000002ull, 80, 300, kEtherTypeArp, 5);
  uint8_t buf[256] = {};
  Pkt p{0, 100, uint16_t(tagged.size())};
  memcpy(buf + p.off, tagged.data(), tagged.size());
  vlan_pop(buf + p.off, p);
  EXPECT_EQ(p.off, 104);
  EXPECT_EQ(p.len, 76);
  Bytes got(buf + p.off, buf + p.off + p.len);
  EXPECT_EQ(got, testutil::strip_tag(tagged));
  EXPECT_EQ(load_be16(got.data() + 12), kEtherTypeArp);
}

TEST(MacText, ParseGood) {
  Mac m = 0;
  ASSERT_TRUE(mac_parse("aa:bb:cc:dd:ee:ff", &m));
  EXPECT_EQ(m, 0xAABBCCDDEEFFull);
  ASSERT_TRUE(mac_parse("00-11-22-33-44-55", &m));
  EXPECT_EQ(m, 0x001122334455ull);
  ASSERT_TRUE(mac_parse("0A:0b:C0:d0:E0:f0", &m));
  EXPECT_EQ(m, 0x0A0BC0D0E0F0ull);
  ASSERT_TRUE(mac_parse("ff:ff:ff:ff:ff:ff", &m));
  EXPECT_EQ(m, kMacBroadcast);
  ASSERT_TRUE(mac_parse("00:00:00:00:00:00", &m));
  EXPECT_EQ(m, 0u);
}

TEST(MacText, ParseBadLeavesOutputUntouched) {
  const char* bad[] = {
      "",
      "aa:bb:cc:dd:ee",        // too short
      "aa:bb:cc:dd:ee:f",      // last group one digit
      "aa:bb:cc:dd:ee:ff:00",  // too long
      "aa:bb:cc:dd:ee:ff ",    // trailing space
      " aa:bb:cc:dd:ee:ff",    // leading space
      "aabbccddeeff",          // no separators
      "aa.bb.cc.dd.ee.ff",     // wrong separator
      "ag:bb:cc:dd:ee:ff",     // not hex
      "a:bb:cc:dd:ee:ff",      // short first group
      "aaa:bb:cc:dd:ee:ff",
      "aa::bb:cc:dd:ee:ff",
  };
  for (const char* s : bad) {
    Mac m = 0x123;
    EXPECT_FALSE(mac_parse(s, &m)) << "'" << s << "'";
    EXPECT_EQ(m, 0x123u) << "'" << s << "'";
  }
  Mac m = 7;
  EXPECT_FALSE(mac_parse(nullptr, &m));
  EXPECT_EQ(m, 7u);
}

TEST(MacText, FormatAndRoundTrip) {
  char b[18];
  memset(b, 'x', sizeof(b));
  mac_format(0xAABBCCDDEEFFull, b);
  EXPECT_STREQ(b, "aa:bb:cc:dd:ee:ff");
  mac_format(0x000102030405ull, b);
  EXPECT_STREQ(b, "00:01:02:03:04:05");
  mac_format(0, b);
  EXPECT_STREQ(b, "00:00:00:00:00:00");
  // Bits above 48 are ignored.
  mac_format(0xFFFF000000000001ull, b);
  EXPECT_STREQ(b, "00:00:00:00:00:01");
  for (Mac m : {Mac(0x020000000001ull), Mac(0xFEDCBA987654ull), kMacBroadcast, Mac(0x01005E7F0001ull)}) {
    mac_format(m, b);
    Mac back = 0;
    ASSERT_TRUE(mac_parse(b, &back)) << b;
    EXPECT_EQ(back, m);
  }
}

}  // namespace
}  // namespace vpc
