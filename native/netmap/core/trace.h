// Packet trace: for the next N frames received (optionally on one port), the
// engine records what each stage decided (rx, classify, decap, learn,
// lookup, encap, tx, drop), one line per stage with a timestamp, the way
// VPP's `show trace` prints them.
//
// The engine fills the records; a record is published (and from then on
// never written again) at the end of the iteration that received its frame,
// so the control thread reads records [0, published()) without a lock.
// Cost when no trace runs: the same per-burst test of Engine::observe_ as
// capture (core/observe.cc), nothing per frame; drop sites test it only on
// their (cold) drop path.
#pragma once

#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <vector>

#include "core/types.h"

namespace vpc {

#define VPC_TRACE_STAGES(X) \
  X(rx)                     \
  X(classify)               \
  X(decap)                  \
  X(learn)                  \
  X(lookup)                 \
  X(encap)                  \
  X(tx)                     \
  X(drop)

#define VPC_TRACE_ENUM_ROW(name) name,
enum class TraceStage : uint8_t { VPC_TRACE_STAGES(VPC_TRACE_ENUM_ROW) kCount };
#undef VPC_TRACE_ENUM_ROW
const char* trace_stage_name(TraceStage s);

struct TraceLine {
  uint64_t ns;  // CLOCK_MONOTONIC
  TraceStage stage;
  char text[111];
};

constexpr uint32_t kTraceLines = 12;
constexpr uint32_t kNoTraceBuf = 0xFFFFFFFFu;

struct TraceRecord {
  PortId port = kNoId;  // received on
  uint32_t len = 0;     // as received
  uint8_t nlines = 0;
  bool truncated = false;  // more stages than kTraceLines
  TraceLine lines[kTraceLines];
  // Engine-private while the record is open (its iteration runs).
  uint32_t buf = kNoTraceBuf;   // buffer index of the frame; kNoTraceBuf once dropped
  MemberId pre_member = kNoMember;  // the source MAC's FDB member before learning
  bool pre_known = false;
  bool pre_static = false;
};

class TraceSession {
 public:
  static constexpr uint32_t kMaxCount = 1000;
  // Throws std::invalid_argument: count in 1..kMaxCount.
  TraceSession(uint32_t count, PortId port);
  uint32_t count() const { return uint32_t(recs_.size()); }
  PortId port() const { return port_; }
  // Consumer: records [0, published()) are complete and immutable.
  uint32_t published() const { return published_.load(std::memory_order_acquire); }
  const TraceRecord& record(uint32_t i) const { return recs_[i]; }

  // Engine side.
  bool full() const { return used_ == recs_.size(); }
  TraceRecord* open(PortId port, uint32_t buf, uint32_t len);
  // The open record of this iteration whose frame is in `buf`, or nullptr.
  TraceRecord* find(uint32_t buf) {
    for (uint32_t i = pub_; i < used_; ++i)
      if (recs_[i].buf == buf) return &recs_[i];
    return nullptr;
  }
  uint32_t open_count() const { return used_ - pub_; }
  TraceRecord* open_record(uint32_t k) { return &recs_[pub_ + k]; }
  static void add(TraceRecord& r, uint64_t ns, TraceStage st, const char* fmt, ...)
      __attribute__((format(printf, 4, 5)));
  // Closes this iteration's records and makes them visible to the reader.
  void publish();

 private:
  PortId port_;
  std::vector<TraceRecord> recs_;
  uint32_t used_ = 0;
  uint32_t pub_ = 0;
  std::atomic<uint32_t> published_{0};
};

}  // namespace vpc
