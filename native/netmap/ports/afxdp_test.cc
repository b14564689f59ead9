// AF_XDP port: descriptor address <-> Pkt mapping, and the errors that need
// neither root nor a real interface. Traffic is tested by
// test/ports/afxdp.test.ts (root, namespaces).
#include "ports/afxdp.h"

#include <gtest/gtest.h>

#include <cstring>

#include "core/offload_test_util.h"
#include "proto/gso.h"

namespace vpc {
namespace {

TEST(Afxdp, AddressMapping) {
  for (uint32_t shift : {11u, 12u}) {
    for (uint32_t buf : {0u, 1u, 777u, 65535u}) {
      for (uint32_t off : {0u, 128u, 256u, (1u << shift) - 64}) {
        uint64_t a = xsk_addr_of(buf, off, shift);
        EXPECT_EQ(a, (uint64_t(buf) << shift) + off);
        Pkt p = xsk_pkt_of(a, 1514, shift);
        EXPECT_EQ(p.buf, buf);
        EXPECT_EQ(p.off, off);
        EXPECT_EQ(p.len, 1514);
      }
    }
  }
  // Buffer indices beyond 32 bits of address still map back (large pools).
  EXPECT_EQ(xsk_pkt_of(xsk_addr_of(3000000u, 256, 11), 60, 11).buf, 3000000u);
}

// An Ethernet/IPv4/TCP frame with a correct checksum; returns its length.
static uint32_t tcp_frame(uint8_t* f) {
  std::memset(f, 0, 128);
  f[12] = 0x08; f[13] = 0x00;
  uint8_t* ip = f + 14;
  ip[0] = 0x45; ip[3] = 20 + 20 + 10;  // total length 50
  ip[8] = 64; ip[9] = 6;
  ip[12] = 198; ip[13] = 18; ip[14] = 1; ip[15] = 1;
  ip[16] = 198; ip[17] = 18; ip[18] = 1; ip[19] = 2;
  uint8_t* tcp = ip + 20;
  tcp[0] = 0x30; tcp[1] = 0x39; tcp[2] = 0x14; tcp[3] = 0x51; tcp[12] = 0x50; tcp[13] = 0x18;
  for (int i = 0; i < 10; ++i) tcp[20 + i] = uint8_t(i * 37 + 1);
  // Pseudo header + segment, complemented.
  uint64_t s = 0;
  auto add = [&](const uint8_t* p, int n) { for (int i = 0; i < n; i += 2) s += uint32_t(p[i]) << 8 | (i + 1 < n ? p[i + 1] : 0); };
  add(ip + 12, 8);
  s += 6 + 30;
  add(tcp, 30);
  while (s >> 16) s = (s & 0xFFFF) + (s >> 16);
  uint16_t c = uint16_t(~s);
  tcp[16] = uint8_t(c >> 8);
  tcp[17] = uint8_t(c);
  return 14 + 50;
}

TEST(Afxdp, HiddenPartialChecksumIsCompletedAndCorrectOnesAreLeftAlone) {
  uint8_t good[128], f[128];
  uint32_t len = tcp_frame(good);
  std::memcpy(f, good, sizeof f);
  EXPECT_FALSE(complete_hidden_partial_checksum(f, len));
  EXPECT_EQ(0, std::memcmp(f, good, sizeof f));
  // The same frame as Linux hands it over with CHECKSUM_PARTIAL: the field
  // holds the folded pseudo-header sum.
  uint8_t* ip = f + 14;
  uint64_t s = (uint32_t(ip[12]) << 8 | ip[13]) + (uint32_t(ip[14]) << 8 | ip[15]) + (uint32_t(ip[16]) << 8 | ip[17]) +
               (uint32_t(ip[18]) << 8 | ip[19]) + 6 + 30;
  while (s >> 16) s = (s & 0xFFFF) + (s >> 16);
  f[14 + 20 + 16] = uint8_t(s >> 8);
  f[14 + 20 + 17] = uint8_t(s);
  EXPECT_TRUE(complete_hidden_partial_checksum(f, len));
  EXPECT_EQ(0, std::memcmp(f, good, sizeof f));
  // A wrong checksum that is not the pseudo-header sum is not "fixed".
  f[14 + 20 + 17] ^= 1;
  EXPECT_FALSE(complete_hidden_partial_checksum(f, len));
}

// A TSO batch that XDP handed over without its GSO state (generic XDP, or
// multi-buffer): the state is rebuilt from the MTU, and segmenting with it
// gives what the sender's kernel would have sent (checked independently).
TEST(Afxdp, TsoStateOfAnOversizedTcpFrameIsRebuiltFromTheMtu) {
  struct Case {
    bool v6;
    std::vector<uint16_t> tags;
    uint32_t tcp_opt, payload, mtu;
  } cases[] = {
      {false, {}, 12, 65000, 1500},       // IPv4, timestamps: segments of 1448
      {true, {}, 12, 64000, 1500},        // IPv6: 1428
      {false, {0x8100}, 0, 20000, 9000},  // tagged, jumbo MTU, no options: 8960
      {true, {0x88A8, 0x8100}, 20, 3001, 1400},  // two tags, odd sizes
  };
  for (const Case& c : cases) {
    testframes::Spec sp;
    sp.v6 = c.v6;
    sp.tpids = c.tags;
    sp.tcp_opt = c.tcp_opt;
    sp.payload = c.payload;
    sp.full_csum = false;  // as the sender's kernel leaves it: pseudo-header sum
    const testframes::Built b = testframes::build(sp);
    SCOPED_TRACE((c.v6 ? "IPv6 payload " : "IPv4 payload ") + std::to_string(c.payload) + " mtu " +
                 std::to_string(c.mtu));
    OffloadMeta m;
    ASSERT_TRUE(infer_tso(b.f.data(), uint32_t(b.f.size()), c.mtu, &m));
    const uint16_t mss = uint16_t(c.mtu - (b.hdr_len - b.l3_off));
    EXPECT_EQ(m.gso_size, mss);
    EXPECT_EQ(m.gso_kind(), c.v6 ? OffloadMeta::kGsoTcpv6 : OffloadMeta::kGsoTcpv4);
    EXPECT_TRUE(m.needs_csum());
    EXPECT_EQ(m.csum_start, b.l4_off);
    EXPECT_EQ(m.csum_offset, 16);
    EXPECT_EQ(m.hdr_len, b.hdr_len);
    FrameLayout L;
    ASSERT_TRUE(frame_layout(b.f.data(), uint32_t(b.f.size()), &L));
    const uint32_t n = gso_segments(b.f.data(), uint32_t(b.f.size()), m, L, m.gso_size);
    std::vector<testframes::Bytes> segs(n);
    for (uint32_t i = 0; i < n; ++i) {
      segs[i].resize(gso_max_segment_len(L, m.gso_size));
      segs[i].resize(gso_write_segment(b.f.data(), uint32_t(b.f.size()), L, m.gso_size, i, segs[i].data(),
                                       uint32_t(segs[i].size())));
    }
    testutil::expect_segments(segs, b, c.v6, c.mtu, mss);
  }
}

TEST(Afxdp, FramesWithinTheMtuAndNonTcpFramesGetNoTsoState) {
  OffloadMeta m;
  m.gso_size = 77;  // untouched when the answer is no
  testframes::Spec sp;
  sp.payload = 1460;  // IP packet of exactly 1500 bytes
  testframes::Built b = testframes::build(sp);
  EXPECT_FALSE(infer_tso(b.f.data(), uint32_t(b.f.size()), 1500, &m));
  EXPECT_TRUE(infer_tso(b.f.data(), uint32_t(b.f.size()), 1499, &m));  // one byte over
  m.gso_size = 77;
  sp.payload = 4000;
  sp.proto = kIpProtoUdp;  // a UDP GSO batch: its segment size cannot be known
  b = testframes::build(sp);
  EXPECT_FALSE(infer_tso(b.f.data(), uint32_t(b.f.size()), 1500, &m));
  EXPECT_TRUE(udp_batch_without_size(b.f.data(), uint32_t(b.f.size()), 1500)) << "counted as such";
  sp.v6 = true;
  b = testframes::build(sp);
  EXPECT_TRUE(udp_batch_without_size(b.f.data(), uint32_t(b.f.size()), 1500)) << "IPv6 too";
  EXPECT_FALSE(udp_batch_without_size(b.f.data(), uint32_t(b.f.size()), 9000)) << "within the MTU";
  sp.v6 = false;
  sp.proto = kIpProtoTcp;
  b = testframes::build(sp);
  EXPECT_FALSE(udp_batch_without_size(b.f.data(), uint32_t(b.f.size()), 1500)) << "TCP is rebuilt, not lost";
  EXPECT_FALSE(infer_tso(b.f.data(), 100, 1500, &m)) << "truncated";
  EXPECT_FALSE(infer_tso(b.f.data(), uint32_t(b.f.size()), 40, &m)) << "headers alone exceed the MTU";
  EXPECT_EQ(m.gso_size, 77);
}

// A TCP frame with timestamps (12 option bytes) and `payload` bytes, its
// checksum partial (as the sender's kernel leaves a TSO batch) or complete;
// and infer_tso on it.
testframes::Built tcp_frame(uint32_t payload, bool partial, bool v6 = false) {
  testframes::Spec sp;
  sp.v6 = v6;
  sp.tcp_opt = 12;
  sp.payload = payload;
  sp.full_csum = !partial;
  return testframes::build(sp);
}
bool infer(const testframes::Built& b, uint32_t mtu, OffloadMeta* m, uint32_t if_mtu = 0) {
  return infer_tso(b.f.data(), uint32_t(b.f.size()), mtu, m, if_mtu);
}

// Over a jumbo MTU a TCP frame within it but over 1500 bytes is taken as a
// batch when its checksum is partial (a guest that learnt a narrower path
// keeps sending TSO batches of any length), with the MTU's segment size, so
// that a narrower egress cuts it instead of refusing it. A complete checksum
// is a complete frame: left alone. At 1500 bytes or less nothing changes.
TEST(Afxdp, AJumboPortTakesAPartialTcpFrameOver1500BytesAsABatch) {
  OffloadMeta m;
  ASSERT_TRUE(infer(tcp_frame(4000, true), 9000, &m));
  EXPECT_EQ(m.gso_kind(), OffloadMeta::kGsoTcpv4);
  EXPECT_EQ(m.gso_size, 9000 - 52);
  EXPECT_TRUE(m.needs_csum());
  ASSERT_TRUE(infer(tcp_frame(4000, true, true), 9000, &m));
  EXPECT_EQ(m.gso_kind(), OffloadMeta::kGsoTcpv6);
  EXPECT_EQ(m.gso_size, 9000 - 72);
  m = OffloadMeta{};
  EXPECT_FALSE(infer(tcp_frame(4000, false, true), 9000, &m)) << "a complete frame";
  EXPECT_FALSE(infer(tcp_frame(1500 - 52, true), 9000, &m)) << "IP 1500: not over 1500 bytes";
  EXPECT_TRUE(infer(tcp_frame(1500 - 51, true), 9000, &m)) << "one byte over";
  m = OffloadMeta{};
  EXPECT_TRUE(infer(tcp_frame(4000, false), 1500, &m)) << "over the MTU: a batch, whatever its checksum";
}

// A port left at 1500 on an interface of 9000: segments are rebuilt for the
// port's MTU, never larger than it takes (guessed from the interface's, every
// batch of a guest that cut for 1500 was refused at ingress as oversize).
// Within the interface's MTU a complete checksum is still a complete frame.
TEST(Afxdp, SegmentsAreRebuiltForThePortsMtuNotTheInterfaces) {
  OffloadMeta m;
  ASSERT_TRUE(infer(tcp_frame(4000, true), 1500, &m, 9000));
  EXPECT_EQ(m.gso_size, 1500 - 52);
  m = OffloadMeta{};
  EXPECT_FALSE(infer(tcp_frame(4000, false), 1500, &m, 9000)) << "a complete frame within the interface's MTU";
  ASSERT_TRUE(infer(tcp_frame(9000, false), 1500, &m, 9000)) << "IP 9052, over the interface's MTU: a batch";
  EXPECT_EQ(m.gso_size, 1500 - 52);
}

// Which queues a port opens, from the spec's "@q", the queues option, the
// interface's rx queue count and the XSKMAP size (libxdp's has 64).
TEST(Afxdp, QueueRangeDefaultsToEveryQueue) {
  XskQueues q;
  std::string err;
  ASSERT_TRUE(resolve_xsk_queues("eth0", -1, 0, 4, 64, &q, &err)) << err;
  EXPECT_EQ(q, (XskQueues{0, 4, 4}));
  // Unknown count: one queue; more than a port holds: the first 16.
  ASSERT_TRUE(resolve_xsk_queues("eth0", -1, 0, 0, 64, &q, &err)) << err;
  EXPECT_EQ(q, (XskQueues{0, 1, 0}));
  ASSERT_TRUE(resolve_xsk_queues("eth0", -1, 0, 64, 64, &q, &err)) << err;
  EXPECT_EQ(q, (XskQueues{0, PortStatus::kMaxQueues, 64}));
  ASSERT_TRUE(resolve_xsk_queues("eth0", -1, 0, 32, 8, &q, &err)) << err;
  EXPECT_EQ(q.count, 8u) << "capped at the XSKMAP";
  // "@q" alone: that one queue.
  ASSERT_TRUE(resolve_xsk_queues("eth0", 2, 0, 4, 64, &q, &err)) << err;
  EXPECT_EQ(q, (XskQueues{2, 1, 4}));
}

TEST(Afxdp, QueueRangeFromQueuesOption) {
  XskQueues q;
  std::string err;
  ASSERT_TRUE(resolve_xsk_queues("eth0", -1, 1, 4, 64, &q, &err)) << err;
  EXPECT_EQ(q, (XskQueues{0, 1, 4}));
  ASSERT_TRUE(resolve_xsk_queues("eth0", 1, 3, 4, 64, &q, &err)) << err;
  EXPECT_EQ(q, (XskQueues{1, 3, 4}));
  // An unknown count does not refuse a request: bind() will tell.
  ASSERT_TRUE(resolve_xsk_queues("eth0", 5, 2, 0, 64, &q, &err)) << err;
  EXPECT_EQ(q, (XskQueues{5, 2, 0}));
}

TEST(Afxdp, QueueRangeBeyondTheInterfaceIsRefusedWithItsCount) {
  XskQueues q;
  std::string err;
  EXPECT_FALSE(resolve_xsk_queues("eth0", 2, 4, 4, 64, &q, &err));
  EXPECT_NE(err.find("queues 4"), std::string::npos) << err;
  EXPECT_NE(err.find("2-5"), std::string::npos) << err;
  EXPECT_NE(err.find("eth0 has 4 rx queues (0-3)"), std::string::npos) << err;
  EXPECT_FALSE(resolve_xsk_queues("eth0", -1, 2, 1, 64, &q, &err));
  EXPECT_NE(err.find("has 1 rx queue (0)"), std::string::npos) << err;
  EXPECT_FALSE(resolve_xsk_queues("eth0", 4, 0, 4, 64, &q, &err));
  EXPECT_NE(err.find("afxdp:eth0@4: queue 4 does not exist"), std::string::npos) << err;
  EXPECT_FALSE(resolve_xsk_queues("eth0", -1, 17, 32, 64, &q, &err));
  EXPECT_NE(err.find("at most 16"), std::string::npos) << err;
  EXPECT_FALSE(resolve_xsk_queues("eth0", 60, 8, 128, 64, &q, &err));
  EXPECT_NE(err.find("queue 67 is beyond the 64 queues"), std::string::npos) << err;
}

TEST(Afxdp, MissingInterfaceIsNotFound) {
  auto pool = BufferPool::create(BufferPoolOptions{1024, 2048, 128, false});
  PortSpec spec;
  std::string err;
  ASSERT_TRUE(parse_port_spec("afxdp:vpcnosuch0@1", &spec, &err)) << err;
  try {
    open_port(spec, KernelPortOptions{}, pool, std::make_shared<PortStatus>());
    FAIL() << "opened a missing interface";
  } catch (const PortError& e) {
    std::string m = e.what();
    if (!afxdp_built()) {
      EXPECT_EQ(e.status, Status::kInvalidArgument);
      EXPECT_NE(m.find("libxdp-dev"), std::string::npos) << m;
      EXPECT_NE(m.find("afpacket:vpcnosuch0"), std::string::npos) << m;
      GTEST_SKIP() << "AF_XDP not built (libxdp/libbpf missing): only the 'not built' message was checked";
    }
    EXPECT_EQ(e.status, Status::kNotFound) << m;
    EXPECT_NE(m.find("does not exist"), std::string::npos) << m;
    EXPECT_NE(m.find("ip link"), std::string::npos) << m;
  }
  // Asked to wait for it (a port restored from vpcd's state): made down,
  // saying why; it opens its queues when the interface appears, as after the
  // interface had gone (test/ports/afxdp.test.ts).
  KernelPortOptions wait;
  wait.wait_for_interface = true;
  auto st = std::make_shared<PortStatus>();
  auto port = open_port(spec, wait, pool, st);
  EXPECT_EQ(port->link_state(), LinkState::kDown);
  EXPECT_EQ(st->error(), "interface vpcnosuch0 does not exist (yet); the port comes up when it appears");
  Pkt burst[8];
  EXPECT_EQ(port->rx_burst(burst, 8), 0);
  port->detach();
}

TEST(Afxdp, BigBuffersAreRefused) {
  if (!afxdp_built()) GTEST_SKIP() << "AF_XDP not built (libxdp/libbpf missing)";
  auto pool = BufferPool::create(BufferPoolOptions{512, 8192, 128, false});
  PortSpec spec;
  std::string err;
  ASSERT_TRUE(parse_port_spec("afxdp:vpcnosuch0", &spec, &err)) << err;
  try {
    open_port(spec, KernelPortOptions{}, pool, std::make_shared<PortStatus>());
    FAIL();
  } catch (const PortError& e) {
    EXPECT_EQ(e.status, Status::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("4096"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace vpc
