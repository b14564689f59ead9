// Super-frames with their offload state through the kernel backends, driven
// directly (no engine), each test alone in a network namespace of its own:
// the kernel's side is an AF_PACKET socket with PACKET_VNET_HDR on the other
// end (the tap's interface, or the peer of the port's veth). Needs root;
// skipped with the reason otherwise.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "ports/afpacket.h"
#include "ports/ifutil.h"
#include "ports/tap.h"
#include "ports/test_netns.h"
#include "ports/vnet.h"
#include "proto/ethernet.h"
#include "proto/inet.h"

namespace vpc {
namespace {

std::shared_ptr<BufferPool> pool_with_large() {
  BufferPoolOptions o;
  o.count = 4096;
  o.large_count = 32;
  o.hugepages = false;
  return BufferPool::create(o);
}

constexpr uint16_t kMss = 1448;

// Ethernet [+ 802.1Q] / IPv4 (198.18.0.1 -> 198.18.0.2, DF) with `l4_len`
// bytes of `proto` behind it, from port 40000 to port 5201 (the flow the
// helpers below pick out); returns the frame and, in *l4, where L4 starts.
std::vector<uint8_t> ipv4_frame(uint8_t proto, uint32_t l4_len, uint16_t vlan, uint32_t* l4) {
  const uint32_t l2 = vlan ? 18 : 14;
  std::vector<uint8_t> f(l2 + 20 + l4_len, 0);
  const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 2}, src[6] = {0x02, 0, 0, 0, 0, 1};
  std::memcpy(f.data(), dst, 6);
  std::memcpy(f.data() + 6, src, 6);
  if (vlan) {
    f[12] = 0x81;
    f[14] = uint8_t(vlan >> 8);
    f[15] = uint8_t(vlan);
  }
  f[l2 - 2] = 0x08;
  uint8_t* ip = f.data() + l2;
  ip[0] = 0x45;
  ip[2] = uint8_t((20 + l4_len) >> 8);
  ip[3] = uint8_t(20 + l4_len);
  ip[6] = 0x40;  // DF
  ip[8] = 64;
  ip[9] = proto;
  const uint8_t sip[4] = {198, 18, 0, 1}, dip[4] = {198, 18, 0, 2};
  std::memcpy(ip + 12, sip, 4);
  std::memcpy(ip + 16, dip, 4);
  uint8_t* ports = ip + 20;
  ports[0] = 40000 >> 8;
  ports[1] = 40000 & 0xFF;
  ports[2] = 5201 >> 8;
  ports[3] = 5201 & 0xFF;
  *l4 = l2 + 20;
  return f;
}

// TCP with `payload` bytes of pattern; the TCP checksum field holds a marker.
std::vector<uint8_t> tcp4_frame(uint32_t payload, uint16_t vlan = 0) {
  uint32_t l4;
  std::vector<uint8_t> f = ipv4_frame(6, 20 + payload, vlan, &l4);
  uint8_t* tcp = f.data() + l4;
  tcp[12] = 0x50;
  tcp[13] = 0x18;  // ACK PSH
  tcp[14] = 0xFF;
  tcp[16] = 0xAB;  // checksum field: a marker (partial checksums are not verified on these paths)
  tcp[17] = 0xCD;
  for (uint32_t i = 0; i < payload; ++i) tcp[20 + i] = uint8_t(i * 7 + 3);
  return f;
}

// A UDP GSO batch of `payload` bytes (the UDP length covers the whole batch,
// as the kernel's own have it).
std::vector<uint8_t> udp4_batch(uint32_t payload) {
  uint32_t l4;
  std::vector<uint8_t> f = ipv4_frame(17, 8 + payload, 0, &l4);
  uint8_t* udp = f.data() + l4;
  udp[4] = uint8_t((8 + payload) >> 8);
  udp[5] = uint8_t(8 + payload);
  for (uint32_t i = 0; i < payload; ++i) udp[8 + i] = uint8_t(i * 11 + 5);
  return f;
}

OffloadMeta tso4_meta(uint32_t l2) {
  OffloadMeta m;
  m.flags = OffloadMeta::kNeedsCsum;
  m.gso_type = OffloadMeta::kGsoTcpv4;
  m.gso_size = kMss;
  m.hdr_len = uint16_t(l2 + 40);
  m.csum_start = uint16_t(l2 + 20);
  m.csum_offset = 16;
  return m;
}

OffloadMeta uso4_meta(uint16_t seg) {
  OffloadMeta m;
  m.flags = OffloadMeta::kNeedsCsum;
  m.gso_type = OffloadMeta::kGsoUdpL4;
  m.gso_size = seg;
  m.hdr_len = 14 + 28;
  m.csum_start = 14 + 20;
  m.csum_offset = 6;
  return m;
}

// Linux 6.2 or later: taps take UDP GSO (TUN_F_USO4/6).
bool kernel_has_tap_uso() {
  utsname u{};
  unsigned major = 0, minor = 0;
  if (uname(&u) != 0 || std::sscanf(u.release, "%u.%u", &major, &minor) != 2) return false;
  return major > 6 || (major == 6 && minor >= 2);
}

// The kernel's side: a packet socket with virtio-net headers on `ifname`.
struct VnetSocket {
  int fd = -1;
  explicit VnetSocket(const char* ifname) {
    fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    int one = 1;
    setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one));
    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
    sockaddr_ll sa{};
    sa.sll_family = AF_PACKET;
    sa.sll_protocol = htons(ETH_P_ALL);
    sa.sll_ifindex = int(if_nametoindex(ifname));
    bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  }
  ~VnetSocket() { close(fd); }
  void send(const std::vector<uint8_t>& f, const OffloadMeta* m) {
    uint8_t h[kVnetHdrLen];
    vnet_write(m, h);
    iovec iov[2] = {{h, sizeof(h)}, {const_cast<uint8_t*>(f.data()), f.size()}};
    msghdr mh{};
    mh.msg_iov = iov;
    mh.msg_iovlen = 2;
    ASSERT_EQ(sendmsg(fd, &mh, 0), ssize_t(sizeof(h) + f.size())) << strerror(errno);
  }
  // The next frame of the test's flows (TCP or UDP to port 5201), header split off;
  // an empty frame after the timeout.
  std::vector<uint8_t> receive(OffloadMeta* m, int timeout_ms = 2000) {
    std::vector<uint8_t> b(70000);
    for (;;) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, timeout_ms) <= 0) return {};
      ssize_t r = recv(fd, b.data(), b.size(), 0);
      if (r < ssize_t(kVnetHdrLen + 54)) continue;
      std::vector<uint8_t> f(b.begin() + kVnetHdrLen, b.begin() + r);
      if (f[12] != 0x08 || (f[23] != 6 && f[23] != 17) || f[36] != (5201 >> 8) || f[37] != (5201 & 0xFF)) continue;
      *m = OffloadMeta{};
      vnet_read(b.data(), uint32_t(f.size()), m);
      return f;
    }
  }
};

