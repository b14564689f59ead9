// The trace recorder's storage (core/trace.h); the engine's hooks that fill
// it are in core/observe.cc.
#include "core/trace.h"

#include <cstdio>
#include <stdexcept>

namespace vpc {

const char* trace_stage_name(TraceStage s) {
#define VPC_TRACE_NAME_ROW(name) #name,
  static const char* const names[] = {VPC_TRACE_STAGES(VPC_TRACE_NAME_ROW)};
#undef VPC_TRACE_NAME_ROW
  return size_t(s) < size_t(TraceStage::kCount) ? names[size_t(s)] : "?";
}

TraceSession::TraceSession(uint32_t count, PortId port) : port_(port) {
  if (count < 1 || count > kMaxCount) throw std::invalid_argument("count: must be in 1..1000");
  recs_.resize(count);
}

TraceRecord* TraceSession::open(PortId port, uint32_t buf, uint32_t len) {
  if (full()) return nullptr;
  TraceRecord& r = recs_[used_++];
  r.port = port;
  r.len = len;
  r.buf = buf;
  return &r;
}

void TraceSession::add(TraceRecord& r, uint64_t ns, TraceStage st, const char* fmt, ...) {
  if (r.nlines == kTraceLines) {
    r.truncated = true;
    return;
  }
  TraceLine& l = r.lines[r.nlines++];
  l.ns = ns;
  l.stage = st;
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(l.text, sizeof l.text, fmt, ap);
  va_end(ap);
}

void TraceSession::publish() {
  for (uint32_t i = pub_; i < used_; ++i) recs_[i].buf = kNoTraceBuf;
  pub_ = used_;
  published_.store(used_, std::memory_order_release);
}

}  // namespace vpc
