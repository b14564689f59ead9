// Capture and trace (core/capture.h, core/trace.h): what the engine keeps
// for them and the hooks the stages call. The Core holds one Observer; the
// stages test on() / tracing() (one byte) and call in only when it is set, so
// while neither a capture nor a trace runs the hot path pays one test per
// received and per transmitted burst, and nothing per frame.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "core/buffer_pool.h"
#include "core/capture.h"
#include "core/command.h"
#include "core/counters.h"
#include "core/trace.h"

namespace vpc {

constexpr uint8_t kObserveCapture = 1;
constexpr uint8_t kObserveTrace = 2;
constexpr uint32_t kMaxCaptures = 8;

class Observer {
 public:
  // Whether a capture on a switch takes this frame of this port; the engine
  // supplies it (it needs the bridge's memberships and the overlay's VNIs).
  using SwitchMatch = std::function<bool(SwitchId sw, PortId port, const uint8_t* frame, uint32_t len)>;
  Observer(BufferPool& pool, EngineCounterBlock& ctr) : pool_(pool), ctr_(ctr) {}
  void set_switch_match(SwitchMatch m) { switch_match_ = std::move(m); }

  bool on() const { return flags_ != 0; }
  bool tracing() const { return (flags_ & kObserveTrace) != 0; }

  // Commands (validated by the engine: ports and switches exist).
  Result start_capture(const std::shared_ptr<CaptureSession>& s);
  Result stop_capture(const std::shared_ptr<CaptureSession>& s);
  void start_trace(std::shared_ptr<TraceSession> t);
  void stop_trace();
  // Port `port` or switch `sw` (kNoId: none) was deleted: its captures (and a
  // trace filtered on the port) are detached, so a later port or switch
  // given the same id is not observed by them. Captures are marked ended.
  void forget(PortId port, SwitchId sw);

  // Hooks.
  void rx(PortId pid, const Pkt* pkts, uint16_t n);   // a received burst, before anything else
  void tx(PortId pid, const Pkt* pkts, uint16_t n);   // a burst about to be sent
  void drop(uint32_t buf, Drop why);                  // a frame freed for a reason
  void end_iteration();                               // publishes this iteration's trace records
  // The open trace record of the frame in `buf`, or nullptr (stages add lines).
  TraceRecord* traced(uint32_t buf) { return trace_ ? trace_->find(buf) : nullptr; }
  bool trace_open() const { return trace_ && trace_->open_count() != 0; }
  static uint64_t mono_ns();

 private:
  void update();
  void capture(PortId pid, const Pkt* pkts, uint16_t n, uint8_t dir);

  BufferPool& pool_;
  EngineCounterBlock& ctr_;
  SwitchMatch switch_match_;
  uint8_t flags_ = 0;
  std::vector<std::shared_ptr<CaptureSession>> captures_;
  uint32_t next_capture_id_ = 1;
  std::shared_ptr<TraceSession> trace_;
};

}  // namespace vpc