// Receives from `port` until `want` frames of the test's flow came (or a
// second passed); the interface's own chatter (IPv6 solicitations) is freed.
std::vector<Pkt> take(Port& port, BufferCache& cache, uint32_t want) {
  std::vector<Pkt> got;
  Pkt burst[kMaxBurst];
  const BufferPool& pool = cache.pool();
  for (int i = 0; i < 1000 && got.size() < want; ++i) {
    uint16_t n = port.rx_burst(burst, kMaxBurst);
    for (uint16_t k = 0; k < n; ++k) {
      const uint8_t* f = pool.frame(burst[k]);
      const uint32_t l2 = f[12] == 0x81 ? 18 : 14;
      if (burst[k].len >= l2 + 28 && f[l2 - 2] == 0x08 && (f[l2 + 9] == 6 || f[l2 + 9] == 17) && f[l2 + 22] == (5201 >> 8))
        got.push_back(burst[k]);
      else cache.free(burst[k].buf);
    }
    if (!n) usleep(1000);
  }
  return got;
}

bool same_bytes(const BufferPool& pool, const Pkt& p, const std::vector<uint8_t>& f) {
  return p.len == f.size() && std::memcmp(pool.frame(p), f.data(), f.size()) == 0;
}

void expect_meta(const OffloadMeta& got, const OffloadMeta& want) {
  EXPECT_EQ(got.flags & OffloadMeta::kNeedsCsum, want.flags & OffloadMeta::kNeedsCsum);
  EXPECT_EQ(got.gso_type, want.gso_type);
  EXPECT_EQ(got.gso_size, want.gso_size);
  EXPECT_EQ(got.csum_start, want.csum_start);
  EXPECT_EQ(got.csum_offset, want.csum_offset);
}

