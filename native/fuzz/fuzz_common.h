// What every fuzz target shares: reading the input, driving the real engine
// (pipe ports, stopped engine stepped on a caller-driven clock) and the
// checks that run after every step and every input.
//
// An input is a sequence of operations; each target defines its own
// (see its header comment and docs/testing.md; scripts/fuzz-seeds.py writes
// the seed corpora).
//
// Checks (a failure prints what broke and aborts, which libFuzzer reports as
// a crash and saves the input):
//   - after every step, once every peer has been drained: the buffers out of
//     the pool (the pool audit's held count) are exactly those the engine says
//     it holds (staged tx frames, frames waiting for a neighbour): nothing
//     leaked, nothing freed twice (the audit aborts at the second free);
//   - Engine::check_invariants() holds;
//   - no output frame carries bytes the engine never received: input frames
//     never contain kFreedByte (the harness rewrites it), freed buffers are
//     filled with it, so a run of kLeakRun of them in an output is stale
//     buffer content (for example padding that was not zeroed);
//   - after every input, the engine and the peers are destroyed and every
//     buffer must be back in the pool's free list.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/capture.h"
#include "core/test_harness.h"
#include "core/trace.h"
#include "proto/inet.h"

#ifndef VPC_POOL_AUDIT
#error "the fuzz targets need the buffer-pool audit: build with -DVPC_FUZZ=ON"
#endif

namespace vpc::fuzz {

using testutil::Bytes;

// Reads the fuzzer's bytes; past the end everything reads as zero.
class Input {
 public:
  Input(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  bool done() const { return i_ >= n_; }
  size_t left() const { return n_ - i_; }
  uint8_t u8() { return i_ < n_ ? d_[i_++] : 0; }
  uint16_t u16() { return uint16_t(u8() << 8 | u8()); }
  uint32_t u32() { return uint32_t(u16()) << 16 | u16(); }
  // Up to n bytes (fewer at the end of the input).
  Bytes bytes(size_t n) {
    n = std::min(n, left());
    Bytes b(d_ + i_, d_ + i_ + n);
    i_ += n;
    return b;
  }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t i_ = 0;
};

[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz check failed: %s\n", what.c_str());
  std::abort();
}

// Input frames never carry the freed-buffer byte (see the header comment).
inline void scrub(Bytes& f) {
  for (uint8_t& b : f)
    if (b == kFreedByte) b = kFreedByte - 1;
}

// A run this long of kFreedByte cannot come from the engine's own fields
// (checksums, lengths, ports and identifiers are 2 bytes and never adjacent
// to another engine-chosen pair that could also be 0xDBDB).
constexpr size_t kLeakRun = 4;

inline void check_output(const Bytes& f, const char* where) {
  size_t run = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    run = f[i] == kFreedByte ? run + 1 : 0;
    if (run == kLeakRun)
      fail(std::string(where) + ": output frame of " + std::to_string(f.size()) + " bytes carries stale buffer bytes at offset " +
           std::to_string(i + 1 - kLeakRun) + " (bytes the engine never received)");
  }
}

// Reads a capture as vpcctl does (every record, oldest first) and checks
// each: within its bounds, on a port below max_ports, and its bytes never
// stale buffer content.
inline void read_capture(CaptureSession& s, uint32_t max_ports) {
  const uint32_t snap = s.ring.snaplen();
  s.ring.drain(CaptureRing::kMaxSlots, [&](const CaptureRecord& r, const uint8_t* d) {
    if (r.cap_len != std::min(r.orig_len, snap) || r.orig_len > kMaxLargeFrame ||
        (r.dir != kCaptureIn && r.dir != kCaptureOut) || r.port >= max_ports)
      fail("capture record: port " + std::to_string(r.port) + ", dir " + std::to_string(r.dir) + ", " +
           std::to_string(r.cap_len) + " of " + std::to_string(r.orig_len) + " bytes, snaplen " + std::to_string(snap));
    check_output(Bytes(d, d + r.cap_len), "capture");
  });
}
// Reads a trace's published records as vpcctl does: within their bounds,
// every line terminated.
inline void read_trace(const TraceSession& t) {
  for (uint32_t i = 0; i < t.published(); ++i) {
    const TraceRecord& r = t.record(i);
    if (r.nlines > kTraceLines || r.len > kMaxLargeFrame) fail("trace record " + std::to_string(i) + " out of bounds");
    for (uint32_t k = 0; k < r.nlines; ++k)
      if (!std::memchr(r.lines[k].text, 0, sizeof r.lines[k].text)) fail("trace line not terminated");
  }
}

// The engine under test with its pipe peers, a clock and the checks.
class World : public testutil::EngineHarness {
 public:
  static EngineOptions options() {
    EngineOptions o;
    o.pool.count = 512;
    o.pool.hugepages = false;
    o.max_ports = 8;
    o.max_switches = 8;
    o.max_vteps = 16;
    o.event_ring = 256;
    o.command_queue = 64;
    o.idle_poll_ms = 100;
    return o;
  }
  World() { make_engine(options()); }
  ~World() { finish(); }

  // Advances the clock, runs the engine until it is idle, drains every peer
  // (checking each output frame) and checks buffers and invariants.
  void step(uint32_t advance_ms = 0) {
    now_ns_ += uint64_t(advance_ms) * 1000000;
    for (int i = 0; i < 64 && engine().run_once_at(now_ns_) != 0; ++i) drain();
    drain();
    check();
  }
  uint64_t now_ns() const { return now_ns_; }

