// Capture ring, pcap headers, capture and trace in the engine (core/capture.h,
// core/trace.h, core/observe.cc). The engine is stepped with run_once() so
// every expectation is about a known set of iterations.
#include <gtest/gtest.h>

#include <string>

#include "core/capture.h"
#include "core/test_util.h"
#include "core/trace.h"

namespace vpc {
namespace {

using testutil::Bytes;
using testutil::host_mac;
using testutil::make_frame;

// ------------------------------------------------------------ capture ring

TEST(CaptureRing, KeepsOrderLengthsAndSnaplen) {
  CaptureRing ring(4, 16);
  Bytes a = make_frame(host_mac(2), host_mac(1), 64);
  Bytes b = make_frame(host_mac(1), host_mac(2), 10);  // shorter than the snaplen
  ASSERT_TRUE(ring.push(100, 3, kCaptureIn, a.data(), uint32_t(a.size())));
  ASSERT_TRUE(ring.push(200, 4, kCaptureOut, b.data(), uint32_t(b.size())));
  std::vector<CaptureRecord> recs;
  std::vector<Bytes> data;
  EXPECT_EQ(ring.drain(16, [&](const CaptureRecord& r, const uint8_t* d) {
    recs.push_back(r);
    data.emplace_back(d, d + r.cap_len);
  }), 2u);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].ts_ns, 100u);
  EXPECT_EQ(recs[0].port, 3);
  EXPECT_EQ(recs[0].dir, kCaptureIn);
  EXPECT_EQ(recs[0].orig_len, 64u);
  EXPECT_EQ(recs[0].cap_len, 16);
  EXPECT_EQ(data[0], Bytes(a.begin(), a.begin() + 16));
  EXPECT_EQ(recs[1].cap_len, 10);
  EXPECT_EQ(recs[1].dir, kCaptureOut);
  EXPECT_EQ(data[1], b);
  EXPECT_EQ(ring.size(), 0u);
}

TEST(CaptureRing, FullRingRefusesWithoutOverwriting) {
  CaptureRing ring(2, 64);
  Bytes f = make_frame(host_mac(2), host_mac(1), 60);
  EXPECT_TRUE(ring.push(1, 0, kCaptureIn, f.data(), 60));
  EXPECT_TRUE(ring.push(2, 0, kCaptureIn, f.data(), 60));
  EXPECT_FALSE(ring.push(3, 0, kCaptureIn, f.data(), 60));
  std::vector<uint64_t> ts;
  ring.drain(1, [&](const CaptureRecord& r, const uint8_t*) { ts.push_back(r.ts_ns); });
  EXPECT_TRUE(ring.push(4, 0, kCaptureIn, f.data(), 60)) << "a drained slot is free again";
  ring.drain(8, [&](const CaptureRecord& r, const uint8_t*) { ts.push_back(r.ts_ns); });
  EXPECT_EQ(ts, (std::vector<uint64_t>{1, 2, 4}));
}

TEST(CaptureRing, RejectsBadSizes) {
  EXPECT_THROW(CaptureRing(3, 64), std::invalid_argument);
  EXPECT_THROW(CaptureRing(1u << 17, 64), std::invalid_argument);
  EXPECT_THROW(CaptureRing(8, 0), std::invalid_argument);
  EXPECT_THROW(CaptureRing(8, 65536), std::invalid_argument);
}

TEST(Pcap, HeadersAreClassicLibpcap) {
  uint8_t h[kPcapFileHeaderLen];
  pcap_file_header(h, 256);
  uint32_t magic, snap, link;
  uint16_t major, minor;
  std::memcpy(&magic, h, 4);
  std::memcpy(&major, h + 4, 2);
  std::memcpy(&minor, h + 6, 2);
  std::memcpy(&snap, h + 16, 4);
  std::memcpy(&link, h + 20, 4);
  EXPECT_EQ(magic, 0xA1B2C3D4u);
  EXPECT_EQ(major, 2);
  EXPECT_EQ(minor, 4);
  EXPECT_EQ(snap, 256u);
  EXPECT_EQ(link, 1u);
  CaptureRecord r{};
  r.ts_ns = 1700000000123456789ull;
  r.cap_len = 60;
  r.orig_len = 1514;
  uint8_t rh[kPcapRecordHeaderLen];
  pcap_record_header(rh, r);
  uint32_t v[4];
  std::memcpy(v, rh, 16);
  EXPECT_EQ(v[0], 1700000000u);
  EXPECT_EQ(v[1], 123456u);
  EXPECT_EQ(v[2], 60u);
  EXPECT_EQ(v[3], 1514u);
}