// A super-frame (and a small frame behind it) in through the port with its
// state, then a super-frame and small ones out, in order, with theirs.
void both_ways(Port& port, BufferPool& pool, BufferCache& cache, VnetSocket& ks, const PortStatus& st) {
  const auto big = tcp4_frame(20 * kMss), small = tcp4_frame(100);
  const OffloadMeta m = tso4_meta(14);
  ks.send(big, &m);
  ks.send(small, nullptr);
  auto got = take(port, cache, 2);
  ASSERT_EQ(got.size(), 2u) << "rx_too_big " << st.c[PortStatus::rx_too_big] << " bad " << st.c[PortStatus::rx_bad_vnet];
  EXPECT_TRUE(pool.is_large(got[0].buf));
  EXPECT_TRUE(same_bytes(pool, got[0], big));
  ASSERT_TRUE(pkt_has_meta(got[0]));
  expect_meta(pool.meta(got[0].buf), m);
  EXPECT_TRUE(same_bytes(pool, got[1], small)) << "order kept";
  EXPECT_FALSE(pkt_has_meta(got[1])) << "a plain frame stays plain";
  EXPECT_GE(st.c[PortStatus::rx_super].load(), 1u);
  EXPECT_GE(st.c[PortStatus::rx_offload].load(), 1u);
  for (const Pkt& p : got) cache.free(p.buf);

  // Out: small, big (with state), small: the kernel side sees them in order.
  Pkt out[3];
  const std::vector<uint8_t>* frames[3] = {&small, &big, &small};
  for (int i = 0; i < 3; ++i) {
    uint32_t b;
    ASSERT_TRUE(i == 1 ? cache.alloc_large(&b) : cache.alloc(&b));
    std::memcpy(pool.data(b) + pool.headroom(), frames[i]->data(), frames[i]->size());
    out[i] = Pkt{b, pool.headroom(), uint16_t(frames[i]->size())};
    if (i == 1) {
      pool.meta(b) = m;
      pkt_set_meta(out[i], true);
    }
  }
  ASSERT_EQ(port.tx_burst(out, 3), 3);
  for (int i = 0; i < 3; ++i) {
    OffloadMeta rm;
    auto f = ks.receive(&rm);
    ASSERT_EQ(f.size(), frames[i]->size()) << "frame " << i;
    EXPECT_EQ(f, *frames[i]) << "frame " << i;
    if (i == 1) expect_meta(rm, m);
    else EXPECT_FALSE(rm.pending()) << "frame " << i;
  }
}

// Sends `f` with offload state `m` out of `port`, from a large buffer.
void send_super(Port& port, BufferCache& cache, const std::vector<uint8_t>& f, const OffloadMeta& m) {
  BufferPool& pool = cache.pool();
  uint32_t b;
  ASSERT_TRUE(cache.alloc_large(&b));
  std::memcpy(pool.data(b) + pool.headroom(), f.data(), f.size());
  Pkt out{b, pool.headroom(), uint16_t(f.size())};
  pool.meta(b) = m;
  pkt_set_meta(out, true);
  ASSERT_EQ(port.tx_burst(&out, 1), 1);
}

// A UDP GSO batch (40 datagrams of 1,400 bytes, as a QUIC server sends them)
// in through the port whole with its state, and out whole.
void uso_both_ways(Port& port, BufferPool& pool, BufferCache& cache, VnetSocket& ks, const PortStatus& st) {
  const auto batch = udp4_batch(40 * 1400);
  const OffloadMeta m = uso4_meta(1400);
  ks.send(batch, &m);
  auto got = take(port, cache, 1);
  ASSERT_EQ(got.size(), 1u) << "one frame, not 40 datagrams; bad " << st.c[PortStatus::rx_bad_vnet];
  EXPECT_TRUE(same_bytes(pool, got[0], batch));
  ASSERT_TRUE(pkt_has_meta(got[0]));
  expect_meta(pool.meta(got[0].buf), m);
  cache.free(got[0].buf);

  send_super(port, cache, batch, m);
  OffloadMeta rm;
  auto f = ks.receive(&rm);
  EXPECT_EQ(f, batch) << "the batch leaves whole";
  expect_meta(rm, m);
}

