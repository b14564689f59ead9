// The GoogleTest side of the native test helpers: EngineFixture, which adds
// expectations to EngineHarness (core/test_harness.h: frame building, bounded
// waits, an Engine with the outside ends of its pipe ports).
//
// Timing rule: nothing here asserts on a fixed sleep. Waits poll a condition
// every millisecond up to a deadline; "nothing arrived" is only asserted after
// a positive synchronisation point (the ingress counter reached its target and
// a Barrier command resolved, which means the engine finished the iteration
// that processed those frames, flush included).
#pragma once

#include <gtest/gtest.h>

#include "core/test_harness.h"

namespace vpc::testutil {

// An EngineHarness per test. Starts stopped (commands apply inline); call
// engine().start() to move packets.
class EngineFixture : public ::testing::Test, public EngineHarness {
 protected:
  void SetUp() override { make_engine(small_engine_options()); }
  void TearDown() override { destroy_all(); }

  SwitchId create_switch(uint32_t vni, SwitchConfig cfg = {}) {
    cfg.vni = vni;
    Result r = try_create_switch(cfg);
    EXPECT_TRUE(r.ok()) << "create switch vni " << vni << ": " << r.message;
    return r.id;
  }
  PortId add_port(SwitchId untagged, const PortConfig& pc = {}, std::vector<VlanMapping> vlans = {},
                  uint32_t ring = 256, const PipeOptions& po = {}) {
    Result r = try_add_port(untagged, pc, std::move(vlans), ring, po);
    EXPECT_TRUE(r.ok()) << "create port: " << r.message;
    return r.id;
  }
  void barrier() {
    Result r = run(cmd(CmdOp::kBarrier));
    EXPECT_TRUE(r.ok());
  }
  std::vector<FdbDumpEntry> fdb(SwitchId s) {
    Result r = dump_fdb(s);
    EXPECT_TRUE(r.ok()) << r.message;
    return r.entries;
  }

  // Sends frames into port p (all must be accepted).
  void send(PortId p, const std::vector<Bytes>& frames) {
    EXPECT_EQ(send_frames(p, frames), frames.size()) << "pipe ring full?";
  }
  // Sends and waits until the engine has read the frames and finished the
  // iteration that forwarded them (Barrier), so deliveries are final.
  void send_settle(PortId p, const std::vector<Bytes>& frames) {
    uint64_t target = pc(p, PortCounter::rx_packets) + frames.size();
    send(p, frames);
    settle(p, target);
  }
  void send_settle(PortId p, const Bytes& frame) { send_settle(p, std::vector<Bytes>{frame}); }
  void settle(PortId p, uint64_t rx_target) {
    if (engine_->running()) {
      EXPECT_TRUE(wait_until([&] { return pc(p, PortCounter::rx_packets) >= rx_target; }))
          << "engine did not read the frames on port " << p;
    }
    barrier();
  }

  // Waits until at least n frames arrived on p (bounded), returns all received.
  std::vector<Bytes> recv_wait(PortId p, size_t n, int timeout_ms = 2000) {
    std::vector<Bytes> out;
    wait_until(
        [&] {
          drain_peer(peer(p), &out);
          return out.size() >= n;
        },
        timeout_ms);
    return out;
  }
};

}  // namespace vpc::testutil
