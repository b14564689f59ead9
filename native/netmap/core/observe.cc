// The Observer (core/observe.h): capture and trace state and their hooks.
#include "core/observe.h"

#include <time.h>

#include <algorithm>

#include "proto/ethernet.h"

namespace vpc {

static uint64_t clock_ns(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

uint64_t Observer::mono_ns() { return clock_ns(CLOCK_MONOTONIC); }

void Observer::update() {
  const TraceSession* t = trace_.get();
  flags_ = uint8_t((captures_.empty() ? 0 : kObserveCapture) |
                   (t && (!t->full() || t->open_count()) ? kObserveTrace : 0));
}

Result Observer::start_capture(const std::shared_ptr<CaptureSession>& s) {
  if (captures_.size() >= kMaxCaptures)
    return Result::error(Status::kLimitExceeded, "capture: at most 8 captures run at once");
  s->id = next_capture_id_++;
  captures_.push_back(s);
  update();
  Result r;
  r.id = s->id;
  return r;
}

Result Observer::stop_capture(const std::shared_ptr<CaptureSession>& s) {
  auto it = std::find(captures_.begin(), captures_.end(), s);
  if (!s || it == captures_.end()) return Result::error(Status::kNotFound, "capture: not running");
  captures_.erase(it);
  update();
  return Result{};
}

void Observer::forget(PortId port, SwitchId sw) {
  auto gone = [&](const std::shared_ptr<CaptureSession>& s) {
    const bool hit = (port != kNoId && s->filter.port == port) || (sw != kNoId && s->filter.sw == sw);
    if (hit) s->ended.store(true, std::memory_order_release);
    return hit;
  };
  captures_.erase(std::remove_if(captures_.begin(), captures_.end(), gone), captures_.end());
  if (trace_ && port != kNoId && trace_->port() == port) trace_.reset();
  update();
}

// Commands run between iterations, so no trace record is open here.
void Observer::start_trace(std::shared_ptr<TraceSession> t) {
  trace_ = std::move(t);
  update();
}

void Observer::stop_trace() {
  trace_.reset();
  update();
}

void Observer::capture(PortId pid, const Pkt* pkts, uint16_t n, uint8_t dir) {
  uint64_t ts = 0;
  for (const auto& cs : captures_) {
    const CaptureFilter& f = cs->filter;
    if (!(f.dirs & dir) || (f.port != kNoId && f.port != pid)) continue;
    if (!ts) ts = clock_ns(CLOCK_REALTIME);
    uint64_t got = 0, lost = 0;
    for (uint16_t i = 0; i < n; ++i) {
      const uint8_t* frame = pool_.frame(pkts[i]);
      if (f.sw != kNoId && !switch_match_(f.sw, pid, frame, pkts[i].len)) continue;
      if (cs->ring.push(ts, uint16_t(pid), dir, frame, pkts[i].len)) ++got;
      else ++lost;
    }
    // The engine is the only writer of both counters.
    if (got) cs->captured.store(cs->captured.load(std::memory_order_relaxed) + got, std::memory_order_relaxed);
    if (lost) {
      cs->dropped.store(cs->dropped.load(std::memory_order_relaxed) + lost, std::memory_order_relaxed);
      ctr_.add(EngineCounter::capture_ring_full, lost);
    }
  }
}

static const char* mac_text(Mac m, char* buf) {
  mac_format(m, buf);
  return buf;
}

void Observer::rx(PortId pid, const Pkt* pkts, uint16_t n) {
  if (flags_ & kObserveCapture) capture(pid, pkts, n, kCaptureIn);
  if (!(flags_ & kObserveTrace)) return;
  TraceSession& t = *trace_;
  if (t.full() || (t.port() != kNoId && t.port() != pid)) return;
  const uint64_t ns = mono_ns();
  for (uint16_t i = 0; i < n && !t.full(); ++i) {
    const Pkt& p = pkts[i];
    TraceRecord& r = *t.open(pid, p.buf, p.len);
    if (p.len < kEthHeaderLen) {
      TraceSession::add(r, ns, TraceStage::rx, "port#%u, %u bytes", pid, p.len);
      continue;
    }
    const uint8_t* f = pool_.frame(p);
    char a[18], b[18];
    TraceSession::add(r, ns, TraceStage::rx, "port#%u, %u bytes, %s > %s, type 0x%04x", pid, p.len,
                      mac_text(eth_src(f), a), mac_text(eth_dst(f), b), load_be16(f + 12));
  }
}

void Observer::tx(PortId pid, const Pkt* pkts, uint16_t n) {
  if (flags_ & kObserveCapture) capture(pid, pkts, n, kCaptureOut);
  if (!trace_open()) return;
  const uint64_t ns = mono_ns();
  for (uint16_t i = 0; i < n; ++i) {
    TraceRecord* r = trace_->find(pkts[i].buf);
    if (!r) continue;
    TraceSession::add(*r, ns, TraceStage::tx, "port#%u, %u bytes", pid, pkts[i].len);
    r->buf = kNoTraceBuf;  // sent: the buffer is no longer this frame's
  }
}

void Observer::drop(uint32_t buf, Drop why) {
  TraceRecord* r = traced(buf);
  if (!r) return;
  // The reason's name only: a line holds 110 characters, and most helps are
  // longer. The dataplane API adds the help (from the schema) when it reads.
  TraceSession::add(*r, mono_ns(), TraceStage::drop, "%s", kDropInfo[size_t(why)].name);
  r->buf = kNoTraceBuf;  // freed: the buffer is no longer this frame's
}

void Observer::end_iteration() {
  if (trace_) trace_->publish();
  update();
}

}  // namespace vpc
