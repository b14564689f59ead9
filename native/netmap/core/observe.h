// What the engine keeps for capture and trace (core/capture.h, core/trace.h):
// the attached captures and the running trace. Engine::observe_ caches
// whether any is active (kObserveCapture, kObserveTrace), so the hot path
// pays one byte test per burst and nothing else while both are off.
#pragma once

#include <memory>
#include <vector>

#include "core/capture.h"
#include "core/trace.h"

namespace vpc {

constexpr uint8_t kObserveCapture = 1;
constexpr uint8_t kObserveTrace = 2;
constexpr uint32_t kMaxCaptures = 8;

struct Observers {
  std::vector<std::shared_ptr<CaptureSession>> captures;
  uint32_t next_capture_id = 1;
  std::shared_ptr<TraceSession> trace;
  uint64_t trace_ns = 0;  // CLOCK_MONOTONIC at the current hook
};

}  // namespace vpc
