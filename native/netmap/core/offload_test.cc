// Tests for core/offload.h: the virtio_net_hdr wire layout, the offsets moved
// by a tag, and which port bits a frame's state needs.
#include "core/offload.h"

#include <gtest/gtest.h>

namespace vpc {
namespace {

TEST(Offload, VnetHeaderRoundTripIsLittleEndian) {
  OffloadMeta m;
  m.flags = OffloadMeta::kNeedsCsum;
  m.gso_type = OffloadMeta::kGsoTcpv6 | OffloadMeta::kGsoEcn;
  m.hdr_len = 0x0102;
  m.gso_size = 0x0304;
  m.csum_start = 0x0506;
  m.csum_offset = 0x0708;
  uint8_t h[kVnetHdrLen];
  offload_to_vnet(m, h);
  const uint8_t want[kVnetHdrLen] = {1, 0x84, 0x02, 0x01, 0x04, 0x03, 0x06, 0x05, 0x08, 0x07};
  for (uint32_t i = 0; i < kVnetHdrLen; ++i) EXPECT_EQ(h[i], want[i]) << i;
  OffloadMeta back;
  ASSERT_TRUE(offload_from_vnet(h, &back));
  EXPECT_EQ(back.flags, m.flags);
  EXPECT_EQ(back.gso_type, m.gso_type);
  EXPECT_EQ(back.hdr_len, m.hdr_len);
  EXPECT_EQ(back.gso_size, m.gso_size);
  EXPECT_EQ(back.csum_start, m.csum_start);
  EXPECT_EQ(back.csum_offset, m.csum_offset);
  EXPECT_EQ(back.gso_kind(), OffloadMeta::kGsoTcpv6);
}

TEST(Offload, VnetHeaderRefusesUfoUnknownTypesAndZeroSegmentSize) {
  uint8_t h[kVnetHdrLen] = {1, OffloadMeta::kGsoUdp, 0, 0, 0xb8, 0x05, 34, 0, 6, 0};
  OffloadMeta m;
  EXPECT_FALSE(offload_from_vnet(h, &m)) << "UFO";
  h[1] = 2;
  EXPECT_FALSE(offload_from_vnet(h, &m)) << "type 2 does not exist";
  h[1] = OffloadMeta::kGsoTcpv4;
  EXPECT_TRUE(offload_from_vnet(h, &m));
  h[4] = h[5] = 0;
  EXPECT_FALSE(offload_from_vnet(h, &m)) << "GSO with gso_size 0";
  const uint8_t plain[kVnetHdrLen] = {};
  EXPECT_TRUE(offload_from_vnet(plain, &m));
  EXPECT_FALSE(m.pending());
}

TEST(Offload, ShiftMovesOnlyValidOffsets) {
  OffloadMeta m;
  m.flags = OffloadMeta::kNeedsCsum;
  m.csum_start = 38;
  m.hdr_len = 70;
  offload_shift(m, -4);
  EXPECT_EQ(m.csum_start, 34);
  EXPECT_EQ(m.hdr_len, 66);
  offload_shift(m, 4);
  EXPECT_EQ(m.csum_start, 38);
  OffloadMeta none;
  offload_shift(none, 4);
  EXPECT_EQ(none.csum_start, 0) << "no partial checksum: csum_start means nothing and stays";
  EXPECT_EQ(none.hdr_len, 0);
}

TEST(Offload, NeedsNamesThePortBits) {
  OffloadMeta m;
  EXPECT_EQ(offload_needs(m), 0u);
  m.flags = OffloadMeta::kNeedsCsum;
  EXPECT_EQ(offload_needs(m), uint32_t(kOffCsum));
  m.gso_type = OffloadMeta::kGsoTcpv4;
  EXPECT_EQ(offload_needs(m), uint32_t(kOffCsum | kOffTso4));
  m.gso_type = OffloadMeta::kGsoTcpv6 | OffloadMeta::kGsoEcn;
  EXPECT_EQ(offload_needs(m), uint32_t(kOffCsum | kOffTso6 | kOffTsoEcn));
  m.gso_type = OffloadMeta::kGsoUdpL4;
  EXPECT_EQ(offload_needs(m), uint32_t(kOffCsum | kOffUso));
  m.gso_type = OffloadMeta::kGsoUdp;
  EXPECT_NE(offload_needs(m) & ~uint32_t(kOffAll), 0u) << "UFO: no port takes it as it is";
  m.flags = OffloadMeta::kDataValid;
  m.gso_type = OffloadMeta::kGsoNone;
  EXPECT_EQ(offload_needs(m), 0u) << "DATA_VALID alone asks nothing of the egress";
}

}  // namespace
}  // namespace vpc
