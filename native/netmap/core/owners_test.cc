// The owners' stages driven one at a time, without the Engine (its thread,
// command queue and poll loop): each stage takes a batch and hands on a batch
// (bridge: classify -> forward -> the core's tx; overlay: decap -> a Burst,
// with the responder's answers staged on the uplink).
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "bridge/bridge.h"
#include "core/core.h"
#include "core/test_harness.h"
#include "overlay/overlay.h"

namespace vpc {
namespace {

using testutil::Bytes;
using testutil::host_mac;
using testutil::make_frame;

// The three owners as the Engine composes them, and nothing else.
struct Owners {
  explicit Owners(const CoreOptions& o) : core(o), bridge(core, overlay, 16, 16), overlay(core, bridge, 16, 4) {}
  Core core;
  Bridge bridge;
  Overlay overlay;
};

CoreOptions small_core() {
  CoreOptions o;
  o.pool.count = 4096;
  o.pool.hugepages = false;
  o.pool.large_count = 0;
  o.max_ports = 8;
  o.event_ring = 1024;
  return o;
}

// Frames into buffers of the core's pool, as a port's rx_burst would give them.
uint16_t load(Core& core, const std::vector<Bytes>& frames, Pkt* out) {
  BufferPool& pool = core.pool();
  uint16_t n = 0;
  for (const Bytes& f : frames) {
    uint32_t idx = 0;
    if (!core.cache().alloc(&idx)) {
      ADD_FAILURE() << "no free buffer";
      break;
    }
    out[n] = Pkt{idx, pool.headroom(), uint16_t(f.size())};
    std::memcpy(pool.frame(out[n]), f.data(), f.size());
    ++n;
  }
  return n;
}

// Receives what a pipe port transmitted, as bytes, and frees the buffers.
std::vector<Bytes> received(PipePeer& peer) {
  std::vector<Bytes> out;
  Pkt p[64];
  uint32_t n = peer.recv(p, 64);
  for (uint32_t i = 0; i < n; ++i) {
    const uint8_t* f = peer.pool().frame(p[i]);
    out.emplace_back(f, f + p[i].len);
    peer.cache().free(p[i].buf);
  }
  return out;
}

TEST(OwnersTest, TheBridgeForwardsABurstFromClassifyToTheCoresTx) {
  Owners o(small_core());
  SwitchConfig sc;
  sc.vni = 100;
  Result r = o.bridge.create_switch(sc);
  ASSERT_TRUE(r.ok()) << r.message;
  const SwitchId sw = r.id;
  PipePair a = make_pipe(o.core.pool_ptr(), 256), b = make_pipe(o.core.pool_ptr(), 256);
  PortConfig pc;
  std::vector<std::pair<uint16_t, SwitchId>> maps = {{0, sw}};
  PortId pa = o.core.open_port(std::move(a.port), pc, false);
  o.bridge.join(pa, maps, pc, false);
  PortId pb = o.core.open_port(std::move(b.port), pc, false);
  o.bridge.join(pb, maps, pc, false);

  // A frame from A to an unknown MAC floods to B; A's MAC is learned.
  Pkt pkts[kMaxBurst];
  Burst burst;
  Bytes f1 = make_frame(host_mac(2), host_mac(1));
  uint16_t n = load(o.core, {f1}, pkts);
  o.bridge.classify(pa, pkts, n, burst);
  ASSERT_EQ(burst.n, 1);
  o.bridge.forward(burst, o.core.port(pa).counters, o.bridge.port_learn(pa));
  EXPECT_TRUE(received(*b.peer).empty()) << "staged until the core flushes";
  o.core.flush_tx();
  std::vector<Bytes> got = received(*b.peer);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], f1);
  EXPECT_EQ(cnt_read(o.bridge.switch_counters(sw).c[size_t(SwitchCounter::learned)]), 1u);
  EXPECT_EQ(cnt_read(o.bridge.switch_counters(sw).c[size_t(SwitchCounter::flooded_unknown)]), 1u);

  // The answer from B is unicast to A: the FDB entry from the first burst.
  Bytes f2 = make_frame(host_mac(1), host_mac(2));
  n = load(o.core, {f2}, pkts);
  o.bridge.classify(pb, pkts, n, burst);
  o.bridge.forward(burst, o.core.port(pb).counters, o.bridge.port_learn(pb));
  o.core.flush_tx();
  got = received(*a.peer);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], f2);
  EXPECT_EQ(cnt_read(o.bridge.switch_counters(sw).c[size_t(SwitchCounter::flooded)]), 1u);
  EXPECT_EQ(o.bridge.check_invariants(), "");
  EXPECT_EQ(o.core.check_invariants(kNoId), "");
}

TEST(OwnersTest, TheOverlaysDecapAnswersArpOnTheUplinkAndHandsTheBridgeNothing) {
  Owners o(small_core());
  PipePair up = make_pipe(o.core.pool_ptr(), 256);
  Command c;
  c.op = CmdOp::kCreateUplink;
  c.new_port = std::move(up.port);
  c.port_cfg.mac = 0x020000000A01ull;
  c.uplink_cfg.ip4 = IpAddr::from_v4(0xC6120001);  // 198.18.0.1
  Result r = o.overlay.create_uplink(c);
  ASSERT_TRUE(r.ok()) << r.message;
  const PortId pid = r.id;

  // ARP who-has 198.18.0.1 tell 198.18.0.2.
  const Mac asker = 0x020000000A02ull;
  Bytes f(42, 0);
  mac_store(f.data(), kMacBroadcast);
  mac_store(f.data() + 6, asker);
  store_be16(f.data() + 12, kEtherTypeArp);
  uint8_t* a = f.data() + kEthHeaderLen;
  store_be16(a, 1);
  store_be16(a + 2, kEtherTypeIpv4);
  a[4] = 6;
  a[5] = 4;
  store_be16(a + 6, 1);
  mac_store(a + 8, asker);
  store_be32(a + 14, 0xC6120002);
  store_be32(a + 24, 0xC6120001);

  Pkt pkts[kMaxBurst];
  Burst burst;
  uint16_t n = load(o.core, {f}, pkts);
  o.overlay.decap(pkts, n, burst);
  EXPECT_EQ(burst.n, 0) << "nothing for the bridge";
  EXPECT_EQ(cnt_read(o.core.port_counters(pid).c[size_t(PortCounter::rx_packets)]), 1u);
  o.core.flush_tx();
  std::vector<Bytes> got = received(*up.peer);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(mac_load(got[0].data()), asker);
  EXPECT_EQ(load_be16(got[0].data() + kEthHeaderLen + 6), 2) << "an ARP reply";
  EXPECT_EQ(mac_load(got[0].data() + kEthHeaderLen + 8), 0x020000000A01ull);
  EXPECT_EQ(cnt_read(o.overlay.uplink_counters().c[size_t(UplinkCounter::arp_replies_sent)]), 1u);
  EXPECT_EQ(o.overlay.check_invariants(), "");
}

}  // namespace
}  // namespace vpc
