// Packet capture: the engine copies frames that match a capture's filter
// into the capture's bounded single-producer ring; the control thread (the
// addon) drains it and streams pcap. The engine never waits: a frame that
// finds the ring full is not captured and is counted (`dropped`, and the
// engine counter capture_ring_full).
//
// Cost when no capture runs: one test of Engine::observe_ per received
// burst and per transmitted burst (core/observe.cc), nothing per frame.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>

#include "core/types.h"

namespace vpc {

enum CaptureDir : uint8_t { kCaptureIn = 1, kCaptureOut = 2, kCaptureBoth = 3 };

// One captured frame: this header, then cap_len bytes of the frame.
struct CaptureRecord {
  uint64_t ts_ns;     // CLOCK_REALTIME, nanoseconds (one reading per burst)
  uint32_t orig_len;  // the frame's length on the wire
  uint16_t cap_len;   // bytes kept: min(orig_len, snaplen)
  uint16_t port;      // PortId
  uint8_t dir;        // kCaptureIn or kCaptureOut
  uint8_t pad[7];
};
static_assert(sizeof(CaptureRecord) == 24);

// A single-producer single-consumer ring of fixed-size slots, each holding a
// record header and up to `snaplen` bytes. The producer writes a slot and
// publishes it with one release store; the consumer reads and releases it
// likewise (the shape of SpscRing, with slots sized at run time).
class CaptureRing {
 public:
  static constexpr uint32_t kMaxSnaplen = 65535;
  static constexpr uint32_t kMaxSlots = 1u << 16;
  // Throws std::invalid_argument: slots a power of two in 2..65536,
  // snaplen in 1..65535.
  CaptureRing(uint32_t slots, uint32_t snaplen);
  uint32_t slots() const { return mask_ + 1; }
  uint32_t snaplen() const { return snaplen_; }

  // Producer. Copies min(len, snaplen) bytes; false (nothing written) when full.
  bool push(uint64_t ts_ns, uint16_t port, uint8_t dir, const uint8_t* data, uint32_t len) {
    const uint32_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - head_cache_ == slots()) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (tail - head_cache_ == slots()) return false;
    }
    uint8_t* s = slot(tail);
    CaptureRecord r{};
    r.ts_ns = ts_ns;
    r.orig_len = len;
    r.cap_len = uint16_t(len < snaplen_ ? len : snaplen_);
    r.port = port;
    r.dir = dir;
    std::memcpy(s, &r, sizeof r);
    std::memcpy(s + sizeof r, data, r.cap_len);
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

  // Consumer. Calls fn(const CaptureRecord&, const uint8_t* data) for up to
  // max records, oldest first, then releases their slots. Returns how many.
  template <class Fn>
  uint32_t drain(uint32_t max, Fn&& fn) {
    const uint32_t head = head_.load(std::memory_order_relaxed);
    uint32_t avail = tail_.load(std::memory_order_acquire) - head;
    if (avail > max) avail = max;
    for (uint32_t i = 0; i < avail; ++i) {
      const uint8_t* s = slot(head + i);
      CaptureRecord r;
      std::memcpy(&r, s, sizeof r);
      fn(r, s + sizeof r);
    }
    head_.store(head + avail, std::memory_order_release);
    return avail;
  }
  uint32_t size() const {
    return tail_.load(std::memory_order_acquire) - head_.load(std::memory_order_acquire);
  }

 private:
  uint8_t* slot(uint32_t i) { return mem_.get() + size_t(i & mask_) * stride_; }
  uint32_t mask_ = 0;
  uint32_t snaplen_ = 0;
  size_t stride_ = 0;
  std::unique_ptr<uint8_t[]> mem_;
  alignas(64) std::atomic<uint32_t> head_{0};  // consumer
  alignas(64) std::atomic<uint32_t> tail_{0};  // producer
  alignas(64) uint32_t head_cache_ = 0;        // producer's copy of head_
};

// What a capture takes: frames of one port, or of every port of one switch
// (see Engine::capture_matches), in one or both directions.
struct CaptureFilter {
  PortId port = kNoId;
  SwitchId sw = kNoId;
  uint8_t dirs = kCaptureBoth;
};

// Shared by the engine (producer, while the capture is attached) and the
// control thread (consumer); outlives either side's use of it.
struct CaptureSession {
  CaptureSession(const CaptureFilter& f, uint32_t slots, uint32_t snaplen) : filter(f), ring(slots, snaplen) {}
  CaptureFilter filter;
  CaptureRing ring;
  uint32_t id = 0;                        // set by the engine when attached
  std::atomic<uint64_t> captured{0};      // engine writes, anyone reads
  std::atomic<uint64_t> dropped{0};       // ring full: not captured
  std::atomic<bool> ended{false};         // its port or switch was deleted: detached, gets nothing more
};

// Classic libpcap file format (LINKTYPE_ETHERNET), microsecond timestamps.
constexpr uint32_t kPcapMagic = 0xA1B2C3D4;
constexpr uint32_t kPcapLinktypeEthernet = 1;
constexpr size_t kPcapFileHeaderLen = 24;
constexpr size_t kPcapRecordHeaderLen = 16;
// Writes the 24-byte file header (host byte order, as libpcap does).
void pcap_file_header(uint8_t* out, uint32_t snaplen);
// Writes the 16-byte record header for a captured frame.
void pcap_record_header(uint8_t* out, const CaptureRecord& r);

}  // namespace vpc