TEST(VnetPorts, TapCarriesSuperFramesWithTheirStateBothWays) {
  for (auto io : {KernelPortOptions::IoUring::kAuto, KernelPortOptions::IoUring::kOff}) {
    std::string skip = in_own_netns([&] {
      auto pool = pool_with_large();
      auto st = std::make_shared<PortStatus>();
      KernelPortOptions o;
      o.io_uring = io;
      auto port = TapPort::open("vtvnet0", o, pool, st);
      const bool uso = kernel_has_tap_uso();
      EXPECT_EQ(port->tx_offloads(), uint32_t(kOffCsum | kOffTso4 | kOffTso6 | kOffTsoEcn | (uso ? uint32_t(kOffUso) : 0u)));
      int ctl = ctl_socket();
      if_set_flags(ctl, "vtvnet0", IFF_UP, 0);
      close(ctl);
      VnetSocket ks("vtvnet0");
      BufferCache cache(pool);
      both_ways(*port, *pool, cache, ks, *st);
      if (uso) uso_both_ways(*port, *pool, cache, ks, *st);
      cache.flush();
      port->detach();
    }, "/dev/net/tun");
    if (!skip.empty()) GTEST_SKIP() << skip;
  }
}

// Super-frames that come while no large buffer is free: each is a counted
// drop (rx_no_buffer), never a frame cut to what a regular buffer holds. A
// tap read returns at most the room it was given, cutting the frame without
// a word: such cuts went on as 1,920-byte frames whose IP length said 64 KiB
// (each then dropped as gso_malformed where it left, found with 32 TCP
// streams and a flooding switch). Plain frames still come through.
TEST(VnetPorts, TapSuperFramesWithoutALargeBufferAreCountedDropsNotCutFrames) {
  std::string skip = in_own_netns([&] {
    auto pool = pool_with_large();
    auto st = std::make_shared<PortStatus>();
    KernelPortOptions o;
    o.io_uring = KernelPortOptions::IoUring::kOn;
    auto port = TapPort::open("vtvnet0", o, pool, st);
    int ctl = ctl_socket();
    if_set_flags(ctl, "vtvnet0", IFF_UP, 0);
    close(ctl);
    VnetSocket ks("vtvnet0");
    BufferCache cache(pool);
    // Hold every large buffer.
    BufferCache holder(pool);
    std::vector<uint32_t> held;
    for (uint32_t b; holder.alloc_large(&b);) held.push_back(b);
    ASSERT_EQ(held.size(), pool->large_count());
    take(*port, cache, 1);  // the port's reads are posted (and find nothing)
    const auto big = tcp4_frame(20 * kMss), small = tcp4_frame(100);
    const OffloadMeta m = tso4_meta(14);
    constexpr uint32_t kRounds = 8;
    for (uint32_t i = 0; i < kRounds; ++i) {
      ks.send(big, &m);
      ks.send(small, nullptr);
    }
    auto got = take(*port, cache, kRounds);
    uint32_t smalls = 0;
    for (const Pkt& p : got) {
      EXPECT_TRUE(same_bytes(*pool, p, small)) << "a frame of " << p.len << " bytes came through: only whole small frames may";
      smalls += same_bytes(*pool, p, small);
      cache.free(p.buf);
    }
    EXPECT_EQ(smalls, kRounds);
    EXPECT_EQ(st->c[PortStatus::rx_no_buffer].load(), kRounds) << "rx_too_big " << st->c[PortStatus::rx_too_big];
    for (uint32_t b : held) holder.free(b);
    holder.flush();
    cache.flush();
    port->detach();
  }, "/dev/net/tun");
  if (!skip.empty()) GTEST_SKIP() << skip;
}

// A veth pair in the test's namespace: the port on `a`, the kernel side on `b`.
bool make_veth() {
  return system("ip link add vtvneta mtu 4000 type veth peer name vtvnetb mtu 4000 && ip link set vtvneta up && "
                "ip link set vtvnetb up") == 0;
}