// ------------------------------------------------------------ in the engine

class ObserveTest : public testutil::EngineFixture {
 protected:
  std::shared_ptr<CaptureSession> start_capture(CaptureFilter f, uint32_t slots = 64, uint32_t snaplen = 256) {
    auto s = std::make_shared<CaptureSession>(f, slots, snaplen);
    auto c = cmd(CmdOp::kStartCapture);
    c->capture = s;
    Result r = run(std::move(c));
    EXPECT_TRUE(r.ok()) << r.message;
    EXPECT_EQ(r.id, s->id);
    return s;
  }
  Result stop_capture(std::shared_ptr<CaptureSession> s) {
    auto c = cmd(CmdOp::kStopCapture);
    c->capture = std::move(s);
    return run(std::move(c));
  }
  std::shared_ptr<TraceSession> start_trace(uint32_t count, PortId port = kNoId) {
    auto t = std::make_shared<TraceSession>(count, port);
    auto c = cmd(CmdOp::kStartTrace);
    c->trace = t;
    Result r = run(std::move(c));
    EXPECT_TRUE(r.ok()) << r.message;
    return t;
  }
  static std::vector<CaptureRecord> drain(CaptureSession& s, std::vector<Bytes>* data = nullptr) {
    std::vector<CaptureRecord> out;
    s.ring.drain(1u << 16, [&](const CaptureRecord& r, const uint8_t* d) {
      out.push_back(r);
      if (data) data->emplace_back(d, d + r.cap_len);
    });
    return out;
  }
  // The record's lines as "stage: text", one per line.
  static std::string text(const TraceRecord& r) {
    std::string s;
    for (uint8_t i = 0; i < r.nlines; ++i)
      s += std::string(trace_stage_name(r.lines[i].stage)) + ": " + r.lines[i].text + "\n";
    return s;
  }
  uint64_t engine_counter(EngineCounter k) { return cnt_read(engine_->engine_counters().c[size_t(k)]); }
};

TEST_F(ObserveTest, PortCaptureSeesBothDirectionsWithTheirPort) {
  SwitchId s = create_switch(100);
  PortId a = add_port(s), b = add_port(s);
  auto cap = start_capture({a, kNoId, kCaptureBoth});
  send(a, {make_frame(testutil::kMcastMac, host_mac(1), 80)});  // flooded to b
  engine_->run_once();
  send(b, {make_frame(host_mac(1), host_mac(2), 90)});  // unicast to a (learned)
  engine_->run_once();
  std::vector<Bytes> data;
  auto recs = drain(*cap, &data);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].dir, kCaptureIn);
  EXPECT_EQ(recs[0].port, a);
  EXPECT_EQ(recs[0].orig_len, 80u);
  EXPECT_EQ(recs[1].dir, kCaptureOut);
  EXPECT_EQ(recs[1].port, a);
  EXPECT_EQ(data[1], make_frame(host_mac(1), host_mac(2), 90));
  EXPECT_EQ(cap->captured.load(), 2u);
  EXPECT_GT(recs[0].ts_ns, 1600000000ull * 1000000000ull) << "wall-clock time";
  EXPECT_EQ(recv(b).size(), 1u) << "capturing does not take frames away";
}

TEST_F(ObserveTest, DirectionFilterAndStop) {
  SwitchId s = create_switch(100);
  PortId a = add_port(s), b = add_port(s);
  auto in = start_capture({a, kNoId, kCaptureIn});
  auto out = start_capture({b, kNoId, kCaptureOut});
  send(a, {make_frame(host_mac(2), host_mac(1), 64), make_frame(host_mac(2), host_mac(1), 65)});
  engine_->run_once();
  EXPECT_EQ(drain(*in).size(), 2u);
  EXPECT_EQ(drain(*out).size(), 2u);
  EXPECT_TRUE(stop_capture(in).ok());
  EXPECT_EQ(stop_capture(in).status, Status::kNotFound) << "stopping twice";
  send(a, {make_frame(host_mac(2), host_mac(1), 64)});
  engine_->run_once();
  EXPECT_EQ(drain(*in).size(), 0u) << "a stopped capture gets nothing";
  EXPECT_EQ(drain(*out).size(), 1u);
}

