// Split virtqueues of a virtio-net device, served from the guest's memory.
//
// Written from the virtio 1.x specification (2.7 "Split Virtqueues", 5.1
// "Network Device"). This file knows nothing about sockets or the engine: it
// reads and writes rings that live in mapped guest memory (GuestMemory), so
// the unit tests and the hostile-guest fuzzer drive it with a heap buffer.
//
//   guest transmitq (odd index)  --vq_dequeue-->  engine buffers (one copy)
//   engine buffers  --vq_enqueue-->  guest receiveq (even index)   (one copy)
//
// Trust: everything in guest memory is written by the guest, at any time,
// concurrently. Every descriptor is read once into a local copy and checked
// before use; every address is translated through GuestMemory, which never
// returns a pointer whose range leaves a mapped region. A queue whose guest
// breaks the rules (an index beyond the ring, a chain that loops or points
// outside memory, a nested or malformed indirect table, a descriptor of the
// wrong direction) is marked broken: the frame is a counted drop, lastError
// says what happened, and the queue is not looked at again until the front
// end sets it up anew. Other queues and ports go on.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "core/buffer_pool.h"
#include "core/counters.h"
#include "core/offload.h"
#include "core/types.h"

namespace vpc {

// Feature bits (virtio 1.x 5.1.3 and 6).
namespace vfeat {
constexpr uint64_t bit(int b) { return 1ull << b; }
constexpr int kNetCsum = 0, kNetGuestCsum = 1, kNetMtu = 3, kNetMac = 5, kNetGuestTso4 = 7, kNetGuestTso6 = 8,
              kNetGuestEcn = 9, kNetGuestUfo = 10, kNetHostTso4 = 11, kNetHostTso6 = 12, kNetHostEcn = 13,
              kNetHostUfo = 14, kNetMrgRxbuf = 15, kNetStatus = 16, kNetCtrlVq = 17, kNetMq = 22,
              kNotifyOnEmpty = 24, kAnyLayout = 27, kRingIndirect = 28, kRingEventIdx = 29, kVersion1 = 32;
const char* name(int b);  // "csum", "mrg_rxbuf", ... or nullptr for bits without a name here
}  // namespace vfeat

// Ring layout (2.7.5, 2.7.6, 2.7.8). Little endian (VERSION_1; legacy
// devices use the guest's order, which is little endian on x86 and arm64).
struct VringDesc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(VringDesc) == 16);
constexpr uint16_t kDescNext = 1, kDescWrite = 2, kDescIndirect = 4;
constexpr uint16_t kAvailNoInterrupt = 1, kUsedNoNotify = 1;
constexpr uint32_t kMaxQueueSize = 32768;

// One region of guest memory as this process sees it.
struct GuestRegion {
  uint64_t gpa = 0;    // guest-physical address of its first byte
  uint64_t size = 0;   // bytes
  uint64_t uva = 0;    // the front end's (QEMU's) virtual address of its first byte
  uint8_t* host = nullptr;  // where it is mapped here
};

class GuestMemory {
 public:
  static constexpr uint32_t kMaxRegions = 8;  // VHOST_MEMORY_BASELINE_NREGIONS
  void clear() { n_ = 0; last_ = 0; }
  // False when full or when the region wraps the address space.
  bool add(const GuestRegion& r);
  uint32_t count() const { return n_; }
  const GuestRegion& region(uint32_t i) const { return r_[i]; }
  // Host address of [addr, addr + len) when the whole range lies in one
  // region, else nullptr.
  uint8_t* gpa(uint64_t addr, uint64_t len) const {
    uint32_t got;
    uint8_t* p = gpa_piece(addr, len, &got);
    return p && got == len ? p : nullptr;
  }
  // Host address of `addr` and, in *got, how many of the `want` bytes from
  // there lie in the same region (>= 1); nullptr when addr is not mapped.
  // want <= 4 GiB - 1.
  uint8_t* gpa_piece(uint64_t addr, uint64_t want, uint32_t* got) const {
    const GuestRegion& c = r_[last_];
    if (n_ && addr - c.gpa < c.size) [[likely]] return piece(c, addr, want, got);
    for (uint32_t i = 0; i < n_; ++i)
      if (addr - r_[i].gpa < r_[i].size) {
        last_ = i;
        return piece(r_[i], addr, want, got);
      }
    return nullptr;
  }
  // The region the last successful translation used (count() > 0).
  const GuestRegion& last() const { return r_[last_]; }
  // The same for the front end's virtual addresses (vring addresses).
  uint8_t* uva(uint64_t addr, uint64_t len) const;

 private:
  static uint8_t* piece(const GuestRegion& r, uint64_t addr, uint64_t want, uint32_t* got) {
    const uint64_t off = addr - r.gpa, room = r.size - off;
    *got = uint32_t(want < room ? want : room);
    return r.host + off;
  }
  GuestRegion r_[kMaxRegions];
  uint32_t n_ = 0;
  mutable uint32_t last_ = 0;
};

// Per-queue counters and drop reasons (core/counters.h), single writer.
struct VirtqCounters {
  uint64_t c[kVirtqCounters] = {};
  uint64_t drops[kVirtqDrops] = {};
  void add(VirtqCounter k, uint64_t n = 1) { cnt_add(c[size_t(k)], n); }
  void drop(VirtqDrop r, uint64_t n = 1) { cnt_add(drops[size_t(r)], n); }
};