TEST(VnetPorts, AfPacketCarriesSuperFramesWithTheirStateBothWaysAndPutsTagsBack) {
  std::string skip = in_own_netns([&] {
    ASSERT_TRUE(make_veth());
    auto pool = pool_with_large();
    auto st = std::make_shared<PortStatus>();
    KernelPortOptions o;
    auto port = AfPacketPort::open("vtvneta", o, pool, st);
    EXPECT_EQ(port->tx_offloads(), uint32_t(kOffCsum | kOffTso4 | kOffTso6 | kOffTsoEcn | kOffUso));
    VnetSocket ks("vtvnetb");
    BufferCache cache(pool);
    both_ways(*port, *pool, cache, ks, *st);
    EXPECT_GE(st->c[PortStatus::tx_super].load(), 1u);

    // A tagged super-frame: the kernel hands the tag over beside the frame
    // (auxdata); it comes out of the port in place, with the offsets moved.
    const auto tagged = tcp4_frame(10 * kMss, 42);
    const OffloadMeta m = tso4_meta(18);  // offsets of the tagged frame as sent
    ks.send(tagged, &m);
    auto got = take(*port, cache, 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_TRUE(same_bytes(*pool, got[0], tagged));
    ASSERT_TRUE(pkt_has_meta(got[0]));
    EXPECT_EQ(pool->meta(got[0].buf).csum_start, 18 + 20);
    EXPECT_EQ(pool->meta(got[0].buf).gso_size, kMss);
    cache.free(got[0].buf);

    // A plain frame that fits a ring slot but not a regular buffer (1950
    // bytes: MTU 4000 here) lands in a large buffer, not dropped.
    ASSERT_LT(pool->max_frame(), 1950u);
    const auto mid = tcp4_frame(1950 - 54);
    ks.send(mid, nullptr);
    got = take(*port, cache, 1);
    ASSERT_EQ(got.size(), 1u) << "rx_too_big " << st->c[PortStatus::rx_too_big];
    EXPECT_TRUE(pool->is_large(got[0].buf));
    EXPECT_TRUE(same_bytes(*pool, got[0], mid));
    EXPECT_FALSE(pool->meta(got[0].buf).pending());
    cache.free(got[0].buf);
    cache.flush();
    port->detach();
  });
  if (!skip.empty()) GTEST_SKIP() << skip;
}


// An uplink's VXLAN batch (overlay/uso.cc) is a UDP GSO frame: the
// kernel takes it from AF_PACKET and a veth carries it whole, state and all.
TEST(VnetPorts, AfPacketSendsUdpGsoFramesWhole) {
  std::string skip = in_own_netns([&] {
    ASSERT_TRUE(make_veth());
    auto pool = pool_with_large();
    auto st = std::make_shared<PortStatus>();
    KernelPortOptions o;
    auto port = AfPacketPort::open("vtvneta", o, pool, st);
    VnetSocket ks("vtvnetb");
    BufferCache cache(pool);
    constexpr uint32_t kChunk = 1000, kChunks = 5;
    std::vector<uint8_t> f = tcp4_frame(kChunk * kChunks - 12);  // IPv4 header, then 8 + 5000 bytes
    f[14 + 9] = 17;
    uint8_t* udp = f.data() + 34;
    store_be16(udp, 50000);
    store_be16(udp + 2, 4789);
    store_be16(udp + 4, uint16_t(f.size() - 34));
    const uint32_t pseudo = csum_pseudo4(f.data() + 26, f.data() + 30, uint16_t(f.size() - 34), 17);
    store_be16(udp + 6, uint16_t(~csum_fold(pseudo)));
    store_be16(f.data() + 24, 0);
    store_be16(f.data() + 24, csum_fold(csum_partial(f.data() + 14, 20, 0)));
    OffloadMeta m;
    m.flags = OffloadMeta::kNeedsCsum;
    m.gso_type = OffloadMeta::kGsoUdpL4;
    m.gso_size = kChunk;
    m.csum_start = 34;
    m.csum_offset = 6;
    m.hdr_len = 42;
    send_super(*port, cache, f, m);
    std::vector<uint8_t> r(70000);
    bool seen = false;
    for (int i = 0; i < 50 && !seen; ++i) {
      pollfd pf{ks.fd, POLLIN, 0};
      if (poll(&pf, 1, 100) <= 0) continue;
      const ssize_t n = recv(ks.fd, r.data(), r.size(), 0);
      if (n < ssize_t(kVnetHdrLen + 42) || r[kVnetHdrLen + 23] != 17 || load_be16(r.data() + kVnetHdrLen + 36) != 4789) continue;
      seen = true;
      EXPECT_EQ(size_t(n) - kVnetHdrLen, f.size()) << "one frame, not five";
      OffloadMeta rm;
      ASSERT_EQ(vnet_read(r.data(), uint32_t(n - kVnetHdrLen), &rm), VnetVerdict::kOffload);
      EXPECT_EQ(rm.gso_kind(), OffloadMeta::kGsoUdpL4);
      EXPECT_EQ(rm.gso_size, kChunk);
      EXPECT_EQ(rm.csum_start, 34u);
      EXPECT_TRUE(std::equal(f.begin() + 42, f.end(), r.begin() + kVnetHdrLen + 42)) << "payload";
    }
    EXPECT_TRUE(seen) << "tx_errors " << st->c[PortStatus::tx_errors];
    cache.flush();
    port->detach();
  });
  if (!skip.empty()) GTEST_SKIP() << skip;
}

// An interface that takes no super-frames (a NIC without TSO or USO, a veth
// with its offloads off, disableOffloads): the port still hands them to the
// kernel whole and the kernel segments them; none is lost. (A packet socket
// that bypasses the qdisc drops such frames instead: regression test for
// VXLAN TCP collapsing to zero over an underlay without UDP segmentation.)
TEST(VnetPorts, AfPacketSuperFramesAreSegmentedByTheKernelForAnInterfaceWithoutTheOffload) {
  std::string skip = in_own_netns([&] {
    ASSERT_TRUE(make_veth());
    ASSERT_EQ(system("ethtool -K vtvneta tx off tso off gso off tx-udp-segmentation off >/dev/null 2>&1"), 0);
    auto pool = pool_with_large();
    auto st = std::make_shared<PortStatus>();
    KernelPortOptions o;
    auto port = AfPacketPort::open("vtvneta", o, pool, st);
    VnetSocket ks("vtvnetb");
    BufferCache cache(pool);
    // A TCP super-frame of 20 segments, and a small one of two (it fits a
    // ring slot, but must be segmented all the same).
    for (uint32_t segs : {20u, 2u}) {
      SCOPED_TRACE(std::to_string(segs) + " segments");
      const uint32_t mss = segs == 2 ? 500 : kMss;
      auto f = tcp4_frame(segs * mss);
      OffloadMeta m = tso4_meta(14);
      m.gso_size = uint16_t(mss);
      // A TSO sender seeds the checksum field with the pseudo-header sum.
      store_be16(f.data() + 34 + 16, uint16_t(~csum_fold(csum_pseudo4(f.data() + 26, f.data() + 30, uint16_t(f.size() - 34), 6))));
      send_super(*port, cache, f, m);
      uint32_t got = 0, bytes = 0;
      for (;;) {
        OffloadMeta rm;
        auto r = ks.receive(&rm, 500);
        if (r.empty()) break;
        ++got;
        EXPECT_FALSE(rm.gso()) << "a segment, not a super-frame";
        EXPECT_LE(r.size(), 14u + 40 + mss);
        const uint32_t l4 = uint32_t(r.size()) - 34;
        // tx checksumming is off too: the kernel computed every checksum.
        EXPECT_FALSE(rm.flags & OffloadMeta::kNeedsCsum);
        EXPECT_EQ(csum_fold(csum_partial(r.data() + 34, l4, csum_pseudo4(r.data() + 26, r.data() + 30, uint16_t(l4), 6))), 0)
            << "segment " << got << ": TCP checksum";
        EXPECT_EQ(load_be32(r.data() + 38), load_be32(f.data() + 38) + bytes) << "contiguous sequence numbers";
        EXPECT_TRUE(std::equal(r.begin() + 54, r.end(), f.begin() + 54 + bytes)) << "payload of segment " << got;
        bytes += l4 - 20;
      }
      EXPECT_EQ(got, segs) << "tx_errors " << st->c[PortStatus::tx_errors];
      EXPECT_EQ(bytes, segs * mss);
    }
    cache.flush();
    port->detach();
  });
  if (!skip.empty()) GTEST_SKIP() << skip;
}

}  // namespace
}  // namespace vpc