TEST_F(ObserveTest, RingFullDropsAreCountedAndTheEngineGoesOn) {
  SwitchId s = create_switch(100);
  PortId a = add_port(s), b = add_port(s);
  auto cap = start_capture({a, kNoId, kCaptureIn}, /*slots=*/4);
  std::vector<Bytes> frames;
  for (int i = 0; i < 10; ++i) frames.push_back(make_frame(host_mac(2), host_mac(1), uint16_t(64 + i)));
  send(a, frames);
  engine_->run_once();
  EXPECT_EQ(cap->captured.load(), 4u);
  EXPECT_EQ(cap->dropped.load(), 6u);
  EXPECT_EQ(engine_counter(EngineCounter::capture_ring_full), 6u);
  EXPECT_EQ(recv(b).size(), 10u) << "every frame is still forwarded";
  auto recs = drain(*cap);
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs[3].orig_len, 67u) << "the first four were kept, the rest refused";
}

TEST_F(ObserveTest, SwitchCaptureTakesOnlyThatSwitchsMemberOfATrunk) {
  SwitchId s1 = create_switch(100), s2 = create_switch(200);
  PortId a = add_port(s1);
  PortId t = add_port(kNoId, {}, {{10, s1}, {20, s2}});
  PortId c = add_port(s2);
  auto cap = start_capture({kNoId, s1, kCaptureBoth});
  send(t, {make_frame(host_mac(1), host_mac(5), 64, 10), make_frame(host_mac(1), host_mac(6), 64, 20)});
  engine_->run_once();
  auto recs = drain(*cap);
  // VLAN 10 in on the trunk and out on a; VLAN 20 (switch 2) in and out on c is not captured.
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].port, t);
  EXPECT_EQ(recs[0].dir, kCaptureIn);
  EXPECT_EQ(recs[1].port, a);
  EXPECT_EQ(recs[1].dir, kCaptureOut);
  EXPECT_EQ(recv(c).size(), 1u);
}

TEST_F(ObserveTest, DeletingAPortOrSwitchEndsItsCapturesAndANewOneWithItsIdIsNotCaptured) {
  SwitchId s = create_switch(100);
  PortId a = add_port(s), b = add_port(s);
  auto on_a = start_capture({a, kNoId, kCaptureBoth});
  auto on_s = start_capture({kNoId, s, kCaptureBoth});
  auto on_b = start_capture({b, kNoId, kCaptureBoth});
  auto tr = start_trace(10, a);
  ASSERT_TRUE(delete_port(a).ok());
  EXPECT_TRUE(on_a->ended.load());
  EXPECT_FALSE(on_s->ended.load());
  EXPECT_EQ(stop_capture(on_a).status, Status::kNotFound) << "detached by the delete";
  PortId a2 = add_port(s);
  ASSERT_EQ(a2, a) << "the slot is reused";
  send(a2, {make_frame(host_mac(2), host_mac(1), 64)});
  engine_->run_once();
  EXPECT_EQ(drain(*on_a).size(), 0u) << "the new port with the old id is not captured";
  EXPECT_EQ(tr->published(), 0u) << "nor traced";
  EXPECT_EQ(drain(*on_s).size(), 2u) << "in on a2, out on b";
  ASSERT_TRUE(delete_port(a2).ok());
  ASSERT_TRUE(delete_port(b).ok());
  EXPECT_TRUE(on_b->ended.load());
  auto del = cmd(CmdOp::kDeleteSwitch);
  del->sw = s;
  ASSERT_TRUE(run(std::move(del)).ok());
  EXPECT_TRUE(on_s->ended.load());
  EXPECT_EQ(engine_counter(EngineCounter::capture_ring_full), 0u);
}

TEST_F(ObserveTest, CaptureCommandsValidate) {
  SwitchId s = create_switch(100);
  PortId a = add_port(s);
  auto bad = [&](CaptureFilter f, Status want) {
    auto c = cmd(CmdOp::kStartCapture);
    c->capture = std::make_shared<CaptureSession>(f, 8, 64);
    EXPECT_EQ(run(std::move(c)).status, want);
  };
  bad({kNoId, kNoId, kCaptureBoth}, Status::kInvalidArgument);
  bad({a, s, kCaptureBoth}, Status::kInvalidArgument);
  bad({40, kNoId, kCaptureBoth}, Status::kNotFound);
  bad({kNoId, 7, kCaptureBoth}, Status::kNotFound);
  bad({a, kNoId, 0}, Status::kInvalidArgument);
  for (uint32_t i = 0; i < kMaxCaptures; ++i) start_capture({a, kNoId, kCaptureBoth}, 8, 64);
  bad({a, kNoId, kCaptureBoth}, Status::kLimitExceeded);
}

