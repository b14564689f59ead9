// The engine's test seams: the caller-driven clock, the held-buffer count,
// check_invariants() and (in audit builds) the buffer-pool audit.
#include <gtest/gtest.h>

#include <set>

#include "core/engine.h"
#include "core/test_util.h"

namespace vpc {
namespace {

using testutil::host_mac;
using testutil::make_frame;

constexpr uint64_t kMs = 1000000;

class SeamsTest : public testutil::EngineFixture {
 protected:
  // 70 ports on one switch, every link up, the engine stepped from 0 to 300
  // ms in `step_ms` steps; then every link goes down.
  std::vector<PortId> seventy_ports_then_links_down(uint64_t step_ms) {
    EngineOptions o = testutil::small_engine_options();
    o.max_ports = 128;
    make_engine(o);
    SwitchId s = create_switch(10);
    std::vector<PortId> ports;
    for (int i = 0; i < 70; ++i) ports.push_back(add_port(s));
    for (uint64_t t = 0; t <= 300; t += step_ms) engine().run_once_at(t * kMs);
    EXPECT_EQ(count_events(EventType::kLink), 0u);
    for (PortId p : ports) peer(p).set_link(false);
    return ports;
  }
};

TEST_F(SeamsTest, CallerClockDrivesAgingWithoutWaiting) {
  SwitchConfig cfg;
  cfg.aging_ms = 2000;
  SwitchId s = create_switch(10, cfg);
  PortId a = add_port(s), b = add_port(s);
  send(a, {make_frame(kMacBroadcast, host_mac(1))});
  engine().run_once_at(10 * kMs);
  ASSERT_NE(find_entry(fdb(s), host_mac(1)), nullptr);
  EXPECT_EQ(find_entry(fdb(s), host_mac(1))->age_ms, 0u) << "commands see the caller's time too";
  engine().run_once_at(1010 * kMs);
  EXPECT_EQ(find_entry(fdb(s), host_mac(1))->age_ms, 1000u);
  EXPECT_EQ(count_events(EventType::kAged), 0u);
  // Aging sweeps a tenth of the table per tick: a few ticks past the age.
  for (uint64_t t = 2100; t <= 3000; t += 100) engine().run_once_at(t * kMs);
  EXPECT_EQ(find_entry(fdb(s), host_mac(1)), nullptr);
  EXPECT_EQ(count_events(EventType::kAged), 1u);
  recv(b);
  EXPECT_EQ(engine().check_invariants(), "");
}

// Aging walks the switches in use (the VNI map), not the whole table:
// switches made, deleted and made again in another slot each age their own
// entries, and a switch made after the sweep began is swept too.
TEST_F(SeamsTest, AgingReachesEverySwitchInUseWhateverItsSlot) {
  SwitchConfig cfg;
  cfg.aging_ms = 2000;
  SwitchId s1 = create_switch(10, cfg), s2 = create_switch(20, cfg);
  SwitchId s3 = create_switch(30, cfg);
  auto del = cmd(CmdOp::kDeleteSwitch);
  del->sw = s2;
  ASSERT_TRUE(run(std::move(del)).ok());
  SwitchId s4 = create_switch(40, cfg);
  EXPECT_EQ(s4, s2) << "the freed slot is reused";
  SwitchId s5 = create_switch(50, cfg);
  std::vector<SwitchId> live{s1, s3, s4, s5};
  std::vector<PortId> ports;
  for (size_t i = 0; i < live.size(); ++i) {
    PortId a = add_port(live[i]);
    ports.push_back(add_port(live[i]));
    send(a, {make_frame(kMacBroadcast, host_mac(uint32_t(i + 1)))});
  }
  engine().run_once_at(10 * kMs);
  for (size_t i = 0; i < live.size(); ++i) ASSERT_NE(find_entry(fdb(live[i]), host_mac(uint32_t(i + 1))), nullptr);
  for (uint64_t t = 100; t <= 3000; t += 100) engine().run_once_at(t * kMs);
  for (size_t i = 0; i < live.size(); ++i)
    EXPECT_EQ(find_entry(fdb(live[i]), host_mac(uint32_t(i + 1))), nullptr) << "switch " << live[i];
  EXPECT_EQ(count_events(EventType::kAged), live.size());
  for (PortId p : ports) recv(p);
  EXPECT_EQ(engine().check_invariants(), "");
}

// Link checks: at most Core::kLinkChecksPerTick ports a housekeeping tick,
// round robin (an idle switch with 300 taps spent its CPU reading every
// tap's link every 100 ms). 70 ports that all go down are reported within
// three ticks, 32 at a time, each once.
TEST_F(SeamsTest, LinkChecksAreSpreadOverTicksRoundRobin) {
  seventy_ports_then_links_down(100);
  const size_t per = Core::kLinkChecksPerTick;
  engine().run_once_at(400 * kMs);
  EXPECT_EQ(count_events(EventType::kLink), per);
  engine().run_once_at(500 * kMs);
  EXPECT_EQ(count_events(EventType::kLink), 2 * per);
  engine().run_once_at(600 * kMs);
  EXPECT_EQ(count_events(EventType::kLink), 70u);
  engine().run_once_at(700 * kMs);
  EXPECT_EQ(count_events(EventType::kLink), 70u) << "each once";
  std::set<PortId> seen;
  for (const Event& e : events_of(EventType::kLink)) {
    EXPECT_EQ(e.up, 0);
    seen.insert(e.port);
  }
  EXPECT_EQ(seen.size(), 70u);
}

// A busy engine (an iteration every few milliseconds) reads the links in
// slices of a quarter of the period's 32, so that no one iteration holds
// the ports for all 32 ports' system calls; over a period it still reads 32.
TEST_F(SeamsTest, LinkChecksComeInSlicesOfAQuarterWhenTheEngineIsBusy) {
  seventy_ports_then_links_down(5);
  const size_t slice = Core::kLinkChecksPerTick / Core::kLinkSlices;
  size_t seen = 0;
  for (uint64_t t = 305; t <= 400; t += 5) {
    engine().run_once_at(t * kMs);
    const size_t now = count_events(EventType::kLink);
    EXPECT_LE(now - seen, slice) << "at " << t << " ms";
    seen = now;
  }
  EXPECT_EQ(seen, Core::kLinkChecksPerTick) << "32 in the 100 ms period";
  for (uint64_t t = 405; t <= 700; t += 5) engine().run_once_at(t * kMs);
  EXPECT_EQ(count_events(EventType::kLink), 70u) << "every port, each once";
}

TEST_F(SeamsTest, BuffersHeldAreTheStagedFrames) {
  SwitchId s = create_switch(10);
  PortId a = add_port(s), b = add_port(s);
  EXPECT_EQ(engine().buffers_held(), 0u);
  send(a, {make_frame(kMacBroadcast, host_mac(1)), make_frame(kMacBroadcast, host_mac(2))});
  engine().run_once();
  EXPECT_EQ(engine().buffers_held(), 0u) << "flushed to the peer's ring at the end of the iteration";
  if (kPoolAudit) {
    EXPECT_EQ(pool_->audit()->held(), 2u) << "the two frames wait in the peer's ring";
    recv(b);
    EXPECT_EQ(pool_->audit()->held(), 0u);
  }
}

TEST_F(SeamsTest, InvariantsHoldThroughPortAndSwitchChurn) {
  SwitchId s1 = create_switch(10), s2 = create_switch(20);
  PortId a = add_port(s1), t = add_port(kNoId, {}, {{5, s1}, {6, s2}});
  PortConfig lim;
  lim.mac_limit = 2;
  PortId c = add_port(s2, lim);
  for (uint32_t i = 1; i <= 5; ++i) send(c, {make_frame(kMacBroadcast, host_mac(i))});
  send(a, {make_frame(kMacBroadcast, host_mac(9))});
  send(t, {make_frame(kMacBroadcast, host_mac(8), 64, 6)});
  engine().run_once();
  ASSERT_TRUE(add_static(s1, t, host_mac(20)).ok());
  EXPECT_EQ(engine().check_invariants(), "");
  ASSERT_TRUE(delete_port(t).ok());
  EXPECT_EQ(engine().check_invariants(), "");
  ASSERT_TRUE(delete_port(c).ok());
  auto del = cmd(CmdOp::kDeleteSwitch);
  del->sw = s2;
  ASSERT_TRUE(run(std::move(del)).ok());
  EXPECT_EQ(engine().check_invariants(), "");
}

TEST(PoolAuditTest, DoubleFreeIsCaughtAtTheSecondFree) {
  if (!kPoolAudit) GTEST_SKIP() << "the pool audit is compiled only with -DVPC_SANITIZE=ON or -DVPC_FUZZ=ON";
  BufferPoolOptions o;
  o.count = 512;
  o.hugepages = false;
  auto pool = BufferPool::create(o);
  BufferCache cache(pool);
  uint32_t idx;
  ASSERT_TRUE(cache.alloc(&idx));
  EXPECT_EQ(pool->audit()->held(), 1u);
  cache.free(idx);
  EXPECT_EQ(pool->audit()->held(), 0u);
  EXPECT_DEATH(cache.free(idx), "double free of buffer");
  uint32_t again;
  ASSERT_TRUE(cache.alloc(&again));
  ASSERT_EQ(again, idx) << "the cache hands back the last freed buffer";
  EXPECT_EQ(pool->data(idx)[0], kFreedByte) << "a freed buffer is filled, so stale bytes are recognisable";
  EXPECT_EQ(pool->data(idx)[o.buf_size - 1], kFreedByte);
  cache.free(again);
}

}  // namespace
}  // namespace vpc
