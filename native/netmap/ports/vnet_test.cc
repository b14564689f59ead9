// The virtio_net_hdr checks of the kernel backends (ports/vnet.h).
#include "ports/vnet.h"

#include <gtest/gtest.h>

#include <cstring>

namespace vpc {
namespace {

// A header as the kernel writes it (little endian).
struct Hdr {
  uint8_t b[kVnetHdrLen] = {};
  Hdr(uint8_t flags, uint8_t gso, uint16_t hdr_len, uint16_t gso_size, uint16_t start, uint16_t off) {
    b[0] = flags;
    b[1] = gso;
    const uint16_t v[4] = {hdr_len, gso_size, start, off};
    for (int i = 0; i < 4; ++i) {
      b[2 + 2 * i] = uint8_t(v[i]);
      b[3 + 2 * i] = uint8_t(v[i] >> 8);
    }
  }
};

TEST(Vnet, ZeroHeaderIsAPlainFrame) {
  Hdr h(0, 0, 0, 0, 0, 0);
  OffloadMeta m;
  m.flags = 0x55;  // untouched for a plain frame
  EXPECT_EQ(vnet_read(h.b, 60, &m), VnetVerdict::kPlain);
  EXPECT_EQ(m.flags, 0x55);
  // DATA_VALID alone leaves nothing to do either.
  Hdr v(OffloadMeta::kDataValid, 0, 0, 0, 0, 0);
  EXPECT_EQ(vnet_read(v.b, 60, &m), VnetVerdict::kPlain);
}

TEST(Vnet, TsoFrameFromAVethGuest) {
  // 14 + 20 + 32 header bytes, MSS 1448, TCP checksum at 34 + 16.
  Hdr h(OffloadMeta::kNeedsCsum, OffloadMeta::kGsoTcpv4 | OffloadMeta::kGsoEcn, 66, 1448, 34, 16);
  OffloadMeta m;
  ASSERT_EQ(vnet_read(h.b, 65000, &m), VnetVerdict::kOffload);
  EXPECT_TRUE(m.needs_csum());
  EXPECT_EQ(m.gso_kind(), OffloadMeta::kGsoTcpv4);
  EXPECT_EQ(m.gso_type & OffloadMeta::kGsoEcn, OffloadMeta::kGsoEcn);
  EXPECT_EQ(m.hdr_len, 66);
  EXPECT_EQ(m.gso_size, 1448);
  EXPECT_EQ(m.csum_start, 34);
  EXPECT_EQ(m.csum_offset, 16);
  // Written back, byte for byte, as it came.
  uint8_t out[kVnetHdrLen];
  vnet_write(&m, out);
  EXPECT_EQ(std::memcmp(out, h.b, kVnetHdrLen), 0);
}

TEST(Vnet, ChecksumPartialUdpAndTcpv6) {
  OffloadMeta m;
  Hdr udp(OffloadMeta::kNeedsCsum, 0, 0, 0, 34, 6);
  ASSERT_EQ(vnet_read(udp.b, 42, &m), VnetVerdict::kOffload);  // field at 40..41: the last two bytes
  EXPECT_FALSE(m.gso());
  Hdr v6(OffloadMeta::kNeedsCsum, OffloadMeta::kGsoTcpv6, 86, 1428, 54, 16);
  ASSERT_EQ(vnet_read(v6.b, 30000, &m), VnetVerdict::kOffload);
  EXPECT_EQ(m.gso_kind(), OffloadMeta::kGsoTcpv6);
}

TEST(Vnet, RefusesWhatTheSwitchCannotTrust) {
  OffloadMeta m;
  const struct {
    Hdr h;
    uint32_t len;
    const char* what;
  } bad[] = {
      {Hdr(OffloadMeta::kNeedsCsum, OffloadMeta::kGsoUdp, 42, 1472, 34, 6), 9000, "UFO"},
      {Hdr(OffloadMeta::kNeedsCsum, 9, 66, 1448, 34, 16), 9000, "unknown GSO type"},
      {Hdr(OffloadMeta::kNeedsCsum, OffloadMeta::kGsoTcpv4, 66, 0, 34, 16), 9000, "zero segment size"},
      {Hdr(OffloadMeta::kNeedsCsum, 0, 0, 0, 34, 16), 51, "checksum field one byte past the end"},
      {Hdr(OffloadMeta::kNeedsCsum, 0, 0, 0, 0xFFFF, 0xFFFF), 9000, "checksum far outside"},
      {Hdr(0x04, 0, 0, 0, 0, 0), 60, "unknown flag"},
      {Hdr(OffloadMeta::kNeedsCsum, OffloadMeta::kGsoEcn, 0, 0, 34, 16), 60, "ECN without GSO"},
  };
  for (const auto& b : bad) EXPECT_EQ(vnet_read(b.h.b, b.len, &m), VnetVerdict::kInvalid) << b.what;
}

TEST(Vnet, WritesAZeroHeaderForAPlainFrameAndDropsDataValid) {
  uint8_t out[kVnetHdrLen];
  std::memset(out, 0xAA, sizeof(out));
  vnet_write(nullptr, out);
  for (uint8_t b : out) EXPECT_EQ(b, 0);
  OffloadMeta m;
  m.flags = OffloadMeta::kNeedsCsum | OffloadMeta::kDataValid;
  m.csum_start = 34;
  m.csum_offset = 16;
  vnet_write(&m, out);
  EXPECT_EQ(out[0], OffloadMeta::kNeedsCsum);
  EXPECT_EQ(out[6], 34);
  EXPECT_EQ(out[8], 16);
}

}  // namespace
}  // namespace vpc