// What the ring code needs to know about the device as negotiated.
struct VirtioNetCtx {
  const GuestMemory* mem = nullptr;
  BufferPool* pool = nullptr;
  BufferCache* cache = nullptr;
  uint32_t hdr_len = kVnetHdrMrgLen;  // 12 with VERSION_1 or MRG_RXBUF, else 10
  bool mrg_rxbuf = false;
  bool event_idx = false;
  bool indirect = false;
  bool guest_csum = false;  // the guest takes checksum-partial frames
  uint32_t guest_gso = 0;   // PortOffload bits of GSO the guest takes (GUEST_TSO4/6/ECN)
  // The port's counters (Port::count_tx), or null: a frame vq_enqueue
  // delivers is the port's tx_packets and tx_bytes, one a receive queue
  // drops the port's tx drop (rxq_drop).
  PortCounterBlock* port = nullptr;
};

// One split virtqueue. The set-up fields are written by the vhost-user
// message handler (on the engine thread); map() resolves the ring addresses
// once the memory table and the addresses are known.
struct VirtQueue {
  // Set up by the front end.
  uint32_t num = 0;
  uint64_t desc_uva = 0, avail_uva = 0, used_uva = 0;
  bool addr_set = false;
  uint16_t last_avail = 0;  // next avail entry to look at (SET/GET_VRING_BASE)
  int kick_fd = -1, call_fd = -1, err_fd = -1;
  bool enabled = false;  // SET_VRING_ENABLE (or no PROTOCOL_FEATURES)
  bool started = false;  // a kick fd came and GET_VRING_BASE has not stopped it

  // Resolved by map(): host pointers into guest memory.
  VringDesc* desc = nullptr;
  uint16_t* avail = nullptr;  // flags, idx, ring[num], used_event
  uint8_t* used = nullptr;    // flags, idx, {id, len}[num], avail_event
  uint16_t used_idx = 0;      // what we publish next in used->idx
  uint16_t signalled_used = 0;
  bool signalled_valid = false;
  bool kicks_on = true;       // whether the guest is asked to kick us (rx side)
  // Receive queue, after vq_enqueue: the avail index it last read, and
  // whether it stopped because the guest's buffers ran out (false: it took
  // every frame, or stopped at the walk budget with buffers left).
  uint16_t rx_seen = 0;
  bool rx_full = false;

  bool broken = false;
  VirtqDrop broken_reason = VirtqDrop::kCount;
  std::string last_error;
  VirtqCounters* ctr = nullptr;  // never null once the device is set up

  // Maps the three rings through mem (vring addresses are front-end virtual
  // addresses); false with *err when an address is not mapped.
  bool map(const GuestMemory& mem, std::string* err);
  void unmap() { desc = nullptr, avail = nullptr, used = nullptr; }
  bool ready() const { return desc && enabled && started && !broken; }
  // Marks the queue broken with the reason; counts one drop. Writes the err
  // eventfd when the front end gave one.
  void fail(VirtqDrop why, std::string detail);
  // Resets everything the front end set (RESET_OWNER, disconnect); fds are
  // the caller's to close first.
  void reset();
};

// The port's drop reason for a frame for the guest that its receive queue
// dropped (docs/ports.md): guest_stalled is tx_ring_full (the guest's ring
// stayed full), not_ready and ring_* link_down (its queue is not up),
// guest_buffer_small egress_too_big, offload_refused gso_unsupported.
Drop port_drop_of(VirtqDrop why);
// A frame for the guest that receive queue q dropped: counted on the queue
// and, when c has the port's counters, as the port's tx drop.
inline void rxq_drop(VirtQueue& q, const VirtioNetCtx& c, VirtqDrop why, uint64_t n = 1) {
  q.ctr->drop(why, n);
  if (c.port) c.port->drop_tx(port_drop_of(why), n);
}

// Guest transmit queue -> engine: up to `max` frames, one copy each into a
// pool buffer (a large buffer for a super-frame). Descriptors go back to the
// used ring at once (length 0). Publishes the used index; the caller then
// calls vq_notify().
uint16_t vq_dequeue(VirtQueue& q, const VirtioNetCtx& c, Pkt* out, uint16_t max);
// Engine -> guest receive queue: copies frames into the guest's buffers and
// frees the engine's. Returns how many frames it took (delivered or dropped
// and counted, on the queue and on c.port); the rest did not fit the guest's
// free buffers and stay with the caller.
uint16_t vq_enqueue(VirtQueue& q, const VirtioNetCtx& c, const Pkt* in, uint16_t n);
// Signals the guest through the call eventfd when it asked for it
// (used_event with EVENT_IDX, else the avail ring's NO_INTERRUPT flag).
void vq_notify(VirtQueue& q, const VirtioNetCtx& c);
// Asks the guest to kick (on: before the engine sleeps) or not to bother
// (off: while the engine polls). Returns with a full fence when turning on,
// so that a look at the avail index afterwards cannot miss a frame the guest
// published without kicking.
void vq_set_kicks(VirtQueue& q, const VirtioNetCtx& c, bool on);
// Receive queue that vq_enqueue found full, with frames waiting: asks the
// guest to kick when it publishes a buffer past the avail index vq_enqueue
// last read (rx_seen; it can be ahead of last_avail: buffers too few for
// the frame at the head stay unused). Returns true, after a full fence,
// when the avail index is still there, so the guest will kick for its next
// buffer; false when it published buffers since (look at the ring again).
bool vq_kick_on_next_buffer(VirtQueue& q, const VirtioNetCtx& c);
// Frames available in the avail ring (0 when the queue is not ready).
uint16_t vq_pending(const VirtQueue& q);

}  // namespace vpc
