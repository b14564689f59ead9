// Shared by the engine's offload tests (core/egress_test.cc,
// overlay/vxlan_test.cc): the state a guest's virtio_net_hdr gives a frame
// built by proto/test_frames.h, and an independent check of a segmentation.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/offload.h"
#include "proto/test_frames.h"

namespace vpc::testutil {

// The checksum-partial TSO state a guest's virtio_net_hdr gives a built frame.
inline OffloadMeta tso_meta(const testframes::Built& b, bool v6, uint16_t mss) {
  OffloadMeta m;
  m.flags = OffloadMeta::kNeedsCsum;
  m.gso_type = v6 ? OffloadMeta::kGsoTcpv6 : OffloadMeta::kGsoTcpv4;
  m.gso_size = mss;
  m.csum_start = uint16_t(b.l4_off);
  m.csum_offset = 16;
  m.hdr_len = uint16_t(b.hdr_len);
  return m;
}

// Checks that segs are a correct TCP segmentation of `super` (built by
// testframes::build, l3 at l3_off): IP and TCP checksums verify, every IP
// packet is within mtu, sequence numbers are contiguous, PSH only on the
// last, and the payloads put together are the super-frame's payload.
inline void expect_segments(const std::vector<testframes::Bytes>& segs, const testframes::Built& super, bool v6,
                            uint32_t mtu, uint16_t mss) {
  const uint32_t l3 = super.l3_off, l4 = super.l4_off, hl = super.hdr_len;
  const testframes::Bytes& S = super.f;
  const uint32_t total = uint32_t(S.size()) - hl;
  ASSERT_EQ(segs.size(), (total + mss - 1) / mss) << "segment count";
  uint32_t seq = load_be32(S.data() + l4 + 4), off = 0;
  for (size_t i = 0; i < segs.size(); ++i) {
    const testframes::Bytes& g = segs[i];
    SCOPED_TRACE("segment " + std::to_string(i));
    ASSERT_GE(g.size(), hl);
    EXPECT_TRUE(std::equal(g.begin(), g.begin() + l3, S.begin())) << "Ethernet header and tags copied";
    const uint8_t* ip = g.data() + l3;
    const uint32_t ip_len = uint32_t(g.size()) - l3;
    EXPECT_LE(ip_len, mtu) << "within the MTU";
    if (!v6) {
      EXPECT_EQ(load_be16(ip + 2), ip_len);
      EXPECT_EQ(testframes::ref_sum(ip, l4 - l3), 0xFFFFu) << "IPv4 header checksum";
      EXPECT_EQ(load_be16(ip + 4), uint16_t(load_be16(S.data() + l3 + 4) + i)) << "IPv4 ID";
    } else {
      EXPECT_EQ(load_be16(ip + 4), ip_len - kIpv6HeaderLen);
    }
    const uint8_t* t = g.data() + l4;
    const uint32_t l4_len = uint32_t(g.size()) - l4;
    EXPECT_EQ(testframes::ref_sum(t, l4_len, testframes::ref_pseudo(ip, kIpProtoTcp, l4_len)), 0xFFFFu)
        << "TCP checksum";
    EXPECT_EQ(load_be32(t + 4), seq) << "sequence number";
    const uint32_t pl = uint32_t(g.size()) - hl;
    EXPECT_EQ(pl, std::min<uint32_t>(mss, total - off));
    const bool last = i + 1 == segs.size();
    EXPECT_EQ((t[13] & 0x08) != 0, last) << "PSH on the last segment only";
    EXPECT_TRUE(std::equal(g.begin() + hl, g.end(), S.begin() + hl + off)) << "payload bytes";
    seq += pl;
    off += pl;
  }
  EXPECT_EQ(off, total) << "every payload byte delivered once";
}

}  // namespace vpc::testutil