TEST_F(ObserveTest, TraceOfAForwardedFrame) {
  SwitchId s = create_switch(100);
  PortId a = add_port(s), b = add_port(s);
  send(b, {make_frame(host_mac(1), host_mac(2), 64)});  // b's MAC is known before the trace
  engine_->run_once();
  auto t = start_trace(2);
  send(a, {make_frame(host_mac(2), host_mac(1), 64)});
  engine_->run_once();
  ASSERT_EQ(t->published(), 1u);
  const TraceRecord& r = t->record(0);
  EXPECT_EQ(r.port, a);
  std::string x = text(r);
  EXPECT_NE(x.find("rx: port#" + std::to_string(a) + ", 64 bytes, 02:00:00:00:00:01 > 02:00:00:00:00:02"),
            std::string::npos) << x;
  EXPECT_NE(x.find("classify: switch#" + std::to_string(s) + " (vni 100)"), std::string::npos) << x;
  EXPECT_NE(x.find("learn: 02:00:00:00:00:01 learned on member"), std::string::npos) << x;
  EXPECT_NE(x.find("lookup: 02:00:00:00:00:02 -> member"), std::string::npos) << x;
  EXPECT_NE(x.find("port#" + std::to_string(b) + " untagged"), std::string::npos) << x;
  EXPECT_NE(x.find("tx: port#" + std::to_string(b) + ", 64 bytes"), std::string::npos) << x;
  EXPECT_EQ(x.find("drop"), std::string::npos) << x;

  // A broadcast: known source, flood.
  send(a, {make_frame(kMacBroadcast, host_mac(1), 64)});
  engine_->run_once();
  ASSERT_EQ(t->published(), 2u);
  x = text(t->record(1));
  EXPECT_NE(x.find("learn: 02:00:00:00:00:01 known on member"), std::string::npos) << x;
  EXPECT_NE(x.find("flood (broadcast) to the 1 other member of switch#" + std::to_string(s)), std::string::npos)
      << "two ports: the sender's member is not counted\n" << x;
  // The trace is full: no more records, and the engine stops looking.
  send(a, {make_frame(kMacBroadcast, host_mac(1), 64)});
  engine_->run_once();
  EXPECT_EQ(t->published(), 2u);
}

TEST_F(ObserveTest, TraceOfDroppedFramesNamesTheReason) {
  SwitchId s = create_switch(100);
  PortConfig small;
  small.mtu = 100;
  PortId a = add_port(s), b = add_port(s, small);
  auto t = start_trace(3, a);
  send(b, {make_frame(host_mac(1), host_mac(2), 64)});  // not on the traced port
  send(a, {make_frame(host_mac(2), host_mac(1), 64, 30),        // VLAN 30 is not mapped on an access port
           make_frame(host_mac(9), 0, 64),                      // zero source MAC
           make_frame(host_mac(2), host_mac(1), 200)});         // over b's MTU on egress
  engine_->run_once();
  engine_->run_once();
  ASSERT_EQ(t->published(), 3u);
  for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(t->record(i).port, a);
  std::string x0 = text(t->record(0)), x1 = text(t->record(1)), x2 = text(t->record(2));
  EXPECT_NE(x0.find("drop: vlan_not_member"), std::string::npos) << x0;
  EXPECT_EQ(x0.find("classify"), std::string::npos) << "a frame refused by classify has no classify result:\n" << x0;
  EXPECT_NE(x1.find("drop: src_mac_zero"), std::string::npos) << x1;
  EXPECT_NE(x2.find("drop: mtu_exceeded"), std::string::npos) << x2;
  EXPECT_NE(x2.find("lookup:"), std::string::npos) << x2;
}

TEST_F(ObserveTest, TraceCommandsValidateAndStop) {
  create_switch(100);
  auto c = cmd(CmdOp::kStartTrace);
  c->trace = std::make_shared<TraceSession>(1, 40);
  EXPECT_EQ(run(std::move(c)).status, Status::kNotFound);
  EXPECT_THROW(TraceSession(0, kNoId), std::invalid_argument);
  EXPECT_THROW(TraceSession(TraceSession::kMaxCount + 1, kNoId), std::invalid_argument);
  SwitchId s = 0;
  PortId a = add_port(s), b = add_port(s);
  auto t = start_trace(5);
  EXPECT_TRUE(run(cmd(CmdOp::kStopTrace)).ok());
  send(a, {make_frame(host_mac(2), host_mac(1), 64)});
  engine_->run_once();
  EXPECT_EQ(t->published(), 0u) << "a stopped trace records nothing";
  EXPECT_EQ(recv(b).size(), 1u);
}

}  // namespace
}  // namespace vpc
