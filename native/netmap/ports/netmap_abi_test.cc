// The netmap ABI definitions (netmap_abi.h) against the documented layout of
// net/netmap.h, API 14, LP64. If a system header is installed, the same
// checks run against it, which keeps these numbers honest.
#include "ports/netmap_abi.h"

#include <gtest/gtest.h>

#include <cstddef>

namespace {

TEST(NetmapAbi, SlotLayout) {
  EXPECT_EQ(sizeof(netmap_slot), 16u);
  EXPECT_EQ(offsetof(netmap_slot, buf_idx), 0u);
  EXPECT_EQ(offsetof(netmap_slot, len), 4u);
  EXPECT_EQ(offsetof(netmap_slot, flags), 6u);
  EXPECT_EQ(offsetof(netmap_slot, ptr), 8u);
}

TEST(NetmapAbi, RingLayout) {
  EXPECT_EQ(offsetof(netmap_ring, buf_ofs), 0u);
  EXPECT_EQ(offsetof(netmap_ring, num_slots), 8u);
  EXPECT_EQ(offsetof(netmap_ring, nr_buf_size), 12u);
  EXPECT_EQ(offsetof(netmap_ring, ringid), 16u);
  EXPECT_EQ(offsetof(netmap_ring, dir), 18u);
  EXPECT_EQ(offsetof(netmap_ring, head), 20u);
  EXPECT_EQ(offsetof(netmap_ring, cur), 24u);
  EXPECT_EQ(offsetof(netmap_ring, tail), 28u);
  EXPECT_EQ(offsetof(netmap_ring, flags), 32u);
  EXPECT_EQ(offsetof(netmap_ring, ts), 40u);
  EXPECT_EQ(offsetof(netmap_ring, sem), 128u);  // NM_CACHE_ALIGN
  EXPECT_EQ(offsetof(netmap_ring, slot), 256u);
  EXPECT_EQ(sizeof(netmap_ring), 256u);
}

TEST(NetmapAbi, InterfaceLayout) {
  EXPECT_EQ(offsetof(netmap_if, ni_name), 0u);
  EXPECT_EQ(offsetof(netmap_if, ni_version), 16u);
  EXPECT_EQ(offsetof(netmap_if, ni_flags), 20u);
  EXPECT_EQ(offsetof(netmap_if, ni_tx_rings), 24u);
  EXPECT_EQ(offsetof(netmap_if, ni_rx_rings), 28u);
  EXPECT_EQ(offsetof(netmap_if, ni_bufs_head), 32u);
  EXPECT_EQ(offsetof(netmap_if, ring_ofs), 56u);
  EXPECT_EQ(sizeof(netmap_if), 56u);
}

TEST(NetmapAbi, RequestLayout) {
  EXPECT_EQ(sizeof(nmreq_header), 88u);
  EXPECT_EQ(offsetof(nmreq_header, nr_version), 0u);
  EXPECT_EQ(offsetof(nmreq_header, nr_reqtype), 2u);
  EXPECT_EQ(offsetof(nmreq_header, nr_reserved), 4u);
  EXPECT_EQ(offsetof(nmreq_header, nr_name), 8u);
  EXPECT_EQ(sizeof(nmreq_header::nr_name), 64u);
  EXPECT_EQ(offsetof(nmreq_header, nr_options), 72u);
  EXPECT_EQ(offsetof(nmreq_header, nr_body), 80u);

  EXPECT_EQ(sizeof(nmreq_register), 48u);
  EXPECT_EQ(offsetof(nmreq_register, nr_offset), 0u);
  EXPECT_EQ(offsetof(nmreq_register, nr_memsize), 8u);
  EXPECT_EQ(offsetof(nmreq_register, nr_tx_slots), 16u);
  EXPECT_EQ(offsetof(nmreq_register, nr_rx_slots), 20u);
  EXPECT_EQ(offsetof(nmreq_register, nr_tx_rings), 24u);
  EXPECT_EQ(offsetof(nmreq_register, nr_rx_rings), 26u);
  EXPECT_EQ(offsetof(nmreq_register, nr_mem_id), 28u);
  EXPECT_EQ(offsetof(nmreq_register, nr_ringid), 30u);
  EXPECT_EQ(offsetof(nmreq_register, nr_mode), 32u);
  EXPECT_EQ(offsetof(nmreq_register, nr_extra_bufs), 36u);
  EXPECT_EQ(offsetof(nmreq_register, nr_flags), 40u);
}

TEST(NetmapAbi, IoctlNumbersAndConstants) {
  // _IOWR('i', 151, 88 bytes) = dir 3 << 30 | 88 << 16 | 'i' << 8 | 151.
  EXPECT_EQ(static_cast<unsigned long>(NIOCCTRL), 0xC0586997ul);
  EXPECT_EQ(static_cast<unsigned long>(NIOCTXSYNC), 0x6994ul);
  EXPECT_EQ(static_cast<unsigned long>(NIOCRXSYNC), 0x6995ul);
  EXPECT_EQ(NETMAP_REQ_REGISTER, 1);
  EXPECT_EQ(NR_REG_ALL_NIC, 1);
  EXPECT_EQ(NR_REG_SW, 2);
  EXPECT_EQ(NR_REG_ONE_NIC, 4);
  EXPECT_EQ(NR_EXCLUSIVE, 0x800);
  EXPECT_EQ(NS_MOREFRAG, 0x20);
}

}  // namespace