  // A frame the engine sent, with its descriptor's offload state.
  struct OutFrame {
    PortId port;
    Bytes bytes;
    bool has_meta;      // kPktMeta was set
    OffloadMeta meta;   // the side table's entry (when has_meta)
    bool large;         // in a large buffer
  };
  // Frames from the engine, since the last take_out() (the first 4,096).
  std::vector<OutFrame>& out() { return out_; }
  void take_out() { out_.clear(); }

  // Sends frames into a port's pipe (scrubbed first); returns how many it took.
  uint32_t inject(PortId p, std::vector<Bytes> frames) {
    for (Bytes& f : frames) scrub(f);
    return send_frames(p, frames);
  }

  void check() {
    uint32_t held = pool_->audit()->held(), engine_held = engine().buffers_held();
    if (held != engine_held)
      fail("buffers: " + std::to_string(held) + " out of the pool, the engine accounts for " + std::to_string(engine_held));
    std::string bad = engine().check_invariants();
    if (!bad.empty()) fail("invariant: " + bad);
  }

  // Destroys the engine and the peers; every buffer must be back.
  void finish() {
    if (!engine_) return;
    std::shared_ptr<BufferPool> pool = pool_;
    destroy_all();
    pool_.reset();
    if (pool->audit()->held() != 0 || pool->available() != pool->count())
      fail("after teardown: " + std::to_string(pool->audit()->held()) + " buffers still held, " +
           std::to_string(pool->available()) + " of " + std::to_string(pool->count()) + " in the free list");
  }

 private:
  void drain() {
    Pkt pk[kMaxBurst];
    for (auto& [p, peer] : peers_) {
      for (uint32_t n; (n = peer->recv(pk, kMaxBurst)) != 0;) {
        for (uint32_t i = 0; i < n; ++i) {
          const BufferPool& pool = peer->pool();
          const uint8_t* f = pool.frame(pk[i]);
          OutFrame o{p, Bytes(f, f + pk[i].len), pkt_has_meta(pk[i]), {}, pool.is_large(pk[i].buf)};
          if (o.has_meta) o.meta = pool.meta(pk[i].buf);
          peer->cache().free(pk[i].buf);
          check_output(o.bytes, ("port " + std::to_string(p)).c_str());
          if (out_.size() < 4096) out_.push_back(std::move(o));
        }
      }
    }
  }

  uint64_t now_ns_ = 1000000;
  std::vector<OutFrame> out_;
};

// ---------------------------------------------------------------- builders
// Minimal header writers for structured inputs. Checksums use the engine's
// helpers: the fuzzers are after crashes, leaks and broken invariants, not
// after checksum arithmetic (the unit tests check that independently).

inline void put16(Bytes& b, uint16_t v) {
  b.push_back(uint8_t(v >> 8));
  b.push_back(uint8_t(v));
}
inline void put32(Bytes& b, uint32_t v) {
  put16(b, uint16_t(v >> 16));
  put16(b, uint16_t(v));
}
inline void put_mac(Bytes& b, Mac m) {
  for (int i = 5; i >= 0; --i) b.push_back(uint8_t(m >> (8 * i)));
}
inline Bytes eth(Mac dst, Mac src, uint16_t type, const Bytes& payload) {
  Bytes f;
  put_mac(f, dst);
  put_mac(f, src);
  put16(f, type);
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}
inline Bytes ipv4(const IpAddr& src, const IpAddr& dst, uint8_t proto, const Bytes& payload, uint16_t frag = 0x4000,
                  uint8_t ttl = 64) {
  Bytes h;
  h.push_back(0x45);
  h.push_back(0);
  put16(h, uint16_t(20 + payload.size()));
  put16(h, 0x1234);
  put16(h, frag);
  h.push_back(ttl);
  h.push_back(proto);
  put16(h, 0);
  h.insert(h.end(), src.b + 12, src.b + 16);
  h.insert(h.end(), dst.b + 12, dst.b + 16);
  store_be16(h.data() + 10, csum_fold(csum_partial(h.data(), 20, 0)));
  h.insert(h.end(), payload.begin(), payload.end());
  return h;
}
inline Bytes ipv6(const IpAddr& src, const IpAddr& dst, uint8_t nh, uint8_t hop, const Bytes& payload) {
  Bytes h;
  put32(h, 0x60000000u);
  put16(h, uint16_t(payload.size()));
  h.push_back(nh);
  h.push_back(hop);
  h.insert(h.end(), src.b, src.b + 16);
  h.insert(h.end(), dst.b, dst.b + 16);
  h.insert(h.end(), payload.begin(), payload.end());
  return h;
}
// A transport checksum at `at` inside l4, over the IPv4 or IPv6 pseudo-header.
inline void l4_checksum(Bytes& l4, size_t at, const IpAddr& src, const IpAddr& dst, uint8_t proto) {
  l4[at] = l4[at + 1] = 0;
  uint32_t ph = src.is_v4() ? csum_pseudo4(src.b + 12, dst.b + 12, uint16_t(l4.size()), proto)
                            : csum_pseudo6(src.b, dst.b, uint32_t(l4.size()), proto);
  uint16_t c = csum_fold(csum_partial(l4.data(), l4.size(), ph));
  if (proto == kIpProtoUdp && c == 0) c = 0xFFFF;
  store_be16(l4.data() + at, c);
}

}  // namespace vpc::fuzz
